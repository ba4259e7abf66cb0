"""Small file helpers for the Wan package: the scaled-fp8 refusal and safetensors-only reads."""

from __future__ import annotations

from pathlib import Path

from ..safetensors_header import read_header

# safetensors dtype names of the fp8 formats; ComfyUI's "scaled" files add a 'scaled_fp8' marker tensor.
FP8_DTYPES = {"F8_E4M3", "F8_E5M2", "F8_E4M3FN", "F8_E5M2FNUZ", "F8_E4M3FNUZ"}


def check_not_scaled_fp8(path: str | Path, what: str, instead: str) -> dict:
    """Refuse ComfyUI's scaled-fp8 files (weights need per-tensor scales diffusers cannot apply); return the header."""
    header = read_header(path)
    if "scaled_fp8" in header or any(k.endswith(".scale_weight") for k in header):
        raise ValueError(
            f"{what} {str(path)!r} is a ComfyUI scaled-fp8 file (it has 'scaled_fp8' / '.scale_weight' tensors), which "
            f"diffusers cannot load. Use {instead} instead."
        )
    return header


def load_safetensors(path: str | Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))
