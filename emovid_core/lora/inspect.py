"""What a LoRA file is: format, ranks, alphas, scales, targets, blocks, the model it was trained for, trainer metadata."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from ..wan import dit_keys as wl
from .formats import FORMATS, METADATA_KEY, describe_non_finite
from .model import WanLora
from .validate import lora_trained_for, lora_width

# Header keys worth showing (trainer identity and settings); others are counted, not printed.
_INTERESTING_PREFIXES = ("ss_", "modelspec.", "training", "trainer", "format", "emovid_", "base_model", "network_",
                         "lora_", "software", "version", "name", "description")


@dataclass
class LoraInfo:
    name: str
    source_format: str
    format_label: str
    num_modules: int
    num_file_keys: int
    ranks: dict[int, int]  # rank -> module count
    alphas: dict[float, int]
    scales: dict[float, int]
    alpha_source: dict[str, int]  # "key" | "metadata" | "none" -> module count
    targets: list[str]  # block-relative module names (self_attn.q, ffn.0, ...) and top-level modules
    blocks: list[int]
    width: int | None
    architecture: str
    i2v: bool
    full_deltas: int  # modules with .diff/.diff_b
    kinds: dict[str, int]  # "LoRA", "LoKr", "LoHa", "LoRA+DoRA", "diff", ... -> module count
    module_kinds: dict[str, str]  # module -> kind, for every module that is not a plain LoRA pair
    parameters: int
    nbytes: int
    dtypes: list[str]
    unused_keys: dict[str, str]
    metadata: dict[str, str] = field(default_factory=dict)
    non_finite: dict[str, list[str]] = field(default_factory=dict)  # module -> parts holding NaN/inf

    @property
    def block_count(self) -> int:
        return len(self.blocks)

    def lines(self) -> list[str]:
        def counts(d, fmt="{}"):
            return ", ".join(f"{fmt.format(k)} ({v})" if len(d) > 1 else fmt.format(k) for k, v in sorted(d.items())) or "-"

        out = [
            f"file: {self.name}",
            f"format: {self.format_label} [{self.source_format}]",
            f"trained for: {self.architecture}",
            f"modules: {self.num_modules} from {self.num_file_keys} keys; blocks: {self.block_count}"
            + (f" ({self.blocks[0]}-{self.blocks[-1]})" if self.blocks else ""),
            f"rank: {counts(self.ranks)}; alpha: {counts(self.alphas, '{:g}')}; scale alpha/rank: {counts(self.scales, '{:g}')}",
            f"alpha stored as: {counts(self.alpha_source)}",
            f"kinds: {counts(self.kinds)}" + ("" if not self.module_kinds else "; " + _by_kind(self.module_kinds)),
            f"targets: {', '.join(self.targets)}",
            f"parameters: {self.parameters:,} ({self.nbytes / 1e6:.1f} MB, {', '.join(self.dtypes)})",
        ]
        if self.non_finite:
            out.append(f"NOT USABLE: {describe_non_finite(self.non_finite)} (loading refuses this file)")
        if self.full_deltas:
            out.append(f"full-weight/bias deltas (.diff/.diff_b): {self.full_deltas} module(s)")
        if self.unused_keys:
            reasons = Counter(self.unused_keys.values())
            for reason, n in reasons.most_common():
                out.append(f"unused keys: {n}: {reason}")
        shown = {k: v for k, v in self.metadata.items() if k.lower().startswith(_INTERESTING_PREFIXES) or k == METADATA_KEY}
        for k, v in sorted(shown.items()):
            v = " ".join(str(v).split())
            out.append(f"metadata {k}: {v[:160]}{'...' if len(v) > 160 else ''}")
        hidden = len(self.metadata) - len(shown)
        if hidden:
            out.append(f"metadata: {hidden} more header key(s) not shown")
        return out

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["ranks"] = {str(k): v for k, v in self.ranks.items()}
        d["alphas"] = {str(k): v for k, v in self.alphas.items()}
        d["scales"] = {str(k): v for k, v in self.scales.items()}
        return json.loads(json.dumps(d, default=str))

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _by_kind(module_kinds: dict[str, str], limit: int = 4) -> str:
    """``LoKr: blocks.0.self_attn.q, blocks.0.self_attn.k, ... (40)`` per kind that is not plain LoRA."""
    groups: dict[str, list[str]] = {}
    for name, kind in module_kinds.items():
        groups.setdefault(kind, []).append(name)
    return "; ".join(f"{k}: {', '.join(v[:limit])}{', ...' if len(v) > limit else ''} ({len(v)})"
                     for k, v in sorted(groups.items()))


def _relative(name: str) -> str:
    return name.split(".", 2)[2] if wl.block_index(name) is not None else name


def inspect_lora(lora: WanLora) -> LoraInfo:
    mods = list(lora.modules.values())
    low = [m for m in mods if m.rank is not None or m.factors]  # LoKr with two full factors has no rank
    width = lora_width(lora)
    i2v = any(wl.is_i2v_only(m.name) for m in mods)
    arch = lora_trained_for(lora, width)
    arch += ", I2V (has image cross-attention keys)" if i2v else ", T2V or I2V (no image cross-attention keys)"
    order = {k: i for i, k in enumerate(wl.BLOCK_ORIGINAL_TO_DIFFUSERS)}
    targets = sorted({_relative(m.name) for m in mods}, key=lambda t: (order.get(t, 999), t))
    dtypes = sorted({str(t.dtype).replace("torch.", "") for m in mods for t in m.tensors().values()})
    label = FORMATS[lora.source_format].label if lora.source_format in FORMATS else lora.source_format
    return LoraInfo(
        name=lora.name, source_format=lora.source_format, format_label=label, num_modules=len(mods),
        num_file_keys=lora.num_file_keys,
        ranks=dict(Counter(m.rank for m in low if m.rank is not None)),
        alphas=dict(Counter(round(m.effective_alpha, 6) for m in low if m.effective_alpha is not None)),
        scales=dict(Counter(round(m.scale, 6) for m in low)),
        alpha_source=dict(Counter(m.alpha_source for m in low)),
        targets=targets,
        blocks=sorted({wl.block_index(m.name) for m in mods} - {None}),
        width=width, architecture=arch, i2v=i2v,
        full_deltas=sum(1 for m in mods if m.diff is not None or m.diff_b is not None),
        kinds=dict(Counter(m.kind for m in mods)),
        module_kinds={m.name: m.kind for m in mods if m.kind not in ("LoRA", "diff")},
        parameters=sum(t.numel() for m in mods for t in m.tensors().values()),
        nbytes=lora.nbytes(), dtypes=dtypes, unused_keys=dict(lora.unused_keys), metadata=dict(lora.metadata),
        non_finite={k: list(v) for k, v in lora.non_finite.items()},
    )
