"""`emovid lora inspect` / `emovid lora convert`: output, round trips through every target, errors."""

from __future__ import annotations

import json

import pytest
import torch

from emovid_core.host import cli
from emovid_core.lora import load_lora, write_lora
from emovid_core.lora.testing import random_lora


@pytest.fixture()
def diffsynth_file(tmp_path):
    lora = random_lora(i2v=True, rank=4, alpha=None, seed=21)  # DiffSynth stores no alpha: scale 1
    path = tmp_path / "emovid_anger.safetensors"
    write_lora(lora, path, "diffsynth", metadata={"trainer": "DiffSynth-Studio"})
    return lora, path


def test_inspect_text_and_json(diffsynth_file, capsys):
    _, path = diffsynth_file
    assert cli.main(["lora", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "DiffSynth-Studio (peft inject, .default)" in out
    assert "trained for: custom width 128, I2V" in out
    assert "rank: 4; alpha: 4; scale alpha/rank: 1" in out
    assert "blocks: 2 (0-1)" in out and "metadata trainer: DiffSynth-Studio" in out
    assert cli.main(["lora", "inspect", str(path), "--check", "t2v-14B"]) == 2  # width mismatch
    captured = capsys.readouterr()
    assert "custom width 128" in captured.err and "Wan2.1 T2V 14B (dim 5120)" in captured.err
    assert "rank: 4" in captured.out  # the file is still described
    assert cli.main(["lora", "inspect", str(path), "--json", "--check", "t2v-14B"]) == 2
    assert "Wan2.1 14B" in json.loads(capsys.readouterr().out)["validation"]["error"]
    assert cli.main(["lora", "inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_modules"] == 24 and data["i2v"] is True and data["ranks"] == {"4": 24}


def test_inspect_check_against_a_checkpoint(diffsynth_file, tmp_path, capsys):
    from emovid_core.wan.dit_keys import write_tiny_wan

    _, path = diffsynth_file
    ckpt = write_tiny_wan(tmp_path / "tiny_t2v.safetensors", prefix="model.diffusion_model.")
    assert cli.main(["lora", "inspect", str(path), "--check", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "20 module(s) applied, 4 skipped" in out and "I2V LoRA on a T2V model" in out


@pytest.mark.parametrize("target,fmt", [("comfy", "comfy"), ("diffusers", "diffusers"), ("kohya", "kohya")])
def test_convert_round_trip(diffsynth_file, tmp_path, capsys, target, fmt):
    lora, path = diffsynth_file
    out = tmp_path / f"out_{target}.safetensors"
    assert cli.main(["lora", "convert", str(path), str(out), "--to", target]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    back = load_lora(out)
    assert back.source_format == fmt and not back.unused_keys
    for name, m in lora.modules.items():
        assert torch.equal(back.modules[name].weight_delta(1.0), m.weight_delta(1.0)), name
    assert back.metadata["trainer"] == "DiffSynth-Studio" and back.metadata["emovid_converted_from"] == "diffsynth"
    # and back again to DiffSynth's own spelling
    again = tmp_path / "again.safetensors"
    assert cli.main(["lora", "convert", str(out), str(again), "--to", "comfy"]) == 0
    assert set(load_lora(again).modules) == set(lora.modules)


def test_convert_refuses_overwrite_and_bad_input(diffsynth_file, tmp_path, capsys):
    _, path = diffsynth_file
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"keep")
    assert cli.main(["lora", "convert", str(path), str(out), "--to", "comfy"]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert cli.main(["lora", "convert", str(path), str(out), "--to", "comfy", "--force"]) == 0
    pt = tmp_path / "old.ckpt"
    pt.write_bytes(b"junk")
    assert cli.main(["lora", "inspect", str(pt)]) == 2
    assert "pickle" in capsys.readouterr().err


def test_lora_without_action_prints_help(capsys):
    assert cli.main(["lora"]) == 1
    assert "inspect" in capsys.readouterr().out
