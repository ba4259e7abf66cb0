"""Key layouts of the single files ComfyUI users have, and conversions between them and diffusers.

* transformer: diffusers ``WanTransformer3DModel`` -> original Wan names (what ComfyUI's UNETLoader reads);
  the reverse is diffusers' own ``convert_wan_transformer_to_diffusers`` (used through ``from_single_file``).
* VAE: diffusers ``AutoencoderKLWan`` -> original Wan VAE names (ComfyUI's ``wan_2.1_vae.safetensors``);
  the reverse is ``convert_wan_vae_to_diffusers``.
* umt5 text encoder: the HF/ComfyUI layout (``encoder.block.N.layer.0.SelfAttention.q.weight``) is what
  transformers loads; the original Wan layout (``blocks.N.attn.q.weight``) is mapped to it here.

The export direction exists so the tiny test model can be written as the same single files users have
and be loaded back through the real single-file path.
"""

from __future__ import annotations

import re

# --------------------------------------------------------------------------------------- transformer

def transformer_key_to_original(key: str) -> str:
    """One diffusers ``WanTransformer3DModel`` key in original Wan names (no ``diffusion_model.`` prefix).

    The name tables live in :mod:`emovid_core.wan.dit_keys`, shared with the LoRA converters.
    """
    from .dit_keys import diffusers_to_original

    name = diffusers_to_original(key)
    if name is None:
        raise KeyError(f"no original Wan name for transformer key {key!r}")
    return name


def transformer_to_original(state_dict: dict, prefix: str = "") -> dict:
    """A diffusers transformer state dict renamed to the original layout (``prefix`` e.g. ``model.diffusion_model.``)."""
    return {prefix + transformer_key_to_original(k): v for k, v in state_dict.items()}


# ----------------------------------------------------------------------------------------------- VAE

_RES = {"norm1.gamma": "residual.0.gamma", "conv1.": "residual.2.", "norm2.gamma": "residual.3.gamma",
        "conv2.": "residual.6.", "conv_shortcut.": "shortcut."}


def _res(rest: str) -> str:
    for src, dst in _RES.items():
        if rest.startswith(src):
            return dst + rest[len(src):]
    return rest


def vae_key_to_original(key: str) -> str:
    """One diffusers ``AutoencoderKLWan`` key in the original Wan VAE layout.

    The original decoder is a flat list: per level ``num_res_blocks + 1`` residual blocks then one upsampler,
    i.e. indices 0-2 + 3, 4-6 + 7, 8-10 + 11, 12-14 for the released [1, 2, 4, 4] / 2-block config, which is
    the only layout diffusers' reverse converter understands.
    """
    simple = {"quant_conv.": "conv1.", "post_quant_conv.": "conv2.",
              "encoder.conv_in.": "encoder.conv1.", "decoder.conv_in.": "decoder.conv1.",
              "encoder.norm_out.gamma": "encoder.head.0.gamma", "decoder.norm_out.gamma": "decoder.head.0.gamma",
              "encoder.conv_out.": "encoder.head.2.", "decoder.conv_out.": "decoder.head.2."}
    for src, dst in simple.items():
        if key.startswith(src):
            return dst + key[len(src):]
    m = re.match(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)$", key)
    if m:
        side, kind, i, rest = m.groups()
        if kind == "attentions":
            return f"{side}.middle.1.{rest}"
        return f"{side}.middle.{0 if i == '0' else 2}.{_res(rest)}"
    m = re.match(r"encoder\.down_blocks\.(\d+)\.(.+)$", key)
    if m:
        i, rest = m.groups()
        return f"encoder.downsamples.{i}.{_res(rest)}"
    m = re.match(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.+)$", key)
    if m:
        b, kind, r, rest = m.groups()
        if kind == "upsamplers":
            return f"decoder.upsamples.{4 * int(b) + 3}.{rest}"
        return f"decoder.upsamples.{4 * int(b) + int(r)}.{_res(rest)}"
    raise KeyError(f"no original Wan VAE name for key {key!r}")


def vae_to_original(state_dict: dict) -> dict:
    return {vae_key_to_original(k): v for k, v in state_dict.items()}


def check_vae_exportable(config: dict) -> None:
    if list(config.get("dim_mult", [])) != [1, 2, 4, 4] or config.get("num_res_blocks") != 2:
        raise ValueError(
            "only a Wan VAE with dim_mult [1, 2, 4, 4] and num_res_blocks 2 (the released layout) can be written in the "
            f"original layout; got dim_mult {config.get('dim_mult')}, num_res_blocks {config.get('num_res_blocks')}"
        )


# ---------------------------------------------------------------------------------------- umt5 / CLIP

# Original Wan T5 encoder names (Wan2.1 repo, Kijai's umt5-xxl-enc-*.safetensors) -> transformers UMT5.
_T5_BLOCK = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}
_T5_PREFIXES = ("text_encoders.umt5xxl.transformer.", "umt5xxl.transformer.", "transformer.", "model.")


def text_encoder_layout(keys) -> str:
    keys = list(keys)
    if any(k.endswith("SelfAttention.q.weight") for k in keys):
        return "hf"
    if any(re.match(r"blocks\.\d+\.attn\.q\.weight$", k) for k in keys):
        return "wan"
    return "unknown"


def text_encoder_to_hf(state_dict: dict) -> dict:
    """A umt5 encoder state dict (HF/ComfyUI or original Wan names) in transformers ``UMT5EncoderModel`` names."""
    sd = {}
    for k, v in state_dict.items():
        for p in _T5_PREFIXES:
            if k.startswith(p) and not k.startswith("encoder."):
                k = k[len(p):]
                break
        sd[k] = v
    layout = text_encoder_layout(sd)
    if layout == "hf":
        # ComfyUI files may embed the tokenizer as a 'spiece_model' tensor; the tokenizer is loaded from its folder.
        sd = {k: v for k, v in sd.items() if k.startswith(("shared.", "encoder."))}
    elif layout == "wan":
        out = {}
        for k, v in sd.items():
            if k == "token_embedding.weight":
                out["shared.weight"] = v
            elif k == "norm.weight":
                out["encoder.final_layer_norm.weight"] = v
            else:
                m = re.match(r"blocks\.(\d+)\.(.+)$", k)
                if not m or m.group(2) not in _T5_BLOCK:
                    raise KeyError(f"unexpected key {k!r} in an original-layout umt5 file")
                out[f"encoder.block.{m.group(1)}.{_T5_BLOCK[m.group(2)]}"] = v
        sd = out
    else:
        sample = ", ".join(list(state_dict)[:5])
        raise ValueError(f"not a umt5 text encoder (keys neither HF 'encoder.block.N.layer…' nor Wan 'blocks.N.attn…'): {sample}")
    if "encoder.embed_tokens.weight" not in sd and "shared.weight" in sd:
        sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
    if "shared.weight" not in sd and "encoder.embed_tokens.weight" in sd:
        sd["shared.weight"] = sd["encoder.embed_tokens.weight"]
    return sd


def image_encoder_to_hf(state_dict: dict, own_keys=None) -> dict:
    """A CLIP vision state dict (ComfyUI's clip_vision_h / HF) in transformers ``CLIPVisionModel`` names.

    Files name the tower ``vision_model.*``; transformers 5's ``CLIPVisionModel`` has no such prefix in its own
    state dict, so with ``own_keys`` given the prefix is added or dropped to match the model.
    """
    if not any(k.startswith(("vision_model.", "embeddings.patch_embedding")) for k in state_dict):
        sample = ", ".join(list(state_dict)[:5])
        raise ValueError(
            "not a CLIP vision file in HF layout (no 'vision_model.*' keys; open_clip 'visual.*' files are not supported, "
            f"use ComfyUI's clip_vision_h.safetensors): {sample}"
        )
    sd = {}
    for k, v in state_dict.items():
        k = k[len("vision_model."):] if k.startswith("vision_model.") else k
        # visual_projection / text_model are not used: Wan reads the penultimate hidden states.
        if k.startswith(("embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm.")) and not k.endswith("position_ids"):
            sd[k] = v
    if own_keys is None or any(k.startswith("vision_model.") for k in own_keys):
        sd = {"vision_model." + k: v for k, v in sd.items()}
    return sd
