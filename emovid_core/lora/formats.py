"""LoRA source formats for Wan2.1: safe reading, detection, normalisation to :class:`WanLora`, and writing.

All formats live in ONE table, :data:`FORMATS`: each row says how its keys are spelled (prefix, module-name
space, A/B suffixes) and where it keeps alpha. Everything else is derived from the rows: which suffixes are
LoRA parts, which suffix families tell rows with one prefix apart, how a stem is classified (:func:`classify_stem`),
which prefixes carry peft metadata. Per-module tensors every format shares (alpha, ``.diff``/``.diff_b``, the
``.diff_m`` modulation delta, other writers' pair spellings) are rows of :data:`PARTS`. Reading walks the file's
keys once; writing runs the same table backwards. Adding a format = one row of FORMATS (plus its test);
``test_format_table_examples_all_parse`` and the round-trip tests pick the new row up by themselves.

LyCORIS LoKr/LoHa modules and DoRA magnitudes are not formats of their own: their tensors (rows of
:data:`ALGORITHMS`, read through :data:`PARTS`) sit under the stems of any row, so every name space reads them.

Why so many: ComfyUI 0.3.64 reads only ``diffusion_model.<orig>`` and ``lora_unet_<flat>`` stems for Wan
(every other key is logged "lora key not loaded" and silently ignored), while diffusers reads
``transformer.<diffusers>`` and two converters; DiffSynth-Studio (EmoVid's trainer) writes bare
``blocks.N...lora_A.default.weight`` which neither loads as-is.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from ..atomic import save_safetensors
from ..safetensors_header import SafetensorsHeaderError, read_header, refuse_pickle
from ..wan import dit_keys as wl
from .model import LoraError, LoraModule, NonFiniteLoraError, UnsupportedLoraError, WanLora

METADATA_KEY = "lora_adapter_metadata"  # diffusers/peft LoraConfig JSON in the safetensors header

# Markers of LoRA variants EmoVid refuses (whole file), with the name users know them by and why.
_REFUSED = (
    (".lora_magnitude_vector", "DoRA saved by peft (lora_magnitude_vector)",
     "peft's DoRA normalises by the adapted weight at every strength, a rule core ComfyUI does not have, so the two "
     "runtimes would give different videos; export it with LyCORIS/kohya key names (.dora_scale)"),
    (".oft_", "OFT/BOFT (orthogonal fine-tuning)",
     "it rotates the weight instead of adding a delta; no Wan2.1 trainer we know of writes it"),
    (".a1.weight", "GLoRA (LyCORIS)", "core ComfyUI 0.3.64 disables GLoRA too"),
    (".on_input", "(IA)^3", "it rescales activations, not weights"),
    (".lora_mid.weight", "LoCon with Tucker mid weights", "Tucker mid weights decompose convolution kernels, and the "
     "Wan2.1 layers a LoRA patches are linear"),
)
@dataclass(frozen=True)
class LoraFormat:
    """One LoRA file layout. Everything reading and writing needs about it is in this row."""

    key: str
    label: str
    prefix: str  # key prefix before the module name (written; read too)
    names: str  # name space of the module name: a key of _NAME_CONVERTERS ("original", "diffusers", "flat", ...)
    down: str  # suffix of A (written and read); it also tells this row from others with the same prefix
    up: str  # suffix of B
    alpha: str  # "key" (.alpha tensors) | "metadata" (peft LoraConfig JSON) | "none" (scale folded into B)
    full_deltas: bool  # can it store .diff (full weight) deltas
    example: str
    read_prefixes: tuple[str, ...] = ()  # every prefix read as this format, when more than ``prefix``
    metadata_prefix: str = ""  # prefix of the LoraConfig keys in the header (diffusers pipelines pack them)

    @property
    def prefixes(self) -> tuple[str, ...]:
        return self.read_prefixes or (self.prefix,)

    def stem(self, module: str) -> str:
        return self.prefix + _NAME_WRITERS[self.names](module)


FORMATS: dict[str, LoraFormat] = {f.key: f for f in (
    LoraFormat("comfy", "ComfyUI / original Wan (diffusion_model.)", "diffusion_model.", "original",
               ".lora_A.weight", ".lora_B.weight", "key", True, "diffusion_model.blocks.0.self_attn.q.lora_A.weight",
               read_prefixes=wl.ORIGINAL_PREFIXES),
    LoraFormat("comfy_down_up", "ComfyUI/Kijai down-up (diffusion_model.)", "diffusion_model.", "original",
               ".lora_down.weight", ".lora_up.weight", "key", True, "diffusion_model.blocks.0.self_attn.q.lora_down.weight",
               read_prefixes=wl.ORIGINAL_PREFIXES),
    LoraFormat("comfy_diffusers_names", "diffusers module names under diffusion_model.", "diffusion_model.", "diffusers",
               ".lora_A.weight", ".lora_B.weight", "key", True, "diffusion_model.blocks.0.attn1.to_q.lora_A.weight",
               read_prefixes=wl.ORIGINAL_PREFIXES),
    LoraFormat("bare", "original names, no prefix (peft)", "", "original",
               ".lora_A.weight", ".lora_B.weight", "key", True, "blocks.0.self_attn.q.lora_A.weight"),
    LoraFormat("diffsynth", "DiffSynth-Studio (peft inject, .default)", "", "original",
               ".lora_A.default.weight", ".lora_B.default.weight", "none", False, "blocks.0.self_attn.q.lora_A.default.weight"),
    LoraFormat("diffsynth_pipe", "DiffSynth-Studio pipeline (pipe.dit.)", "pipe.dit.", "original",
               ".lora_A.default.weight", ".lora_B.default.weight", "none", False, "pipe.dit.blocks.0.self_attn.q.lora_A.default.weight"),
    LoraFormat("peft", "peft base_model.model.", "base_model.model.", "original",
               ".lora_A.weight", ".lora_B.weight", "metadata", False, "base_model.model.blocks.0.self_attn.q.lora_A.weight"),
    LoraFormat("diffusers", "diffusers / finetrainers (transformer.)", "transformer.", "diffusers",
               ".lora_A.weight", ".lora_B.weight", "metadata", False, "transformer.blocks.0.attn1.to_q.lora_A.weight",
               metadata_prefix="transformer."),
    LoraFormat("diffusers_bare", "diffusers names, no prefix (peft)", "", "diffusers",
               ".lora_A.weight", ".lora_B.weight", "metadata", False, "blocks.0.attn1.to_q.lora_A.weight"),
    LoraFormat("kohya", "kohya / musubi-tuner (lora_unet_)", "lora_unet_", "flat",
               ".lora_down.weight", ".lora_up.weight", "key", True, "lora_unet_blocks_0_self_attn_q.lora_down.weight"),
    LoraFormat("wanfun", "Wan-Fun / VideoX-Fun (lora_unet__)", "lora_unet__", "flat",
               ".lora_down.weight", ".lora_up.weight", "key", True, "lora_unet__blocks_0_self_attn_q.lora_down.weight"),
    LoraFormat("kohya_mixed", "kohya with mixed _/. separators", "lora_unet_", "hybrid",
               ".lora_down.weight", ".lora_up.weight", "key", True, "lora_unet_blocks_0.self_attn.q.lora_down.weight"),
    LoraFormat("lycoris", "LyCORIS / ai-toolkit LoRA (lycoris_)", "lycoris_", "flat",
               ".lora_down.weight", ".lora_up.weight", "key", True, "lycoris_blocks_0_self_attn_q.lora_down.weight"),
    LoraFormat("onetrainer", "OneTrainer-style (lora_transformer_, flattened diffusers names)", "lora_transformer_",
               "flat_diffusers", ".lora_down.weight", ".lora_up.weight", "key", True,
               "lora_transformer_blocks_0_attn1_to_q.lora_down.weight"),
)}
# What `emovid lora convert --to` offers: the formats core ComfyUI and diffusers load with zero skipped keys.
CONVERT_TARGETS = {"comfy": "comfy", "diffusers": "diffusers", "kohya": "kohya"}


@dataclass(frozen=True)
class KeyPart:
    """A key suffix that is not a format's own A/B spelling: alpha, full deltas, other writers' pair spellings."""

    suffix: str
    part: str  # "down" | "up" | "up_bias" | "alpha" | "diff" | "diff_b" | "dora_scale" | a LoKr/LoHa tensor name
    on: str = ""  # original-name parameter the stem lacks: ".diff_m" on "blocks.N" is a delta on "blocks.N.modulation"


@dataclass(frozen=True)
class Algorithm:
    """A LyCORIS weight-change algorithm other than LoRA: the tensors a module of it holds (next to ``.alpha`` and
    ``.dora_scale``, which every row shares), under any prefix and name space of :data:`FORMATS`."""

    key: str
    label: str
    needs: tuple[str, ...]  # per factor, its alternatives split by "|": a full matrix, or its two low-rank halves
    tucker: tuple[str, ...]  # Tucker (CP) cores: they decompose convolution kernels, refused on Wan's linears
    example: str

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for alt in self.needs for p in re.split(r"[| ]", alt))) + self.tucker

    def missing(self, have) -> str | None:
        """What a module holding the parts ``have`` still lacks (None when complete)."""
        for alt in self.needs:
            if not any(all(p in have for p in a.split()) for a in alt.split("|")):
                return " or ".join(a.replace(" ", "+") for a in alt.split("|"))
        return None


# LoKr: W1 (x) W2, each factor full (lokr_w1) or a product (lokr_w1_a @ lokr_w1_b). LoHa: (w1_a@w1_b) * (w2_a@w2_b).
ALGORITHMS: dict[str, Algorithm] = {a.key: a for a in (
    Algorithm("lokr", "LoKr (LyCORIS Kronecker product)", ("lokr_w1|lokr_w1_a lokr_w1_b", "lokr_w2|lokr_w2_a lokr_w2_b"),
              ("lokr_t2",), "lycoris_blocks_0_self_attn_q.lokr_w1, .lokr_w2_a, .lokr_w2_b, .alpha"),
    Algorithm("loha", "LoHa (LyCORIS Hadamard product)", ("hada_w1_a hada_w1_b hada_w2_a hada_w2_b",),
              ("hada_t1", "hada_t2"), "diffusion_model.blocks.0.ffn.0.hada_w1_a, _w1_b, _w2_a, _w2_b, .alpha"),
)}
_ALGO_OF_PART = {p: a for a in ALGORITHMS.values() for p in a.parts}

PARTS: tuple[KeyPart, ...] = (
    KeyPart(".alpha", "alpha"),
    KeyPart(".diff", "diff"), KeyPart(".diff_b", "diff_b"),
    KeyPart(".w_norm", "diff"), KeyPart(".b_norm", "diff_b"),
    # lightx2v / Kijai distillation LoRAs: a full delta on the block's modulation parameter (blocks.N.diff_m).
    KeyPart(".diff_m", "diff", on=".modulation"),
    KeyPart(".lora_B.bias", "up_bias"),  # peft lora_bias=True
    # Pair spellings of older diffusers attention processors and some converters (read, never written).
    KeyPart(".lora.down.weight", "down"), KeyPart(".lora.up.weight", "up"),
    KeyPart("_lora.down.weight", "down"), KeyPart("_lora.up.weight", "up"),
    KeyPart(".lora_linear_layer.down.weight", "down"), KeyPart(".lora_linear_layer.up.weight", "up"),
    KeyPart(".lora_A", "down"), KeyPart(".lora_B", "up"),
    # DoRA's magnitude on a LoRA, LoKr or LoHa module (LyCORIS/kohya spelling), and every LyCORIS factor.
    KeyPart(".dora_scale", "dora_scale"),
    *(KeyPart("." + p, p) for p in _ALGO_OF_PART),
)


def _known_original(name: str) -> str | None:
    return name if wl.original_to_diffusers(name) is not None else None


def _hybrid_writer(name: str) -> str:
    idx = wl.block_index(name)
    if idx is None:
        return wl.original_to_flat(name)
    return f"blocks_{idx}." + name.split(".", 2)[2]


def _any_spelling(rest: str) -> str | None:
    """After a prefix that names the trainer, any Wan spelling is accepted (some trainers mix them)."""
    return _known_original(rest) or wl.diffusers_to_original(rest) or wl.flat_to_original(rest)


# Module-name spaces: file spelling -> original Wan2.1 name, original -> file spelling, and whether a name is
# spelled that way (it tells rows with one prefix apart: kohya "blocks_0_..." vs kohya_mixed "blocks_0.self_attn").
_NAME_CONVERTERS: dict[str, Callable[[str], str | None]] = {
    "original": _known_original,
    "diffusers": wl.diffusers_to_original,
    "flat": wl.flat_to_original,
    "hybrid": wl.flat_to_original,
    "flat_diffusers": wl.flat_to_original,  # reads both flattened vocabularies
}
_NAME_WRITERS: dict[str, Callable[[str], str]] = {
    "original": lambda n: n,
    "diffusers": lambda n: wl.original_to_diffusers(n),
    "flat": wl.original_to_flat,
    "hybrid": _hybrid_writer,
    "flat_diffusers": lambda n: wl.original_to_flat(wl.original_to_diffusers(n)),
}
_SPELLED: dict[str, Callable[[str], bool]] = {
    "flat": lambda rest: "." not in rest,
    "flat_diffusers": lambda rest: "." not in rest,
    "hybrid": lambda rest: "." in rest,
}


def _derive_tables():
    """Everything the reader needs, derived from FORMATS and PARTS: suffix -> part, suffix -> family (the A
    suffix of the rows that write it; None for alpha/deltas, which every row shares), and the rows per prefix."""
    parts: dict[str, str] = {}
    family: dict[str, str | None] = {}
    for f in FORMATS.values():
        for suffix, part in ((f.down, "down"), (f.up, "up")):
            if parts.setdefault(suffix, part) != part or family.setdefault(suffix, f.down) != f.down:
                raise AssertionError(f"format table: {f.key} reuses suffix {suffix!r} differently from another row")
        if f.names not in _NAME_CONVERTERS or f.alpha not in ("key", "metadata", "none"):
            raise AssertionError(f"format table: {f.key} has an unknown name space or alpha place")
    for p in PARTS:
        if parts.setdefault(p.suffix, p.part) != p.part:
            raise AssertionError(f"format table: part {p.suffix!r} clashes with a format's own suffix")
        family.setdefault(p.suffix, None)
    by_prefix: dict[str, list[LoraFormat]] = {}
    for f in FORMATS.values():
        for prefix in f.prefixes:
            by_prefix.setdefault(prefix, []).append(f)
    ordered = tuple(sorted(((p, tuple(rows)) for p, rows in by_prefix.items()), key=lambda kv: -len(kv[0])))
    longest_first = tuple(sorted(parts.items(), key=lambda kv: -len(kv[0])))
    return parts, family, ordered, longest_first


_PART_BY_SUFFIX, _FAMILY, _ROWS_BY_PREFIX, _PARTS = _derive_tables()
_ON = {p.suffix: p.on for p in PARTS if p.on}
_METADATA_PREFIXES = tuple(sorted({p for f in FORMATS.values() if f.alpha == "metadata" for p in f.prefixes if p},
                                  key=len, reverse=True))


def split_key(key: str) -> tuple[str, str, str] | None:
    """``<stem><suffix>`` -> (stem, suffix, part) for a LoRA tensor key, None if no known suffix."""
    # Fast path (this runs for every key of a 800-tensor file): every pair suffix starts at the last ".lora",
    # every other suffix is the last dotted segment; one dict lookup each.
    i = key.rfind(".lora")
    if i > 0:
        part = _PART_BY_SUFFIX.get(key[i:])
        if part is not None:
            return key[:i], key[i:], part
    j = key.rfind(".")
    if j > 0:
        part = _PART_BY_SUFFIX.get(key[j:])
        if part is not None:
            return key[:j], key[j:], part
    for suffix, part in _PARTS:  # "_lora.down.weight"-style suffixes glued to the stem with an underscore
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], suffix, part
    return None


def classify_stem(stem: str, suffix: str) -> tuple[str, str | None]:
    """Which format a key stem is written in and the original module it names: (format key, module or None).

    Read from the table: the longest prefix that fits picks the candidate rows; among them the rows whose A/B
    suffix family and name spelling fit the key; the first whose converter knows the name wins. After a
    non-empty prefix any Wan spelling is accepted (the prefix already names the trainer).
    """
    family = _FAMILY.get(suffix)
    for prefix, rows in _ROWS_BY_PREFIX:
        if not stem.startswith(prefix):
            continue
        rest = stem[len(prefix):]
        spelled = [f for f in rows if _SPELLED.get(f.names, bool)(rest)] or list(rows)
        fitting = [f for f in spelled if family is None or f.down == family] or spelled
        for f in fitting:
            module = _NAME_CONVERTERS[f.names](rest)
            if module is not None:
                return f.key, module
        return fitting[0].key, (_any_spelling(rest) if prefix else None)
    return "bare", None  # unreachable while a row has the empty prefix


# ---------------------------------------------------------------------------------------------- reading


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a .safetensors file, read through ``safe_open`` (memory-mapped, no extra copy).

    A file safetensors refuses is diagnosed afterwards by :func:`emovid_core.safetensors_header.read_header`
    (:class:`SafetensorsHeaderError`: truncated, not safetensors, ...) so the happy path parses the header only once.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path).expanduser()
    refuse_pickle(path)
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file {str(path)!r} not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError):
        read_header(path)  # raises the specific message when it can tell what is wrong
        raise SafetensorsHeaderError(f"{path.name}: its header reads, but safetensors cannot read its tensor data; "
                                     "the file is corrupt or truncated. Download it again") from None
    return tensors, metadata


def _metadata_alphas(metadata: Mapping[str, str]) -> tuple[Callable[[str, int], float | None], str] | None:
    """From peft/diffusers ``lora_adapter_metadata``: a function (module stem, rank) -> effective alpha."""
    raw = metadata.get(METADATA_KEY)
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(cfg, dict):
        return None
    packed = tuple(f.metadata_prefix for f in FORMATS.values() if f.metadata_prefix)
    cfg = {next((k[len(p):] for p in packed if k.startswith(p)), k): v for k, v in cfg.items()}
    base = cfg.get("lora_alpha")
    patterns = dict(cfg.get("alpha_pattern") or {})
    rslora = bool(cfg.get("use_rslora"))

    def alpha_for(stem: str, rank: int) -> float | None:
        a = base
        for pat, val in patterns.items():
            if stem == pat or stem.endswith("." + pat) or _pattern_matches(pat, stem):
                a = val
                break
        if a is None:
            return None
        # rs-LoRA scales by alpha/sqrt(r); store the alpha that gives that scale under the alpha/r rule.
        return float(a) * math.sqrt(rank) if rslora else float(a)

    return alpha_for, ("rslora" if rslora else "alpha/r")


def _pattern_matches(pattern: str, name: str) -> bool:
    """peft's rule for rank/alpha pattern keys: a regex matching the module name or a dotted suffix of it."""
    try:
        return re.match(rf"(.*\.)?({pattern})$", name) is not None
    except re.error:
        return False


def normalize(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None,
              path: str | Path | None = None, check_finite: bool = True) -> WanLora:
    """Turn a LoRA state dict in any supported format into a :class:`WanLora` (tensors shared, not copied).

    A weight or alpha holding NaN/inf is refused (:class:`NonFiniteLoraError`, modules named) unless
    ``check_finite=False``, which only records them in ``WanLora.non_finite`` (``emovid lora inspect``).
    """
    metadata = dict(metadata or {})
    where = Path(path).name if path is not None else "LoRA"
    for marker, fmt_name, why in _REFUSED:
        hits = [k for k in tensors if marker in k]
        if hits:
            raise UnsupportedLoraError(
                f"{where} is a {fmt_name} file ({len(hits)} keys such as {hits[0]!r}), which EmoVid does not apply: "
                f"{why}. EmoVid applies LoRA, LoKr, LoHa, DoRA (.dora_scale) and .diff deltas; export it from your "
                "trainer as one of those")
    parts: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    stems: dict[str, str] = {}
    formats: dict[str, int] = {}
    unused: dict[str, str] = {}
    resolved: dict[tuple, tuple[str, str | None]] = {}
    for key, tensor in tensors.items():
        split = split_key(key)
        if split is None:
            unused[key] = "not a LoRA tensor (no lora_A/lora_B/lora_down/lora_up/alpha/diff suffix)"
            continue
        stem, suffix, part = split
        stem += _ON.get(suffix, "")  # blocks.N.diff_m is a delta on blocks.N.modulation
        # A and B of one module share a stem: resolve each (stem, suffix family) once per file.
        family = (stem, _FAMILY[suffix])
        got = resolved.get(family)
        if got is None:
            got = resolved[family] = classify_stem(stem, suffix)
        fmt, module = got
        if module is None:
            unused[key] = f"not a Wan2.1 DiT module (read as {FORMATS[fmt].label}: {stem!r})"
            continue
        slot = parts.setdefault(module, {})
        if part in slot:
            unused[key] = f"duplicate {part} for module {module} (already from {slot[part][0]!r})"
            continue
        slot[part] = (key, tensor)
        stems[module] = stem
        # Only the pair suffixes tell comfy from comfy_down_up (or bare from diffsynth); alpha/diff keys vote weakly.
        formats[fmt] = formats.get(fmt, 0) + (1000 if part in ("down", "up") else 1)
    alpha_meta = _metadata_alphas(metadata)
    modules: dict[str, LoraModule] = {}
    for name, slot in parts.items():
        mod = LoraModule(name=name, source_keys=[k for k, _ in slot.values()])
        if "down" in slot and "up" in slot:
            mod.down, mod.up = slot["down"][1], slot["up"][1]
            if mod.up.shape[1] != mod.down.shape[0]:
                raise LoraError(f"{where}: module {name}: up {tuple(mod.up.shape)} and down {tuple(mod.down.shape)} "
                                "ranks differ; the file is corrupt or mixes two LoRAs")
        elif "down" in slot or "up" in slot:
            lone = "down" if "down" in slot else "up"
            unused[slot[lone][0]] = f"{lone} weight without its {'up' if lone == 'down' else 'down'} partner"
            mod.source_keys.remove(slot[lone][0])
        if any(p in _ALGO_OF_PART for p in slot) and not _take_factors(mod, slot, unused, where):
            continue
        if "alpha" in slot:
            if mod.has_lowrank or mod.factors:
                mod.alpha, mod.alpha_source = float(slot["alpha"][1].float().item()), "key"
            else:
                unused[slot["alpha"][0]] = "alpha without a lora down/up pair"
                mod.source_keys.remove(slot["alpha"][0])
        if "dora_scale" in slot:
            if mod.has_lowrank or mod.factors:
                mod.dora_scale = slot["dora_scale"][1]
            else:
                unused[slot["dora_scale"][0]] = "dora_scale without LoRA/LoKr/LoHa weights to scale"
                mod.source_keys.remove(slot["dora_scale"][0])
        elif mod.has_lowrank and alpha_meta is not None:
            a = alpha_meta[0](_meta_stem(stems[name]), mod.rank)
            if a is not None:
                mod.alpha, mod.alpha_source = a, "metadata"
        if "diff" in slot:
            mod.diff = slot["diff"][1]
        bias = slot.get("diff_b") or slot.get("up_bias")
        if bias is not None:
            # A peft lora_B.bias is scaled like lora_B; fold that scale in so diff_b is the plain bias delta.
            mod.diff_b = bias[1] if "diff_b" in slot or not mod.has_lowrank else bias[1] * mod.scale
        if "diff_b" in slot and "up_bias" in slot:
            unused[slot["up_bias"][0]] = "second bias delta (the .diff_b key is used)"
            mod.source_keys.remove(slot["up_bias"][0])
        if mod.has_lowrank or mod.factors or mod.diff is not None or mod.diff_b is not None:
            modules[name] = mod
    if not modules:
        first = ", ".join(repr(k) for k in list(tensors)[:3]) or "(no tensors)"
        why = next(((k, r) for k, r in unused.items() if not r.startswith(("not a LoRA tensor", "not a Wan2.1"))), None)
        if why is not None:  # Wan modules were there, but none usable: say why, not which spellings exist
            raise LoraError(f"{where}: no usable Wan2.1 LoRA module among {len(tensors)} keys; {why[0]!r}: {why[1]}")
        raise LoraError(f"{where}: no Wan2.1 LoRA weights found among {len(tensors)} keys (first: {first}); "
                        f"supported spellings: {', '.join(f.example for f in FORMATS.values())}")
    strong = {f for f, n in formats.items() if n >= 1000} or set(formats)
    fmt = next(iter(strong)) if len(strong) == 1 else "mixed(" + "+".join(sorted(strong)) + ")"
    # One reduction per tensor just read: NaN/inf would be applied silently and give a black video.
    bad = {name: parts for name, mod in modules.items() if (parts := mod.non_finite_parts())}
    if bad and check_finite:
        raise NonFiniteLoraError(f"{where}: {describe_non_finite(bad)}; the file is corrupt or its training diverged "
                                 "(use an earlier checkpoint or retrain with a lower learning rate)")
    return WanLora(modules=dict(sorted(modules.items(), key=lambda kv: _module_sort_key(kv[0]))), source_format=fmt,
                   metadata=metadata, path=Path(path) if path is not None else None, unused_keys=unused,
                   num_file_keys=len(tensors), non_finite=dict(sorted(bad.items(), key=lambda kv: _module_sort_key(kv[0]))))


def _take_factors(mod: LoraModule, slot: dict, unused: dict[str, str], where: str) -> bool:
    """Move a module's LoKr/LoHa tensors from ``slot`` into ``mod.factors``; False (its keys listed in ``unused``
    with the reason) when the module cannot be applied: Tucker cores, convolution factors, or an incomplete set."""
    algos = {_ALGO_OF_PART[p] for p in slot if p in _ALGO_OF_PART}
    if len(algos) > 1 or mod.has_lowrank:
        kinds = sorted(a.label.split(" ")[0] for a in algos) + (["LoRA"] if mod.has_lowrank else [])
        raise LoraError(f"{where}: module {mod.name} holds {' and '.join(kinds)} tensors at once; the file is corrupt "
                        "or mixes two LoRAs")
    algo = algos.pop()
    have = {p: t for p, (_, t) in slot.items() if p in _ALGO_OF_PART}
    reason = None
    if any(p in have for p in algo.tucker):
        reason = (f"{algo.label} with Tucker cores ({', '.join(p for p in algo.tucker if p in have)}): they decompose "
                  "convolution kernels, and the Wan2.1 layers EmoVid patches are linear; export without use_tucker")
    elif any(t.dim() != 2 for t in have.values()):
        reason = f"{algo.label} factors for a convolution layer; EmoVid applies {algo.key} on linear layers only"
    elif (lack := algo.missing(have)) is not None:
        reason = f"incomplete {algo.label} module: no {lack}"
    if reason is not None:
        for key, _ in slot.values():
            unused[key] = reason
        return False
    mod.algo, mod.factors = algo.key, have
    pairs = [("lokr_w1_a", "lokr_w1_b"), ("lokr_w2_a", "lokr_w2_b"), ("hada_w1_a", "hada_w1_b"), ("hada_w2_a", "hada_w2_b")]
    for a, b in pairs:
        if a in have and have[a].shape[1] != have[b].shape[0]:
            raise LoraError(f"{where}: module {mod.name}: {a} {tuple(have[a].shape)} and {b} {tuple(have[b].shape)} "
                            "ranks differ; the file is corrupt or mixes two LoRAs")
    if algo.key == "loha" and (have["hada_w1_a"].shape[0], have["hada_w1_b"].shape[1]) != (
            have["hada_w2_a"].shape[0], have["hada_w2_b"].shape[1]):
        raise LoraError(f"{where}: module {mod.name}: the two LoHa products have different shapes; the file is corrupt")
    return True


def describe_non_finite(bad: Mapping[str, list[str]], limit: int = 8) -> str:
    """``2 module(s) hold NaN or inf: blocks.0.self_attn.q (up, alpha), ...`` for an error or a report line."""
    names = sorted(bad, key=_module_sort_key)
    shown = ", ".join(f"{n} ({', '.join(bad[n])})" for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{len(names)} module(s) hold NaN or inf values: {shown}{more}"


def _meta_stem(stem: str) -> str:
    """The module name as a LoraConfig pattern names it: the stem without a metadata-format row's prefix."""
    for p in _METADATA_PREFIXES:
        if stem.startswith(p):
            return stem[len(p):]
    return stem


def _module_sort_key(name: str):
    idx = wl.block_index(name)
    return (0 if idx is not None else 1, idx or 0, name)


def load_lora(source: str | Path | WanLora, check_finite: bool = True) -> WanLora:
    """Read and normalise a LoRA file (safetensors only); a :class:`WanLora` is returned unchanged.

    NaN/inf weights or alphas are refused (see :func:`normalize`) unless ``check_finite=False``.
    """
    if isinstance(source, WanLora):
        return source
    tensors, metadata = read_safetensors(source)
    return normalize(tensors, metadata, path=Path(source).expanduser(), check_finite=check_finite)


# ---------------------------------------------------------------------------------------------- writing


def lora_config_dict(lora: WanLora, names: str = "diffusers") -> dict:
    """peft LoraConfig kwargs (r, lora_alpha, rank/alpha patterns, target_modules) for the low-rank modules."""
    mods = [m for m in lora.modules.values() if m.has_lowrank]
    if not mods:
        return {}
    to_name = _NAME_WRITERS[names]
    ranks = {to_name(m.name): m.rank for m in mods}
    alphas = {to_name(m.name): m.effective_alpha for m in mods}
    r = Counter(ranks.values()).most_common(1)[0][0]
    a = Counter(alphas.values()).most_common(1)[0][0]
    return {
        "r": r, "lora_alpha": a,
        "rank_pattern": {k: v for k, v in ranks.items() if v != r},
        "alpha_pattern": {k: v for k, v in alphas.items() if v != a},
        "target_modules": sorted(ranks), "lora_dropout": 0.0, "bias": "none", "use_rslora": False, "use_dora": False,
        "lora_bias": any(m.diff_b is not None for m in mods), "init_lora_weights": True,
    }


def lora_state_dict(lora: WanLora, fmt: str) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """(tensors, extra metadata, notes) for ``lora`` written in format ``fmt`` (a key of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise LoraError(f"unknown LoRA format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    f = FORMATS[fmt]
    out: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    folded = 0
    for m in lora.modules.values():
        stem = f.stem(m.name)
        if m.has_lycoris and f.alpha != "key":
            raise LoraError(f"module {m.name} is a {m.kind} module, which the {f.label} format cannot hold (it stores "
                            "LoRA A/B pairs only, and its loaders refuse LyCORIS tensors); convert to comfy or kohya "
                            "instead, which core ComfyUI applies with its own LoKr/LoHa/DoRA adapters")
        if m.diff is not None and not f.full_deltas:
            raise LoraError(f"module {m.name} carries a full-weight delta (.diff), which the {f.label} format cannot "
                            "store; write it as comfy or kohya instead")
        if m.has_lowrank:
            up = m.up
            if f.alpha == "none" and m.effective_alpha != m.rank:
                # No place for alpha: fold alpha/rank into B so every loader (alpha = rank) gets the same delta.
                up = (m.up.float() * m.scale).to(m.up.dtype)
                folded += 1
            out[stem + f.down] = m.down
            out[stem + f.up] = up
            if f.alpha == "key":
                out[stem + ".alpha"] = torch.tensor(m.effective_alpha, dtype=torch.float32)
        if m.factors:  # LoKr/LoHa: the LyCORIS tensor names after any stem; alpha only when the file had one
            out.update({f"{stem}.{part}": t for part, t in m.factors.items()})
            if m.alpha is not None:
                out[stem + ".alpha"] = torch.tensor(float(m.alpha), dtype=torch.float32)
        if m.dora_scale is not None:
            out[stem + ".dora_scale"] = m.dora_scale
        if m.diff is not None:
            out[stem + ".diff"] = m.diff
        if m.diff_b is not None:
            if f.full_deltas:
                out[stem + ".diff_b"] = m.diff_b
            elif m.has_lowrank and f.alpha == "metadata":
                # peft's lora_B.bias is multiplied by the module scale; store it pre-divided.
                out[stem + ".lora_B.bias"] = (m.diff_b.float() / m.scale).to(m.diff_b.dtype) if m.scale else m.diff_b
            else:
                raise LoraError(f"module {m.name} carries a bias delta (.diff_b) that the {f.label} format cannot "
                                "store; write it as comfy or kohya instead")
    meta: dict[str, str] = {}
    if f.alpha == "metadata":
        cfg = lora_config_dict(lora, names=f.names)
        if f.metadata_prefix:  # pipelines read header keys packed with the component prefix
            cfg = {f"{f.metadata_prefix}{k}": v for k, v in cfg.items()}
        meta[METADATA_KEY] = json.dumps(cfg, sort_keys=True)
    if folded:
        notes.append(f"alpha/rank folded into lora_B for {folded} module(s): the {f.label} format stores no alpha")
    return out, meta, notes


def write_lora(lora: WanLora, path: str | Path, fmt: str = "comfy", metadata: Mapping[str, str] | None = None) -> list[str]:
    """Write ``lora`` as safetensors in ``fmt`` atomically; the source metadata is kept. Returns notes."""
    tensors, extra, notes = lora_state_dict(lora, fmt)
    meta = {k: v for k, v in lora.metadata.items() if k != METADATA_KEY}  # a stale LoraConfig would mis-scale
    meta.update(metadata or {})
    meta.update(extra)
    meta["emovid_lora_format"] = fmt
    save_safetensors(tensors, path, metadata=meta)
    return notes


def from_tensors(modules: Mapping[str, tuple[torch.Tensor, torch.Tensor, float | None]],
                 metadata: Mapping[str, str] | None = None) -> WanLora:
    """Build a :class:`WanLora` from ``{original module name: (down, up, alpha)}`` (tests, demos, converters)."""
    out = {}
    for name, (down, up, alpha) in modules.items():
        if _known_original(name) is None:
            raise LoraError(f"{name!r} is not an original Wan2.1 module name (e.g. blocks.0.self_attn.q, blocks.0.ffn.0)")
        out[name] = LoraModule(name, down=down, up=up, alpha=None if alpha is None else float(alpha),
                               alpha_source="key" if alpha is not None else "none")
    return WanLora(modules=out, source_format="memory", metadata=dict(metadata or {}))
