"""``emovid dataset index ROOT``: probe every clip, measure the paper's attributes, write the index.

- Source rows: ``--metadata FILE``, else the root's ``emovid_metadata.csv|jsonl``, else a DiffSynth
  ``metadata.csv``, else a ``<type>/<emotion>/`` folder tree (see :mod:`.importers`).
- Each file is probed (frames, fps, size, duration) and its clip attributes B, C, H are computed exactly as
  the paper's Eqs. 1–3 (frames 0, 20, 40, …; pixel-pooled), by :mod:`emovid_core.attributes`. GIF/WebP
  transparency is composited onto black before measuring (the paper does not say how it treated alpha).
- Work runs on an engine of :mod:`emovid_core.executor` (default: worker processes over all cores; a worker that
  dies mid-clip costs one retry in a fresh worker, then the clip is reported; ``ray``: the clips are tasks on a
  Ray cluster, retried by Ray when a node dies); the progress bar is the runtime's.
- Resumable: every finished file is appended to a journal next to the output, keyed by path + mtime + size +
  settings. After an interruption (Ctrl-C, ComfyUI's Cancel, a crash) the next run reuses those results and
  only measures what is left; a file that changed since is measured again. The journal stays as a cache for
  later re-indexing.
- The index is written atomically to a new file (default ``ROOT/emovid_index.csv``); the source table is never
  overwritten. Unreadable, missing, empty or out-of-root files do not stop the run: they are left out of
  the index and listed in ``ROOT/emovid_index_report.json`` (with the rejected metadata rows).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import runtime
from ..atomic import WriteError, write_error, write_text
from ..executor import make_executor
from .format import Clip, Reject, resolve_clip_path
from .importers import import_diffsynth, import_folder
from .table import INDEX_NAMES, METADATA_NAMES, read_table, write_table

JOURNAL_VERSION = 1
REPORT_NAME = "emovid_index_report.json"


@dataclass
class IndexReport:
    output: Path
    source: str
    indexed: int
    measured: int
    reused: int
    failed: list[dict] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    report_path: Path | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        text = (f"indexed {self.indexed} clip(s) from {self.source} in {self.seconds:.1f} s "
                f"({self.measured} measured, {self.reused} reused from the journal) -> {self.output}")
        if self.failed or self.rejects:
            text += f"; {len(self.failed)} unreadable file(s), {len(self.rejects)} rejected row(s): see {self.report_path}"
        return text


class _QuietProgress:
    """Progress that shows nothing: per-file bars inside a many-file job would only flood the terminal."""

    def __init__(self, total: int = 0, desc: str = "") -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def measure_clip(path: str | Path, stride: int = 20, threads: int | None = None) -> dict:
    """Probe one file and compute its paper-exact attributes. Raises ValueError/OSError for a bad file.

    Only frames 0, stride, 2·stride, … are decoded (seeking where the container allows). ``threads`` is
    handed to :func:`emovid_core.attributes.frame_stats` (None: its default); pool workers pass 1 because
    the parallelism already comes from the processes.
    """
    from .. import video_io

    info = video_io.probe(path)
    if info.frames < 1:
        raise ValueError(f"{Path(path).name} has no frames")
    wanted = list(range(0, info.frames, stride))
    with runtime.configured(progress_factory=_QuietProgress):
        frames = list(video_io.iter_frames(path, indices=wanted, info=info))
        if not frames:
            raise ValueError(f"{Path(path).name} decoded no frames (corrupt or empty stream)")
        attrs = paper_attributes(frames, wanted[: len(frames)], stride, threads)
    return {
        "frames": int(info.frames), "fps": round(float(info.fps), 6), "width": int(info.width), "height": int(info.height),
        "duration": round(float(info.duration), 6), "has_alpha": bool(info.has_alpha),
        "brightness": float(attrs.brightness), "colorfulness": float(attrs.colorfulness), "hue": int(attrs.hue),
        "raw": {"brightness": float(attrs.brightness_raw), "colorfulness": float(attrs.colorfulness_raw),
                "hue": float(attrs.hue_raw)},
    }


def paper_attributes(frames, indices: list[int], stride: int = 20, threads: int | None = None):
    """The paper's clip values from source-size ``frames`` showing source frames ``indices`` (those that are
    multiples of ``stride`` are pooled): what :func:`measure_clip` computes once it has decoded them."""
    from .. import attributes

    stats = attributes.frame_stats(frames, indices=indices, hasler=False, progress=False, workers=threads)
    return attributes.clip_attributes(stats, stride=stride)


def _worker(args: tuple[str, str, int, int | None]) -> tuple[str, dict | None, str | None]:
    key, path, stride, threads = args
    try:
        return key, measure_clip(path, stride, threads), None
    except (ValueError, OSError, RuntimeError) as exc:  # a bad file is reported, never fatal
        return key, None, f"{type(exc).__name__}: {exc}"


def load_source(root: Path, metadata: str | Path | None = None, default_type: str | None = None,
                label_source: str = "") -> tuple[list[Clip], list[Reject], str, Path | None]:
    """(clips, rejects, description, source table path or None) from the first source that exists."""
    if metadata:
        mp = Path(metadata).expanduser()
        if mp.name == "metadata.csv" and _is_diffsynth(mp):
            clips, rejects = import_diffsynth(mp, default_type, label_source)
            return clips, rejects, f"DiffSynth {mp}", mp
        ds = read_table(mp, root=root)
        return ds.clips, ds.rejects, f"metadata {mp}", mp
    for name in METADATA_NAMES:
        if (root / name).is_file():
            ds = read_table(root / name, root=root)
            return ds.clips, ds.rejects, f"metadata {root / name}", root / name
    if (root / "metadata.csv").is_file() and _is_diffsynth(root / "metadata.csv"):
        clips, rejects = import_diffsynth(root / "metadata.csv", default_type, label_source)
        return clips, rejects, f"DiffSynth {root / 'metadata.csv'}", root / "metadata.csv"
    clips, rejects = import_folder(root, label_source)
    if clips:
        return clips, rejects, f"folder tree {root}", None
    for name in INDEX_NAMES:
        if (root / name).is_file():
            ds = read_table(root / name, root=root)
            return ds.clips, ds.rejects, f"index {root / name}", root / name
    raise FileNotFoundError(
        f"nothing to index in {str(root)!r}: no {', '.join(METADATA_NAMES)}, no DiffSynth metadata.csv and no clips "
        "under <type>/<emotion>/ folders (types: animation, movie, sticker); pass --metadata FILE"
    )


def _is_diffsynth(path: Path) -> bool:
    with open(path, encoding="utf-8-sig") as fh:
        header = fh.readline().strip().lower().replace(" ", "")
    cols = header.split(",")
    return "video" in cols and "prompt" in cols and "emotion" not in cols


def journal_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.journal.jsonl")


def _read_journal(path: Path) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    if not path.is_file():
        return entries
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line cut short by the interruption itself
            if isinstance(e, dict) and e.get("v") == JOURNAL_VERSION and "key" in e:
                entries[e["key"]] = e
    return entries


def index_dataset(
    root: str | Path,
    *,
    metadata: str | Path | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    stride: int = 20,
    default_type: str | None = None,
    label_source: str = "",
    progress: bool = True,
    engine: str = "local",
    engine_options: dict | None = None,
) -> IndexReport:
    """Index a dataset root; see the module doc. Returns what happened (also written to the report file).

    ``engine``: ``local`` (processes on this machine) or ``ray`` (a cluster; ``engine_options`` such as
    ``address``, ``path_map``, ``ship_code`` go to :func:`emovid_core.executor.make_executor`). The index is the
    same whichever engine measured it."""
    t0 = time.perf_counter()
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {str(root)!r} is not a folder")
    if int(stride) < 1:
        raise ValueError(f"stride={stride} must be at least 1 (the paper samples every 20th frame)")
    clips, rejects, source, source_path = load_source(root, metadata, default_type, label_source)
    out = Path(out).expanduser() if out else root / INDEX_NAMES[0]
    if out.suffix.lower() not in (".csv", ".jsonl"):
        raise ValueError(f"index output {str(out)!r} must end in .csv or .jsonl")
    if source_path is not None and out.resolve() == source_path.resolve() and source_path.name not in INDEX_NAMES:
        raise ValueError(f"index output {str(out)!r} is the source table itself; the indexer never overwrites your "
                         f"metadata — choose another --out (default {INDEX_NAMES[0]})")
    jpath = journal_path(out)
    journal = _read_journal(jpath)
    failed: list[dict] = []
    keyed: list[tuple[Clip, str]] = []
    todo: list[tuple[str, str, int, int | None]] = []
    for clip in clips:
        try:
            path = resolve_clip_path(root, clip.path)
            st = path.stat()
        except ValueError as exc:
            failed.append({"clip_id": clip.clip_id, "path": clip.path, "error": str(exc)})
            continue
        except FileNotFoundError:
            failed.append({"clip_id": clip.clip_id, "path": clip.path, "error": "file not found"})
            continue
        key = f"{clip.path}|{st.st_mtime_ns}|{st.st_size}|stride={stride}"
        keyed.append((clip, key))
        if key not in journal:
            todo.append((key, str(path), int(stride), None))
    todo = list(dict.fromkeys(todo))  # two rows naming the same file are measured once
    reused = len(keyed) - len(todo)
    remote = engine != "local"
    workers = (int(workers) if workers else None) if remote else max(1, int(workers or os.cpu_count() or 1))
    lost: dict[str, str] = {}  # key -> why: its worker died on every attempt (or the measuring code itself broke)
    with _writing(jpath):
        jpath.parent.mkdir(parents=True, exist_ok=True)
        torn = jpath.is_file() and jpath.stat().st_size > 0 and not jpath.read_bytes().endswith(b"\n")
        # Unbuffered: each entry is one write() that reaches the file at once (a crash of this process loses
        # nothing finished), and a failed write (disk full) raises here, not later in close().
        jfh = open(jpath, "ab", buffering=0)
    with jfh, runtime.progress_bar(len(todo) if progress else 0, "index clips") as bar:
        def append(data: bytes) -> None:
            with _writing(jpath):
                while data:
                    data = data[jfh.write(data):]

        if torn:
            append(b"\n")  # end a line cut short by a crash, so the next entry starts clean

        pooled = remote or (workers > 1 and len(todo) > 1)
        with make_executor(engine, workers if pooled else 1, **(engine_options or {})) as ex:
            for key, path, st, _ in todo:
                # one attribute thread per pool worker: the processes already use the cores
                ex.submit(key, _worker, (key, ex.worker_path(path), st, 1 if pooled else None))
            for outcome in ex.results():
                if outcome.ok:
                    key, result, error = outcome.value
                    entry = {"v": JOURNAL_VERSION, "key": key, "result": result, "error": error}
                    append((json.dumps(entry) + "\n").encode())
                    journal[key] = entry
                else:  # not journalled: a rerun tries the file again
                    lost[outcome.key] = outcome.error
                if progress:
                    bar.update(1)
    for clip, key in keyed:
        if key in lost:
            failed.append({"clip_id": clip.clip_id, "path": clip.path, "error": lost[key]})
    for clip, key in keyed:
        e = journal.get(key)
        if e and e.get("error"):
            failed.append({"clip_id": clip.clip_id, "path": clip.path, "error": e["error"]})
    indexed = []
    for clip, key in keyed:
        r = (journal.get(key) or {}).get("result")
        if r:
            indexed.append(clip.replace(**{k: r[k] for k in ("frames", "fps", "width", "height", "duration",
                                                                 "brightness", "colorfulness", "hue")}))
    indexed.sort(key=lambda c: c.clip_id)
    with _writing(out):
        write_table(out, indexed)
    # Compact the journal to the files of this run, so entries of changed or deleted files do not pile up.
    live = dict.fromkeys(key for _clip, key in keyed if key in journal)
    with open(jpath, encoding="utf-8") as fh:
        n_lines = sum(1 for _ in fh)
    if n_lines != len(live):  # stale keys, duplicates or a torn line
        with _writing(jpath):
            write_text(jpath, "".join(json.dumps(journal[k]) + "\n" for k in live), fsync=True)
    report = IndexReport(output=out, source=source, indexed=len(indexed), measured=len(todo), reused=reused,
                         failed=sorted(failed, key=lambda f: f["path"]), rejects=rejects,
                         report_path=out.with_name(REPORT_NAME) if out.name == INDEX_NAMES[0] else out.with_suffix(".report.json"))
    report.seconds = time.perf_counter() - t0
    with _writing(report.report_path):
        write_text(report.report_path, json.dumps({
            "output": str(out), "source": source, "indexed": report.indexed, "measured": report.measured,
            "reused": report.reused, "stride": stride, "seconds": round(report.seconds, 3),
            "unreadable": report.failed,
            "rejected_rows": [{"line": r.line, "reason": r.reason, "value": r.value} for r in rejects],
        }, indent=1, ensure_ascii=False) + "\n", fsync=True)
    return report


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A write error (disk full, read-only, quota) becomes one line naming the file and the cause."""
    try:
        yield
    except WriteError:  # the atomic writers already name the file
        raise
    except OSError as exc:
        raise write_error(path, exc) from None
