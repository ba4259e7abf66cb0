"""Nodes are thin: a node's FUNCTION parses inputs, calls one core function and shapes outputs.

Read from the source with ``ast``. The rule, per FUNCTION method (imports and the docstring not counted):
at most ``MAX_STATEMENTS`` statements at any depth, no loops, no try/with blocks, no comprehensions, no nested
functions, no private names from the core (``from x import _y``, ``obj._attr``). Logic that needs more belongs
in ``emovid_core`` where it is tested on its own. Shared inputs (decode options, LoRA inputs) are declared
once in ``nodes/_inputs.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import textwrap

import pytest

MAX_STATEMENTS = 6
BLOCKS = (ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def thin_problems(source: str, where: str) -> list[str]:
    """What makes one function not thin (empty: thin)."""
    func = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)), where
    body = func.body[1:] if ast.get_docstring(func) is not None else func.body
    problems, count = [], 0
    for top in body:
        for node in ast.walk(top):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private:
                    problems.append(f"{where}: line {node.lineno} imports private {', '.join(private)}")
                continue
            if isinstance(node, ast.stmt):
                count += 1
            if isinstance(node, BLOCKS):
                problems.append(f"{where}: line {node.lineno}: {type(node).__name__} block (move the logic into emovid_core)")
            elif isinstance(node, COMPREHENSIONS):
                problems.append(f"{where}: line {node.lineno}: a comprehension loops (move it into emovid_core)")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                problems.append(f"{where}: line {node.lineno}: nested {node.name!r}")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                problems.append(f"{where}: line {node.lineno}: private attribute .{node.attr}")
    if count > MAX_STATEMENTS:
        problems.append(f"{where}: {count} statements (at most {MAX_STATEMENTS}: parse inputs, call the core, shape outputs)")
    return problems


def test_every_node_function_is_thin(pack_nodes):
    problems = []
    for nid, cls in sorted(pack_nodes.items()):
        method = getattr(cls, cls.FUNCTION)
        problems += thin_problems(inspect.getsource(method), f"{nid}.{cls.FUNCTION}")
    assert not problems, "\n".join(problems)


class _FatNode:  # the patterns the rule exists for (the Sample Clip and pipeline LoRA nodes before #12)
    def sample(self, dataset, mode, index):
        from emovid_core.lora.apply import _adapter_name  # noqa: F401

        pool = [c for c in dataset.clips if c.type == mode]
        key = (mode, index)
        hit = self._cache.get(key)
        if hit is None:
            try:
                hit = pool[index]
            except IndexError:
                raise ValueError(f"index {index} too large") from None
            self._cache[key] = hit
        for _ in range(2):
            pass
        return (hit,)

    def short_but_loops(self, items):
        while items:
            items.pop()
        return (items,)

    def thin(self, dataset, seed):
        from emovid_core.dataset import pick_clip

        picked = pick_clip(dataset, seed=seed)
        return (picked.frames, picked.clip.caption)


def test_the_thin_rule_flags_what_it_should():
    fat = thin_problems(inspect.getsource(_FatNode.sample), "fat")
    text = "\n".join(fat)
    for expected in ("imports private _adapter_name", "a comprehension", "Try block", "For block", "private attribute ._cache",
                     "statements (at most"):
        assert expected in text, (expected, fat)
    assert any("While block" in p for p in thin_problems(inspect.getsource(_FatNode.short_but_loops), "loops"))
    assert thin_problems(inspect.getsource(_FatNode.thin), "thin") == []


# ------------------------------------------------------------------------------------- shared declarations


@pytest.fixture(scope="module")
def shared(pack_nodes):
    """nodes/_inputs.py as the loaded pack sees it (the pack is imported by file path, under its own name)."""
    package = inspect.getmodule(pack_nodes["EmoVidLoadVideo"]).__package__
    return sys.modules[f"{package}._inputs"]


def _node_inputs(cls) -> dict:
    spec = cls.INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def test_decode_inputs_are_declared_once_and_match_the_core_options(pack_nodes, shared):
    from emovid_core.video_io import DecodeOptions

    assert list(shared.DECODE_INPUTS) == [f.name for f in dataclasses.fields(DecodeOptions)]
    load, sample = _node_inputs(pack_nodes["EmoVidLoadVideo"]), _node_inputs(pack_nodes["EmoVidSampleClip"])
    for name, entry in shared.DECODE_INPUTS.items():
        assert load[name] == entry, name  # Load Video takes every decode option as declared
    for name in ("max_frames", "skip_first", "every_nth", "target_fps", "wan_4n1"):
        assert sample[name] == shared.DECODE_INPUTS[name], name
    # Sample Clip's frames go straight to Wan2.1: its size inputs step by 16 (DecodeOptions.check_wan_size).
    assert sample["width"] == shared.WAN_SIZE_INPUTS["width"] and sample["height"] == shared.WAN_SIZE_INPUTS["height"]
    assert "crop" not in sample
    # Every decode input a node declares is a DecodeOptions field, so its FUNCTION can hand them on by name.
    fields = {f.name for f in dataclasses.fields(DecodeOptions)}
    for nid in ("EmoVidLoadVideo", "EmoVidSampleClip"):
        params = set(inspect.signature(getattr(pack_nodes[nid], pack_nodes[nid].FUNCTION)).parameters)
        assert fields & set(_node_inputs(pack_nodes[nid])) <= params, nid


def test_lora_inputs_are_declared_once(pack_nodes, shared):
    lora = shared.lora_inputs()
    loader, pipe = _node_inputs(pack_nodes["EmoVidLoraLoader"]), _node_inputs(pack_nodes["EmoVidLoraLoaderPipeline"])
    stack = _node_inputs(pack_nodes["EmoVidLoraStack"])
    for name in ("lora_name", "strict", "blocks"):
        assert loader[name] == pipe[name] == lora[name], name
    assert stack["strict"] == lora["strict"]
    assert loader["strength"] == lora["strength"]
    # The pipeline's strength is an adapter weight: same range, its own tooltip.
    assert {k: v for k, v in pipe["strength"][1].items() if k != "tooltip"} == \
        {k: v for k, v in lora["strength"][1].items() if k != "tooltip"}
    assert pipe["strength"][1]["tooltip"] != lora["strength"][1]["tooltip"]


def test_inputs_helper_orders_and_overrides(shared):
    got = shared.inputs(shared.DECODE_INPUTS, "wan_4n1", "max_frames", max_frames="my tip")
    assert list(got) == ["wan_4n1", "max_frames"] and got["max_frames"][1]["tooltip"] == "my tip"
    assert got["max_frames"][1]["max"] == shared.DECODE_INPUTS["max_frames"][1]["max"]
    assert shared.DECODE_INPUTS["max_frames"][1]["tooltip"] != "my tip"  # the shared entry is untouched
    with pytest.raises(KeyError):
        shared.inputs(shared.DECODE_INPUTS, "no_such_input")
