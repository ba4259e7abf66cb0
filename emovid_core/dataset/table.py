"""Reading and writing the metadata table (CSV or JSONL) and the ``Dataset`` handle built from it.

Bad rows never stop a load: each is rejected with its line number and the rest loads (``Dataset.rejects``).
Missing required columns stop it, because then no row could be read.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..atomic import write_text
from .format import COLUMNS, REQUIRED_COLUMNS, SOURCE_TYPES, Clip, Reject, canonical_column, parse_row, resolve_clip_path

# Names we look for in a dataset root, in order: the indexer's output (with attributes) wins over the
# user's own table, so stats and sampling see the measured values once an index exists.
INDEX_NAMES = ("emovid_index.csv", "emovid_index.jsonl")
METADATA_NAMES = ("emovid_metadata.csv", "emovid_metadata.jsonl")


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6)) if not value.is_integer() else repr(value)
    return str(value)


def clips_to_csv(clips: Iterable[Clip]) -> str:
    clips = list(clips)
    extra_cols: list[str] = []
    for c in clips:
        for k in c.extra:
            if k not in extra_cols:
                extra_cols.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(COLUMNS) + extra_cols)
    for c in clips:
        row = c.to_row()
        w.writerow([_fmt(row.get(k)) for k in list(COLUMNS) + extra_cols])
    return buf.getvalue()


def clips_to_jsonl(clips: Iterable[Clip]) -> str:
    lines = []
    for c in clips:
        row = {k: v for k, v in c.to_row().items() if v not in (None, "")}
        lines.append(json.dumps(row, ensure_ascii=False))
    return "\n".join(lines) + ("\n" if lines else "")


def write_table(path: str | Path, clips: Iterable[Clip]) -> Path:
    """Write clips as CSV or JSONL (by suffix), atomically."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        return write_text(path, clips_to_jsonl(clips), fsync=True)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"metadata file {str(path)!r} must end in .csv or .jsonl")
    return write_text(path, clips_to_csv(clips), fsync=True)


def _raw_rows(path: Path) -> tuple[list[str], Iterable[tuple[int, dict]], list[Reject]]:
    """(canonical column names present, iterator of (line number, row with canonical keys), unparseable lines).

    The last list fills up while the iterator runs.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"metadata file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8") from None
    bad: list[Reject] = []
    if path.suffix.lower() == ".jsonl":
        cols: list[str] = []
        rows: list[tuple[int, dict]] = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                bad.append(Reject(i, f"not a JSON object: {exc}"))
                continue
            row = {canonical_column(k): v for k, v in obj.items()}
            for k in row:
                if k not in cols:
                    cols.append(k)
            rows.append((i, row))
        return cols, rows, bad
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"metadata file {str(path)!r} is empty; it needs a header row with {', '.join(REQUIRED_COLUMNS)}") from None
    cols = [canonical_column(h) for h in header]

    def gen():
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                bad.append(Reject(start, f"malformed CSV: {exc}"))
                return
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(cols):
                bad.append(Reject(start, f"{len(values)} fields but the header has {len(cols)}"))
                continue
            yield start, dict(zip(cols, values))

    return cols, gen(), bad


@dataclass
class Dataset:
    """A loaded dataset: its root, the table it came from, the clips (sorted by clip id) and the rejected rows."""

    root: Path
    metadata_path: Path
    clips: list[Clip]
    rejects: list[Reject] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    mtime_ns: int = 0

    def __len__(self) -> int:
        return len(self.clips)

    def clip_path(self, clip: Clip) -> Path:
        """The clip's file; ValueError when its path (or a symlink) leaves the root."""
        return resolve_clip_path(self.root, clip.path)

    def clip_file(self, clip: Clip) -> Path:
        """:meth:`clip_path`, refused with the clip id, the path and the fix when the file is gone."""
        path = self.clip_path(clip)
        if not path.is_file():
            raise FileNotFoundError(f"clip {clip.clip_id!r}: file {path} not found (moved or deleted since the table was "
                                    f"written); re-index the dataset (`emovid dataset index {self.root}`) or drop the row")
        return path

    def has_column(self, name: str) -> bool:
        return name in self.columns

    def summary(self) -> str:
        by_type = Counter(c.type for c in self.clips)
        parts = ", ".join(f"{by_type.get(t, 0)} {t}" for t in SOURCE_TYPES)
        human = sum(1 for c in self.clips if c.label_source == "human")
        splits = Counter(c.split for c in self.clips if c.split)
        text = f"{len(self.clips)} clips ({parts}); {human} human-labelled"
        if splits:
            text += "; splits " + ", ".join(f"{k}={v}" for k, v in sorted(splits.items()))
        if self.rejects:
            text += f"; {len(self.rejects)} row(s) rejected"
        return f"{text} — {self.metadata_path}"


def read_table(path: str | Path, root: str | Path | None = None) -> Dataset:
    """Load a metadata table. Rows with bad values are rejected (with line numbers), the rest load."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metadata file {str(path)!r} not found")
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise ValueError(f"metadata file {str(path)!r} must end in .csv or .jsonl")
    cols, rows, bad = _raw_rows(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        # Only known column names are shown: the header of a file that is not a table is not echoed.
        known = [c for c in cols if c in COLUMNS]
        other = len(cols) - len(known)
        has = ", ".join(known) or "none of the known columns"
        raise ValueError(
            f"metadata file {str(path)!r} lacks required column(s) {', '.join(missing)} (has: {has}"
            f"{f'; {other} other column(s)' if other else ''}); add them, or import the clips with `emovid dataset index ROOT`"
        )
    clips: list[Clip] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        try:
            clip = parse_row(row, line)
        except ValueError as exc:
            rejects.append(Reject(line, str(exc), str(row.get("path", ""))))
            continue
        if clip.clip_id in seen:
            rejects.append(Reject(line, f"duplicate clip_id {clip.clip_id!r} (first on line {seen[clip.clip_id]})", clip.path))
            continue
        seen[clip.clip_id] = line
        clips.append(clip)
    rejects = sorted(rejects + bad, key=lambda r: r.line)
    # Sorted by clip id so that everything downstream (sampling, splits) is independent of the file's row order.
    clips.sort(key=lambda c: c.clip_id)
    return Dataset(root=Path(root) if root is not None else path.parent, metadata_path=path, clips=clips,
                   rejects=rejects, columns=cols, mtime_ns=path.stat().st_mtime_ns)


def find_metadata(root: str | Path) -> Path:
    """The metadata table of a dataset root: the index if there is one, else the user's table."""
    root = Path(root)
    if root.is_file():
        return root
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {str(root)!r} not found")
    for name in INDEX_NAMES + METADATA_NAMES:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(
        f"no EmoVid metadata in {str(root)!r} (looked for {', '.join(INDEX_NAMES + METADATA_NAMES)}); "
        "run `emovid dataset index ROOT` (it imports a DiffSynth metadata.csv or a <type>/<emotion>/ folder tree) "
        "or `emovid dataset make-sample DIR` for a synthetic set"
    )


_CACHE: dict[tuple[str, int, int], Dataset] = {}


def load_dataset(root: str | Path, metadata: str | Path | None = None) -> Dataset:
    """Load a dataset root (or a metadata file directly). Cached by file path, size and mtime.

    The cache matters for the nodes: ComfyUI re-runs a graph often and re-parsing 22k rows each time is waste.
    Callers must treat the returned clips as read-only.
    """
    root = Path(root).expanduser()
    path = Path(metadata).expanduser() if metadata else find_metadata(root)
    if root.is_file():
        root = root.parent
    if not path.is_file():
        raise FileNotFoundError(f"metadata file {str(path)!r} not found")
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    ds = _CACHE.get(key)
    if ds is None or ds.root != root:
        ds = read_table(path, root=root)
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = ds
    return ds
