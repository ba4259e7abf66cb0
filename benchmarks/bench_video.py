"""Benchmark: taking a few frames from a long clip by seeking vs decoding it all.

    .venv/bin/python benchmarks/bench_video.py [--frames 600] [--size 480x272] [--take 16]

Writes a synthetic clip twice (x264 keyframe every 250 frames = the default, and every 32 = a typical camera),
then times ``read_frames(indices=...)`` (seeks + grabs) against ``read_frames(path)`` (every frame decoded and
converted), checks both give identical pixels, and prints the speed-up ratio measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")

from emovid_core import video_io as vio  # noqa: E402


def synthetic(n: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)[:h, :w]
    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):  # moving content so inter-frame coding has work to do
        out[t] = np.roll(base, (t * 3) % w, axis=1)
        out[t, :, :, 0] = (out[t, :, :, 0].astype(np.int32) + t) % 256
    return out


def timed(fn, repeat=3):
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="480x272")
    ap.add_argument("--take", type=int, default=16)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as d:
        base = vio.write_video(synthetic(args.frames, w, h), Path(d) / "long_g250.mp4", 16)
        g32 = Path(d) / "long_g32.mp4"
        subprocess.run([vio.ffmpeg_exe(), "-v", "error", "-y", "-i", str(base), "-c:v", "libx264", "-g", "32",
                        "-pix_fmt", "yuv420p", str(g32)], check=True)
        info = vio.probe(base)
        wanted = np.linspace(0, info.frames - 1, args.take).round().astype(int).tolist()
        print(f"clip: {info.frames} frames {w}x{h}; taking {len(wanted)} evenly spaced frames")
        for path in (base, g32):
            t_seek, picked = timed(lambda p=path: vio.read_frames(p, indices=wanted, progress=False))
            t_all, full = timed(lambda p=path: vio.read_frames(p, progress=False))
            same = all(np.array_equal(picked[k], full[i]) for k, i in enumerate(wanted))
            print(f"{path.name:16s} seek+grab {t_seek * 1000:8.1f} ms | decode all {t_all * 1000:8.1f} ms | "
                  f"speed-up x{t_all / t_seek:5.2f} | identical pixels: {same}")
            t_stride, strided = timed(lambda p=path: vio.read_frames(p, every_nth=4, progress=False))
            print(f"{'':16s} every_nth=4 ({len(strided)} frames) {t_stride * 1000:8.1f} ms = x{t_all / t_stride:5.2f} vs decode all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
