"""Check a normalised LoRA against a target model BEFORE anything is patched.

The target is a :class:`ShapeSpec` (original parameter name -> shape), built from a row of the variant table
(:mod:`emovid_core.wan.variants`; no weights needed, so a 14B check costs nothing) or from detected shapes: an
original-layout state dict or file header, a ComfyUI ModelPatcher or a diffusers ``WanTransformer3DModel``. Every file key ends up applied or skipped with a reason; ``strict`` turns
any skip into an error. A width mismatch (1.3B LoRA on 14B, or the reverse) is always one clear error --
ComfyUI would log one "ERROR lora" line per weight and run the base model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

from ..wan import dit_keys as wl
from ..wan.variants import Variant, get_variant, width_name
from .model import LoraMismatchError, WanLora


@dataclass
class ShapeSpec:
    shapes: dict[str, tuple[int, ...]]  # original parameter name ("blocks.0.self_attn.q.weight") -> shape
    label: str = "target model"

    @classmethod
    def from_variant(cls, variant: str | Variant) -> "ShapeSpec":
        """A row of the variant table, by name (``t2v-14b``; ``t2v-14B`` and aliases too) or as a :class:`Variant`."""
        v = get_variant(variant) if isinstance(variant, str) else variant
        return cls(v.param_shapes(), v.label)

    @classmethod
    def from_state_dict(cls, sd: Mapping, label: str = "target model") -> "ShapeSpec":
        """Original-layout names, with or without ``diffusion_model.``; values are tensors or shapes."""
        return cls({k: tuple(v.shape if hasattr(v, "shape") else v) for k, v in wl.strip_prefixes(sd).items()}, label)

    @classmethod
    def from_diffusers(cls, transformer, label: str | None = None) -> "ShapeSpec":
        shapes = {}
        for k, v in transformer.state_dict().items():
            if ".lora_" in k or ".base_layer." in k:  # peft-wrapped: "attn1.to_q.base_layer.weight"
                if ".base_layer." not in k:
                    continue
                k = k.replace(".base_layer.", ".")
            orig = wl.diffusers_to_original(k)
            if orig is not None:
                shapes[orig] = tuple(v.shape)
        return cls(shapes, label or f"diffusers {type(transformer).__name__}")

    @cached_property
    def dim(self) -> int | None:
        for key, axis in (("head.modulation", -1), ("blocks.0.self_attn.q.weight", 0), ("blocks.0.ffn.0.weight", 1)):
            if key in self.shapes:
                return self.shapes[key][axis]
        return None

    @cached_property
    def i2v(self) -> bool:
        return any(k.endswith("cross_attn.k_img.weight") for k in self.shapes)

    @cached_property
    def num_blocks(self) -> int:
        return len({wl.block_index(k) for k in self.shapes} - {None})

    def describe(self) -> str:
        d = self.dim
        return f"{self.label}: {width_name(d) if d else 'unknown width'}, {self.num_blocks} blocks, {'I2V' if self.i2v else 'T2V'}"


@dataclass
class ValidationReport:
    lora_name: str
    target: str
    applied: list[str] = field(default_factory=list)  # module names that will be patched
    skipped: dict[str, str] = field(default_factory=dict)  # module name or file key -> reason
    notes: list[str] = field(default_factory=list)
    file_keys: dict[str, int] = field(default_factory=dict)  # "applied"/"skipped" -> number of file keys

    @property
    def ok(self) -> bool:
        return not self.skipped

    def lines(self) -> list[str]:
        keys = (f"; file keys: {self.file_keys.get('applied', 0)} applied, {self.file_keys.get('skipped', 0)} skipped"
                if self.file_keys else "")
        out = [f"{self.lora_name}: {len(self.applied)} module(s) applied, {len(self.skipped)} skipped{keys} ({self.target})"]
        by_reason = Counter(self.skipped.values())
        for reason, n in by_reason.most_common():
            example = next(k for k, r in self.skipped.items() if r == reason)
            out.append(f"  skipped {n}: {reason} (e.g. {example})")
        out += [f"  note: {n}" for n in self.notes]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def lora_width(lora: WanLora) -> int | None:
    """Model width D the LoRA was trained for, read from the shapes of its attention / FFN modules."""
    votes: Counter = Counter()
    for name, m in lora.modules.items():
        shape = m.weight_shape
        if shape is None or len(shape) != 2:
            continue
        if ".self_attn." in name or ".cross_attn." in name or name.endswith(".ffn.2"):
            votes[shape[0]] += 1
        elif name.endswith(".ffn.0"):
            votes[shape[1]] += 1
    return votes.most_common(1)[0][0] if votes else None


def validate(lora: WanLora, spec: ShapeSpec, strict: bool = False, block_weights: Mapping[int, float] | None = None) -> ValidationReport:
    """Decide, per module, apply or skip-with-reason. Raises LoraMismatchError on a width mismatch, or in strict mode."""
    report = ValidationReport(lora.name, spec.describe())
    want, have = lora_width(lora), spec.dim
    if want is not None and have is not None and want != have:
        raise LoraMismatchError(
            f"{lora.name} was trained for {width_name(want)} but the model is {width_name(have)}; a LoRA only "
            f"fits the model size it was trained on: pick a LoRA for {width_name(have).split(' (')[0]} or load the "
            f"{width_name(want).split(' (')[0]} model")
    for key, reason in lora.unused_keys.items():
        report.skipped[key] = reason
    dropped_i2v = 0
    for name, m in lora.modules.items():
        idx = wl.block_index(name)
        if block_weights is not None and idx is not None and block_weights.get(idx, 0.0) == 0.0:
            report.skipped[name] = "outside the selected blocks"
            continue
        wkey = name + ".weight"
        target = spec.shapes.get(wkey)
        if target is None and name in spec.shapes:  # bare parameters such as blocks.N.modulation
            target = spec.shapes[name]
        if target is None:
            if wl.is_i2v_only(name) and not spec.i2v:
                report.skipped[name] = "image cross-attention (I2V) module; the target is a T2V model"
                dropped_i2v += 1
            elif idx is not None and idx >= spec.num_blocks:
                report.skipped[name] = f"block {idx} does not exist (the model has {spec.num_blocks} blocks)"
            else:
                report.skipped[name] = "no such weight in the target model"
            continue
        shape = m.weight_shape
        if shape is not None and tuple(shape) != tuple(target) and not (
                m.diff is None and int(_prod(shape)) == int(_prod(target))):
            report.skipped[name] = f"shape {tuple(shape)} does not match the model's {tuple(target)}"
            continue
        if m.diff_b is not None and name + ".bias" not in spec.shapes:
            report.skipped[name + ".bias"] = "bias delta for a weight without bias"
        report.applied.append(name)
    if dropped_i2v:
        report.notes.append(f"I2V LoRA on a T2V model: dropped the {dropped_i2v} image cross-attention module(s) "
                            "(cross_attn.k_img/v_img); everything else applies")
    applied_keys = sum(len(lora.modules[n].source_keys) or 1 for n in report.applied)
    report.file_keys = {"applied": applied_keys, "skipped": max(lora.num_file_keys - applied_keys, 0)
                        if lora.num_file_keys else len(report.skipped)}
    if strict and report.skipped:
        raise LoraMismatchError("strict mode: " + "\n".join(report.lines())
                                + "\nturn strict off to apply the rest, or fix the LoRA/model pairing")
    return report


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
