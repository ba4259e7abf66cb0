"""A small synthetic dataset in the EmoVid format, for tests, demos and trying the tools without the real data.

Layout: ``<out>/<type>/<emotion>/<clip_id>.<mp4|gif>`` plus ``<out>/emovid_metadata.csv`` (no attribute
columns: run ``emovid dataset index`` to measure them, as with real data). What it mimics:

- all 3 types × 8 emotions; short clips (9–25 frames, 64×48 by default);
- colour statistics that follow the paper's findings: positive emotions are brighter and slightly more
  colourful, high-arousal emotions darker and more colourful (driven by the Warriner valence/arousal ratings
  in :mod:`emovid_core.emotions`, plus per-clip noise so the effects are real but not perfect);
- stickers are GIFs with a transparent background and uneven frame durations, all human-labelled (the paper
  checked every sticker by hand);
- movie clips are consecutive segments of a few films (``film_id`` + ``segment``), with emotions that tend
  to persist from one segment to the next, as the paper's Markov analysis found;
- ``per_cell`` human-labelled clips per (type × emotion) — enough for a benchmark split of that size — plus
  ``extra_per_cell`` VLM-labelled ones, a caption for every clip, and the ``split`` column filled by the
  paper's rule (test = benchmark, train = training mix).

Making it is idempotent: a marker file records the parameters, and a complete set with the same parameters
is reused instead of rewritten.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_text
from .format import Clip
from .sampling import assign_splits
from .table import write_table

MARKER = ".emovid_sample.json"
METADATA_NAME = "emovid_metadata.csv"
SAMPLE_VERSION = 1

# Per-emotion base hue in degrees (a plausible palette; the paper reports hue means only in its appendix).
_BASE_HUE = {"amusement": 50, "awe": 200, "contentment": 110, "excitement": 25,
             "anger": 0, "disgust": 80, "fear": 260, "sadness": 220}
_PHRASES = {
    "amusement": ("a funny reaction", "a merry moment", "friends laughing together"),
    "awe": ("a vast mountain view", "a glowing night sky", "a towering waterfall"),
    "contentment": ("a quiet afternoon", "a cozy room", "a calm lake at dusk"),
    "excitement": ("a cheering crowd", "a fast chase", "a surprise party"),
    "anger": ("a heated argument", "a slammed door", "clenched fists"),
    "disgust": ("spoiled food", "a grimacing face", "a filthy alley"),
    "fear": ("a dark tunnel", "a screaming sound", "approaching danger"),
    "sadness": ("a lonely figure", "tears in the rain", "an empty chair"),
}
_SUBJECT = {"animation": "A cartoon character", "movie": "A film scene shows", "sticker": "An animated sticker of a figure"}
_TYPE_SHIFT = {"animation": (0.05, 0.05), "movie": (-0.06, -0.05), "sticker": (0.04, 0.08)}  # (value, saturation)


@dataclass
class SampleSet:
    root: Path
    metadata: Path
    clips: int
    reused: bool

    def __str__(self) -> str:
        verb = "reused" if self.reused else "wrote"
        return f"{verb} sample dataset {self.root} ({self.clips} clips, metadata {self.metadata.name})"


def _targets(emotion: str, type_: str) -> tuple[float, float, float]:
    """Mean (value, saturation, hue°) for a clip of this emotion and type."""
    from .. import emotions

    e = emotions.get_emotion(emotion)
    vn = (e.valence_rating - 5.0) / 4.0  # -0.65 .. +0.66
    an = (e.arousal_rating - 5.0) / 4.0  # -0.55 .. +0.30
    dv, ds = _TYPE_SHIFT[type_]
    value = 0.55 + 0.22 * vn - 0.35 * an + dv
    sat = 0.42 + 0.06 * vn + 0.40 * an + ds
    return float(np.clip(value, 0.12, 0.92)), float(np.clip(sat, 0.08, 0.9)), float(_BASE_HUE[e.name])


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    import cv2

    hsv = np.stack([np.mod(h, 360.0), np.clip(s, 0, 1), np.clip(v, 0, 1)], axis=-1).astype(np.float32)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _frames(rng: np.random.Generator, n: int, size: tuple[int, int], value: float, sat: float, hue: float) -> np.ndarray:
    """n RGB frames: a noisy background of the target colour with a moving disc and a slow flicker."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    v0 = value + rng.normal(0, 0.04)
    s0 = sat + rng.normal(0, 0.04)
    h0 = hue + rng.normal(0, 12)
    grain = rng.normal(0, 0.03, size=(h, w)).astype(np.float32)
    cx0, cy0 = rng.uniform(0.2, 0.8) * w, rng.uniform(0.3, 0.7) * h
    vx, vy = rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.0)
    r = rng.uniform(0.15, 0.3) * h
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for t in range(n):
        flick = 0.03 * math.sin(2 * math.pi * t / max(n, 2))
        disc = ((xx - (cx0 + vx * t)) ** 2 + (yy - (cy0 + vy * t)) ** 2) < r * r
        v = np.where(disc, v0 + 0.12, v0) + grain + flick
        s = np.where(disc, s0 * 0.8, s0) + grain * 0.5
        hh = np.where(disc, h0 + 30.0, h0) + xx * 0.3
        out[t] = _hsv_to_rgb(hh, s, v)
    return out


def _sticker(rng: np.random.Generator, n: int, size: tuple[int, int], value: float, sat: float, hue: float):
    """RGBA frames (transparent background, a bouncing face) and uneven per-frame durations in ms."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.32 * h
    out = np.zeros((n, h, w, 4), dtype=np.uint8)
    v0, s0, h0 = value + rng.normal(0, 0.04), sat + rng.normal(0, 0.04), hue + rng.normal(0, 10)
    for t in range(n):
        cy = h / 2 + 0.12 * h * math.sin(2 * math.pi * t / n)
        body = ((xx - w / 2) ** 2 + (yy - cy) ** 2) < r * r
        eye = (((xx - w / 2 + r / 2.5) ** 2 + (yy - cy + r / 3) ** 2) < (r / 6) ** 2) | (
            ((xx - w / 2 - r / 2.5) ** 2 + (yy - cy + r / 3) ** 2) < (r / 6) ** 2)
        rgb = _hsv_to_rgb(np.full((h, w), h0, np.float32), np.where(eye, 0.0, s0), np.where(eye, 0.05, v0 + 0.05 * (yy < cy)))
        out[t, ..., :3] = rgb
        out[t, ..., 3] = np.where(body, 255, 0)
    durations = [int(d) for d in rng.choice([40, 60, 90, 140], size=n)]
    return out, durations


def _movie_sequence(rng: np.random.Generator, per_emotion: int, films: int) -> list[list[str]]:
    """Emotion labels of each film's segments: runs of one emotion (persistence), runs shuffled, cut into films."""
    from .. import emotions

    runs: list[list[str]] = []
    for e in emotions.EMOTIONS:
        left = per_emotion
        while left > 0:
            k = min(left, int(rng.integers(2, 4)))
            runs.append([e] * k)
            left -= k
    order = rng.permutation(len(runs))
    seq = [lab for i in order for lab in runs[i]]
    cuts = np.linspace(0, len(seq), films + 1).round().astype(int)
    return [seq[cuts[i]:cuts[i + 1]] for i in range(films)]


def _caption(rng: np.random.Generator, type_: str, emotion: str) -> str:
    phrase = _PHRASES[emotion][int(rng.integers(0, len(_PHRASES[emotion])))]
    if type_ == "movie":
        return f"{_SUBJECT[type_]} {phrase}, filmed in a steady shot."
    return f"{_SUBJECT[type_]} reacts to {phrase}."


def _params(seed: int, per_cell: int, extra_per_cell: int, films: int, size: tuple[int, int]) -> dict:
    return {"version": SAMPLE_VERSION, "seed": seed, "per_cell": per_cell, "extra_per_cell": extra_per_cell,
            "films": films, "size": list(size)}


def _complete(out: Path, params: dict) -> bool:
    marker = out / MARKER
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if data.get("params") != params:
        return False
    return all((out / rel).is_file() and (out / rel).stat().st_size == size for rel, size in data.get("files", {}).items())


def make_sample(
    out: str | Path,
    seed: int = 0,
    per_cell: int = 2,
    extra_per_cell: int = 1,
    films: int = 4,
    size: tuple[int, int] = (64, 48),
    force: bool = False,
    workers: int = 4,
) -> SampleSet:
    """Write (or reuse) a synthetic EmoVid-format dataset under ``out``; see the module doc.

    ``per_cell`` human-labelled + ``extra_per_cell`` VLM-labelled clips per (type × emotion); stickers are all
    human-labelled. ``films`` movies share the movie clips as consecutive segments.
    """
    from .. import emotions, video_io

    out = Path(out).expanduser()
    if per_cell < 1 or extra_per_cell < 0:
        raise ValueError(f"per_cell={per_cell} must be >= 1 and extra_per_cell={extra_per_cell} >= 0")
    if films < 1:
        raise ValueError(f"films={films} must be at least 1")
    w, h = (int(v) for v in size)
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise ValueError(f"size={size!r}: width and height must be even and at least 16 (e.g. 64x48)")
    params = _params(int(seed), int(per_cell), int(extra_per_cell), int(films), (w, h))
    meta = out / METADATA_NAME
    if not force and _complete(out, params):
        n = sum(1 for line in meta.read_text().splitlines()[1:] if line.strip())
        return SampleSet(out, meta, n, True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    jobs: list = []  # (relative path, frames, fps, per-frame durations or None)
    clips: list[Clip] = []
    per = per_cell + extra_per_cell

    def add(clip: Clip, frames: np.ndarray, fps: float, durations: list[int] | None = None) -> None:
        clips.append(clip)
        jobs.append((clip.path, frames, fps, durations))

    for t in ("animation", "sticker"):
        for e in emotions.EMOTIONS:
            for k in range(per):
                cid = f"{t[:3]}_{e}_{k:02d}"
                label = "human" if (t == "sticker" or k < per_cell) else "vlm"
                value, sat, hue = _targets(e, t)
                n = int(rng.integers(9, 26))
                crng = np.random.default_rng(rng.integers(0, 2**63))
                if t == "sticker":
                    frames, durs = _sticker(crng, n, (w, h), value, sat, hue)
                    add(Clip(cid, f"{t}/{e}/{cid}.gif", t, e, label, _caption(crng, t, e)), frames, 12.0, durs)
                else:
                    frames = _frames(crng, n, (w, h), value, sat, hue)
                    add(Clip(cid, f"{t}/{e}/{cid}.mp4", t, e, label, _caption(crng, t, e)), frames, 12.0)
    seen: dict[str, int] = {}
    for fi, labels in enumerate(_movie_sequence(rng, per, films)):
        film = f"film{fi:02d}"
        for seg, e in enumerate(labels):
            cid = f"mov_{film}_{seg:03d}"
            k = seen.get(e, 0)
            seen[e] = k + 1
            label = "human" if k < per_cell else "vlm"
            value, sat, hue = _targets(e, "movie")
            crng = np.random.default_rng(rng.integers(0, 2**63))
            frames = _frames(crng, int(rng.integers(9, 26)), (w, h), value, sat, hue)
            add(Clip(cid, f"movie/{e}/{cid}.mp4", "movie", e, label, _caption(crng, "movie", e), film_id=film, segment=seg),
                frames, 8.0)

    def run(job):
        rel, frames, fps, durations = job
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if durations is not None:
            video_io.write_video(frames, path, fps=fps, format="gif", durations_ms=durations)
        else:
            video_io.write_video(frames, path, fps=fps, format="mp4", quality=90)
        return rel, path.stat().st_size

    # Threads, not processes: the time goes into ffmpeg subprocesses and Pillow's encoder, which overlap fine.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        files = dict(pool.map(run, jobs))
    clips, _report = assign_splits(clips, per_cell=per_cell, seed=seed)
    write_table(meta, clips)
    write_text(out / MARKER, json.dumps({"params": params, "files": files}, indent=1, sort_keys=True) + "\n", fsync=True)
    return SampleSet(out, meta, len(clips), False)


__all__ = ["make_sample", "SampleSet"]
