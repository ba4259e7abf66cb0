"""Scoring throughput of the emotion classifiers: frames/s and clips/s with the tiny and a small random CLIP, and
the classifier loaded once (as the pack does) versus loaded again for every clip.

Writes --clips synthetic mp4 clips (--frames frames, --size px) to a temporary folder, then for each CLIP size:
  - probe + decode alone (no model): clips/s;
  - load time of the classifier;
  - classify only (frames already decoded): frames/s and clips/s;
  - decode + classify + flicker (what `emovid eval table3` does per clip): clips/s;
  - the same with the classifier loaded per clip (load_classifier(fresh=True)): clips/s, and the ratio.

    .venv/bin/python benchmarks/bench_eval.py [--clips 24] [--frames 33] [--size 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--size", type=int, default=128, help="clip width and height in pixels")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared 2-core box)")
    ap.add_argument("--sizes", default="tiny,small", help="random CLIP sizes to measure (tiny, small, clip-l)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import numpy as np
    import torch

    from emovid_core import video_io
    from emovid_core.evaluation import metrics
    from emovid_core.evaluation.classifiers import DEFAULT_FRAMES, load_classifier
    from emovid_core.evaluation.tiny import ensure_tiny_clip

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="emovid-bench-eval-"))
    rng = np.random.default_rng(0)
    files = []
    for i in range(args.clips):
        frames = (rng.random((args.frames, args.size, args.size, 3)) * 255).astype(np.uint8)
        files.append(video_io.write_video(frames, tmp / f"clip{i:03d}.mp4", fps=16.0))
    t0 = time.perf_counter()
    decoded = [video_io.read_frames(f, progress=False) for f in files]
    decode_s = time.perf_counter() - t0
    print(f"{args.clips} clips x {args.frames} frames {args.size}x{args.size}, {DEFAULT_FRAMES} classified per clip, "
          f"{args.threads} torch thread(s), device {args.device}; probe + decode alone {len(files) / decode_s:.1f} clips/s")
    folders = {size: ensure_tiny_clip(size) for size in args.sizes.split(",")}
    load_classifier(f"clip:{folders[next(iter(folders))]}", device=args.device, fresh=True)  # imports, untimed
    for size, folder in folders.items():
        t0 = time.perf_counter()
        clf = load_classifier(f"clip:{folder}", device=args.device, fresh=True)
        load_s = time.perf_counter() - t0
        clf.classify(decoded[0])  # warm-up
        t0 = time.perf_counter()
        for fr in decoded:
            clf.classify(fr)
        classify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for f in files:
            fr = video_io.read_frames(f, progress=False)
            clf.classify(fr)
            metrics.flicker(fr)
        once_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for f in files:
            fr = video_io.read_frames(f, progress=False)
            load_classifier(f"clip:{folder}", device=args.device, fresh=True).classify(fr)
            metrics.flicker(fr)
        per_clip_s = time.perf_counter() - t0
        n, k = len(files), min(DEFAULT_FRAMES, args.frames)
        print(f"[{size}] load {load_s:.2f} s; classify only {n * k / classify_s:.0f} frames/s = {n / classify_s:.1f} clips/s; "
              f"decode+classify+flicker, loaded once {n / once_s:.1f} clips/s, loaded per clip {n / per_clip_s:.1f} clips/s "
              f"(loading once is {per_clip_s / once_s:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
