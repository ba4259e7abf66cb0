"""Video decoding and encoding for the whole pack.

Decoding: containers (mp4/webm/mov/mkv/avi/...) go through OpenCV's FFmpeg backend; GIF and animated WebP
through Pillow (they carry per-frame durations and transparency that OpenCV drops); a folder of images is a
video too (sorted naturally, so ``frame2.png`` comes before ``frame10.png``).

Frame selection is planned up front (:func:`plan_indices`, a pure function) so every caller — the load node,
dataset sampling, frame analysis — agrees on which source frames a set of options means, and so the decoder can
seek instead of decoding a whole long clip to take 16 frames out of it.

Encoding: mp4 (H.264, yuv420p) and webm (VP9) by piping raw RGB frames into the ffmpeg binary that
imageio-ffmpeg ships — OpenCV's own mp4 writer produces mp4v, which browsers (and so ComfyUI's preview) cannot
play. GIF and animated WebP go through Pillow and keep transparency. Every write is atomic (temp file in the
same folder, then ``os.replace``) so a crash never leaves a half-written video under the final name.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import os
import re
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from . import runtime

log = logging.getLogger("EmoVid")

CONTAINER_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts")
ANIMATION_EXTENSIONS = (".gif", ".webp")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = CONTAINER_EXTENSIONS + ANIMATION_EXTENSIONS
WRITE_FORMATS = ("mp4", "webm", "gif", "webp")

# A folder of images has no timing of its own; Wan2.1 generates at 16 fps, so that is the natural default.
DEFAULT_IMAGES_FPS = 16.0
# Browsers treat a GIF/WebP frame delay of 0 (or a missing one) as 100 ms; decode it the same way so the
# timing we report is the timing a viewer sees.
DEFAULT_FRAME_MS = 100.0
# Browsers also bump GIF delays of 10 ms and less to 100 ms, so never write a delay below 20 ms.
MIN_GIF_FRAME_MS = 20
# A seek restarts decoding at the keyframe before the target, so it only pays when that keyframe lies ahead
# of where decoding is now: seek when it saves more than SEEK_MIN_GAIN frames of decoding. Keyframe positions
# come from a demux-only pass (no decoding). Without them, seek when the target is SEEK_DISTANCE frames ahead.
SEEK_MIN_GAIN = 4
SEEK_DISTANCE = 24
# Containers whose frame count OpenCV can only estimate (from duration x fps).
ESTIMATED_COUNT_EXTENSIONS = (".webm", ".mkv")


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video without decoding it all.

    ``frame_starts`` holds each frame's start time in seconds when the timing is not uniform (GIF/WebP);
    it is empty for constant-rate sources, where frame ``i`` starts at ``i / fps``.
    """

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    duration: float
    has_alpha: bool
    kind: str  # "video" | "gif" | "webp" | "images"
    frame_starts: tuple[float, ...] = field(default=(), repr=False)
    files: tuple[Path, ...] = field(default=(), repr=False)  # kind "images": the frame files in order

    def frame_start(self, i: int) -> float:
        return self.frame_starts[i] if self.frame_starts else i / self.fps

    def describe(self) -> str:
        alpha = ", alpha" if self.has_alpha else ""
        return f"{self.path.name}: {self.kind}, {self.frames} frames, {self.width}x{self.height}, {self.fps:.3f} fps, {self.duration:.2f} s{alpha}"


# ----------------------------------------------------------------------------------------------------- probe


def video_files(root: str | Path) -> list[str]:
    """Video files (and GIF/WebP animations) under ``root``, sub-folders included, as sorted "/"-separated
    relative names; hidden files and folders are left out."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if Path(f).suffix.lower() in VIDEO_EXTENSIONS and not f.startswith("."):
                out.append((Path(dirpath) / f).relative_to(root).as_posix())
    return sorted(out)


def source_stamp(path: str | Path) -> str:
    """A digest of the names, times and sizes of a source's files: it changes when the video (or any image of
    an image folder) is replaced on disk."""
    import hashlib

    p = Path(path)
    files = image_files(p) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_mtime_ns}:{st.st_size};".encode())
    return h.hexdigest()


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def image_files(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (``2.png`` before ``10.png``)."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)


def _existing(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"video {str(p)!r} not found; check the path (relative paths are resolved from {os.getcwd()!r})")
    return p


def probe(path: str | Path, fps: float | None = None) -> VideoInfo:
    """Frame count, rate, size, duration, alpha and kind of a video, animation, image folder or single image.

    ``fps`` sets the rate of a folder of images (default 16) and is ignored for files that carry timing.
    Raises FileNotFoundError for a missing path, ValueError for an unreadable, corrupt or empty one.
    """
    p = _existing(path)
    if p.is_dir():
        return _probe_images(p, image_files(p), fps)
    suffix = p.suffix.lower()
    if suffix in ANIMATION_EXTENSIONS:
        return _probe_pillow(p)
    if suffix in IMAGE_EXTENSIONS:
        return _probe_images(p, [p], fps)
    return _probe_cv2(p)


def _probe_images(p: Path, files: list[Path], fps: float | None) -> VideoInfo:
    from PIL import UnidentifiedImageError

    if not files:
        raise ValueError(f"folder {str(p)!r} has no images (looked for {', '.join(IMAGE_EXTENSIONS)}); put the frames there or pass a video file")
    rate = float(fps) if fps else DEFAULT_IMAGES_FPS
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"fps={fps!r} for image folder {str(p)!r} must be a positive number, e.g. 16")
    try:
        with open_image(files[0]) as im:
            w, h = im.size
            alpha = _mode_has_alpha(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {str(files[0])!r}: {exc}; remove or re-save the file") from None
    return VideoInfo(p, len(files), rate, w, h, len(files) / rate, alpha, "images", files=tuple(files))


def _mode_has_alpha(im) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _probe_pillow(p: Path) -> VideoInfo:
    from PIL import UnidentifiedImageError

    kind = "gif" if p.suffix.lower() == ".gif" else "webp"
    try:
        with open_image(p) as im:
            n = int(getattr(im, "n_frames", 1))
            w, h = im.size
            alpha = _mode_has_alpha(im)
            if kind == "webp":
                # Pillow only reports a WebP frame's duration after decoding it; the RIFF chunks hold it for free.
                durations, riff_alpha = _webp_timing(p)
                alpha = alpha or riff_alpha
                if len(durations) != n:
                    durations = [DEFAULT_FRAME_MS] * n  # a still WebP (no ANMF chunks)
            else:
                durations = []
                for i in range(n):
                    im.seek(i)
                    alpha = alpha or _mode_has_alpha(im)
                    durations.append(_frame_ms(im))
    except (UnidentifiedImageError, OSError, EOFError, SyntaxError) as exc:
        raise ValueError(f"cannot decode {kind} {str(p)!r}: {exc}; the file is corrupt or not a {kind}") from None
    starts, t = [], 0.0
    for d in durations:
        starts.append(t)
        t += d / 1000.0
    if n < 1 or t <= 0:
        raise ValueError(f"{kind} {str(p)!r} has no frames")
    return VideoInfo(p, n, n / t, w, h, t, alpha, kind, frame_starts=tuple(starts))


def _webp_timing(p: Path) -> tuple[list[float], bool]:
    """Per-frame durations (ms) from a WebP's ANMF chunks, and the VP8X alpha flag."""
    import struct

    durations, alpha = [], False
    with open(p, "rb") as f:  # walk chunk headers with seeks: an animated WebP can be large
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            raise ValueError(f"{str(p)!r} is not a WebP file (no RIFF/WEBP header)")
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                break
            tag, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            body = f.read(min(size, 16)) if tag in (b"VP8X", b"ANMF") else b""
            if tag == b"VP8X" and body:
                alpha = bool(body[0] & 0x10)
            elif tag == b"ANMF" and len(body) >= 16:
                d = int.from_bytes(body[12:15], "little")
                durations.append(float(d) if d else DEFAULT_FRAME_MS)
            f.seek(size + (size & 1) - len(body), os.SEEK_CUR)  # chunks are padded to an even size
    return durations, alpha


def _frame_ms(im) -> float:
    d = im.info.get("duration")
    return float(d) if d else DEFAULT_FRAME_MS


def _open_cv2(p: Path):
    import cv2

    cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise ValueError(
            f"cannot decode video {str(p)!r}: OpenCV/FFmpeg could not open it (corrupt file or unsupported codec); "
            "re-encode it, e.g. `ffmpeg -i in.mov -c:v libx264 -pix_fmt yuv420p out.mp4`"
        )
    return cap


def _grab_count(cap) -> int:
    import cv2

    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    n = 0
    while cap.grab():
        n += 1
    return n


def _probe_cv2(p: Path) -> VideoInfo:
    import cv2

    cap = _open_cv2(p)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        # The first frame gives the real size (after any rotation metadata is applied) and proves that the
        # stream actually decodes: a container header alone says nothing about that.
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ValueError(f"video {str(p)!r} has no decodable frames (empty or corrupt); re-export it or pick another file")
        h, w = frame.shape[:2]
        if count <= 0:
            # No count in the header at all: count by grabbing (no colour conversion).
            count = 1
            while cap.grab():
                count += 1
        elif p.suffix.lower() in ESTIMATED_COUNT_EXTENSIONS:
            # Matroska/WebM store no frame count; OpenCV's duration x fps estimate is off for variable frame
            # rates. Count the packets instead (demux only, no decoding); walk the stream if that is unavailable.
            count = demux_index(p)[0] or _grab_count(cap)
    finally:
        cap.release()
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        log.warning("[EmoVid] %s reports fps %r; assuming 24", p, fps)
        fps = 24.0
    return VideoInfo(p, count, fps, w, h, count / fps, False, "video")


# ------------------------------------------------------------------------------------------- decode options

CROPS = ("center", "none")
WAN_MULTIPLE = 16  # Wan2.1's frame sizes are multiples of 16: the VAE downsamples 8x and the DiT patches 2x


@dataclass(frozen=True)
class DecodeOptions:
    """Which frames to take from a source and at what size: the one declaration of the decode options.

    ``read_frames``/``iter_frames``/``load_video``, dataset decoding and the nodes that decode (EmoVid Load Video,
    EmoVid Sample Clip) all take these. Order of operations: drop ``skip_first`` source frames, resample to
    ``target_fps`` by timestamp (0 = source rate), keep every ``every_nth``, cap at ``max_frames`` (0 = all), trim
    to 4n+1 with ``wan_4n1``; frames are resized to ``width`` x ``height`` (0 x 0 = source size, one 0 follows
    the aspect ratio), centre-cropped (``crop="center"``) or stretched (``"none"``).
    """

    max_frames: int = 0
    skip_first: int = 0
    every_nth: int = 1
    target_fps: float = 0.0
    width: int = 0
    height: int = 0
    crop: str = "center"
    wan_4n1: bool = False

    @classmethod
    def of(cls, options: "DecodeOptions | None" = None, *, size: tuple[int, int] | None = None, **fields) -> "DecodeOptions":
        """``options`` with ``fields`` replaced; ``size=(W, H)`` sets width and height; None means the default."""
        base = options if options is not None else cls()
        if size is not None:
            fields["width"], fields["height"] = _parse_size(size)
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown decode option(s) {', '.join(sorted(unknown))}; use {', '.join(cls.__dataclass_fields__)} or size")
        clean = {k: (0 if v is None and k in ("max_frames", "target_fps") else v) for k, v in fields.items()}
        return replace(base, **clean) if clean else base

    @property
    def size(self) -> tuple[int, int]:
        return int(self.width), int(self.height)

    def check(self) -> "DecodeOptions":
        """Counts and rates in range, crop known; raises ValueError naming the value."""
        for name in ("max_frames", "skip_first"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be 0 or more")
        if int(self.every_nth) < 1:
            raise ValueError(f"every_nth={self.every_nth} must be at least 1")
        if self.target_fps < 0:
            raise ValueError(f"target_fps={self.target_fps} must be 0 (source rate) or positive")
        _check_crop(self.crop)
        _parse_size(self.size)
        return self

    def check_wan_size(self) -> "DecodeOptions":
        """Both width and height set to multiples of 16 (what Wan2.1 needs), or both 0 to keep the source size."""
        w, h = self.size
        if (w == 0) != (h == 0):
            raise ValueError(f"size {w}x{h}: set both width and height (multiples of {WAN_MULTIPLE}), or both 0 to keep the source size")
        for name, v in (("width", w), ("height", h)):
            if v and v % WAN_MULTIPLE:
                lo = max(WAN_MULTIPLE, v // WAN_MULTIPLE * WAN_MULTIPLE)
                raise ValueError(f"{name}={v} is not a multiple of {WAN_MULTIPLE}, which Wan2.1 needs "
                                 f"(its VAE downsamples 8× and the DiT patches 2×); use {lo} or {lo + WAN_MULTIPLE}")
        return self

    def plan(self, info: "VideoInfo") -> list[int]:
        """The source frame indices these options select from ``info`` (see :func:`plan_indices`)."""
        return plan_indices(info, self)

    def output_fps(self, source_fps: float) -> float:
        """Rate of the returned frames: the target fps (or the source rate) divided by every_nth."""
        return (float(self.target_fps) or float(source_fps)) / int(self.every_nth)


# ------------------------------------------------------------------------------------------------- planning


def plan_indices(info: VideoInfo, options: DecodeOptions | None = None, **decode) -> list[int]:
    """Source frame indices the :class:`DecodeOptions` select, in order (repeats allowed when ``target_fps``
    exceeds the source rate); ``options`` or its fields as keywords (``plan_indices(info, every_nth=20)``).

    Order of operations: drop the first ``skip_first`` source frames; resample the rest to ``target_fps`` by
    timestamp (for each output time the source frame showing at that moment; GIF/WebP use their per-frame
    durations); keep every ``every_nth`` of those; cap at ``max_frames`` (None or 0 = no cap); with
    ``wan_4n1`` trim the count to the largest 4n+1 (Wan2.1 generates 4n+1 frames).
    """
    opts = DecodeOptions.of(options, **decode)
    target_fps, wan_4n1 = opts.target_fps, opts.wan_4n1
    n = int(info.frames)
    skip_first = _int_arg("skip_first", opts.skip_first, 0)
    every_nth = _int_arg("every_nth", opts.every_nth, 1)
    cap = _int_arg("max_frames", opts.max_frames or 0, 0)
    if skip_first >= n:
        raise ValueError(f"skip_first={skip_first} skips all {n} frames of {info.path.name!r}; use a value below {n}")
    if target_fps:
        target = float(target_fps)
        if not math.isfinite(target) or target <= 0:
            raise ValueError(f"target_fps={target_fps!r} must be a positive number (or 0/None to keep the source rate)")
        t0, step = info.frame_start(skip_first), 1.0 / target
        # Half a microsecond of slack so that a time exactly on a frame boundary lands on that frame despite
        # floating-point error (k / 8 fps vs i / 16 fps).
        eps = 5e-7
        count = max(1, math.ceil((info.duration - t0) * target - 1e-6))
        idx = []
        for k in range(count):
            t = t0 + k * step + eps
            if info.frame_starts:
                i = bisect.bisect_right(info.frame_starts, t) - 1
            else:
                i = math.floor(t * info.fps)
            idx.append(min(max(i, skip_first), n - 1))
    else:
        idx = list(range(skip_first, n))
    idx = idx[::every_nth]
    if cap:
        idx = idx[:cap]
    if wan_4n1:
        idx = idx[: wan_frame_count(len(idx))]
    return idx


def wan_frame_count(n: int) -> int:
    """Largest 4k+1 that is <= n (Wan2.1 needs 4k+1 frames); n itself when n < 1."""
    return ((n - 1) // 4) * 4 + 1 if n >= 1 else n


def _int_arg(name: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (isinstance(value, float) and value.is_integer()):
        raise ValueError(f"{name}={value!r} must be a whole number >= {lo}")
    value = int(value)
    if value < lo:
        raise ValueError(f"{name}={value} must be >= {lo}")
    return value


def output_size(info: VideoInfo, size: tuple[int, int] | None) -> tuple[int, int]:
    """(W, H) of decoded frames for a ``size`` request; a 0 in ``size`` follows the source aspect ratio."""
    if size is None:
        return info.width, info.height
    w, h = _parse_size(size)
    if w == 0 and h == 0:
        return info.width, info.height
    if w == 0:
        w = max(1, round(info.width * h / info.height))
    elif h == 0:
        h = max(1, round(info.height * w / info.width))
    return w, h


def _parse_size(size) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size={size!r} must be (width, height), e.g. (832, 480)") from None
    if w < 0 or h < 0:
        raise ValueError(f"size={size!r} must not be negative (0 keeps the source aspect ratio)")
    return w, h


# --------------------------------------------------------------------------------------------- memory guard


def available_memory() -> int:
    """Bytes of RAM available now (psutil when installed, else sysconf)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_memory(frames: int, width: int, height: int, path: str | Path = "", max_bytes: int | None = None) -> int:
    """Raise ValueError when ``frames`` of ``width``×``height`` as a float32 IMAGE would exceed ``max_bytes``.

    The default limit is half of the RAM available now. Returns the estimated bytes.
    """
    need = int(frames) * int(width) * int(height) * 3 * 4
    limit = int(max_bytes) if max_bytes is not None else available_memory() // 2
    if need > limit:
        raise _memory_error(f"{frames} frames of {width}x{height}", path, need, limit)
    return need


def _memory_error(what: str, path: str | Path, need: int, limit: int,
                  fix: str = "lower max_frames, raise every_nth or set a smaller size") -> ValueError:
    return ValueError(f"decoding {what} from {str(path)!r} needs about {need / 2**30:.2f} GiB as an IMAGE, over the limit "
                      f"of {limit / 2**30:.2f} GiB; {fix}")


@contextlib.contextmanager
def open_image(path: str | Path):
    """``PIL.Image.open`` whose decompression-bomb refusal (an image too large to decode) is the memory message
    huge videos get, instead of Pillow's raw exception."""
    from PIL import Image

    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else 0
        limit = 2 * int(Image.MAX_IMAGE_PIXELS or 0)
        raise _memory_error(f"an image of {pixels:,} pixels" if pixels else "an image", path, pixels * 12, limit * 12,
                            f"Pillow refuses images over {limit:,} pixels (a decompression-bomb guard); resize the "
                            "image to a frame size a video model uses (e.g. 832x480)") from None
    with im:
        yield im


# ------------------------------------------------------------------------------------------------- decoding


def _resize(frame: np.ndarray, size: tuple[int, int], crop: str) -> np.ndarray:
    import cv2

    w, h = size
    sh, sw = frame.shape[:2]
    if (sw, sh) == (w, h):
        return frame
    if crop == "none":
        interp = cv2.INTER_AREA if w * h < sw * sh else cv2.INTER_LINEAR
        return cv2.resize(frame, (w, h), interpolation=interp)
    # Cover the target box keeping the aspect ratio, then cut the overflow evenly from both sides.
    scale = max(w / sw, h / sh)
    rw, rh = max(w, round(sw * scale)), max(h, round(sh * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (rw, rh), interpolation=interp) if (rw, rh) != (sw, sh) else frame
    x0, y0 = (rw - w) // 2, (rh - h) // 2
    return np.ascontiguousarray(resized[y0 : y0 + h, x0 : x0 + w])


def _composite(rgba: np.ndarray, background: Sequence[int]) -> np.ndarray:
    """Alpha-composite an RGBA uint8 frame onto a solid background colour -> RGB uint8."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
    out = rgba[..., :3].astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _pil_to_rgb(im, background: Sequence[int]) -> np.ndarray:
    if _mode_has_alpha(im) or im.mode == "P":
        rgba = np.asarray(im.convert("RGBA"))
        if rgba[..., 3].min() == 255:
            return np.ascontiguousarray(rgba[..., :3])
        return _composite(rgba, background)
    return np.asarray(im.convert("RGB"))


def _check_background(background) -> tuple[int, int, int]:
    try:
        bg = tuple(int(v) for v in background)
    except (TypeError, ValueError):
        bg = ()
    if len(bg) != 3 or not all(0 <= v <= 255 for v in bg):
        raise ValueError(f"background={background!r} must be an (R, G, B) colour with values 0..255, e.g. (0, 0, 0)")
    return bg  # type: ignore[return-value]


def _check_indices(indices, info: VideoInfo) -> list[int]:
    idx = [int(i) for i in indices]
    if any(b < a for a, b in zip(idx, idx[1:])):
        raise ValueError(f"indices must be sorted ascending (repeats allowed), got {idx[:8]}{'...' if len(idx) > 8 else ''}")
    if idx and (idx[0] < 0 or idx[-1] >= info.frames):
        raise ValueError(f"indices must lie in 0..{info.frames - 1} for {info.path.name!r} ({info.frames} frames), got {idx[0]}..{idx[-1]}")
    return idx


def _select(info: VideoInfo, indices, opts: DecodeOptions) -> list[int]:
    if indices is not None:
        if opts.skip_first or opts.every_nth != 1 or opts.max_frames or opts.target_fps or opts.wan_4n1:
            raise ValueError("pass either indices or skip_first/every_nth/max_frames/target_fps/wan_4n1, not both")
        return _check_indices(indices, info)
    return opts.plan(info)


def iter_frames(
    path: str | Path,
    options: DecodeOptions | None = None,
    *,
    background: Sequence[int] = (0, 0, 0),
    indices: Sequence[int] | None = None,
    fps: float | None = None,
    info: VideoInfo | None = None,
    **decode,
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 ``[H, W, 3]`` frames of ``path`` (file or image folder).

    Selection and size are :class:`DecodeOptions` (``options``, or its fields as keywords: ``every_nth=8``,
    ``size=(832, 480)``), or explicit sorted source ``indices``. RGBA sources are composited onto
    ``background``. ``fps`` is the rate of an image folder. Pass ``info`` from an earlier :func:`probe` to skip
    probing again.
    """
    opts = DecodeOptions.of(options, **decode)
    _check_crop(opts.crop)
    bg = _check_background(background)
    info = info or probe(path, fps=fps)
    idx = _select(info, indices, opts)
    out_size = output_size(info, opts.size)
    return _iter_planned(info, idx, out_size, opts.crop, bg)


def _check_crop(crop: str) -> None:
    if crop not in CROPS:
        raise ValueError(f"crop={crop!r} must be 'center' or 'none'")


def _iter_planned(info: VideoInfo, idx: list[int], out_size, crop, bg) -> Iterator[np.ndarray]:
    if info.kind == "video":
        source = _decode_cv2(info, idx)
    elif info.kind == "images":
        source = _decode_images(info, idx, bg)
    else:
        source = _decode_pillow(info, idx, bg)
    for frame in source:
        runtime.check_interrupted()
        yield _resize(frame, out_size, crop)


def _decode_images(info: VideoInfo, idx: list[int], bg) -> Iterator[np.ndarray]:
    from PIL import UnidentifiedImageError

    last_i, last = -1, None
    for i in idx:
        if i != last_i:
            f = info.files[i]
            try:
                with open_image(f) as im:
                    last = _pil_to_rgb(im, bg)
            except (UnidentifiedImageError, OSError) as exc:
                raise ValueError(f"cannot read image {str(f)!r}: {exc}; remove or re-save the file") from None
            if last.shape[:2] != (info.height, info.width):
                # Resize odd frames to the first frame's size so one bad export does not break a whole folder.
                last = _resize(last, (info.width, info.height), "center")
            last_i = i
        yield last


def _decode_pillow(info: VideoInfo, idx: list[int], bg) -> Iterator[np.ndarray]:
    from PIL import UnidentifiedImageError

    try:
        with open_image(info.path) as im:
            last_i, last = -1, None
            for i in idx:
                if i != last_i:
                    # Pillow composites GIF disposal/blending itself; seeking forward is sequential inside.
                    im.seek(i)
                    last = _pil_to_rgb(im, bg)
                    last_i = i
                yield last
    except (UnidentifiedImageError, OSError, EOFError, SyntaxError) as exc:
        raise ValueError(f"cannot decode {info.kind} {str(info.path)!r}: {exc}; the file is corrupt") from None


def _decode_cv2(info: VideoInfo, idx: list[int]) -> Iterator[np.ndarray]:
    """Decode source frames ``idx`` (sorted, repeats allowed), seeking where that saves decoding.

    A seek is trusted only when the capture reports landing on the wanted frame and its timestamp agrees;
    otherwise (variable frame rate, containers without a usable index) this capture falls back to grabbing
    forward from the start, which is always exact. Skipped frames are grab()bed, never converted.
    """
    import cv2

    if not idx:
        return
    cap = _open_cv2(info.path)
    try:
        pos = 0  # index of the frame the next read() returns
        can_seek = True
        keys: list[int] | None | bool = False  # False = not looked up yet
        last_i, last = -1, None
        for i in idx:
            if i == last_i:
                yield last
                continue
            if can_seek and i - pos > SEEK_MIN_GAIN:
                if keys is False:
                    keys = keyframes(info.path)
                if _worth_seeking(i, pos, keys):
                    if _seek(cap, i, info.fps):
                        log.debug("[EmoVid] %s: seek %d -> %d", info.path.name, pos, i)
                        pos = i
                    else:
                        can_seek = False
                        log.debug("[EmoVid] %s: imprecise seek, decoding forward instead", info.path)
                        cap.release()
                        cap = _open_cv2(info.path)
                        pos = 0
            if i < pos:  # defensive: never decode backwards from a wrong position
                cap.release()
                cap = _open_cv2(info.path)
                pos = 0
            while pos < i:
                if not cap.grab():
                    return _short(info, pos)
                pos += 1
            ok, frame = cap.read()
            if not ok or frame is None:
                return _short(info, pos)
            pos += 1
            last_i, last = i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            yield last
    finally:
        cap.release()


OPENCV_SEEK_BACKOFF = 16


def _worth_seeking(i: int, pos: int, keys: list[int] | None) -> bool:
    if not keys:
        return i - pos > SEEK_DISTANCE
    # OpenCV's FFmpeg backend (CvCapture_FFMPEG::seek) aims 16 frames before the target and decodes forward
    # from the keyframe at or before that point, so that keyframe is where a seek's decoding really starts.
    k = keys[max(bisect.bisect_right(keys, max(i - OPENCV_SEEK_BACKOFF, 0)) - 1, 0)]
    return k - pos > SEEK_MIN_GAIN


_DEMUX_CACHE: dict[tuple, tuple[int, list[int] | None]] = {}


def keyframes(path: str | Path) -> list[int] | None:
    """Indices of the keyframes of a container's video stream (see :func:`demux_index`), or None."""
    return demux_index(path)[1]


def demux_index(path: str | Path) -> tuple[int, list[int] | None]:
    """(packet count, keyframe indices) of a container's video stream from a demux-only pass (no decoding).

    (0, None) when OpenCV cannot read raw packets. Keyframe indices are in packet (decode) order, within a
    frame or two of display order when the stream has B-frames: close enough to decide whether a seek pays.
    """
    import cv2

    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key in _DEMUX_CACHE:
        return _DEMUX_CACHE[key]
    n, found = 0, None
    try:
        cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    except cv2.error:
        cap = None
    if cap is not None and cap.isOpened():
        found = []
        while cap.grab():
            if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                found.append(n)
            n += 1
        found = found or None
    if cap is not None:
        cap.release()
    if len(_DEMUX_CACHE) >= 64:
        _DEMUX_CACHE.pop(next(iter(_DEMUX_CACHE)))
    _DEMUX_CACHE[key] = (n, found)
    return n, found


def _seek(cap, i: int, fps: float) -> bool:
    import cv2

    if not cap.set(cv2.CAP_PROP_POS_FRAMES, i):
        return False
    if int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) != i:
        return False
    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
    # POS_MSEC is the timestamp of the last decoded frame (i - 1 after a seek to i); allow one frame of slack.
    return ms is None or ms <= 0 and i <= 1 or abs(ms - (i - 1) * 1000.0 / fps) <= 1000.0 / fps + 1.0


def _short(info: VideoInfo, pos: int) -> None:
    log.warning("[EmoVid] %s ended after %d frames although its header says %d (truncated file?); "
                "returning the frames that exist", info.path, pos, info.frames)
    return None


def read_frames(
    path: str | Path,
    options: DecodeOptions | None = None,
    *,
    background: Sequence[int] = (0, 0, 0),
    indices: Sequence[int] | None = None,
    fps: float | None = None,
    info: VideoInfo | None = None,
    max_bytes: int | None = None,
    progress: bool = True,
    **decode,
) -> np.ndarray:
    """All selected frames as one ``[T, H, W, 3]`` uint8 array; same options as :func:`iter_frames`.

    Checks the memory the frames will take as a float IMAGE before decoding anything (``max_bytes``,
    default half of available RAM). Raises ValueError when nothing is selected or decoded.
    """
    opts = DecodeOptions.of(options, **decode)
    _check_crop(opts.crop)
    bg = _check_background(background)
    info = info or probe(path, fps=fps)
    idx = _select(info, indices, opts)
    w, h = output_size(info, opts.size)
    if not idx:
        raise ValueError(f"no frames selected from {str(info.path)!r}; check indices")
    check_memory(len(idx), w, h, info.path, max_bytes)
    # Fill a preallocated array: stacking a list would hold every frame twice at the peak.
    out = np.empty((len(idx), h, w, 3), dtype=np.uint8)
    n = 0
    with runtime.progress_bar(len(idx) if progress else 0, f"decode {info.path.name}") as bar:
        for frame in _iter_planned(info, idx, (w, h), opts.crop, bg):
            out[n] = frame
            n += 1
            if progress:
                bar.update(1)
    if n == 0:
        raise ValueError(f"video {str(info.path)!r} produced no frames (corrupt or empty stream); re-export it")
    if n < len(idx):
        # The stream ended before its header said it would; keep the 4n+1 promise on what was decoded.
        n = wan_frame_count(n) if opts.wan_4n1 else n
        return out[:n].copy()
    return out


@dataclass
class LoadedVideo:
    """Frames decoded from one source with a set of :class:`DecodeOptions`."""

    info: VideoInfo
    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float  # rate of the returned frames (DecodeOptions.output_fps)
    indices: list[int]  # the source frame each returned frame shows

    def summary(self) -> str:
        h, w = self.frames.shape[1:3]
        return f"{self.info.describe()} -> {len(self.frames)} frames {w}x{h} at {self.fps:.3f} fps"


def load_video(
    path: str | Path,
    options: DecodeOptions | None = None,
    *,
    info: VideoInfo | None = None,
    max_bytes: int | None = None,
    progress: bool = True,
    **decode,
) -> LoadedVideo:
    """:func:`read_frames` plus what callers report about the result: its rate and the source indices."""
    opts = DecodeOptions.of(options, **decode)
    info = info or probe(path)
    frames = read_frames(path, opts, info=info, max_bytes=max_bytes, progress=progress)
    return LoadedVideo(info, frames, opts.output_fps(info.fps), opts.plan(info)[: len(frames)])


def frames_to_image(frames: np.ndarray):
    """uint8 ``[T, H, W, C]`` frames -> ComfyUI IMAGE (torch float32 in 0..1, same shape)."""
    import torch

    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"frames must be uint8 [T, H, W, 3|4], got {arr.dtype} {list(arr.shape)}")
    return torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32).mul_(1.0 / 255.0)


def image_to_uint8(image) -> np.ndarray:
    """ComfyUI IMAGE (torch or numpy float in 0..1, any leading shape) -> uint8 numpy, rounded."""
    if hasattr(image, "detach"):
        image = image.detach().to("cpu").float().numpy()
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"image must be float in 0..1 or uint8, got dtype {arr.dtype}")
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ------------------------------------------------------------------------------------------------- encoding


def _as_frame(frame, i: int) -> np.ndarray:
    """One frame to encode, checked exactly as Frame Attributes checks it (NaN/inf/out-of-range floats refused)."""
    from .frame_check import check_frame, check_values

    if hasattr(frame, "detach"):
        frame = frame.detach().to("cpu")
        frame = (frame.float() if frame.dtype.is_floating_point else frame).numpy()  # bfloat16 has no numpy dtype
    arr = np.asarray(frame)
    check_frame(arr, i)
    check_values(arr, i)
    return image_to_uint8(arr)


def _frame_source(frames) -> Iterable:
    """Accept a [T, H, W, C] array/tensor or any iterable of [H, W, C] frames."""
    if hasattr(frames, "detach") or isinstance(frames, np.ndarray):
        shape = tuple(frames.shape)
        if len(shape) != 4 or shape[-1] not in (3, 4):
            raise ValueError(f"frames have shape {list(shape)}; expected [T, H, W, 3] or [T, H, W, 4] (a ComfyUI IMAGE batch)")
        if shape[0] == 0:
            raise ValueError("frames are empty (0 frames); nothing to write")
        if isinstance(frames, np.ndarray) and not (frames.dtype == np.uint8 or np.issubdtype(frames.dtype, np.floating)):
            raise ValueError(f"frames have dtype {frames.dtype}; use uint8 0..255 or float 0..1")
    elif isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
        raise ValueError(f"frames must be a [T, H, W, C] array/tensor or an iterable of frames, got {type(frames).__name__}")
    return frames


def _check_fps(fps) -> float:
    try:
        f = float(fps)
    except (TypeError, ValueError):
        f = float("nan")
    if not math.isfinite(f) or f <= 0 or f > 1000:
        raise ValueError(f"fps={fps!r} must be a number in (0, 1000], e.g. 16 for Wan2.1")
    return f


def _format_of(path: Path, format: str | None) -> str:
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt == "auto" or not fmt:
        fmt = path.suffix.lstrip(".").lower() or "mp4"
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"video format {fmt!r} (from {str(path)!r}) is not supported; use one of {', '.join(WRITE_FORMATS)}")
    return fmt


def _diffused_ms(durations: Sequence[float], unit: int, minimum: int) -> list[int]:
    """Round frame durations to multiples of ``unit`` ms carrying the rounding error forward, so the total
    (and so the average frame rate) stays right even where single frames cannot be exact (GIF: 10 ms)."""
    out, err = [], 0.0
    for d in durations:
        want = d + err
        q = max(minimum, int(round(want / unit)) * unit)
        err = want - q
        out.append(q)
    return out


def write_video(
    frames,
    path: str | Path,
    fps: float,
    format: str | None = None,
    *,
    quality: int = 80,
    durations_ms: Sequence[float] | None = None,
    loop: int = 0,
    background: Sequence[int] = (0, 0, 0),
) -> Path:
    """Write frames to ``path`` atomically and return it.

    ``frames``: ``[T, H, W, 3|4]`` uint8 numpy, float 0..1 numpy/torch, or an iterable of ``[H, W, C]`` frames.
    ``format`` (default from the suffix): "mp4" (H.264 yuv420p, plays in browsers; odd sizes padded to even),
    "webm" (VP9), "gif", "webp" (animated; RGBA keeps transparency). ``quality`` 1..100 (higher is better):
    mp4 CRF = 51·(1 − q/100), webm CRF = 63·(1 − q/100), WebP quality q (100 = lossless); GIF ignores it.
    ``durations_ms`` gives per-frame times for gif/webp (uneven timing), ``loop`` their loop count (0 = forever).
    mp4/webm have no alpha: RGBA frames are composited onto ``background``.
    """
    path = Path(path).expanduser()
    fmt = _format_of(path, format)
    fps = _check_fps(fps)
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"quality={quality!r} must be 1..100 (higher is better)")
    if int(loop) < 0:
        raise ValueError(f"loop={loop!r} must be >= 0 (0 loops forever)")
    bg = _check_background(background)
    source = _frame_source(frames)
    if durations_ms is not None:
        if fmt not in ("gif", "webp"):
            raise ValueError(f"durations_ms only applies to gif/webp, not {fmt}; resample the frames for a constant-rate video")
        durations_ms = [float(d) for d in durations_ms]
        if any(not math.isfinite(d) or d <= 0 for d in durations_ms):
            raise ValueError("durations_ms must all be positive numbers of milliseconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.{fmt}")
    try:
        if fmt in ("mp4", "webm"):
            _write_ffmpeg(source, tmp, fps, fmt, q, bg)
        else:
            _write_pillow(source, tmp, fps, fmt, q, durations_ms, int(loop))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``$EMOVID_FFMPEG`` if set, else the one shipped by imageio-ffmpeg."""
    exe = os.environ.get("EMOVID_FFMPEG")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RuntimeError("writing mp4/webm needs ffmpeg: `pip install imageio-ffmpeg` or set EMOVID_FFMPEG to an ffmpeg binary") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _write_ffmpeg(source, tmp: Path, fps: float, fmt: str, q: int, bg) -> None:
    it = iter(source)
    try:
        first = _as_frame(next(it), 0)
    except StopIteration:
        raise ValueError("frames are empty (0 frames); nothing to write") from None
    h, w = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    if fmt == "mp4":
        codec = ["-c:v", "libx264", "-preset", "medium", "-crf", str(round(51 * (1 - q / 100))), "-movflags", "+faststart", "-f", "mp4"]
    else:
        codec = ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", str(round(63 * (1 - q / 100))), "-deadline", "good",
                 "-cpu-used", "4", "-row-mt", "1", "-f", "webm"]
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{rate.numerator}/{rate.denominator}", "-i", "-",
        # yuv420p subsamples chroma 2x2, so H.264/VP9 need even sizes: pad the odd row/column (black).
        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", *codec, str(tmp),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf)
        try:
            frame, i = first, 0
            while True:
                if frame.shape[:2] != (h, w):
                    raise ValueError(f"frame {i} is {frame.shape[1]}x{frame.shape[0]}, but frame 0 is {w}x{h}; all frames must have one size")
                if frame.shape[-1] == 4:
                    frame = _composite(frame, bg)
                runtime.check_interrupted()
                try:
                    proc.stdin.write(np.ascontiguousarray(frame).tobytes())
                except BrokenPipeError:
                    break  # ffmpeg died; its exit status and stderr below say why
                try:
                    frame, i = _as_frame(next(it), i + 1), i + 1
                except StopIteration:
                    break
            proc.stdin.close()
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if rc != 0:
            errf.seek(0)
            msg = errf.read().decode("utf-8", "replace").strip()[-1500:]
            raise RuntimeError(f"ffmpeg failed writing {fmt} (exit {rc}): {msg or 'no message'}")


def _write_pillow(source, tmp: Path, fps: float, fmt: str, q: int, durations_ms, loop: int) -> None:
    from PIL import Image

    arrays, size = [], None
    for i, f in enumerate(source):
        arr = _as_frame(f, i)
        if size is None:
            size = arr.shape[:2]
        elif arr.shape[:2] != size:
            raise ValueError(f"frame {i} is {arr.shape[1]}x{arr.shape[0]}, but frame 0 is {size[1]}x{size[0]}; all frames must have one size")
        if arr.shape[-1] != arrays[0].shape[-1] if arrays else False:
            raise ValueError(f"frame {i} has {arr.shape[-1]} channels, but frame 0 has {arrays[0].shape[-1]}; use all RGB or all RGBA")
        runtime.check_interrupted()
        arrays.append(arr)
    if not arrays:
        raise ValueError("frames are empty (0 frames); nothing to write")
    if durations_ms is not None and len(durations_ms) != len(arrays):
        raise ValueError(f"durations_ms has {len(durations_ms)} entries for {len(arrays)} frames; give one per frame")
    raw = durations_ms if durations_ms is not None else [1000.0 / fps] * len(arrays)
    alpha = arrays[0].shape[-1] == 4
    if fmt == "gif":
        if min(raw) < MIN_GIF_FRAME_MS:
            log.warning("[EmoVid] GIF frames shorter than %d ms play slower in browsers; writing %d ms frames "
                        "(use mp4/webm/webp for more than %d fps)", MIN_GIF_FRAME_MS, MIN_GIF_FRAME_MS, 1000 // MIN_GIF_FRAME_MS)
        images = _gif_frames(arrays)
        # disposal=2 restores the background between frames so transparent areas do not show old frames.
        extra = {"disposal": 2, "transparency": GIF_TRANSPARENT} if alpha else {}
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=_diffused_ms(raw, 10, MIN_GIF_FRAME_MS),
                       loop=loop, optimize=False, **extra)  # fmt: skip
    else:
        images = [Image.fromarray(a, "RGBA" if alpha else "RGB") for a in _keep_repeats(arrays, q)]
        images[0].save(tmp, format="WEBP", save_all=True, append_images=images[1:], duration=_diffused_ms(raw, 1, 1), loop=loop,
                       lossless=q >= 100, quality=q if q < 100 else 100, method=4)  # fmt: skip


# GIF palette slots: 0..253 hold the frame's colours, 254 repeats the colour of one marker pixel (see
# _gif_frames), 255 is the transparent index.
GIF_MARKER, GIF_TRANSPARENT = 254, 255


def _gif_frames(arrays: list[np.ndarray]):
    """RGB(A) frames -> palette images that Pillow writes one GIF frame each.

    Pillow folds a frame identical to the previous one into it (adding the durations), which would change the
    frame count a caller wrote. Slot 254 holds the same colour as one opaque marker pixel, so pointing that pixel
    at slot 254 changes the index data but not the picture: a repeated frame is kept, looking the same.
    GIF has 1-bit alpha: pixels with alpha < 128 become transparent.
    """
    from PIL import Image

    out, prev_key, prev_marked = [], None, False
    for arr in arrays:
        p = Image.fromarray(np.ascontiguousarray(arr[..., :3])).quantize(
            colors=GIF_MARKER, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        idx = np.array(p, dtype=np.uint8)
        pal = (p.getpalette() or [])[: GIF_MARKER * 3]
        pal += [0] * (GIF_MARKER * 3 - len(pal))
        if arr.shape[-1] == 4:
            idx[arr[..., 3] < 128] = GIF_TRANSPARENT
        opaque = np.flatnonzero(idx.ravel() != GIF_TRANSPARENT)
        marker = int(opaque[0]) if opaque.size else None
        c = int(idx.flat[marker]) if marker is not None else -1
        colour = pal[3 * c : 3 * c + 3] if c >= 0 else [0, 0, 0]
        palette = pal + colour + [0, 0, 0]
        key = (idx.tobytes(), bytes(palette))
        marked = key == prev_key and marker is not None and not prev_marked
        if marked:
            idx.flat[marker] = GIF_MARKER
        prev_key, prev_marked = key, marked
        im = Image.fromarray(idx, "P")
        im.putpalette(palette)
        out.append(im)
    return out


def _keep_repeats(arrays: list[np.ndarray], quality: int) -> list[np.ndarray]:
    """libwebp folds a frame equal (or, when lossy, nearly equal) to the previous one into it. Nudge the blue
    channel of one opaque pixel of such a frame just past libwebp's tolerance (alternating frames, so three
    equal frames stay three) to keep the frame count the caller wrote."""
    # libwebp's lossy comparison tolerance: 31 * (1 - sqrt(q / 100)) + 1 levels (anim_encode.c QualityToMaxDiff).
    step = 1 if quality >= 100 else int(31 * (1 - math.sqrt(quality / 100)) + 1) + 1
    out = []
    for i, arr in enumerate(arrays):
        if i and np.array_equal(arr, arrays[i - 1]) and np.array_equal(out[-1], arr):
            opaque = np.flatnonzero(arr[..., 3].ravel() > 0) if arr.shape[-1] == 4 else np.array([0])
            if opaque.size:
                arr = arr.copy()
                y, x = divmod(int(opaque[0]), arr.shape[1])
                v = int(arr[y, x, 2])
                arr[y, x, 2] = v - step if v >= step else v + step
        out.append(arr)
    return out


# ---------------------------------------------------------------------------------------- output folder saves

# MIME-style format names as VideoHelperSuite puts them in its "gifs" preview entries.
MIME_TYPES = {"mp4": "video/h264-mp4", "webm": "video/webm", "gif": "image/gif", "webp": "image/webp"}


@dataclass(frozen=True)
class SavedVideo:
    """A video written under an output root: where it is, and the entry a ComfyUI client needs to fetch it."""

    path: Path
    filename: str
    subfolder: str  # relative to the output root, "/"-separated, "" at the top
    format: str  # "mp4" | "webm" | "gif" | "webp"
    frames: int
    fps: float
    width: int
    height: int

    @property
    def mime(self) -> str:
        return MIME_TYPES[self.format]

    def ui_entry(self, folder_type: str = "output") -> dict:
        """{filename, subfolder, type, format}: what ``GET /view`` needs, plus the MIME-style format."""
        return {"filename": self.filename, "subfolder": self.subfolder, "type": folder_type, "format": self.mime}

    def summary(self) -> str:
        where = Path(self.subfolder, self.filename).as_posix()
        return f"saved {self.frames} frames {self.width}x{self.height} at {self.fps:g} fps -> {where}"


def output_file(filename_prefix: str, ext: str, root: str | Path | None = None) -> tuple[Path, str, str]:
    """Next free ``<root>/<subfolders>/<name>_00001.<ext>`` for a ComfyUI-style prefix such as ``EmoVid/video``.

    The counter is one more than the highest ``<name>_NNNNN.*`` already there, whatever the extension, so a
    gif and an mp4 of the same prefix never share a number. A prefix that would leave ``root`` (absolute,
    ``..``) is refused. Returns (path, subfolder, filename).
    """
    root = Path(root) if root is not None else runtime.output_directory()
    prefix = str(filename_prefix).strip().replace("\\", "/")
    if not prefix or prefix.endswith("/"):
        raise ValueError(f"filename_prefix {filename_prefix!r} needs a file name part, e.g. 'EmoVid/video'")
    if prefix.startswith("/") or re.match(r"^[A-Za-z]:", prefix):
        raise ValueError(f"filename_prefix {filename_prefix!r} is absolute; give a path inside the output folder, e.g. 'EmoVid/video'")
    sub, _, name = prefix.rpartition("/")
    root_abs = Path(os.path.abspath(root))
    folder = Path(os.path.abspath(root_abs / sub)) if sub else root_abs
    if os.path.commonpath([root_abs, folder]) != str(root_abs) or name in (".", ".."):
        raise ValueError(f"filename_prefix {filename_prefix!r} points outside the output folder {str(root_abs)!r}; remove the '..' parts")
    folder.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(re.escape(name) + r"_(\d{5,})\.[A-Za-z0-9]+$")
    counter = 1 + max((int(m.group(1)) for f in os.listdir(folder) if (m := pattern.match(f))), default=0)
    filename = f"{name}_{counter:05d}.{ext}"
    subfolder = folder.relative_to(root_abs).as_posix()
    return folder / filename, "" if subfolder == "." else subfolder, filename


def save_video(
    frames,
    filename_prefix: str,
    fps: float,
    format: str = "mp4",
    *,
    quality: int = 80,
    root: str | Path | None = None,
    **kwargs,
) -> SavedVideo:
    """Write ``frames`` under the output folder with a ComfyUI-style counter (see :func:`output_file`)."""
    fmt = _format_of(Path(f"x.{format}"), format)
    shape = tuple(getattr(frames, "shape", ()))
    if len(shape) != 4:
        raise ValueError(f"frames have shape {list(shape)}; expected [T, H, W, 3|4] (a ComfyUI IMAGE batch)")
    path, subfolder, filename = output_file(filename_prefix, fmt, root)
    write_video(frames, path, fps, fmt, quality=quality, **kwargs)
    return SavedVideo(path, filename, subfolder, fmt, int(shape[0]), float(fps), int(shape[2]), int(shape[1]))
