"""Decoding one dataset clip with VideoHelperSuite-style controls, checked for Wan before anything is read.

The options themselves are :class:`emovid_core.video_io.DecodeOptions` (one declaration for the whole pack).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..video_io import WAN_MULTIPLE, DecodeOptions
from .format import Clip
from .table import Dataset

__all__ = ["WAN_MULTIPLE", "DecodeOptions", "DecodedClip", "decode_clip"]


@dataclass
class DecodedClip:
    clip: Clip
    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float  # rate of the returned frames
    indices: list[int]  # source frame indices
    source_size: tuple[int, int] = (0, 0)  # (W, H) of the file, so callers know whether frames were resized
    source_frames: int = 0  # frames in the file (probed), so callers know which frames were left out


def decode_clip(ds: Dataset, clip: Clip, options: DecodeOptions | None = None, *,
                max_bytes: int | None = None) -> DecodedClip:
    """Decode ``clip`` of ``ds`` with ``options``; the memory guard (``max_bytes``) runs before any frame is decoded."""
    from .. import video_io

    opts = (options or DecodeOptions()).check().check_wan_size()
    path = ds.clip_file(clip)
    info = video_io.probe(path)
    if info.frames < 1:
        raise ValueError(f"clip {clip.clip_id!r} ({path}) has no frames; re-export it or drop its row")
    if not opts.plan(info):
        raise ValueError(f"clip {clip.clip_id!r}: the decode settings select no frames ({info.frames} in the clip); "
                         "lower skip_first/every_nth or turn off the 4n+1 trim")
    loaded = video_io.load_video(path, opts, info=info, max_bytes=max_bytes, progress=False)
    return DecodedClip(clip, loaded.frames, loaded.fps, loaded.indices, (info.width, info.height), int(info.frames))
