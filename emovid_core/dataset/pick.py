"""Drawing one clip for a graph or a script: filters, a pick mode, the decode, and the clip's paper attributes.

``pick_clip`` is what EmoVid Sample Clip runs. The modes:

- ``random``: one clip of the filtered pool, drawn by ``seed``;
- ``balanced``: position ``index`` of the seed-shuffled round-robin over type × emotion (:func:`balanced_order`);
- ``benchmark``: position ``index`` of the benchmark set (the table's ``test`` split, else the paper's rule);
- ``index``: the ``index``-th clip by id.

Attributes come from the index when it has them. Otherwise they are measured from the frames just decoded
when those hold every 20th source frame at source size (the paper's sampling), else from the file, decoding
only frames 0, 20, 40, … (seeking). Decoded clips are cached (a few, keyed by the file's and the table's times),
so re-running a graph with the same inputs decodes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..video_io import DecodeOptions
from .decode import DecodedClip, decode_clip
from .filters import Filter, apply_filter
from .format import Clip
from .sampling import balanced_order, benchmark_clips, sample_random
from .table import Dataset

PICK_MODES = ("random", "balanced", "benchmark", "index")
ATTRIBUTE_STRIDE = 20  # the paper's: every 20th frame

_CACHE: "OrderedDict[tuple, PickedClip]" = OrderedDict()
_CACHE_SIZE = 4


@dataclass(frozen=True)
class PickedClip:
    clip: Clip
    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float  # rate of the returned frames
    brightness: float  # the paper's B, C, H of the whole clip (not of the returned frames)
    colorfulness: float
    hue: int
    attributes_from: str  # "index", "decoded frames" or "file"


def choose_clip(ds: Dataset, filters: Filter | None = None, mode: str = "random", seed: int = 0, index: int = 0) -> Clip:
    """The clip ``mode`` picks from the clips of ``ds`` that pass ``filters``."""
    if mode not in PICK_MODES:
        raise ValueError(f"mode {mode!r}: use one of {', '.join(PICK_MODES)}")
    flt = filters or Filter()
    pool, _ = apply_filter(benchmark_clips(ds.clips) if mode == "benchmark" else ds.clips, flt)
    if mode == "random":
        return sample_random(pool, 1, seed)[0]
    ordered = balanced_order(pool, seed) if mode == "balanced" else pool
    if index >= len(ordered):
        raise ValueError(f"index {index} is past the {len(ordered)} clip(s) left after the filters (mode {mode}); use 0..{len(ordered) - 1}")
    return ordered[index]


def pick_clip(ds: Dataset, filters: Filter | None = None, mode: str = "random", seed: int = 0, index: int = 0,
              options: DecodeOptions | None = None) -> PickedClip:
    """Choose a clip (:func:`choose_clip`), decode it with ``options`` and give its paper attributes."""
    opts = (options or DecodeOptions()).check().check_wan_size()
    clip = choose_clip(ds, filters, mode, seed, index)
    path = ds.clip_file(clip)  # a missing file: the clip id, its path and "re-index", not a raw [Errno 2]
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, ds.mtime_ns, clip.clip_id, opts)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    decoded = decode_clip(ds, clip, opts)
    picked = PickedClip(clip, decoded.frames, decoded.fps, *_attributes(ds, decoded))
    _CACHE[key] = picked
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return picked


def _attributes(ds: Dataset, decoded: DecodedClip) -> tuple[float, float, int, str]:
    clip = decoded.clip
    if clip.brightness is not None and clip.colorfulness is not None and clip.hue is not None:
        return float(clip.brightness), float(clip.colorfulness), int(clip.hue), "index"
    from .indexer import measure_clip, paper_attributes

    picked = _paper_frames(decoded)
    if picked is not None:
        frames, wanted = picked
        a = paper_attributes(frames, wanted, ATTRIBUTE_STRIDE)
        return float(a.brightness), float(a.colorfulness), int(a.hue), "decoded frames"
    m = measure_clip(ds.clip_file(clip), ATTRIBUTE_STRIDE)
    return float(m["brightness"]), float(m["colorfulness"]), int(m["hue"]), "file"


def _paper_frames(decoded: DecodedClip) -> tuple[list[np.ndarray], list[int]] | None:
    """The decoded frames the paper pools (source frames 0, 20, 40, … at source size), or None when the decode
    skipped, resampled past or resized any of them (then they must be read from the file)."""
    w, h = decoded.source_size
    if decoded.frames.shape[1:3] != (h, w) or not decoded.indices or decoded.source_frames < 1:
        return None
    position = {src: i for i, src in reversed(list(enumerate(decoded.indices)))}
    wanted = list(range(0, decoded.source_frames, ATTRIBUTE_STRIDE))
    if any(i not in position for i in wanted):
        return None
    return [decoded.frames[position[i]] for i in wanted], wanted
