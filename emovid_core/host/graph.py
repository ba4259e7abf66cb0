"""Headless graph runner: execute an API-format ComfyUI workflow made of this pack's nodes.

API format is ``{"<id>": {"class_type": ..., "inputs": {name: literal | ["<src id>", <output index>]}}}``.
Validation mirrors ComfyUI's (``execution.validate_prompt``): every problem is collected with its node id
and input name before anything runs. Execution follows ComfyUI's list semantics (``INPUT_IS_LIST``,
``OUTPUT_IS_LIST``, a node called once per element of a list input) so a graph behaves the same here
and in a server.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import runtime
from . import core_nodes
from .schema import NodeSchema, node_schema

# ComfyUI's validation error types, reused so messages read the same as a server's.
REQUIRED_INPUT_MISSING = "required_input_missing"
BAD_LINKED_INPUT = "bad_linked_input"
RETURN_TYPE_MISMATCH = "return_type_mismatch"
INVALID_INPUT_TYPE = "invalid_input_type"
VALUE_SMALLER_THAN_MIN = "value_smaller_than_min"
VALUE_BIGGER_THAN_MAX = "value_bigger_than_max"
VALUE_NOT_IN_LIST = "value_not_in_list"
CUSTOM_VALIDATION_FAILED = "custom_validation_failed"
UNKNOWN_CLASS_TYPE = "invalid_prompt"
DEPENDENCY_CYCLE = "dependency_cycle"
NO_OUTPUTS = "prompt_no_outputs"


@dataclass
class GraphProblem:
    node_id: str | None
    class_type: str | None
    input_name: str | None
    type: str
    message: str

    def __str__(self) -> str:
        where = f"node {self.node_id}" if self.node_id is not None else "workflow"
        if self.class_type:
            where += f" ({self.class_type})"
        if self.input_name:
            where += f", input {self.input_name!r}"
        return f"{where}: {self.message} [{self.type}]"


class GraphValidationError(ValueError):
    def __init__(self, problems: list[GraphProblem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"workflow failed validation with {len(problems)} problem(s):\n{lines}")


class NeedsComfyUIError(GraphValidationError):
    """The workflow has ComfyUI core nodes (model loaders, samplers, ...) that only a ComfyUI server can run."""

    def __init__(self, nodes: list[tuple[str, str]]):
        self.nodes = sorted(nodes, key=lambda n: _node_sort_key(n[0]))  # (node id, class_type)
        super().__init__([GraphProblem(nid, ctype, None, UNKNOWN_CLASS_TYPE,
                                       "a ComfyUI core node with no headless equivalent") for nid, ctype in self.nodes])
        self.args = (self.explain(),)

    def explain(self, workflow_path: str = "WORKFLOW.json") -> str:
        headless = ", ".join(sorted(core_nodes.NODE_CLASS_MAPPINGS))
        return "\n".join([
            f"this workflow needs a ComfyUI server; `emovid run` cannot run {len(self.nodes)} of its nodes headless:",
            *(f"  - node {p.node_id} ({p.class_type}): {p.message}" for p in self.problems),
            f"Headless, `emovid run` runs this pack's nodes and only these core nodes: {headless}.",
            f"Run it on a ComfyUI server with this pack installed: emovid queue {workflow_path} --server http://127.0.0.1:8188",
        ])


class NodeExecutionError(RuntimeError):
    def __init__(self, node_id: str, class_type: str, exc: BaseException):
        self.node_id, self.class_type, self.original = node_id, class_type, exc
        super().__init__(f"node {node_id} ({class_type}) failed: {type(exc).__name__}: {exc}")


@dataclass
class RunResult:
    ui: dict[str, dict]  # output node id -> merged ui dict
    files: list[Path]  # files written under the output (and preview temp) folder during the run
    outputs: dict[str, list[list[Any]]] = field(default_factory=dict)  # node id -> per-slot value lists
    order: list[str] = field(default_factory=list)
    seconds: float = 0.0


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def _types_match(out_type: str, in_type: Any) -> bool:
    if isinstance(in_type, (list, tuple)):  # combo input fed by a link: ComfyUI accepts COMBO/strings
        return out_type in ("COMBO", "STRING", "*")
    if out_type == "*" or in_type == "*":
        return True
    outs = {t.strip() for t in str(out_type).split(",")}
    ins = {t.strip() for t in str(in_type).split(",")}
    return bool(outs & ins)


def _check_literal(nid: str, ctype: str, spec, value: Any, problems: list[GraphProblem], custom: bool = False) -> Any:
    """Validate and convert one typed-in value the way ComfyUI does; return the converted value.

    ``custom``: the node's VALIDATE_INPUTS names this input, so (as in ComfyUI) it owns the range and combo
    checks and only the type conversion happens here.
    """

    def bad(kind: str, msg: str) -> None:
        problems.append(GraphProblem(nid, ctype, spec.name, kind, msg))

    t = spec.type
    if spec.is_combo and custom:
        return value
    if spec.is_combo:
        values = spec.combo_values
        if value not in values:
            shown = values if len(values) <= 12 else values[:12] + ["..."]
            bad(VALUE_NOT_IN_LIST, f"value {value!r} not in list {shown}")
        return value
    try:
        if t == "INT":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif t == "FLOAT":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
            if not math.isfinite(value):
                bad(INVALID_INPUT_TYPE, f"value {value!r} is not a finite number")
                return value
        elif t == "STRING":
            if not isinstance(value, str):
                raise ValueError
        elif t == "BOOLEAN":
            if not isinstance(value, bool):
                raise ValueError
        else:
            bad(INVALID_INPUT_TYPE, f"input of type {t} must be linked from another node, got literal {value!r}")
            return value
    except (TypeError, ValueError):
        bad(INVALID_INPUT_TYPE, f"failed to convert {value!r} to {t}")
        return value
    if t in ("INT", "FLOAT") and not custom:
        lo, hi = spec.options.get("min"), spec.options.get("max")
        if lo is not None and value < lo:
            bad(VALUE_SMALLER_THAN_MIN, f"value {value} smaller than min of {lo}")
        if hi is not None and value > hi:
            bad(VALUE_BIGGER_THAN_MAX, f"value {value} bigger than max of {hi}")
    return value


def validate(workflow: dict, classes: dict[str, type]) -> tuple[dict[str, NodeSchema], dict[str, dict], list[str]]:
    """Check a whole API-format workflow. Returns (schemas per node id, converted inputs, execution order).

    Raises GraphValidationError listing every problem found.
    """
    problems: list[GraphProblem] = []
    if not isinstance(workflow, dict) or not workflow:
        raise GraphValidationError([GraphProblem(None, None, None, UNKNOWN_CLASS_TYPE, "workflow is empty or not a JSON object")])
    if "nodes" in workflow and "links" in workflow:
        raise GraphValidationError([GraphProblem(None, None, None, UNKNOWN_CLASS_TYPE,
            "this is a UI-format workflow (it has 'nodes' and 'links'); export it with 'Export (API)' "
            "or convert it with `emovid workflow to-api`")])
    needs = core_nodes.needs_comfyui(workflow, classes)
    if needs:  # nothing else is worth reporting: these nodes decide where the workflow can run at all
        raise NeedsComfyUIError(needs)
    schemas: dict[str, NodeSchema] = {}
    for nid, node in workflow.items():
        nid = str(nid)
        ctype = node.get("class_type") if isinstance(node, dict) else None
        if ctype is None:
            problems.append(GraphProblem(nid, None, None, UNKNOWN_CLASS_TYPE, "node is missing the class_type property"))
        elif ctype not in classes:
            hint = "" if ctype.startswith("EmoVid") else (
                "; it is neither a node of this pack nor a ComfyUI core node: run the workflow in a ComfyUI that has "
                "the custom node pack providing it (`emovid queue`)")
            problems.append(GraphProblem(nid, ctype, None, UNKNOWN_CLASS_TYPE, f"unknown class_type {ctype!r}{hint}"))
        else:
            schemas[nid] = node_schema(ctype, classes[ctype])

    converted: dict[str, dict] = {}
    deps: dict[str, set[str]] = {}
    for nid, schema in schemas.items():
        given = workflow[nid].get("inputs") or {}
        ctype = schema.node_id
        conv: dict[str, Any] = {}
        deps[nid] = set()
        validator = getattr(schema.cls, "VALIDATE_INPUTS", None)
        custom_checked = set(inspect.getfullargspec(validator).args) if validator is not None else set()
        for spec in schema.inputs:
            if spec.name not in given:
                if spec.required:
                    problems.append(GraphProblem(nid, ctype, spec.name, REQUIRED_INPUT_MISSING, "required input is missing"))
                continue
            value = given[spec.name]
            if is_link(value):
                src, slot = str(value[0]), value[1]
                if src not in workflow:
                    problems.append(GraphProblem(nid, ctype, spec.name, BAD_LINKED_INPUT, f"linked to node {src!r}, which does not exist"))
                elif src in schemas:
                    src_schema = schemas[src]
                    if not 0 <= slot < len(src_schema.output_types):
                        problems.append(GraphProblem(nid, ctype, spec.name, BAD_LINKED_INPUT,
                            f"linked to output {slot} of node {src} ({src_schema.node_id}), which has {len(src_schema.output_types)} output(s)"))
                    elif not _types_match(src_schema.output_types[slot], spec.type):
                        problems.append(GraphProblem(nid, ctype, spec.name, RETURN_TYPE_MISMATCH,
                            f"linked output {slot} of node {src} is {src_schema.output_types[slot]}, input expects {spec.type}"))
                    deps[nid].add(src)
                conv[spec.name] = [src, slot]
            else:
                conv[spec.name] = _check_literal(nid, ctype, spec, value, problems, spec.name in custom_checked)
        if validator is not None and not any(p.node_id == nid for p in problems):
            # Like ComfyUI (execution.validate_inputs): a validator gets only the inputs its signature names
            # (all of them with **kwargs); linked inputs have no value yet and are left out.
            argspec = inspect.getfullargspec(validator)
            literals = {k: v for k, v in conv.items()
                        if not is_link(v) and (argspec.varkw is not None or k in argspec.args)}
            try:
                verdict = validator(**literals)
            except TypeError:
                verdict = True  # validator wants linked values too; it runs again at execution time in ComfyUI
            if verdict is not True:
                problems.append(GraphProblem(nid, ctype, None, CUSTOM_VALIDATION_FAILED, str(verdict)))
        converted[nid] = conv

    order = _topological_order(deps, problems)
    if not any(s.is_output_node for s in schemas.values()) and schemas:
        problems.append(GraphProblem(None, None, None, NO_OUTPUTS, "workflow has no output node (e.g. EmoVid Save Video, EmoVid Frame Attributes, Save Image or Preview Image)"))
    if problems:
        raise GraphValidationError(problems)
    return schemas, converted, order


def _topological_order(deps: dict[str, set[str]], problems: list[GraphProblem]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done
    reported: set[str] = set()

    def visit(n: str, stack: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = stack[stack.index(n):] + [n]
            key = "->".join(sorted(set(cycle)))
            if key not in reported:
                reported.add(key)
                problems.append(GraphProblem(n, None, None, DEPENDENCY_CYCLE, "dependency cycle: " + " -> ".join(cycle)))
            return
        state[n] = 1
        for d in sorted(deps.get(n, ()), key=_node_sort_key):
            if d in deps:
                visit(d, stack + [n])
        state[n] = 2
        order.append(n)

    for n in sorted(deps, key=_node_sort_key):
        visit(n, [])
    return order


def _node_sort_key(nid: str):
    return (0, int(nid), "") if nid.isdigit() else (1, 0, nid)


def _needed(order: list[str], schemas: dict[str, NodeSchema], converted: dict[str, dict]) -> list[str]:
    """Only nodes that feed an output node run, as in ComfyUI."""
    keep: set[str] = set()
    stack = [n for n in order if schemas[n].is_output_node]
    while stack:
        n = stack.pop()
        if n in keep:
            continue
        keep.add(n)
        stack.extend(str(v[0]) for v in converted[n].values() if is_link(v))
    return [n for n in order if n in keep]


def _call_node(nid: str, schema: NodeSchema, kwargs_lists: dict[str, list], hidden: dict) -> tuple[list[list], dict]:
    obj = schema.cls()
    fn = getattr(obj, schema.function)
    if schema.input_is_list:
        calls = [kwargs_lists]
    else:
        n = max((len(v) for v in kwargs_lists.values()), default=1)
        if any(len(v) == 0 for v in kwargs_lists.values()):
            n = 0
        calls = [{k: v[min(i, len(v) - 1)] for k, v in kwargs_lists.items()} for i in range(n)]
    slots: list[list] = [[] for _ in schema.output_types]
    ui: dict[str, list] = {}
    for kwargs in calls:
        runtime.check_interrupted()
        result = fn(**kwargs, **hidden)
        if isinstance(result, dict):
            for k, v in (result.get("ui") or {}).items():
                ui.setdefault(k, []).extend(v if isinstance(v, list) else [v])
            result = result.get("result", ())
        result = tuple(result or ())
        if len(result) != len(schema.output_types):
            raise RuntimeError(f"returned {len(result)} value(s), but RETURN_TYPES declares {len(schema.output_types)}")
        for i, value in enumerate(result):
            if schema.output_is_list[i] if i < len(schema.output_is_list) else False:
                slots[i].extend(value)
            else:
                slots[i].append(value)
    return slots, ui


def _files_under(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


def default_classes() -> dict[str, type]:
    """What ``emovid run`` can run: the pack's nodes plus the headless equivalents of some core nodes."""
    from .schema import load_pack_nodes

    return {**core_nodes.NODE_CLASS_MAPPINGS, **load_pack_nodes()[0]}


def run_workflow(
    workflow: dict,
    out_dir: str | Path | None = None,
    classes: dict[str, type] | None = None,
    on_node: Callable[[str, str], None] | None = None,
    *,
    temp_dir: str | Path | None = None,
    extra_pnginfo: dict | None = None,
    disable_metadata: bool = False,
) -> RunResult:
    """Validate then execute ``workflow``; files go to ``out_dir`` (default: the runtime output folder).

    ``temp_dir``: where Preview Image writes (default: ``temp`` beside the output folder, as in ComfyUI).
    ``extra_pnginfo``: what a ComfyUI client sends as ``extra_data.extra_pnginfo`` (e.g. ``{"workflow": <UI
    JSON>}``); Save Image embeds it, and the workflow itself as ``prompt``, unless ``disable_metadata``.
    """
    if classes is None:
        classes = default_classes()
    schemas, converted, order = validate(workflow, classes)
    order = _needed(order, schemas, converted)
    t0 = time.perf_counter()
    changes = {"output_dir": Path(out_dir)} if out_dir is not None else {}
    with runtime.configured(**changes), core_nodes.configured(temp_dir=temp_dir, disable_metadata=disable_metadata):
        roots = [runtime.output_directory(), core_nodes.temp_directory()]
        before = {p: m for root in roots for p, m in _files_under(root).items()}
        values: dict[str, list[list]] = {}
        ui_all: dict[str, dict] = {}
        for nid in order:
            schema = schemas[nid]
            if on_node:
                on_node(nid, schema.node_id)
            kwargs_lists: dict[str, list] = {}
            for name, v in converted[nid].items():
                kwargs_lists[name] = values[str(v[0])][v[1]] if is_link(v) else [v]
            hidden = {}
            for hname, htype in schema.hidden.items():
                htype = htype[0] if isinstance(htype, (list, tuple)) and htype else htype  # object_info's V3 spelling
                hidden[hname] = {"UNIQUE_ID": nid, "PROMPT": workflow, "EXTRA_PNGINFO": extra_pnginfo}.get(
                    htype if isinstance(htype, str) else "", None)
            try:
                values[nid], ui = _call_node(nid, schema, kwargs_lists, hidden)
            except Exception as exc:
                raise NodeExecutionError(nid, schema.node_id, exc) from exc
            if schema.is_output_node and ui:
                ui_all[nid] = ui
        after = {p: m for root in roots for p, m in _files_under(root).items()}
    files = sorted(p for p, m in after.items() if before.get(p) != m)
    return RunResult(ui=ui_all, files=files, outputs=values, order=order, seconds=time.perf_counter() - t0)


def parse_set(assignments: list[str] | None) -> list[tuple[str, str, Any]]:
    """Parse ``NODE.INPUT=VALUE`` overrides; VALUE is read as JSON when it parses, else as a string."""
    parsed = []
    for item in assignments or []:
        target, sep, raw = item.partition("=")
        node, dot, name = target.partition(".")
        if not sep or not dot or not node or not name:
            raise ValueError(f"--set {item!r} is not NODE.INPUT=VALUE (for example --set 3.seed=42)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed.append((node, name, value))
    return parsed


def apply_overrides(workflow: dict, assignments: list[str] | None) -> dict:
    """Return a copy of ``workflow`` with ``--set`` overrides applied; an unknown node id is an error."""
    wf = json.loads(json.dumps(workflow))
    for node, name, value in parse_set(assignments):
        if node not in wf:
            raise ValueError(f"--set {node}.{name}: no node {node!r} in the workflow (nodes: {', '.join(sorted(wf, key=_node_sort_key))})")
        wf[node].setdefault("inputs", {})[name] = value
    return wf


def load_workflow(path: str | Path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"workflow file {str(path)!r} not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"workflow file {str(path)!r} is not valid JSON: {exc}") from None
