"""The per-pixel layer under attribute measurement and colour grading: one API, three backends.

- ``numba`` (``pip install comfyui-emovid[fast]``): fused kernels per pixel — RGB→HSV exactly as OpenCV's float32
  ``COLOR_RGB2HSV`` defines it, the sums of Eqs. 1-3, the grading transform and the sums of its own output in one
  pass (:mod:`._numba`).
- ``opencv``: the same results from OpenCV and NumPy kernels (:mod:`._opencv`), used when numba is absent.
- ``torch``: for IMAGE tensors on a GPU (or any device but the CPU): measured and graded with torch ops on that
  device, never copied to the CPU and back (:mod:`._torch`).

CPU arrays take ``numba`` when it is importable, else ``opencv``; ``EMOVID_PIXELS=numba|opencv`` forces one (CI
runs the suite both ways). Both CPU paths agree to float error (tests/grading/test_pixels.py).

Frames are spread over the caller's thread pool, not numba's: the kernels are serial and release the GIL (see
:mod:`._numba` for why).
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..frame_check import check_values
from . import _opencv
from ._opencv import Workspace, tile_rows  # noqa: F401  (Workspace, tile_rows: attributes' OpenCV path)

ENV = "EMOVID_PIXELS"
BACKENDS = ("numba", "opencv")
_UNIT = np.float32(1.0 / 255.0)  # uint8 -> float the way video_io.frames_to_image does it
NBINS = 512  # histogram bins of V and S for the gamma solver (bin means, so the model is close; closed loop does the rest)
# Skin-like pixels (a hue band around orange, moderate saturation, not dark): what protect_skin keeps.
SKIN_HUE, SKIN_HUE_FULL, SKIN_HUE_EDGE = 25.0, 25.0, 15.0  # full within ±25° of 25°, fading to 0 over 15° more


@functools.lru_cache(maxsize=None)
def _kernels():
    try:
        from . import _numba
    except ImportError as e:  # numba missing or broken
        raise ImportError(
            f"the numba pixel kernels need numba ({e}); install the extra: pip install 'comfyui-emovid[fast]' "
            f"(or set {ENV}=opencv for the OpenCV path)"
        ) from e
    return _numba


def numba_available() -> bool:
    try:
        _kernels()
    except ImportError:
        return False
    return True


def backend() -> str:
    """The CPU backend in use: ``EMOVID_PIXELS`` if set (``numba`` or ``opencv``), else numba when importable."""
    want = os.environ.get(ENV, "").strip().lower()
    if want in ("", "auto"):
        return "numba" if numba_available() else "opencv"
    if want not in BACKENDS:
        raise ValueError(f"{ENV}={want!r} is not a pixel backend; use one of {', '.join(BACKENDS)} (or unset it: auto)")
    if want == "numba":
        _kernels()  # raises naming the extra
    return want


def is_device_tensor(x: Any) -> bool:
    """A torch tensor that lives off the CPU (graded and measured there with torch ops)."""
    return hasattr(x, "detach") and hasattr(x, "device") and x.device.type != "cpu"


# ------------------------------------------------------------------------------------------------ measurement


def hasler_m(rg: float, yb: float, sq: float, npx: int) -> float:
    """Hasler-Suesstrunk M from Σrg, Σyb and Σ(rg² + yb²) over ``npx`` pixels (0..255 scale)."""
    mu2 = (rg / npx) ** 2 + (yb / npx) ** 2
    return math.sqrt(max(sq / npx - mu2, 0.0)) + 0.3 * math.sqrt(mu2)


def _float32_rgb(frame: np.ndarray, index: int) -> np.ndarray:
    """A C-contiguous float32 frame the kernels read: float32 input as is, uint8 scaled by 1/255, other floats
    checked on their own values first (before rounding to float32) and converted."""
    if frame.dtype == np.float32 and frame.flags.c_contiguous:
        return frame
    if frame.dtype == np.uint8:
        return np.multiply(frame[..., :3], _UNIT, dtype=np.float32)
    check_values(frame, index)
    return np.ascontiguousarray(frame[..., :3], dtype=np.float32)


def frame_sums(frame: np.ndarray, index: int, ws: Workspace | None = None, hasler: bool = True) -> tuple:
    """(ΣV, ΣS, Σsin h, Σcos h, Hasler M or None) of one ``[H, W, 3|4]`` frame (float 0..1 or uint8), with the
    range check (ValueError naming frame ``index``). ``ws``: the OpenCV path's per-thread buffers."""
    if backend() == "opencv":
        return _opencv.frame_sums(frame, index, ws or Workspace(), hasler)
    x = _float32_rgb(frame, index)
    s = _kernels().frame_sums(x, hasler)
    if s[7] > 0:
        check_values(x, index)  # raises the precise error
    return s[0], s[1], s[2], s[3], (hasler_m(s[4], s[5], s[6], x.shape[0] * x.shape[1]) if hasler else None)


def hsv_planes(frame: np.ndarray) -> np.ndarray:
    """OpenCV's float32 HSV planes ``[H, W, 3]`` (h in degrees) of a float32 RGB(A) frame."""
    if backend() == "opencv":
        return _opencv.hsv_planes(np.ascontiguousarray(frame[..., :3]))
    out = np.empty(frame.shape[:2] + (3,), np.float32)
    _kernels().hsv_planes(frame, out)
    return out


def skin_weights(h, s, v, clip=np.clip):
    """Protection of skin-like pixels in [0, 1] (1 = skin-like: keep it) from HSV planes; ``clip`` is ``np.clip``
    or ``torch.clamp``, so numpy and torch share the one formula."""
    d = abs(((h - SKIN_HUE + 180.0) % 360.0) - 180.0)
    hue = clip((SKIN_HUE_FULL + SKIN_HUE_EDGE - d) / SKIN_HUE_EDGE, 0.0, 1.0)
    sat = clip((s - 0.1) / 0.1, 0.0, 1.0) * clip((0.75 - s) / 0.1, 0.0, 1.0)
    val = clip((v - 0.15) / 0.1, 0.0, 1.0)
    return hue * sat * val


def histograms(frame: np.ndarray, weights: np.ndarray | None, nbins: int = NBINS) -> tuple[np.ndarray, np.ndarray]:
    """(hist ``[4, nbins]``: per V bin Σw, Σw·V, per S bin Σw, Σw·S; const ``[2]``: Σ(1 - w)·V, Σ(1 - w)·S) of one
    float32 frame, ``weights`` = grade weights (1 graded, 0 protected) or None."""
    if backend() == "opencv":
        return _opencv.histograms(_opencv.hsv_planes(np.ascontiguousarray(frame[..., :3])), weights, nbins)
    hist, const = np.zeros((4, nbins)), np.zeros(2)
    _kernels().histograms(frame, _EMPTY if weights is None else weights, hist, const)
    return hist, const


_EMPTY = np.zeros((0, 0), np.float32)


def gamma_table(g: float, size: int | None = None) -> np.ndarray:
    """The numba kernel's table of x^g: ``(k / n)^(2 g)`` for k = 0..n (read at sqrt(x)·n)."""
    n = size or _kernels().LUT_SIZE
    return np.power(np.linspace(0.0, 1.0, n + 1), 2.0 * g).astype(np.float32)


def grade_frame(frame: np.ndarray, gv: float, gs: float, shift: float, weights: np.ndarray | None,
                out: np.ndarray, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """Grade one float32 frame ``[H, W, 3|4]`` into ``out`` ``[H, W, 3]``: V' = V^gv, S' = S^gs, h' = h + shift
    degrees, then ``weights * graded + (1 - weights) * original`` when weights are given. Returns the graded
    pixels' (ΣV, ΣS, Σsin h, Σcos h) as float64 ``[4]`` (the numba kernel measures them in the same pass).

    ``pool``: the numba path splits the frame's rows over it (a single image still uses every worker)."""
    if backend() == "opencv":
        rgb = np.ascontiguousarray(frame[..., :3])
        _opencv.grade(rgb, gv, gs, shift, weights, out)
        return np.array(_opencv.frame_sums(out, 0, Workspace(), False)[:4])
    k = _kernels()
    lv, ls = gamma_table(gv), gamma_table(gs)
    w = _EMPTY if weights is None else weights
    h = frame.shape[0]
    parts = 1 if pool is None else max(1, min(pool._max_workers, h // 16))
    bounds = np.linspace(0, h, parts + 1).astype(int)
    sums = np.zeros((parts, 4))

    def run(p: int) -> None:
        k.grade_rows(frame, int(bounds[p]), int(bounds[p + 1]), lv, ls, float(shift), w, out, sums[p])

    if parts == 1:
        run(0)
    else:
        list(pool.map(run, range(parts)))
    return sums.sum(0)  # in part order: the same result whatever the thread timing
