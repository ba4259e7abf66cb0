"""The original Wan2.1 layout facts: tiny checkpoint shapes/counts and the original <-> diffusers rename table."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from emovid_core.wan import dit_keys as wl
from emovid_core.wan.variants import detect_variant, get_variant


@pytest.mark.parametrize("in_dim,count", [(16, 15 + 27 * 2), (36, 23 + 32 * 2)])
def test_tiny_state_dict_matches_comfyui_layout(in_dim, count):
    sd = wl.tiny_wan_state_dict(dim=128, ffn=256, layers=2, in_dim=in_dim, seed=1)
    assert len(sd) == count  # tensor counts from ComfyUI's Wan2.1 layout: T2V 15+27L, I2V 23+32L
    assert sd["head.modulation"].shape == (1, 2, 128)
    assert sd["text_embedding.0.weight"].shape == (128, 4096)
    assert sd["patch_embedding.weight"].shape == (128, in_dim, 1, 2, 2)
    assert ("img_emb.proj.0.bias" in sd) == (in_dim == 36)  # ComfyUI's i2v trigger
    assert torch.all(sd["blocks.0.self_attn.norm_q.weight"] == 1)
    assert all(torch.isfinite(v).all() for v in sd.values())
    v = detect_variant({k: t.shape for k, t in sd.items()})
    assert (v.dim, v.ffn_dim, v.num_layers, v.in_dim, v.i2v) == (128, 256, 2, in_dim, in_dim == 36)
    # Same seed, same weights; another seed differs.
    assert torch.equal(sd["blocks.1.ffn.0.weight"], wl.tiny_wan_state_dict(in_dim=in_dim, seed=1)["blocks.1.ffn.0.weight"])
    assert not torch.equal(sd["blocks.1.ffn.0.weight"], wl.tiny_wan_state_dict(in_dim=in_dim, seed=2)["blocks.1.ffn.0.weight"])


def test_bad_dim_is_explained():
    with pytest.raises(ValueError, match="dim=100 .*multiple of 128"):
        wl.tiny_wan_state_dict(dim=100)


@pytest.mark.parametrize("in_dim", [16, 36])
def test_rename_table_loads_into_diffusers_transformer(in_dim):
    from diffusers import WanTransformer3DModel

    sd = wl.tiny_wan_state_dict(in_dim=in_dim)
    variant = detect_variant({k: t.shape for k, t in sd.items()})
    model = WanTransformer3DModel(**wl.diffusers_transformer_config(variant, num_heads=2))
    renamed = wl.original_to_diffusers_state_dict(sd)
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    assert missing == [] and unexpected == []
    assert all(wl.diffusers_to_original(k) == k2 for k, k2 in zip(renamed, sd))


def test_name_maps():
    assert wl.original_to_diffusers("blocks.3.self_attn.o.weight") == "blocks.3.attn1.to_out.0.weight"
    assert wl.original_to_diffusers("blocks.3.cross_attn.k_img") == "blocks.3.attn2.add_k_proj"
    assert wl.original_to_diffusers("blocks.0.norm3.bias") == "blocks.0.norm2.bias"  # the swapped norms
    assert wl.diffusers_to_original("blocks.7.ffn.net.0.proj") == "blocks.7.ffn.0"
    assert wl.diffusers_to_original("blocks.7.attn2.to_q") == "blocks.7.cross_attn.q"
    assert wl.flat_to_original("blocks_12_cross_attn_v_img") == "blocks.12.cross_attn.v_img"
    assert wl.flat_to_original("blocks_29.self_attn.q") == "blocks.29.self_attn.q"
    assert wl.flat_to_original("blocks_0_nonsense") is None
    assert wl.is_i2v_only("blocks.0.cross_attn.k_img") and not wl.is_i2v_only("blocks.0.cross_attn.k")


def test_write_tiny_wan_is_a_readable_safetensors(tmp_path):
    path = wl.write_tiny_wan(tmp_path / "tiny.safetensors", prefix="model.diffusion_model.")
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert "model.diffusion_model.head.modulation" in keys and len(keys) == 69
    assert not list(tmp_path.glob("*.tmp"))


def test_variant_shapes_14b():
    shapes = get_variant("t2v-14B").param_shapes()  # the LoRA check's released spelling of t2v-14b
    assert shapes["blocks.39.ffn.0.weight"] == (13824, 5120)
    assert "blocks.40.ffn.0.weight" not in shapes
    assert sum(1 for _ in shapes) == 15 + 27 * 40
