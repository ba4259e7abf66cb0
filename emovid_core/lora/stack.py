"""Building LoRA stacks from what a user picked, and stacking LoRAs on a loaded diffusers pipeline.

- :func:`lora_stack`: LoRA files by name with strengths, plus an emotion's LoRA looked up in an emotion map
  (the paper's multi-LoRA "custom roles") -> the :class:`LoraSpec` list the apply functions take.
- :func:`add_lora_to_pipeline`: one more adapter on a pipeline handle (EmoVid Wan Loader's), keeping the
  adapters already active, and a new handle that lists what its pipeline now carries.
- :func:`lora_file_stamps`, :func:`lora_stack_stamps`: times and sizes of chosen LoRA files, so a graph re-runs
  when one is replaced.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Sequence

from .apply import (
    LoraSpec,
    StackReport,
    _adapter_name,
    active_diffusers_loras,
    apply_lora_stack_to_diffusers,
    load_lora_cached,
    lora_for_emotion,
    resolve_lora_path,
)

NO_LORA = ("", "None", None)  # what a LoRA list's empty choice may be
NO_EMOTION = ("", "none", None)


def lora_stack(slots: Sequence[tuple[str | None, float]], emotion: str | None = None, emotion_map: str = "",
               emotion_strength: float = 1.0) -> list[LoraSpec]:
    """The emotion's LoRA from ``emotion_map`` first (adapter ``emotion_<name>``), then each chosen slot.

    ``slots`` are (LoRA name in models/loras or a path, strength); an empty name is skipped. An emotion whose map
    is empty or has no line for it is an error that says what to add; so is a stack with nothing in it.
    """
    stack = []
    if emotion not in NO_EMOTION:
        if not (emotion_map or "").strip():
            raise ValueError(f"emotion {emotion!r} chosen but emotion_map is empty; add e.g. "
                             f"'{emotion}={emotion}.safetensors' or set emotion to none")
        file = lora_for_emotion(emotion_map, emotion)
        if file is None:
            raise ValueError(f"emotion_map has no LoRA for {emotion!r}; add a line '{emotion}=<file>'")
        stack.append(LoraSpec(resolve_lora_path(file), name=f"emotion_{emotion}", strength=emotion_strength))
    for name, strength in slots:
        if name not in NO_LORA:
            stack.append(LoraSpec(resolve_lora_path(name), strength=strength))
    if not stack:
        raise ValueError("no LoRA chosen: pick lora_1..lora_3 or an emotion with an emotion_map")
    return stack


def add_lora_to_pipeline(handle: Any, spec: LoraSpec, *, fuse: bool = False, strict: bool = False) -> tuple[Any, StackReport]:
    """Make ``spec`` active on ``handle.pipe.transformer`` on top of the adapters already active there.

    An adapter of the same name is replaced (same file: only its strength changes, nothing reloads). Returns a
    shallow copy of the handle whose ``loras`` lists the active adapters ("name:strength", "(fused)" once fused)
    and the stack report; the pipeline itself, and so its adapters, is shared with the input handle.
    """
    transformer = getattr(getattr(handle, "pipe", None), "transformer", None)
    if transformer is None:
        raise ValueError(f"pipe {type(handle).__name__} has no .pipe.transformer; connect EmoVid Wan Loader's pipe output")
    spec = replace(spec, name=_adapter_name(spec, load_lora_cached(spec.source), set()))
    keep = [LoraSpec(None, n, w) for n, w in active_diffusers_loras(transformer) if n != spec.name]
    report = apply_lora_stack_to_diffusers(transformer, keep + [spec], fuse=fuse, strict=strict)
    out = copy.copy(handle)  # the handle is cheap; the pipeline (and its adapters) is shared
    out.loras = [f"{n}:{w:g}" + (" (fused)" if report.fused else "") for n, w in zip(report.active, report.weights)]
    return out, report


def lora_file_stamps(*names: str | None) -> str:
    """mtime/size of the chosen LoRA files ("name:missing" for one that is gone); empty choices are left out."""
    from .. import runtime

    stamps = []
    for name in names:
        if name in NO_LORA:
            continue
        try:
            st = runtime.resolve_model_file("loras", name).stat()
            stamps.append(f"{name}:{st.st_mtime_ns}:{st.st_size}")
        except (FileNotFoundError, OSError):
            stamps.append(f"{name}:missing")
    return "|".join(stamps)


def lora_stack_stamps(names: Sequence[str | None], emotion: str | None = None, emotion_map: str = "") -> str:
    """:func:`lora_file_stamps` of the files :func:`lora_stack` would load; a bad emotion map adds nothing here
    (building the stack reports it)."""
    emo_file = None
    if emotion not in NO_EMOTION:
        try:
            emo_file = lora_for_emotion(emotion_map or "", emotion)
        except ValueError:
            emo_file = None
    return lora_file_stamps(*names, emo_file)
