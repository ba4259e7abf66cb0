"""Synthetic clips with known attributes for the grading tests."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def hsv_clip(h, s, v, n=6, height=24, width=32, seed=0, spread=0.15) -> torch.Tensor:
    """A clip whose pixels scatter around HSV (h degrees, s, v) per frame (scalars or length-n sequences), with a
    black and a white bar so clipping would show."""
    rng = np.random.default_rng(seed)
    hh, ss, vv = (np.broadcast_to(np.asarray(a, np.float64), (n,)) for a in (h, s, v))
    frames = []
    for i in range(n):
        hsv = np.empty((height, width, 3), np.float32)
        hsv[..., 0] = (hh[i] + rng.normal(0, 20, (height, width))) % 360
        hsv[..., 1] = np.clip(ss[i] + rng.uniform(-spread, spread, (height, width)), 0, 1)
        hsv[..., 2] = np.clip(vv[i] + rng.uniform(-spread, spread, (height, width)), 0, 1)
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        rgb[:, :2] = 0.0  # black bar
        rgb[:, -2:] = 1.0  # white bar
        frames.append(np.clip(rgb, 0, 1))
    return torch.from_numpy(np.stack(frames).astype(np.float32))


def numba_or_skip():
    import pytest

    from emovid_core import pixels

    if not pixels.numba_available():
        pytest.skip("numba is not installed (pip install 'comfyui-emovid[fast]'); the OpenCV path was tested")
