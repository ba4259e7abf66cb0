"""The fused per-pixel kernels (numba): RGB -> HSV exactly as OpenCV's float32 ``COLOR_RGB2HSV`` computes it, the
frame sums of the paper's Eqs. 1-3, the weighted V/S histograms the grading solver reads, and the grading transform
(V' = V^gV, S' = S^gS, h' = h + shift, optional per-pixel blend) with the sums of its own output, in one pass.

Imported only when numba is installed (``pip install comfyui-emovid[fast]``); ``emovid_core.pixels`` chooses.

Why the kernels are serial (``nogil``) rather than ``parallel=True``: the pack already spreads frames (and row tiles
of a frame) over a thread pool, and numba's default ``workqueue`` threading layer aborts the process when two
Python threads enter a parallel kernel at once (ComfyUI's worker thread plus our pool would). Serial nogil kernels
on our pool give the same parallelism without that hazard, and every sum comes out in a fixed order (per row, rows
in order), so results do not depend on the number of threads.

Speed: each row is first split into planar R, G, B buffers (in L1), then the per-pixel work is branch-free
(selects, masks) so LLVM vectorises it; ``error_model="numpy"`` drops Python's ZeroDivisionError check, which
otherwise blocks vectorisation. cos/sin of hue: OpenCV's hue is a sector base (0, 120 or 240 degrees) plus an
offset in [-60, 60] degrees, so cos and sin come from the base's constants and a short Taylor polynomial of the
offset (error < 1e-7), far cheaper than libm's trig per pixel. Gammas come from a table indexed by sqrt(x) (dense
near black, where x^g bends most; interpolation error < 1e-6 for x >= 1/255), exact at 0 and 1. No
``nnan``/``ninf`` fast-math flags: the range check must still see NaN and inf.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_FM = {"reassoc", "contract", "nsz", "arcp"}
_F = np.float32
_EPS = _F(np.finfo(np.float32).eps)  # OpenCV's FLT_EPSILON in the S and H denominators
_RAD = _F(math.pi / 180.0)
_S3 = _F(math.sqrt(3.0) / 2.0)
_ONE = _F(1.0)
_ZERO = _F(0.0)
SUMS = 8  # V, S, sin h, cos h, Hasler rg, yb, rg^2 + yb^2, count of values outside [0, 1]
LUT_SIZE = 4096  # intervals of the gamma table (over sqrt(x))
_JIT = {"nogil": True, "fastmath": _FM, "error_model": "numpy", "cache": True}


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _hsv(r, g, b):
    """(v, s, mask R, mask G, mask B, offset degrees) of one pixel with OpenCV's float formula: the sector is the
    channel holding the max (ties go to R, then G), h = base + offset with base 0 / 120 / 240."""
    v = max(r, max(g, b))
    mn = min(r, min(g, b))
    diff = v - mn
    s = diff / (abs(v) + _EPS)
    d = _F(60.0) / (diff + _EPS)
    mr = _F(v == r)
    mg = (_ONE - mr) * _F(v == g)
    mb = _ONE - mr - mg
    off = (mr * (g - b) + mg * (b - r) + mb * (r - g)) * d
    return v, s, mr, mg, mb, off


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _cos_sin(mr, mg, mb, off):
    """cos and sin of the hue: rotate the sector base (0, 120, 240 degrees) by the offset (|offset| <= 60)."""
    x = off * _RAD
    x2 = x * x
    sn = x * (_ONE - x2 * _F(1 / 6) * (_ONE - x2 * _F(1 / 20) * (_ONE - x2 * _F(1 / 42) * (_ONE - x2 * _F(1 / 72)))))
    cs = _ONE - x2 * _F(0.5) * (_ONE - x2 * _F(1 / 12) * (_ONE - x2 * _F(1 / 30) * (_ONE - x2 * _F(1 / 56) * (_ONE - x2 * _F(1 / 90)))))
    cb = mr - _F(0.5) * (mg + mb)
    sb = _S3 * (mg - mb)
    return cb * cs - sb * sn, sb * cs + cb * sn


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _hue(mr, mg, mb, off):
    """OpenCV's h in [0, 360) degrees."""
    h = off + _F(120.0) * mg + _F(240.0) * mb
    return h + _F(360.0) if h < _ZERO else h


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _split(x, i, rr, gg, bb):
    for j in range(x.shape[1]):
        rr[j] = x[i, j, 0]
        gg[j] = x[i, j, 1]
        bb[j] = x[i, j, 2]


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _split_checked(x, i, rr, gg, bb):
    """:func:`_split` that also counts values outside [0, 1] (NaN fails both comparisons) in every channel."""
    good = 0
    for j in range(x.shape[1]):
        r = x[i, j, 0]
        g = x[i, j, 1]
        b = x[i, j, 2]
        rr[j] = r
        gg[j] = g
        bb[j] = b
        good += np.int32((r >= _ZERO) & (r <= _ONE)) + np.int32((g >= _ZERO) & (g <= _ONE)) + np.int32((b >= _ZERO) & (b <= _ONE))
    for k in range(3, x.shape[2]):  # alpha: validated, otherwise ignored
        for j in range(x.shape[1]):
            a = x[i, j, k]
            good += np.int32((a >= _ZERO) & (a <= _ONE))
    return x.shape[1] * x.shape[2] - good


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _add_row_sums(rr, gg, bb, out):
    """Add one planar row's ΣV, ΣS, Σsin h, Σcos h to ``out[0:4]`` (float32 within the row, float64 across rows)."""
    sv = _ZERO
    ss = _ZERO
    sn = _ZERO
    cs = _ZERO
    for j in range(rr.shape[0]):
        v, s, m0, m1, m2, off = _hsv(rr[j], gg[j], bb[j])
        co, si = _cos_sin(m0, m1, m2, off)
        sv += v
        ss += s
        sn += si
        cs += co
    out[0] += sv
    out[1] += ss
    out[2] += sn
    out[3] += cs


@njit(**_JIT)
def frame_sums(x, hasler):
    """Sums of one float32 C-contiguous frame ``[H, W, C]`` (C >= 3; channels past 3 are only range-checked).

    Returns float64 ``[SUMS]``: ΣV, ΣS, Σsin h, Σcos h, Σrg, Σyb, Σ(rg² + yb²) (0..255 scale; zeros unless
    ``hasler``) and the number of input values (any channel) that are NaN or outside [0, 1]. Row sums in float32,
    rows in float64. (A max over the values' bit patterns, as the OpenCV path does, cost 1.5 ns per pixel here; the
    comparisons ride along with the loads of the split loop.)"""
    h, w, c = x.shape
    rr = np.empty(w, np.float32)
    gg = np.empty(w, np.float32)
    bb = np.empty(w, np.float32)
    out = np.zeros(SUMS)
    bad = 0
    for i in range(h):
        bad += _split_checked(x, i, rr, gg, bb)
        _add_row_sums(rr, gg, bb, out)
        if hasler:
            a = 0.0
            y = 0.0
            q = 0.0
            for j in range(w):
                rg = (rr[j] - gg[j]) * _F(255.0)
                yb = (_F(0.5) * (rr[j] + gg[j]) - bb[j]) * _F(255.0)
                a += rg
                y += yb
                q += rg * rg + yb * yb
            out[4] += a
            out[5] += y
            out[6] += q
    out[7] = float(bad)
    return out


@njit(**_JIT)
def histograms(x, wt, hist, const):
    """Weighted V and S histograms of one float32 frame ``[H, W, C]`` for the gamma solver.

    ``wt``: float32 ``[H, W]`` grade weights (1 = graded, 0 = protected) or an empty ``[0, 0]`` (all 1).
    ``hist`` float64 ``[4, nbins]`` gets, per bin, Σw and Σw·V (rows 0, 1) and Σw and Σw·S (rows 2, 3);
    ``const`` float64 ``[2]`` gets Σ(1 - w)·V and Σ(1 - w)·S: the protected part, which no gamma moves."""
    h, w, c = x.shape
    nb = hist.shape[1]
    weighted = wt.shape[0] > 0
    for i in range(h):
        for j in range(w):
            v, s, m0, m1, m2, off = _hsv(x[i, j, 0], x[i, j, 1], x[i, j, 2])
            k = 1.0 if not weighted else float(wt[i, j])
            bv = min(nb - 1, int(v * nb))
            bs = min(nb - 1, int(s * nb))
            hist[0, bv] += k
            hist[1, bv] += k * v
            hist[2, bs] += k
            hist[3, bs] += k * s
            const[0] += (1.0 - k) * v
            const[1] += (1.0 - k) * s


@njit(**_JIT)
def hsv_planes(x, out):
    """OpenCV's float32 H (degrees), S, V of one frame ``[H, W, C]`` into ``out`` ``[H, W, 3]``."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            v, s, m0, m1, m2, off = _hsv(x[i, j, 0], x[i, j, 1], x[i, j, 2])
            out[i, j, 0] = _hue(m0, m1, m2, off)
            out[i, j, 1] = s
            out[i, j, 2] = v


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _gamma(x, lut):
    """x^g from ``lut[k] = (k / n)^(2 g)``, k = 0..n, read at sqrt(x)·n with linear interpolation (exact at 0, 1)."""
    top = np.uint32(lut.shape[0] - 2)
    t = np.sqrt(x) * _F(lut.shape[0] - 1)  # np.sqrt: math.sqrt without full fast-math is a libm call, not vectorised
    k = np.uint32(t)  # unsigned: no negative-index wraparound in the gather
    k = np.minimum(k, top)
    f = t - _F(k)
    return lut[k] + f * (lut[k + 1] - lut[k])


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _channel(k6, v, s):
    """One RGB channel of HSV, branch-free: v - v s clamp(min(k, 4 - k), 0, 1) with k = (n + h/60) mod 6."""
    k = k6 - _F(6.0) * _F(k6 >= _F(6.0))
    # clamp(min(k, 4 - k), 0, 1) = clamp(2 - |k - 2|, 0, 1), with min/max spelled as abs(): numba's min/max and
    # ternaries on floats become branches here, which blocks vectorisation and mispredicts on real images.
    m = _F(2.0) - abs(k - _F(2.0))
    m = _F(0.5) * (m + _ONE - abs(m - _ONE))
    m = _F(0.5) * (m + abs(m))
    return v - v * s * m


@njit(**_JIT)
def grade_rows(x, r0, r1, lut_v, lut_s, shift, wt, out, sums):
    """Grade rows ``r0:r1`` of one float32 frame ``x`` ``[H, W, C]`` into ``out`` ``[H, W, 3]``; add the sums of the
    graded pixels (measured as :func:`frame_sums` does: ΣV, ΣS, Σsin h, Σcos h) to ``sums`` ``[4]``.

    V' = V^gV and S' = S^gS from the tables ``lut_v`` / ``lut_s`` (see :func:`_gamma`), h' = h + ``shift`` degrees
    (wrapped), back to RGB; with weights ``wt`` ``[H, W]`` (else ``[0, 0]``) a pixel becomes
    ``w * graded + (1 - w) * original``."""
    w = x.shape[1]
    weighted = wt.shape[0] > 0
    h6 = _F(shift / 60.0)
    rr = np.empty(w, np.float32)
    gg = np.empty(w, np.float32)
    bb = np.empty(w, np.float32)
    hh = np.empty(w, np.float32)
    vv = np.empty(w, np.float32)
    ss_ = np.empty(w, np.float32)
    for i in range(r0, r1):
        # Three stages over the row so that the two branch-free ones vectorise; only the table reads are scalar.
        _split(x, i, rr, gg, bb)
        for j in range(w):
            v, s, m0, m1, m2, off = _hsv(rr[j], gg[j], bb[j])
            q = (off + _F(120.0) * m1 + _F(240.0) * m2) * _F(1.0 / 60.0) + h6  # sector units, then wrapped to [0, 6)
            q = q + _F(6.0) * (_F(q < _ZERO) + _F(q < _F(-6.0))) - _F(6.0) * _F(q >= _F(6.0))
            hh[j] = q
            vv[j] = v
            ss_[j] = s
        for j in range(w):
            vv[j] = _gamma(vv[j], lut_v)
            ss_[j] = _gamma(ss_[j], lut_s)
        for j in range(w):
            v2 = vv[j]
            s2 = ss_[j]
            q = hh[j]
            hh[j] = _channel(q + _F(5.0), v2, s2)  # the planar buffers now hold the graded R, G, B
            vv[j] = _channel(q + _F(3.0), v2, s2)
            ss_[j] = _channel(q + _F(1.0), v2, s2)
        if weighted:
            for j in range(w):
                k = wt[i, j]
                hh[j] = k * hh[j] + (_ONE - k) * rr[j]
                vv[j] = k * vv[j] + (_ONE - k) * gg[j]
                ss_[j] = k * ss_[j] + (_ONE - k) * bb[j]
        for j in range(w):
            out[i, j, 0] = hh[j]
            out[i, j, 1] = vv[j]
            out[i, j, 2] = ss_[j]
        _add_row_sums(hh, vv, ss_, sums)
