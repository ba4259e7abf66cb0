"""What the LoRA tests share (as diffusers' tests/lora/utils.py): the reference formula the patched weights must equal.

Computed here from the raw tensors, never through the pack's own patching code, so a test that compares against it
checks the loader and not the loader against itself. Fixtures live in this folder's conftest.py.
"""

from __future__ import annotations

import torch

from emovid_core.wan import dit_keys as wl


def expected_weight(base: dict, lora, name: str, strength: float, key: str | None = None) -> torch.Tensor:
    """W + strength * (alpha / rank) * B @ A for one module of ``lora``, in float32, returned in W's dtype.

    ``base`` is a state dict; ``key`` names W in it (default: the module's original Wan2.1 name + ``.weight``).
    """
    m = lora.modules[name]
    w = base[key if key is not None else name + ".weight"]
    return (w.float() + strength * (m.effective_alpha / m.rank) * (m.up.float() @ m.down.float())).to(w.dtype)


def expected_diffusers_weights(base: dict, lora, strength: float, modules=None) -> dict[str, torch.Tensor]:
    """:func:`expected_weight` of every module (or of the original names in ``modules``) keyed by the diffusers
    transformer's weight names, for comparing with a diffusers ``WanTransformer3DModel.state_dict()``."""
    out = {}
    for name in lora.modules:
        if modules is not None and name not in modules:
            continue
        key = wl.original_to_diffusers(name) + ".weight"
        out[key] = expected_weight(base, lora, name, strength, key=key)
    return out


# ---------------------------------------------------------------------------------------------- LyCORIS
# LoKr / LoHa / DoRA modules spelled by hand (the tensor names LyCORIS writes), and the weight they must give,
# written out from the definitions (torch.kron, the Hadamard product, ComfyUI's weight decomposition) without the
# pack's code.


def lycoris_module(kind: str, out_f: int, in_f: int, seed: int, rank: int = 2, dora: str = "") -> dict[str, torch.Tensor]:
    """Tensors of one hand-made module, keyed by the part after the stem (``lokr_w1``, ``alpha``, ``dora_scale``).

    ``kind``: ``lokr`` (full w1, low-rank w2), ``lokr_full`` (both full: alpha unused), ``lokr_ab`` (both low-rank),
    ``loha``, ``lora``. ``dora``: "" | "out" (dora_scale [out, 1]) | "in" ([1, in]).
    """
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=0.3):
        return torch.randn(*shape, generator=g) * s

    o1, i1 = 4, 4
    o2, i2 = out_f // o1, in_f // i1
    if kind == "lokr":
        t = {"lokr_w1": r(o1, i1), "lokr_w2_a": r(o2, rank), "lokr_w2_b": r(rank, i2), "alpha": torch.tensor(1.0)}
    elif kind == "lokr_full":
        t = {"lokr_w1": r(o1, i1), "lokr_w2": r(o2, i2, s=0.05), "alpha": torch.tensor(3.0)}
    elif kind == "lokr_ab":
        t = {"lokr_w1_a": r(o1, rank), "lokr_w1_b": r(rank, i1), "lokr_w2_a": r(o2, rank), "lokr_w2_b": r(rank, i2),
             "alpha": torch.tensor(4, dtype=torch.int64)}
    elif kind == "loha":
        t = {"hada_w1_a": r(out_f, rank), "hada_w1_b": r(rank, in_f), "hada_w2_a": r(out_f, rank),
             "hada_w2_b": r(rank, in_f), "alpha": torch.tensor(1.0)}
    elif kind == "lora":
        t = {"lora_down.weight": r(rank, in_f), "lora_up.weight": r(out_f, rank), "alpha": torch.tensor(1.0)}
    else:
        raise ValueError(kind)
    if dora:
        t["dora_scale"] = (torch.rand(out_f, 1, generator=g) + 0.5) if dora == "out" else (torch.rand(1, in_f, generator=g) + 0.5)
    return t


def expected_lycoris_weight(w: torch.Tensor, t: dict[str, torch.Tensor], strength: float) -> torch.Tensor:
    """The weight after one hand-made module (:func:`lycoris_module`) at ``strength``, in float32."""
    w = w.float()
    alpha = float(t["alpha"]) if "alpha" in t else None
    if "lokr_w1" in t or "lokr_w1_a" in t:
        w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
        w2 = t["lokr_w2"] if "lokr_w2" in t else t["lokr_w2_a"] @ t["lokr_w2_b"]
        rank = t["lokr_w2_b"].shape[0] if "lokr_w2_b" in t else t["lokr_w1_b"].shape[0] if "lokr_w1_b" in t else None
        delta = torch.kron(w1, w2)
    elif "hada_w1_a" in t:
        rank = t["hada_w1_b"].shape[0]
        delta = (t["hada_w1_a"] @ t["hada_w1_b"]) * (t["hada_w2_a"] @ t["hada_w2_b"])
    else:
        rank = t["lora_down.weight"].shape[0]
        delta = t["lora_up.weight"] @ t["lora_down.weight"]
    scale = alpha / rank if alpha is not None and rank is not None else 1.0
    delta = delta.reshape(w.shape) * scale
    if "dora_scale" not in t:
        return w + strength * delta
    m = t["dora_scale"].float()
    merged = w + delta
    if m.shape[0] == w.shape[0]:  # ComfyUI: per output row, the norm of the base weight
        norm = w.norm(dim=1, keepdim=True)
    else:  # per input column, the norm of the changed weight
        norm = merged.norm(dim=0, keepdim=True)
    merged = merged * (m / (norm + torch.finfo(torch.float32).eps))
    return w + strength * (merged - w)
