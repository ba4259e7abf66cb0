"""Dataset tool speed on a full-size table and on a long clip. Prints measured numbers and ratios.

1. A synthetic 22,758-row metadata table with the paper's proportions (2,807 animation / 13,255 movie /
   6,696 sticker, 10,049 human labels, realistic captions, attributes, durations, films/segments, splits):
   load (parse + validate every row), filter, draw one clip, the benchmark split and the training mix.
   Targets: load < 1 s, one sample < 10 ms.
2. 16 frames evenly spaced from a 30 s 832×480 clip at 24 fps (written once with video_io, with a shot change
   every 2 s like a film, so the encoder puts keyframes there): video_io's seek-based decode vs a full
   sequential decode (every frame decoded and converted, as a naive loader does) and vs a sequential
   decode that only grab()s skipped frames. Target: seek ≥ 3× faster than the full sequential decode.

Run: ``.venv/bin/python benchmarks/bench_dataset.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")

from emovid_core import video_io  # noqa: E402
from emovid_core.dataset import (  # noqa: E402
    Clip,
    Filter,
    apply_filter,
    benchmark_split,
    read_table,
    sample_random,
    training_mix,
    write_table,
)
from emovid_core.emotions import EMOTIONS  # noqa: E402

PAPER = {"animation": (2807, 5.12, 2.65, 282), "movie": (13255, 8.75, 4.71, 2771), "sticker": (6696, 2.91, 2.18, 6696)}
WORDS = ("a man", "a woman", "two friends", "a child", "a cartoon cat", "a crowd", "a soldier", "an old couple",
         "walks", "turns away", "laughs", "stares", "runs", "whispers", "in a dark room", "on a sunny street",
         "at night", "under heavy rain", "with a smile", "looking worried", "near the window", "in slow motion")


def synthetic_table(path: Path, seed: int = 0) -> int:
    rng = random.Random(seed)
    clips: list[Clip] = []
    for t, (n, mean, sd, human) in PAPER.items():
        film, seg = 0, 0
        for i in range(n):
            emo = EMOTIONS[rng.randrange(8)]
            dur = max(0.5, rng.gauss(mean, sd))
            fps = 24.0 if t == "movie" else (12.0 if t == "sticker" else 23.976)
            caption = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 24))).capitalize() + "."
            kw = {}
            if t == "movie":
                if seg >= rng.randint(5, 40):
                    film, seg = film + 1, 0
                kw = {"film_id": f"film{film:05d}", "segment": seg}
                seg += 1
            clips.append(Clip(
                clip_id=f"{t[:3]}_{i:05d}", path=f"{t}/{emo}/{t[:3]}_{i:05d}.{'gif' if t == 'sticker' else 'mp4'}",
                type=t, emotion=emo, label_source="human" if i < human else "vlm", caption=caption,
                brightness=round(rng.random(), 1), colorfulness=round(rng.random(), 1), hue=rng.randrange(360),
                duration=round(dur, 3), fps=fps, frames=int(dur * fps), width=832, height=480, **kw))
    rng.shuffle(clips)
    write_table(path, clips)
    return len(clips)


def timed(fn, repeat: int = 5):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _film_frames(seconds: int, fps: int, size: tuple[int, int]):
    """Moving patterns with a cut to a new "shot" every 1–4 s (irregular, like a film)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    cuts, t = set(), 0
    while t < seconds * fps:
        t += int(rng.integers(fps, 4 * fps))
        cuts.add(t)
    shot = 0
    for i in range(seconds * fps):
        shot += i in cuts
        base = (np.array([37, 91, 151]) * (shot + 1)) % 255
        x = (xx + 7 * i) % w
        img = np.empty((h, w, 3), np.uint8)
        img[..., 0] = (base[0] + x // 4) % 255
        img[..., 1] = (base[1] + yy // 3 + shot * 20) % 255
        img[..., 2] = (base[2] + (x * yy) // 2000) % 255
        noise = rng.integers(0, 12, size=(h // 8, w // 8, 1), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        yield img + noise


def long_clip(path: Path, seconds: int = 30, fps: int = 24, size=(832, 480)) -> Path:
    """The clip as video_io writes it: x264 defaults (keyframe at most every 250 frames, plus scene cuts)."""
    return video_io.write_video(_film_frames(seconds, fps, size), path, fps=fps, format="mp4")


def short_gop_clip(path: Path, seconds: int = 30, fps: int = 24, size=(832, 480), gop: int = 12) -> Path:
    """Same content with a keyframe every ``gop`` frames (as streaming encodes often have)."""
    import subprocess

    w, h = size
    cmd = [video_io.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-g", str(gop),
           "-pix_fmt", "yuv420p", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for frame in _film_frames(seconds, fps, size):
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}")
    return path


def full_sequential(path: Path, wanted: list[int]) -> list[np.ndarray]:
    """Decode and convert every frame (what loading the whole clip costs), keep the wanted ones."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    keep, out, i = set(wanted), [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if i in keep:
            out.append(rgb)
        i += 1
    cap.release()
    return out


def grab_sequential(path: Path, wanted: list[int]) -> list[np.ndarray]:
    """Decode every frame but convert only the wanted ones (grab/retrieve, no seeking)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out, pos = [], 0
    for i in wanted:
        while pos < i:
            cap.grab()
            pos += 1
        ok, frame = cap.read()
        pos += 1
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", default=None, help="folder to keep the generated files in (default: a temp dir)")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="emovid_bench_"))
    tmp.mkdir(parents=True, exist_ok=True)

    table = tmp / "emovid_index.csv"
    n = synthetic_table(table)
    print(f"table: {n} rows, {table.stat().st_size / 2**20:.1f} MiB CSV")
    t_load, ds = timed(lambda: read_table(table), repeat=3)
    assert len(ds.clips) == n and not ds.rejects
    flt = Filter(emotions="fear", types="movie", ranges={"brightness": (0.2, 0.8)})
    t_filter, (kept, trace) = timed(lambda: apply_filter(ds.clips, flt))
    t_sample, one = timed(lambda: sample_random(kept, 1, seed=3), repeat=20)
    t_sample_all, _ = timed(lambda: sample_random(ds.clips, 1, seed=3), repeat=20)
    t_bench, bench = timed(lambda: benchmark_split(ds.clips, 10, seed=0), repeat=3)
    t_mix, (train, report) = timed(lambda: training_mix(ds.clips, {c.clip_id for c in bench}, seed=0), repeat=3)
    print(f"load + validate      {t_load * 1000:8.1f} ms   (target < 1000 ms: {'PASS' if t_load < 1 else 'MISS'})")
    print(f"filter               {t_filter * 1000:8.1f} ms   {' → '.join(f'{a} {b}' for a, b in trace)}")
    print(f"one sample (filtered){t_sample * 1000:8.2f} ms   (target < 10 ms: {'PASS' if t_sample < 0.01 else 'MISS'})")
    print(f"one sample (all rows){t_sample_all * 1000:8.2f} ms   (target < 10 ms: {'PASS' if t_sample_all < 0.01 else 'MISS'})")
    print(f"benchmark split      {t_bench * 1000:8.1f} ms   {len(bench)} clips")
    print(f"training mix         {t_mix * 1000:8.1f} ms   {report}")

    for name, writer in (("long_30s_480p.mp4", long_clip), ("long_30s_480p_gop12.mp4", short_gop_clip)):
        clip = tmp / name
        if not clip.is_file():
            t0 = time.perf_counter()
            writer(clip)
            print(f"wrote {clip.name} in {time.perf_counter() - t0:.1f} s")
        info = video_io.probe(clip)
        wanted = [int(round(i * (info.frames - 1) / 15)) for i in range(16)]
        keys = video_io.keyframes(clip)
        print(f"\nclip: {info.describe()}; {len(keys) if keys else 'unknown'} keyframes; 16 frames at {wanted[:4]}…{wanted[-1]}")
        t_full, ref = timed(lambda c=clip, w=wanted: full_sequential(c, w), repeat=3)
        t_grab, _ = timed(lambda c=clip, w=wanted: grab_sequential(c, w), repeat=3)
        t_seek, seeked = timed(lambda c=clip, w=wanted, i=info: video_io.read_frames(c, indices=w, info=i, progress=False), repeat=3)
        same = len(ref) == len(seeked) == 16 and all(np.array_equal(a, b) for a, b in zip(ref, seeked))
        print(f"full sequential      {t_full * 1000:8.1f} ms")
        print(f"grab sequential      {t_grab * 1000:8.1f} ms")
        print(f"seek (video_io)      {t_seek * 1000:8.1f} ms   same pixels as sequential: {same}")
        print(f"ratio full/seek      {t_full / t_seek:8.2f}×  (target ≥ 3×: {'PASS' if t_full / t_seek >= 3 else 'MISS'})")
        print(f"ratio grab/seek      {t_grab / t_seek:8.2f}×")
    if not args.keep:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
