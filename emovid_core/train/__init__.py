"""Train the EmoVid emotion LoRA on Wan2.1: the paper's DiffSynth-Studio recipe, headless, on accelerate.

- :mod:`.config`: :class:`TrainConfig`, every option with the paper's default;
- :mod:`.data`: clip selection, frame preparation and the latent / text-embedding cache;
- :mod:`.models`: the model source, inspected before loading, loaded in two stages (encoders, then transformer);
- :mod:`.loop`: the flow-matching loop, checkpoints in DiffSynth format, loss log and plot;
- :mod:`.checkpoint`: resumable state (LoRA, AdamW, RNG) in safetensors + JSON;
- :mod:`.memory`: the memory estimate checked before the first step.

Importing this package is cheap; torch, diffusers, peft and accelerate load when a function needs them.
See docs/training.md.
"""

from __future__ import annotations

from .config import TARGET_MODULES, TrainConfig, parse_size

__all__ = ["TARGET_MODULES", "TrainConfig", "parse_size", "open_dataset", "resolve_model", "select_clips", "train"]


def __getattr__(name):
    if name in ("open_dataset", "select_clips"):
        from . import data

        return getattr(data, name)
    if name == "resolve_model":
        from .models import resolve_model

        return resolve_model
    if name == "train":
        from .loop import train

        return train
    raise AttributeError(f"module 'emovid_core.train' has no attribute {name!r}")
