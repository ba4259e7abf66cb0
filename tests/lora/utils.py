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
