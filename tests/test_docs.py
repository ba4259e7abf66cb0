"""The README and docs/*.md stay true to the code: links, anchors, commands, paths, modules and the README's tables.

What is checked in every markdown file (README.md and docs/*.md):
- every relative link (``[text](path#anchor)``) names a file in the repository and, for a markdown target, an
  anchor that GitHub would generate from one of its headings;
- every command line in a shell code block: ``emovid ...`` parses with the real CLI parser (``build_parser()``,
  parsed, never run); ``bash scripts/...`` names an existing script (and, for dev.sh, one of its verbs);
  ``python -m X`` names an importable module; ``python path.py`` an existing file; ``emovid run|queue WORKFLOW
  --set N.INPUT=...`` names a node and an input of that workflow;
- inline ``emovid ...`` spans name real subcommands and flags; inline paths into the repository exist; inline
  ``emovid_core.x.y`` names import; ``from emovid_core... import ...`` in python blocks imports.

Synopsis notation in shell blocks is understood, so a usage line is checked too: ``[...]`` marks an optional part
(it is included), ``a|b|c`` with no spaces lists alternatives (each one is parsed), ``...`` repeats (dropped).
A real pipe is written with spaces around it (``echo x | emovid prompt -``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import importlib
import importlib.util
import io
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
DOC_IDS = [str(p.relative_to(ROOT)) for p in DOCS]
# Code that points readers at a doc section: docstrings, error messages, comments.
CODE_DIRS = ["emovid_core", "nodes", "scripts", "benchmarks", "tests", ".ci"]
SHELL_LANGS = {"bash", "sh", "shell", "console", ""}
# A token or span whose first part is one of the repository's folders is a repo path and must exist. A fixed
# list, so what a run left behind (.venv, emovid_demo/, out/) never decides what gets checked.
TOP_DIRS = {"emovid_core", "nodes", "workflows", "tests", "benchmarks", "scripts", "docs", ".ci", "locales"}


# ----------------------------------------------------------------------------------------------- markdown model
def split_markdown(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, list[str]]]]:
    """(prose lines, code blocks) with 1-based line numbers; a block is (first line, language, lines)."""
    prose, blocks, current = [], [], None
    for no, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if current is None and fence:
            current = (no, fence.group(2).lower(), [], fence.group(1))
        elif current is not None and line.strip().startswith(current[3]):
            blocks.append(current[:3])
            current = None
        elif current is not None:
            current[2].append(line)
        else:
            prose.append((no, line))
    assert current is None, f"unclosed code fence opened at line {current[0]}"
    return prose, blocks


def inline_code(line: str) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"(`+)(.+?)\1", line)]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images -> their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())  # \w is Unicode-aware, as GitHub's [\p{L}\p{N}_]
    return text.replace(" ", "-")


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    prose, _ = split_markdown(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    out.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    return frozenset(out)


def links(path: Path) -> list[tuple[int, str]]:
    prose, _ = split_markdown(path.read_text(encoding="utf-8"))
    found = []
    for no, line in prose:
        bare = re.sub(r"(`+).+?\1", "", line)  # a link written inside code is not a link
        found += [(no, m.group(1)) for m in re.finditer(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", bare)]
    return found


def link_problem(doc: Path, target: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: -- never fetched from a test
        return None
    file_part, _, anchor = target.partition("#")
    dest = (doc.parent / file_part).resolve() if file_part else doc
    if ROOT not in dest.parents and dest != ROOT:
        return f"{target}: leaves the repository"
    if not dest.exists():
        return f"{target}: no such file {dest.relative_to(ROOT)}"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{target}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)} (have: {sorted(anchors(dest))})"
    return None


# ------------------------------------------------------------------------------------------------- commands
@functools.cache
def cli_parser() -> argparse.ArgumentParser:
    from emovid_core.host.cli import build_parser

    return build_parser()


@functools.cache
def dev_sh_verbs() -> frozenset[str]:
    text = (ROOT / "scripts" / "dev.sh").read_text()
    case = text.split('case "$cmd" in', 1)[1].split("esac", 1)[0]
    return frozenset(v for arm in re.findall(r"^\s*([\w|]+)\)", case, re.M) for v in arm.split("|"))


def parse_emovid(args: list[str]) -> str | None:
    """Parse ``emovid ARGS`` with the real parser (no handler runs); the error argparse gives, or None."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli_parser().parse_args(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1]
    return None


def _subparsers(p: argparse.ArgumentParser):
    return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)


def emovid_flags_problem(args: list[str]) -> str | None:
    """For a fragment such as ``emovid dataset stats --json``: the subcommands and flags exist (no values needed)."""
    p, skip = cli_parser(), False
    for tok in args:
        if skip:
            skip = False
            continue
        if tok.startswith("-") and tok != "-":
            flag = tok.split("=", 1)[0]
            action = p._option_string_actions.get(flag)
            if action is None:
                return f"{p.prog}: no option {flag}"
            skip = "=" not in tok and action.nargs != 0
            continue
        sub = _subparsers(p)
        if sub is not None:
            if tok not in sub.choices:
                return f"{p.prog}: no subcommand {tok!r} (have: {', '.join(sub.choices)})"
            p = sub.choices[tok]
    return None


@functools.cache
def pack_inputs() -> dict[str, set[str]]:
    from emovid_core.host.schema import pack_schemas

    return {nid: {i.name for i in s.inputs} for nid, s in pack_schemas().items()}


def override_problems(args: list[str]) -> list[str]:
    """``emovid run|queue WORKFLOW --set 6.emotion=fear``: node 6 exists in that API file and takes ``emotion``."""
    if len(args) < 2 or args[0] not in {"run", "queue"} or not (ROOT / args[1]).is_file():
        return []
    graph = json.loads((ROOT / args[1]).read_text(encoding="utf-8"))
    if "nodes" in graph:  # UI format: converted by the server first
        return []
    problems = []
    for flag, value in zip(args, args[1:]):
        m = re.match(r"^([\w-]+)\.(\w+)=", value)
        if flag not in {"--set", "--upload"} or not m:
            continue
        node, name = m.groups()
        if node not in graph:
            problems.append(f"{flag} {value}: {args[1]} has no node {node!r}")
            continue
        cls = graph[node].get("class_type", "?")
        if name not in graph[node].get("inputs", {}) and name not in pack_inputs().get(cls, set()):
            problems.append(f"{flag} {value}: node {node} ({cls}) has no input {name!r}")
    return problems


def expand_synopsis(tokens: list[str]) -> list[list[str]]:
    """``--mode random|balanced`` -> one argument list per alternative (the others keep their first one)."""
    alts = [i for i, t in enumerate(tokens) if "|" in t and t.strip("|")]
    if not alts:
        return [tokens]
    first = [t.split("|")[0] if i in alts else t for i, t in enumerate(tokens)]
    return [first[:i] + [alt] + first[i + 1:] for i in alts for alt in tokens[i].split("|")]


def shell_lines(lang: str, lines: list[str]) -> list[str]:
    """Logical command lines of a code block: continuations joined, ``$ `` prompts honoured, synopsis cleaned."""
    joined, buf = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        joined.append(buf + line)
        buf = ""
    if buf:
        joined.append(buf)
    if any(line.lstrip().startswith("$ ") for line in joined):
        joined = [line.lstrip()[2:] for line in joined if line.lstrip().startswith("$ ")]
    out = []
    for line in joined:
        line = re.sub(r"(?<=\s)\.\.\.(?=[\s\]]|$)|(?<=\s)…(?=[\s\]]|$)", "", line)  # "[PATH ...]" repeats
        while re.search(r"(^|\s)\[|\](\s|$)", line):
            line = re.sub(r"(^|\s)\[", r"\1", line)
            line = re.sub(r"\](\s|$)", r"\1", line)
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out


COMMAND_WORDS = re.compile(r"^(emovid|bash|cd|(\S*/)?python3?(\.\d+)?)$")


def first_word(line: str) -> str:
    words = [w for w in line.split() if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]
    return words[0] if words else ""


def repo_path_problem(token: str) -> str | None:
    """A token that names something in the repository (its first part is a top-level folder) must exist."""
    token = token.rstrip(".,;:")
    if "/" not in token or "<" in token or "{" in token or "$" in token:
        return None
    if token.split("/", 1)[0] not in TOP_DIRS or not re.fullmatch(r"[\w.*/-]+", token):
        return None
    if "*" in token:
        return None if list(ROOT.glob(token)) else f"{token}: matches no file"
    return None if (ROOT / token).exists() else f"{token}: no such path in the repository"


def command_problems(tokens: list[str], strict: bool, state: dict) -> list[str]:
    """Problems of one shell line's tokens; ``strict`` = a full ``emovid`` command (else a fragment in prose)."""
    problems = []
    if not strict:  # a fragment in prose stops at its first placeholder: `emovid <name>`, `python -m …`
        cut = next((i for i, t in enumerate(tokens) if re.search(r"[<{…]|:$", t)), len(tokens))
        tokens = tokens[:cut]
    segments, seg = [], []
    for tok in tokens:
        if tok in {"|", "||", "&&", ";"}:
            segments.append(seg)
            seg = []
        else:
            seg.append(tok)
    segments.append(seg)
    for seg in segments:
        while seg and re.match(r"^[A-Za-z_]\w*=", seg[0]):
            seg = seg[1:]
        if not seg:
            continue
        cmd, args = seg[0], seg[1:]
        if cmd == "cd":
            dest = args[0] if args else "~"
            state["outside"] = dest[:1] in "/~$" or not (ROOT / dest).is_dir()
            continue
        if state.get("outside"):
            continue  # after `cd ComfyUI/...`, relative paths are not ours
        problems += [p for p in map(repo_path_problem, args) if p]
        if cmd == "emovid":
            for variant in expand_synopsis(args):
                p = parse_emovid(variant) if strict else emovid_flags_problem(variant)
                if p:
                    problems.append(f"emovid {' '.join(variant)}: {p}")
            problems += override_problems(args)
        elif cmd == "bash" and args and args[0][:1] not in "/~$-":
            if not (ROOT / args[0]).is_file():
                problems.append(f"bash {args[0]}: no such script")
            elif args[0] == "scripts/dev.sh" and (len(args) < 2 or args[1] not in dev_sh_verbs()):
                problems.append(f"bash {' '.join(args)}: dev.sh knows only {sorted(dev_sh_verbs())}")
        elif re.match(r"^(\S*/)?python3?(\.\d+)?$", cmd) and args:
            if args[0] == "-m":
                if len(args) > 1 and importlib.util.find_spec(args[1]) is None:
                    problems.append(f"python -m {args[1]}: no such module")
            elif args[0].endswith(".py") and args[0][:1] not in "/~$" and not (ROOT / args[0]).is_file():
                problems.append(f"python {args[0]}: no such file")
    return problems


# -------------------------------------------------------------------------------------------- python names
_MISSING = object()


def lookup(name: str):
    """(object, None) for a dotted name such as ``emovid_core.prompts.build_prompt``, or (None, problem)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            nxt = getattr(obj, attr, _MISSING)
            if nxt is _MISSING:
                return None, f"{name}: {'.'.join(parts[:cut])} has no {attr!r}"
            obj = nxt
        return obj, None
    return None, f"{name}: no such module"


def python_block_problems(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"python block does not parse: {exc}"]
    problems, bound = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "emovid_core":
            names = [(f"{node.module}.{a.name}", a.asname or a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            names = [(a.name if a.asname else a.name.split(".")[0], a.asname or a.name.split(".")[0])
                     for a in node.names if a.name.split(".")[0] == "emovid_core"]
        else:
            continue
        for dotted, local in names:
            obj, problem = lookup(dotted)
            if problem:
                problems.append(f"import of {dotted}: {problem}")
            else:
                bound[local] = (dotted, obj)
    for node in ast.walk(tree):  # vio.read_frames(...) on an imported module or class
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            dotted, obj = bound[node.value.id]
            if not hasattr(obj, node.attr):
                problems.append(f"{node.value.id}.{node.attr}: {dotted} has no {node.attr!r}")
    return problems


# ----------------------------------------------------------------------------------------------- the checks
def doc_problems(doc: Path) -> list[str]:
    """Every problem of one markdown file, as 'file:line: what'."""
    rel = doc.relative_to(ROOT)
    text = doc.read_text(encoding="utf-8")
    prose, blocks = split_markdown(text)
    problems = [f"{rel}:{no}: link {p}" for no, t in links(doc) if (p := link_problem(doc, t))]
    for start, lang, lines in blocks:
        if lang == "python":
            problems += [f"{rel}:{start}: {p}" for p in python_block_problems("\n".join(lines))]
        if lang not in SHELL_LANGS:
            continue
        state: dict = {}
        for line in shell_lines(lang, lines):
            if lang == "" and not COMMAND_WORDS.match(first_word(line)):
                continue  # a plain block holds output or a tree as well as commands
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError as exc:
                problems.append(f"{rel}:{start}: cannot split {line!r}: {exc}")
                continue
            problems += [f"{rel}:{start}: {p}" for p in command_problems(tokens, True, state)]
    for no, line in prose:
        for span in inline_code(line):
            if COMMAND_WORDS.match(first_word(span)) and first_word(span) != "cd":
                try:
                    tokens = shlex.split(span)
                except ValueError:
                    tokens = span.split()
                problems += [f"{rel}:{no}: `{span}`: {p}" for p in command_problems(tokens, False, {})]
            elif (p := repo_path_problem(span)) is not None:
                problems.append(f"{rel}:{no}: `{span}`: {p}")
            elif m := re.match(r"^emovid_core(?:\.[A-Za-z_]\w*)+", span):
                if p := lookup(m.group(0))[1]:
                    problems.append(f"{rel}:{no}: `{span}`: {p}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_links_commands_paths_and_names_in_docs_are_valid(doc):
    problems = doc_problems(doc)
    assert problems == [], "\n".join(problems)


def test_the_checker_catches_broken_links_commands_and_paths(tmp_path):
    """The checks above can fail: each kind of mistake in a scratch doc is reported."""
    bad = ROOT / "docs" / "_scratch_test_docs.md"
    bad.write_text(
        "# Scratch\n\n## A heading\n\n"
        "[ok](#a-heading) [gone](no_such.md) [anchor](../README.md#no-such-section)\n\n"
        "Inline: `emovid dataset stats --no-such-flag`, `tests/no_such_test.py`, `emovid_core.prompts.no_such`.\n\n"
        "```bash\nemovid analyze clip.mp4 --stride twenty\nemovid nosuch\nbash scripts/dev.sh deploy\n"
        "python -m emovid_core.no_such\nemovid dataset sample ROOT --mode random|nonsense\n"
        "emovid run workflows/api/emovid_headless_diffusers.json --set 3.captions=x --set 99.seed=1\n```\n\n"
        "```python\nfrom emovid_core.prompts import no_such_function\n```\n",
        encoding="utf-8",
    )
    try:
        problems = "\n".join(doc_problems(bad))
    finally:
        bad.unlink()
    for expected in ("no_such.md", "#no-such-section", "--no-such-flag", "tests/no_such_test.py",
                     "prompts has no 'no_such'", "--stride twenty", "emovid nosuch", "dev.sh deploy",
                     "emovid_core.no_such", "--mode nonsense", "no_such_function",
                     "has no input 'captions'", "has no node '99'"):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"
    assert "#a-heading" not in problems and "--mode random:" not in problems


def test_github_slugs():
    assert github_slug("Headless queueing: `emovid queue`") == "headless-queueing-emovid-queue"
    assert github_slug("Intensity (0–2, default 1)") == "intensity-02-default-1"
    assert github_slug("Benchmark (`benchmarks/bench_dataset.py`)") == "benchmark-benchmarksbench_datasetpy"
    assert github_slug("Drag and drop, and sharing a workflow") == "drag-and-drop-and-sharing-a-workflow"


def test_code_points_only_at_doc_sections_that_exist():
    """Docstrings and messages that say 'see docs/x.md#section' keep pointing at a real section."""
    ref = re.compile(r"(?<![\w/])((?:docs/[\w-]+|README)\.md)(?:#([\w-]+))?")
    problems = []
    for top in CODE_DIRS:
        for path in (ROOT / top).rglob("*"):
            if path.suffix not in {".py", ".sh", ""} or not path.is_file() or path.name == "test_docs.py":
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                for m in ref.finditer(line):
                    target = m.group(1) + (f"#{m.group(2)}" if m.group(2) else "")
                    if p := link_problem(README, target):
                        problems.append(f"{path.relative_to(ROOT)}:{no}: {p}")
    assert problems == [], "\n".join(problems)


def test_readme_is_short_and_links_every_topic_doc():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300, "the README is for a five-minute read: move depth into docs/<topic>.md"
    linked = {t.partition("#")[0] for _, t in links(README)}
    orphans = [p.name for p in DOCS[1:] if f"docs/{p.name}" not in linked]
    assert orphans == [], f"docs not linked from the README's Documentation list: {orphans}"


def test_readme_example_table_lists_every_workflow():
    text = README.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(workflows/[\w.-]+\.json)` \|", text, re.M))
    shipped = {f"workflows/{p.name}" for p in (ROOT / "workflows").glob("*.json") if p.name != "index.json"}
    assert listed == shipped, f"missing from the README: {sorted(shipped - listed)}; not shipped: {sorted(listed - shipped)}"
