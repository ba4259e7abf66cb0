"""The OpenCV/NumPy path of the per-pixel layer (the fallback when numba is not installed, and the reference the
fused kernels are checked against): frame sums over tiles of rows that stay in cache, weighted V/S histograms, HSV
planes and the grading transform, all on OpenCV's float32 ``COLOR_RGB2HSV`` / ``COLOR_HSV2RGB``.

Frame sums: a handful of OpenCV kernels per tile (RGB->HSV, which is also the pass that reads the frame from memory;
the range check on the cached tile; channel sums in float64; hue extraction; ``polarToCart`` for cos/sin of hue;
sums), with preallocated buffers so no full-size HSV copy of the clip is ever held.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..frame_check import check_values, value_error

# A frame is cut into equal tiles of at most this many pixels: big enough that the ~8 OpenCV/NumPy calls per
# tile cost little Python overhead, small enough that a worker's buffers (input + HSV + 3 planes, ~4.5 MB) stay in
# the shared L3 cache between the passes.
# Measured on 480x832 frames: 64k-pixel tiles 66 ms, 128k 62 ms, 256k 61 ms, whole frames 64 ms (single thread).
TILE_PIXELS = 1 << 17
_UNIT = np.float32(1.0 / 255.0)  # uint8 -> float the way video_io.frames_to_image does it (multiply, not divide)
# Hasler-Suesstrunk opponent channels (rg, yb, 0) from RGB in 0..1, on the 0..255 scale its thresholds assume.
_HASLER_M = (255.0 * np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0], [0.0, 0.0, 0.0]])).astype(np.float32)
ONE_BITS = np.float32(1.0).view(np.uint32)  # bit pattern of 1.0f, see check_tile


class Workspace:
    """Reusable tile buffers (one per worker thread): allocating per tile costs page faults that dwarf the
    arithmetic."""

    def __init__(self) -> None:
        self._rows = 0
        self._width = 0

    def ensure(self, rows: int, width: int) -> None:
        if rows <= self._rows and width == self._width:
            return
        self._rows, self._width = r, w = rows, width
        self.rgb = np.empty((r, w, 3), np.float32)  # converted / alpha-stripped input when needed
        self.hsv = np.empty((r, w, 3), np.float32)
        self.hue = np.empty((r, w), np.float32)
        self.cos = np.empty((r, w), np.float32)
        self.sin = np.empty((r, w), np.float32)
        self.opp = np.empty((r, w, 3), np.float32)


def tile_rows(width: int) -> int:
    return max(1, TILE_PIXELS // max(1, width))


def check_tile(tile: np.ndarray, frame: np.ndarray, index: int) -> None:
    """Raise the precise error when a float tile holds NaN, inf or values outside [0, 1].

    float32 tiles take one integer max over their bits: every float32 in [+0, 1] has a bit pattern <= that of
    1.0 read as uint32, while NaN, ±inf, negatives (sign bit set) and values above 1 all compare greater. That is
    one cheap reduction on a tile already in cache (a float min plus max is two). -0.0 also trips it, so a
    suspicious tile is re-checked with float comparisons before anything is reported.
    """
    if tile.dtype == np.float32 and tile.view(np.uint32).max() <= ONE_BITS:
        return
    try:
        check_values(tile, index)
    except ValueError:
        raise value_error(frame, index) from None  # described over the whole frame, not the tile


def frame_sums(frame: np.ndarray, index: int, ws: Workspace, hasler: bool) -> tuple:
    """(ΣV, ΣS, Σsin h, Σcos h, Hasler M or None) of one [H, W, C] frame, tile by tile."""
    h, w, c = frame.shape
    tiles = -(-h // tile_rows(w))
    rows = -(-h // tiles)  # equal tiles: 480 rows of 832 become 4 x 120, not 3 x 157 plus a 9-row sliver
    ws.ensure(rows, w)
    sv = ss = ssin = scos = 0.0
    o_sum = np.zeros(2)
    o_sq = 0.0
    is_u8 = frame.dtype == np.uint8
    direct = not is_u8 and c == 3 and frame.dtype == np.float32 and frame.flags.c_contiguous
    for r0 in range(0, h, rows):
        tile = frame[r0:r0 + rows]
        n = tile.shape[0]
        if direct:
            # The conversion is the first pass over the tile, so it is the one that waits for main memory; the
            # range check after it reads the tile from cache. (A separate check pass in front of it cost as much
            # as the conversion itself.)
            hsv = cv2.cvtColor(tile, cv2.COLOR_RGB2HSV, dst=ws.hsv[:n])
            check_tile(tile, frame, index)
        else:
            rgb = ws.rgb[:n]
            if is_u8:
                np.multiply(tile if c == 3 else tile[..., :3], _UNIT, out=rgb, dtype=np.float32, casting="unsafe")
            else:
                check_tile(tile, frame, index)  # the original values (alpha included), before any rounding
                rgb[...] = tile[..., :3]  # drop alpha / float16, float64 -> float32 (OpenCV's HSV float path)
            tile = rgb
            hsv = cv2.cvtColor(tile, cv2.COLOR_RGB2HSV, dst=ws.hsv[:n])
        _, s_sum, v_sum, _ = cv2.sumElems(hsv)
        hue = cv2.extractChannel(hsv, 0, dst=ws.hue[:n])
        cs, sn = cv2.polarToCart(None, hue, x=ws.cos[:n], y=ws.sin[:n], angleInDegrees=True)
        sv += v_sum
        ss += s_sum
        scos += cv2.sumElems(cs)[0]
        ssin += cv2.sumElems(sn)[0]
        if hasler:
            # Only var(rg) + var(yb) and the two means enter M, so Σrg, Σyb and Σ(rg² + yb²) per tile suffice.
            # A 3x3 transform (third row zero) hits OpenCV's SIMD 3-channel path; a 2x3 one is ~6x slower.
            opp = cv2.transform(tile, _HASLER_M, dst=ws.opp[:n])
            rg_sum, yb_sum, _, _ = cv2.sumElems(opp)
            o_sum += (rg_sum, yb_sum)
            o_sq += cv2.norm(opp, cv2.NORM_L2SQR)
    m = None
    if hasler:
        npx = h * w
        mu = o_sum / npx
        var = max(o_sq / npx - float(mu @ mu), 0.0)
        m = math.sqrt(var) + 0.3 * math.sqrt(float(mu @ mu))
    return sv, ss, ssin, scos, m


def histograms(hsv: np.ndarray, weights: np.ndarray | None, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted V and S histograms of one frame's HSV planes (layout of the numba kernel's ``histograms``)."""
    s, v = hsv[..., 1].ravel().astype(np.float64), hsv[..., 2].ravel().astype(np.float64)
    w = np.ones_like(v) if weights is None else weights.ravel().astype(np.float64)
    bv = np.minimum((v * nbins).astype(np.int64), nbins - 1)
    bs = np.minimum((s * nbins).astype(np.int64), nbins - 1)
    hist = np.stack([np.bincount(bv, w, nbins), np.bincount(bv, w * v, nbins),
                     np.bincount(bs, w, nbins), np.bincount(bs, w * s, nbins)])
    return hist, np.array([((1.0 - w) * v).sum(), ((1.0 - w) * s).sum()])


def hsv_planes(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)


def grade(rgb: np.ndarray, gv: float, gs: float, shift: float, weights: np.ndarray | None, out: np.ndarray) -> None:
    """The plain grading transform on one float32 RGB frame into ``out``: V^gv, S^gs, h + shift, blend by ``weights``."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    np.power(hsv[..., 2], np.float32(gv), out=hsv[..., 2])
    np.power(hsv[..., 1], np.float32(gs), out=hsv[..., 1])
    if shift:
        h = hsv[..., 0]
        h += np.float32(shift)
        np.mod(h, np.float32(360.0), out=h)
    cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=out)
    if weights is not None:
        w = weights[..., None]
        out *= w
        out += (1.0 - w) * rgb
