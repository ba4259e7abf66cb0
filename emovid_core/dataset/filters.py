"""Filtering clips: by emotion(s), valence, source type, label source, split, attribute ranges and caption text.

Filters apply one after another and record the count after each, so an empty result can say which filter
emptied it: ``no clips left: 22758 → emotion=fear 3012 → type=sticker 0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .format import SOURCE_TYPES, Clip, canonical_emotion, canonical_label_source, canonical_type, emotion_valence

RANGE_COLUMNS = ("brightness", "colorfulness", "hue", "duration", "fps", "frames", "width", "height")
ANY = ("", "any", "all", None)


class EmptySelectionError(ValueError):
    """No clip passed the filters. ``trace`` holds (filter description, count after it)."""

    def __init__(self, trace: list[tuple[str, int]]):
        self.trace = trace
        steps = " → ".join(f"{name} {n}" for name, n in trace[1:])
        hint = "widen or drop the last filter" if len(trace) > 1 else "the dataset has no clips"
        super().__init__(f"no clips left: {trace[0][1]} → {steps} ({hint})" if steps else f"no clips left: {trace[0][1]} ({hint})")


def _split_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = re.split(r"[,\s]+", value)
    else:
        items = [str(v) for v in value]
    return [i.strip() for i in items if i and i.strip() and i.strip().lower() not in ("any", "all")]


@dataclass
class Filter:
    """What to keep. Empty fields keep everything. Ranges are inclusive ``(min, max)``; None leaves a side open.

    ``hue`` ranges may wrap around 0° (``(330, 30)`` keeps reds). Clips with a missing value in a ranged
    column are dropped by that range (an unknown value cannot be shown to be inside it).
    """

    emotions: list[str] = field(default_factory=list)
    valence: str = ""
    types: list[str] = field(default_factory=list)
    label_sources: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    caption: str = ""
    caption_regex: bool = False
    films: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.emotions = [canonical_emotion(e) for e in _split_list(self.emotions)]
        self.types = [canonical_type(t) for t in _split_list(self.types)]
        self.label_sources = [canonical_label_source(s) or "unknown" for s in _split_list(self.label_sources)]
        for s in self.label_sources:
            if s not in ("human", "vlm", "unknown"):
                raise ValueError(f"label source filter {s!r}: use human, vlm or unknown")
        self.splits = [s.lower() for s in _split_list(self.splits)]
        v = (self.valence or "").strip().lower()
        if v in ANY:
            v = ""
        elif v in ("pos", "+"):
            v = "positive"
        elif v in ("neg", "-"):
            v = "negative"
        if v and v not in ("positive", "negative"):
            raise ValueError(f"valence filter {self.valence!r}: use positive or negative")
        self.valence = v
        self.films = _split_list(self.films)
        for col, rng in list(self.ranges.items()):
            if col not in RANGE_COLUMNS:
                raise ValueError(f"range filter on {col!r}: use one of {', '.join(RANGE_COLUMNS)}")
            lo, hi = rng
            if col != "hue" and lo is not None and hi is not None and lo > hi:
                raise ValueError(f"range filter {col}: min {lo} is above max {hi}; swap them")
        if self.caption and self.caption_regex:
            try:
                re.compile(self.caption)
            except re.error as exc:
                raise ValueError(f"caption regex {self.caption!r} is invalid: {exc}") from None

    def steps(self) -> list[tuple[str, callable]]:
        """(description, predicate) per active filter, in the order they apply."""
        out: list[tuple[str, callable]] = []
        if self.emotions:
            keep = frozenset(self.emotions)
            out.append((f"emotion={','.join(self.emotions)}", lambda c: c.emotion in keep))
        if self.valence:
            v = self.valence
            pos = {e for e in keep_all_emotions() if emotion_valence(e) == v}
            out.append((f"valence={v}", lambda c: c.emotion in pos))
        if self.types:
            keep_t = frozenset(self.types)
            out.append((f"type={','.join(self.types)}", lambda c: c.type in keep_t))
        if self.label_sources:
            keep_l = frozenset("" if s == "unknown" else s for s in self.label_sources)
            out.append((f"label_source={','.join(self.label_sources)}", lambda c: c.label_source in keep_l))
        if self.splits:
            keep_s = frozenset("" if s in ("none", "unassigned") else s for s in self.splits)
            out.append((f"split={','.join(self.splits)}", lambda c: c.split in keep_s))
        if self.films:
            keep_f = frozenset(self.films)
            out.append((f"film={','.join(self.films)}", lambda c: c.film_id in keep_f))
        for col, (lo, hi) in self.ranges.items():
            out.append((f"{col}={_fmt_range(lo, hi)}", _range_pred(col, lo, hi)))
        if self.caption:
            if self.caption_regex:
                rx = re.compile(self.caption, re.IGNORECASE)
                out.append((f"caption~/{self.caption}/", lambda c: rx.search(c.caption) is not None))
            else:
                needle = self.caption.lower()
                out.append((f"caption~{self.caption!r}", lambda c: needle in c.caption.lower()))
        return out

    def describe(self) -> str:
        return " ".join(name for name, _ in self.steps()) or "(no filter)"


def keep_all_emotions() -> Sequence[str]:
    from .format import emotion_names

    return emotion_names()


def _fmt_range(lo, hi) -> str:
    return f"{'' if lo is None else lo}..{'' if hi is None else hi}"


def _range_pred(col: str, lo, hi):
    if col == "hue" and lo is not None and hi is not None and lo > hi:  # wraps through 0°
        return lambda c: (v := getattr(c, col)) is not None and (v >= lo or v <= hi)

    def pred(c: Clip) -> bool:
        v = getattr(c, col)
        if v is None:
            return False
        return (lo is None or v >= lo) and (hi is None or v <= hi)

    return pred


def apply_filter(clips: Iterable[Clip], flt: Filter | None, *, allow_empty: bool = False) -> tuple[list[Clip], list[tuple[str, int]]]:
    """Return (kept clips, trace). Raises EmptySelectionError naming the counts when nothing is left."""
    kept = list(clips)
    trace = [("all", len(kept))]
    for name, pred in (flt.steps() if flt else []):
        kept = [c for c in kept if pred(c)]
        trace.append((name, len(kept)))
    if not kept and not allow_empty:
        raise EmptySelectionError(trace)
    return kept, trace


def parse_range(text: str) -> tuple[str, tuple[float | None, float | None]]:
    """``brightness=0.3..0.7`` / ``hue=330..30`` / ``duration=..5`` → (column, (min, max))."""
    col, sep, rng = str(text).partition("=")
    col = col.strip().lower()
    lo_s, dots, hi_s = rng.partition("..")
    if not sep or not dots:
        raise ValueError(f"range {text!r} is not COLUMN=MIN..MAX (e.g. brightness=0.3..0.7, duration=..5)")
    try:
        lo = float(lo_s) if lo_s.strip() else None
        hi = float(hi_s) if hi_s.strip() else None
    except ValueError:
        raise ValueError(f"range {text!r}: MIN and MAX must be numbers") from None
    return col, (lo, hi)


def type_order(t: str) -> int:
    return SOURCE_TYPES.index(t)
