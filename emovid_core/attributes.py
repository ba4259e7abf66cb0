"""Frame attributes of a clip: the EmoVid paper's brightness, colorfulness and hue (Eqs. 1–3), per-frame curves,
their temporal summary, a plot and a JSON report.

Definitions (EmoVid, AAAI-26, §"visual attributes"):

- Colour space: HSV computed by OpenCV's **float32** ``COLOR_RGB2HSV`` on RGB in [0, 1], which gives
  H in [0, 360) degrees and S, V in [0, 1]. ComfyUI IMAGE tensors are float32 already, so this path converts
  exactly the values the graph holds; the uint8 path would first quantise the input to 8 bits and then H to
  2° steps (H/2 stored in a byte), which is coarser than the 1° the paper reports. OpenCV divides by
  ``V + FLT_EPSILON``, so a fully saturated pixel has S = 0.9999999 rather than 1.0, and achromatic pixels
  (R = G = B) get hue 0.
- Frames: indices 0, stride, 2·stride, … (stride 20 in the paper). Pixels of all sampled frames are pooled:
  N is the total pixel count, so a larger frame weighs more (equal to the mean of frame means only when all
  frames have the same size).
- B = round(ΣV / N, 1), C = round(ΣS / N, 1).
- φ = atan2(Σ sin h, Σ cos h) in degrees (unweighted circular mean; achromatic pixels count with h = 0, as in
  the paper), H = round((φ + 360) mod 360) mod 360, so a value that rounds to 360 wraps to 0.
- Rounding is Python's ``round`` (round-half-to-even on the exact binary value), the behaviour of the Python /
  NumPy code the paper most likely used. Ties are rare: 0.25 → 0.2, 0.75 → 0.8, 0.5° → 0, 1.5° → 2. The unrounded
  values are always returned alongside.
- Alpha: a 4th channel is validated (must be in [0, 1]) and otherwise **ignored**, i.e. the RGB values under
  transparent pixels count like any other. That is what a clip looks like once encoded to mp4, which drops alpha.

Speed: the per-frame sums come from the per-pixel layer :mod:`emovid_core.pixels` (the fused numba kernel when the
``fast`` extra is installed, else OpenCV kernels over tiles of rows that stay in cache; torch ops for tensors on a
GPU), with frames spread over one thread per available core. Memory is bounded by one tile or row buffer per
thread, whatever the clip length; see docs/attributes.md#speed and benchmarks/bench_attributes.py.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np

from . import pixels, runtime
from .atomic import write_bytes
from .frame_check import check_frame

PAPER_STRIDE = 20
CONVERSION = "OpenCV float32 COLOR_RGB2HSV on RGB in [0,1] (H in [0,360) deg, S and V in [0,1])"
ROUNDING = "Python round(): B, C to 1 decimal, H to an integer degree; half-to-even on exact binary ties; 360 wraps to 0"
ALPHA = "ignored (validated to lie in [0,1]; RGB under transparent pixels counts like any other pixel)"
HASLER_NOTE = (
    "Hasler-Suesstrunk (2003) colorfulness M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) on the "
    "0..255 scale (rg = R-G, yb = (R+G)/2 - B); an extra, NOT the paper's colorfulness (which is mean HSV saturation)"
)

# Frames are analysed by one thread per available core (OpenCV, NumPy and the numba kernels release the GIL). A
# thread needs ~2 ns of CPU per pixel, reading the input costs ~0.25 ns per pixel at typical memory bandwidth, so
# beyond about 8 threads the pass is memory-bound and more only add buffers.
_MAX_WORKERS = 8
_SERIAL_PIXELS = 1 << 18
_tile_rows = pixels.tile_rows  # rows per tile of the OpenCV path (tests size frames by it)


# ------------------------------------------------------------------------------------------------ input checks


def _shape_error(shape: Sequence[int], what: str = "images") -> str:
    return (
        f"{what} have shape {list(shape)}; expected an IMAGE batch [frames, height, width, 3] (RGB) or 4 (RGBA), "
        "or a single image [height, width, 3|4]"
    )


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "dim")


def _as_numpy_batch(images) -> np.ndarray:
    """A torch tensor or numpy array -> numpy ``[B, H, W, C]`` (a view when possible, never a float64 copy)."""
    if _is_tensor(images):
        t = images.detach()
        if t.device.type != "cpu":
            t = t.to("cpu")
        if t.dtype.is_floating_point and t.dtype not in (_torch().float32, _torch().float64, _torch().float16):
            t = t.float()  # bfloat16 has no numpy dtype; float32 holds it exactly
        arr = t.numpy()
    else:
        arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise ValueError(_shape_error(arr.shape))
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"images are empty (shape {list(arr.shape)}); pass at least one frame with pixels, e.g. from EmoVid Load Video")
    if not (arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"images have dtype {arr.dtype}; use float in 0..1 (a ComfyUI IMAGE) or uint8 0..255")
    return arr


def _torch():
    import torch

    return torch


# ------------------------------------------------------------------------------------------------ per-frame sums


@dataclass
class FrameStats:
    """Per-frame sums (float64) from which every clip value and curve is derived.

    ``indices`` are the frames' positions in the source clip (0..n-1 for a full batch; 0, 20, 40, … when only
    every 20th frame was decoded), so stride selection and slopes use true frame numbers.
    """

    indices: np.ndarray  # int64 [n]
    pixels: np.ndarray  # int64 [n]
    sizes: list[tuple[int, int]]  # (height, width) per frame
    sum_v: np.ndarray
    sum_s: np.ndarray
    sum_sin: np.ndarray
    sum_cos: np.ndarray
    hasler: np.ndarray | None = None  # Hasler-Suesstrunk M per frame (0..255 scale), when computed

    def __len__(self) -> int:
        return int(self.pixels.shape[0])


class _SizedFrames:
    """Frames of an in-memory batch, with the total pixel count known up front."""

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = arr
        self.pixels = int(arr.shape[0]) * int(arr.shape[1]) * int(arr.shape[2])

    def __iter__(self):
        return iter(self.arr)


def _iter_source(images) -> tuple[int | None, Iterable[np.ndarray]]:
    """(frame count if known, frames as numpy [H, W, C]) for a batch, a single image or an iterable of frames."""
    if _is_tensor(images) or isinstance(images, np.ndarray):
        arr = _as_numpy_batch(images)
        return arr.shape[0], _SizedFrames(arr)
    if isinstance(images, (str, bytes, Path)) or not isinstance(images, Iterable):
        raise ValueError(
            f"images must be an IMAGE tensor/array [frames, H, W, C] or an iterable of [H, W, C] frames, got {type(images).__name__}"
        )

    def gen():
        for frame in images:
            if _is_tensor(frame):
                t = frame.detach().to("cpu")
                frame = (t.float() if t.dtype.is_floating_point and t.dtype != _torch().float32 else t).numpy()
            yield np.asarray(frame)

    n = len(images) if hasattr(images, "__len__") else None
    return n, gen()


def _available_cpus() -> int:
    """CPUs this process may run on (a container or taskset limit, not the host's count where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def frame_stats(
    images,
    *,
    indices: Sequence[int] | None = None,
    hasler: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> FrameStats:
    """Per-frame sums of V, S, sin h, cos h (and Hasler–Süsstrunk M) for every frame of ``images``.

    ``images``: a ComfyUI IMAGE (torch float32 ``[B, H, W, C]`` in 0..1), a numpy array of the same layout, a
    single image ``[H, W, C]``, or an iterable of ``[H, W, C]`` frames (float 0..1 or uint8 0..255; frames may
    differ in size). C is 3 (RGB) or 4 (RGBA, alpha ignored). ``indices`` gives the frames' positions in the
    source clip when ``images`` holds only some of its frames (entries beyond the last frame are ignored).
    ``workers``: threads analysing frames in parallel; default one per available CPU, at most 8.

    Raises ValueError naming the problem for an empty batch, a wrong rank or channel count, NaN/inf, or values
    outside [0, 1].
    """
    if pixels.is_device_tensor(images):
        return _device_stats(images, indices, hasler)
    total, frames = _iter_source(images)
    rows: list[tuple] = []
    sizes: list[tuple[int, int]] = []
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers={workers!r} must be a whole number >= 1 (or None: one per available CPU)")
        workers = int(workers)
    else:
        workers = max(1, min(_MAX_WORKERS, _available_cpus()))
    if isinstance(frames, _SizedFrames) and frames.pixels < _SERIAL_PIXELS:
        workers = 1  # thread hand-offs cost more than they save on a few small frames
    local = threading.local()

    def work(i: int, frame: np.ndarray) -> tuple:
        ws = getattr(local, "ws", None)
        if ws is None:
            ws = local.ws = pixels.Workspace()
        return pixels.frame_sums(frame, i, ws, hasler)

    bar_cm = runtime.progress_bar(total or 0, "frame attributes") if progress else contextlib.nullcontext()
    with bar_cm as bar, ThreadPoolExecutor(workers, thread_name_prefix="emovid-attr") as pool:
        # A bounded window of frames in flight keeps memory flat for decoded-frame generators of any length
        # while still giving every worker a frame; results are collected in frame order.
        pending: deque = deque()

        def collect() -> None:
            rows.append(pending.popleft().result())
            if bar is not None:
                bar.update(1)

        for i, frame in enumerate(frames):
            runtime.check_interrupted()
            check_frame(frame, i)
            sizes.append((int(frame.shape[0]), int(frame.shape[1])))
            pending.append(pool.submit(work, i, frame))
            if len(pending) >= 2 * workers:
                collect()
        while pending:
            collect()
    return _stats_from_rows(rows, sizes, indices)


def _device_stats(images, indices, hasler: bool) -> FrameStats:
    """frame_stats of a tensor on a GPU (or any non-CPU device), computed there with torch ops."""
    from .pixels import _torch

    t = images.detach()
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[-1] not in (3, 4):
        raise ValueError(_shape_error(list(t.shape)))
    if 0 in t.shape:
        raise ValueError(f"images are empty (shape {list(t.shape)}); pass at least one frame with pixels, e.g. from EmoVid Load Video")
    if not t.dtype.is_floating_point:
        raise ValueError(f"images on {t.device} have dtype {t.dtype}; use float in 0..1 (a ComfyUI IMAGE)")
    runtime.check_interrupted()
    rows = _torch.frame_rows(t, hasler)
    return _stats_from_rows(rows, [(int(t.shape[1]), int(t.shape[2]))] * int(t.shape[0]), indices)


def _stats_from_rows(rows: list[tuple], sizes: list[tuple[int, int]], indices) -> FrameStats:
    hasler = bool(rows) and rows[0][4] is not None
    if not rows:
        raise ValueError("images are empty (0 frames); pass at least one frame, e.g. from EmoVid Load Video")
    n = len(rows)
    if indices is None:
        idx = np.arange(n, dtype=np.int64)
    else:
        # Extra trailing indices are allowed: a decoder handed a planned index list may end a stream early.
        idx = np.asarray(list(indices), dtype=np.int64)[:n]
        if idx.shape != (n,) or (n > 1 and np.any(np.diff(idx) <= 0)) or idx[0] < 0:
            raise ValueError(f"indices must give {n} increasing non-negative frame numbers (one per frame), got {list(idx[:8])}")
    cols = list(zip(*rows))
    return FrameStats(
        indices=idx,
        pixels=np.array([h * w for h, w in sizes], dtype=np.int64),
        sizes=sizes,
        sum_v=np.array(cols[0], dtype=np.float64),
        sum_s=np.array(cols[1], dtype=np.float64),
        sum_sin=np.array(cols[2], dtype=np.float64),
        sum_cos=np.array(cols[3], dtype=np.float64),
        hasler=np.array(cols[4], dtype=np.float64) if hasler else None,
    )


# ------------------------------------------------------------------------------------------------ clip values


def round_attribute(x: float) -> float:
    """B or C as the paper reports them: one decimal, Python round (half-to-even on exact binary ties)."""
    return float(round(float(x), 1))


def round_hue(phi_degrees: float) -> int:
    """Eq. 2: H = round((φ + 360) mod 360) mod 360 — an integer in 0..359 (a value rounding to 360 wraps to 0)."""
    return int(round((float(phi_degrees) + 360.0) % 360.0)) % 360


def circular_degrees(sum_sin: float, sum_cos: float) -> float:
    """Eq. 1: φ = atan2(Σ sin, Σ cos) in degrees, mapped to [0, 360). Both sums zero gives 0."""
    phi = math.degrees(math.atan2(sum_sin, sum_cos)) % 360.0
    return 0.0 if phi >= 360.0 else phi


@dataclass(frozen=True)
class ClipAttributes:
    """The paper's clip attributes: rounded values as published plus the unrounded ones."""

    brightness: float
    colorfulness: float
    hue: int
    brightness_raw: float
    colorfulness_raw: float
    hue_raw: float  # circular mean, degrees in [0, 360)
    hue_concentration: float  # resultant length R in [0, 1]; near 0 means the hue mean is meaningless
    frames: tuple[int, ...]  # source frame indices that were pooled
    pixels: int
    stride: int = PAPER_STRIDE

    def to_dict(self) -> dict:
        return {
            "brightness": self.brightness,
            "colorfulness": self.colorfulness,
            "hue": self.hue,
            "raw": {
                "brightness": self.brightness_raw,
                "colorfulness": self.colorfulness_raw,
                "hue": self.hue_raw,
                "hue_concentration": self.hue_concentration,
            },
            "frames": list(self.frames),
            "pixels": self.pixels,
            "stride": self.stride,
        }


def _check_stride(stride) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or int(stride) < 1:
        raise ValueError(f"stride={stride!r} must be a whole number >= 1 (the paper samples every 20th frame: stride=20)")
    return int(stride)


def clip_attributes(source, stride: int = PAPER_STRIDE) -> ClipAttributes:
    """Eqs. 1–3 over frames 0, stride, 2·stride, … with all their pixels pooled.

    ``source`` is a :class:`FrameStats` or anything :func:`frame_stats` accepts (then only the sampled frames
    are analysed).
    """
    stride = _check_stride(stride)
    if isinstance(source, FrameStats):
        stats = source
        sel = np.flatnonzero(stats.indices % stride == 0)
        if sel.size == 0:
            raise ValueError(
                f"none of the analysed frames {list(stats.indices[:6])}... is a multiple of stride {stride}; "
                "analyse from frame 0 or use stride 1"
            )
    elif pixels.is_device_tensor(source):
        t = source if source.dim() == 4 else source[None]
        stats = frame_stats(t[::stride], indices=np.arange(0, t.shape[0], stride), hasler=False, progress=False)
    elif _is_tensor(source) or isinstance(source, np.ndarray):
        arr = _as_numpy_batch(source)
        # Only the sampled frames are needed for the clip values; a strided view costs no copy.
        stats = frame_stats(arr[::stride], indices=np.arange(0, arr.shape[0], stride), hasler=False, progress=False)
    else:
        frames = [f for i, f in enumerate(_iter_source(source)[1]) if i % stride == 0]
        stats = frame_stats(frames, indices=[i * stride for i in range(len(frames))], hasler=False, progress=False)
    if not isinstance(source, FrameStats):
        sel = np.arange(len(stats))
    n = int(stats.pixels[sel].sum())
    # Means of values in [0, 1] (and a resultant length) stay in [0, 1]: float sums may round a hair past it.
    b = _unit(float(stats.sum_v[sel].sum() / n))
    c = _unit(float(stats.sum_s[sel].sum() / n))
    ssin, scos = float(stats.sum_sin[sel].sum()), float(stats.sum_cos[sel].sum())
    phi = circular_degrees(ssin, scos)
    return ClipAttributes(
        brightness=round_attribute(b),
        colorfulness=round_attribute(c),
        hue=round_hue(phi),
        brightness_raw=b,
        colorfulness_raw=c,
        hue_raw=phi,
        hue_concentration=_unit(math.hypot(ssin, scos) / n),
        frames=tuple(int(i) for i in stats.indices[sel]),
        pixels=n,
        stride=stride,
    )


# ------------------------------------------------------------------------------------------------ curves + summary


def _unit(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def curves(stats: FrameStats) -> dict[str, np.ndarray]:
    """Per-frame curves: brightness (mean V), colorfulness (mean S), hue (circular mean, degrees), hue_concentration
    (resultant length R), and hasler_colorfulness when computed. Means and R are clamped to [0, 1] (rounding)."""
    px = stats.pixels.astype(np.float64)
    out = {
        "brightness": np.clip(stats.sum_v / px, 0.0, 1.0),
        "colorfulness": np.clip(stats.sum_s / px, 0.0, 1.0),
        "hue": np.degrees(np.arctan2(stats.sum_sin, stats.sum_cos)) % 360.0,
        "hue_concentration": np.clip(np.hypot(stats.sum_sin, stats.sum_cos) / px, 0.0, 1.0),
    }
    out["hue"][out["hue"] >= 360.0] = 0.0
    if stats.hasler is not None:
        out["hasler_colorfulness"] = stats.hasler.copy()
    return out


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y over x (0 for fewer than two frames)."""
    if x.size < 2:
        return 0.0
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def _linear_summary(x: np.ndarray, y: np.ndarray, fps: float) -> dict:
    slope = _slope(x, y)
    return {
        "mean": float(y.mean()),
        "std": float(y.std()),
        "slope_per_frame": slope,
        "slope_per_second": slope * fps,
        "min": float(y.min()),
        "max": float(y.max()),
        "min_frame": int(x[int(np.argmin(y))]),
        "max_frame": int(x[int(np.argmax(y))]),
    }


def _hue_summary(x: np.ndarray, hue: np.ndarray, fps: float) -> dict:
    rad = np.radians(hue)
    s, c = float(np.sin(rad).mean()), float(np.cos(rad).mean())
    # Identical hues (a still clip) give R = 1 that rounding can push just above 1, where log(R) > 0 has no sqrt,
    # or just below it, which would report a spread of ~1e-6° that is not there: identical hues have R = 1 exactly.
    # Unwrapping makes a drift 350° → 10° a +20° change rather than -340°, so slope and extremes mean something.
    unwrapped = np.degrees(np.unwrap(rad))
    r = 1.0 if np.ptp(hue) == 0 else _unit(math.hypot(s, c))
    slope = _slope(x, unwrapped)
    return {
        "circular_mean": circular_degrees(s, c),
        "circular_std": math.degrees(math.sqrt(max(0.0, -2.0 * math.log(r)))) if r > 0 else None,
        "resultant_length": r,
        "slope_per_frame": slope,
        "slope_per_second": slope * fps,
        "min_frame": int(x[int(np.argmin(unwrapped))]),
        "max_frame": int(x[int(np.argmax(unwrapped))]),
        "unwrapped_range": float(unwrapped.max() - unwrapped.min()),
    }


def _check_fps(fps) -> float:
    try:
        f = float(fps)
    except (TypeError, ValueError):
        f = float("nan")
    if not math.isfinite(f) or f <= 0:
        raise ValueError(f"fps={fps!r} must be a positive number (frames per second, e.g. 16 for Wan2.1)")
    return f


def temporal_summary(curve_map: Mapping[str, np.ndarray], frame_indices: np.ndarray, fps: float) -> dict:
    """Per curve: mean, std (population), least-squares slope per frame and per second, extremes and their frames.

    Hue uses circular statistics instead (circular mean/std, resultant length) and its slope/extremes are taken
    on the unwrapped curve.
    """
    fps = _check_fps(fps)
    x = np.asarray(frame_indices, dtype=np.float64)
    out = {}
    for name, y in curve_map.items():
        out[name] = _hue_summary(x, y, fps) if name == "hue" else _linear_summary(x, np.asarray(y, np.float64), fps)
    return out


# ------------------------------------------------------------------------------------------------ report


@dataclass
class AttributeReport:
    clip: ClipAttributes
    frame_indices: np.ndarray
    curves: dict[str, np.ndarray]
    summary: dict
    fps: float
    sizes: list[tuple[int, int]] = field(default_factory=list)
    source: str | None = None

    @property
    def settings(self) -> dict:
        return {
            "stride": self.clip.stride,
            "fps": self.fps,
            "conversion": CONVERSION,
            "rounding": ROUNDING,
            "alpha": ALPHA,
            "pooling": "all pixels of the sampled frames pooled (larger frames weigh more)",
            "hasler_colorfulness": HASLER_NOTE,
        }

    def summary_line(self, name: str | None = None) -> str:
        """One line, e.g. ``clip.mp4  B=0.6 C=0.3 H=27  (raw 0.6123 0.2950 26.8; 5 frames)``."""
        c = self.clip
        head = f"{name}  " if name else ""
        return (
            f"{head}B={c.brightness:.1f} C={c.colorfulness:.1f} H={c.hue}  "
            f"(raw {c.brightness_raw:.4f} {c.colorfulness_raw:.4f} {c.hue_raw:.1f}; {len(c.frames)} frame"
            f"{'' if len(c.frames) == 1 else 's'})"
        )

    def to_dict(self) -> dict:
        sizes = sorted(set(self.sizes))
        return _finite({
            "source": self.source,
            "clip": self.clip.to_dict(),
            "frames": int(len(self.frame_indices)),
            "frame_size": ({"height": sizes[0][0], "width": sizes[0][1]} if len(sizes) == 1
                           else [{"height": h, "width": w} for h, w in sizes]),
            "curves": {"frame": [int(i) for i in self.frame_indices],
                       **{k: [round(float(v), 6) for v in arr] for k, arr in self.curves.items()}},
            "summary": self.summary,
            "settings": self.settings,
        })

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save_json(self, path: str | Path) -> Path:
        return write_bytes(path, self.to_json().encode() + b"\n")


def _finite(obj):
    """JSON has no NaN/inf: replace them with null so the report always parses."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def analyze(
    images,
    stride: int = PAPER_STRIDE,
    fps: float = 16.0,
    *,
    indices: Sequence[int] | None = None,
    hasler: bool = True,
    progress: bool = True,
    source: str | None = None,
) -> AttributeReport:
    """Everything at once: per-frame curves of every frame, their temporal summary, and the paper's clip values
    from frames 0, stride, 2·stride, … (taken from the same per-frame sums, so nothing is computed twice)."""
    stride = _check_stride(stride)
    fps = _check_fps(fps)
    stats = frame_stats(images, indices=indices, hasler=hasler, progress=progress)
    clip = clip_attributes(stats, stride)
    cmap = curves(stats)
    return AttributeReport(
        clip=clip,
        frame_indices=stats.indices,
        curves=cmap,
        summary=temporal_summary(cmap, stats.indices, fps),
        fps=fps,
        sizes=stats.sizes,
        source=source,
    )


# ------------------------------------------------------------------------------------------------ plot


def plot_rgb(report: AttributeReport, width: int = 1000, height: int = 520) -> np.ndarray:
    """The curves as an RGB uint8 image ``[height, width, 3]``: brightness and colorfulness (left axis, 0..1),
    hue (right axis, degrees, points coloured by their hue), a strip of per-frame hue colours, dashed lines at
    the clip values and markers on the sampled frames."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import hsv_to_rgb
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=[9, 1], hspace=0.08, left=0.08, right=0.9, top=0.88, bottom=0.12)
    ax = fig.add_subplot(grid[0])
    strip = fig.add_subplot(grid[1], sharex=ax)
    x = report.frame_indices.astype(float)
    c = report.clip
    cv = report.curves
    ax.plot(x, cv["brightness"], color="#d4a000", lw=2, label=f"brightness (mean V)  clip B={c.brightness:.1f}")
    ax.plot(x, cv["colorfulness"], color="#c0307a", lw=2, label=f"colorfulness (mean S)  clip C={c.colorfulness:.1f}")
    ax.axhline(c.brightness_raw, color="#d4a000", ls="--", lw=1)
    ax.axhline(c.colorfulness_raw, color="#c0307a", ls="--", lw=1)
    sampled = np.isin(report.frame_indices, np.asarray(c.frames))
    ax.plot(x[sampled], cv["brightness"][sampled], "o", color="#d4a000", ms=5, label=f"frames pooled for B/C/H (stride {c.stride})")
    ax.plot(x[sampled], cv["colorfulness"][sampled], "o", color="#c0307a", ms=5)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("brightness / colorfulness (0..1)")
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    hx = ax.twinx()
    hue = cv["hue"]
    colours = hsv_to_rgb(np.stack([hue / 360.0, np.full_like(hue, 0.9), np.full_like(hue, 0.85)], axis=-1))
    # Break the connecting line where the hue wraps through 0°/360°, so a 355° -> 5° step is not drawn as a dive.
    cut = np.flatnonzero(np.abs(np.diff(hue)) > 180.0) + 1
    hx.plot(np.insert(x, cut, np.nan), np.insert(hue, cut, np.nan), color="0.6", lw=0.8, zorder=1)
    hx.scatter(x, hue, c=colours, s=14, zorder=2, label=f"hue (circular mean)  clip H={c.hue}°")
    hx.axhline(c.hue_raw, color=hsv_to_rgb([c.hue_raw / 360.0, 0.9, 0.85]), ls=":", lw=1.5)
    hx.set_ylim(-5, 365)
    hx.set_yticks([0, 60, 120, 180, 240, 300, 360])
    hx.set_ylabel("hue (degrees)")
    lines = ax.get_legend_handles_labels()
    hlines = hx.get_legend_handles_labels()
    ax.legend(lines[0] + hlines[0], lines[1] + hlines[1], loc="best", fontsize=8, framealpha=0.85)
    # The strip shows each frame's mean hue at full saturation; pale where the hue is weakly concentrated.
    conc = np.clip(cv["hue_concentration"], 0.0, 1.0)
    strip_rgb = hsv_to_rgb(np.stack([hue / 360.0, 0.25 + 0.75 * conc, np.full_like(hue, 0.95)], axis=-1))[None]
    half = 0.5 if len(x) < 2 else (x[1] - x[0]) / 2
    strip.imshow(strip_rgb, aspect="auto", extent=(x[0] - half, x[-1] + half, 0, 1), interpolation="nearest")
    strip.set_yticks([])
    strip.set_xlabel(f"frame  ({report.fps:g} fps, {len(x)} frames, {(x[-1] - x[0] + 1) / report.fps:.2f} s)")
    ax.set_xlim(x[0] - half, x[-1] + half)
    fig.suptitle(
        f"B={c.brightness:.1f}  C={c.colorfulness:.1f}  H={c.hue}°   "
        f"(raw {c.brightness_raw:.3f} / {c.colorfulness_raw:.3f} / {c.hue_raw:.1f}°, {len(c.frames)} sampled frames)",
        fontsize=11,
    )
    if report.source:
        ax.set_title(report.source, fontsize=9, color="0.3")
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def save_plot(report: AttributeReport, path: str | Path, width: int = 1000, height: int = 520) -> Path:
    """Write :func:`plot_rgb` as a PNG (atomically)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot path {str(path)!r} must end in .png")
    rgb = plot_rgb(report, width, height)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"PNG encoding of the plot for {str(path)!r} failed")
    return write_bytes(path, buf.tobytes())


# ------------------------------------------------------------------------------------------------ comparison


_ATTRS = ("brightness", "colorfulness", "hue")


def compare_to_emotion_stats(attrs, stats: Mapping[str, Mapping[str, Any]]) -> dict:
    """Place a clip among per-emotion attribute distributions.

    ``attrs``: a :class:`ClipAttributes` (its unrounded values are used) or a dict with any of ``brightness``,
    ``colorfulness``, ``hue``. ``stats``: ``{emotion: {attribute: {"mean": m, "std": s}}}`` (``(m, s)`` pairs
    also accepted), e.g. per-emotion means/stds from the dataset statistics.

    For each emotion, z = (value − mean) / std per attribute — for hue the difference is wrapped to
    [−180°, 180°) first — and ``distance`` = sqrt(Σ z²) over the attributes both sides have. Returns
    ``{"nearest": emotion, "ranking": [emotions by distance], "per_emotion": {emotion: {"z": {...},
    "distance": d}}}``.
    """
    if isinstance(attrs, ClipAttributes):
        values = {"brightness": attrs.brightness_raw, "colorfulness": attrs.colorfulness_raw, "hue": attrs.hue_raw}
    elif isinstance(attrs, Mapping):
        values = {k: float(attrs[k]) for k in _ATTRS if k in attrs and attrs[k] is not None}
    else:
        raise ValueError(f"attrs must be ClipAttributes or a dict of brightness/colorfulness/hue, got {type(attrs).__name__}")
    if not values:
        raise ValueError("attrs has none of brightness, colorfulness, hue; nothing to compare")
    if not stats:
        raise ValueError("stats is empty; pass {emotion: {attribute: {'mean': m, 'std': s}}}")
    per: dict[str, dict] = {}
    for emotion, entry in stats.items():
        z: dict[str, float] = {}
        for name, value in values.items():
            if name not in entry:
                continue
            spec = entry[name]
            mean, std = (spec["mean"], spec["std"]) if isinstance(spec, Mapping) else spec
            mean, std = float(mean), float(std)
            if not (math.isfinite(std) and std > 0):
                raise ValueError(f"stats[{emotion!r}][{name!r}] has std={std!r}; a std must be > 0 to compute a z-score")
            diff = ((value - mean + 180.0) % 360.0) - 180.0 if name == "hue" else value - mean
            z[name] = diff / std
        if not z:
            raise ValueError(f"stats[{emotion!r}] has none of {', '.join(values)}; give mean/std for at least one")
        per[emotion] = {"z": z, "distance": math.sqrt(sum(v * v for v in z.values()))}
    ranking = sorted(per, key=lambda e: per[e]["distance"])
    return {"nearest": ranking[0], "ranking": ranking, "per_emotion": per}


def emotion_stats_from_dataset(stats: Mapping[str, Any]) -> dict:
    """Per-emotion means/stds in :func:`compare_to_emotion_stats`'s layout from the output of
    ``emovid_core.dataset.stats.compute_stats`` (``emovid dataset stats --json``).

    Its ``attributes.<attr>.by_emotion.<emotion>`` entries (``mean``/``std``, circular for hue) are regrouped
    by emotion. Entries without a usable spread (no clips, one clip, or identical values: std missing or 0)
    are left out, so they cannot produce infinite z-scores.
    """
    attrs = stats.get("attributes") if isinstance(stats, Mapping) else None
    if not isinstance(attrs, Mapping):
        raise ValueError("stats has no 'attributes' section; pass the output of dataset.stats.compute_stats "
                         "(emovid dataset stats --json)")
    out: dict[str, dict] = {}
    for name in _ATTRS:
        for emotion, entry in ((attrs.get(name) or {}).get("by_emotion") or {}).items():
            mean, std = entry.get("mean"), entry.get("std")
            if mean is None or std is None or not std > 0:
                continue
            out.setdefault(emotion, {})[name] = {"mean": float(mean), "std": float(std)}
    if not out:
        raise ValueError("stats has no per-emotion attribute with a mean and a std > 0; it needs at least two "
                         "clips with different values per emotion")
    return out

