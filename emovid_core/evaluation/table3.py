"""The paper's Table 3 protocol, end to end: benchmark clips -> videos (given, or generated before/after a LoRA)
-> per-clip scores (cached, so a stopped run resumes) -> ``per_clip.csv``, ``table3.json``, ``table3.md`` and plots.

Protocol (paper §Evaluation; docs/evaluation.md#the-protocol): the benchmark is the dataset's ``test`` split (240
human-labelled clips, 10 per type × emotion; drawn by the paper's rule when the table has no split column). Each
clip's prompt is its caption plus the paper's emotion sentence; I2V starts from the clip's first frame. A video is
scored against the emotion its prompt asked for. Metrics are defined in :mod:`emovid_core.evaluation.metrics`.

Resume: every scored clip is appended (one JSON line, flushed and fsynced) to ``cache/<row>.jsonl`` under the
output folder with a key of everything the score depends on (the video file's size and mtime, the classifier's
identity, the CLIP folder, the frames setting). A rerun reuses the lines whose key still matches and scores the rest,
so an interrupted run finishes where it stopped and a finished one rewrites the same table.

Engines: generation and scoring are tasks on an engine of :mod:`emovid_core.executor` whose workers hold the loaded
pipeline / scorer (``init``): ``local`` with one worker (the default) runs them here, in order; ``ray`` runs them on
actors across a cluster, one GPU each where the cluster has GPUs (docs/cluster.md). Keys, caches, videos and tables
are made by this process only, so the outputs are the same whichever engine ran the work.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import runtime
from ..emotions import EMOTIONS, valence
from . import metrics
from .classifiers import NOT_COMPARABLE, sample_indices

log = logging.getLogger("EmoVid")

TASKS = ("t2v", "i2v")
# The paper's column order.
COLUMNS = ("fvd", "clip_score", "sd_score", "flicker", "ea2", "ea8")
TITLES = {"fvd": "FVD↓", "clip_score": "CLIP↑", "sd_score": "SD↑", "flicker": "Flicker↓", "ea2": "EA-2cls↑", "ea8": "EA-8cls↑"}
# Table 3 as printed (emovid_paper.md §8); None = "–" in the paper.
PAPER_ROWS: dict[str, list[tuple[str, dict[str, float | None]]]] = {
    "t2v": [
        ("VideoCrafter-V2", dict(fvd=610.1, clip_score=0.3012, sd_score=None, flicker=0.0184, ea2=80.42, ea8=42.50)),
        ("HunyuanVideo", dict(fvd=552.6, clip_score=0.2776, sd_score=None, flicker=0.0116, ea2=76.87, ea8=40.41)),
        ("CogVideoX-5B", dict(fvd=584.0, clip_score=0.3013, sd_score=None, flicker=0.0213, ea2=82.91, ea8=44.58)),
        ("WanVideo (before)", dict(fvd=594.3, clip_score=0.2982, sd_score=None, flicker=0.0091, ea2=84.17, ea8=44.16)),
        ("WanVideo (after)", dict(fvd=573.7, clip_score=0.3021, sd_score=None, flicker=0.0143, ea2=88.33, ea8=48.33)),
    ],
    "i2v": [
        ("DynamiCrafter512", dict(fvd=512.3, clip_score=None, sd_score=0.7288, flicker=0.0280, ea2=90.41, ea8=71.25)),
        ("HunyuanVideo-I2V", dict(fvd=544.6, clip_score=None, sd_score=0.7244, flicker=0.0233, ea2=89.17, ea8=70.00)),
        ("CogVideoX-I2V", dict(fvd=528.4, clip_score=None, sd_score=0.7214, flicker=0.0331, ea2=90.83, ea8=70.83)),
        ("WanVideo (before)", dict(fvd=517.9, clip_score=None, sd_score=0.7146, flicker=0.0325, ea2=91.25, ea8=71.30)),
        ("WanVideo (after)", dict(fvd=517.8, clip_score=None, sd_score=0.7193, flicker=0.0324, ea2=94.58, ea8=76.25)),
    ],
}
OUTPUT_FILES = ("per_clip.csv", "table3.json", "table3.md", "confusion.png", "per_emotion_accuracy.png")
MANIFEST = ".emovid_table3.json"
CACHE_DIR = "cache"
CACHE_VERSION = 1
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif", ".webp")


@dataclass
class Row:
    """One row of our table: a name and the folder holding its videos, named by clip id."""

    name: str
    videos: Path

    @classmethod
    def parse(cls, text: str, default_name: str = "ours") -> "Row":
        name, sep, folder = str(text).partition("=")
        if not sep:
            name, folder = default_name, text
        name = name.strip()
        if not name or any(ch in name for ch in "/\\,\n") or name.startswith("."):
            raise ValueError(f"row name {name!r} (from {text!r}) must be a short label such as before or after: NAME=DIR")
        return cls(name, Path(folder).expanduser())


@dataclass
class Table3Options:
    dataset: Path
    classifier: str
    out: Path
    task: str = "t2v"
    clip: str | None = None  # CLIP folder for CLIP score (T2V) / SD score (I2V)
    fvd_features: str | None = None  # vision model folder/file whose features FVD uses
    vision: str | None = None  # override the probe's vision model
    frames: int | None = None  # frames per clip for the classifier (default: the classifier's)
    device: str = "auto"
    metadata: str | None = None
    skip_missing: bool = False
    max_frames: int = 0  # decode at most this many frames per video (0 = all) for flicker


@dataclass
class ClipResult:
    row: str
    clip_id: str
    type: str
    emotion: str
    predicted: str | None
    probabilities: list[float] | None
    answer: str
    flicker: float | None
    clip_score: float | None
    sd_score: float | None
    frames: int
    video: str
    key: str
    features: list[float] | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Table3Result:
    out: Path
    files: list[Path]
    rows: list[dict]
    reused: int = 0
    scored: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{r['name']}: EA-2 {_fmt(r['metrics']['ea2'], 'ea2')}, EA-8 {_fmt(r['metrics']['ea8'], 'ea8')}, "
                 f"flicker {_fmt(r['metrics']['flicker'], 'flicker')} ({r['scored']}/{r['clips']} clips scored"
                 + (f", {r['unparsed']} unparsed" if r["unparsed"] else "") + ")" for r in self.rows]
        lines.append(f"{self.scored} clips scored, {self.reused} reused from the cache; wrote "
                     + ", ".join(p.name for p in self.files) + f" in {self.out}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- helpers


_COUNTER = re.compile(r"^(?P<id>.+)_(?P<n>\d{5,})_?$")


def index_videos(folder: Path, clip_ids: Sequence[str]) -> dict[str, Path]:
    """clip id -> its video in ``folder``: ``<clip_id>.<ext>`` (any video extension) or an image folder ``<clip_id>/``;
    else the newest ComfyUI-style save of that prefix, ``<clip_id>_00001.mp4`` (EmoVid Save Video) or
    ``<clip_id>_00001_.mp4`` (core Save Video), highest counter wins. A counter name that is itself a clip id is
    that clip's, never another's."""
    ids = set(clip_ids)
    found: dict[str, Path] = {}
    counters: dict[str, tuple[int, Path]] = {}
    for entry in sorted(folder.iterdir()):
        stem = entry.name if entry.is_dir() else entry.stem
        if not entry.is_dir() and entry.suffix.lower() not in VIDEO_EXTENSIONS:
            continue
        if stem in ids:
            found.setdefault(stem, entry)
            continue
        m = _COUNTER.match(stem)
        if m and m.group("id") in ids and entry.is_file():
            n = int(m.group("n"))
            if m.group("id") not in counters or n > counters[m.group("id")][0]:
                counters[m.group("id")] = (n, entry)
    for cid, (_n, path) in counters.items():
        found.setdefault(cid, path)
    return found


def benchmark(ds, task: str) -> list:
    from ..dataset.sampling import benchmark_clips

    if task not in TASKS:
        raise ValueError(f"task {task!r} must be t2v or i2v")
    return list(benchmark_clips(ds.clips))


def prompt_for(clip) -> str:
    """The benchmark prompt: the clip's caption plus the paper's emotion sentence."""
    from ..prompts import build_prompt

    return build_prompt(clip.caption or "", clip.emotion)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _file_stamp(p: Path) -> list:
    if p.is_dir():
        return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())
    st = p.stat()
    return [st.st_size, st.st_mtime_ns]


def _read_cache(path: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut short by a crash: that clip is scored again
            continue
        if isinstance(rec, dict) and "clip_id" in rec and "key" in rec:
            out[rec["clip_id"]] = rec
    return out


def _open_cache(path: Path):
    """The cache for appending; a last line cut short by a crash is closed first so the next record starts clean."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cut = False
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as raw:
            raw.seek(-1, os.SEEK_END)
            cut = raw.read(1) != b"\n"
    fh = open(path, "a", encoding="utf-8")
    if cut:
        fh.write("\n")
    return fh


def _append(fh, rec: dict) -> None:
    fh.write(json.dumps(rec, allow_nan=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def _decode(path: Path, max_frames: int) -> np.ndarray:
    from .. import video_io

    info = video_io.probe(path)
    return video_io.read_frames(path, info=info, max_frames=max_frames or None, progress=False)


def _first_frame(ds, clip) -> np.ndarray:
    from .. import video_io

    return video_io.read_frames(ds.clip_file(clip), indices=[0], progress=False)[0]


# ---------------------------------------------------------------------------------------------- scoring


def _score_key(identity: dict, clip, video: Path) -> str:
    return _digest({"id": identity, "clip": clip.clip_id, "emotion": clip.emotion, "video": str(video),
                    "stamp": _file_stamp(video), "prompt": prompt_for(clip)})


class _Scorer:
    """Scores one video: classifier, flicker, CLIP/SD score and FVD features, with everything loaded once."""

    def __init__(self, opts: Table3Options, ds) -> None:
        from .classifiers import load_classifier, load_encoder

        self.opts = opts
        self.ds = ds
        self.classifier = load_classifier(opts.classifier, vision=opts.vision, frames=opts.frames, device=opts.device)
        self.clip = load_encoder(opts.clip, opts.device) if opts.clip else None
        if self.clip is not None and not self.clip.has_text:
            raise ValueError(f"--clip {opts.clip}: CLIP/SD scores need a full CLIP folder (text and vision towers)")
        self.fvd = load_encoder(opts.fvd_features, opts.device) if opts.fvd_features else None
        self._text: dict[str, np.ndarray] = {}
        self.identity = {
            "version": CACHE_VERSION, "task": opts.task, "classifier": self.classifier.identity(),
            "clip": self.clip.identity() if self.clip else None, "fvd": self.fvd.identity() if self.fvd else None,
            "max_frames": opts.max_frames,
        }

    def key(self, clip, video: Path) -> str:
        return _score_key(self.identity, clip, video)

    def facts(self) -> dict:
        """What the driver needs to key the cache and write the report, without loading anything itself."""
        return {"identity": self.identity, "classifier": {**self.classifier.identity(), "describe": self.classifier.describe()},
                "frames": self.classifier.frames, "clip_folder": self.clip.source if self.clip else None,
                "fvd_source": self.fvd.source if self.fvd else None}

    def real_features(self, clip) -> list[float]:
        frames = _decode(self.ds.clip_file(clip), self.opts.max_frames)
        return self.fvd.pooled(frames[sample_indices(len(frames), self.classifier.frames)]).mean(0).tolist()

    def score(self, row: str, clip, video: Path) -> ClipResult:
        from .classifiers import ClipZeroShot

        frames = _decode(video, self.opts.max_frames)
        picked = frames[sample_indices(len(frames), self.classifier.frames)]
        emb = self.clip.image_embeds(picked) if self.clip is not None else None
        if isinstance(self.classifier, ClipZeroShot) and self.classifier.encoder is self.clip:
            pred = self.classifier.classify_embeds(emb)  # the same model: embed the frames once
        else:
            pred = self.classifier.classify(frames)
        cs = sd = None
        if self.clip is not None:
            if self.opts.task == "t2v":
                text = prompt_for(clip)
                if text not in self._text:
                    self._text[text] = self.clip.text_embeds([text])[0]
                cs = metrics.clip_score(emb, self._text[text])
            else:
                ref = self.clip.image_embeds(_first_frame(self.ds, clip)[None])[0]
                sd = metrics.sd_score(emb, ref)
        feats = self.fvd.pooled(picked).mean(0).tolist() if self.fvd is not None else None
        probs = pred.probabilities.tolist() if pred.probabilities is not None else None
        return ClipResult(row, clip.clip_id, clip.type, clip.emotion, pred.label, probs, pred.answer, metrics.flicker(frames),
                          cs, sd, len(frames), str(video), self.key(clip, video), feats)


# Worker side (module level: tasks travel by name). ``init`` builds the scorer once per worker.
def _make_scorer(opts: Table3Options) -> _Scorer:
    from ..dataset import load_dataset

    return _Scorer(opts, load_dataset(opts.dataset, opts.metadata))


def _scorer_facts(scorer: _Scorer) -> dict:
    return scorer.facts()


def _score_task(scorer: _Scorer, row: str, clip, video: str) -> ClipResult:
    return scorer.score(row, clip, Path(video))


def _real_task(scorer: _Scorer, clip) -> list[float]:
    return scorer.real_features(clip)


def _ask(ex, key: str, fn, *args):
    """One task, run now; its error stops the run."""
    ex.submit(key, fn, *args)
    for out in ex.results():
        if not out.ok:
            raise RuntimeError(f"{key}: {out.error}")
        return out.value


def _actor_options(engine: str, engine_options: dict | None, device: str) -> dict:
    """The engine's options; ``--device cpu`` keeps ray actors off the cluster's GPUs."""
    options = dict(engine_options or {})
    if engine == "ray" and device == "cpu":
        options.setdefault("gpus", False)
    return options


def _worker_opts(opts: Table3Options, engine_options: dict | None) -> Table3Options:
    """``opts`` with every path as the workers see it (the ray engine's ``path_map``; else unchanged)."""
    from dataclasses import replace

    path_map = (engine_options or {}).get("path_map") or ()
    if not path_map:
        return opts
    from ..ray_engine import map_path

    def m(v):
        return None if v is None else map_path(v, path_map)

    backend, sep, path = opts.classifier.partition(":")
    return replace(opts, dataset=Path(m(opts.dataset)), classifier=f"{backend}{sep}{m(path)}" if sep else opts.classifier,
                   clip=m(opts.clip), fvd_features=m(opts.fvd_features), vision=m(opts.vision), metadata=m(opts.metadata))


def _score_row(ex, facts: dict, opts: Table3Options, row: Row, clips: Sequence, cache_dir: Path, counts: dict) -> list[ClipResult]:
    videos = index_videos(row.videos, [c.clip_id for c in clips])
    missing = [c.clip_id for c in clips if c.clip_id not in videos]
    if missing and not opts.skip_missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise FileNotFoundError(f"row {row.name}: {len(missing)} of {len(clips)} benchmark clips have no video in {row.videos} "
                                f"(expected <clip_id>.mp4 etc.): {shown}; generate them (e.g. --generate) or pass --skip-missing")
    cache_path = cache_dir / f"{row.name}.jsonl"
    cached = _read_cache(cache_path)
    done: dict[str, ClipResult] = {}
    todo: dict[str, tuple[str, Path]] = {}
    fields_ = set(ClipResult.__dataclass_fields__)
    with _open_cache(cache_path) as fh, runtime.progress_bar(len(videos), f"Table 3 {row.name}") as bar:
        for c in clips:
            if c.clip_id not in videos:
                continue
            v = videos[c.clip_id]
            key = _score_key(facts["identity"], c, v)
            rec = cached.get(c.clip_id)
            if rec is not None and rec.get("key") == key:
                done[c.clip_id] = ClipResult(**{k: rec.get(k) for k in fields_})
                counts["reused"] += 1
                bar.update(1)
            else:
                todo[c.clip_id] = (key, v)
                ex.submit(c.clip_id, _score_task, row.name, c, ex.worker_path(v))
        for out in ex.results():  # in completion order; each result is cached at once
            if not out.ok:
                raise RuntimeError(f"row {row.name}, clip {out.key}: {out.error}")
            res = out.value
            res.key, res.video = todo[out.key][0], str(todo[out.key][1])  # this machine's path, not the worker's
            _append(fh, res.to_json())
            done[out.key] = res
            counts["scored"] += 1
            bar.update(1)
    return [done[c.clip_id] for c in clips if c.clip_id in done]


def _real_features(ex, facts: dict, ds, clips: Sequence, cache_dir: Path) -> np.ndarray:
    """FVD's reference set: features of the benchmark clips' own videos (cached like a row)."""
    path = cache_dir / "real_features.jsonl"
    cached = _read_cache(path)
    feats: dict[str, list[float]] = {}
    keys: dict[str, str] = {}
    with _open_cache(path) as fh, runtime.progress_bar(len(clips), "FVD real clips") as bar:
        for c in clips:
            key = _digest({"fvd": facts["identity"]["fvd"], "frames": facts["frames"], "stamp": _file_stamp(ds.clip_file(c))})
            rec = cached.get(c.clip_id)
            if rec is not None and rec.get("key") == key:
                feats[c.clip_id] = rec["features"]
                bar.update(1)
            else:
                keys[c.clip_id] = key
                ex.submit(c.clip_id, _real_task, c)
        for out in ex.results():
            if not out.ok:
                raise RuntimeError(f"FVD features of clip {out.key}: {out.error}")
            _append(fh, {"clip_id": out.key, "key": keys[out.key], "features": out.value})
            feats[out.key] = out.value
            bar.update(1)
    return np.asarray([feats[c.clip_id] for c in clips])


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _row_summary(row: Row, results: list[ClipResult], n_clips: int, opts: Table3Options, real: np.ndarray | None) -> dict:
    s = metrics.summarize([r.emotion for r in results], [r.predicted for r in results])
    m: dict[str, float | None] = {"ea2": s["ea2"], "ea8": s["ea8"], "flicker": _mean(r.flicker for r in results),
                                  "clip_score": None, "sd_score": None, "fvd": None}
    why: dict[str, str] = {}
    if opts.clip:
        if opts.task == "t2v":
            m["clip_score"] = _mean(r.clip_score for r in results)
            why["sd_score"] = "an I2V metric (the paper reports it for I2V only)"
        else:
            m["sd_score"] = _mean(r.sd_score for r in results)
            why["clip_score"] = "a T2V metric (the paper reports it for T2V only)"
    else:
        why["clip_score" if opts.task == "t2v" else "sd_score"] = "no local CLIP folder given (--clip DIR)"
        why["sd_score" if opts.task == "t2v" else "clip_score"] = f"not a {opts.task.upper()} metric in the paper"
    if real is not None:
        gen = np.asarray([r.features for r in results if r.features is not None])
        if len(gen) >= 2 and len(real) >= 2:
            m["fvd"] = metrics.frechet_distance(gen, real)
        else:
            why["fvd"] = "fewer than 2 videos to fit a Gaussian to"
    else:
        why["fvd"] = "no local feature network given (--fvd-features DIR|FILE); never estimated"
    if m["ea2"] is None:
        why["ea2"] = why["ea8"] = "no clip got a parsable prediction"
    return {"name": row.name, "videos": str(row.videos), "clips": n_clips, "scored": s["scored"], "unparsed": s["unparsed"],
            "missing_videos": n_clips - len(results), "metrics": m, "not_measured": why, "confusion": s["confusion"],
            "per_emotion_accuracy": s["per_emotion_accuracy"]}


# ---------------------------------------------------------------------------------------------- writers

_DIGITS = {"fvd": 1, "clip_score": 4, "sd_score": 4, "flicker": 4, "ea2": 2, "ea8": 2}


def _fmt(v, col: str) -> str:
    return "–" if v is None else f"{v:.{_DIGITS[col]}f}"


def per_clip_csv(results: list[ClipResult]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "clip_id", "type", "emotion", "valence", "predicted", "predicted_valence", "ea8_hit", "ea2_hit",
                *(f"p_{e}" for e in EMOTIONS), "flicker", "clip_score", "sd_score", "frames", "answer", "video"])
    for r in results:
        pv = valence(r.predicted) if r.predicted else ""
        probs = r.probabilities or [None] * len(EMOTIONS)
        num = lambda v: "" if v is None else f"{v:.6g}"  # noqa: E731
        w.writerow([r.row, r.clip_id, r.type, r.emotion, valence(r.emotion), r.predicted or "", pv,
                    "" if r.predicted is None else int(r.predicted == r.emotion),
                    "" if r.predicted is None else int(pv == valence(r.emotion)),
                    *(num(p) for p in probs), num(r.flicker), num(r.clip_score), num(r.sd_score), r.frames, r.answer, r.video])
    return buf.getvalue()


def table_markdown(report: dict) -> str:
    task = report["task"]
    cols = COLUMNS
    lines = [f"# Table 3 ({task.upper()}), reproduced with ComfyUI-EmoVid", "",
             f"> **{NOT_COMPARABLE}**", "",
             f"Classifier: `{report['classifier']['describe']}`. Benchmark: {report['benchmark']['clips']} clips of "
             f"`{report['benchmark']['dataset']}` ({report['benchmark']['source']}).", "",
             "| source | method | " + " | ".join(TITLES[c] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for name, vals in PAPER_ROWS[task]:
        lines.append(f"| paper | {name} | " + " | ".join(_fmt(vals[c], c) for c in cols) + " |")
    for r in report["rows"]:
        lines.append(f"| ours | {r['name']} | " + " | ".join(_fmt(r["metrics"][c], c) for c in cols) + " |")
    lines += ["", "Paper numbers as printed in Table 3 (Wan2.1 before/after the EmoVid LoRA and the baselines). Our rows: "
              "clips scored / benchmark clips:"]
    for r in report["rows"]:
        extra = f", {r['unparsed']} unparsed answers (left out, never guessed)" if r["unparsed"] else ""
        extra += f", {r['missing_videos']} videos missing" if r["missing_videos"] else ""
        lines.append(f"- **{r['name']}** ({r['videos']}): {r['scored']}/{r['clips']}{extra}.")
        for col, why in r["not_measured"].items():
            lines.append(f"  - {TITLES[col]} not measured: {why}.")
    lines += ["", "Definitions (docs/evaluation.md): EA-8 = top-1 over the eight emotions, EA-2 = predicted valence equals "
              "the asked-for valence (both in %); flicker = mean |frame[t+1] − frame[t]| / 255 (1 − VBench's score); CLIP "
              "score = mean frame–prompt cosine; SD score = mean cosine of frames 1.. to the condition image; FVD = Fréchet "
              "distance of per-video features from the network named in table3.json.", ""]
    return "\n".join(lines)


def _plots(report: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    rows = report["rows"]
    written = []
    fig, axes = plt.subplots(1, len(rows), figsize=(4.6 * len(rows), 4.4), squeeze=False)
    for ax, r in zip(axes[0], rows):
        m = np.asarray(r["confusion"], dtype=float)
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(EMOTIONS)):
            for j in range(len(EMOTIONS)):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=60, fontsize=7)
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("asked for")
        ax.set_title(f"{r['name']}: EA-8 {_fmt(r['metrics']['ea8'], 'ea8')}%", fontsize=9)
    fig.tight_layout()
    with atomic_path(out / "confusion.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    written.append(out / "confusion.png")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / max(1, len(rows))
    for k, r in enumerate(rows):
        vals = [r["per_emotion_accuracy"][e] or 0.0 for e in EMOTIONS]
        ax.bar(np.arange(len(EMOTIONS)) + (k - (len(rows) - 1) / 2) * width, vals, width, label=r["name"])
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=30, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("per-emotion accuracy (EA-8 per asked-for emotion)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out / "per_emotion_accuracy.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    written.append(out / "per_emotion_accuracy.png")
    return written


# ---------------------------------------------------------------------------------------------- entry points


def _owned(out: Path):
    manifest = out / MANIFEST
    names: set[str] = set()
    if manifest.is_file():
        try:
            names = set(json.loads(manifest.read_text()).get("files", []))
        except (OSError, ValueError):
            names = set()
    return lambda p: Path(p).name in names and Path(p).parent.resolve() == out.resolve()


def check_out(out: Path, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse (before any work) to replace files in ``out`` that an earlier Table 3 run did not write."""
    from ..atomic import check_outputs

    check_outputs([out / n for n in OUTPUT_FILES], inputs=list(inputs), force=force, owned=_owned(out))


def run_table3(opts: Table3Options, rows: Sequence[Row], force: bool = False, engine: str = "local",
               workers: int | None = None, engine_options: dict | None = None) -> Table3Result:
    """Score ``rows`` on the benchmark and write the outputs into ``opts.out``; see the module doc.

    ``engine``/``workers``/``engine_options``: where the scorers run (:func:`emovid_core.executor.make_executor`;
    default: one scorer in this process)."""
    from ..atomic import write_json, write_text
    from ..dataset import load_dataset
    from ..executor import make_executor

    if not rows:
        raise ValueError("no videos to score: give --videos [NAME=]DIR (repeatable) or --generate")
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"row names repeat: {names}; name each --videos folder: --videos before=DIR --videos after=DIR")
    for r in rows:
        if not r.videos.is_dir():
            raise FileNotFoundError(f"videos folder {r.videos} (row {r.name}) does not exist")
    out = Path(opts.out)
    check_out(out, force)
    ds = load_dataset(opts.dataset, opts.metadata)
    clips = benchmark(ds, opts.task)
    if not clips:
        raise ValueError(f"{ds.root} has no benchmark clips")
    cache = out / CACHE_DIR
    counts = {"scored": 0, "reused": 0}
    results: dict[str, list[ClipResult]] = {}
    workers = workers or (None if engine != "local" else 1)
    init = (_make_scorer, (_worker_opts(opts, engine_options),))
    with make_executor(engine, workers, init=init, **_actor_options(engine, engine_options, opts.device)) as ex:
        facts = _ask(ex, "loading the classifier", _scorer_facts)
        for r in rows:
            results[r.name] = _score_row(ex, facts, opts, r, clips, cache, counts)
        real = _real_features(ex, facts, ds, clips, cache) if facts["fvd_source"] else None
    split = "the table's test split" if any(c.split == "test" for c in ds.clips) else "drawn by the paper's rule (no split column)"
    report = {
        "task": opts.task,
        "comparability": NOT_COMPARABLE,
        "classifier": facts["classifier"],
        "clip_folder": facts["clip_folder"],
        "fvd_features": ({"network": facts["fvd_source"], "feature": "pooled vision feature, mean over the classified frames"}
                         if facts["fvd_source"] else None),
        "benchmark": {"dataset": str(ds.root), "clips": len(clips), "source": split,
                      "prompt": "caption + ' The video is in the \"<emotion>\" emotion.'"},
        "paper": {name: vals for name, vals in PAPER_ROWS[opts.task]},
        "columns": list(COLUMNS),
        "rows": [_row_summary(r, results[r.name], len(clips), opts, real) for r in rows],
        "definitions": "docs/evaluation.md#metrics",
    }
    files = [write_text(out / "per_clip.csv", per_clip_csv([x for r in rows for x in results[r.name]])),
             write_json(out / "table3.json", report), write_text(out / "table3.md", table_markdown(report))]
    files += _plots(report, out)
    write_json(out / MANIFEST, {"files": list(OUTPUT_FILES)})
    return Table3Result(out, files, report["rows"], reused=counts["reused"], scored=counts["scored"])


# ---------------------------------------------------------------------------------------------- generation


@dataclass
class GenerateOptions:
    pipeline: str  # tiny-t2v | tiny-i2v | a diffusers folder
    loras: list[tuple[str, str, float]] = field(default_factory=list)  # (path, adapter name, strength)
    seed: int = 0
    steps: int | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    guidance: float | None = None
    fps: float = 16.0
    device: str = "auto"
    dtype: str = "auto"


def load_generation_pipeline(g: GenerateOptions):
    from ..wan.loading import load_pipeline

    if g.pipeline in ("tiny-t2v", "tiny-i2v"):
        return load_pipeline(g.pipeline, device=g.device, dtype=g.dtype)
    return load_pipeline("diffusers folder", folder=g.pipeline, device=g.device, dtype=g.dtype)


def _generator_facts(handle) -> dict:
    return {"kind": handle.kind, "summary": handle.summary()}


def _generate_task(handle, g: GenerateOptions, clip, image, stack: list) -> Any:
    from ..wan.generation import generate

    return generate(handle, caption=clip.caption or "", emotion=clip.emotion, image=image, lora_stack=stack, seed=g.seed,
                    steps=g.steps, frames=g.frames, width=g.width, height=g.height, guidance=g.guidance).frames


def generate_rows(g: GenerateOptions, dataset: str | Path, out: str | Path, metadata: str | None = None, *,
                  task: str | None = None, announce=None, engine: str = "local", workers: int | None = None,
                  engine_options: dict | None = None) -> tuple[str, list[Row]]:
    """Generate every benchmark clip's video into ``out/videos/before`` (no LoRA) and, with LoRAs,
    ``out/videos/after``; a video already there (from an interrupted run) is kept, so generation resumes too.
    Returns (the pipeline's task, t2v or i2v; the rows). ``task``: refuse a pipeline of the other kind.
    ``announce(text)`` gets the loaded pipeline's summary. The pipeline is loaded once per worker of ``engine``
    (default: once, here); this process writes every video."""
    from dataclasses import replace

    from ..dataset import load_dataset
    from ..executor import make_executor
    from ..video_io import write_video

    ds = load_dataset(dataset, metadata)
    clips = benchmark(ds, task or "t2v")
    path_map = (engine_options or {}).get("path_map") or ()
    wg = g
    if path_map:  # the pipeline folder and LoRA files as the workers see them
        from ..ray_engine import map_path

        wg = replace(g, pipeline=g.pipeline if g.pipeline.startswith("tiny-") else map_path(g.pipeline, path_map),
                     loras=[(map_path(p, path_map), n, w) for p, n, w in g.loras])
    rows = []
    workers = workers or (None if engine != "local" else 1)
    with make_executor(engine, workers, init=(load_generation_pipeline, (wg,)), **_actor_options(engine, engine_options, g.device)) as ex:
        facts = _ask(ex, "loading the pipeline", _generator_facts)
        kind = facts["kind"]
        if task and task != kind:
            raise ValueError(f"--task {task} but the pipeline is {kind}; drop --task or load a {task} pipeline")
        if announce:
            announce(facts["summary"])
        plans = [("before", [])] + ([("after", list(wg.loras))] if wg.loras else [])
        for name, stack in plans:
            folder = Path(out) / "videos" / name
            folder.mkdir(parents=True, exist_ok=True)
            have = index_videos(folder, [c.clip_id for c in clips])
            todo = {c.clip_id: c for c in clips if c.clip_id not in have}
            with runtime.progress_bar(len(todo), f"generate {name}") as bar:
                for c in todo.values():
                    runtime.check_interrupted()
                    image = _first_frame(ds, c) if kind == "i2v" else None
                    ex.submit(c.clip_id, _generate_task, wg, c, image, stack)
                for res in ex.results():  # each video is written as soon as it is made: a rerun resumes
                    if not res.ok:
                        raise RuntimeError(f"generating {name} video of clip {res.key}: {res.error}")
                    write_video(res.value, folder / f"{res.key}.mp4", g.fps)
                    bar.update(1)
            rows.append(Row(name, folder))
    return kind, rows
