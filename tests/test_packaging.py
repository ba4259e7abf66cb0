"""Packaging: ComfyUI-Manager installs requirements.txt, pip/the Registry read pyproject.toml — keep them equal."""

from __future__ import annotations

import re

import tomllib

from emovid_core.host.schema import PACK_ROOT


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_requirements_txt_equals_pyproject_dependencies():
    pyproject = tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())
    deps = [_norm(d) for d in pyproject["project"]["dependencies"]]
    reqs = [_norm(line) for line in (PACK_ROOT / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert reqs == deps


def test_pyproject_has_registry_table_script_and_dev_extra():
    pyproject = tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())
    comfy = pyproject["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon"} <= set(comfy)
    assert pyproject["project"]["scripts"]["emovid"] == "emovid_core.host.cli:main"
    assert "pytest" in " ".join(pyproject["project"]["optional-dependencies"]["dev"])
    # The core declared stack of the project must stay declared (opencv as the headless variant: README).
    names = {re.split(r"[<>=!~ ]", d)[0].lower() for d in pyproject["project"]["dependencies"]}
    assert {"torch", "diffusers", "peft", "safetensors", "numpy", "opencv-python-headless"} <= names


# Import name of each declared distribution; ftfy is used by diffusers' Wan pipelines (optional there), not by us.
_IMPORT_NAMES = {"opencv-python-headless": "cv2", "pillow": "PIL", "imageio-ffmpeg": "imageio_ffmpeg",
                 "websocket-client": "websocket"}
_USED_BY_A_DEPENDENCY = {"ftfy"}


def test_declares_only_what_the_code_imports():
    pyproject = tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())
    names = [re.split(r"[<>=!~ \[]", d)[0].lower() for d in pyproject["project"]["dependencies"]]
    code = "\n".join(p.read_text() for d in ("emovid_core", "nodes") for p in (PACK_ROOT / d).rglob("*.py"))
    unused = [n for n in names if n not in _USED_BY_A_DEPENDENCY
              and not re.search(rf"^\s*(import|from)\s+{_IMPORT_NAMES.get(n, n)}\b", code, re.M)]
    assert unused == [], f"declared but never imported: {unused}"
    assert not any(n in ("opencv-python", "opencv-contrib-python") for n in names)


def test_bounds_keep_a_transformers_4_environment():
    """diffusers 0.40+ needs huggingface-hub>=1.23, which transformers 4.x refuses: pip would upgrade transformers."""
    from packaging.requirements import Requirement

    reqs = {Requirement(d).name: Requirement(d) for d in tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert "0.39.0" in reqs["diffusers"].specifier and "0.40.0" not in reqs["diffusers"].specifier
    # The oldest tested end (scripts/check_dep_range.sh); 0.33/0.34 and transformers 4.50 fail tests there.
    assert "0.35.0" in reqs["diffusers"].specifier and "0.34.0" not in reqs["diffusers"].specifier
    assert "4.51.0" in reqs["transformers"].specifier and "4.50.0" not in reqs["transformers"].specifier
    assert "4.57.6" in reqs["transformers"].specifier and "5.0.0" in reqs["transformers"].specifier


def test_cli_lists_subcommands():
    from emovid_core.host.cli import build_parser

    text = build_parser().format_help()
    assert "run" in text


def test_readme_opens_with_the_two_commands_and_lists_every_node():
    import json

    text = (PACK_ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["bash scripts/dev.sh demo", "bash scripts/dev.sh test"]
    ci = (PACK_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/dev.sh test" in ci
    for node_id in json.loads((PACK_ROOT / "tests" / "data" / "node_schema.json").read_text()):
        assert f"(`{node_id}`)" in text, f"README's node reference lacks {node_id}: regenerate it with `python -m emovid_core.host.schema --markdown`"
    # The whole table, not only the ids: inputs, outputs and descriptions are those the classes declare today.
    from emovid_core.host.schema import markdown_reference

    assert markdown_reference() in text, "README's node table is stale: replace it with `python -m emovid_core.host.schema --markdown`"
