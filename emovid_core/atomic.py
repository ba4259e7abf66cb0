"""Atomic file writes: every file the pack writes goes through a temporary name in the same folder and a rename,
so a crash or a Cancel never leaves a half-written file under the final name (and never clobbers the old one)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` when the block succeeds, else it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, fsync: bool = False) -> Path:
    """UTF-8 text, newlines as given; ``fsync`` for tables a resumable job relies on."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def save_safetensors(state_dict: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp), metadata=dict(metadata) if metadata else None)
    return Path(path)


class WriteFailed(RuntimeError):
    """A file could not be written (disk full, quota, read-only, ...): one line naming the file and the cause."""

    def __init__(self, path: str | os.PathLike, exc: OSError):
        self.path, self.cause = Path(path), exc
        hint = "; free some space or write elsewhere" if exc.errno in (28, 122) else ""  # ENOSPC, EDQUOT
        super().__init__(f"cannot write {str(path)!r}: {exc.strerror or exc}{hint}")
