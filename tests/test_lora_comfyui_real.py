"""Opt-in check against a REAL ComfyUI 0.3.64 (skipped unless COMFYUI_DIR points at a ComfyUI checkout).

A tiny Wan2.1 checkpoint loaded by core UNETLoader; one LoRA written in DiffSynth, diffusers and musubi (kohya)
format and applied with EmoVidLoraLoader must give the SAME sampled latent (KSampler path, 3 euler steps) as the
same LoRA converted to ComfyUI format and applied by core LoraLoaderModelOnly. As a control, core
LoraLoaderModelOnly on the raw DiffSynth file skips every key and samples the base model.

Run: COMFYUI_DIR=/work/comfyui pytest tests/test_lora_comfyui_real.py -q   (uses $COMFYUI_DIR/.venv/bin/python
or $COMFYUI_PYTHON). This file is also the script the test runs inside ComfyUI's Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PACK = Path(__file__).resolve().parent.parent


def _check(comfy_dir: Path, work: Path) -> dict:
    import logging

    sys.argv = [sys.argv[0], "--cpu"]
    sys.path[:0] = [str(comfy_dir), str(PACK)]
    os.chdir(comfy_dir)
    import comfy.options

    comfy.options.enable_args_parsing()
    import folder_paths
    import torch

    import nodes as comfy_nodes  # ComfyUI's nodes.py (the pack's own nodes load under a private name)
    from emovid_core.host.schema import load_pack_nodes
    from emovid_core.lora import load_lora, write_lora
    from emovid_core.lora.testing import random_lora
    from emovid_core.wan.dit_keys import write_tiny_wan

    dm, lo = work / "diffusion_models", work / "loras"
    dm.mkdir(parents=True, exist_ok=True)
    lo.mkdir(parents=True, exist_ok=True)
    write_tiny_wan(dm / "emovid_tiny_t2v.safetensors", dim=128, ffn=256, layers=2, seed=3)
    write_tiny_wan(dm / "emovid_tiny_i2v.safetensors", dim=128, ffn=256, layers=2, in_dim=36, seed=4)
    lora = random_lora(dim=128, ffn=256, layers=2, rank=4, alpha=2.0, seed=5, scale=0.3)
    write_lora(lora, lo / "emo_diffsynth.safetensors", "diffsynth")
    write_lora(lora, lo / "emo_diffusers.safetensors", "diffusers")
    write_lora(lora, lo / "emo_musubi.safetensors", "kohya")
    write_lora(load_lora(lo / "emo_diffsynth.safetensors"), lo / "emo_comfy.safetensors", "comfy")  # = `emovid lora convert --to comfy`
    write_lora(load_lora(lo / "emo_diffsynth.safetensors"), lo / "emo_kohya.safetensors", "kohya")  # = `--to kohya`
    i2v_lora = random_lora(dim=128, ffn=256, layers=2, rank=4, alpha=8.0, i2v=True, seed=6, scale=0.3)
    write_lora(i2v_lora, lo / "i2v_diffusers.safetensors", "diffusers")
    write_lora(load_lora(lo / "i2v_diffusers.safetensors"), lo / "i2v_comfy.safetensors", "comfy")
    folder_paths.add_model_folder_path("diffusion_models", str(dm), is_default=True)
    folder_paths.add_model_folder_path("loras", str(lo), is_default=True)

    skipped: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if "lora key not loaded" in msg or msg.startswith(("ERROR lora", "NOT LOADED")):
                skipped.append(msg)

    logging.getLogger().addHandler(Catch())
    model = comfy_nodes.UNETLoader().load_unet("emovid_tiny_t2v.safetensors", "default")[0]
    g = torch.Generator().manual_seed(0)
    pos = [[torch.randn(1, 8, 4096, generator=g), {}]]
    neg = [[torch.zeros(1, 8, 4096), {}]]
    latent = {"samples": torch.zeros(1, 16, 2, 8, 8)}

    def sample(m):
        return comfy_nodes.common_ksampler(m, 42, 3, 3.0, "euler", "simple", pos, neg, latent)[0]["samples"]

    result = {"model_config": type(model.model.model_config).__name__}
    base = sample(model)
    core_loader = comfy_nodes.LoraLoaderModelOnly()
    core = sample(core_loader.load_lora_model_only(model, "emo_comfy.safetensors", 0.8)[0])
    result["core_skipped_keys"] = len(skipped)
    result["core_differs_from_base"] = float((core - base).abs().max())
    ours_cls = load_pack_nodes()[0]["EmoVidLoraLoader"]
    for fmt in ("diffsynth", "diffusers", "musubi"):
        out = ours_cls().apply(model, f"emo_{fmt}.safetensors", 0.8, True)
        latent_ours = sample(out["result"][0])
        result[f"ours_{fmt}_max_abs_diff_vs_core"] = float((latent_ours - core).abs().max())
        result[f"ours_{fmt}_bit_identical"] = bool(torch.equal(latent_ours, core))
    skipped.clear()
    kohya = sample(core_loader.load_lora_model_only(model, "emo_kohya.safetensors", 0.8)[0])
    result["core_on_kohya_conversion_skipped_keys"] = len(skipped)
    result["core_on_kohya_conversion_bit_identical"] = bool(torch.equal(kohya, core))
    # I2V: an I2V checkpoint with an I2V LoRA (diffusers spelling) vs core on its ComfyUI conversion; and the same
    # LoRA on the T2V model, where core logs the image keys as not loaded and we drop them with a note.
    i2v_model = comfy_nodes.UNETLoader().load_unet("emovid_tiny_i2v.safetensors", "default")[0]
    result["i2v_model_config"] = type(i2v_model.model.model_config).__name__
    skipped.clear()
    core_i2v = sample(core_loader.load_lora_model_only(i2v_model, "i2v_comfy.safetensors", -0.6)[0])
    result["core_i2v_skipped_keys"] = len(skipped)
    ours_i2v = sample(ours_cls().apply(i2v_model, "i2v_diffusers.safetensors", -0.6, True)["result"][0])
    result["i2v_bit_identical"] = bool(torch.equal(ours_i2v, core_i2v))
    skipped.clear()
    core_t2v = sample(core_loader.load_lora_model_only(model, "i2v_comfy.safetensors", 1.0)[0])
    result["core_i2v_on_t2v_skipped_keys"] = len(skipped)
    res = ours_cls().apply(model, "i2v_diffusers.safetensors", 1.0, False)
    result["ours_i2v_on_t2v_report_mentions_drop"] = "I2V LoRA on a T2V model" in res["result"][1]
    result["i2v_on_t2v_bit_identical"] = bool(torch.equal(sample(res["result"][0]), core_t2v))
    skipped.clear()
    raw = sample(core_loader.load_lora_model_only(model, "emo_diffsynth.safetensors", 0.8)[0])
    result["core_on_raw_diffsynth_skipped_keys"] = len(skipped)
    result["core_on_raw_diffsynth_equals_base"] = bool(torch.equal(raw, base))
    result["finite"] = bool(torch.isfinite(core).all())
    return result


def test_real_comfyui_matches_core_lora_loader(tmp_path):
    import pytest

    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        pytest.skip("set COMFYUI_DIR to a ComfyUI 0.3.64 checkout to run the real-ComfyUI LoRA check")
    python = os.environ.get("COMFYUI_PYTHON") or str(Path(comfy_dir) / ".venv" / "bin" / "python")
    proc = subprocess.run([python, __file__, comfy_dir, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["model_config"] == "WAN21_T2V" and result["finite"]
    assert result["core_skipped_keys"] == 0 and result["core_differs_from_base"] > 1e-4
    for fmt in ("diffsynth", "diffusers", "musubi"):
        assert result[f"ours_{fmt}_bit_identical"], result
    assert result["core_on_raw_diffsynth_skipped_keys"] > 0 and result["core_on_raw_diffsynth_equals_base"]
    assert result["core_on_kohya_conversion_skipped_keys"] == 0 and result["core_on_kohya_conversion_bit_identical"]
    assert result["i2v_model_config"] == "WAN21_I2V" and result["core_i2v_skipped_keys"] == 0 and result["i2v_bit_identical"]
    assert result["core_i2v_on_t2v_skipped_keys"] == 12  # 2 blocks x (k_img, v_img) x (A, B, alpha): silent in core
    assert result["ours_i2v_on_t2v_report_mentions_drop"] and result["i2v_on_t2v_bit_identical"]


if __name__ == "__main__":
    print(json.dumps(_check(Path(sys.argv[1]), Path(sys.argv[2]))))
