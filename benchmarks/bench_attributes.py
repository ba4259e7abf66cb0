"""Benchmark: per-frame attribute analysis vs a plain cv2 + NumPy loop vs the memory floor, in one run.

    .venv/bin/python benchmarks/bench_attributes.py [--frames 81] [--height 480] [--width 832] [--repeats 5]

(a) ours: ``attributes.frame_stats`` + clip values + curves (the paper's B/C/H per frame), without and with the
    Hasler-Suesstrunk extra, and with a single worker thread (its CPU cost, whatever the number of free cores), on
    the fused numba kernels when numba is installed ("fused") and on the OpenCV fallback ("opencv"), both in this run
    (the pixel backend is switched with EMOVID_PIXELS between calls);
(b) what a user would write: for each frame cv2.cvtColor(RGB2HSV) on the float32 frame, NumPy means of S and V,
    np.sin/np.cos of the hue; (c) the memory floor: one pass reading the float32 IMAGE tensor once
    (``tensor.sum()``, all torch threads). Every repeat runs all variants back to back (round robin), so load from
    other processes hits them alike; times are medians over ``--repeats`` and the ratios come from this run only.
Accuracy: the max differences of (a) against a float64 NumPy implementation of Eqs. 1-3 on the same frames.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from emovid_core import attributes as A  # noqa: E402
from emovid_core import pixels  # noqa: E402


def make_clip(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Moving colour gradients, a drifting bright blob, grey bars and noise: structured, not uniform noise."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h)[:, None]
    xx = torch.linspace(0, 1, w)[None, :]
    out = torch.empty(n, h, w, 3)
    for t in range(n):
        ph = 2 * math.pi * t / n
        out[t, ..., 0] = 0.5 + 0.5 * torch.sin(2 * math.pi * (xx * 1.5 + yy * 0.3) + ph)
        out[t, ..., 1] = 0.5 + 0.5 * torch.sin(2 * math.pi * (yy * 2.0 - xx * 0.5) - ph + 1.0)
        out[t, ..., 2] = 0.5 + 0.5 * torch.cos(2 * math.pi * (xx + yy) + 0.5 * ph)
        cx, cy = 0.2 + 0.6 * t / n, 0.5 + 0.3 * math.sin(ph)
        blob = torch.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / 0.01))
        out[t] = out[t] * (0.55 + 0.45 * t / n) + 0.4 * blob[..., None]
        out[t, :, : w // 10] = 0.35 + 0.3 * t / n  # grey bar: achromatic pixels (hue 0, as in the paper)
    out += 0.03 * torch.randn(out.shape, generator=g)
    return out.clamp_(0, 1).contiguous()


def ours(x: torch.Tensor, hasler: bool, workers: int | None = None, backend: str | None = None):
    if backend:
        os.environ[pixels.ENV] = backend
    try:
        stats = A.frame_stats(x, hasler=hasler, progress=False, workers=workers)
    finally:
        os.environ.pop(pixels.ENV, None)
    return A.clip_attributes(stats, 20), A.curves(stats)


def baseline(x: torch.Tensor):
    """The loop a user would write: cvtColor per frame, NumPy means and trig."""
    b, c, hue = [], [], []
    for frame in x:
        hsv = cv2.cvtColor(frame.numpy(), cv2.COLOR_RGB2HSV)
        h = np.deg2rad(hsv[..., 0])
        b.append(hsv[..., 2].mean())
        c.append(hsv[..., 1].mean())
        hue.append(math.degrees(math.atan2(np.sin(h).sum(), np.cos(h).sum())) % 360)
    return np.array(b), np.array(c), np.array(hue)


def cvt_only(x: torch.Tensor):
    """Just the baseline's cvtColor calls: any exact pipeline that converts to HSV pays at least this."""
    for frame in x:
        cv2.cvtColor(frame.numpy(), cv2.COLOR_RGB2HSV)


def floor(x: torch.Tensor):
    return float(x.sum())


def reference(x: torch.Tensor, stride: int = 20):
    """float64 Eqs. 1-3 per frame and pooled over frames 0, stride, ... (the definition, not the fast path)."""
    per = []
    for frame in x:
        f = frame.numpy().astype(np.float64)
        r, g, b = f[..., 0], f[..., 1], f[..., 2]
        v = f.max(-1)
        d = v - f.min(-1)
        s = np.divide(d, v, out=np.zeros_like(v), where=v > 0)
        safe = np.where(d > 0, d, 1.0)
        h = np.where(v == r, 60 * (g - b) / safe, np.where(v == g, 120 + 60 * (b - r) / safe, 240 + 60 * (r - g) / safe))
        h = np.radians(np.where(d > 0, h, 0.0) % 360)
        per.append((v.sum(), s.sum(), np.sin(h).sum(), np.cos(h).sum(), v.size))
    per = np.array(per)
    sel = per[::stride].sum(0)
    clip = (sel[0] / sel[4], sel[1] / sel[4], math.degrees(math.atan2(sel[2], sel[3])) % 360)
    curves = (per[:, 0] / per[:, 4], per[:, 1] / per[:, 4], np.degrees(np.arctan2(per[:, 2], per[:, 3])) % 360)
    return clip, curves


def timed_round_robin(fns: dict, repeats: int) -> dict[str, tuple[float, object]]:
    """{name: (median seconds, last result)}; each repeat runs every function once, in turn."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    outs: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), outs[k]) for k, v in times.items()}


def angdiff(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    x = make_clip(args.frames, args.height, args.width)
    mb = x.numel() * 4 / 2**20
    print(f"clip: {args.frames} x {args.height} x {args.width} x 3 float32 ({mb:.0f} MiB); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"cv2 threads {cv2.getNumThreads()}, attribute workers {min(A._MAX_WORKERS, A._available_cpus())}; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    fused = pixels.numba_available()
    backends = (["numba"] if fused else []) + ["opencv"]
    print(f"pixel backends measured: {', '.join(backends)}" + ("" if fused else " (numba not installed: pip install '.[fast]')"))
    # Warm up every path once (allocator, thread pools, lazy imports, numba's compile) so the medians are steady state.
    for be in backends:
        ours(x[:2], True, backend=be), ours(x[:2], False, 1, backend=be)
    baseline(x[:2]), floor(x)
    fns = {"floor": lambda: floor(x), "cvt": lambda: cvt_only(x), "base": lambda: baseline(x)}
    for be in backends:
        fns[f"ours-{be}"] = lambda be=be: ours(x, False, backend=be)
        fns[f"full-{be}"] = lambda be=be: ours(x, True, backend=be)
        fns[f"one-{be}"] = lambda be=be: ours(x, False, 1, backend=be)
    r = timed_round_robin(fns, args.repeats)
    t_floor, t_cvt = r["floor"][0], r["cvt"][0]
    t_base, (bb, bc, bh) = r["base"]
    mpx = x.shape[0] * x.shape[1] * x.shape[2] / 1e6
    print(f"(b)  plain cv2.cvtColor + NumPy loop               : {t_base * 1e3:8.1f} ms")
    print(f"(c)  memory floor (tensor.sum(), one read)         : {t_floor * 1e3:8.1f} ms")
    print(f"     the loop's cvtColor calls alone               : {t_cvt * 1e3:8.1f} ms ({t_cvt / t_base:.0%} of (b))")
    for be in backends:
        t_ours, t_full, t_one = (r[f"{k}-{be}"][0] for k in ("ours", "full", "one"))
        name = "fused numba" if be == "numba" else "OpenCV fallback"
        print(f"--- {name}")
        print(f"(a)  ours, paper curves (B, C, H per frame + clip) : {t_ours * 1e3:8.1f} ms")
        print(f"(a+) ours, with Hasler-Suesstrunk extra           : {t_full * 1e3:8.1f} ms")
        print(f"(a1) ours, one worker thread                      : {t_one * 1e3:8.1f} ms "
              f"({t_one * 1e9 / (mpx * 1e6):.2f} ns per pixel of one core)")
        print(f"speed-up (b)/(a)  = {t_base / t_ours:5.2f}x   (target >= 5x)   [{be}]")
        print(f"speed-up (b)/(a+) = {t_base / t_full:5.2f}x")
        print(f"speed-up (b)/(a1) = {t_base / t_one:5.2f}x   (one core each, apart from (b)'s threaded cvtColor)")
        print(f"(a)/(c)           = {t_ours / t_floor:5.2f}x  (target <= 2x)   [{be}]")
        print(f"(a+)/(c)          = {t_full / t_floor:5.2f}x")
    if fused:
        print(f"fused vs OpenCV fallback: {r['ours-opencv'][0] / r['ours-numba'][0]:.2f}x faster (a), "
              f"{r['one-opencv'][0] / r['one-numba'][0]:.2f}x per core (a1)")
        on, oc = r["ours-numba"][1], r["ours-opencv"][1]
        print(f"fused vs fallback: clip raw B {abs(on[0].brightness_raw - oc[0].brightness_raw):.2e} "
              f"C {abs(on[0].colorfulness_raw - oc[0].colorfulness_raw):.2e} H {float(angdiff(on[0].hue_raw, oc[0].hue_raw)):.2e} deg; "
              f"per-frame B {np.abs(on[1]['brightness'] - oc[1]['brightness']).max():.2e}")
    clip, cur = r[f"ours-{backends[0]}"][1]
    cur_full = r[f"full-{backends[0]}"][1][1]

    (rb, rc, rh), (cb, cc, chue) = reference(x)
    print("max |(a) - float64 reference|:")
    print(f"  clip raw  B {abs(clip.brightness_raw - rb):.2e}  C {abs(clip.colorfulness_raw - rc):.2e}  "
          f"H {float(angdiff(clip.hue_raw, rh)):.2e} deg;  rounded equal: "
          f"{(clip.brightness, clip.colorfulness, clip.hue) == (round(rb, 1), round(rc, 1), round(rh) % 360)}")
    print(f"  per frame B {np.abs(cur['brightness'] - cb).max():.2e}  C {np.abs(cur['colorfulness'] - cc).max():.2e}  "
          f"H {angdiff(cur['hue'], chue).max():.2e} deg")
    print(f"  baseline loop vs reference: B {np.abs(bb - cb).max():.2e}  C {np.abs(bc - cc).max():.2e}  "
          f"H {angdiff(bh, chue).max():.2e} deg")
    print(f"  Hasler-Suesstrunk per frame (0..255 scale): {cur_full['hasler_colorfulness'].min():.1f} .. "
          f"{cur_full['hasler_colorfulness'].max():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
