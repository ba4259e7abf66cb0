"""Runtime services shared by the core and the nodes: progress, folders, model files.

The core never imports ComfyUI. Inside ComfyUI, ``nodes/_comfy.py`` installs hooks here (ComfyUI's
progress bar, ``folder_paths``); headless, the defaults below apply (tqdm, a local output folder and
model folders under ``EMOVID_MODELS_DIR``). That is what lets the same node code run in both places.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

MODEL_EXTENSIONS = (".safetensors", ".sft")


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class _TqdmProgress:
    def __init__(self, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=desc, leave=False, disable=os.environ.get("EMOVID_NO_PROGRESS") == "1")

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix(self, **values) -> None:
        """Extra live values after the bar (a training run's loss); optional: other bars may lack it."""
        self._bar.set_postfix(**values)

    def close(self) -> None:
        self._bar.close()


class _NoProgress:
    def update(self, n: int = 1) -> None:
        check_interrupted()

    def close(self) -> None:
        pass


ProgressFactory = Callable[[int, str], Progress]


@dataclass
class Runtime:
    """Process-wide services. ``nodes/_comfy.py`` swaps these for ComfyUI's when it runs in a server."""

    progress_factory: ProgressFactory = _TqdmProgress
    output_dir: Path | None = None
    input_dir: Path | None = None
    # kind ("loras", "diffusion_models", ...) -> folders searched, in order.
    model_folders: dict[str, list[Path]] = field(default_factory=dict)
    # Hooks installed inside ComfyUI; None headless.
    list_files_hook: Callable[[str], list[str]] | None = None
    full_path_hook: Callable[[str, str], str | None] | None = None
    folders_hook: Callable[[str], list[str]] | None = None
    interrupt_check: Callable[[], None] | None = None
    in_comfyui: bool = False


RUNTIME = Runtime()


def progress(total: int, desc: str = "") -> Progress:
    """A progress bar for ``total`` steps: ComfyUI's inside a server, tqdm headless.

    ``total`` 0 (how callers say "no bar", e.g. for a quick or nested step) gives a silent bar that still
    honours Cancel.
    """
    if int(total) <= 0:
        return _NoProgress()
    return RUNTIME.progress_factory(int(total), desc)


@contextmanager
def progress_bar(total: int, desc: str = "") -> Iterator[Progress]:
    bar = progress(total, desc)
    try:
        yield bar
    finally:
        bar.close()


def check_interrupted() -> None:
    """Raise ComfyUI's interruption exception when the user pressed Cancel (no-op headless)."""
    if RUNTIME.interrupt_check is not None:
        RUNTIME.interrupt_check()


def output_directory() -> Path:
    """Where nodes write files: ComfyUI's output folder, or the headless ``--out`` folder."""
    out = RUNTIME.output_dir or Path(os.environ.get("EMOVID_OUTPUT_DIR", "output"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def input_directory() -> Path:
    return Path(RUNTIME.input_dir or os.environ.get("EMOVID_INPUT_DIR", "input"))


def model_folders(kind: str) -> list[Path]:
    """The folders searched for model files of ``kind`` (ComfyUI's ``folder_paths`` in a server)."""
    if RUNTIME.folders_hook is not None:
        return [Path(p) for p in RUNTIME.folders_hook(kind)]
    return _folders(kind)


def _folders(kind: str) -> list[Path]:
    if kind in RUNTIME.model_folders:
        return list(RUNTIME.model_folders[kind])
    root = os.environ.get("EMOVID_MODELS_DIR")
    return [Path(root) / kind] if root else []


def list_model_files(kind: str) -> list[str]:
    """Sorted relative names of model files of ``kind`` (a ComfyUI folder kind such as ``loras``)."""
    if RUNTIME.list_files_hook is not None:
        return list(RUNTIME.list_files_hook(kind))
    names: set[str] = set()
    for folder in _folders(kind):
        if folder.is_dir():
            for p in folder.rglob("*"):
                if p.is_file() and p.suffix.lower() in MODEL_EXTENSIONS:
                    names.add(p.relative_to(folder).as_posix())
    return sorted(names)


def resolve_model_file(kind: str, name: str) -> Path:
    """Absolute path of model file ``name`` of ``kind``; an absolute existing path is accepted as is.

    Raises FileNotFoundError naming the folders searched.
    """
    if RUNTIME.full_path_hook is not None:
        found = RUNTIME.full_path_hook(kind, name)
        if found:
            return Path(found)
    p = Path(name).expanduser()
    if p.is_absolute() and p.is_file():
        return p
    for folder in _folders(kind):
        cand = (folder / name).resolve()
        if cand.is_file() and folder.resolve() in cand.parents:
            return cand
    searched = ", ".join(str(f) for f in _folders(kind)) or "(none: set EMOVID_MODELS_DIR or pass an absolute path)"
    raise FileNotFoundError(f"{kind} file {name!r} not found; searched: {searched}")


@contextmanager
def configured(**changes) -> Iterator[Runtime]:
    """Temporarily change runtime fields (used by the headless runner and tests)."""
    old = {k: getattr(RUNTIME, k) for k in changes}
    for k, v in changes.items():
        setattr(RUNTIME, k, v)
    try:
        yield RUNTIME
    finally:
        for k, v in old.items():
            setattr(RUNTIME, k, v)
