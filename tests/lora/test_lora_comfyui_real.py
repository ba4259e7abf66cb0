"""Opt-in check against a REAL ComfyUI 0.3.64 (skipped unless COMFYUI_DIR points at a ComfyUI checkout).

A tiny Wan2.1 checkpoint loaded by core UNETLoader; one LoRA written in DiffSynth, diffusers and musubi (kohya)
format and applied with EmoVidLoraLoader must give the SAME sampled latent (KSampler path, 3 euler steps) as the
same LoRA converted to ComfyUI format and applied by core LoraLoaderModelOnly. The same for a hand-written
LyCORIS file (LoKr, LoHa, DoRA .dora_scale) in lycoris_/diffusers/DiffSynth/musubi spellings against core on its
diffusion_model. spelling, latents and patched weights, at strengths 0.8 and -0.5. As a control, core
LoraLoaderModelOnly on the raw DiffSynth file skips every key and samples the base model.

Run: COMFYUI_DIR=/work/comfyui pytest tests/lora/test_lora_comfyui_real.py -q   (ComfyUI's python is found by
tests/helpers/comfyui_env.py, or the test skips saying why). This file is also the script the test runs inside ComfyUI's
Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PACK = Path(__file__).resolve().parents[2]


# Hand-built LoRA files: explicit key strings per trainer, written with safetensors directly (not with the pack's
# writer), so the loader is checked against the formats themselves and not against its own output.
_MODULES = [f"blocks.{i}.{m}" for i in range(2) for m in
            ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.k", "cross_attn.v",
             "cross_attn.o", "ffn.0", "ffn.2")]
_DIFFUSERS_NAMES = {"self_attn.q": "attn1.to_q", "self_attn.k": "attn1.to_k", "self_attn.v": "attn1.to_v",
                    "self_attn.o": "attn1.to_out.0", "cross_attn.q": "attn2.to_q", "cross_attn.k": "attn2.to_k",
                    "cross_attn.v": "attn2.to_v", "cross_attn.o": "attn2.to_out.0", "ffn.0": "ffn.net.0.proj",
                    "ffn.2": "ffn.net.2"}


def _write_hand_loras(folder: Path, dim: int = 128, ffn: int = 256, rank: int = 4) -> list[str]:
    """One LoRA (alpha = rank, so every format means scale 1) spelled by hand in four trainers' formats."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(11)
    pairs = {}
    for m in _MODULES:
        d_in, d_out = (dim, ffn) if m.endswith("ffn.0") else (ffn, dim) if m.endswith("ffn.2") else (dim, dim)
        pairs[m] = (torch.randn(rank, d_in, generator=g) * 0.3, torch.randn(d_out, rank, generator=g) * 0.3)  # A (down), B (up)
    alpha = torch.tensor(float(rank))
    comfy, diffsynth, diffusers, musubi = {}, {}, {}, {}
    for m, (a, b) in pairs.items():
        block, _, mod = m.partition(".")[2].partition(".")
        comfy[f"diffusion_model.{m}.lora_down.weight"], comfy[f"diffusion_model.{m}.lora_up.weight"] = a, b
        comfy[f"diffusion_model.{m}.alpha"] = alpha
        diffsynth[f"{m}.lora_A.default.weight"], diffsynth[f"{m}.lora_B.default.weight"] = a, b
        dn = f"transformer.blocks.{block}.{_DIFFUSERS_NAMES[mod]}"
        diffusers[f"{dn}.lora_A.weight"], diffusers[f"{dn}.lora_B.weight"] = a, b
        kn = "lora_unet_" + m.replace(".", "_")
        musubi[f"{kn}.lora_down.weight"], musubi[f"{kn}.lora_up.weight"], musubi[f"{kn}.alpha"] = a, b, alpha
    assert "lora_unet_blocks_1_cross_attn_o.alpha" in musubi and "transformer.blocks.0.ffn.net.0.proj.lora_A.weight" in diffusers
    for fmt, sd in (("comfy", comfy), ("diffsynth", diffsynth), ("diffusers", diffusers), ("musubi", musubi)):
        save_file({k: v.clone().contiguous() for k, v in sd.items()}, str(folder / f"hand_{fmt}.safetensors"))
    return ["diffsynth", "diffusers", "musubi"]


# LyCORIS: one module of each kind (LoKr full/low-rank factors, LoKr both low-rank with DoRA, LoHa with and without
# DoRA, LoRA with DoRA on either axis), spelled by hand per name space; core reads the diffusion_model. spelling.
_LYCORIS_PLAN = {"blocks.0.self_attn.q": ("lokr", ""), "blocks.0.cross_attn.o": ("lokr_full", ""),
                 "blocks.1.ffn.0": ("lokr_ab", "out"), "blocks.0.ffn.2": ("loha", ""),
                 "blocks.1.self_attn.k": ("loha", "in"), "blocks.1.cross_attn.v": ("lora", "out"),
                 "blocks.0.self_attn.v": ("lora", "in")}


def _write_hand_lycoris(folder: Path, dim: int = 128, ffn: int = 256) -> list[str]:
    import importlib.util

    from safetensors.torch import save_file

    # tests/lora/utils.py by path: ComfyUI's own tests/ package would shadow "tests" on this sys.path.
    spec = importlib.util.spec_from_file_location("emovid_lora_test_utils", PACK / "tests" / "lora" / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    parts = {m: utils.lycoris_module(kind, *((ffn, dim) if m.endswith("ffn.0") else (dim, ffn) if m.endswith("ffn.2")
                                             else (dim, dim)), seed=20 + i, dora=dora)
             for i, (m, (kind, dora)) in enumerate(_LYCORIS_PLAN.items())}
    stems = {"comfy": lambda m: "diffusion_model." + m, "lycoris": lambda m: "lycoris_" + m.replace(".", "_"),
             "diffusers": lambda m: "transformer.blocks." + m.split(".")[1] + "." + _DIFFUSERS_NAMES[m.split(".", 2)[2]],
             "diffsynth": lambda m: m, "musubi": lambda m: "lora_unet_" + m.replace(".", "_")}
    assert stems["diffusers"]("blocks.1.self_attn.k") == "transformer.blocks.1.attn1.to_k"
    for fmt, stem in stems.items():
        sd = {f"{stem(m)}.{p}": t.clone().contiguous() for m, ts in parts.items() for p, t in ts.items()}
        save_file(sd, str(folder / f"lyco_{fmt}.safetensors"))
    return [f for f in stems if f != "comfy"]


def _check(comfy_dir: Path, work: Path) -> dict:
    import logging

    sys.argv = [sys.argv[0], "--cpu"]
    sys.path[:0] = [str(comfy_dir), str(PACK)]
    os.chdir(comfy_dir)
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.lora
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
    hand_formats = _write_hand_loras(lo)
    lyco_formats = _write_hand_lycoris(lo)
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
    # The hand-built files: core on the hand-written ComfyUI file is the reference; ours on each trainer's spelling
    # and core on the hand-written musubi/kohya file must give the same latent.
    skipped.clear()
    hand_core = sample(core_loader.load_lora_model_only(model, "hand_comfy.safetensors", 0.8)[0])
    result["hand_core_skipped_keys"] = len(skipped)
    result["hand_core_differs_from_base"] = float((hand_core - base).abs().max())
    for fmt in hand_formats:
        result[f"hand_ours_{fmt}_bit_identical"] = bool(torch.equal(
            sample(ours_cls().apply(model, f"hand_{fmt}.safetensors", 0.8, True)["result"][0]), hand_core))
    skipped.clear()
    result["hand_core_on_musubi_bit_identical"] = bool(torch.equal(
        sample(core_loader.load_lora_model_only(model, "hand_musubi.safetensors", 0.8)[0]), hand_core))
    result["hand_core_on_musubi_skipped_keys"] = len(skipped)
    # LyCORIS LoKr/LoHa/DoRA: core on the hand-written diffusion_model. file is the reference (DoRA at strength 0.8
    # and -0.5 takes ComfyUI's interpolation path); ours must apply each spelling through the same adapters.
    from comfy.weight_adapter import LoHaAdapter, LoKrAdapter, LoRAAdapter

    for target in ("comfy", "kohya"):  # = `emovid lora convert lyco_diffusers.safetensors ... --to comfy|kohya`
        write_lora(load_lora(lo / "lyco_diffusers.safetensors"), lo / f"lyco_to_{target}.safetensors", target)
    for strength in (0.8, -0.5):
        skipped.clear()
        lyco_core_model = core_loader.load_lora_model_only(model, "lyco_comfy.safetensors", strength)[0]
        lyco_core = sample(lyco_core_model)
        result[f"lyco_core_skipped_keys_{strength}"] = len(skipped)
        result[f"lyco_core_differs_from_base_{strength}"] = float((lyco_core - base).abs().max())
        for fmt in lyco_formats:
            res = ours_cls().apply(model, f"lyco_{fmt}.safetensors", strength, True)["result"]
            result[f"lyco_ours_{fmt}_bit_identical_{strength}"] = bool(torch.equal(sample(res[0]), lyco_core))
            if fmt == "lycoris" and strength == 0.8:
                kinds = {k: type(v[-1][1]).__name__ for k, v in res[0].patches.items()}
                result["lyco_ours_adapter_classes"] = sorted(set(kinds.values()))
                result["lyco_report_names_kinds"] = "applied as LoKr+DoRA: 1 module(s)" in res[1]
                core_kinds = {k: type(v[-1][1]).__name__ for k, v in lyco_core_model.patches.items()}
                result["lyco_same_adapters_as_core"] = kinds == core_kinds and len(kinds) == len(_LYCORIS_PLAN)
                result["lyco_is_comfy_adapter"] = all(isinstance(v[-1][1], (LoKrAdapter, LoHaAdapter, LoRAAdapter))
                                                      for v in res[0].patches.values())
        for target in ("comfy", "kohya"):  # core on our conversions: nothing skipped, the same latent
            skipped.clear()
            conv = sample(core_loader.load_lora_model_only(model, f"lyco_to_{target}.safetensors", strength)[0])
            result[f"lyco_core_on_converted_{target}_{strength}"] = (len(skipped), bool(torch.equal(conv, lyco_core)))
        # the patched weights themselves, every module
        ours_model = ours_cls().apply(model, "lyco_lycoris.safetensors", strength, True)["result"][0]
        same = []
        for m in _LYCORIS_PLAN:
            key = f"diffusion_model.{m}.weight"
            w = model.model.state_dict()[key].float()
            same.append(torch.equal(comfy.lora.calculate_weight(lyco_core_model.patches[key], w.clone(), key),
                                    comfy.lora.calculate_weight(ours_model.patches[key], w.clone(), key)))
        result[f"lyco_weights_bit_identical_{strength}"] = all(same)
        # the pack's own formula (what the diffusers pipeline merges) against core's adapters
        ours_math = load_lora(lo / "lyco_lycoris.safetensors")
        diffs = []
        for m in _LYCORIS_PLAN:
            key = f"diffusion_model.{m}.weight"
            w = model.model.state_dict()[key].float()
            want = comfy.lora.calculate_weight(lyco_core_model.patches[key], w.clone(), key)
            diffs.append(float((ours_math.modules[m].merged(w.clone(), strength) - want).abs().max()))
        result[f"lyco_pack_math_max_abs_diff_{strength}"] = max(diffs)
    skipped.clear()
    core_sample_lycoris = sample(core_loader.load_lora_model_only(model, "lyco_lycoris.safetensors", 0.8)[0])
    result["core_on_lycoris_prefix_skipped_keys"] = len(skipped)  # core has no lycoris_ names for Wan
    result["core_on_lycoris_prefix_equals_base"] = bool(torch.equal(core_sample_lycoris, base))
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
    from tests.helpers.comfyui_env import comfyui_or_skip

    comfy_dir, python = comfyui_or_skip()
    proc = subprocess.run([python, __file__, str(comfy_dir), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["model_config"] == "WAN21_T2V" and result["finite"]
    assert result["core_skipped_keys"] == 0 and result["core_differs_from_base"] > 1e-4
    for fmt in ("diffsynth", "diffusers", "musubi"):
        assert result[f"ours_{fmt}_bit_identical"], result
    assert result["hand_core_skipped_keys"] == 0 and result["hand_core_differs_from_base"] > 1e-4, result
    for fmt in ("diffsynth", "diffusers", "musubi"):
        assert result[f"hand_ours_{fmt}_bit_identical"], (fmt, result)
    assert result["hand_core_on_musubi_skipped_keys"] == 0 and result["hand_core_on_musubi_bit_identical"], result
    assert result["core_on_raw_diffsynth_skipped_keys"] > 0 and result["core_on_raw_diffsynth_equals_base"]
    assert result["core_on_kohya_conversion_skipped_keys"] == 0 and result["core_on_kohya_conversion_bit_identical"]
    assert result["i2v_model_config"] == "WAN21_I2V" and result["core_i2v_skipped_keys"] == 0 and result["i2v_bit_identical"]
    assert result["core_i2v_on_t2v_skipped_keys"] == 12  # 2 blocks x (k_img, v_img) x (A, B, alpha): silent in core
    assert result["ours_i2v_on_t2v_report_mentions_drop"] and result["i2v_on_t2v_bit_identical"]
    # LyCORIS LoKr / LoHa / DoRA through ComfyUI's own adapters: bit-identical to core on its diffusion_model. file
    for strength in (0.8, -0.5):
        assert result[f"lyco_core_skipped_keys_{strength}"] == 0 and result[f"lyco_core_differs_from_base_{strength}"] > 1e-4
        for fmt in ("lycoris", "diffusers", "diffsynth", "musubi"):
            assert result[f"lyco_ours_{fmt}_bit_identical_{strength}"], (fmt, strength, result)
        assert result[f"lyco_weights_bit_identical_{strength}"], result
        for target in ("comfy", "kohya"):
            assert result[f"lyco_core_on_converted_{target}_{strength}"] == [0, True], (target, result)
        assert result[f"lyco_pack_math_max_abs_diff_{strength}"] == 0.0, result  # the diffusers merge rule
    assert result["lyco_ours_adapter_classes"] == ["LoHaAdapter", "LoKrAdapter", "LoRAAdapter"], result
    assert result["lyco_same_adapters_as_core"] and result["lyco_is_comfy_adapter"] and result["lyco_report_names_kinds"]
    assert result["core_on_lycoris_prefix_skipped_keys"] > 0 and result["core_on_lycoris_prefix_equals_base"]


if __name__ == "__main__":
    print(json.dumps(_check(Path(sys.argv[1]), Path(sys.argv[2]))))
