"""Headless Wan2.1 generation with diffusers: loading (diffusers folder or ComfyUI single files), a tiny
random pipeline for tests and demos, and ``generate``.

Importing this package is cheap; torch/diffusers are imported by the functions that need them.
"""

from __future__ import annotations

from .handle import WAN_PIPE_TYPE, WanHandle

__all__ = ["WAN_PIPE_TYPE", "WanHandle", "generate", "load_pipeline", "load_tiny_pipeline", "load_diffusers_folder",
           "load_single_files", "export_single_files"]


def __getattr__(name):
    if name == "generate":
        from .generation import generate

        return generate
    if name in ("load_pipeline", "load_diffusers_folder", "load_single_files"):
        from . import loading

        return getattr(loading, name)
    if name in ("load_tiny_pipeline", "export_single_files"):
        from . import tiny

        return getattr(tiny, name)
    raise AttributeError(f"module 'emovid_core.wan' has no attribute {name!r}")
