"""GPU check of emovid_core.evaluation: Table 3 on 240 clips with a random CLIP-L-sized model in under 5 minutes.

Builds (no download) a random-weight CLIP with ViT-L/14 shapes (vision 1024 wide × 24 layers at 224 px, text 768 × 12),
writes a 240-clip benchmark (10 per type × emotion; --frames frames at --width × --height, mp4), then runs
``run_table3`` on CUDA with the zero-shot classifier and CLIP score from that model, and prints one line per stage,
the throughput, and PASS/FAIL against the 5-minute target (scoring only; building and writing are timed apart).

    python benchmarks/check_eval_gpu.py [--frames 33] [--width 832] [--height 480] [--limit-s 300]
    python benchmarks/check_eval_gpu.py --device cpu --clip-size tiny --frames 5 --width 64 --height 48   # dry run of the script
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")


def say(msg: str) -> None:
    print(msg, flush=True)


def write_benchmark(root: Path, frames: int, width: int, height: int, workers: int) -> int:
    import numpy as np

    from emovid_core import video_io
    from emovid_core.dataset import SOURCE_TYPES, Clip, write_table
    from emovid_core.emotions import EMOTIONS

    jobs, clips = [], []
    for t in SOURCE_TYPES:
        for k, e in enumerate(EMOTIONS):
            for i in range(10):
                cid = f"{t[:3]}_{e}_{i:02d}"
                clips.append(Clip(cid, f"{t}/{cid}.mp4", t, e, "human", f"A {t} clip with a {e} moment.", split="test"))
                jobs.append((root / t / f"{cid}.mp4", 1000 * k + i))

    def one(job):
        path, seed = job
        rng = np.random.default_rng(seed)
        base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        video = np.stack([np.roll(base, 2 * f, axis=1) for f in range(frames)])  # smooth motion: realistic file sizes
        video_io.write_video(video, path, fps=16.0)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, jobs))
    write_table(root / "emovid_metadata.csv", clips)
    return len(clips)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--limit-s", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 4))
    ap.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a dry run of the script)")
    ap.add_argument("--clip-size", default="clip-l", choices=["tiny", "small", "clip-l"])
    args = ap.parse_args()

    import torch

    from emovid_core.evaluation import table3
    from emovid_core.evaluation.tiny import ensure_tiny_clip

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        say("FAIL: no CUDA device")
        return 1
    say(f"device {torch.cuda.get_device_name(0) if cuda else 'cpu'}, torch {torch.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="emovid-eval-gpu-"))
    os.environ.setdefault("EMOVID_CACHE", str(tmp / "cache"))
    t0 = time.perf_counter()
    folder = ensure_tiny_clip(args.clip_size)
    say(f"random CLIP ({args.clip_size}) built and saved in {time.perf_counter() - t0:.1f} s: {folder}")
    t0 = time.perf_counter()
    n = write_benchmark(tmp / "ds", args.frames, args.width, args.height, args.workers)
    say(f"{n} clips of {args.frames} frames {args.width}x{args.height} written in {time.perf_counter() - t0:.1f} s")
    videos = tmp / "videos"
    videos.mkdir()
    for p in (tmp / "ds").rglob("*.mp4"):
        (videos / p.name).symlink_to(p)
    opts = table3.Table3Options(dataset=tmp / "ds", classifier=f"clip:{folder}", out=tmp / "out", task="t2v", clip=str(folder),
                                device=args.device)
    t0 = time.perf_counter()
    result = table3.run_table3(opts, [table3.Row("random-clip-l", videos)])
    seconds = time.perf_counter() - t0
    say(result.summary())
    frames_scored = n * 8
    say(f"scored {n} clips in {seconds:.1f} s: {n / seconds:.2f} clips/s, {n * args.frames / seconds:.0f} decoded frames/s, "
        f"{frames_scored / seconds:.0f} classified frames/s"
        + (f"; peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else ""))
    t0 = time.perf_counter()
    again = table3.run_table3(opts, [table3.Row("random-clip-l", videos)])
    say(f"resume: {again.reused} reused, {again.scored} scored in {time.perf_counter() - t0:.1f} s")
    ok = seconds < args.limit_s and result.rows[0]["scored"] == n and again.scored == 0
    say(f"{'PASS' if ok else 'FAIL'}: 240 clips with a random {args.clip_size} CLIP on {args.device} in {seconds:.1f} s (target < {args.limit_s:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
