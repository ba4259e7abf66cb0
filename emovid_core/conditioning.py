"""Arithmetic on ComfyUI CONDITIONING lists: blend two emotions, apply an emotion intensity. Pure torch.

A CONDITIONING value is ``[[cond, extras], ...]``: ``cond`` a tensor ``[B, L, D]`` (for Wan's umt5,
``[1, 512, 4096]`` with padded positions zeroed), ``extras`` a dict that carries ``"pooled_output"`` (a tensor,
or None for T5-family encoders such as Wan's) plus model-specific keys. Several entries appear when CLIP
hooks schedule the encoding. The same functions work on raw ``[B, L, D]`` tensors from the diffusers text
encoder, which is how the headless path applies intensity.

Rules shared by both operations:

* Entries are combined pairwise, so both lists must have the same number of entries and equal tensor shapes;
  a mismatch is an error naming both shapes (ComfyUI's ConditioningAverage zero-pads instead, which silently
  changes what the sampler attends to).
* ``pooled_output`` is combined with the same weight; it must be a tensor in both or None in both.
* Every other extras key is copied, not combined: from the dominant side of a blend (``a`` when weight < 0.5,
  ``b`` otherwise), so blend weights 0 and 1 return the inputs unchanged; for intensity, from the full prompt.
* The math runs in float32 and the result is cast back to the first input's dtype and device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

POOLED = "pooled_output"


def _lerp(start: torch.Tensor, end: torch.Tensor, weight: float, what: str) -> torch.Tensor:
    if tuple(start.shape) != tuple(end.shape):
        raise ValueError(
            f"cannot combine {what}: shapes {tuple(start.shape)} and {tuple(end.shape)} differ. Both must come from the "
            "same text encoder with the same token length; Wan's umt5 pads every prompt to 512 tokens, so this happens "
            "with encoders that pad per 77-token chunk or with prompts over 512 tokens; shorten the caption"
        )
    end = end.to(device=start.device)
    # torch.lerp is exact at the end points (weight 0 gives start, 1 gives end) and extrapolates beyond 1.
    out = torch.lerp(start.float(), end.float(), float(weight))
    return out.to(dtype=start.dtype)


def check_conditioning(cond: Any, name: str = "conditioning") -> list:
    """Raise ValueError unless ``cond`` looks like ComfyUI CONDITIONING (a non-empty list of [tensor, dict])."""
    if not isinstance(cond, (list, tuple)) or not cond:
        raise ValueError(f"{name} must be a non-empty CONDITIONING list of [tensor, dict] pairs, got {type(cond).__name__}")
    for i, entry in enumerate(cond):
        if (
            not isinstance(entry, (list, tuple))
            or len(entry) != 2
            or not torch.is_tensor(entry[0])
            or not isinstance(entry[1], dict)
        ):
            raise ValueError(f"{name}[{i}] must be a [tensor, dict] pair (ComfyUI CONDITIONING), got {type(entry).__name__}")
        if entry[0].dim() != 3:
            raise ValueError(f"{name}[{i}] tensor must be [batch, tokens, dim], got shape {tuple(entry[0].shape)}")
    return list(cond)


def _combine(start: list, end: list, weight: float, extras_from_end: bool, names: tuple[str, str]) -> list:
    check_conditioning(start, names[0])
    check_conditioning(end, names[1])
    if len(start) != len(end):
        raise ValueError(
            f"{names[0]} has {len(start)} entries and {names[1]} has {len(end)}: encode both with the same CLIP "
            "(same hooks/schedule) so the entries pair up"
        )
    out = []
    for i, ((t0, d0), (t1, d1)) in enumerate(zip(start, end)):
        tensor = _lerp(t0, t1, weight, f"{names[0]}[{i}] and {names[1]}[{i}]")
        extras = dict(d1 if extras_from_end else d0)
        p0, p1 = d0.get(POOLED), d1.get(POOLED)
        if (p0 is None) != (p1 is None):
            raise ValueError(
                f"{names[0]}[{i}] and {names[1]}[{i}]: pooled_output is a tensor in one and None in the other; "
                "they come from different text encoders, encode both with the same CLIP"
            )
        if p0 is not None:
            extras[POOLED] = _lerp(p0, p1, weight, f"pooled_output of {names[0]}[{i}] and {names[1]}[{i}]")
        out.append([tensor, extras])
    return out


def blend_conditioning(a: list, b: list, weight: float) -> list:
    """Weighted average ``(1 - weight) * a + weight * b`` of two CONDITIONING lists (weight 0..1 = share of b)."""
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"blend weight {weight!r} must be in 0..1 (0 = first emotion only, 1 = second only)")
    return _combine(a, b, w, extras_from_end=w >= 0.5, names=("first", "second"))


def apply_intensity(full: list, base: list, intensity: float) -> list:
    """Move along the emotion direction: ``base + intensity * (full - base)``.

    ``full`` encodes the prompt with the emotion text, ``base`` the caption alone. Intensity 1 returns
    ``full``, 0 returns ``base``, 2 doubles the emotion's contribution.
    """
    from .emotions import check_intensity

    w = check_intensity(intensity)
    return _combine(base, full, w, extras_from_end=True, names=("caption-only", "with-emotion"))


def apply_intensity_tensor(full: torch.Tensor, base: torch.Tensor, intensity: float) -> torch.Tensor:
    """:func:`apply_intensity` on raw prompt embeddings ``[B, L, D]`` (diffusers ``prompt_embeds``)."""
    from .emotions import check_intensity

    return _lerp(base, full, check_intensity(intensity), "caption-only and with-emotion embeddings")


def blend_tensors(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """:func:`blend_conditioning` on raw prompt embeddings."""
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"blend weight {weight!r} must be in 0..1 (0 = first emotion only, 1 = second only)")
    return _lerp(a, b, w, "first and second embeddings")


# --- encoding with a ComfyUI CLIP object (duck-typed: no comfy import) -----------------------------------------


def encode_text(clip: Any, text: str) -> list:
    """Encode ``text`` exactly as ComfyUI's CLIPTextEncode does: ``clip.encode_from_tokens_scheduled(clip.tokenize(text))``.

    ``clip`` is anything with those two methods (ComfyUI's ``comfy.sd.CLIP``; the tests use a tiny torch one).
    """
    if clip is None:
        raise ValueError(
            "clip input is None: connect a text encoder (for Wan2.1: CLIPLoader with type 'wan' and "
            "umt5_xxl_fp8_e4m3fn_scaled.safetensors); a checkpoint without a text encoder gives None"
        )
    for method in ("tokenize", "encode_from_tokens_scheduled"):
        if not callable(getattr(clip, method, None)):
            raise ValueError(f"clip input {type(clip).__name__} has no {method}() method; connect a ComfyUI CLIP output")
    return check_conditioning(clip.encode_from_tokens_scheduled(clip.tokenize(text)), "text encoder output")


def _emotion_positive(encode, blend_fn, intensity_fn, caption, first, intensity, template, second, blend):
    """Shared recipe of :func:`encode_emotion` (CONDITIONING) and :func:`emotion_prompt_embeds` (tensors)."""
    from .prompts import PAPER_TEMPLATE, weighted_prompt

    template = PAPER_TEMPLATE if template is None else template
    wp = weighted_prompt(caption, first, template, intensity)
    if wp.weight == 0.0:
        # Intensity 0 is the caption alone whatever the emotions: skip encoding prompts that would cancel out.
        return encode(wp.base), [wp.base]
    texts = [wp.text]
    positive = encode(wp.text)
    if second is not None:
        other = weighted_prompt(caption, second, template, 1.0).text
        texts.append(other)
        positive = blend_fn(positive, encode(other), blend)
    if wp.needs_scaling:
        texts.append(wp.base)
        positive = intensity_fn(positive, encode(wp.base), wp.weight)
    return positive, texts


def emotion_prompt_embeds(
    encode: Callable[[str], torch.Tensor],
    caption: str,
    emotion: Any,
    intensity: float = 1.0,
    template: str | None = None,
    second_emotion: Any = None,
    blend: float = 0.5,
) -> tuple[torch.Tensor, list[str]]:
    """The positive prompt embeddings for the headless (diffusers) path, same recipe as the Encode node.

    ``encode(text)`` returns ``[B, L, D]`` embeddings (e.g. a wrapper around ``WanPipeline.encode_prompt`` with
    CFG off). Returns the embeddings and the texts encoded. Pass the result as ``prompt_embeds``; the weight
    syntax of :func:`~emovid_core.prompts.build_prompt` must never reach diffusers, which would read it literally.
    """
    from .emotions import get_emotion

    second = get_emotion(second_emotion) if second_emotion is not None else None
    return _emotion_positive(
        encode, blend_tensors, apply_intensity_tensor, caption, get_emotion(emotion), intensity, template, second, blend
    )


@dataclass
class EmotionEncoding:
    """What :func:`encode_emotion` produced, with the texts it encoded (for display and logs)."""

    positive: list
    negative: list
    texts: list[str]  # every positive text encoded, in order (emotion, second emotion, caption-only base)
    negative_text: str


def encode_emotion(
    clip: Any,
    caption: str,
    emotion: Any,
    intensity: float = 1.0,
    template: str | None = None,
    second_emotion: Any = None,
    blend: float = 0.5,
    negative_base: str | None = None,
    negative_add_opposite: bool = False,
) -> EmotionEncoding:
    """Positive and negative CONDITIONING for ``caption`` in ``emotion`` with ComfyUI's CLIP interface.

    * positive = encoding of the paper prompt (``template``, default :data:`~emovid_core.prompts.PAPER_TEMPLATE`);
    * with ``second_emotion``: the weighted average of both prompts' encodings, ``blend`` = share of the second;
    * intensity != 1: ``base + intensity * (positive - base)`` with base = the caption alone (see
      :mod:`emovid_core.prompts` for why intensity is applied to the encodings here, not through text syntax);
    * negative = ``negative_base`` (Wan2.1's standard negative by default), plus the opposite-valence emotions
      when ``negative_add_opposite`` (the second emotion of a blend is never added to the negative).
    """
    from .emotions import get_emotion
    from .prompts import WAN_NEGATIVE_PROMPT, negative_prompt

    first = get_emotion(emotion)
    second = get_emotion(second_emotion) if second_emotion is not None else None
    positive, texts = _emotion_positive(
        lambda text: encode_text(clip, text), blend_conditioning, apply_intensity,
        caption, first, intensity, template, second, blend,
    )
    neg_text = negative_prompt(
        first,
        add_opposite=negative_add_opposite,
        base=WAN_NEGATIVE_PROMPT if negative_base is None else negative_base,
        exclude=[second] if second is not None else [],
    )
    return EmotionEncoding(positive, encode_text(clip, neg_text), texts, neg_text)
