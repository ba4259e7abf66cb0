"""Benchmark: emotion grading of a clip vs a plain per-frame cvtColor + NumPy gamma + cvtColor-back loop vs the
memory floor, in one run.

    .venv/bin/python benchmarks/bench_grade.py [--frames 81] [--height 480] [--width 832] [--repeats 3]

(a) ours: ``grading.grade`` in clip mode toward B 0.30 / C 0.25 / hue +20 degrees — measuring the clip, solving the
    gammas on histograms, grading every frame with the output measured in the same pass, and the closed loop — on
    the fused numba kernels (when installed) and on the OpenCV fallback;
(b) what a user would write, with the gammas (a) found handed to it (no solving, no measuring): per frame
    cv2.cvtColor(RGB2HSV), np.power on V and S, hue + shift mod 360, cv2.cvtColor(HSV2RGB);
(c) the memory floor: one read of the float32 IMAGE and one write of the result (``out.copy_(x)``, all torch threads).
Every repeat runs all variants back to back (round robin); times are medians; ratios come from this run only. When a
CUDA GPU is present the torch path's time on it is printed too (the clip graded on the GPU, nothing copied back).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_attributes import make_clip, timed_round_robin  # noqa: E402

from emovid_core import attributes as A  # noqa: E402
from emovid_core import grading as G  # noqa: E402
from emovid_core import pixels  # noqa: E402


def ours(x, targets, backend: str | None):
    if backend:
        os.environ[pixels.ENV] = backend
    try:
        return G.grade(x, targets, progress=False)
    finally:
        os.environ.pop(pixels.ENV, None)


def plain(x: torch.Tensor, gv: float, gs: float, shift: float) -> np.ndarray:
    out = np.empty(tuple(x.shape), np.float32)
    for i, frame in enumerate(x.numpy()):
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        hsv[..., 2] = np.power(hsv[..., 2], np.float32(gv))
        hsv[..., 1] = np.power(hsv[..., 1], np.float32(gs))
        hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(shift), np.float32(360.0))
        out[i] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    x = make_clip(args.frames, args.height, args.width)
    print(f"clip: {args.frames} x {args.height} x {args.width} x 3 float32 ({x.numel() * 4 / 2**20:.0f} MiB); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs ({A._available_cpus()} available), "
          f"torch threads {torch.get_num_threads()}; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    before = A.clip_attributes(x)
    targets = G.Targets(0.30, 0.25, (before.hue_raw + 20.0) % 360)
    backends = (["numba"] if pixels.numba_available() else []) + ["opencv"]
    print(f"before: B {before.brightness_raw:.4f} C {before.colorfulness_raw:.4f} H {before.hue_raw:.1f}; "
          f"targets B 0.30 C 0.25 H +20 deg; pixel backends: {', '.join(backends)}")
    for be in backends:  # warm-up: numba's compile, pools, allocator
        ours(x[:2], targets, be)
    _, rep = ours(x, targets, backends[0])
    gv, gs, sh = float(rep.gamma_v[0]), float(rep.gamma_s[0]), float(rep.hue_shift[0])
    plain(x[:2], gv, gs, sh)
    sink = torch.empty_like(x)
    fns = {"floor": lambda: sink.copy_(x), "plain": lambda: plain(x, gv, gs, sh)}
    for be in backends:
        fns[be] = lambda be=be: ours(x, targets, be)
    r = timed_round_robin(fns, args.repeats)
    t_floor, (t_plain, plain_out) = r["floor"][0], r["plain"]
    print(f"(b)  plain cvtColor + NumPy gamma + cvtColor loop : {t_plain * 1e3:8.1f} ms (gammas given, nothing measured)")
    print(f"(c)  memory floor (read + write once)             : {t_floor * 1e3:8.1f} ms")
    for be in backends:
        t, (out, rp) = r[be]
        name = "fused numba" if be == "numba" else "OpenCV fallback"
        print(f"--- {name}: {rp.passes} pass(es), gamma V {rp.gamma_v[0]:.3f} S {rp.gamma_s[0]:.3f}, shift {rp.hue_shift[0]:+.2f} deg")
        print(f"(a)  ours, measure + solve + grade + closed loop  : {t * 1e3:8.1f} ms")
        print(f"speed-up (b)/(a) = {t_plain / t:5.2f}x   (target >= 3x)   [{be}]")
        print(f"(a)/(c)          = {t / t_floor:5.2f}x   [{be}]")
        a = rp.after
        print(f"     measured after: B {a.brightness_raw:.4f} C {a.colorfulness_raw:.4f} (goal 0.30 / 0.25); "
              f"max |ours - plain loop| per pixel {float(np.abs(out.numpy() - plain_out).max()):.2e} "
              f"(same gammas and shift)")
    if torch.cuda.is_available():
        xg = x.cuda()
        G.grade(xg[:2], targets, progress=False)
        torch.cuda.synchronize()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out, rg = G.grade(xg, targets, progress=False)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        print(f"GPU ({torch.cuda.get_device_name()}): torch path {statistics.median(times) * 1e3:.1f} ms, "
              f"{rg.passes} pass(es), after B {rg.after.brightness_raw:.4f} C {rg.after.colorfulness_raw:.4f}; output on {out.device}")
    else:
        print("GPU: none here (the torch path runs on CUDA tensors; run this on a machine with a GPU for its time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
