"""Safe outputs: one check that an output never replaces an input or a file the pack did not write (every command
that writes calls :func:`check_outputs`), and atomic writes: every file goes through a temporary name in the same
folder and a rename, so a crash, a Cancel or a full disk never leaves a half-written file under the final name (nor
a hidden temporary one), and never clobbers the old file."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


class WriteError(OSError):
    """Writing an output failed (disk full, no permission, ...): one line naming the file and the cause."""

    def __str__(self) -> str:  # the message alone, not OSError's "[Errno N] ...: 'file'" (it already names the file)
        return self.strerror or super().__str__()


# ------------------------------------------------------------------------------------------- output checks


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are the same file once links are resolved (hard links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they point
        return Path(a).resolve() == Path(b).resolve()


def check_outputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike] = (), *, force: bool = False,
                  owned: Callable[[Path], bool] | None = None, flag: str = "--force") -> None:
    """Refuse to write ``outputs`` when one is an input (always, ``force`` or not) or when existing files would be
    replaced that this command did not write itself (``owned`` says which it did; default: none) unless ``force``.

    Every command that writes calls this before doing any work, so a refusal never leaves anything half done.
    An output the command wrote itself may be a link to an input (an export's symlinks): replacing the link keeps
    the input, so owned outputs skip the input check.
    """
    outputs = [Path(o) for o in outputs]
    inputs = [Path(i) for i in inputs]
    for out in outputs:
        if owned is not None and os.path.lexists(out) and owned(out):
            continue
        for inp in inputs:
            if same_file(out, inp):
                same = "" if out.absolute() == inp.absolute() else f" (the same file as the input {inp})"
                raise ValueError(f"output {out} is one of the inputs{same}; write to a new path so the input is kept")
    if force:
        return
    taken = [o for o in outputs if os.path.lexists(o) and not (owned is not None and owned(o))]
    if taken:
        if len(taken) == 1:
            raise ValueError(f"{taken[0]} exists and was not written by this command; pass {flag} to replace it "
                             "or choose a new name")
        listing = ", ".join(str(t) for t in taken[:20]) + (f" and {len(taken) - 20} more" if len(taken) > 20 else "")
        raise ValueError(f"{len(taken)} existing files would be replaced: {listing}; pass {flag} to replace them "
                         "or choose a new folder")


# ------------------------------------------------------------------------------------------- atomic writes


def _plain_open_mode(path: Path) -> int:
    """The permissions a plain ``open(path, "w")`` gives: an existing file keeps its mode, a new one 0666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    with _UMASK_LOCK:  # the umask can only be read by setting it; the lock keeps this module's threads consistent
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def write_error(path: str | os.PathLike, exc: OSError) -> WriteError:
    """One line naming the file and the cause of a failed write (disk full gets the hint to free space)."""
    cause = exc.strerror or str(exc)
    hint = "; free some space or write elsewhere" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    err = WriteError(exc.errno, f"cannot write {path}: {cause}{hint}")
    err.filename = str(path)
    return err


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` when the block succeeds, else it is removed.

    The file gets the permissions a plain ``open()`` would give (mkstemp alone makes it 0600). An OSError while
    writing (a full disk) becomes a :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        mode = _plain_open_mode(path)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        yield Path(tmp)
        # A writer that replaces the file instead of writing into it (safetensors' save_file) drops the mode set above.
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(path, exc) from None
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
        try:
            save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp), metadata=dict(metadata) if metadata else None)
        except Exception as exc:
            if type(exc).__name__ != "SafetensorError":
                raise
            # safetensors reports an I/O error as "... I/O error: No space left on device (os error 28)"
            # (older releases: "IoError(Os { code: 28, ... })"); give it its errno back.
            found = re.search(r"(?:os error|code:) (\d+)", str(exc))
            if not found:
                raise
            code = int(found.group(1))
            raise OSError(code, os.strerror(code)) from None
    return Path(path)
