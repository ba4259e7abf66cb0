"""Building LoRA stacks from what a user picked, and giving each pipeline handle its own LoRA stack.

- :func:`lora_stack`: LoRA files by name with strengths, plus an emotion's LoRA looked up in an emotion map
  (the paper's multi-LoRA "custom roles") -> the :class:`LoraSpec` list the apply functions take.
- :func:`add_lora_to_pipeline`, :func:`set_pipeline_loras`: a new handle (EmoVid Wan Loader's, shallow: same
  pipeline, base weights not copied) that records its own stack; :func:`activate_pipeline_loras` makes exactly
  a handle's stack active on the shared transformer, which generation does under :func:`pipeline_lock` before it
  runs. A ComfyUI graph may feed one loader into branches with different LoRAs and execute them in any order
  (and from its cache): each branch still gets its own LoRAs.
- :func:`lora_file_stamps`, :func:`lora_stack_stamps`: times and sizes of chosen LoRA files, so a graph re-runs
  when one is replaced.

Adapters live in the shared peft transformer under names unique per (file, stamp, block weights): the same
file with the same blocks in two branches is one adapter (two strengths are just two ``set_adapters`` weights),
another file under a name already taken gets ``name_2``. Fused LoRAs are merged into the shared base weights
and cannot be taken out bit for bit without a copy of those weights, so a fused pipeline is not copied or
un-fused: a handle that expects other fused LoRAs than the weights hold is refused with a message saying what to do.
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .apply import (
    LoraSpec,
    StackReport,
    _adapter_name,
    _source_key,
    active_diffusers_loras,
    apply_lora_stack_to_diffusers,
    fused_diffusers_loras,
    load_lora_cached,
    loaded_diffusers_adapters,
    lora_for_emotion,
    parse_block_weights,
    resolve_lora_path,
)
from .model import LoraError, WanLora

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


@dataclass(frozen=True)
class PipeLora:
    """One LoRA of a pipeline handle's stack.

    ``label`` is the name the user gave (or the file stem): what the handle lists, and what a later LoRA node of
    the same name replaces. ``adapter`` is the peft adapter holding it on the shared transformer (another branch's
    adapter when that one came from the same file and blocks). ``source``/``blocks`` reload it if it is gone;
    ``key`` says what it was loaded from.
    """

    label: str
    adapter: str
    strength: float
    source: Any  # path or WanLora
    blocks: Mapping[int, float] | None
    key: tuple

    def __str__(self) -> str:
        return f"{self.label}:{self.strength:g}"


_LOCKS: "weakref.WeakKeyDictionary[Any, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def pipeline_lock(transformer) -> threading.RLock:
    """The lock held while a stack is made active on ``transformer`` and while a pipeline using it runs: handles
    that share a transformer take turns, so no run sees another branch's adapters."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(transformer)
        if lock is None:
            lock = _LOCKS[transformer] = threading.RLock()
        return lock


def _transformer(handle: Any):
    transformer = getattr(getattr(handle, "pipe", None), "transformer", None)
    if transformer is None:
        raise ValueError(f"pipe {type(handle).__name__} has no .pipe.transformer; connect EmoVid Wan Loader's pipe output")
    return transformer


def _adapter_for(transformer, label: str, key: tuple, taken: set[str]) -> str:
    """The adapter for a LoRA loaded from ``key``: one already named for it on this transformer (no second copy
    in memory), else ``label`` or ``label_2``... when that name holds another file. Names are never reused for
    another file, so a cached handle's adapter name always means the file it was made with."""
    names: dict = transformer.__dict__.setdefault("_emovid_adapter_keys", {})
    loaded = loaded_diffusers_adapters(transformer)
    for name, k in list(names.items()) + list(loaded.items()):
        if k == key and name not in taken:
            names.setdefault(name, key)
            return name
    name, n = label, 2
    while name in names or name in loaded or name in taken or name in (getattr(transformer, "peft_config", None) or {}):
        name, n = f"{label}_{n}", n + 1
    names[name] = key
    return name


def _entry(transformer, spec: LoraSpec, taken: set[str]) -> PipeLora:
    if spec.source is None:
        raise ValueError(f"stack entry {spec.name!r} has no LoRA file; a pipeline handle's LoRAs are given by file")
    lora = load_lora_cached(spec.source)
    bw = parse_block_weights(spec.blocks, len(getattr(transformer, "blocks", ()) or ()))
    key = _source_key(lora, bw)
    label = _adapter_name(spec, lora, set())
    adapter = _adapter_for(transformer, label, key, taken)
    taken.add(adapter)
    return PipeLora(label, adapter, float(spec.strength), spec.source, bw, key)


def _check_fused(handle: Any, transformer) -> None:
    want = [(e.adapter, e.strength) for e in getattr(handle, "lora_fused", ())]
    have = fused_diffusers_loras(transformer)
    if want != have:
        say = lambda pairs: ", ".join(f"{n}:{w:g}" for n, w in pairs) or "no LoRA"  # noqa: E731
        raise LoraError(
            f"this pipeline's weights have {say(have)} fused in, but this pipe expects {say(want)} fused: a LoRA pipeline "
            "node with fuse on (on another branch of the same EmoVid Wan Loader, or in an earlier run) merged its LoRAs "
            "into the weights all branches share, and fused weights cannot be unfused. Turn fuse off (adapters switch "
            "per branch for free), give the fused branch its own EmoVid Wan Loader, or reload the pipeline (change an "
            "EmoVid Wan Loader input) to change a fused LoRA.")


def _activate(transformer, entries: Sequence[PipeLora], *, fuse: bool = False, strict: bool = False,
              fresh: PipeLora | None = None) -> StackReport:
    """Make exactly ``entries`` active. Adapters still loaded from the same source are only re-weighted (referred
    to by name: no file read, no validation); ``fresh`` (the entry a LoRA node adds) is validated for its report.
    Fusing passes every LoRA itself: full-weight deltas (``.diff``), which no adapter holds, are merged from it."""
    loaded = loaded_diffusers_adapters(transformer)
    specs = []
    for e in entries:
        if not fuse and e is not fresh and loaded.get(e.adapter) == e.key:
            specs.append(LoraSpec(None, e.adapter, e.strength))
            continue
        if not isinstance(e.source, WanLora) and _source_key(load_lora_cached(e.source), e.blocks) != e.key:
            raise LoraError(f"LoRA file {str(e.source)!r} ({e.label}) changed since its LoRA node ran; run the graph "
                            "again (ComfyUI re-runs LoRA nodes whose file changed)")
        specs.append(LoraSpec(e.source, e.adapter, e.strength, e.blocks))
    return apply_lora_stack_to_diffusers(transformer, specs, fuse=fuse, strict=strict)


def _with_stack(handle: Any, transformer, entries: list[PipeLora], report: StackReport, noted: Sequence[PipeLora]) -> Any:
    out = copy.copy(handle)  # the handle is cheap; the pipeline (base weights, adapters) is shared
    if report.fused:
        out.lora_fused, out.lora_stack = tuple(getattr(handle, "lora_fused", ())) + tuple(entries), ()
    else:
        out.lora_stack = tuple(entries)
    names = transformer.__dict__.get("_emovid_adapter_keys", {})
    for e in noted:
        if e.adapter != e.label:
            why = (f"the name {e.label!r} holds another file there" if names.get(e.label, e.key) != e.key
                   else "the same file and blocks as another branch's LoRA, loaded once")
            report.notes.append(f"{e.label!r} is peft adapter {e.adapter!r} on this pipeline ({why})")
    return out


def add_lora_to_pipeline(handle: Any, spec: LoraSpec, *, fuse: bool = False, strict: bool = False) -> tuple[Any, StackReport]:
    """A new handle whose stack is ``handle``'s plus ``spec`` (a LoRA of the same name is replaced: same file,
    only its strength changes, nothing reloads), made active now for the report; ``handle`` keeps its own stack.

    Returns (handle, stack report). ``fuse`` merges the new handle's stack into the shared weights (see the module
    docstring for what that means for other branches).
    """
    transformer = _transformer(handle)
    with pipeline_lock(transformer):
        _check_fused(handle, transformer)
        label = _adapter_name(spec, load_lora_cached(spec.source), set())
        keep = [e for e in getattr(handle, "lora_stack", ()) if e.label != label]
        new = _entry(transformer, spec, {e.adapter for e in keep})
        entries = keep + [new]
        report = _activate(transformer, entries, fuse=fuse, strict=strict, fresh=new)
        return _with_stack(handle, transformer, entries, report, [new]), report


def set_pipeline_loras(handle: Any, stack: Sequence[Any], *, fuse: bool = False, strict: bool = False) -> tuple[Any, StackReport]:
    """A new handle whose stack is exactly ``stack`` ((path or LoRA, adapter_name, strength[, blocks]) entries;
    ``[]`` = no LoRA), made active now; LoRAs ``handle`` has fused stay fused."""
    transformer = _transformer(handle)
    with pipeline_lock(transformer):
        _check_fused(handle, transformer)
        taken: set[str] = set()
        entries = [_entry(transformer, LoraSpec.coerce(s), taken) for s in stack]
        report = _activate(transformer, entries, fuse=fuse, strict=strict)
        return _with_stack(handle, transformer, entries, report, entries), report


def activate_pipeline_loras(handle: Any) -> None:
    """Make exactly ``handle``'s stack active on its (shared) transformer; generation calls this under
    :func:`pipeline_lock` right before running the pipeline."""
    transformer = _transformer(handle)
    with pipeline_lock(transformer):
        _check_fused(handle, transformer)
        entries = list(getattr(handle, "lora_stack", ()))
        loaded = loaded_diffusers_adapters(transformer)
        if (active_diffusers_loras(transformer) == [(e.adapter, e.strength) for e in entries]
                and all(loaded.get(e.adapter) == e.key for e in entries)):
            return  # exactly this stack is active already (the same branch again, or no LoRA anywhere)
        _activate(transformer, entries)


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
