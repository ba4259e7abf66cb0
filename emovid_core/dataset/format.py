"""The EmoVid on-disk format: columns, one clip record, row parsing and the path-safety rules.

A dataset root holds the clips (any layout under the root) and one metadata table, CSV or JSONL, whose
``path`` column is relative to the root. Only ``clip_id, path, type, emotion`` are required; every other
column may be missing or empty. Unknown extra columns are kept and written back unchanged so a round trip
through our tools never loses a user's data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath

SOURCE_TYPES = ("animation", "movie", "sticker")
LABEL_SOURCES = ("human", "vlm")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".gif", ".avi", ".webp")

# Column order of the files we write. The attribute columns follow the paper's rounding (B, C to 1 decimal,
# H integer degrees); frames is not in the list but the indexer knows it and sampling needs it.
COLUMNS = (
    "clip_id", "path", "type", "emotion", "label_source", "caption",
    "brightness", "colorfulness", "hue", "duration", "fps", "frames", "width", "height",
    "film_id", "segment", "split",
)
REQUIRED_COLUMNS = ("clip_id", "path", "type", "emotion")
_FLOAT_COLUMNS = ("brightness", "colorfulness", "duration", "fps")
_INT_COLUMNS = ("hue", "frames", "width", "height", "segment")
ATTRIBUTE_COLUMNS = ("brightness", "colorfulness", "hue")

# Header spellings other tools use for our columns (DiffSynth calls the path "video"; people write "id").
COLUMN_ALIASES = {
    "id": "clip_id", "clip": "clip_id", "video": "path", "file": "path", "filename": "path",
    "source_type": "type", "source": "type", "label": "emotion", "labelsource": "label_source",
    "label_by": "label_source", "annotation": "label_source", "prompt": "caption", "text": "caption",
    "segment_index": "segment", "seg": "segment", "film": "film_id", "movie_id": "film_id",
    "b": "brightness", "c": "colorfulness", "h": "hue", "num_frames": "frames", "frame_count": "frames",
}
_LABEL_ALIASES = {"manual": "human", "annotator": "human", "model": "vlm", "auto": "vlm", "nvila": "vlm"}
_TYPE_ALIASES = {"anime": "animation", "cartoon": "animation", "film": "movie", "movies": "movie",
                 "gif": "sticker", "stickers": "sticker", "animations": "animation"}
_SPLIT_RE = re.compile(r"^[a-z0-9_-]{1,32}$")


def emotion_names() -> tuple[str, ...]:
    from .. import emotions

    return tuple(emotions.EMOTIONS)


def canonical_emotion(name: str) -> str:
    """The canonical lower-case emotion name; ValueError (listing the eight) when unknown."""
    from .. import emotions

    emo = emotions.get_emotion(str(name).strip())
    return getattr(emo, "name", emo)


def emotion_valence(name: str) -> str:
    from .. import emotions

    return str(emotions.valence(name))


def canonical_type(value: str) -> str:
    v = str(value).strip().lower()
    v = _TYPE_ALIASES.get(v, v)
    if v not in SOURCE_TYPES:
        raise ValueError(f"unknown source type {value!r}; use one of {', '.join(SOURCE_TYPES)}")
    return v


def canonical_label_source(value: str) -> str:
    v = str(value).strip().lower()
    if not v:
        return ""
    v = _LABEL_ALIASES.get(v, v)
    if v not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {value!r}; use human, vlm or leave it empty")
    return v


def canonical_column(name: str) -> str:
    key = str(name).strip().lower().replace(" ", "_")
    return COLUMN_ALIASES.get(key, key)


@dataclass
class Clip:
    """One row of the metadata table. ``line`` is the row's line number in the file it came from (0 if none)."""

    clip_id: str
    path: str
    type: str
    emotion: str
    label_source: str = ""
    caption: str = ""
    brightness: float | None = None
    colorfulness: float | None = None
    hue: int | None = None
    duration: float | None = None
    fps: float | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    film_id: str = ""
    segment: int | None = None
    split: str = ""
    extra: dict = field(default_factory=dict)
    line: int = 0

    @property
    def valence(self) -> str:
        return emotion_valence(self.emotion)

    def to_row(self) -> dict:
        """Column -> value, ``None`` for a missing value, extras after the standard columns."""
        row = {c: getattr(self, c) for c in COLUMNS}
        row.update(self.extra)
        return row

    def replace(self, **changes) -> "Clip":
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["extra"] = dict(self.extra)
        data.update(changes)
        return Clip(**data)


@dataclass
class Reject:
    """A metadata row that was not loaded, with why."""

    line: int
    reason: str
    value: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def check_relative_path(rel: str) -> str:
    """Normalise a metadata path to POSIX form; ValueError when it is absolute or climbs out of the root.

    Paths in the table are relative to the dataset root. Refusing ``..`` and absolute paths here means a
    metadata file from somewhere else can never make our tools read, link or export files outside the root.
    """
    text = str(rel).strip().replace("\\", "/")
    if not text:
        raise ValueError("empty path")
    p = PurePosixPath(text)
    if p.is_absolute() or re.match(r"^[A-Za-z]:", text):
        raise ValueError(f"path {rel!r} is absolute; metadata paths must be relative to the dataset root")
    parts = [s for s in p.parts if s not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"path {rel!r} leaves the dataset root ('..'); move the clip under the root")
    return "/".join(parts)


def resolve_clip_path(root: Path, rel: str) -> Path:
    """Absolute path of ``rel`` under ``root``; ValueError when it (or a symlink on the way) leads outside."""
    rel = check_relative_path(rel)
    root_real = Path(root).resolve()
    target = (root_real / rel).resolve()
    if target != root_real and root_real not in target.parents:
        raise ValueError(
            f"path {rel!r} resolves to {target}, outside the dataset root {root_real} (a symlink leaving the "
            "root?); copy the clip into the root instead"
        )
    return target


def _parse_float(col: str, raw) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"column {col}: {raw!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"column {col}: {raw!r} is not a finite number")
    return v


def _parse_int(col: str, raw) -> int | None:
    v = _parse_float(col, raw)
    if v is None:
        return None
    if not float(v).is_integer():
        raise ValueError(f"column {col}: {raw!r} is not a whole number")
    return int(v)


def _text(raw) -> str:
    return "" if raw is None else str(raw).strip()


def parse_row(row: dict, line: int) -> Clip:
    """Build a Clip from one raw row (canonical column names); ValueError naming the bad column and value."""
    clip_id = _text(row.get("clip_id"))
    if not clip_id:
        raise ValueError("empty clip_id")
    path = check_relative_path(_text(row.get("path")))
    emotion_raw = _text(row.get("emotion"))
    if not emotion_raw:
        raise ValueError("empty emotion")
    emotion = canonical_emotion(emotion_raw)
    kwargs: dict = {
        "clip_id": clip_id, "path": path, "type": canonical_type(_text(row.get("type"))), "emotion": emotion,
        "label_source": canonical_label_source(_text(row.get("label_source"))),
        "caption": "" if row.get("caption") is None else str(row.get("caption")).strip(),
        "film_id": _text(row.get("film_id")), "line": line,
    }
    for col in _FLOAT_COLUMNS:
        kwargs[col] = _parse_float(col, row.get(col))
    for col in _INT_COLUMNS:
        kwargs[col] = _parse_int(col, row.get(col))
    for col in ("brightness", "colorfulness"):
        v = kwargs[col]
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError(f"column {col}: {v} is outside [0, 1]")
    if kwargs["hue"] is not None and not 0 <= kwargs["hue"] < 360:
        raise ValueError(f"column hue: {kwargs['hue']} is outside 0..359 degrees")
    split = _text(row.get("split")).lower()
    if split in ("none", "-"):
        split = ""
    if split and not _SPLIT_RE.match(split):
        raise ValueError(f"column split: {split!r} is not a split name (letters, digits, '-', '_')")
    kwargs["split"] = split
    kwargs["extra"] = {k: v for k, v in row.items() if k not in COLUMNS and k is not None}
    return Clip(**kwargs)
