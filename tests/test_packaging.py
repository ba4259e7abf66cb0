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
    # The core declared stack of the project must stay declared.
    names = {re.split(r"[<>=!~ ]", d)[0].lower() for d in pyproject["project"]["dependencies"]}
    assert {"torch", "diffusers", "peft", "safetensors", "numpy", "opencv-python", "einops"} <= names


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
