"""Export clips as a DiffSynth-Studio training folder: ``OUT/metadata.csv`` (``video,prompt``) + the clips.

The prompt is the clip's caption plus the paper's emotion sentence (:func:`emovid_core.prompts.build_prompt`),
the same text the paper used to evaluate its LoRA. Clips are symlinked (default), hard-linked or copied into
``OUT/<type>/<emotion>/``. DiffSynth's video loader does not read GIF or WebP, so those are converted to MP4
(transparency composited onto black) unless ``convert_animations=False``.

``OUT/emovid_export.json`` records every file the export wrote, so a later export into the same folder refreshes
its own files but refuses (unless ``force``) to replace any other file at a target name, listing them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .. import runtime
from ..atomic import check_outputs, write_error, write_text
from .format import Clip
from .table import Dataset

LINK_MODES = ("symlink", "hardlink", "copy")
FORMATS = ("diffsynth",)
_CONVERT = (".gif", ".webp")
MANIFEST = "emovid_export.json"


@dataclass
class ExportReport:
    out: Path
    metadata: Path
    clips: int
    converted: int
    link: str
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"exported {self.clips} clip(s) ({self.link}, {self.converted} converted to mp4) -> {self.metadata}"
        return text + ("; " + "; ".join(self.notes) if self.notes else "")


def _safe_name(clip_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._") or "clip"


def _place(src: Path, dst: Path, link: str) -> None:
    """Put ``src`` at ``dst`` (replacing it) through a temp name, so a half-made entry never has the final name."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        if link == "symlink":
            os.symlink(os.path.relpath(src, dst.parent), tmp)
        elif link == "hardlink":
            try:
                os.link(src, tmp)
            except OSError as exc:
                raise ValueError(f"cannot hard-link {src} into {dst.parent} ({exc.strerror}); "
                                 "use --link copy or symlink (hard links need the same filesystem)") from None
        else:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:  # a full disk: no half-copied hidden file stays behind
        raise write_error(dst, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def _own_files(out: Path) -> set[str]:
    """The files an earlier export wrote into ``out`` (relative POSIX paths), from its manifest."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return set()
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if files is None:  # manifests from before files were recorded: the videos its metadata.csv lists
        try:
            with open(out / "metadata.csv", newline="") as fh:
                files = [row.get("video", "") for row in csv.DictReader(fh)]
        except (OSError, csv.Error):
            files = []
    return {str(f) for f in files} | {"metadata.csv", MANIFEST}


def _target(clip: Clip, src: Path, convert_animations: bool) -> Path:
    suffix = ".mp4" if convert_animations and src.suffix.lower() in _CONVERT else src.suffix.lower()
    return Path(clip.type) / clip.emotion / f"{_safe_name(clip.clip_id)}{suffix}"


def export_diffsynth(ds: Dataset, clips: Sequence[Clip], out: str | Path, link: str = "symlink",
                     convert_animations: bool = True, template: str | None = None, description: str = "",
                     force: bool = False) -> ExportReport:
    """Write a DiffSynth-Studio dataset folder for ``clips`` (from ``ds``) under ``out``.

    Files at target names that an earlier export did not write are replaced only with ``force``.
    """
    from .. import prompts, video_io

    if link not in LINK_MODES:
        raise ValueError(f"link={link!r}: use one of {', '.join(LINK_MODES)}")
    if not clips:
        raise ValueError("nothing to export: the selection is empty")
    out = Path(out).expanduser()
    if out.resolve() == ds.root.resolve():
        raise ValueError(f"export folder {str(out)!r} is the dataset root; choose a new folder (its metadata.csv would mix with your clips)")
    if (out / "metadata.csv").exists() and not (out / MANIFEST).exists() and not force:
        raise ValueError(f"{out / 'metadata.csv'} exists and was not written by an EmoVid export; choose a new folder "
                         "so your DiffSynth dataset is not overwritten (or pass --force to replace its files)")
    sources = [ds.clip_file(clip) for clip in clips]
    targets = [_target(clip, src, convert_animations) for clip, src in zip(clips, sources)]
    own = _own_files(out)
    # Before anything is written: never a source clip, never a file an earlier export did not write (unless force).
    check_outputs([out / t for t in targets] + [out / "metadata.csv", out / MANIFEST], inputs=sources + [ds.metadata_path],
                  force=force, owned=lambda p: p.relative_to(out).as_posix() in own)
    out.mkdir(parents=True, exist_ok=True)
    tmpl = template or prompts.PAPER_TEMPLATE
    # The manifest comes first, so files placed before a failure (a full disk) are known as ours on the next run.
    write_text(out / MANIFEST, json.dumps({
        "source": str(ds.metadata_path), "selection": description, "clips": [c.clip_id for c in clips],
        "link": link, "template": tmpl, "files": sorted((own - {"metadata.csv", MANIFEST}) | {t.as_posix() for t in targets})},
        indent=1) + "\n", fsync=True)
    rows: list[tuple[str, str]] = []
    converted = 0
    with runtime.progress_bar(len(clips), "export clips") as bar:
        for clip, src, rel in zip(clips, sources, targets):
            runtime.check_interrupted()
            (out / rel.parent).mkdir(parents=True, exist_ok=True)
            if rel.suffix != src.suffix.lower():
                info = video_io.probe(src)
                # Resample uneven GIF timing to its average rate so the clip keeps its real-time length.
                frames = video_io.read_frames(src, info=info, target_fps=info.fps, progress=False)
                video_io.write_video(frames, out / rel, fps=info.fps, format="mp4")
                converted += 1
            else:
                _place(src, out / rel, link)
            rows.append((rel.as_posix(), prompts.build_prompt(clip.caption, clip.emotion, template=tmpl)))
            bar.update(1)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video", "prompt"])
    w.writerows(rows)
    meta = write_text(out / "metadata.csv", buf.getvalue(), fsync=True)
    notes = []
    if not convert_animations and any(c.path.lower().endswith(_CONVERT) for c in clips):
        notes.append("GIF/WebP clips were not converted: DiffSynth-Studio's loader cannot read them")
    return ExportReport(out, meta, len(rows), converted, link, notes)
