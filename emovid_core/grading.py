"""Emotion colour grading and drift correction: move a clip's brightness, colorfulness and hue (the paper's Eqs. 1-3,
measured by :mod:`emovid_core.attributes`) toward a target, on the per-pixel layer :mod:`emovid_core.pixels`.

The transform per pixel, in OpenCV's HSV: V' = V^gV, S' = S^gS (gamma curves: 0 stays 0, 1 stays 1, nothing clips),
h' = h + shift. Targets come from an emotion and the per-emotion statistics of the user's own dataset
(``emovid dataset stats --json`` or an indexed dataset), from a reference clip or image (its measured attributes), or
typed in; the paper publishes no per-emotion numbers, so there are no built-in defaults.

With strength s, the goal is B + s·(target − B) for brightness and colorfulness, and the hue shift is
clamp(s·wrap(target − H), ±max_hue_shift). The gammas are solved by bisection on weighted V/S histograms, then the
graded clip is measured (the kernel measures its own output in the same pass) and the solve is corrected until the
measured, unrounded B and C are within :data:`LOOP_TOLERANCE` of the goal (closed loop). Skin protection blends
skin-like pixels back toward the original; the solve includes those weights, and the report says how close it came.

Modes: ``clip`` grades every frame alike (one gamma pair and one shift: no flicker by construction); ``frame`` solves
each frame toward its own goal, smooths log gamma and the shift over time (Gaussian, ``smooth_sigma`` frames) and then
moves all frames by one common factor so the pooled clip values still land on the goal. Drift correction is the
``frame`` solve with per-frame goals from the first frame, a reference frame or a reference clip's curves.

See docs/grading.md for the measured behaviour.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import attributes, pixels, runtime
from .attributes import PAPER_STRIDE, ClipAttributes

MODES = ("clip", "frame")
DEFAULT_MAX_HUE_SHIFT = 30.0  # degrees: a 170° rotation looks wrong, 30° is a sane cap (measured on the prototype)
DEFAULT_SIGMA = 6.0  # frames: Gaussian smoothing of log gamma in frame mode
CLOSE = 0.01  # the closed loop promise: measured B and C within this of the goal (protection off)
LOOP_TOLERANCE = 1e-3  # the loop stops once both are this close
HUE_TOLERANCE = 0.05  # degrees: and the hue shift has settled
MAX_PASSES = 4
MAX_GAMMA = 20.0  # gammas stay within [1/20, 20]; a goal beyond that is reported as missed
_ATTRS = ("brightness", "colorfulness", "hue")


# ------------------------------------------------------------------------------------------------ targets


@dataclass(frozen=True)
class Targets:
    """Target clip attributes (None = leave that attribute alone) and where they came from."""

    brightness: float | None = None
    colorfulness: float | None = None
    hue: float | None = None
    source: str = "typed in"

    def __post_init__(self) -> None:
        for name in ("brightness", "colorfulness"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
                raise ValueError(f"target {name}={v!r} must be in 0..1 (the paper's mean HSV {name[0].upper()})")
        if self.hue is not None and not (isinstance(self.hue, (int, float)) and math.isfinite(self.hue)):
            raise ValueError(f"target hue={self.hue!r} must be a number of degrees (0..360)")
        if self.brightness is None and self.colorfulness is None and self.hue is None:
            raise ValueError("no target: give a brightness, colorfulness or hue (or an emotion with statistics, or a reference)")

    def with_typed(self, brightness=None, colorfulness=None, hue=None) -> Targets:
        typed = {k: v for k, v in (("brightness", brightness), ("colorfulness", colorfulness), ("hue", hue)) if v is not None}
        if not typed:
            return self
        return Targets(**{**{a: getattr(self, a) for a in _ATTRS}, **typed},
                       source=f"{self.source}; typed {', '.join(typed)}")


def _load_stats(stats: Any) -> Mapping:
    if isinstance(stats, Mapping):
        return stats
    if isinstance(stats, (str, os.PathLike)):
        text = str(stats)
        if text.lstrip().startswith("{"):
            return json.loads(text)
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"statistics file {text!r} not found; make one with `emovid dataset stats ROOT --json STATS.json`")
        return json.loads(path.read_text())
    raise ValueError(f"stats must be the JSON of `emovid dataset stats --json` (a dict, JSON text or a path), got {type(stats).__name__}")


def targets_from_stats(stats: Any, emotion: str) -> Targets:
    """The per-emotion means of ``emovid dataset stats --json`` (``attributes.<attr>.by_emotion.<emotion>.mean``;
    circular mean for hue) as targets. ``stats``: that dict, its JSON text or the path of the file."""
    from .emotions import get_emotion

    name = get_emotion(emotion).name
    data = _load_stats(stats)
    attrs = data.get("attributes") if isinstance(data, Mapping) else None
    if not isinstance(attrs, Mapping):
        raise ValueError("stats has no 'attributes' section; pass the JSON of `emovid dataset stats ROOT --json STATS.json` "
                         "(or the json output of EmoVid Dataset Stats)")
    values, counts = {}, []
    for a in _ATTRS:
        entry = ((attrs.get(a) or {}).get("by_emotion") or {}).get(name) or {}
        if entry.get("mean") is not None:
            values[a] = float(entry["mean"])
            counts.append(int(entry.get("n") or 0))
    if not values:
        raise ValueError(f"the statistics have no clip labelled {name!r} with measured attributes; index a dataset with "
                         f"{name} clips (`emovid dataset index ROOT`) or type the targets in (--brightness/--colorfulness/--hue)")
    return Targets(**values, source=f"{name} in the dataset statistics ({max(counts)} clips)")


def targets_from_dataset(dataset: Any, emotion: str) -> Targets:
    """Per-emotion means computed from a loaded dataset (EmoVid Dataset's value) or a dataset root folder."""
    from .dataset.stats import compute_stats
    from .dataset.table import load_dataset

    ds = load_dataset(dataset) if isinstance(dataset, (str, os.PathLike)) else dataset
    return targets_from_stats(compute_stats(ds.clips), emotion)


def targets_from_reference(images, stride: int = PAPER_STRIDE) -> Targets:
    """A reference clip's (or image's) own measured attributes (unrounded) as targets."""
    c = attributes.clip_attributes(images, stride)
    return Targets(c.brightness_raw, c.colorfulness_raw, c.hue_raw,
                   source=f"reference (B={c.brightness_raw:.3f} C={c.colorfulness_raw:.3f} H={c.hue_raw:.1f})")


def resolve_targets(*, emotion: str | None = None, stats: Any = None, dataset: Any = None, reference=None,
                    brightness: float | None = None, colorfulness: float | None = None, hue: float | None = None,
                    stride: int = PAPER_STRIDE) -> Targets:
    """Targets from exactly the sources given: a reference clip, or an emotion with stats or a dataset; typed values
    replace single attributes of either (or stand alone)."""
    if reference is not None and (stats is not None or dataset is not None):
        raise ValueError("give a reference clip or per-emotion statistics, not both")
    if reference is not None:
        base = targets_from_reference(reference, stride)
    elif stats is not None or dataset is not None:
        if not emotion:
            raise ValueError("per-emotion statistics need an emotion to pick (e.g. --emotion fear)")
        base = targets_from_stats(stats, emotion) if stats is not None else targets_from_dataset(dataset, emotion)
    elif brightness is None and colorfulness is None and hue is None:
        if emotion:
            raise ValueError(
                f"emotion {emotion!r} needs the per-emotion statistics of your dataset: pass --stats STATS.json (from "
                "`emovid dataset stats ROOT --json STATS.json`, or connect EmoVid Dataset Stats' json), or type targets "
                "in (--brightness/--colorfulness/--hue); the paper publishes no per-emotion values to default to"
            )
        raise ValueError("no target given: pass an emotion with --stats, a --reference clip, or --brightness/--colorfulness/--hue")
    else:
        return Targets(brightness, colorfulness, hue)
    return base.with_typed(brightness, colorfulness, hue)


# ------------------------------------------------------------------------------------------------ the clip on its backend


class _Frames:
    """A clip's frames on their backend: float32 numpy ``[N, H, W, C]`` (numba / OpenCV) or a torch tensor off the
    CPU (torch ops). Measures, builds histograms and skin weights, grades."""

    def __init__(self, images, workers: int | None = None) -> None:
        self.torch = pixels.is_device_tensor(images)
        if self.torch:
            t = images.detach()
            self.x = t if t.dim() == 4 else t[None]
        else:
            arr = attributes._as_numpy_batch(images)
            if arr.dtype == np.uint8:
                arr = np.multiply(arr, np.float32(1.0 / 255.0), dtype=np.float32)
            elif arr.dtype != np.float32 or not arr.flags.c_contiguous:
                attributes.frame_stats(arr, hasler=False, progress=False)  # the range check on the original values
                arr = np.ascontiguousarray(arr, dtype=np.float32)
            self.x = arr
        self.n, self.h, self.w, self.c = (int(s) for s in self.x.shape)
        self.backend = "torch" if self.torch else pixels.backend()
        self.workers = workers or max(1, min(8, attributes._available_cpus()))

    def stats(self) -> attributes.FrameStats:
        return attributes.frame_stats(self.x, hasler=False, progress=False)

    def _map(self, fn, items) -> list:
        items = list(items)
        if self.workers == 1 or len(items) < 2:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="emovid-grade") as pool:
            return list(pool.map(fn, items))

    def grade_weights(self, protect: float):
        """1 - protect·skin(pixel) per pixel (1 = fully graded), float32 ``[N, H, W]`` (a tensor on its device)."""
        if self.torch:
            from .pixels import _torch

            return 1.0 - protect * _torch.skin(self.x, pixels.skin_weights)
        w = np.empty((self.n, self.h, self.w), np.float32)

        def one(i: int) -> None:
            hsv = pixels.hsv_planes(self.x[i])
            w[i] = 1.0 - protect * pixels.skin_weights(hsv[..., 0], hsv[..., 1], hsv[..., 2])

        self._map(one, range(self.n))
        return w

    def histograms(self, idx: Sequence[int], weights) -> tuple[np.ndarray, np.ndarray]:
        idx = list(idx)
        if self.torch:
            from .pixels import _torch

            return _torch.histograms(self.x[idx], None if weights is None else weights[idx], pixels.NBINS)
        rows = self._map(lambda i: pixels.histograms(self.x[i], None if weights is None else weights[i]), idx)
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def new_output(self):
        if self.torch:
            import torch

            return torch.empty((self.n, self.h, self.w, 3), dtype=torch.float32, device=self.x.device)
        return np.empty((self.n, self.h, self.w, 3), np.float32)

    def grade(self, gv: np.ndarray, gs: np.ndarray, shift: np.ndarray, weights, out, bar) -> np.ndarray:
        """Grade every frame into ``out``; float64 ``[N, 4]`` sums of the graded frames (ΣV, ΣS, Σsin, Σcos)."""
        runtime.check_interrupted()
        if self.torch:
            from .pixels import _torch

            sums = _torch.grade(self.x, gv, gs, shift, weights, out)
            if bar is not None:
                bar.update(self.n)
            return sums

        def one(i: int) -> np.ndarray:
            runtime.check_interrupted()
            return pixels.grade_frame(self.x[i], float(gv[i]), float(gs[i]), float(shift[i]),
                                      None if weights is None else weights[i], out[i], row_pool)

        sums = np.zeros((self.n, 4))
        with ThreadPoolExecutor(self.workers, thread_name_prefix="emovid-grade") as pool:
            # Many frames: one frame per worker. Few frames (an image): each frame's rows over the workers.
            row_pool = pool if self.n < self.workers else None
            if row_pool is not None:
                for i in range(self.n):
                    sums[i] = one(i)
                    if bar is not None:
                        bar.update(1)
            else:
                for i, s in enumerate(pool.map(one, range(self.n))):
                    sums[i] = s
                    if bar is not None:
                        bar.update(1)
        return sums

    def finish(self, out, images):
        """The graded IMAGE in the input's container (alpha carried over unchanged)."""
        if self.torch:
            import torch

            return torch.cat([out, self.x[..., 3:].float()], -1) if self.c == 4 else out
        import torch

        if self.c == 4:
            out = np.concatenate([out, self.x[..., 3:]], -1)
        return torch.from_numpy(out)


# ------------------------------------------------------------------------------------------------ solving gammas


def _bins(hist: np.ndarray, const: np.ndarray, which: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights [m, nb], log bin means [m, nb], protected constant [m]) of V (which=0) or S (which=1)."""
    w, wx = hist[:, 2 * which], hist[:, 2 * which + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(w > 0, wx / np.where(w > 0, w, 1.0), 0.0)
        logm = np.where(mean > 0, np.log(np.maximum(mean, 1e-300)), -np.inf)
    return np.where(mean > 0, w, 0.0), logm, const[:, which]


def _model(w: np.ndarray, logm: np.ndarray, c: np.ndarray, logg: np.ndarray) -> np.ndarray:
    """Σ_b w_b · mean_b^g + c per row: the sum of the graded channel for gamma g = exp(logg)."""
    g = np.exp(logg)[:, None]
    with np.errstate(invalid="ignore"):
        p = np.where(np.isfinite(logm), np.exp(g * np.where(np.isfinite(logm), logm, 0.0)), 0.0)
    return (w * p).sum(1) + c


def _bisect(f, want: np.ndarray, lo: float, hi: float, iters: int = 50) -> np.ndarray:
    """Per row, the x in [lo, hi] where the decreasing f(x) meets ``want`` (clamped to the ends)."""
    a = np.full(want.shape, lo)
    b = np.full(want.shape, hi)
    for _ in range(iters):
        m = 0.5 * (a + b)
        above = f(m) > want
        a = np.where(above, m, a)
        b = np.where(above, b, m)
    return 0.5 * (a + b)


_LOG_MAX = math.log(MAX_GAMMA)


def _solve_log_gamma(hist, const, which: int, want_sum: np.ndarray) -> np.ndarray:
    """log gamma per row so the graded channel sums to ``want_sum``."""
    w, logm, c = _bins(hist, const, which)
    return _bisect(lambda lg: _model(w, logm, c, lg), want_sum, -_LOG_MAX, _LOG_MAX)


def _solve_offset(hist, const, which: int, logg: np.ndarray, want_total: float) -> float:
    """One common offset d for per-frame log gammas so the pooled graded sum over the rows is ``want_total``."""
    w, logm, c = _bins(hist, const, which)

    def total(d: np.ndarray) -> np.ndarray:
        return np.array([_model(w, logm, c, np.clip(logg + x, -_LOG_MAX, _LOG_MAX)).sum() for x in d])

    return float(_bisect(total, np.array([want_total]), -2 * _LOG_MAX, 2 * _LOG_MAX, iters=40)[0])


def smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over frames (edges held), the temporal smoothing of frame mode."""
    v = np.asarray(values, np.float64)
    if sigma <= 0 or v.size < 2:
        return v.copy()
    r = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(v, r, mode="edge"), k, mode="valid")


def _wrap(deg):
    return (np.asarray(deg, np.float64) + 180.0) % 360.0 - 180.0


# ------------------------------------------------------------------------------------------------ report


@dataclass
class GradeReport:
    """What a grade or drift correction did: before / after / goal per attribute, gammas, hue shifts, how close."""

    kind: str  # "grade" or "drift correction"
    mode: str
    strength: float
    backend: str
    before: ClipAttributes
    after: ClipAttributes
    goal: dict  # strength-interpolated clip values aimed at (None: attribute left alone)
    targets: dict  # full-strength targets
    source: str
    gamma_v: np.ndarray
    gamma_s: np.ndarray
    hue_shift: np.ndarray
    max_hue_shift: float
    passes: int
    frame_indices: np.ndarray
    before_curves: dict
    after_curves: dict
    fps: float = 16.0
    protected: float | None = None  # mean protection weight over the pixels (skin protection on)
    smooth_sigma: float = 0.0
    reference_curves: dict | None = None
    notes: list[str] = field(default_factory=list)

    def miss(self, name: str) -> float | None:
        """after − goal for brightness / colorfulness (unrounded), wrapped degrees for hue."""
        goal = self.goal.get(name)
        if goal is None:
            return None
        got = getattr(self.after, f"{name}_raw")
        return float(_wrap(got - goal)) if name == "hue" else got - goal

    @property
    def close_enough(self) -> bool:
        """Measured B and C within :data:`CLOSE` of the goal (attributes left alone count as met)."""
        return all(abs(m) <= CLOSE for m in (self.miss("brightness"), self.miss("colorfulness")) if m is not None)

    @property
    def grade_flicker(self) -> float:
        """Largest frame-to-frame change of log gamma (V or S): 0 for one grade per clip."""
        if len(self.gamma_v) < 2:
            return 0.0
        return float(max(np.abs(np.diff(np.log(self.gamma_v))).max(), np.abs(np.diff(np.log(self.gamma_s))).max()))

    def lines(self) -> list[str]:
        b, a = self.before, self.after
        out = [f"EmoVid {self.kind}: {self.mode} mode, strength {self.strength:g}, {self.backend} pixels; targets: {self.source}"]
        for name in ("brightness", "colorfulness"):
            goal, target = self.goal.get(name), self.targets.get(name)
            was, got = getattr(b, f"{name}_raw"), getattr(a, f"{name}_raw")
            if goal is None:
                out.append(f"{name:<13} before {was:.4f}  after {got:.4f}  (no target: left alone)")
            else:
                tgt = "" if target is None else f"  (target {target:.4f})"
                out.append(f"{name:<13} before {was:.4f}  after {got:.4f}  goal {goal:.4f}{tgt}  miss {self.miss(name):+.4f}")
        if self.goal.get("hue") is None:
            out.append(f"{'hue':<13} before {b.hue_raw:.1f}°  after {a.hue_raw:.1f}°  (no target: no shift)")
        else:
            out.append(f"{'hue':<13} before {b.hue_raw:.1f}°  after {a.hue_raw:.1f}°  goal {self.goal['hue']:.1f}°  "
                       f"(target {self.targets['hue']:.1f}°, cap ±{self.max_hue_shift:g}°; hue concentration "
                       f"{b.hue_concentration:.2f} -> {a.hue_concentration:.2f}, grey pixels count as hue 0)")
        out.append("gamma V " + _range(self.gamma_v) + ", gamma S " + _range(self.gamma_s) + ", hue shift "
                   + _range(self.hue_shift, "°", "+.1f"))
        if self.mode == "clip":
            out.append("flicker of the grade: 0 (one grade for the whole clip)")
        else:
            out.append(f"flicker of the grade: max frame-to-frame change of log gamma {self.grade_flicker:.4f} "
                       f"(smoothing sigma {self.smooth_sigma:g} frames)")
        if self.protected is not None:
            out.append(f"skin protection: {self.protected:.1%} of the pixel weight kept from grading; gammas solved with "
                       "the weights included")
        ok = "yes" if self.close_enough else "NO"
        out.append(f"closed loop: {self.passes} pass(es); measured B and C within {CLOSE:g} of the goal: {ok}")
        out.extend(self.notes)
        out.append(f"paper values before B={b.brightness:.1f} C={b.colorfulness:.1f} H={b.hue}, "
                   f"after B={a.brightness:.1f} C={a.colorfulness:.1f} H={a.hue}")
        return out

    def to_dict(self) -> dict:
        return attributes._finite({
            "kind": self.kind, "mode": self.mode, "strength": self.strength, "backend": self.backend,
            "source": self.source, "targets": self.targets, "goal": self.goal,
            "before": self.before.to_dict(), "after": self.after.to_dict(),
            "miss": {a: self.miss(a) for a in _ATTRS}, "close_enough": self.close_enough,
            "gamma_v": [float(g) for g in self.gamma_v], "gamma_s": [float(g) for g in self.gamma_s],
            "hue_shift": [float(h) for h in self.hue_shift], "max_hue_shift": self.max_hue_shift,
            "grade_flicker": self.grade_flicker, "passes": self.passes, "protected": self.protected,
            "curves": {"frame": [int(i) for i in self.frame_indices],
                       "before": {k: [round(float(v), 6) for v in c] for k, c in self.before_curves.items()},
                       "after": {k: [round(float(v), 6) for v in c] for k, c in self.after_curves.items()}},
        })


def _range(values: np.ndarray, unit: str = "", fmt: str = ".3f") -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:{fmt}}{unit}" if abs(hi - lo) < 1e-9 else f"{lo:{fmt}}..{hi:{fmt}}{unit}"


def plot_rgb(report: GradeReport, width: int = 1000, height: int = 420) -> np.ndarray:
    """Before (top) and after (bottom) curves as one RGB uint8 image, each drawn by :func:`attributes.plot_rgb`."""
    rows = []
    for title, clip, curves in (("before", report.before, report.before_curves), ("after", report.after, report.after_curves)):
        goal = ", ".join(f"{k[0].upper()} {v:.3f}" if k != "hue" else f"H {v:.0f}°" for k, v in report.goal.items() if v is not None)
        rep = attributes.AttributeReport(
            clip=clip, frame_indices=report.frame_indices, curves=curves,
            summary=attributes.temporal_summary(curves, report.frame_indices, report.fps), fps=report.fps,
            source=f"{title} {report.kind} ({report.mode} mode, strength {report.strength:g}); goal {goal or 'per-frame reference'}",
        )
        rows.append(attributes.plot_rgb(rep, width, height))
    return np.concatenate(rows, 0)


# ------------------------------------------------------------------------------------------------ engine


def _check_settings(strength, max_hue_shift, mode, smooth_sigma, protect) -> None:
    if not (isinstance(strength, (int, float)) and 0.0 <= float(strength) <= 1.0):
        raise ValueError(f"strength={strength!r} must be in 0..1 (0 = unchanged, 1 = all the way to the target)")
    if not (isinstance(max_hue_shift, (int, float)) and 0.0 <= float(max_hue_shift) <= 180.0):
        raise ValueError(f"max_hue_shift={max_hue_shift!r} must be 0..180 degrees (default {DEFAULT_MAX_HUE_SHIFT:g})")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} must be one of {', '.join(MODES)} (clip: one grade, flicker-free; frame: per frame, smoothed)")
    if not (isinstance(smooth_sigma, (int, float)) and 0.0 <= float(smooth_sigma) <= 1000.0):
        raise ValueError(f"smooth_sigma={smooth_sigma!r} must be >= 0 frames (0 = no smoothing; default {DEFAULT_SIGMA:g})")
    if not (isinstance(protect, (int, float)) and 0.0 <= float(protect) <= 1.0):
        raise ValueError(f"protect_skin={protect!r} must be in 0..1 (how much skin-like pixels are kept from grading)")


def _clip_values(sums: np.ndarray, npx: np.ndarray, sel: np.ndarray) -> tuple[float, float, float]:
    n = float(npx[sel].sum())
    return (float(sums[sel, 0].sum() / n), float(sums[sel, 1].sum() / n),
            attributes.circular_degrees(sums[sel, 2].sum(), sums[sel, 3].sum()))


def _after_stats(before: attributes.FrameStats, sums: np.ndarray) -> attributes.FrameStats:
    return attributes.FrameStats(indices=before.indices, pixels=before.pixels, sizes=before.sizes,
                                 sum_v=sums[:, 0].copy(), sum_s=sums[:, 1].copy(), sum_sin=sums[:, 2].copy(),
                                 sum_cos=sums[:, 3].copy())


def _run(frames: _Frames, before: attributes.FrameStats, *, goal_clip: dict, goal_frames: dict | None, shift: np.ndarray,
         mode: str, sigma: float, protect: float, stride: int, progress: bool, cap: float = DEFAULT_MAX_HUE_SHIFT,
         hue_goal: float | None = None, hue_frames: np.ndarray | None = None):
    """Solve, grade, measure, correct. ``goal_clip``: pooled goals (B/C, None = no target); ``goal_frames``: per-frame
    goal arrays (frame mode without a pooled goal: drift). With ``hue_goal`` (pooled) or ``hue_frames`` (per frame)
    the hue shift is corrected in the same loop too, within ±``cap``: grey pixels keep hue 0, so the measured mean
    moves less than the shift. Drift correction asks for that; the emotion grade applies the shift as defined
    (s·wrap(target − H), capped) and reports the measured hue, so it usually needs one pass.
    Returns (out, gv, gs, after sums, shift, passes, protected)."""
    shift = np.asarray(shift, np.float64).copy()
    n = frames.n
    npx = before.pixels.astype(np.float64)
    sel = np.flatnonzero(before.indices % stride == 0)
    weights = frames.grade_weights(protect) if protect > 0 else None
    protected = None
    if weights is not None:
        protected = float(1.0 - (weights.mean().item() if frames.torch else weights.mean()))
    hist_idx = sel if mode == "clip" else np.arange(n)
    hist, const = frames.histograms(hist_idx, weights)
    solve_goal = {k: v for k, v in goal_clip.items() if v is not None}
    solve_frames = {k: v.copy() for k, v in (goal_frames or {}).items() if v is not None}
    logs = {"brightness": np.zeros(n), "colorfulness": np.zeros(n)}
    out = frames.new_output()
    passes = 0
    with (runtime.progress_bar(n * MAX_PASSES, "grading") if progress else contextlib.nullcontext()) as bar:
        for attempt in range(1, MAX_PASSES + 1):
            passes = attempt
            for which, name in enumerate(("brightness", "colorfulness")):
                if mode == "clip":
                    if name in solve_goal:
                        h = hist.sum(0, keepdims=True)
                        c = const.sum(0, keepdims=True)
                        lg = _solve_log_gamma(h, c, which, np.array([solve_goal[name] * npx[sel].sum()]))[0]
                        logs[name][:] = lg
                elif name in solve_frames:
                    lg = _solve_log_gamma(hist, const, which, solve_frames[name] * npx)
                    lg = smooth(lg, sigma)
                    if name in solve_goal:  # pooled goal: one common factor on top keeps the smooth shape
                        lg = np.clip(lg + _solve_offset(hist[sel], const[sel], which, lg[sel], solve_goal[name] * npx[sel].sum()),
                                     -_LOG_MAX, _LOG_MAX)
                    logs[name] = np.clip(lg, -_LOG_MAX, _LOG_MAX)
            gv, gs = np.exp(logs["brightness"]), np.exp(logs["colorfulness"])
            sums = frames.grade(gv, gs, shift, weights, out, bar)
            b_now, c_now, _ = _clip_values(sums, npx, sel)
            errs = []
            for name, now, col in (("brightness", b_now, 0), ("colorfulness", c_now, 1)):
                if name in solve_goal:
                    err = now - goal_clip[name]
                    errs.append(abs(err))
                    solve_goal[name] -= err
                elif name in solve_frames:
                    err_f = sums[:, col] / npx - goal_frames[name]
                    errs.append(float(np.abs(err_f).max()))
                    solve_frames[name] -= err_f
            hue_open = False
            if hue_frames is not None or hue_goal is not None:
                if hue_frames is not None:
                    err_h = _wrap(np.degrees(np.arctan2(sums[:, 2], sums[:, 3])) - hue_frames)
                else:
                    err_h = np.full(n, float(_wrap(_clip_values(sums, npx, sel)[2] - hue_goal)))
                new = np.clip(shift - err_h, -cap, cap)
                hue_open = bool(np.any(np.abs(new - shift) > HUE_TOLERANCE))
                shift = new
            if (not errs or max(errs) <= LOOP_TOLERANCE) and not hue_open:
                break
        if bar is not None:
            bar.update(n * (MAX_PASSES - passes))  # passes not needed: the bar ends full
    return out, gv, gs, sums, shift, passes, protected


def _report_common(frames, before, after_stats, stride, fps):
    b = attributes.clip_attributes(before, stride)
    a = attributes.clip_attributes(after_stats, stride)
    return b, a, attributes.curves(before), attributes.curves(after_stats)


def grade(images, targets: Targets, *, strength: float = 1.0, max_hue_shift: float = DEFAULT_MAX_HUE_SHIFT,
          protect_skin: float = 0.0, mode: str = "clip", smooth_sigma: float = DEFAULT_SIGMA,
          stride: int = PAPER_STRIDE, fps: float = 16.0, progress: bool = True):
    """Grade ``images`` (a ComfyUI IMAGE or ``[N, H, W, 3|4]`` array) toward ``targets``; returns (IMAGE, GradeReport).

    ``strength`` 0..1 (0 returns the frames unchanged), ``max_hue_shift`` degrees, ``protect_skin`` 0..1 (how much
    skin-like pixels are held back), ``mode`` ``clip`` (one grade) or ``frame`` (per frame, log gamma smoothed with
    Gaussian ``smooth_sigma`` frames, pooled goal kept). Clip values are pooled over frames 0, ``stride``, ... as the
    paper does."""
    _check_settings(strength, max_hue_shift, mode, smooth_sigma, protect_skin)
    stride = attributes._check_stride(stride)
    fps = attributes._check_fps(fps)
    frames = _Frames(images)
    before = frames.stats()
    b0 = attributes.clip_attributes(before, stride)
    s = float(strength)
    goal = {
        "brightness": None if targets.brightness is None else b0.brightness_raw + s * (targets.brightness - b0.brightness_raw),
        "colorfulness": None if targets.colorfulness is None else b0.colorfulness_raw + s * (targets.colorfulness - b0.colorfulness_raw),
    }
    n = frames.n
    if targets.hue is None:
        shift = np.zeros(n)
        goal["hue"] = None
    elif mode == "clip":
        d = float(np.clip(s * _wrap(targets.hue - b0.hue_raw), -max_hue_shift, max_hue_shift))
        shift = np.full(n, d)
        goal["hue"] = (b0.hue_raw + d) % 360.0
    else:
        per = attributes.curves(before)["hue"]
        shift = smooth(np.clip(s * _wrap(targets.hue - per), -max_hue_shift, max_hue_shift), smooth_sigma)
        goal["hue"] = (b0.hue_raw + float(np.clip(s * _wrap(targets.hue - b0.hue_raw), -max_hue_shift, max_hue_shift))) % 360.0
    tdict = {"brightness": targets.brightness, "colorfulness": targets.colorfulness, "hue": targets.hue}
    if s == 0.0:
        out_img, gv, gs, after, passes, protected = _identity(images, frames), np.ones(n), np.ones(n), before, 0, None
    else:
        goal_frames = None
        if mode == "frame":
            cur = attributes.curves(before)
            goal_frames = {k: (None if goal[k] is None else cur[k] + s * (tdict[k] - cur[k])) for k in ("brightness", "colorfulness")}
        out, gv, gs, sums, shift, passes, protected = _run(
            frames, before, goal_clip={k: goal[k] for k in ("brightness", "colorfulness")}, goal_frames=goal_frames,
            shift=shift, mode=mode, sigma=smooth_sigma, protect=protect_skin, stride=stride, progress=progress,
            cap=float(max_hue_shift))
        after = _after_stats(before, sums)
        out_img = frames.finish(out, images)
    b, a, bc, ac = _report_common(frames, before, after, stride, fps)
    report = GradeReport(kind="grade", mode=mode, strength=s, backend=frames.backend, before=b, after=a, goal=goal,
                         targets=tdict, source=targets.source, gamma_v=gv, gamma_s=gs, hue_shift=shift,
                         max_hue_shift=float(max_hue_shift), passes=passes, frame_indices=before.indices,
                         before_curves=bc, after_curves=ac, fps=fps, protected=protected,
                         smooth_sigma=float(smooth_sigma) if mode == "frame" else 0.0)
    return out_img, report


def _identity(images, frames: _Frames):
    """Strength 0: the input frames themselves (a copy), no HSV round trip."""
    if frames.torch:
        return images.detach().clone().float()
    import torch

    return torch.from_numpy(frames.x.copy())


def _reference_curves(reference, before: attributes.FrameStats, n: int) -> tuple[dict, str]:
    """Per-frame B/C/H the clip should follow: a frame index of the clip itself, or a reference clip's curves
    resampled to this clip's length."""
    cur = attributes.curves(before)
    if reference is None or reference == "first":
        reference = 0
    if isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        i = int(reference)
        if not 0 <= i < n:
            raise ValueError(f"reference frame {i} is outside the clip's frames 0..{n - 1}")
        return {k: np.full(n, cur[k][i]) for k in _ATTRS}, f"frame {i} of the clip"
    ref = attributes.curves(attributes.frame_stats(reference, hasler=False, progress=False))
    m = len(ref["brightness"])
    pos = np.linspace(0.0, m - 1.0, n) if n > 1 else np.zeros(1)
    out = {k: np.interp(pos, np.arange(m), ref[k]) for k in ("brightness", "colorfulness")}
    unwrapped = np.degrees(np.unwrap(np.radians(ref["hue"])))
    out["hue"] = np.interp(pos, np.arange(m), unwrapped) % 360.0
    return out, f"reference clip ({m} frames{', resampled to ' + str(n) if m != n else ''})"


def correct_drift(images, reference: Any = "first", *, strength: float = 1.0, hue: bool = True,
                  max_hue_shift: float = DEFAULT_MAX_HUE_SHIFT, smooth_sigma: float = 0.0, protect_skin: float = 0.0,
                  stride: int = PAPER_STRIDE, fps: float = 16.0, progress: bool = True):
    """Keep each frame's B/C/H on a reference: ``"first"`` (frame 0), a frame index, or a reference clip (its
    per-frame curves, resampled to this clip's length). Returns (IMAGE, GradeReport)."""
    _check_settings(strength, max_hue_shift, "frame", smooth_sigma, protect_skin)
    stride = attributes._check_stride(stride)
    fps = attributes._check_fps(fps)
    frames = _Frames(images)
    before = frames.stats()
    ref, source = _reference_curves(reference, before, frames.n)
    cur = attributes.curves(before)
    s = float(strength)
    goal_frames = {k: cur[k] + s * (ref[k] - cur[k]) for k in ("brightness", "colorfulness")}
    shift = (np.clip(s * _wrap(ref["hue"] - cur["hue"]), -max_hue_shift, max_hue_shift) if hue else np.zeros(frames.n))
    shift = smooth(shift, smooth_sigma)
    sel = np.flatnonzero(before.indices % stride == 0)
    npx = before.pixels.astype(np.float64)
    goal = {k: float((goal_frames[k][sel] * npx[sel]).sum() / npx[sel].sum()) for k in goal_frames}
    rad = np.radians(ref["hue"][sel])
    goal["hue"] = attributes.circular_degrees(np.sin(rad).sum(), np.cos(rad).sum()) if hue else None
    if s == 0.0:
        out_img, gv, gs, after, passes, protected = _identity(images, frames), np.ones(frames.n), np.ones(frames.n), before, 0, None
    else:
        out, gv, gs, sums, shift, passes, protected = _run(
            frames, before, goal_clip={}, goal_frames=goal_frames, shift=shift, mode="frame", sigma=smooth_sigma,
            protect=protect_skin, stride=stride, progress=progress, cap=float(max_hue_shift),
            hue_frames=(cur["hue"] + _wrap(ref["hue"] - cur["hue"]) * s) % 360.0 if hue and smooth_sigma == 0 else None)
        after = _after_stats(before, sums)
        out_img = frames.finish(out, images)
    b, a, bc, ac = _report_common(frames, before, after, stride, fps)
    report = GradeReport(kind="drift correction", mode="frame", strength=s, backend=frames.backend, before=b, after=a,
                         goal=goal, targets={"brightness": None, "colorfulness": None, "hue": goal["hue"]}, source=source,
                         gamma_v=gv, gamma_s=gs, hue_shift=shift, max_hue_shift=float(max_hue_shift), passes=passes,
                         frame_indices=before.indices, before_curves=bc, after_curves=ac, fps=fps, protected=protected,
                         smooth_sigma=float(smooth_sigma), reference_curves=ref)
    spread = {k: (float(np.std(bc[k])), float(np.std(ac[k]))) for k in ("brightness", "colorfulness")}
    report.notes.append("per-frame spread around the reference (std of the curve): " + ", ".join(
        f"{k} {b_:.4f} -> {a_:.4f}" for k, (b_, a_) in spread.items()))
    worst = {k: float(np.abs(ac[k] - ref[k]).max()) for k in ("brightness", "colorfulness")}
    report.notes.append("largest per-frame distance from the reference after: " + ", ".join(f"{k} {v:.4f}" for k, v in worst.items()))
    return out_img, report


# ------------------------------------------------------------------------------------------------ node / CLI entry


def _typed(value):
    """A typed-in target from a node widget: negative (the widgets' default -1) means not given."""
    return None if value is None or float(value) < 0 else float(value)


def grade_inputs(images, *, emotion: str | None = None, stats: Any = None, dataset: Any = None, reference=None,
                 brightness=None, colorfulness=None, hue=None, **settings):
    """:func:`grade` with targets from the sources a node or the CLI offers (:func:`resolve_targets`; emotion
    ``"none"`` and negative typed values mean not given, an empty stats text means none)."""
    emotion = None if not emotion or emotion == "none" else emotion
    stats = None if isinstance(stats, str) and not stats.strip() else stats
    targets = resolve_targets(emotion=emotion, stats=stats, dataset=dataset, reference=reference,
                              brightness=_typed(brightness), colorfulness=_typed(colorfulness), hue=_typed(hue),
                              stride=settings.get("stride", PAPER_STRIDE))
    return grade(images, targets, **settings)


def drift_inputs(images, *, reference_frame: int = 0, reference=None, **settings):
    """:func:`correct_drift` with the reference a node offers: a reference clip when connected, else a frame index."""
    return correct_drift(images, reference if reference is not None else int(reference_frame), **settings)


def plot_image(report: GradeReport):
    """:func:`plot_rgb` as a one-image ComfyUI IMAGE batch."""
    from .video_io import frames_to_image

    return frames_to_image(plot_rgb(report)[None])


def node_outputs(out, report: GradeReport) -> dict:
    """What the grading nodes return: the frames, the report's lines as text and the plot, the text also in the UI."""
    text = "\n".join(report.lines())
    return {"ui": {"text": [text]}, "result": (out, text, plot_image(report))}
