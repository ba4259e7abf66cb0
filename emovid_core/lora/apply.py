"""Apply a stack of Wan2.1 LoRAs to a ComfyUI MODEL or to a diffusers ``WanTransformer3DModel``.

ComfyUI: the MODEL is duck-typed (``.clone()``, ``.add_patches(patches, strength_patch, strength_model)``,
``.model.diffusion_model``). We add weight patches in ComfyUI's own format -- a ``LoRAAdapter`` from the running
ComfyUI's ``comfy.weight_adapter`` (0.3.64) holding (up, down, alpha, None, None, None), or the legacy
``("lora", ...)`` tuple where no weight adapters are loaded -- so the delta is computed by ComfyUI's calculate_weight
exactly as core LoraLoaderModelOnly computes it, and nothing reloads when a strength changes.

diffusers: each LoRA becomes a named peft adapter (ranks and alphas exact, via rank/alpha patterns), weighted
with ``set_adapters`` (switching costs nothing); ``fuse=True`` merges the active adapters into the base
weights in float32 and unloads the adapter layers.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from ..wan import dit_keys as wl
from .formats import load_lora
from .model import LoraError, WanLora
from .validate import ShapeSpec, ValidationReport, validate

# ------------------------------------------------------------------------------------------ loading cache

_CACHE: "OrderedDict[tuple, WanLora]" = OrderedDict()
_CACHE_SIZE = 4


def load_lora_cached(source: str | Path | WanLora) -> WanLora:
    """:func:`load_lora` with a small cache keyed by (path, size, mtime), so changing a strength never re-reads."""
    if isinstance(source, WanLora):
        return source
    p = Path(source).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"LoRA file {str(p)!r} not found") from None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    lora = load_lora(p)
    _CACHE[key] = lora
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return lora


# ------------------------------------------------------------------------------------------ stack entries


@dataclass
class LoraSpec:
    """One entry of a stack: which LoRA, its adapter name, strength (negative allowed) and block selection."""

    source: str | Path | WanLora | None  # None: the adapter ``name`` is already loaded (diffusers only)
    name: str | None = None
    strength: float = 1.0
    blocks: str | Mapping[int, float] | None = None  # "0-19", "0-9:1,10-29:0.5" or {block: weight}

    @classmethod
    def coerce(cls, item: Any) -> "LoraSpec":
        if isinstance(item, LoraSpec):
            return item
        if isinstance(item, (str, Path, WanLora)):
            return cls(item)
        if isinstance(item, Mapping):
            return cls(**item)
        if isinstance(item, (tuple, list)) and 1 <= len(item) <= 4:
            return cls(*item)
        raise ValueError(f"stack entry {item!r} is not (path or LoRA, adapter_name, strength[, blocks])")


def _adapter_name(spec: LoraSpec, lora: WanLora, used: set[str]) -> str:
    base = spec.name or (Path(lora.path).stem if lora.path is not None else "lora")
    # peft adapter names become module attribute keys: keep them to identifier characters.
    base = re.sub(r"[^0-9A-Za-z_]", "_", base) or "lora"
    name, n = base, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    return name


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?(?::\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*)?$")


def parse_block_weights(blocks: str | Mapping[int, float] | None, num_blocks: int) -> dict[int, float] | None:
    """Block selection -> {block index: weight}, or None for "all blocks at 1".

    Text form: comma-separated ``A-B[:w]`` or ``N[:w]`` items, e.g. ``"0-19"`` (only blocks 0..19) or
    ``"0-9:1.0, 10-29:0.5"``. Blocks not named get weight 0 (their modules are skipped with a reason).
    """
    if blocks is None or (isinstance(blocks, str) and not blocks.strip()):
        return None
    if isinstance(blocks, Mapping):
        return {int(k): float(v) for k, v in blocks.items()}
    out: dict[int, float] = {}
    for item in str(blocks).split(","):
        if not item.strip():
            continue
        m = _RANGE.match(item)
        if not m:
            raise ValueError(f"block selection item {item.strip()!r} is not 'A-B', 'N', 'A-B:weight' or 'N:weight' "
                             f"(e.g. '0-9:1.0, 10-{max(num_blocks - 1, 10)}:0.5')")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise ValueError(f"block range {item.strip()!r} ends before it starts; write it as {b}-{a}")
        if num_blocks and a >= num_blocks:
            raise ValueError(f"block selection {item.strip()!r}: the model has blocks 0-{num_blocks - 1}")
        w = float(m.group(3)) if m.group(3) is not None else 1.0
        for i in range(a, min(b, num_blocks - 1 if num_blocks else b) + 1):
            out[i] = w
    return out


def _module_weight(name: str, block_weights: Mapping[int, float] | None) -> float:
    if block_weights is None:
        return 1.0
    idx = wl.block_index(name)
    return 1.0 if idx is None else float(block_weights.get(idx, 0.0))


@dataclass
class AppliedLora:
    adapter_name: str
    strength: float
    lora: WanLora | None  # None for an adapter reused by name
    report: ValidationReport
    block_weights: dict[int, float] | None = None


@dataclass
class StackReport:
    target: str
    entries: list[AppliedLora] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)  # diffusers: adapter names now active, with ``weights``
    weights: list[float] = field(default_factory=list)
    fused: bool = False

    def lines(self) -> list[str]:
        out = [f"target: {self.target}"]
        for e in self.entries:
            sel = "" if e.block_weights is None else f", blocks {_describe_blocks(e.block_weights)}"
            fmt = f", format {e.lora.source_format}" if e.lora is not None else ", loaded earlier"
            out.append(f"[{e.adapter_name}] strength {e.strength:g}{sel}{fmt}")
            out += ["  " + line for line in e.report.lines()]
        out += [f"note: {n}" for n in self.notes]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _describe_blocks(bw: Mapping[int, float]) -> str:
    items = sorted(bw.items())
    if not items:
        return "none"
    parts, start, prev, w = [], items[0][0], items[0][0], items[0][1]
    for i, v in items[1:] + [(None, None)]:
        if i is not None and i == prev + 1 and v == w:
            prev = i
            continue
        parts.append((f"{start}" if start == prev else f"{start}-{prev}") + (f":{w:g}" if w != 1.0 else ""))
        if i is not None:
            start = prev = i
            w = v
    return ",".join(parts)


# ------------------------------------------------------------------------------------------ ComfyUI


def comfy_shape_spec(model) -> ShapeSpec:
    """Shapes of a ComfyUI Wan MODEL (ModelPatcher) read from ``model.model.diffusion_model``, no copies."""
    inner = getattr(model, "model", None)
    dm = getattr(inner, "diffusion_model", None)
    if dm is None or not hasattr(dm, "state_dict"):
        raise ValueError(f"model {type(model).__name__} is not a ComfyUI MODEL with .model.diffusion_model; connect "
                         "the MODEL output of UNETLoader (Load Diffusion Model) with a Wan2.1 file")
    spec = ShapeSpec.from_state_dict(dm.state_dict(), label=f"ComfyUI {type(dm).__name__}")
    if spec.dim is None:
        raise ValueError(f"the connected MODEL ({type(dm).__name__}) is not a Wan2.1 DiT (no head.modulation / "
                         "blocks.0.self_attn.q); EmoVid LoRA nodes patch Wan2.1 models only")
    return spec


_COMFY_ADAPTERS = {"lora": "LoRAAdapter", "lokr": "LoKrAdapter", "loha": "LoHaAdapter"}


def _comfy_patch_weights(m) -> tuple:
    """A module's tensors in the order core ComfyUI's adapter for its kind holds them (``comfy/lora.py`` load_lora
    hands each adapter's ``load`` the file's alpha, None when absent, and the ``.dora_scale`` tensor)."""
    if m.algo == "lokr":
        f = m.factors
        return (f.get("lokr_w1"), f.get("lokr_w2"), m.alpha, f.get("lokr_w1_a"), f.get("lokr_w1_b"),
                f.get("lokr_w2_a"), f.get("lokr_w2_b"), None, m.dora_scale)  # None: the Tucker core (refused)
    if m.algo == "loha":
        f = m.factors
        return (f["hada_w1_a"], f["hada_w1_b"], m.alpha, f["hada_w2_a"], f["hada_w2_b"], None, None, m.dora_scale)
    return (m.up, m.down, m.effective_alpha, None, m.dora_scale, None)


def _comfy_patch(m):
    """A patch value core ComfyUI's calculate_weight applies as the module's kind (LoRA, LoKr, LoHa; DoRA too):
    the running ComfyUI's own weight adapter (>= 0.3.3x), or the legacy ``(kind, weights)`` tuple where none is
    loaded. The core never imports ComfyUI: it uses the adapter classes only when the running ComfyUI has loaded
    them (``comfy.lora`` imports ``comfy.weight_adapter`` at startup), the tuple otherwise (old ComfyUI, headless
    tests, :class:`emovid_core.lora.testing.ReferencePatcher`).
    """
    weights = _comfy_patch_weights(m)
    adapter_cls = getattr(sys.modules.get("comfy.weight_adapter"), _COMFY_ADAPTERS[m.algo], None)
    if adapter_cls is None:
        return (m.algo, weights)
    return adapter_cls(set(), weights)


def _bare_params(lora: WanLora, report: ValidationReport, shapes: Mapping[str, Any]) -> list[str]:
    """Applied modules whose delta lands on a bare parameter (``blocks.N.modulation``), not on ``<module>.weight``."""
    return [n for n in report.applied if n in shapes and lora.modules[n].diff is not None]


def _merged_modules(lora: WanLora, report: ValidationReport, shapes: Mapping[str, Any]) -> list[str]:
    """Applied modules the diffusers path merges into a parameter itself (no peft layer can hold them): deltas on
    bare parameters, and LoKr/LoHa/DoRA modules (peft's LoraLayer holds plain pairs only)."""
    bare = set(_bare_params(lora, report, shapes))
    return [n for n in report.applied if n in bare or lora.modules[n].has_lycoris]


def _merged_param(n: str, shapes: Mapping[str, Any]) -> str:
    """The diffusers parameter a merged module lands on (``blocks.N.scale_shift_table``, ``...to_q.weight``)."""
    return wl.original_to_diffusers(n if n in shapes else n + ".weight")


def _note_full_deltas(lora: WanLora, report: ValidationReport, bare: Sequence[str], how: str) -> None:
    """Name every full-parameter delta in the report, block ranges folded: ``blocks.0-39.modulation``."""
    if not bare:
        return
    groups: dict[str, set[int]] = {}
    for n in bare:
        idx = wl.block_index(n)
        stem = n if idx is None else re.sub(r"^blocks\.\d+\.", "blocks.{}.", n)
        groups.setdefault(stem, set()).add(-1 if idx is None else idx)
    names = [stem if idx == {-1} else stem.format(_describe_blocks({i: 1.0 for i in idx}))
             for stem, idx in sorted(groups.items())]
    report.notes.append(f"full-parameter delta on {', '.join(names)} ({how})")


def comfy_patches(lora: WanLora, report: ValidationReport, block_weights: Mapping[int, float] | None = None,
                  prefix: str = "diffusion_model.") -> list[tuple[float, dict[str, Any]]]:
    """ComfyUI patches for the applied modules as (block weight, patches) groups.

    ``add_patches`` takes one strength per call, so modules are grouped by block weight; full deltas go in their
    own groups because a weight with both a LoRA and a ``.diff`` needs two patches on the same key.
    """
    low: dict[float, dict[str, Any]] = {}
    full: dict[float, dict[str, Any]] = {}
    for name in report.applied:
        m = lora.modules[name]
        w = _module_weight(name, block_weights)
        wkey = f"{prefix}{name}" if name.endswith("modulation") else f"{prefix}{name}.weight"
        if m.has_lowrank or m.factors:
            low.setdefault(w, {})[wkey] = _comfy_patch(m)
        if m.diff is not None:
            full.setdefault(w, {})[wkey] = ("diff", (m.diff,))
        if m.diff_b is not None and f"{name}.bias" not in report.skipped:
            full.setdefault(w, {})[f"{prefix}{name}.bias"] = ("diff", (m.diff_b,))
    return list(low.items()) + list(full.items())


def apply_lora_stack_to_comfy(model, stack: Iterable[Any], strict: bool = False):
    """Clone a ComfyUI MODEL and add weight patches for every LoRA of ``stack``. Returns (model, StackReport).

    Validation runs for every entry before the first patch is added, so a bad entry leaves nothing half-applied.
    """
    specs = [LoraSpec.coerce(s) for s in stack]
    shape_spec = comfy_shape_spec(model)
    report = StackReport(shape_spec.describe())
    used: set[str] = set()
    plans = []
    for s in specs:
        if s.source is None:
            raise ValueError(f"stack entry {s.name!r} has no LoRA file; ComfyUI MODELs carry no named adapters")
        lora = load_lora_cached(s.source)
        bw = parse_block_weights(s.blocks, shape_spec.num_blocks)
        rep = validate(lora, shape_spec, strict=strict, block_weights=bw)
        _note_full_deltas(lora, rep, _bare_params(lora, rep, shape_spec.shapes), "a ComfyUI diff patch")
        plans.append((s, lora, bw, rep))
    out = model.clone()
    for s, lora, bw, rep in plans:
        entry = AppliedLora(_adapter_name(s, lora, used), float(s.strength), lora, rep, bw)
        report.entries.append(entry)
        if s.strength == 0:
            rep.notes.append("strength 0: no patches added")
            continue
        for w, patches in comfy_patches(lora, rep, bw):
            added = set(out.add_patches(patches, float(s.strength) * w, 1.0))
            for k in patches:
                if k not in added:  # ComfyUI ignores keys the model lacks; surface them instead of losing them
                    rep.skipped[k] = "ComfyUI did not accept the patch key"
                    mod = wl.strip_prefix(k).rsplit(".", 1)[0]
                    if mod in rep.applied:
                        rep.applied.remove(mod)
        if strict and rep.skipped:
            raise LoraError("strict mode: " + str(rep))
    return out, report


# ------------------------------------------------------------------------------------------ diffusers


def _peft_state_dict(lora: WanLora, report: ValidationReport) -> dict[str, torch.Tensor]:
    sd = {}
    for name in report.applied:
        m = lora.modules[name]
        if not m.has_lowrank or m.has_lycoris:
            continue
        dname = wl.original_to_diffusers(name)
        sd[f"{dname}.lora_A.weight"] = m.down
        sd[f"{dname}.lora_B.weight"] = m.up
    return sd


def _lora_config(lora: WanLora, report: ValidationReport, block_weights):
    from peft import LoraConfig

    mods = [m for n in report.applied if (m := lora.modules[n]).has_lowrank and not m.has_lycoris]
    if not mods:
        return None
    ranks = {wl.original_to_diffusers(m.name): m.rank for m in mods}
    # Block weights ride on alpha: peft scales by alpha/r, so alpha*w gives w times the delta.
    alphas = {wl.original_to_diffusers(m.name): m.effective_alpha * _module_weight(m.name, block_weights) for m in mods}
    r = max(set(ranks.values()), key=list(ranks.values()).count)
    a = max(set(alphas.values()), key=list(alphas.values()).count)
    return LoraConfig(
        r=r, lora_alpha=a, target_modules=sorted(ranks),
        rank_pattern={re.escape(k): v for k, v in ranks.items() if v != r},
        alpha_pattern={re.escape(k): v for k, v in alphas.items() if v != a},
        lora_dropout=0.0, bias="none", init_lora_weights=True,
    )


def add_peft_adapter(transformer, config, name: str, sd: Mapping[str, torch.Tensor], label: str = "LoRA",
                     init_free: bool = True) -> None:
    """Add the peft adapter ``name`` holding exactly the tensors of ``sd`` (diffusers names, lora_A/lora_B).

    ``init_free`` (the default): the adapter layers are created on the meta device (peft's ``low_cpu_mem_usage``)
    and the file's tensors are assigned to them, so nothing is initialised at random only to be overwritten
    (diffusers' ``add_adapter`` + ``set_peft_model_state_dict`` spends ~1-2 s on that for a 14B LoRA). The tensors
    are copied once into the base layer's dtype and device first -- what the copying load did -- so an adapter
    never shares storage with the cached :class:`WanLora`. ``init_free=False`` is that old path, kept as the
    reference the benchmark and the identity test compare with.
    """
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    with warnings.catch_warnings():  # peft warns on every second adapter; several named adapters is the point
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        if not init_free:
            transformer.add_adapter(config, adapter_name=name)
            result = set_peft_model_state_dict(transformer, dict(sd), adapter_name=name)
        else:
            params = dict(transformer.named_parameters())
            placed = {}
            for k, v in sd.items():
                stem = k.rsplit(".lora_", 1)[0]
                base = params.get(f"{stem}.weight", params.get(f"{stem}.base_layer.weight"))
                placed[k] = v.to(device=base.device, dtype=base.dtype, copy=True) if base is not None else v.clone()
            if name in (getattr(transformer, "peft_config", None) or {}):
                raise ValueError(f"Adapter with name {name} already exists. Please use a different name.")
            transformer._hf_peft_config_loaded = True  # what diffusers' add_adapter records
            config.base_model_name_or_path = None
            inject_adapter_in_model(config, transformer, adapter_name=name, low_cpu_mem_usage=True)
            result = set_peft_model_state_dict(transformer, placed, adapter_name=name, low_cpu_mem_usage=True)
            on_meta = [n for n, p in transformer.named_parameters() if p.is_meta and f".{name}." in n]
            if on_meta:  # a layer the state dict did not fill would stay without data
                raise LoraError(f"{label}: peft left {len(on_meta)} adapter tensor(s) without data, such as {on_meta[0]!r}")
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise LoraError(f"{label}: peft did not place {len(unexpected)} tensor(s) such as {unexpected[0]!r}")


def _source_key(lora: WanLora, bw) -> tuple:
    """What an adapter was loaded from: the file and its stamp (size, mtime; a file replaced in place, e.g. a new
    epoch saved over the old one, is a new adapter), its key count and the block weights (they ride on alpha)."""
    if lora.path is None:
        src: tuple = (f"memory:{id(lora)}",)
    else:
        p = Path(lora.path).resolve()
        try:
            st = p.stat()
            src = (str(p), st.st_size, st.st_mtime_ns)
        except OSError:
            src = (str(p), None)
    return (*src, lora.num_file_keys, None if bw is None else tuple(sorted(bw.items())))


def apply_lora_stack_to_diffusers(transformer, stack: Sequence[Any], fuse: bool = False, strict: bool = False) -> StackReport:
    """Make exactly ``stack`` -- (path or LoRA, adapter_name, strength[, blocks]) entries -- active on ``transformer``.

    Each LoRA is a named peft adapter; an adapter already loaded under the same name from the same file is
    reused (only its weight changes, no reload), another file under that name replaces it. Adapters not in the
    stack stay loaded but inactive; an empty stack turns LoRA off. Strength 0 gives exactly the base output.
    ``fuse=True`` merges the active adapters into the base weights in float32 (exact W + s*(alpha/r)*B@A, cast
    once) and unloads all adapter layers. Full-weight (.diff/.diff_b) deltas on a layer's weight apply only when
    fusing (a peft adapter holds low-rank pairs only); a delta on a bare parameter (``blocks.N.modulation``, which
    lightx2v's ``diff_m`` carries) is merged in float32 unfused too and restored exactly on the next call.
    The report's ``active``/``weights`` list what is now active.
    """
    specs = [LoraSpec.coerce(s) for s in stack]
    shape_spec = ShapeSpec.from_diffusers(transformer)
    if shape_spec.dim is None:
        raise ValueError(f"{type(transformer).__name__} has no Wan2.1 blocks (blocks.0.attn1.to_q); pass the "
                         "pipeline's WanTransformer3DModel (pipe.transformer)")
    report = StackReport(shape_spec.describe())
    loaded_sources: dict = transformer.__dict__.setdefault("_emovid_lora_sources", {})
    # Per adapter name: (diffusers parameter, block weight, delta) of its bare-parameter deltas (no peft layer).
    bare_deltas: dict = transformer.__dict__.setdefault("_emovid_bare_deltas", {})
    existing = set(getattr(transformer, "peft_config", {}) or {}) | set(bare_deltas)
    for gone in set(loaded_sources) - existing:  # adapters deleted by someone else
        loaded_sources.pop(gone)
    used: set[str] = set()
    plans = []
    for s in specs:
        if s.source is None:  # an adapter loaded earlier, referred to by name: only its weight changes
            if not s.name or s.name not in existing:
                raise ValueError(f"stack entry {s.name!r} names no loaded adapter (loaded: {', '.join(sorted(existing)) or 'none'});"
                                 " give the LoRA file for it")
            plans.append((s, None, None, ValidationReport(s.name, shape_spec.describe(), notes=["already loaded"])))
            continue
        lora = load_lora_cached(s.source)
        bw = parse_block_weights(s.blocks, shape_spec.num_blocks)
        rep = validate(lora, shape_spec, strict=strict, block_weights=bw)
        bare = _bare_params(lora, rep, shape_spec.shapes)
        for n in list(rep.applied):
            m = lora.modules[n]
            if not fuse and n not in bare and ((m.diff is not None and not m.has_lycoris) or m.diff_b is not None):
                rep.skipped[n] = (f"full-weight delta (.diff/.diff_b) on {n}.weight: peft adapters hold low-rank "
                                  "pairs only; apply this LoRA with fuse=True")
                rep.applied.remove(n)
        _note_full_deltas(lora, rep, bare, "merged in float32" if fuse else
                          "merged into the parameter in float32; the original is restored exactly on the next stack change")
        lyco = [n for n in rep.applied if lora.modules[n].has_lycoris]
        if lyco:
            rep.notes.append(f"{len(lyco)} LoKr/LoHa/DoRA module(s) merged into the weights in float32 (peft adapters hold "
                             "plain LoRA pairs only)" + ("" if fuse else "; the original weights are kept on the CPU "
                                                         "and restored exactly on the next stack change"))
        if strict and rep.skipped:
            raise LoraError("strict mode: " + str(rep))
        plans.append((s, lora, bw, rep))
    names, weights, bare_active = [], [], []
    peft_names = set(getattr(transformer, "peft_config", {}) or {})
    for s, lora, bw, rep in plans:
        if lora is None:
            used.add(s.name)
            report.entries.append(AppliedLora(s.name, float(s.strength), None, rep, None))
            bare_active.append((s.name, float(s.strength)))
            if s.name in peft_names:
                names.append(s.name)
                weights.append(float(s.strength))
            continue
        name = _adapter_name(s, lora, used)
        report.entries.append(AppliedLora(name, float(s.strength), lora, rep, bw))
        key = _source_key(lora, bw)
        bare_active.append((name, float(s.strength)))
        if name in existing and loaded_sources.get(name) == key:
            rep.notes.append(f"adapter {name!r} already loaded: weight changed only")
            if name not in peft_names:
                continue
        else:
            bare_deltas[name] = [(_merged_param(n, shape_spec.shapes), _module_weight(n, bw), lora.modules[n])
                                 for n in _merged_modules(lora, rep, shape_spec.shapes)]
            loaded_sources[name] = key
            config = _lora_config(lora, rep, bw)
            if name in peft_names:
                transformer.delete_adapters(name)
                peft_names.discard(name)
                rep.notes.append(f"adapter {name!r} replaced")
            if config is None:
                continue
            add_peft_adapter(transformer, config, name, _peft_state_dict(lora, rep), lora.name)
            loaded_sources[name] = key
        names.append(name)
        weights.append(float(s.strength))
    if names:
        transformer.enable_lora()
        transformer.set_adapters(names, weights)
    elif getattr(transformer, "peft_config", None):
        transformer.disable_lora()
    # Active: every entry, also one whose only deltas are bare parameters (it has no peft adapter to activate).
    report.active, report.weights = [n for n, _ in bare_active], [w for _, w in bare_active]
    _restore_bare_params(transformer)  # exact undo of the deltas the last call merged
    _merge_bare_params(transformer, [(bare_deltas.get(n, []), w) for n, w in bare_active], keep_undo=not fuse)
    if fuse:
        _fuse_float32(transformer, plans, report)
        bare_deltas.clear()
        loaded_sources.clear()
        transformer.__dict__["_emovid_lora_active"] = []
        transformer.__dict__.setdefault("_emovid_lora_fused", []).extend(bare_active)
    else:
        transformer.__dict__["_emovid_lora_active"] = list(bare_active)
    return report


def loaded_diffusers_adapters(transformer) -> dict[str, tuple]:
    """Adapter name -> what it was loaded from (:func:`_source_key`) for every adapter still on ``transformer``."""
    existing = set(getattr(transformer, "peft_config", {}) or {}) | set(transformer.__dict__.get("_emovid_bare_deltas", {}))
    return {n: k for n, k in transformer.__dict__.get("_emovid_lora_sources", {}).items() if n in existing}


def active_diffusers_loras(transformer) -> list[tuple[str, float]]:
    """(adapter name, strength) pairs the last :func:`apply_lora_stack_to_diffusers` call made active."""
    return list(transformer.__dict__.get("_emovid_lora_active", []))


def fused_diffusers_loras(transformer) -> list[tuple[str, float]]:
    """(adapter name, strength) pairs already merged into ``transformer``'s base weights by ``fuse=True``."""
    return list(transformer.__dict__.get("_emovid_lora_fused", []))


def _param(params: Mapping[str, torch.nn.Parameter], pname: str) -> torch.nn.Parameter:
    """A parameter by its diffusers name, also when a peft adapter wraps its layer (``to_q.base_layer.weight``)."""
    if pname in params:
        return params[pname]
    stem, _, leaf = pname.rpartition(".")
    return params[f"{stem}.base_layer.{leaf}"]


@torch.no_grad()
def _restore_bare_params(transformer) -> None:
    originals = transformer.__dict__.pop("_emovid_bare_originals", {})
    params = dict(transformer.named_parameters())
    for pname, orig in originals.items():
        _param(params, pname).data.copy_(orig)


@torch.no_grad()
def _merge_bare_params(transformer, active: Sequence[tuple[list, float]], keep_undo: bool) -> None:
    """Merge every active module that has no peft layer -- a delta on a bare parameter (``blocks.N.scale_shift_table``),
    a LoKr/LoHa/DoRA module on a layer weight -- in float32, in stack order, cast once per parameter.

    Each module is applied by :meth:`LoraModule.merged` (ComfyUI's rule, DoRA's weight decomposition included, so
    several on one weight compose as ComfyUI's patches do). With ``keep_undo`` the original tensor is kept (on
    the CPU) so the next call restores it bit for bit before merging the new stack.
    """
    todo: dict[str, list[tuple[Any, float]]] = {}
    for deltas, strength in active:
        for pname, bw, module in deltas:
            if strength * bw != 0:
                todo.setdefault(pname, []).append((module, strength * bw))
    if not todo:
        return
    params = dict(transformer.named_parameters())
    originals = transformer.__dict__.setdefault("_emovid_bare_originals", {}) if keep_undo else {}
    for pname, mods in todo.items():
        p = _param(params, pname)
        originals[pname] = p.data.to("cpu", copy=True)
        w = p.data.to(torch.float32, copy=True)
        for module, s in mods:
            w = module.merged(w.reshape(module.weight_shape or w.shape), s).reshape(p.shape)
        p.data.copy_(w.to(p.dtype))


@torch.no_grad()
def _fuse_float32(transformer, plans, report: StackReport) -> None:
    """Merge every active adapter (and full deltas) into the base weights in fp32, then unload adapter layers."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for module in transformer.modules():
        if not isinstance(module, LoraLayer):
            continue
        base = module.get_base_layer()
        w32 = base.weight.data.to(torch.float32)
        changed = False
        for name in module.active_adapters:
            if name not in module.lora_A:
                continue
            a = module.lora_A[name].weight.to(torch.float32)
            b = module.lora_B[name].weight.to(torch.float32)
            w32.addmm_(b, a, alpha=float(module.scaling[name]))
            changed = True
        if changed:
            base.weight.data.copy_(w32.to(base.weight.dtype))
            merged += 1
    transformer.unload_lora()  # replace LoraLayers by their (now merged) base layers
    report.fused = True
    # Full deltas have no peft layer: add them straight into the weights, still in fp32.
    params = dict(transformer.named_parameters())
    params_orig = {wl.diffusers_to_original(k) for k in params}
    n_full = 0
    for s, lora, bw, rep in plans:
        if lora is None:
            continue
        for name in rep.applied:
            m = lora.modules[name]
            if name in params_orig:  # bare parameter: merged by _merge_bare_params
                continue
            w = float(s.strength) * _module_weight(name, bw)
            for delta, suffix in ((m.diff, ".weight"), (m.diff_b, ".bias")):
                if delta is None or (suffix == ".weight" and m.has_lycoris):  # merged with its LoKr/LoHa/DoRA
                    continue
                dname = wl.original_to_diffusers(name + suffix)
                p = params[dname]  # validate() checked that the model has it
                p.data.copy_((p.data.to(torch.float32) + w * delta.to(torch.float32).reshape(p.shape)).to(p.dtype))
                n_full += 1
    report.notes.append(f"fused in float32 into {merged} layer(s)" + (f" plus {n_full} full delta(s)" if n_full else "")
                        + "; adapters unloaded (strength changes now need a reload of the base weights)")


# ------------------------------------------------------------------------------------------ emotion mapping


def parse_emotion_map(text: str) -> dict[str, str]:
    """``"anger=anger_v2.safetensors, fear: fear.safetensors"`` (commas or new lines) -> {emotion: file}."""
    from ..emotions import get_emotion

    out: dict[str, str] = {}
    for raw in re.split(r"[,\n]", text or ""):
        item = raw.strip()
        if not item or item.startswith("#"):
            continue
        m = re.match(r"^([^=:]+?)\s*[=:]\s*(.+)$", item)
        if not m:
            raise ValueError(f"emotion mapping item {item!r} is not 'emotion=lora_file' (e.g. 'anger=anger.safetensors')")
        emo = get_emotion(m.group(1)).name
        if emo in out:
            raise ValueError(f"emotion {emo!r} is mapped twice in the emotion -> LoRA mapping")
        out[emo] = m.group(2).strip()
    return out


def lora_for_emotion(mapping: str | Mapping[str, str], emotion: str) -> str | None:
    """The LoRA file mapped to ``emotion`` (None when the emotion has no LoRA in the mapping)."""
    from ..emotions import get_emotion

    table = parse_emotion_map(mapping) if isinstance(mapping, str) else {get_emotion(k).name: v for k, v in mapping.items()}
    return table.get(get_emotion(emotion).name)


def resolve_lora_path(name: str) -> Path:
    """A LoRA name from the loras folder (or an absolute path) -> its file."""
    from .. import runtime

    if not name or not str(name).strip():
        raise ValueError("no LoRA file chosen; put .safetensors LoRAs in models/loras and pick one")
    return runtime.resolve_model_file("loras", os.fspath(name))
