"""Training data: which clips (filters, the paper's mix), how their frames are prepared, and the on-disk cache.

Frames follow DiffSynth-Studio: the first ``frames`` frames consecutively at the native rate, cut to the largest
4k+1, resized with the aspect ratio kept and centre-cropped to W×H (``emovid_core.dataset.decode`` does exactly
that with ``max_frames`` + ``wan_4n1`` + a size). A clip shorter than ``frames`` is cut to its own largest 4k+1
(DiffSynth's behaviour) or skipped (``short_clips="skip"``); the selection says how many, before any model loads.

The cache holds, per clip, the VAE latents (normalised as the pipeline's latent space), the umt5 prompt embedding
(its padding rows are zeros and are stored trimmed) and for I2V the CLIP image features and the first-frame
condition. Its key covers the clip file (path, size, mtime), the prompt, size, frame count and the encoders'
files, so a changed clip, prompt or model is encoded again and nothing stale is ever reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import runtime
from ..dataset.format import Clip
from ..dataset.table import Dataset
from .config import TrainConfig

log = logging.getLogger("EmoVid")

CACHE_FORMAT = 1
MAX_SEQUENCE_LENGTH = 512  # umt5 prompt length of Wan2.1 (the pipelines pad to it)
RAM_BUDGET = 1 << 30


@dataclass
class TrainItem:
    clip: Clip
    path: Path
    prompt: str
    frames: int  # frames the clip gives (4k+1) under the settings


@dataclass
class Selection:
    """The clips a run trains on, with what happened on the way (for the report and training.json)."""

    dataset: Dataset
    items: list[TrainItem]
    trace: str
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # clip ids

    @property
    def clip_ids(self) -> list[str]:
        return [it.clip.clip_id for it in self.items]

    def summary(self) -> str:
        text = f"{len(self.items)} clip(s) from {self.trace}"
        return text + ("; " + "; ".join(self.notes) if self.notes else "")


def open_dataset(root: str | Path, metadata: str | Path | None = None, import_type: str | None = None) -> Dataset:
    """An EmoVid dataset root (its index or metadata table), or a DiffSynth-Studio folder (``metadata.csv``)."""
    from ..dataset.table import find_metadata, load_dataset

    root = Path(root).expanduser()
    if metadata is None and root.is_dir() and (root / "metadata.csv").is_file():
        try:
            find_metadata(root)
        except FileNotFoundError:
            from ..dataset.importers import import_diffsynth

            clips, rejects = import_diffsynth(root / "metadata.csv", default_type=import_type)
            if rejects:
                log.warning("[EmoVid] %d row(s) of %s not usable, first: %s", len(rejects), root / "metadata.csv", rejects[0])
            clips.sort(key=lambda c: c.clip_id)
            return Dataset(root=root, metadata_path=root / "metadata.csv", clips=clips, rejects=rejects,
                           columns=["clip_id", "path", "type", "emotion", "caption"])
    return load_dataset(root, metadata)


def training_prompt(clip: Clip, config: TrainConfig) -> str:
    """Caption + the paper's emotion sentence (``emovid dataset export`` writes the same), or the caption alone."""
    from .. import prompts

    if not config.emotion_sentence:
        return clip.caption
    return prompts.build_prompt(clip.caption, clip.emotion, template=config.template or prompts.PAPER_TEMPLATE)


def select_clips(ds: Dataset, config: TrainConfig, flt=None, mix: str | None = None, mix_seed: int = 0,
                 progress: bool = True) -> Selection:
    """Filter (and with ``mix="paper"`` draw the paper's training mix), then check every clip's length."""
    from ..dataset import sampling
    from ..dataset.filters import apply_filter

    clips, trace = apply_filter(ds.clips, flt)
    text = " → ".join([f"{trace[0][1]} clips"] + [f"{name} {n}" for name, n in trace[1:]])
    notes: list[str] = []
    if mix == "paper":
        bench = sampling.benchmark_clips(ds.clips, seed=mix_seed)
        clips, report = sampling.training_mix(clips, {c.clip_id for c in bench}, seed=mix_seed)
        notes.append(str(report))
        text += f" → training mix {len(clips)}"
        if not clips:
            raise ValueError(f"the paper's training mix left no clips ({report}); drop --mix or widen the filters")
    elif mix:
        raise ValueError(f"--mix {mix!r} is not 'paper'")
    items, skipped, short, lengths = [], [], 0, []
    with runtime.progress_bar(len(clips) if progress else 0, "check clips") as bar:
        for clip in clips:
            path = ds.clip_file(clip)
            n = clip.frames if clip.frames else _probe_frames(path)
            if n < 1:
                raise ValueError(f"clip {clip.clip_id!r} ({path}) has no frames; re-export it or drop its row")
            if n < config.frames:
                short += 1
                if config.short_clips == "skip":
                    skipped.append(clip.clip_id)
                    bar.update(1)
                    continue
            used = _wan_frames(min(n, config.frames))
            lengths.append(used)
            items.append(TrainItem(clip, path, training_prompt(clip, config), used))
            bar.update(1)
    if short:
        other = "skip" if config.short_clips == "cut" else "cut"
        verb = "skipped" if config.short_clips == "skip" else f"cut to their largest 4k+1 (down to {min(lengths or [0])} frames)"
        notes.append(f"{short} of {len(clips)} clip(s) have fewer than {config.frames} frames: {verb} "
                     f"(--short-clips {other} to {other} them instead, or lower --frames)")
    if not items:
        raise ValueError(f"no clip has {config.frames} frames ({len(clips)} selected, all shorter); lower --frames or use "
                         "--short-clips cut")
    return Selection(ds, items, text, notes, skipped)


def _wan_frames(n: int) -> int:
    from ..video_io import wan_frame_count

    return wan_frame_count(n)


def _probe_frames(path: Path) -> int:
    from ..video_io import probe

    return int(probe(path).frames)


def prepare_frames(ds: Dataset, item: TrainItem, config: TrainConfig):
    """uint8 ``[T, H, W, 3]`` frames of ``item`` (first ``frames`` frames, 4k+1, resized + centre-cropped)."""
    from ..dataset.decode import DecodeOptions, decode_clip

    opts = DecodeOptions(max_frames=config.frames, width=config.width, height=config.height, wan_4n1=True)
    return decode_clip(ds, item.clip, opts).frames


# -------------------------------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    from ..wan.tiny import cache_root

    return cache_root() / "train"


class LatentCache:
    """Encoded clips on disk, one safetensors file per (clip, prompt, size, frames, encoders)."""

    def __init__(self, folder: str | Path, identity: str, kind: str, config: TrainConfig):
        self.folder = Path(folder).expanduser() / identity
        self.identity, self.kind, self.config = identity, kind, config
        self.dtype = "float32" if config.dtype == "float32" else "bfloat16"
        # Entries already read stay in RAM up to this many bytes (the tiny/small runs of tests and benchmarks fit
        # whole; a real 480p run reads each ~10 MB entry from disk, which is small next to a multi-second step).
        self.ram_budget = RAM_BUDGET
        self._ram: dict[Path, dict] = {}
        self._ram_bytes = 0

    def path(self, item: TrainItem) -> Path:
        st = item.path.stat()
        payload = {"format": CACHE_FORMAT, "clip": item.clip.clip_id, "file": str(item.path.resolve()), "size": st.st_size,
                   "mtime": st.st_mtime_ns, "prompt": item.prompt, "w": self.config.width, "h": self.config.height,
                   "frames": item.frames, "kind": self.kind, "dtype": self.dtype}
        key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item.clip.clip_id).strip("._")[:80] or "clip"
        return self.folder / f"{safe}-{key}.safetensors"

    def missing(self, items: list[TrainItem]) -> list[TrainItem]:
        return [it for it in items if not self.path(it).is_file()]

    def encode(self, ds: Dataset, items: list[TrainItem], pipe, device: str, progress: bool = True) -> int:
        """Encode ``items`` with the encoder-only ``pipe`` and write each entry atomically; returns how many."""
        import torch

        from ..atomic import save_safetensors

        dt = getattr(torch, self.dtype)
        done = 0
        with runtime.progress_bar(len(items) if progress else 0, "encode clips") as bar, torch.no_grad():
            for item in items:
                runtime.check_interrupted()
                frames = prepare_frames(ds, item, self.config)
                entry = encode_clip(pipe, frames, item.prompt, self.kind, device)
                meta = {"clip_id": item.clip.clip_id, "prompt": item.prompt, "frames": str(frames.shape[0]),
                        "emovid_cache_format": str(CACHE_FORMAT)}
                save_safetensors({k: v.to("cpu", dt).contiguous() for k, v in entry.items()}, self.path(item), metadata=meta)
                done += 1
                bar.update(1)
        return done

    def load(self, item: TrainItem) -> dict:
        """The cached tensors of ``item``; the prompt embedding padded back to 512 rows with zeros."""
        import torch
        from safetensors.torch import load_file

        p = self.path(item)
        if p in self._ram:
            return self._ram[p]
        try:
            entry = load_file(str(p))
        except FileNotFoundError:
            raise FileNotFoundError(f"cache entry for clip {item.clip.clip_id!r} is missing ({p}); it was removed during "
                                    "training: run the same command again to re-encode it") from None
        emb = entry["prompt_embeds"]
        if emb.shape[0] < MAX_SEQUENCE_LENGTH:
            entry["prompt_embeds"] = torch.cat([emb, emb.new_zeros(MAX_SEQUENCE_LENGTH - emb.shape[0], emb.shape[1])])
        size = sum(t.numel() * t.element_size() for t in entry.values())
        if self._ram_bytes + size <= self.ram_budget:  # entries are never modified in place by the loop
            self._ram[p] = entry
            self._ram_bytes += size
        return entry


def encode_clip(pipe, frames, prompt: str, kind: str, device: str) -> dict:
    """The tensors training needs for one clip, computed exactly as the diffusers Wan pipelines compute them."""
    import numpy as np
    import torch

    vae = pipe.vae
    video = torch.from_numpy(np.ascontiguousarray(frames)).to(device=device, dtype=torch.float32)
    video = video.permute(3, 0, 1, 2).unsqueeze(0).div_(127.5).sub_(1.0)  # [1, 3, T, H, W] in -1..1
    mean = torch.tensor(vae.config.latents_mean, device=device).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std, device=device).view(1, -1, 1, 1, 1)
    latents = (vae.encode(video.to(vae.dtype)).latent_dist.mode().float() - mean) * inv_std
    emb, _ = pipe.encode_prompt(prompt, do_classifier_free_guidance=False, max_sequence_length=MAX_SEQUENCE_LENGTH,
                                device=device)
    emb = emb[0]
    rows = (emb.abs().sum(-1) != 0).nonzero()
    keep = int(rows.max()) + 1 if len(rows) else 1
    out = {"latents": latents[0], "prompt_embeds": emb[:keep]}
    if kind == "i2v":
        from PIL import Image

        out["image_embeds"] = pipe.encode_image(Image.fromarray(frames[0]), device)[0]
        t, h, w = frames.shape[0], frames.shape[1], frames.shape[2]
        first = video[:, :, 0]
        _, cond = pipe.prepare_latents(first, 1, latents.shape[1], h, w, t, dtype=torch.float32, device=device,
                                       latents=torch.zeros_like(latents))
        out["condition"] = cond[0]
    return out
