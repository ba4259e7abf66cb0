"""Small, real building blocks for LoRA tests and demos: random tiny LoRAs in canonical form, and a reference
ModelPatcher that follows ComfyUI 0.3.64's semantics (``comfy/model_patcher.py`` clone/add_patches,
``comfy/lora.py`` calculate_weight) so patched weights can be computed without ComfyUI installed.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from ..wan import dit_keys as wl
from .model import LoraModule, WanLora


def random_lora(dim: int = 128, ffn: int = 256, layers: int = 2, rank: int = 4, alpha: float | None = 2.0,
                i2v: bool = False, targets: Iterable[str] | None = None, seed: int = 0,
                dtype: torch.dtype = torch.float32, scale: float = 0.1) -> WanLora:
    """A random LoRA on every block linear (or ``targets``, block-relative names) of a dim/ffn/layers model."""
    gen = torch.Generator().manual_seed(int(seed))
    rels = list(targets) if targets is not None else list(wl.BLOCK_LINEARS_T2V) + (list(wl.BLOCK_LINEARS_I2V_EXTRA) if i2v else [])
    modules = {}
    for b in range(layers):
        for rel in rels:
            out_f, in_f = (ffn, dim) if rel == "ffn.0" else (dim, ffn) if rel == "ffn.2" else (dim, dim)
            down = (torch.randn(rank, in_f, generator=gen) * scale).to(dtype)
            up = (torch.randn(out_f, rank, generator=gen) * scale).to(dtype)
            name = f"blocks.{b}.{rel}"
            modules[name] = LoraModule(name, down=down, up=up, alpha=alpha, alpha_source="key" if alpha is not None else "none")
    return WanLora(modules=modules, source_format="memory")


def module_from_state_dict(sd: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """An nn.Module tree whose ``state_dict()`` has exactly the keys and tensors of ``sd`` (as Parameters)."""
    root = torch.nn.Module()
    for key, tensor in sd.items():
        *path, leaf = key.split(".")
        mod = root
        for part in path:
            if not hasattr(mod, part):
                mod.add_module(part, torch.nn.Module())
            mod = getattr(mod, part)
        mod.register_parameter(leaf, torch.nn.Parameter(tensor.clone(), requires_grad=False))
    return root


def module_from_comfy_patch(kind: str, args: tuple, key: str = "") -> LoraModule:
    """The :class:`LoraModule` a legacy ComfyUI patch tuple describes (the inverse of apply's ``_comfy_patch``)."""
    if kind == "lora":
        up, down, alpha, mid, dora_scale = args[:5]
        if mid is not None or (len(args) > 5 and args[5] is not None):
            raise NotImplementedError("LoCon mid / reshape LoRA patches are not produced by EmoVid")
        return LoraModule(key, down=down, up=up, alpha=alpha, dora_scale=dora_scale)
    if kind == "lokr":
        names = ("lokr_w1", "lokr_w2", None, "lokr_w1_a", "lokr_w1_b", "lokr_w2_a", "lokr_w2_b", "lokr_t2", None)
        alpha, dora_scale = args[2], args[8]
    else:
        names = ("hada_w1_a", "hada_w1_b", None, "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2", None)
        alpha, dora_scale = args[2], args[7]
    factors = {n: t for n, t in zip(names, args) if n is not None and t is not None}
    if any(n.endswith(("_t1", "_t2")) for n in factors):
        raise NotImplementedError("Tucker LoKr/LoHa patches are not produced by EmoVid")
    return LoraModule(key, alpha=alpha, algo=kind, factors=factors, dora_scale=dora_scale)


class _BaseModel(torch.nn.Module):
    def __init__(self, diffusion_model: torch.nn.Module):
        super().__init__()
        self.diffusion_model = diffusion_model


class ReferencePatcher:
    """ComfyUI ModelPatcher semantics for weight patches, without ComfyUI.

    ``add_patches`` keeps only keys present in ``model.state_dict()`` and appends
    ``(strength_patch, patch, strength_model, offset, function)``; ``patched_weight`` recomputes a weight as
    ``comfy.model_patcher.patch_weight_to_device`` does: copy to float32, run every patch through
    calculate_weight's rules ("lora"/"lokr"/"loha" tuples, DoRA included, through :meth:`LoraModule.merged`,
    which follows ComfyUI's adapters; "diff": ``w += strength * diff``; objects with ``calculate_weight`` are
    called like ComfyUI's adapters), then cast back to the weight's dtype.
    """

    def __init__(self, diffusion_model: torch.nn.Module):
        self.model = _BaseModel(diffusion_model)
        self.patches: dict[str, list[tuple]] = {}

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "ReferencePatcher":
        return cls(module_from_state_dict({wl.strip_prefix(k): v for k, v in sd.items()}))

    def clone(self) -> "ReferencePatcher":
        n = ReferencePatcher.__new__(ReferencePatcher)
        n.model = self.model  # shared, as in ComfyUI: weights are only changed when patching for sampling
        n.patches = {k: list(v) for k, v in self.patches.items()}
        return n

    def add_patches(self, patches: Mapping[Any, Any], strength_patch: float = 1.0, strength_model: float = 1.0) -> list:
        model_sd = self.model.state_dict()
        added = set()
        for k, patch in patches.items():
            offset = function = None
            if isinstance(k, str):
                key = k
            else:
                key, offset = k[0], k[1]
                function = k[2] if len(k) > 2 else None
            if key in model_sd:
                added.add(k)
                self.patches.setdefault(key, []).append((strength_patch, patch, strength_model, offset, function))
        return list(added)

    def get_key_patches(self) -> dict[str, list]:
        return {k: list(v) for k, v in self.patches.items()}

    @torch.no_grad()
    def patched_weight(self, key: str) -> torch.Tensor:
        weight = self.model.state_dict()[key]
        w = weight.detach().to(torch.float32, copy=True)
        for strength, v, strength_model, offset, function in self.patches.get(key, []):
            if offset is not None or function is not None:
                raise NotImplementedError("offset/function patches are not used by LoRA loading")
            if strength_model != 1.0:
                w *= strength_model
            if hasattr(v, "calculate_weight"):
                w = v.calculate_weight(w, key, strength, strength_model, None, lambda a: a, torch.float32, None)
                continue
            kind, args = (v[0], v[1]) if len(v) == 2 else ("diff", v)
            if kind in ("lora", "lokr", "loha"):
                w = module_from_comfy_patch(kind, args, key).merged(w, strength).to(w.dtype)
            elif kind == "diff":
                diff = args[0]
                if strength != 0.0 and tuple(diff.shape) == tuple(w.shape):
                    w += strength * diff.to(w.dtype)
            else:
                raise ValueError(f"patch type {kind!r} not recognised for {key}")
        return w.to(weight.dtype)

    def patched_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: (self.patched_weight(k) if k in self.patches else v.detach()) for k, v in self.model.state_dict().items()}
