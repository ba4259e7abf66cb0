"""Emotion prompts: the paper's template, user templates, intensity, negative prompts and the 8-emotion sweep.

EmoVid's benchmark prompt is the clip's caption with an explicit emotion sentence appended
(``{caption} The video is in the "{emotion}" emotion.``). The EmoVid LoRA learned emotion only through that
text, so :data:`PAPER_TEMPLATE` is the default everywhere and intensity 1 reproduces it byte for byte.

Caption handling (decided here; the paper does not say): the caption is stripped of leading and trailing
whitespace, and the rendered prompt is stripped too, so an empty caption gives just the emotion sentence
(``The video is in the "fear" emotion.``) without a leading space. Nothing else is added or removed: a
caption without a final period is used as is, exactly as the paper "appends" the sentence.

Intensity (0..2) has two encodings, because text alone cannot carry a weight through every text encoder:

* ComfyUI text (:func:`build_prompt`): the emotion part of the template is wrapped in ComfyUI's prompt-weight
  syntax, ``(The video is in the "fear" emotion.:1.3)``. ComfyUI's tokenizer (``comfy/sd1_clip.py``
  ``token_weights``) parses it for every CLIP/T5 encoder, including the umt5 encoder Wan loads with
  ``CLIPLoader(type="wan")``: each weighted token's embedding becomes ``empty + w * (z - empty)``, and for
  umt5 the empty prompt's padded positions are zero, so the sentence's token embeddings are simply scaled by w.
  Intensity 0 drops the emotion text (caption only); 1 is the plain paper prompt with no syntax at all.
* Everything that does not parse that syntax (diffusers' Wan pipeline, the CONDITIONING path of the Encode
  node): :func:`weighted_prompt` returns the plain paper text, the caption-only text and the weight, and
  :func:`emovid_core.conditioning.apply_intensity` moves the encoding along the emotion direction,
  ``base + w * (full - base)``. Weight 1 is the paper encoding exactly, 0 the caption-only encoding.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Iterable

from .emotions import EMOTIONS, Emotion, check_intensity, get_emotion, opposite_valence

PAPER_TEMPLATE = '{caption} The video is in the "{emotion}" emotion.'

# Wan2.1's standard negative prompt: `sample_neg_prompt` in Wan-Video/Wan2.1 wan/configs/shared_config.py
# (byte-exact as of commit 9737cba9, fullwidth commas), the text ComfyUI's official Wan templates put in the
# negative CLIPTextEncode.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

PLACEHOLDERS = ("caption", "emotion", "valence", "arousal")
REQUIRED_PLACEHOLDERS = ("caption", "emotion")


@dataclass(frozen=True)
class WeightedPrompt:
    """A prompt split for encoders that take no weight syntax.

    ``text`` is the full prompt at weight 1 (the exact paper prompt with the default template), ``base`` the
    same template with the emotion parts removed (the caption alone), ``weight`` the intensity to apply as
    ``base + weight * (text - base)`` on the encodings. ``emotion_text`` is what the weight applies to.
    """

    text: str
    base: str
    emotion_text: str
    weight: float

    @property
    def needs_scaling(self) -> bool:
        return self.weight != 1.0


def _template_error(template: str, problem: str) -> ValueError:
    return ValueError(
        f"prompt template {template!r}: {problem}. Placeholders are {', '.join('{' + p + '}' for p in PLACEHOLDERS)}; "
        f"write a literal brace as '{{{{' or '}}}}'. The paper's template is {PAPER_TEMPLATE!r}"
    )


def parse_template(template: str) -> list[tuple[str, str | None]]:
    """Split ``template`` into (literal text, placeholder or None) pieces, validating it.

    Raises ValueError naming unknown placeholders, malformed braces, format specs, or a missing
    ``{caption}``/``{emotion}``.
    """
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"prompt template must be a non-empty string, got {template!r}; the paper's is {PAPER_TEMPLATE!r}")
    try:
        raw = list(string.Formatter().parse(template))
    except ValueError as exc:  # "Single '}' encountered", "expected '}' before end of string"
        raise _template_error(template, f"malformed braces ({exc})") from None
    pieces: list[tuple[str, str | None]] = []
    unknown: list[str] = []
    for literal, field, spec, conversion in raw:
        if field is None:
            pieces.append((literal, None))
            continue
        if field == "":
            raise _template_error(template, "empty placeholder '{}'")
        if field not in PLACEHOLDERS:
            unknown.append("{" + field + "}")
            continue
        if spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise _template_error(template, f"placeholder {shown} has a format spec or conversion; use plain {{{field}}}")
        pieces.append((literal, field))
    if unknown:
        raise _template_error(template, f"unknown placeholder(s) {', '.join(unknown)}")
    used = [f for _, f in pieces if f]
    missing = [p for p in REQUIRED_PLACEHOLDERS if p not in used]
    if missing:
        raise _template_error(template, f"missing {' and '.join('{' + m + '}' for m in missing)}")
    if used.count("caption") > 1:
        raise _template_error(template, "{caption} appears more than once")
    return pieces


def validate_template(template: str) -> str:
    """Return ``template`` unchanged if valid, else raise ValueError (see :func:`parse_template`)."""
    parse_template(template)
    return template


def _values(emotion: Emotion) -> dict[str, str]:
    return {"emotion": emotion.name, "valence": emotion.valence, "arousal": emotion.arousal_level}


def _split(caption: str, emotion: str | Emotion, template: str) -> tuple[str, str, str]:
    """Render ``template`` as (text before the caption, caption, text after the caption)."""
    if not isinstance(caption, str):
        raise ValueError(f"caption must be a string, got {type(caption).__name__}")
    emo = get_emotion(emotion)
    values = _values(emo)
    before, after, seen_caption = [], [], False
    for literal, field in parse_template(template):
        (after if seen_caption else before).append(literal)
        if field == "caption":
            seen_caption = True
        elif field is not None:
            (after if seen_caption else before).append(values[field])
    return "".join(before), caption.strip(), "".join(after)


def _join(before: str, caption: str, after: str) -> str:
    # An empty caption leaves the template's separator spaces dangling at the ends; drop them.
    return (before + caption + after).strip()


def _fmt_weight(weight: float) -> str:
    return format(weight, "g")  # 1.3 -> "1.3", 2.0 -> "2": ComfyUI reads it with float()


def escape_comfy(text: str) -> str:
    """Escape parentheses so ComfyUI's prompt parser reads them literally instead of as weights.

    ComfyUI (``escape_important`` in comfy/sd1_clip.py) knows only ``\\(`` and ``\\)``; a backslash is not
    itself an escape there, so it is left alone.
    """
    return text.replace("(", "\\(").replace(")", "\\)")


def _weighted(part: str, weight: float) -> str:
    """``part`` in ComfyUI weight syntax, keeping its surrounding spaces outside the parentheses."""
    core = part.strip()
    if not core:
        return part
    lead = part[: len(part) - len(part.lstrip())]
    trail = part[len(part.rstrip()):]
    return f"{lead}({escape_comfy(core)}:{_fmt_weight(weight)}){trail}"


def build_prompt(caption: str, emotion: str | Emotion, template: str = PAPER_TEMPLATE, intensity: float = 1.0) -> str:
    """The positive prompt for ``caption`` in ``emotion``.

    Intensity 1 (default) returns the template filled in, with no weight syntax: with the default template
    that is exactly the paper's prompt. Other intensities wrap the emotion parts of the template in ComfyUI's
    ``(text:weight)`` syntax (for CLIPTextEncode); 0 leaves the caption alone. For encoders that do not
    parse that syntax, use :func:`weighted_prompt`.
    """
    w = check_intensity(intensity)
    before, cap, after = _split(caption, emotion, template)
    if w == 1.0:
        return _join(before, cap, after)
    if w == 0.0:
        return cap
    return _join(_weighted(before, w), cap, _weighted(after, w))


def weighted_prompt(
    caption: str, emotion: str | Emotion, template: str = PAPER_TEMPLATE, intensity: float = 1.0
) -> WeightedPrompt:
    """The prompt without weight syntax plus what is needed to apply ``intensity`` on the encodings.

    Encode ``text`` and (when ``needs_scaling``) ``base`` with the same text encoder, then call
    :func:`emovid_core.conditioning.apply_intensity` (or ``base + weight * (text - base)`` on raw tensors).
    """
    w = check_intensity(intensity)
    before, cap, after = _split(caption, emotion, template)
    emotion_text = " ".join(p.strip() for p in (before, after) if p.strip())
    return WeightedPrompt(text=_join(before, cap, after), base=cap, emotion_text=emotion_text, weight=w)


def emotion_sentence(emotion: str | Emotion) -> str:
    """The paper's sentence alone: ``The video is in the "fear" emotion.``"""
    return build_prompt("", emotion)


def negative_prompt(
    emotion: str | Emotion | None = None,
    add_opposite: bool = False,
    base: str = WAN_NEGATIVE_PROMPT,
    exclude: Iterable[str | Emotion] = (),
) -> str:
    """The negative prompt: ``base`` (Wan2.1's standard one by default), optionally followed by the emotions of
    the opposite valence to ``emotion`` (``..., anger, disgust, fear, sadness`` for a positive emotion).

    ``exclude`` drops emotions from that list (the Encode node excludes the second emotion of a blend).
    """
    base = (base or "").strip()
    if not add_opposite:
        return base
    if emotion is None:
        raise ValueError("negative_prompt(add_opposite=True) needs the emotion whose opposite valence to add")
    skip = {get_emotion(e).name for e in exclude}
    words = [n for n in opposite_valence(emotion) if n not in skip]
    return ", ".join(([base] if base else []) + words)


def sweep_prompts(
    caption: str,
    template: str = PAPER_TEMPLATE,
    intensity: float = 1.0,
    emotions: Iterable[str | Emotion] = EMOTIONS,
) -> dict[str, str]:
    """One prompt per emotion for the same caption, ``{emotion name: prompt}`` in the paper's order."""
    names = [get_emotion(e).name for e in emotions]
    if not names:
        raise ValueError(f"sweep needs at least one emotion; the eight are {', '.join(EMOTIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"sweep emotions repeat: {names}; list each emotion once")
    return {n: build_prompt(caption, n, template, intensity) for n in names}
