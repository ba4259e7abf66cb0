"""Check a normalised LoRA against a target model BEFORE anything is patched.

The target is a :class:`ShapeSpec` (original parameter name -> shape), built from a row of the variant table
(:mod:`emovid_core.wan.variants`; no weights needed, so a 14B check costs nothing) or from detected shapes: an
original-layout state dict or file header, a ComfyUI ModelPatcher or a diffusers ``WanTransformer3DModel``. Every file key ends up applied or skipped with a reason; ``strict`` turns
any skip into an error. A width mismatch (1.3B LoRA on 14B, a Wan2.2 TI2V-5B LoRA on Wan2.1) is always one clear
error naming both rows -- ComfyUI would log one "ERROR lora" line per weight and run the base model. A Wan2.2 A14B
LoRA for one expert (metadata or file name: ``high_noise`` / ``low_noise``) given to the other gets one note naming
both (the shapes fit, so it applies; strict mode refuses it).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

from ..wan import dit_keys as wl
from ..wan.variants import Variant, all_variants, detect_variant, get_variant, width_name
from .model import LoraMismatchError, WanLora


@dataclass
class ShapeSpec:
    shapes: dict[str, tuple[int, ...]]  # original parameter name ("blocks.0.self_attn.q.weight") -> shape
    label: str = "target model"
    variant: Variant | None = None  # the table's row, when the spec was made from one

    @classmethod
    def from_variant(cls, variant: str | Variant) -> "ShapeSpec":
        """A row of the variant table, by name (``t2v-14b``; ``t2v-14B`` and aliases too) or as a :class:`Variant`."""
        v = get_variant(variant) if isinstance(variant, str) else variant
        return cls(v.param_shapes(), v.label, v)

    @cached_property
    def model_variant(self) -> Variant | None:
        """The row these shapes are (given, or detected; Wan2.2 T2V A14B's experts detect as Wan2.1 T2V 14B)."""
        if self.variant is not None:
            return self.variant
        if "patch_embedding.weight" not in self.shapes:
            return None
        try:
            v = detect_variant(self.shapes)
        except ValueError:
            return None
        return None if v.name == "detected" else v

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
    def image_branch(self) -> bool:
        """Image cross-attention (k_img/v_img): Wan2.1 I2V has it, Wan2.2 I2V A14B does not."""
        return any(k.endswith("cross_attn.k_img.weight") for k in self.shapes)

    @cached_property
    def i2v(self) -> bool:
        return self.image_branch or self.shapes.get("patch_embedding.weight", (0, 0))[1:2] == (36,)

    def model_name(self) -> str:
        """``Wan2.1 T2V 1.3B (dim 1536)``: the row's label where known, else the width's name."""
        v, d = self.model_variant, self.dim
        if v is not None and not v.tiny:
            return f"{v.label} (dim {v.dim})"
        return width_name(d) if d else "a model of unknown width"

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
    kinds: dict[str, str] = field(default_factory=dict)  # applied module -> kind, when not a plain LoRA pair

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
        groups: dict[str, list[str]] = {}
        for name in self.applied:
            if name in self.kinds:
                groups.setdefault(self.kinds[name], []).append(name)
        for kind, names in sorted(groups.items()):
            out.append(f"  applied as {kind}: {len(names)} module(s) ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
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


_EXPERT_RE = re.compile(r"(?<![a-z])(high|low)[\s_.-]?noise", re.IGNORECASE)
_EXPERT_METADATA = ("expert", "title", "output_name", "base_model", "name", "architecture")


def lora_expert(lora: WanLora) -> str:
    """``high_noise`` / ``low_noise`` when the LoRA's metadata or file name says which Wan2.2 A14B expert it is for."""
    texts = [str(v) for k, v in lora.metadata.items() if any(w in k.lower() for w in _EXPERT_METADATA)]
    texts.append(lora.path.name if lora.path is not None else "")
    for text in texts:
        m = _EXPERT_RE.search(text)
        if m:
            return f"{m.group(1).lower()}_noise"
    return ""


def lora_trained_for(lora: WanLora, width: int | None = None) -> str:
    """The model a LoRA was trained for, as precisely as its shapes, keys and hints tell: ``Wan2.2 TI2V 5B (dim
    3072)``, ``Wan2.1 I2V 14B (dim 5120)`` (k_img keys), ``Wan2.2 A14B high-noise expert (dim 5120)``, or the width."""
    width = lora_width(lora) if width is None else width
    if width is None:
        return "unknown width (no attention/FFN modules)"
    rows = [v for v in all_variants().values() if v.dim == width and not v.tiny]
    expert = lora_expert(lora)
    if any(wl.is_i2v_only(n) for n in lora.modules):  # k_img/v_img: only Wan2.1 I2V has them
        rows = [v for v in rows if v.has_image_branch]
        if rows:
            return f"{rows[0].generation} I2V {rows[0].size} (dim {width})"
    if expert and any(v.expert == expert for v in rows):
        v = next(v for v in rows if v.expert == expert)
        return f"{v.family} {v.expert_name} expert (dim {width})"
    if len(rows) == 1:
        return f"{rows[0].label} (dim {width})"
    return width_name(width)


def _expert_note(lora: WanLora, spec: ShapeSpec) -> str | None:
    """One sentence when the LoRA names a Wan2.2 A14B expert the model is not (or may not be)."""
    expert, mv = lora_expert(lora), spec.model_variant
    if not expert or mv is None or mv.tiny or mv.expert == expert:
        return None
    lora_name = expert.replace("_", "-")
    if mv.expert:
        return (f"{lora.name} was trained for the Wan2.2 A14B {lora_name} expert, but the model is the {mv.label}: "
                f"give it to the {lora_name} expert's model")
    twins = [v for v in all_variants().values() if v.expert == expert and v.param_shapes() == mv.param_shapes()]
    if twins:
        return (f"{lora.name} was trained for the {twins[0].label}; the model has the {mv.label} shapes, which that "
                f"expert shares: make sure this is the {lora_name} expert")
    return f"{lora.name} was trained for the Wan2.2 A14B {lora_name} expert, but the model is {spec.model_name()}"


def validate(lora: WanLora, spec: ShapeSpec, strict: bool = False, block_weights: Mapping[int, float] | None = None) -> ValidationReport:
    """Decide, per module, apply or skip-with-reason. Raises LoraMismatchError on a width mismatch, or in strict mode."""
    report = ValidationReport(lora.name, spec.describe())
    want, have = lora_width(lora), spec.dim
    if want is not None and have is not None and want != have:
        trained, mv = lora_trained_for(lora, want), spec.model_variant
        fits = mv.family if mv is not None and not mv.tiny else width_name(have).split(" (")[0]
        raise LoraMismatchError(
            f"{lora.name} was trained for {trained}, but the model is {spec.model_name()}: a LoRA only fits the "
            f"model it was trained on, so pick a LoRA for {fits} or load the "
            f"{trained.split(' (')[0]} model")
    expert_note = _expert_note(lora, spec)
    if expert_note:
        if strict:
            raise LoraMismatchError("strict mode: " + expert_note)
        report.notes.append(expert_note)
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
            if wl.is_i2v_only(name) and not spec.image_branch:
                report.skipped[name] = ("image cross-attention (Wan2.1 I2V) module; the target is an I2V model "
                                        "without a CLIP image branch (Wan2.2)" if spec.i2v else
                                        "image cross-attention (I2V) module; the target is a T2V model")
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
        if m.dora_scale is not None and len(target) == 2 and tuple(m.dora_scale.shape) not in (
                (target[0], 1), (1, target[1])):
            report.skipped[name] = (f"dora_scale {tuple(m.dora_scale.shape)} fits neither the output axis "
                                    f"({target[0]}, 1) nor the input axis (1, {target[1]}) of the model's {tuple(target)}")
            continue
        if m.diff_b is not None and name + ".bias" not in spec.shapes:
            report.skipped[name + ".bias"] = "bias delta for a weight without bias"
        report.applied.append(name)
        if m.kind not in ("LoRA", "diff"):
            report.kinds[name] = m.kind
    if dropped_i2v and spec.i2v:
        report.notes.append(f"this LoRA was trained for Wan2.1 I2V (image cross-attention), the model is "
                            f"{spec.model_name()} without a CLIP image branch: dropped the {dropped_i2v} module(s) "
                            "(cross_attn.k_img/v_img); everything else applies")
    elif dropped_i2v:
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
