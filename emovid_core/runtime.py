"""Runtime services shared by the core and the nodes: progress, folders, model files.

The core never imports ComfyUI. Inside ComfyUI, ``nodes/_comfy.py`` installs hooks here (ComfyUI's
progress bar, ``folder_paths``); headless, the defaults below apply (tqdm, a local output folder and
model folders under ``EMOVID_MODELS_DIR``). That is what lets the same node code run in both places.

Paths typed into node inputs go through :func:`resolve_user_path`: headless (the CLI, scripts, tests) any path
is accepted, since the person typing it owns the machine; in a server, where whoever reaches the port can queue a
prompt, a path must lie inside the folders the server serves (see :func:`allowed_roots`) unless
``EMOVID_ALLOW_ANY_PATH=1`` says the machine has a single user.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

MODEL_EXTENSIONS = (".safetensors", ".sft")
# Set to 1 to let node inputs name any path on a ComfyUI server (a single-user machine); documented in the README.
ALLOW_ANY_PATH_ENV = "EMOVID_ALLOW_ANY_PATH"


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
    # In a server: the folders node inputs may read, by name ("input", "output", "temp", "models", folder kinds).
    # None headless, where any path is accepted.
    allowed_roots_hook: Callable[[], dict[str, list[str]]] | None = None
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
    """Absolute path of model file ``name`` of ``kind``.

    In a server the name resolves only through ComfyUI's folders for ``kind`` (``folder_paths``), unless
    ``EMOVID_ALLOW_ANY_PATH=1``; headless an absolute existing path is accepted as is. Raises FileNotFoundError
    naming the folders searched (PathNotAllowed for a path outside the server's folders).
    """
    if RUNTIME.full_path_hook is not None:
        found = RUNTIME.full_path_hook(kind, name)
        if found:
            return Path(found)
    if paths_restricted():
        p = Path(name).expanduser()
        if p.is_absolute() or ".." in p.parts:
            _refuse(f"{kind} file", name, (kind,))
        searched = ", ".join(str(f) for f in model_folders(kind)) or "(no folder of this kind)"
        raise FileNotFoundError(f"{kind} file {name!r} not found; searched: {searched} (ComfyUI's {kind!r} folders: "
                                "put the file there or add a folder in extra_model_paths.yaml)")
    p = Path(name).expanduser()
    if p.is_absolute() and p.is_file():
        return p
    # The name may not climb out of a folder ('..'), but a link the user put inside one is followed, as
    # ComfyUI's folder_paths and the classifier lookup do (models are often linked in from a shared disk).
    if ".." not in p.parts:
        for folder in _folders(kind):
            cand = folder / name
            if cand.is_file():
                return Path(os.path.abspath(cand))
    searched = ", ".join(str(f) for f in _folders(kind)) or "(none: set EMOVID_MODELS_DIR or pass an absolute path)"
    raise FileNotFoundError(f"{kind} file {name!r} not found; searched: {searched}")


# ------------------------------------------------------------------------------------- user-given paths


class PathNotAllowed(PermissionError):
    """A node input named a path outside the folders a ComfyUI server serves."""


def paths_restricted() -> bool:
    """True in a ComfyUI server (node inputs may only name its folders) unless ``EMOVID_ALLOW_ANY_PATH=1``."""
    return RUNTIME.allowed_roots_hook is not None and os.environ.get(ALLOW_ANY_PATH_ENV, "").strip() != "1"


def allowed_roots() -> dict[str, list[Path]]:
    """The folders node inputs may read in a server, by name: input, output, temp, models and every folder kind
    (including the ones declared in extra_model_paths.yaml). Empty headless (no restriction)."""
    if RUNTIME.allowed_roots_hook is None:
        return {}
    return {name: [Path(p) for p in paths] for name, paths in RUNTIME.allowed_roots_hook().items()}


def _inside(path: Path, roots: dict[str, list[Path]]) -> bool:
    # Lexical (abspath, '..' refused before): a symlink the administrator put inside a served folder is honoured,
    # as ComfyUI's own loaders do; a remote user cannot create one. Each root also counts by its real path, so
    # the real location of a symlinked models folder is accepted too.
    target = os.path.abspath(path)
    for paths in roots.values():
        for root in paths:
            for r in {os.path.abspath(root), os.path.realpath(root)}:
                if target == r or target.startswith(r.rstrip(os.sep) + os.sep):
                    return True
    return False


def _refuse(what: str, value: str, kinds: Sequence[str]) -> None:
    roots = allowed_roots()
    shown = ", ".join(f"{name} ({', '.join(str(p) for p in paths)})" for name, paths in roots.items()
                      if name in ("input", "output", "temp", "models", *kinds) and paths)
    declare = " or ".join(repr(k) for k in kinds) or "a folder kind"
    raise PathNotAllowed(
        f"{what} {value!r} is outside the folders this ComfyUI server reads: {shown or 'none'}. Move it into one "
        f"of them, declare its folder as {declare} in extra_model_paths.yaml, or set {ALLOW_ANY_PATH_ENV}=1 before "
        "starting ComfyUI to allow any path (only on a machine no one else can reach)")


def resolve_user_path(kinds: str | Sequence[str], value: str | os.PathLike, *, relative_to: Sequence[Path] = (),
                      what: str = "path") -> Path:
    """The file or folder a node input names, checked against the server's folders.

    ``value`` is absolute, or relative to one of ``relative_to`` or the folders of ``kinds`` (folder kinds such as
    ``emovid_datasets``, searched in order; headless, last, the working folder). The first candidate that exists is
    returned, else the first candidate, so the caller reports it missing in its own words. In a server (see
    :func:`paths_restricted`) a path outside :func:`allowed_roots`, or with a '..' component, raises
    :class:`PathNotAllowed` before anything is looked up, so the answer tells nothing about files outside.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    text = os.fspath(value).strip()
    if not text:
        raise ValueError(f"{what} is empty")
    p = Path(text).expanduser()
    restricted = paths_restricted()
    if restricted and ".." in p.parts:
        _refuse(what, text, kinds)
    if p.is_absolute():
        candidates = [p]
    else:
        folders = [Path(f) for f in relative_to] + [f for k in kinds for f in model_folders(k)]
        candidates = [f / p for f in folders] + ([] if restricted else [p])
    if restricted:
        roots = allowed_roots()
        candidates = [c for c in candidates if _inside(c, roots)]
        if not candidates:
            _refuse(what, text, kinds)
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


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
