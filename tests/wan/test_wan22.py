"""Wan2.2 rows of the one variant table: A14B high-/low-noise experts and TI2V-5B, detected from shapes, never built."""

from __future__ import annotations

import pytest

from emovid_core.lora import ShapeSpec
from emovid_core.wan.variants import detect_variant, get_variant, match_variant, shipped_variant_names, transformer_arch


def _arch(name):
    return transformer_arch({k: list(s) for k, s in get_variant(name).param_shapes().items()})


def test_wan22_rows_carry_the_published_shapes():
    five = get_variant("ti2v-5b")
    assert (five.dim, five.ffn_dim, five.num_layers, five.in_dim, five.out_dim) == (3072, 14336, 30, 48, 48)
    assert get_variant("Wan2.2-TI2V-5B") is five and not five.has_image_branch
    for task, in_dim in (("t2v", 16), ("i2v", 36)):
        for expert in ("high_noise", "low_noise"):
            v = get_variant(f"{task}-a14b-{expert.replace('_', '-')}")
            assert (v.dim, v.ffn_dim, v.num_layers, v.in_dim, v.out_dim) == (5120, 13824, 40, in_dim, 16)
            assert v.generation == "Wan2.2" and v.expert == expert and v.family == "Wan2.2 A14B"
            assert "img_emb.proj.1.weight" not in v.param_shapes()  # Wan2.2 I2V has no CLIP image branch
            assert not any(k.endswith("k_img.weight") for k in v.param_shapes())


def test_detection_from_shapes_tells_what_the_tensors_can_tell():
    assert detect_variant(get_variant("ti2v-5b").param_shapes()).name == "ti2v-5b"  # dim 3072, out_dim 48
    # Wan2.2 I2V A14B = 14B blocks, in_dim 36, no img_emb: not Wan2.1 I2V (which has k_img/v_img + img_emb).
    got = match_variant(_arch("i2v-a14b-low-noise"))
    assert got.generation == "Wan2.2" and got.i2v and got.expert  # both experts share one shape set
    assert match_variant(_arch("i2v-14b-480p")).name == "i2v-14b-480p"
    # The T2V experts have Wan2.1 T2V 14B's shapes exactly: detection says Wan2.1, a name picks the expert.
    assert match_variant(_arch("t2v-a14b-high-noise")).name == "t2v-14b"
    assert match_variant(_arch("t2v-14b"), "t2v-a14b-high-noise").expert == "high_noise"
    assert ShapeSpec.from_variant("i2v-a14b-high-noise").describe().endswith("I2V")


def test_wan22_rows_are_detected_but_never_loaded():
    assert "ti2v-5b" in shipped_variant_names() and "ti2v-5b" not in shipped_variant_names(loadable=True)
    assert shipped_variant_names(loadable=True) == ["t2v-1.3b", "t2v-14b", "i2v-14b-480p", "i2v-14b-720p"]
    with pytest.raises(ValueError, match=r"Wan2.2 TI2V 5B \(ti2v-5b\) is recognised, but the pack builds Wan2.1 pipelines"):
        get_variant("ti2v-5b").config_dir("transformer")
    from nodes.wan import _variants

    assert "t2v-a14b-high-noise" not in _variants()  # the loader node offers what it can build
