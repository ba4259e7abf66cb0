"""Architecture rules, read from the source with ``ast`` (imports at any depth, inside functions too).

- The domain (everything in ``emovid_core`` outside ``host/``) never imports ``emovid_core.host``; nor do the nodes.
- Only ``emovid_core/host/schema.py`` knows the pack's ``nodes/`` folder; no shipped code imports ComfyUI's ``nodes``.
- No shipped code reads a path under ``tests/`` (data the library needs ships in the package).
- ``emovid_core`` never imports ComfyUI.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "emovid_core"
HOST = CORE / "host"
NODES_READER = HOST / "schema.py"
# `python -m emovid_core` is the CLI's second entry point (pyproject's `emovid` script is the first).
ENTRY_POINTS = {CORE / "__main__.py"}
COMFYUI_MODULES = {"comfy", "folder_paths", "server", "nodes", "comfy_extras", "comfy_api", "comfy_execution", "execution"}


def _shipped_files() -> list[Path]:
    files = [ROOT / "__init__.py", *sorted(CORE.rglob("*.py")), *sorted((ROOT / "nodes").rglob("*.py"))]
    return [f for f in files if "__pycache__" not in f.parts]


def _module_name(path: Path) -> str:
    """Dotted name of a file; the pack root ``__init__.py`` is the pack package, called ``<pack>`` here."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["<pack>", *parts]) if parts and parts[0] == "nodes" else ".".join(parts) or "<pack>"


def _package(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _tree(path: Path, source: str | None = None) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8") if source is None else source, filename=str(path))


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """Every module a file imports, as absolute dotted names, with line numbers.

    Relative imports are resolved against the file's package; ``from pkg import name`` also yields ``pkg.name``
    (it may be a submodule); ``importlib.import_module("x")`` / ``__import__("x")`` with a literal count too.
    """
    pkg = _package(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(_tree(path, source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = pkg.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in ("import_module", "__import__", "find_spec") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _docstring_nodes(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


PATH_CALLS = {"Path", "PurePath", "join", "joinpath", "open", "spec_from_file_location", "glob", "rglob", "is_file", "exists"}


def path_parts(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """String constants used as (parts of) file paths: ``"a/b"``-style literals, ``x / "part"`` operands and the
    arguments of path-building calls (``Path``, ``os.path.join``, ``joinpath``, ...). Docstrings are left out:
    they describe, they do not read; a bare ``"nodes"`` dict key (a workflow's node list) is not a path."""
    tree = _tree(path, source)
    docs = _docstring_nodes(tree)
    in_path_context: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            in_path_context |= {id(node.left), id(node.right)}
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in PATH_CALLS:
                in_path_context |= {id(a) for a in node.args}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
            continue
        if re.search(r"[/\\]", node.value) or id(node) in in_path_context:
            found.append((node.lineno, node.value))
    return found


def _refers_to(folder: str, literal: str) -> bool:
    return re.search(rf"(^|[/\\]){folder}([/\\]|$)", literal) is not None


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _is_host(name: str) -> bool:
    return name == "emovid_core.host" or name.startswith("emovid_core.host.")


def test_domain_and_nodes_never_import_the_host_layer():
    offenders = [
        f"{_rel(f)}:{line} imports {name}"
        for f in _shipped_files()
        if HOST not in f.parents and f not in ENTRY_POINTS
        for line, name in imported_modules(f)
        if _is_host(name)
    ]
    assert offenders == [], "the host layer imports the domain, never the reverse:\n" + "\n".join(offenders)


def test_only_the_schema_reader_knows_the_nodes_folder():
    offenders = []
    for f in _shipped_files():
        in_pack_adapters = f == ROOT / "__init__.py" or (ROOT / "nodes") in f.parents
        for line, name in imported_modules(f):
            top = name.split(".")[0]
            if top == "nodes":
                offenders.append(f"{_rel(f)}:{line} imports {name} (ComfyUI's own `nodes` module)")
            elif name.startswith("<pack>.nodes") and not in_pack_adapters:
                offenders.append(f"{_rel(f)}:{line} imports the pack's nodes package ({name})")
        if f == NODES_READER or in_pack_adapters:
            continue
        offenders += [f"{_rel(f)}:{line} refers to the nodes/ folder: {s!r}" for line, s in path_parts(f) if _refers_to("nodes", s)]
    assert offenders == [], "only emovid_core/host/schema.py (load_pack_nodes) may load nodes/:\n" + "\n".join(offenders)


def test_the_schema_reader_really_is_the_one_that_loads_nodes():
    # Guards the rule above against passing because nothing matched: the one allowed reference must be found.
    assert any(s == "nodes" for _, s in path_parts(NODES_READER))


def test_no_shipped_code_reads_the_tests_folder():
    offenders = [f"{_rel(f)}:{line} {s!r}" for f in _shipped_files() for line, s in path_parts(f) if _refers_to("tests", s)]
    assert offenders == [], "data the library needs ships in the package, not in tests/:\n" + "\n".join(offenders)


def test_emovid_core_never_imports_comfyui():
    offenders = [
        f"{_rel(f)}:{line} imports {name}"
        for f in _shipped_files()
        if CORE in f.parents
        for line, name in imported_modules(f)
        if name.split(".")[0] in COMFYUI_MODULES
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ..host import graph\n", "emovid_core.host.graph"),
        ("def f():\n    from ..host.schema import load_pack_nodes\n", "emovid_core.host.schema.load_pack_nodes"),
        ("from .. import host\n", "emovid_core.host"),
        ("import importlib\nimportlib.import_module('emovid_core.host.cli')\n", "emovid_core.host.cli"),
    ],
)
def test_import_reader_resolves_relative_and_nested_imports(source, expected):
    # The rules are only as good as the reader: the source is read as a domain module one level down.
    names = [name for _, name in imported_modules(CORE / "lora" / "probe.py", source)]
    assert expected in names and _is_host(expected)


def test_package_data_covers_every_data_file_in_the_package():
    """Every file under an ``emovid_core/**/data/`` folder is matched by pyproject's package-data (so it ships)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["emovid_core"]
    shipped = {p for g in globs for p in CORE.glob(g) if p.is_file()}
    data_files = {p for p in CORE.rglob("*") if p.is_file() and "data" in p.relative_to(CORE).parts[:-1] and "__pycache__" not in p.parts}
    assert HOST / "data" / "core_object_info.json" in data_files
    assert sorted(map(_rel, data_files - shipped)) == []


@pytest.mark.parametrize(
    "source, folder, found",
    [
        ('P = ROOT / "tests" / "data" / "core_object_info.json"\n', "tests", True),
        ('import os\nP = os.path.join(ROOT, "tests", "x.json")\n', "tests", True),
        ('def f():\n    return open("tests/data/x.json")\n', "tests", True),
        ('init = PACK_ROOT / "nodes" / "__init__.py"\n', "nodes", True),
        ('ids = [n["id"] for n in ui["nodes"]]\n', "nodes", False),
        ('"""Reads tests/data/x.json."""\n', "tests", False),
    ],
)
def test_path_reader_finds_folder_references_in_code(source, folder, found):
    assert any(_refers_to(folder, s) for _, s in path_parts(CORE / "probe.py", source)) is found
