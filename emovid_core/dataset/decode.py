"""Decoding one dataset clip with VideoHelperSuite-style controls, checked for Wan before anything is read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .format import Clip
from .table import Dataset

WAN_MULTIPLE = 16


@dataclass
class DecodeOptions:
    """Frame cap, skip, every n-th, target fps (0 = source), size W×H (0×0 = source) and the Wan 4n+1 trim."""

    max_frames: int = 0
    skip_first: int = 0
    every_nth: int = 1
    target_fps: float = 0.0
    width: int = 0
    height: int = 0
    wan_4n1: bool = False
    max_bytes: int | None = None

    def check(self) -> "DecodeOptions":
        for name in ("max_frames", "skip_first"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be 0 or more")
        if int(self.every_nth) < 1:
            raise ValueError(f"every_nth={self.every_nth} must be at least 1")
        if self.target_fps < 0:
            raise ValueError(f"target_fps={self.target_fps} must be 0 (source rate) or positive")
        w, h = int(self.width), int(self.height)
        if (w == 0) != (h == 0):
            raise ValueError(f"size {w}x{h}: set both width and height (multiples of {WAN_MULTIPLE}), or both 0 to keep the source size")
        for name, v in (("width", w), ("height", h)):
            if v and v % WAN_MULTIPLE:
                lo = max(WAN_MULTIPLE, v // WAN_MULTIPLE * WAN_MULTIPLE)
                raise ValueError(f"{name}={v} is not a multiple of {WAN_MULTIPLE}, which Wan2.1 needs "
                                 f"(its VAE downsamples 8× and the DiT patches 2×); use {lo} or {lo + WAN_MULTIPLE}")
        return self

    def read_kwargs(self) -> dict:
        kw: dict = {"skip_first": int(self.skip_first), "every_nth": int(self.every_nth),
                    "max_frames": int(self.max_frames) or None, "target_fps": float(self.target_fps) or None,
                    "wan_4n1": bool(self.wan_4n1)}
        if self.width and self.height:
            kw["size"] = (int(self.width), int(self.height))
        return kw


@dataclass
class DecodedClip:
    clip: Clip
    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float  # rate of the returned frames
    indices: list[int]  # source frame indices


def decode_clip(ds: Dataset, clip: Clip, options: DecodeOptions | None = None) -> DecodedClip:
    """Decode ``clip`` of ``ds`` with ``options``; the memory guard runs before any frame is decoded."""
    from .. import video_io

    opts = (options or DecodeOptions()).check()
    path = ds.clip_file(clip)
    info = video_io.probe(path)
    if info.frames < 1:
        raise ValueError(f"clip {clip.clip_id!r} ({path}) has no frames; re-export it or drop its row")
    kw = opts.read_kwargs()
    idx = video_io.plan_indices(info, kw["skip_first"], kw["every_nth"], kw["max_frames"], kw["target_fps"], kw["wan_4n1"])
    if not idx:
        raise ValueError(f"clip {clip.clip_id!r}: the decode settings select no frames ({info.frames} in the clip); "
                         "lower skip_first/every_nth or turn off the 4n+1 trim")
    frames = video_io.read_frames(path, info=info, max_bytes=opts.max_bytes, progress=False, **kw)
    rate = (float(opts.target_fps) or float(info.fps)) / int(opts.every_nth)
    return DecodedClip(clip, frames, rate, idx)
