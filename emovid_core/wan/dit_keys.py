"""Facts about the ORIGINAL Wan2.1 DiT key layout (what ComfyUI's UNETLoader reads) and its diffusers twin.

Everything LoRA-related in the pack is keyed by original module names (``blocks.0.self_attn.q``,
``blocks.3.cross_attn.k_img``, ``blocks.1.ffn.0``); this module is the single source for those names, the
``diffusion_model.`` prefixes files put before them, their shapes given a variant's numbers (the variants themselves
are rows of :mod:`emovid_core.wan.variants`), the original <-> diffusers ``WanTransformer3DModel`` rename table, and
a tiny random-weight checkpoint in the original layout that ComfyUI detects as Wan2.1 (tests and the integration
check use it).

Shapes follow ComfyUI 0.3.64 ``comfy/ldm/wan/model.py``: D = dim (a multiple of 128, since ComfyUI derives the
head count as dim // 128), F = ffn_dim, C = in_dim (16 T2V, 36 I2V); the text width 4096, frequency width 256,
CLIP width 1280 and output 16x(1*2*2) are fixed by the loader, so a tiny model keeps them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import torch

TEXT_DIM = 4096  # umt5-xxl width; ComfyUI never reads it from the file
FREQ_DIM = 256
CLIP_DIM = 1280  # ViT-H penultimate width used by Wan I2V
OUT_DIM = 16
PATCH = (1, 2, 2)
HEAD_DIM = 128  # ComfyUI: num_heads = dim // 128

# Linear layers inside one block, original names relative to ``blocks.N.``.
BLOCK_LINEARS_T2V = (
    "self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o",
    "cross_attn.q", "cross_attn.k", "cross_attn.v", "cross_attn.o",
    "ffn.0", "ffn.2",
)
BLOCK_LINEARS_I2V_EXTRA = ("cross_attn.k_img", "cross_attn.v_img")
# Image-conditioning modules: present only in I2V models; an I2V LoRA's keys on these are dropped for T2V.
I2V_ONLY_BLOCK_MODULES = ("cross_attn.k_img", "cross_attn.v_img", "cross_attn.norm_k_img")
I2V_ONLY_TOP_PREFIX = "img_emb."

# Every module (or bare parameter) of a block, original name -> diffusers name (relative to ``blocks.N.``).
# Note the swapped norms: original norm3 (affine, before cross-attention) is diffusers norm2.
BLOCK_ORIGINAL_TO_DIFFUSERS = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    "norm3": "norm2",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
    "modulation": "scale_shift_table",
}
TOP_ORIGINAL_TO_DIFFUSERS = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "img_emb.emb_pos": "condition_embedder.image_embedder.pos_embed",
    "head.head": "proj_out",
    "head.modulation": "scale_shift_table",
}
BLOCK_DIFFUSERS_TO_ORIGINAL = {v: k for k, v in BLOCK_ORIGINAL_TO_DIFFUSERS.items()}
TOP_DIFFUSERS_TO_ORIGINAL = {v: k for k, v in TOP_ORIGINAL_TO_DIFFUSERS.items()}

# Flattened (kohya/musubi ``lora_unet_``) spelling: "." -> "_". Block-relative names are unambiguous once
# flattened, so a lookup table turns ``self_attn_k_img`` back into ``self_attn.k_img``.
_BLOCK_FLAT = {k.replace(".", "_"): k for k in BLOCK_ORIGINAL_TO_DIFFUSERS}
_TOP_FLAT = {k.replace(".", "_"): k for k in TOP_ORIGINAL_TO_DIFFUSERS}
# Some kohya-style trainers flatten diffusers names instead (``blocks_0_attn1_to_q``); map those too. The two
# flat vocabularies do not overlap (diffusers "norm2" = original norm3, original "norm2" has no weights).
_BLOCK_FLAT_DIFFUSERS = {v.replace(".", "_"): k for k, v in BLOCK_ORIGINAL_TO_DIFFUSERS.items()}
_TOP_FLAT_DIFFUSERS = {v.replace(".", "_"): k for k, v in TOP_ORIGINAL_TO_DIFFUSERS.items()}
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")
_FLAT_BLOCK_RE = re.compile(r"^blocks_(\d+)_(.+)$")


def _split_param(name: str) -> tuple[str, str]:
    """``blocks.0.self_attn.q.weight`` -> (``blocks.0.self_attn.q``, ``.weight``); bare parameters keep ''."""
    for suffix in (".weight", ".bias"):
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def original_to_diffusers(name: str) -> str | None:
    """Original module or parameter name -> diffusers name (None when it has no diffusers twin)."""
    stem, suffix = _split_param(name)
    m = _BLOCK_RE.match(stem)
    if m:
        rel = BLOCK_ORIGINAL_TO_DIFFUSERS.get(m.group(2))
        return None if rel is None else f"blocks.{m.group(1)}.{rel}{suffix}"
    top = TOP_ORIGINAL_TO_DIFFUSERS.get(stem)
    return None if top is None else top + suffix


def diffusers_to_original(name: str) -> str | None:
    """Diffusers module or parameter name -> original name (None when it is not a Wan2.1 module)."""
    stem, suffix = _split_param(name)
    m = _BLOCK_RE.match(stem)
    if m:
        rel = BLOCK_DIFFUSERS_TO_ORIGINAL.get(m.group(2))
        return None if rel is None else f"blocks.{m.group(1)}.{rel}{suffix}"
    top = TOP_DIFFUSERS_TO_ORIGINAL.get(stem)
    return None if top is None else top + suffix


def flat_to_original(flat: str) -> str | None:
    """Kohya-flattened module name (``blocks_0_cross_attn_k_img``) -> original (``blocks.0.cross_attn.k_img``).

    Accepts mixed separators (``blocks_29.self_attn.q``) because some trainers flatten only the prefix.
    """
    flat = flat.replace(".", "_")
    m = _FLAT_BLOCK_RE.match(flat)
    if m:
        rel = _BLOCK_FLAT.get(m.group(2)) or _BLOCK_FLAT_DIFFUSERS.get(m.group(2))
        return None if rel is None else f"blocks.{m.group(1)}.{rel}"
    return _TOP_FLAT.get(flat) or _TOP_FLAT_DIFFUSERS.get(flat)


def original_to_flat(name: str) -> str:
    return name.replace(".", "_")


def block_index(name: str) -> int | None:
    """Block number of an original (or diffusers) module name, None for top-level modules."""
    m = _BLOCK_RE.match(name)
    return int(m.group(1)) if m else None


def is_i2v_only(name: str) -> bool:
    """True for modules that exist only in I2V models (image cross-attention K/V, the CLIP projection)."""
    if name.startswith(I2V_ONLY_TOP_PREFIX):
        return True
    m = _BLOCK_RE.match(_split_param(name)[0])
    return bool(m) and m.group(2) in I2V_ONLY_BLOCK_MODULES


def param_shapes(dim: int, ffn_dim: int, num_layers: int, in_dim: int = 16, out_dim: int = OUT_DIM,
                 image_branch: bool | None = None) -> dict[str, tuple[int, ...]]:
    """Every parameter of an original-layout Wan DiT, name -> shape (insertion order = file order).

    The numbers are a variant's (:meth:`emovid_core.wan.variants.Variant.param_shapes` passes its row's);
    ``image_branch`` (the CLIP ``img_emb`` projection and image cross-attention) defaults to Wan2.1's rule, in_dim 36.
    """
    if dim % HEAD_DIM or dim <= 0:
        raise ValueError(f"dim={dim} is not a positive multiple of {HEAD_DIM}; ComfyUI derives heads as dim // 128 "
                         "(use 128, 256, 1536 or 5120)")
    if in_dim <= 0 or out_dim <= 0:
        raise ValueError(f"in_dim={in_dim}, out_dim={out_dim}: latent widths must be positive (Wan2.1: in_dim 16 T2V "
                         "or 36 I2V, out_dim 16)")
    i2v = in_dim == 36 if image_branch is None else bool(image_branch)
    d, f = dim, ffn_dim
    s: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (d, in_dim, *PATCH),
        "patch_embedding.bias": (d,),
        "text_embedding.0.weight": (d, TEXT_DIM),
        "text_embedding.0.bias": (d,),
        "text_embedding.2.weight": (d, d),
        "text_embedding.2.bias": (d,),
        "time_embedding.0.weight": (d, FREQ_DIM),
        "time_embedding.0.bias": (d,),
        "time_embedding.2.weight": (d, d),
        "time_embedding.2.bias": (d,),
        "time_projection.1.weight": (6 * d, d),
        "time_projection.1.bias": (6 * d,),
    }
    for i in range(num_layers):
        b = f"blocks.{i}."
        for attn in ("self_attn", "cross_attn"):
            for p in ("q", "k", "v", "o"):
                s[f"{b}{attn}.{p}.weight"] = (d, d)
                s[f"{b}{attn}.{p}.bias"] = (d,)
            if i2v and attn == "cross_attn":
                for p in ("k_img", "v_img"):
                    s[f"{b}{attn}.{p}.weight"] = (d, d)
                    s[f"{b}{attn}.{p}.bias"] = (d,)
            s[f"{b}{attn}.norm_q.weight"] = (d,)
            s[f"{b}{attn}.norm_k.weight"] = (d,)
            if i2v and attn == "cross_attn":
                s[f"{b}{attn}.norm_k_img.weight"] = (d,)
        s[f"{b}norm3.weight"] = (d,)
        s[f"{b}norm3.bias"] = (d,)
        s[f"{b}ffn.0.weight"] = (f, d)
        s[f"{b}ffn.0.bias"] = (f,)
        s[f"{b}ffn.2.weight"] = (d, f)
        s[f"{b}ffn.2.bias"] = (d,)
        s[f"{b}modulation"] = (1, 6, d)
    s["head.head.weight"] = (out_dim * PATCH[0] * PATCH[1] * PATCH[2], d)
    s["head.head.bias"] = (out_dim * PATCH[0] * PATCH[1] * PATCH[2],)
    s["head.modulation"] = (1, 2, d)
    if i2v:
        s["img_emb.proj.0.weight"] = (CLIP_DIM,)
        s["img_emb.proj.0.bias"] = (CLIP_DIM,)
        s["img_emb.proj.1.weight"] = (CLIP_DIM, CLIP_DIM)
        s["img_emb.proj.1.bias"] = (CLIP_DIM,)
        s["img_emb.proj.3.weight"] = (d, CLIP_DIM)
        s["img_emb.proj.3.bias"] = (d,)
        s["img_emb.proj.4.weight"] = (d,)
        s["img_emb.proj.4.bias"] = (d,)
    return s


# The prefixes ComfyUI files and state dicts put before original names; every reader strips them here.
ORIGINAL_PREFIXES = ("model.diffusion_model.", "diffusion_model.")


def strip_prefix(name: str) -> str:
    """Drop the ``model.diffusion_model.`` / ``diffusion_model.`` prefix ComfyUI files and state dicts carry."""
    for p in ORIGINAL_PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def strip_prefixes(named: Mapping[str, object]) -> dict[str, object]:
    """:func:`strip_prefix` on every key of a mapping (a state dict or a ``{name: shape}`` table)."""
    return {strip_prefix(k): v for k, v in named.items()}


def tiny_wan_state_dict(
    dim: int = 128, ffn: int = 256, layers: int = 2, in_dim: int = 16, seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """A random-weight Wan2.1 DiT in the original key layout, small enough for CPU tests.

    ComfyUI's UNETLoader detects it (WAN21_T2V, or WAN21_I2V with ``in_dim=36``) with nothing missing. The init
    keeps sampling finite: norms 1, biases 0.01*N(0,1), modulation 0.05*N(0,1), weights N(0, 1/fan_in).
    """
    gen = torch.Generator().manual_seed(int(seed))
    out: dict[str, torch.Tensor] = {}
    for name, shape in param_shapes(dim, ffn, layers, in_dim).items():
        stem = _split_param(name)[0]
        leaf = stem.rsplit(".", 1)[-1]
        is_norm = (leaf.startswith("norm") or stem in ("img_emb.proj.0", "img_emb.proj.4"))
        if name.endswith("modulation"):
            t = 0.05 * torch.randn(shape, generator=gen)
        elif is_norm and name.endswith(".weight"):
            t = torch.ones(shape)
        elif name.endswith(".bias"):
            t = 0.01 * torch.randn(shape, generator=gen)
        else:
            fan_in = 1
            for n in shape[1:]:
                fan_in *= n
            t = torch.randn(shape, generator=gen) / fan_in**0.5
        out[name] = t.to(dtype).contiguous()
    return out


def write_tiny_wan(path: str | os.PathLike, prefix: str = "", **kwargs) -> Path:
    """Write :func:`tiny_wan_state_dict` as a checkpoint UNETLoader can load (``prefix`` e.g. ``model.diffusion_model.``)."""
    from ..atomic import save_safetensors

    sd = tiny_wan_state_dict(**kwargs)
    return save_safetensors({prefix + k: v for k, v in sd.items()}, path)


def diffusers_transformer_config(variant, num_heads: int | None = None, text_dim: int = TEXT_DIM,
                                 image_dim: int = CLIP_DIM) -> dict:
    """The ``WanTransformer3DModel`` config matching a :class:`emovid_core.wan.variants.Variant` (heads x head_dim = dim)."""
    heads = num_heads or variant.num_heads
    if variant.dim % heads:
        raise ValueError(f"dim {variant.dim} is not divisible by num_heads {heads}")
    return {
        "patch_size": list(PATCH), "num_attention_heads": heads, "attention_head_dim": variant.dim // heads,
        "in_channels": variant.in_dim, "out_channels": variant.out_dim, "text_dim": text_dim, "freq_dim": FREQ_DIM,
        "ffn_dim": variant.ffn_dim, "num_layers": variant.num_layers, "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads", "eps": 1e-6,
        "image_dim": image_dim if variant.has_image_branch else None,
        "added_kv_proj_dim": variant.dim if variant.has_image_branch else None,
        "rope_max_seq_len": 1024,
    }


def original_to_diffusers_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an original-layout state dict to diffusers names (tensors shared, not copied)."""
    out = {}
    for k, v in sd.items():
        new = original_to_diffusers(strip_prefix(k))
        if new is None:
            raise ValueError(f"parameter {k!r} has no diffusers counterpart in the Wan2.1 rename table")
        out[new] = v
    return out
