"""LoRAs for Wan2.2 (TI2V-5B, A14B high-/low-noise experts) on the wrong model: one sentence naming both.

Files are hand-made with safetensors (explicit key strings), as trainers write them."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from emovid_core.lora import LoraMismatchError, ShapeSpec, load_lora, validate
from emovid_core.lora.inspect import inspect_lora


def _file(tmp_path, name, dim, metadata=None, i2v=False):
    keys = {"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.zeros(1, dim),
            "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.zeros(dim, 1)}
    if i2v:
        keys["diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight"] = torch.zeros(1, dim)
        keys["diffusion_model.blocks.0.cross_attn.k_img.lora_up.weight"] = torch.zeros(dim, 1)
    path = tmp_path / name
    save_file(keys, str(path), metadata=metadata)
    return load_lora(path)


def test_a_ti2v_5b_lora_on_wan21_names_both_models(tmp_path):
    lora = _file(tmp_path, "ti2v_style.safetensors", 3072)
    assert inspect_lora(lora).architecture.startswith("Wan2.2 TI2V 5B (dim 3072)")
    with pytest.raises(LoraMismatchError, match=r"ti2v_style.safetensors was trained for Wan2.2 TI2V 5B \(dim 3072\), "
                                                r"but the model is Wan2.1 T2V 1.3B \(dim 1536\)"):
        validate(lora, ShapeSpec.from_variant("t2v-1.3b"))
    with pytest.raises(LoraMismatchError, match=r"trained for Wan2.1 14B / Wan2.2 A14B \(dim 5120\), but the model is "
                                                r"Wan2.2 TI2V 5B \(dim 3072\)"):
        validate(_file(tmp_path, "big.safetensors", 5120), ShapeSpec.from_variant("ti2v-5b"))


def test_a_high_noise_lora_on_the_low_noise_expert(tmp_path):
    by_name = _file(tmp_path, "wan22_lightx2v_HIGH_noise.safetensors", 5120)
    by_meta = _file(tmp_path, "distill.safetensors", 5120, metadata={"modelspec.title": "distill HighNoise"})
    for lora in (by_name, by_meta):
        rep = validate(lora, ShapeSpec.from_variant("t2v-a14b-low-noise"))
        assert rep.applied == ["blocks.0.self_attn.q"]  # the shapes fit: it applies, and the report says which
        assert f"{lora.name} was trained for the Wan2.2 A14B high-noise expert, but the model is the Wan2.2 T2V " \
               "A14B low-noise expert: give it to the high-noise expert's model" in rep.notes
        with pytest.raises(LoraMismatchError, match="strict mode: .*high-noise expert"):
            validate(lora, ShapeSpec.from_variant("t2v-a14b-low-noise"), strict=True)
        assert validate(lora, ShapeSpec.from_variant("t2v-a14b-high-noise")).notes == []
    assert inspect_lora(by_name).architecture.startswith("Wan2.2 A14B high-noise expert (dim 5120)")
    # On shapes that are Wan2.1 T2V 14B's (which the experts share), the note says it cannot tell.
    rep = validate(by_name, ShapeSpec.from_state_dict(ShapeSpec.from_variant("t2v-14b").shapes))
    assert any("make sure this is the high-noise expert" in n for n in rep.notes)
    assert validate(_file(tmp_path, "plain.safetensors", 5120), ShapeSpec.from_variant("t2v-a14b-low-noise")).notes == []


def test_a_wan21_i2v_lora_on_wan22_i2v_drops_the_image_branch_and_says_so(tmp_path):
    lora = _file(tmp_path, "i2v21.safetensors", 5120, i2v=True)
    assert inspect_lora(lora).architecture.startswith("Wan2.1 I2V 14B (dim 5120)")
    rep = validate(lora, ShapeSpec.from_variant("i2v-a14b-high-noise"))
    assert rep.applied == ["blocks.0.self_attn.q"]
    assert "without a CLIP image branch (Wan2.2)" in rep.skipped["blocks.0.cross_attn.k_img"]
    assert any(n.startswith("this LoRA was trained for Wan2.1 I2V (image cross-attention), the model is Wan2.2 I2V "
                            "A14B high-noise expert (dim 5120)") for n in rep.notes)
