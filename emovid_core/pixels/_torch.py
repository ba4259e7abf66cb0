"""The torch path of the per-pixel layer: IMAGE tensors on a GPU (any device) are measured and graded there, with
OpenCV's float32 HSV formula in torch ops, a few frames at a time so the temporaries stay small. Only per-frame
sums and histograms (a few numbers per frame) come back to the CPU; the frames never do."""

from __future__ import annotations

import math

import numpy as np

_EPS = float(np.finfo(np.float32).eps)
CHUNK_PIXELS = 1 << 23  # pixels per chunk of frames (temporaries ~10 float32 planes of this size)


def _chunks(n: int, h: int, w: int):
    step = max(1, CHUNK_PIXELS // max(1, h * w))
    for a in range(0, n, step):
        yield a, min(n, a + step)


def hsv(x):
    """(h degrees [0, 360), s, v) of float32 RGB ``[..., 3+]`` with OpenCV's float formula (ties go to R, then G)."""
    import torch

    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = torch.maximum(r, torch.maximum(g, b))
    diff = v - torch.minimum(r, torch.minimum(g, b))
    s = diff / (v.abs() + _EPS)
    d = 60.0 / (diff + _EPS)
    isr = v == r
    isg = ~isr & (v == g)
    h = torch.where(isr, (g - b) * d, torch.where(isg, (b - r) * d + 120.0, (r - g) * d + 240.0))
    h = torch.where(h < 0, h + 360.0, h)
    return h, s, v


def rgb(h, s, v):
    """HSV (h degrees) -> RGB ``[..., 3]``: c = v - v s clamp(min(k, 4 - k), 0, 1), k = (n + h/60) mod 6."""
    import torch

    h6 = h / 60.0
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(out, -1)


def check(x, first: int) -> None:
    """Raise the pack's precise range error for the first frame with NaN, inf or values outside [0, 1]."""
    import torch

    ok = ((x >= 0) & (x <= 1)).flatten(1).all(1)
    if not bool(ok.all()):
        from ..frame_check import value_error

        i = int(torch.nonzero(~ok)[0])
        raise value_error(x[i].float().cpu().numpy(), first + i)  # the error path only: one frame to explain


def frame_rows(images, hasler: bool) -> list[tuple]:
    """Per frame (ΣV, ΣS, Σsin h, Σcos h, Hasler M or None) of a ``[B, H, W, C]`` tensor on its device."""
    import torch

    n, h, w = images.shape[:3]
    rows = []
    for a, b in _chunks(n, h, w):
        x = images[a:b]
        check(x, a)
        x = x[..., :3].float()
        hh, s, v = hsv(x)
        rad = torch.deg2rad(hh).double()
        sums = torch.stack([v.double().sum((1, 2)), s.double().sum((1, 2)), torch.sin(rad).sum((1, 2)),
                            torch.cos(rad).sum((1, 2))], 1)
        if hasler:
            f = x.double() * 255.0
            rg = f[..., 0] - f[..., 1]
            yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
            hs = torch.stack([rg.sum((1, 2)), yb.sum((1, 2)), (rg * rg + yb * yb).sum((1, 2))], 1).cpu().numpy()
        sums = sums.cpu().numpy()
        for i in range(b - a):
            m = None
            if hasler:
                mu2 = (hs[i, 0] / (h * w)) ** 2 + (hs[i, 1] / (h * w)) ** 2
                m = math.sqrt(max(hs[i, 2] / (h * w) - mu2, 0.0)) + 0.3 * math.sqrt(mu2)
            rows.append((*(float(t) for t in sums[i]), m))
    return rows


def histograms(frames, weights, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of ``frames`` ``[n, H, W, C]``: hist ``[n, 4, nbins]`` and const ``[n, 2]`` (layout of the numba kernel)."""
    import torch

    n = frames.shape[0]
    hist = np.zeros((n, 4, nbins))
    const = np.zeros((n, 2))
    for i in range(n):
        _, s, v = hsv(frames[i, ..., :3].float())
        s, v = s.reshape(-1).double(), v.reshape(-1).double()
        wt = torch.ones_like(v) if weights is None else weights[i].reshape(-1).double()
        bv = torch.clamp((v * nbins).long(), max=nbins - 1)
        bs = torch.clamp((s * nbins).long(), max=nbins - 1)
        rows = [torch.bincount(bv, wt, nbins), torch.bincount(bv, wt * v, nbins),
                torch.bincount(bs, wt, nbins), torch.bincount(bs, wt * s, nbins)]
        hist[i] = torch.stack(rows).cpu().numpy()
        const[i] = torch.stack([((1 - wt) * v).sum(), ((1 - wt) * s).sum()]).cpu().numpy()
    return hist, const


def skin(frames, formula):
    h, s, v = hsv(frames[..., :3].float())
    import torch

    return formula(h, s, v, torch.clamp)


def grade(images, gv: np.ndarray, gs: np.ndarray, shift: np.ndarray, weights, out) -> np.ndarray:
    """Grade ``images`` ``[B, H, W, C]`` into ``out`` ``[B, H, W, 3]`` on their device; per-frame parameters.
    Returns float64 ``[B, 4]`` sums (ΣV, ΣS, Σsin h, Σcos h) of the graded frames."""
    import torch

    n, h, w = images.shape[:3]
    sums = []
    dev = images.device
    for a, b in _chunks(n, h, w):
        x = images[a:b, ..., :3].float()
        hh, s, v = hsv(x)
        g_v = torch.as_tensor(gv[a:b], dtype=torch.float32, device=dev)[:, None, None]
        g_s = torch.as_tensor(gs[a:b], dtype=torch.float32, device=dev)[:, None, None]
        sh = torch.as_tensor(shift[a:b], dtype=torch.float32, device=dev)[:, None, None]
        y = rgb(torch.remainder(hh + sh, 360.0), s.pow(g_s), v.pow(g_v))
        if weights is not None:
            k = weights[a:b, ..., None]
            y = k * y + (1 - k) * x
        out[a:b] = y.to(out.dtype)
        h2, s2, v2 = hsv(y)
        rad = torch.deg2rad(h2).double()
        sums.append(torch.stack([v2.double().sum((1, 2)), s2.double().sum((1, 2)), torch.sin(rad).sum((1, 2)),
                                 torch.cos(rad).sum((1, 2))], 1).cpu().numpy())
    return np.concatenate(sums)
