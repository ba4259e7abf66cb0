"""The one check of IMAGE frames, shared by everything that consumes them (Frame Attributes, Save Video, ...).

A ComfyUI IMAGE frame is ``[height, width, 3|4]`` float in 0..1 (uint8 0..255 is accepted too). NaN, inf or values
outside 0..1 mean the producing node went wrong (an fp16 VAE decode that overflowed, 0..255 data not divided);
analysing them gives wrong numbers and encoding them gives a white or garbage video, so both refuse them with
the same message.
"""

from __future__ import annotations

import numpy as np


def check_frame(frame: np.ndarray, index: int) -> None:
    """Shape/dtype of one frame (numpy)."""
    if frame.ndim != 3 or frame.shape[-1] not in (3, 4):
        raise ValueError(f"frame {index} has shape {list(frame.shape)}; expected [height, width, 3] (RGB) or [height, width, 4] (RGBA)")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame {index} is empty (shape {list(frame.shape)}); every frame needs pixels")
    if not (frame.dtype == np.uint8 or np.issubdtype(frame.dtype, np.floating)):
        raise ValueError(f"frame {index} has dtype {frame.dtype}; use float in 0..1 or uint8 0..255")


def check_values(frame: np.ndarray, index: int) -> None:
    """Raise :func:`value_error` when a float frame holds NaN, inf or values outside [0, 1] (uint8 always passes)."""
    if frame.dtype == np.uint8:
        return
    # min/max propagate NaN, and NaN fails both comparisons, so this catches NaN, inf and out-of-range values.
    lo, hi = frame.min(), frame.max()
    if not (lo >= 0.0 and hi <= 1.0):
        raise value_error(frame, index)


def value_error(frame: np.ndarray, index: int) -> ValueError:
    """Explain why a float frame failed the range check (only runs on the error path, so it may be slow)."""
    f = np.asarray(frame, dtype=np.float64)
    nan, inf = int(np.isnan(f).sum()), int(np.isinf(f).sum())
    if nan or inf:
        parts = [f"{nan} NaN" if nan else "", f"{inf} inf" if inf else ""]
        return ValueError(
            f"frame {index} contains {' and '.join(p for p in parts if p)} value(s); images must be finite "
            "(check the node that produced them, e.g. a VAE decode in fp16 that overflowed)"
        )
    lo, hi = float(f.min()), float(f.max())
    hint = " (it looks like 0..255 data: divide by 255)" if hi > 1.0 and hi <= 255.0 and lo >= 0.0 else " (clamp them, e.g. images.clamp(0, 1))"
    return ValueError(f"frame {index} has values in [{lo:.6g}, {hi:.6g}], outside [0, 1]; images must be in 0..1{hint}")
