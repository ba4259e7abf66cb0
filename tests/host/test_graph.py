"""The headless graph runner: ComfyUI-style validation (every problem reported) and list semantics."""

from __future__ import annotations

import json

import pytest

from emovid_core import runtime
from emovid_core.host.cli import main as cli_main
from emovid_core.host.graph import GraphValidationError, apply_overrides, parse_set, run_workflow, validate


class Number:
    DESCRIPTION = "emit a number"
    CATEGORY = "EmoVid/test"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("value",)
    FUNCTION = "go"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 1, "min": 0, "max": 10, "tooltip": "v"})}}

    def go(self, value):
        return (value,)


class Add:
    DESCRIPTION = "a + b"
    CATEGORY = "EmoVid/test"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("sum",)
    FUNCTION = "go"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"a": ("INT", {"tooltip": "a"}), "b": ("INT", {"default": 0, "min": -5, "max": 5, "tooltip": "b"})},
            "optional": {"mode": (["plain", "double"], {"tooltip": "m"})},
        }

    def go(self, a, b, mode="plain"):
        s = a + b
        return (s * 2 if mode == "double" else s,)


class Spread:
    """Outputs a list, like the Emotion Sweep node."""

    DESCRIPTION = "list"
    CATEGORY = "EmoVid/test"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("values",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "go"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"tooltip": "n"})}}

    def go(self, n):
        return (list(range(n)),)


class Collect:
    DESCRIPTION = "collects everything it gets"
    CATEGORY = "EmoVid/test"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "go"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {"tooltip": "x"})}, "hidden": {"uid": "UNIQUE_ID"}}

    def go(self, x, uid=None):
        path = runtime.output_directory() / f"collect_{uid}_{x}.txt"
        path.write_text(str(x))
        return {"ui": {"text": [f"x={x}"], "uid": [uid]}, "result": ()}


class CollectList(Collect):
    INPUT_IS_LIST = True

    def go(self, x, uid=None):
        return {"ui": {"text": [",".join(map(str, x))]}, "result": ()}


CLASSES = {"Number": Number, "Add": Add, "Spread": Spread, "Collect": Collect, "CollectList": CollectList}


def test_runs_in_dependency_order_and_collects_ui_and_files(tmp_path):
    wf = {
        "9": {"class_type": "Collect", "inputs": {"x": ["5", 0]}},
        "5": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 3, "mode": "double"}},
        "1": {"class_type": "Number", "inputs": {"value": 4}},
        "7": {"class_type": "Number", "inputs": {"value": 9}},  # feeds no output: must not run
    }
    res = run_workflow(wf, out_dir=tmp_path, classes=CLASSES)
    assert res.order == ["1", "5", "9"]
    assert res.ui == {"9": {"text": ["x=14"], "uid": ["9"]}}
    assert [p.name for p in res.files] == ["collect_9_14.txt"]
    assert res.outputs["5"] == [[14]]


def test_validation_reports_every_problem_with_node_and_input():
    wf = {
        "1": {"class_type": "Number", "inputs": {"value": 11}},  # above max
        "2": {"class_type": "Add", "inputs": {"b": -6, "mode": "triple"}},  # a missing, b below min, bad combo
        "3": {"class_type": "Nope", "inputs": {}},  # unknown class
        "4": {"class_type": "Collect", "inputs": {"x": ["99", 0]}},  # missing node
        "5": {"class_type": "Collect", "inputs": {"x": ["1", 3]}},  # missing output slot
        "6": {"inputs": {}},  # no class_type
        "7": {"class_type": "Number", "inputs": {"value": "abc"}},  # not convertible
    }
    with pytest.raises(GraphValidationError) as err:
        validate(wf, CLASSES)
    got = {(p.node_id, p.input_name, p.type) for p in err.value.problems}
    assert got == {
        ("1", "value", "value_bigger_than_max"),
        ("2", "a", "required_input_missing"),
        ("2", "b", "value_smaller_than_min"),
        ("2", "mode", "value_not_in_list"),
        ("3", None, "invalid_prompt"),
        ("4", "x", "bad_linked_input"),
        ("5", "x", "bad_linked_input"),
        ("6", None, "invalid_prompt"),
        ("7", "value", "invalid_input_type"),
    }
    text = str(err.value)
    assert "node 2 (Add), input 'mode'" in text and "'triple' not in list" in text


def test_cycle_and_type_mismatch_are_reported():
    class Text:
        DESCRIPTION = "t"
        CATEGORY = "EmoVid/test"
        RETURN_TYPES = ("STRING",)
        FUNCTION = "go"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

    wf = {
        "1": {"class_type": "Add", "inputs": {"a": ["2", 0], "b": 0}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 0}},
        "3": {"class_type": "Collect", "inputs": {"x": ["4", 0]}},
        "4": {"class_type": "Text", "inputs": {}},
    }
    with pytest.raises(GraphValidationError) as err:
        validate(wf, {**CLASSES, "Text": Text})
    kinds = sorted(p.type for p in err.value.problems)
    assert kinds == ["dependency_cycle", "return_type_mismatch"]


def test_ui_format_and_no_output_are_refused():
    with pytest.raises(GraphValidationError, match="UI-format"):
        validate({"nodes": [], "links": []}, CLASSES)
    with pytest.raises(GraphValidationError, match="no output node"):
        validate({"1": {"class_type": "Number", "inputs": {"value": 1}}}, CLASSES)


def test_list_outputs_map_over_downstream_nodes(tmp_path):
    wf = {
        "1": {"class_type": "Spread", "inputs": {"n": 3}},
        "2": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": 1}},
        "3": {"class_type": "Collect", "inputs": {"x": ["2", 0]}},
        "4": {"class_type": "CollectList", "inputs": {"x": ["2", 0]}},
    }
    res = run_workflow(wf, out_dir=tmp_path, classes=CLASSES)
    assert res.outputs["2"] == [[1, 2, 3]]
    assert res.ui["3"]["text"] == ["x=1", "x=2", "x=3"]  # called once per element
    assert res.ui["4"]["text"] == ["1,2,3"]  # INPUT_IS_LIST gets the whole list once


def test_set_overrides_parse_json_and_reject_unknown_nodes():
    wf = {"3": {"class_type": "Number", "inputs": {"value": 1}}}
    assert parse_set(["3.value=7", "3.name=hello world"]) == [("3", "value", 7), ("3", "name", "hello world")]
    assert apply_overrides(wf, ["3.value=7"])["3"]["inputs"]["value"] == 7
    assert wf["3"]["inputs"]["value"] == 1  # original untouched
    with pytest.raises(ValueError, match="no node '4'"):
        apply_overrides(wf, ["4.value=1"])
    with pytest.raises(ValueError, match="NODE.INPUT=VALUE"):
        parse_set(["value=1"])


def test_cli_run_reports_validation_errors(tmp_path, capsys):
    wf_path = tmp_path / "wf.json"
    wf_path.write_text(json.dumps({"1": {"class_type": "EmoVidDoesNotExist", "inputs": {}}}))
    code = cli_main(["run", str(wf_path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "unknown class_type 'EmoVidDoesNotExist'" in capsys.readouterr().err


def test_validate_inputs_owns_the_checks_of_the_inputs_it_names(tmp_path):
    class Picky(Add):
        @classmethod
        def VALIDATE_INPUTS(cls, mode):
            return True if mode in ("plain", "double", "custom") else f"mode {mode!r} is not known"

    classes = {**CLASSES, "Picky": Picky}
    ok = {"1": {"class_type": "Picky", "inputs": {"a": 1, "b": 99, "mode": "custom"}},
          "2": {"class_type": "Collect", "inputs": {"x": ["1", 0]}}}
    with pytest.raises(GraphValidationError) as err:  # b is not named by the validator: still range-checked
        validate(ok, classes)
    assert [(p.input_name, p.type) for p in err.value.problems] == [("b", "value_bigger_than_max")]
    ok["1"]["inputs"]["b"] = 1
    assert run_workflow(ok, out_dir=tmp_path, classes=classes).ui["2"]["text"] == ["x=2"]
    ok["1"]["inputs"]["mode"] = "weird"
    with pytest.raises(GraphValidationError, match="mode 'weird' is not known"):
        validate(ok, classes)
