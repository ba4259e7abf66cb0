"""The canonical LoRA form every source format is normalised to.

One :class:`LoraModule` per original Wan2.1 module name (``blocks.0.self_attn.q``, ``blocks.3.cross_attn.k_img``,
``blocks.1.ffn.0``), holding the low-rank pair (down = A ``[r, in]``, up = B ``[out, r]``) with its alpha, or the
LyCORIS factors of a LoKr / LoHa module (``factors``), optionally a DoRA magnitude (``dora_scale``), and/or full
deltas (``diff`` for the weight, ``diff_b`` for the bias). The effective weight change at strength s is
``s * (alpha / rank) * up @ down + s * diff`` -- ComfyUI's and diffusers' rule; a file that stores no alpha
means alpha = rank (scale 1) in both.

LoKr, LoHa and DoRA follow ComfyUI 0.3.64's weight adapters (``comfy/weight_adapter/{lokr,loha,base}.py``), so
the diffusers pipeline merges exactly what core ComfyUI applies:

- LoKr: ``kron(W1, W2) * alpha / dim`` with ``Wi = lokr_wi`` or ``lokr_wi_a @ lokr_wi_b``; ``dim`` is the rank of
  the factor that is a product (w2's when both are); alpha is ignored (scale 1) when both factors are full.
- LoHa: ``(hada_w1_a @ hada_w1_b) * (hada_w2_a @ hada_w2_b) * alpha / rank``, rank = rows of ``hada_w1_b``.
- DoRA (``dora_scale``): ``W' = (W + d) * dora_scale / ||.||`` with d the scaled delta above, at strength s
  ``W + s * (W' - W)``. The norm is taken per output row of the *base* weight when ``dora_scale`` is
  ``[out, 1]`` and per input column of ``W + d`` when it is ``[1, in]`` -- ComfyUI's rule (LyCORIS takes both
  norms of ``W + d`` and interpolates the scale, not the weight, so the two differ off strength 1 and on the
  output axis; we follow ComfyUI so both runtimes give the same video).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch


class LoraError(ValueError):
    """A LoRA file that cannot be used as asked; the message names the file or key and suggests a fix."""


class UnsupportedLoraError(LoraError):
    """The file is a LoRA variant (LoKr, LoHa, DoRA, ...) EmoVid does not apply."""


class NonFiniteLoraError(LoraError):
    """A weight or alpha holds NaN or inf: applied, it would turn every generated frame black."""


def _finite(t: torch.Tensor) -> bool:
    """Whether every value is finite, in one reduction at about memory speed.

    min and max propagate NaN, and +inf/-inf become the max/min, so both are finite exactly when every value is.
    ``isfinite(t).all()`` says the same but allocates a mask and runs ~20x slower (711 ms vs 33 ms for the
    153 M parameters of a 14B rank-32 LoRA on one core), which alone would make loading 40x a plain load_file.
    """
    if not t.is_floating_point() or t.numel() == 0:
        return True
    if t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = t.float()  # fp8 and friends: no reduction kernels for them
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


def lokr_weight(f: "dict[str, torch.Tensor]", dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, int | None]:
    """(kron(W1, W2), dim) of LoKr factors ``f`` (``lokr_w1`` or ``lokr_w1_a``/``_b``, same for w2), in ``dtype``."""
    dim = None
    mats = []
    for i in (1, 2):
        full = f.get(f"lokr_w{i}")
        if full is not None:
            mats.append(full.to(dtype))
        else:
            a, b = f[f"lokr_w{i}_a"].to(dtype), f[f"lokr_w{i}_b"].to(dtype)
            dim = int(b.shape[0])  # ComfyUI: w2's rank wins when both factors are products
            mats.append(torch.mm(a, b))
    return torch.kron(mats[0], mats[1]), dim


def loha_weight(f: "dict[str, torch.Tensor]", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(hada_w1_a @ hada_w1_b) * (hada_w2_a @ hada_w2_b)`` in ``dtype`` (the Hadamard product of two low-rank mats)."""
    m1 = torch.mm(f["hada_w1_a"].to(dtype), f["hada_w1_b"].to(dtype))
    m2 = torch.mm(f["hada_w2_a"].to(dtype), f["hada_w2_b"].to(dtype))
    return m1 * m2


def dora_merge(weight: torch.Tensor, diff: torch.Tensor, dora_scale: torch.Tensor, strength: float) -> torch.Tensor:
    """ComfyUI's weight decomposition (see the module docstring): ``weight`` and the scaled ``diff`` in float32.

    The operations are ComfyUI's, in its order, so a merge here equals core ComfyUI's patched weight bit for bit.
    """
    scale = dora_scale.to(weight.dtype)
    calc = weight + diff
    if scale.shape[0] == calc.shape[0]:  # magnitude per output row: ComfyUI normalises by the base weight
        norm = weight.reshape(weight.shape[0], -1).norm(dim=1, keepdim=True)
        norm = norm.reshape(weight.shape[0], *[1] * (weight.dim() - 1))
    else:  # per input column, of the changed weight
        norm = calc.transpose(0, 1).reshape(calc.shape[1], -1).norm(dim=1, keepdim=True)
        norm = norm.reshape(calc.shape[1], *[1] * (calc.dim() - 1)).transpose(0, 1)
    norm = norm + torch.finfo(weight.dtype).eps
    calc *= scale / norm
    if strength == 1.0:
        return calc
    calc -= weight
    return weight + strength * calc


class LoraMismatchError(LoraError):
    """The LoRA was trained for another model (width 1.3B vs 14B) or, in strict mode, keys would be skipped."""


@dataclass
class LoraModule:
    name: str  # original Wan2.1 module name, without "diffusion_model."
    down: torch.Tensor | None = None  # A: [rank, in] (or [rank, in, *k] for convs)
    up: torch.Tensor | None = None  # B: [out, rank]
    alpha: float | None = None  # None: the file stores none -> alpha = rank (scale 1)
    diff: torch.Tensor | None = None  # full weight delta [out, in, ...]
    diff_b: torch.Tensor | None = None  # bias delta [out]
    source_keys: list[str] = field(default_factory=list)
    alpha_source: str = "none"  # "key" (a .alpha tensor), "metadata" (peft header), "none"
    algo: str = "lora"  # "lora" | "lokr" | "loha": a key of formats.ALGORITHMS
    factors: dict[str, torch.Tensor] = field(default_factory=dict)  # LoKr/LoHa tensors by part ("lokr_w1", ...)
    dora_scale: torch.Tensor | None = None  # DoRA magnitude, [out, 1] or [1, in]

    @property
    def has_lowrank(self) -> bool:
        return self.down is not None and self.up is not None

    @property
    def has_lycoris(self) -> bool:
        """A LoKr/LoHa module, or a LoRA with DoRA: merged by formula, never a peft LoRA adapter."""
        return bool(self.factors) or self.dora_scale is not None

    @property
    def kind(self) -> str:
        """What the module applies, as reports name it: ``LoRA``, ``LoKr``, ``LoHa``, ``LoRA+DoRA``, ``diff``."""
        if not self.has_lowrank and not self.factors:
            return "diff"
        name = {"lora": "LoRA", "lokr": "LoKr", "loha": "LoHa"}[self.algo]
        return name + ("+DoRA" if self.dora_scale is not None else "")

    @property
    def rank(self) -> int | None:
        if self.algo == "lokr":
            return next((int(self.factors[f"lokr_w{i}_b"].shape[0]) for i in (2, 1) if f"lokr_w{i}_b" in self.factors), None)
        if self.algo == "loha":
            return int(self.factors["hada_w1_b"].shape[0])
        return int(self.down.shape[0]) if self.down is not None else None

    @property
    def effective_alpha(self) -> float | None:
        if self.factors:
            return float(self.alpha) if self.alpha is not None and self.rank is not None else None
        if not self.has_lowrank:
            return None
        return float(self.alpha) if self.alpha is not None else float(self.rank)

    @property
    def scale(self) -> float:
        """alpha / rank (1.0 without a low-rank pair, or a LoKr whose factors are both full, or without alpha)."""
        if self.factors:
            return self.alpha / self.rank if self.alpha is not None and self.rank is not None else 1.0
        return self.effective_alpha / self.rank if self.has_lowrank else 1.0

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        """(out, in, ...) of the weight this module changes, as far as the file tells."""
        if self.diff is not None:
            return tuple(self.diff.shape)
        if self.algo == "lokr":
            (o1, i1), (o2, i2) = (self._lokr_factor_shape(i) for i in (1, 2))
            return (o1 * o2, i1 * i2)
        if self.algo == "loha":
            return (int(self.factors["hada_w1_a"].shape[0]), int(self.factors["hada_w1_b"].shape[1]))
        if self.has_lowrank:
            return (int(self.up.shape[0]), *self.down.shape[1:])
        return None

    def _lokr_factor_shape(self, i: int) -> tuple[int, int]:
        full = self.factors.get(f"lokr_w{i}")
        if full is not None:
            return int(full.shape[0]), int(full.shape[1])
        return int(self.factors[f"lokr_w{i}_a"].shape[0]), int(self.factors[f"lokr_w{i}_b"].shape[1])

    def raw_delta(self, dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
        """The unscaled product (B @ A, kron(W1, W2), the LoHa Hadamard product), shaped like the weight."""
        if self.algo == "lokr":
            return lokr_weight(self.factors, dtype)[0].reshape(self.weight_shape)
        if self.algo == "loha":
            return loha_weight(self.factors, dtype).reshape(self.weight_shape)
        if self.has_lowrank:
            return (self.up.to(dtype).flatten(1) @ self.down.to(dtype).flatten(1)).reshape(self.weight_shape)
        return None

    @torch.no_grad()
    def merged(self, weight: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """``weight`` (float32, the layer's current weight) with this module applied at ``strength``: ComfyUI's
        rule for every kind, DoRA's weight decomposition included (see the module docstring)."""
        out = weight
        raw = self.raw_delta(weight.dtype)
        if raw is not None:
            raw = raw.reshape(weight.shape)
            if self.dora_scale is not None:
                out = dora_merge(weight, raw * self.scale, self.dora_scale, strength)
            else:
                out = weight + (strength * self.scale) * raw
        if self.diff is not None:
            out = out + strength * self.diff.to(weight.dtype).reshape(weight.shape)
        return out

    @property
    def out_features(self) -> int | None:
        if self.weight_shape is not None:
            return self.weight_shape[0]
        return int(self.diff_b.shape[0]) if self.diff_b is not None else None

    def weight_delta(self, strength: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
        """strength * (alpha/rank) * up @ down (or the LoKr/LoHa product) + strength * diff, in ``dtype`` (fp32 by
        default). A DoRA module changes the weight's norm, which is no additive delta: use :meth:`merged`."""
        if self.dora_scale is not None:
            raise ValueError(f"{self.name} is a DoRA module: its change depends on the weight; use merged(weight)")
        delta = self.raw_delta(dtype)
        if delta is not None:
            delta = delta * (strength * self.scale)
        if self.diff is not None:
            d = self.diff.to(dtype) * strength
            delta = d if delta is None else delta + d
        return delta

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the module by part name (down, up, diff, diff_b, dora_scale, LoKr/LoHa factors)."""
        out = {p: t for p in ("down", "up", "diff", "diff_b", "dora_scale") if (t := getattr(self, p)) is not None}
        out.update(self.factors)
        return out

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    def non_finite_parts(self) -> list[str]:
        """The parts holding NaN or inf (``down``, ``up``, ``alpha``, ``lokr_w1``, ...): one pass per tensor."""
        bad = [part for part, t in self.tensors().items() if not _finite(t)]
        if self.alpha is not None and not math.isfinite(self.alpha):
            bad.append("alpha")
        return bad


@dataclass
class WanLora:
    """A LoRA normalised to original Wan2.1 module names, plus what the file said about itself."""

    modules: dict[str, LoraModule]
    source_format: str  # a key of formats.FORMATS, or "mixed(a+b)"
    metadata: dict[str, str] = field(default_factory=dict)  # safetensors header metadata, as stored
    path: Path | None = None
    # File keys not turned into a module part, key -> reason (e.g. not a Wan2.1 module). Every key of the
    # file is either a part of one module (LoraModule.source_keys) or listed here.
    unused_keys: dict[str, str] = field(default_factory=dict)
    num_file_keys: int = 0
    non_finite: dict[str, list[str]] = field(default_factory=dict)  # module -> parts holding NaN/inf

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "<in-memory LoRA>"

    def __len__(self) -> int:
        return len(self.modules)

    def nbytes(self) -> int:
        return sum(m.nbytes() for m in self.modules.values())
