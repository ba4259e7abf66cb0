"""LoRAs (emovid_core.lora): file formats, the Wan2.1 layout, patching ComfyUI and diffusers models, stacks, the CLI, the
LoRA nodes and the opt-in check against a real ComfyUI. Shared builders and the reference formula: utils.py."""

from __future__ import annotations

import pytest

from emovid_core import runtime


@pytest.fixture()
def loras_dir(tmp_path):
    """An empty ``loras`` model folder, installed as the runtime's only one for the test (the LoRA nodes list it)."""
    folder = tmp_path / "loras"
    folder.mkdir()
    with runtime.configured(model_folders={"loras": [folder]}):
        yield folder
