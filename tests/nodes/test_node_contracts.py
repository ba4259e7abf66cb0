"""Node contracts: what ComfyUI users and shared workflows depend on.

The snapshot (tests/data/node_schema.json) freezes node ids, input names and order, types, defaults and outputs.
A rename or reorder breaks saved workflows, so it fails here unless the snapshot is regenerated on purpose:
    .venv/bin/python -m tests.update_node_schema
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from emovid_core.host.schema import PACK_ROOT, node_schema, snapshot
from tests.update_node_schema import SNAPSHOT_PATH


def test_pack_has_nodes(pack_nodes):
    assert len(pack_nodes) >= 1


@pytest.fixture(scope="module")
def schemas(pack_nodes):
    return {nid: node_schema(nid, cls) for nid, cls in pack_nodes.items()}


def test_every_node_follows_the_contract(schemas, pack_nodes):
    from emovid_core.host.schema import load_pack_nodes

    display = load_pack_nodes()[1]
    problems = []
    for nid, s in schemas.items():
        if not nid.startswith("EmoVid"):
            problems.append(f"{nid}: id must start with 'EmoVid'")
        if not display.get(nid, "").startswith("EmoVid "):
            problems.append(f"{nid}: display name {display.get(nid)!r} must start with 'EmoVid '")
        if not s.category.startswith("EmoVid/"):
            problems.append(f"{nid}: category {s.category!r} not under EmoVid/")
        if len(s.description.strip()) < 20:
            problems.append(f"{nid}: DESCRIPTION missing or too short")
        for spec in s.inputs:
            if not str(spec.options.get("tooltip", "")).strip():
                problems.append(f"{nid}: input {spec.name!r} has no tooltip")
        cls = pack_nodes[nid]
        if len(getattr(cls, "RETURN_NAMES", ())) != len(s.output_types):
            problems.append(f"{nid}: RETURN_NAMES must name every output")
        tips = getattr(cls, "OUTPUT_TOOLTIPS", None)
        if s.output_types and (tips is None or len(tips) != len(s.output_types) or not all(tips)):
            problems.append(f"{nid}: OUTPUT_TOOLTIPS must describe every output")
        if not callable(getattr(cls, s.function, None)):
            problems.append(f"{nid}: FUNCTION {s.function!r} is not a method")
    assert not problems, "\n".join(problems)


def test_schema_snapshot_is_unchanged(schemas):
    assert SNAPSHOT_PATH.is_file(), "no snapshot: run `python -m tests.update_node_schema` and commit it"
    saved = json.loads(SNAPSHOT_PATH.read_text())
    live = snapshot(schemas)
    problems = []
    for nid, entry in saved.items():
        if nid not in live:
            problems.append(f"node {nid} was removed or renamed (saved workflows use it)")
            continue
        now = live[nid]
        old_names = [i["name"] for i in entry["inputs"]]
        new_names = [i["name"] for i in now["inputs"]]
        if new_names[: len(old_names)] != old_names:
            problems.append(f"{nid}: inputs changed from {old_names} to {new_names}")
        for old in entry["inputs"]:
            new = next((i for i in now["inputs"] if i["name"] == old["name"]), None)
            if new is not None and new != old:
                problems.append(f"{nid}: input {old['name']!r} changed from {old} to {new}")
        if now["outputs"] != entry["outputs"]:
            problems.append(f"{nid}: outputs changed from {entry['outputs']} to {now['outputs']}")
    added = sorted(set(live) - set(saved))
    if added:
        problems.append(f"new nodes not in the snapshot yet: {added}")
    assert not problems, (
        "node schema differs from tests/data/node_schema.json; if intended (a new node, never a change to a released "
        "one), regenerate with `python -m tests.update_node_schema`:\n" + "\n".join(problems)
    )


def _import_like_comfyui(pack_dir, extra_code=""):
    """Import the pack the way ComfyUI 0.3.64 does: module name = path with '.' replaced by '_x_'."""
    code = textwrap.dedent(
        f"""
        import importlib.util, json, logging, sys
        logging.basicConfig(level=logging.WARNING)
        path = {str(pack_dir)!r}
        name = path.replace('.', '_x_')
        spec = importlib.util.spec_from_file_location(name, path + '/__init__.py', submodule_search_locations=[path])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        forbidden = sorted(m for m in ('comfy', 'folder_paths', 'server') if m in sys.modules)
        heavy = sorted(m for m in ('diffusers', 'transformers', 'peft') if m in sys.modules)
        print(json.dumps({{"nodes": sorted(mod.NODE_CLASS_MAPPINGS), "display": mod.NODE_DISPLAY_NAME_MAPPINGS,
                          "forbidden": forbidden, "heavy": heavy}}))
        {extra_code}
        """
    )
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_pack_imports_like_comfyui_without_comfy_and_without_heavy_imports(pack_nodes):
    info, log = _import_like_comfyui(PACK_ROOT)
    assert sorted(pack_nodes) == info["nodes"]
    assert info["forbidden"] == []
    # Import must stay light: no model library is imported until a node runs.
    assert info["heavy"] == [], f"heavy libraries imported at pack import: {info['heavy']}"
    assert "not loaded" not in log, log


def test_a_broken_node_group_is_skipped_with_a_warning(tmp_path, pack_nodes):
    pack = tmp_path / "Comfy.EmoVid-copy"
    pack.mkdir()
    for item in ("__init__.py", "nodes", "emovid_core"):
        os.symlink(PACK_ROOT / item, pack / item) if item != "nodes" else None
    (pack / "nodes").mkdir()
    for f in (PACK_ROOT / "nodes").glob("*.py"):
        os.symlink(f, pack / "nodes" / f.name)
    (pack / "nodes" / "zz_broken.py").write_text("import emovid_missing_dependency\n")
    info, log = _import_like_comfyui(pack)
    assert sorted(pack_nodes) == info["nodes"]
    assert "node group 'zz_broken' not loaded" in log and "emovid_missing_dependency" in log
