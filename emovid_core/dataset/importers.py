"""Importers that turn other layouts into EmoVid clip records (no probing; the indexer measures the files).

(a) A DiffSynth-Studio ``metadata.csv`` (columns ``video,prompt``; ``video`` relative to the csv's folder).
    The emotion comes from the paper's sentence at the end of the prompt (``… The video is in the "fear"
    emotion.``, which is then cut from the caption) or else from a folder name on the clip's path; the type
    from a folder name or ``default_type``.
(b) A folder tree ``<root>/<type>/<emotion>/…/*.{mp4,webm,mov,mkv,gif}``. A ``<clip>.txt`` next to a clip is
    its caption. Movie file names ``<film>_<n>`` / ``<film>-seg<n>`` give film id and segment index.

Rows that cannot be mapped are returned as rejects (with the csv line number, or 0 for the folder tree).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path, PurePosixPath

from .format import (
    SOURCE_TYPES,
    VIDEO_EXTENSIONS,
    Clip,
    Reject,
    canonical_emotion,
    canonical_label_source,
    canonical_type,
    check_relative_path,
    emotion_names,
)

# The paper's appended sentence, with straight or curly quotes and an optional final period.
_EMOTION_SENTENCE = re.compile(r"\s*The video is in the [\"“”']?([A-Za-z]+)[\"“”']? emotion\.?\s*$")
_MOVIE_NAME = re.compile(r"^(?P<film>.+?)[_-](?:seg(?:ment)?[_-]?)?(?P<seg>\d+)$", re.IGNORECASE)


def split_emotion_sentence(prompt: str) -> tuple[str, str | None]:
    """(caption without the paper's emotion sentence, emotion named in it or None)."""
    m = _EMOTION_SENTENCE.search(prompt or "")
    if not m:
        return (prompt or "").strip(), None
    return prompt[: m.start()].strip(), m.group(1)


def _type_from_parts(parts) -> str | None:
    for p in parts:
        try:
            return canonical_type(p)
        except ValueError:
            continue
    return None


def _emotion_from_parts(parts) -> str | None:
    names = set(emotion_names())
    for p in parts:
        if p.lower() in names:
            return p.lower()
    return None


def _clip_id(rel: str) -> str:
    return str(PurePosixPath(rel).with_suffix(""))


def _movie_fields(stem: str) -> tuple[str, int | None]:
    m = _MOVIE_NAME.match(stem)
    if not m:
        return "", None
    return m.group("film"), int(m.group("seg"))


def import_diffsynth(csv_path: str | Path, default_type: str | None = None, label_source: str = "") -> tuple[list[Clip], list[Reject]]:
    """Clips from a DiffSynth-Studio ``metadata.csv``; paths stay relative to the csv's folder (the dataset root)."""
    csv_path = Path(csv_path)
    default_type = canonical_type(default_type) if default_type else None
    label_source = canonical_label_source(label_source)
    text = csv_path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ValueError(f"DiffSynth metadata {str(csv_path)!r} is empty; it needs a header 'video,prompt'") from None
    missing = [c for c in ("video", "prompt") if c not in header]
    if missing:
        raise ValueError(f"DiffSynth metadata {str(csv_path)!r} lacks column(s) {', '.join(missing)} (has: {', '.join(header)})")
    iv, ip = header.index("video"), header.index("prompt")
    clips: list[Clip] = []
    rejects: list[Reject] = []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        if not any(v.strip() for v in row):
            continue
        try:
            if len(row) <= max(iv, ip):
                raise ValueError(f"{len(row)} fields, expected at least {max(iv, ip) + 1}")
            rel = check_relative_path(row[iv])
            caption, named = split_emotion_sentence(row[ip])
            parts = PurePosixPath(rel).parts[:-1]
            emotion = canonical_emotion(named) if named else _emotion_from_parts(parts)
            if emotion is None:
                raise ValueError(f"no emotion for {rel!r}: the prompt has no 'The video is in the \"…\" emotion.' "
                                 "sentence and no folder on the path is an emotion name")
            type_ = _type_from_parts(parts) or default_type
            if type_ is None:
                raise ValueError(f"no source type for {rel!r}: no folder on the path is one of {', '.join(SOURCE_TYPES)}; "
                                 "pass --type")
            film, seg = _movie_fields(PurePosixPath(rel).stem) if type_ == "movie" else ("", None)
            clips.append(Clip(_clip_id(rel), rel, type_, emotion, label_source, caption, film_id=film, segment=seg, line=line))
        except ValueError as exc:
            rejects.append(Reject(line, str(exc), row[iv] if len(row) > iv else ""))
    return clips, rejects


def import_folder(root: str | Path, label_source: str = "") -> tuple[list[Clip], list[Reject]]:
    """Clips from ``<root>/<type>/<emotion>/…``. Video files anywhere else are reported as rejects."""
    root = Path(root)
    label_source = canonical_label_source(label_source)
    clips: list[Clip] = []
    rejects: list[Reject] = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in VIDEO_EXTENSIONS or any(s.startswith(".") for s in p.relative_to(root).parts):
            continue
        rel = p.relative_to(root).as_posix()
        parts = rel.split("/")
        try:
            if len(parts) < 3:
                raise ValueError(f"{rel!r} is not under <type>/<emotion>/")
            type_ = canonical_type(parts[0])
            emotion = canonical_emotion(parts[1])
        except ValueError as exc:
            rejects.append(Reject(0, str(exc), rel))
            continue
        side = p.with_suffix(".txt")
        caption = side.read_text(encoding="utf-8").strip() if side.is_file() else ""
        film, seg = _movie_fields(p.stem) if type_ == "movie" else ("", None)
        clips.append(Clip(_clip_id(rel), rel, type_, emotion, label_source, caption, film_id=film, segment=seg))
    return clips, rejects
