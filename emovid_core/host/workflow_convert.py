"""UI ("save") workflow → API ("prompt") workflow, and consistency checks for workflow files.

ComfyUI only converts in the browser ("Export (API)"). This is an offline port of what the frontend's
``graphToPrompt`` does, driven by node schemas in ``/object_info`` shape: this pack's nodes come from their own
classes (:func:`emovid_core.host.schema.object_info`), core nodes from a checked-in snapshot of a real server's
``/object_info`` (``emovid_core/host/data/core_object_info.json``) or from a live server.

What it handles: v0.4 link arrays and v1 link objects; positional ``widgets_values`` including the extra
``control_after_generate`` value after seed widgets and the upload-button value after file combos; name→value
dict ``widgets_values`` (VideoHelperSuite); widgets converted to inputs (the link wins over the stored value);
muted nodes (mode 2, dropped) and bypassed nodes (mode 4, inputs rewired through by type, as the frontend does);
Reroute, PrimitiveNode (its value is inlined) and Note/MarkdownNote (dropped). Subgraphs are reported, not
flattened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .graph import (
    BAD_LINKED_INPUT,
    REQUIRED_INPUT_MISSING,
    RETURN_TYPE_MISMATCH,
    UNKNOWN_CLASS_TYPE,
    GraphProblem,
    _check_literal,
    _types_match,
    is_link,
)
from .object_info import core_object_info
from .schema import InputSpec

# Package data (ships in the wheel), not a test fixture: the converter needs it at run time.

MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4
# Frontend-only nodes: they exist in the UI graph but never reach the server.
NOTE_TYPES = {"Note", "MarkdownNote"}
VIRTUAL_TYPES = NOTE_TYPES | {"PrimitiveNode", "Reroute"}
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload", "audio_upload")
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
MODEL_FILE_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".pt2", ".pkl")
WIDGET_FORMAT_HINT = "re-save the workflow from ComfyUI with the current version of the node"


class WorkflowConversionError(ValueError):
    """Raised with every problem found, each naming the node, the input and what to do."""

    def __init__(self, problems: list[GraphProblem], source: str = "workflow"):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


# --------------------------------------------------------------------------------------------- object_info


def offline_object_info() -> dict:
    """Core snapshot + this pack's nodes read from their classes (the pack wins on a clash, as it is newer)."""
    from .schema import object_info

    info = dict(core_object_info())
    info.update(object_info())
    return info


# ----------------------------------------------------------------------------------------- input specs


def _spec_parts(spec: Any) -> tuple[Any, dict]:
    if not isinstance(spec, (list, tuple)) or not spec:
        return spec, {}
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0], opts


def input_specs(info: dict) -> list[InputSpec]:
    """Inputs of one /object_info entry in declaration order (``input_order`` when the server sent it)."""
    raw = info.get("input") or {}
    order = info.get("input_order") or {}
    specs = []
    for section, required in (("required", True), ("optional", False)):
        entries = raw.get(section) or {}
        names = list(order.get(section) or entries.keys())
        names += [n for n in entries if n not in names]
        for name in names:
            if name in entries:
                type_, opts = _spec_parts(entries[name])
                specs.append(InputSpec(name, type_, dict(opts), required))
    return specs


def _is_widget(spec: InputSpec) -> bool:
    if spec.options.get("forceInput"):
        return False
    return spec.is_combo or spec.type in WIDGET_TYPES


def _has_control(spec: InputSpec) -> bool:
    # The frontend adds a "control after generate" combo after INT widgets that ask for it, and by legacy
    # convention after any INT named seed/noise_seed; combos only when they ask for it.
    flag = spec.options.get("control_after_generate")
    if spec.type == "INT":
        return bool(flag) if flag is not None else spec.name in ("seed", "noise_seed")
    return spec.is_combo and bool(flag)


def _has_upload(spec: InputSpec) -> bool:
    return any(spec.options.get(f) for f in UPLOAD_FLAGS)


def is_file_combo(spec: InputSpec, value: Any = None) -> bool:
    """Combos listing files on the server's disk (models, uploads): their lists depend on the machine."""
    if not spec.is_combo:
        return False
    if spec.options.get("emovid_dynamic_list") or _has_upload(spec) or not spec.combo_values:
        return True
    return isinstance(value, str) and value.lower().endswith(MODEL_FILE_SUFFIXES)


def map_widget_values(node_id: str, node_type: str, info: dict, values: Any) -> tuple[dict, list[GraphProblem]]:
    """Name the positional ``widgets_values`` of one node (or take a name→value dict as is)."""
    specs = [s for s in input_specs(info) if _is_widget(s)]
    names = {s.name for s in specs}
    if values is None:
        return {}, []
    if isinstance(values, dict):  # VideoHelperSuite style; extra keys such as "videopreview" are UI state
        return {k: v for k, v in values.items() if k in names}, []
    if not isinstance(values, list):
        return {}, [GraphProblem(node_id, node_type, None, "invalid_widgets_values",
                                 f"widgets_values is a {type(values).__name__}, expected a list or an object")]

    def layout(control: bool, upload: bool) -> list[str | None]:
        slots: list[str | None] = []
        for s in specs:
            slots.append(s.name)
            if control and _has_control(s):
                slots.append(None)
            if upload and _has_upload(s):
                slots.append(None)
        return slots

    for control, upload in ((True, True), (True, False), (False, True), (False, False)):
        slots = layout(control, upload)
        if len(slots) == len(values):
            return {name: v for name, v in zip(slots, values) if name is not None}, []
    # Fallback for files saved by other frontend versions: walk the values, skipping a control value where
    # one may follow, so a missing or extra control/upload value does not shift everything after it.
    out: dict[str, Any] = {}
    i = 0
    for s in specs:
        if i >= len(values):
            break
        out[s.name] = values[i]
        i += 1
        if i < len(values) and (_has_control(s) or s.type == "INT") and values[i] in CONTROL_VALUES:
            i += 1
        elif i < len(values) and _has_upload(s) and values[i] in ("image", "video", "audio"):
            i += 1
    if i == len(values) and len(out) == len(specs):
        return out, []
    expected = ", ".join(s.name + (" (+control)" if _has_control(s) else "") for s in specs) or "none"
    return out, [GraphProblem(node_id, node_type, None, "invalid_widgets_values",
                              f"widgets_values has {len(values)} value(s) {values!r}, which do not match the node's "
                              f"widgets [{expected}]; {WIDGET_FORMAT_HINT}")]


# ------------------------------------------------------------------------------------------- conversion


@dataclass
class _Link:
    id: int
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: str


def _parse_links(ui: dict) -> dict[int, _Link]:
    links: dict[int, _Link] = {}
    for raw in ui.get("links") or []:
        if isinstance(raw, dict):  # v1 schema
            lk = _Link(int(raw["id"]), str(raw["origin_id"]), int(raw["origin_slot"]), str(raw["target_id"]),
                       int(raw["target_slot"]), str(raw.get("type", "*")))
        elif isinstance(raw, (list, tuple)) and len(raw) >= 5:
            lk = _Link(int(raw[0]), str(raw[1]), int(raw[2]), str(raw[3]), int(raw[4]),
                       str(raw[5]) if len(raw) > 5 else "*")
        else:
            raise ValueError(f"link {raw!r} is neither [id, origin, slot, target, slot, type] nor a link object")
        links[lk.id] = lk
    return links


def is_ui_workflow(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def _type_ok(a: str, b: str) -> bool:
    return a in ("*", "") or b in ("*", "") or _types_match(a, b)


def _bypass_slot(node: dict, slot: int, type_: str) -> int:
    """Which input a bypassed node passes to output ``slot`` (frontend 1.27 ``getBypassSlotIndex``).

    The same index when its type fits both the output and the link, else the first input of exactly that type,
    else the first compatible one. Whether that input is connected is not considered, exactly as in the
    frontend: an unconnected match means the downstream input is left out.
    """
    ins = node.get("inputs") or []
    outs = node.get("outputs") or []
    out_type = str(outs[slot].get("type", "*")) if slot < len(outs) else "*"
    if type_ in ("*", ""):
        return slot if len(ins) > slot else 0
    if slot < len(ins):
        t = str(ins[slot].get("type", "*"))
        if _type_ok(t, out_type) and _type_ok(t, type_):
            return slot
    for i, inp in enumerate(ins):
        if str(inp.get("type")) == type_:
            return i
    for i, inp in enumerate(ins):
        t = str(inp.get("type", "*"))
        if _type_ok(t, out_type) and _type_ok(t, type_):
            return i
    return -1


def ui_to_api(ui: dict, object_info: dict, *, source: str = "workflow") -> dict:
    """Convert a UI-format workflow to API format. Raises :class:`WorkflowConversionError` listing all problems."""
    if not is_ui_workflow(ui):
        raise ValueError(f"{source} is not a UI-format workflow (no 'nodes'/'links'); API-format files need no conversion")
    problems: list[GraphProblem] = []
    nodes = {str(n["id"]): n for n in ui["nodes"]}
    links = _parse_links(ui)
    subgraph_ids = {str(sg.get("id")) for sg in ((ui.get("definitions") or {}).get("subgraphs") or [])}

    def resolve(link_id: Any, seen: frozenset = frozenset()) -> tuple[str, Any] | None:
        """Follow a link back to a real output: ("link", [src, slot]) or ("value", v), None if it leads nowhere."""
        lk = links.get(int(link_id)) if link_id is not None else None
        if lk is None or lk.id in seen:
            return None
        seen = seen | {lk.id}
        src = nodes.get(lk.origin_id)
        if src is None:
            return None
        mode = src.get("mode", MODE_ALWAYS)
        if src.get("type") == "Reroute":
            ins = src.get("inputs") or []
            return resolve(ins[0].get("link"), seen) if ins else None
        if src.get("type") == "PrimitiveNode":
            wv = src.get("widgets_values") or []
            return ("value", wv[0]) if wv and mode != MODE_NEVER else None
        if mode == MODE_NEVER:
            return None
        if mode == MODE_BYPASS:
            idx = _bypass_slot(src, lk.origin_slot, lk.type)
            ins = src.get("inputs") or []
            return resolve(ins[idx].get("link"), seen) if 0 <= idx < len(ins) else None
        return ("link", [lk.origin_id, lk.origin_slot])

    api: dict[str, dict] = {}
    for nid in sorted(nodes, key=_sort_key):
        node = nodes[nid]
        ntype = node.get("type")
        mode = node.get("mode", MODE_ALWAYS)
        if ntype in VIRTUAL_TYPES or mode in (MODE_NEVER, MODE_BYPASS):
            continue
        if ntype in subgraph_ids:
            problems.append(GraphProblem(nid, ntype, None, UNKNOWN_CLASS_TYPE,
                "subgraph nodes are not supported by this converter; unpack the subgraph in ComfyUI and save again"))
            continue
        info = object_info.get(ntype)
        if info is None:
            hint = ("update the pack or rename the node" if str(ntype).startswith("EmoVid")
                    else "install the custom node pack that provides it, or convert with --server against a "
                         "ComfyUI that has it")
            problems.append(GraphProblem(nid, ntype, None, UNKNOWN_CLASS_TYPE, f"unknown node type {ntype!r}: {hint}"))
            continue
        widget_vals, wprobs = map_widget_values(nid, ntype, info, node.get("widgets_values"))
        problems.extend(wprobs)
        valid_names = {s.name for s in input_specs(info)}
        inputs: dict[str, Any] = {k: v for k, v in widget_vals.items()}
        for inp in node.get("inputs") or []:
            name = (inp.get("widget") or {}).get("name") or inp.get("name")
            if inp.get("link") is None or name not in valid_names:
                continue
            target = resolve(inp.get("link"))
            if target is None:
                continue  # source muted/missing: a converted widget keeps its stored value, as in the frontend
            inputs[name] = target[1]
        order = [s.name for s in input_specs(info)]
        title = node.get("title") or info.get("display_name") or ntype
        api[nid] = {
            "inputs": {k: inputs[k] for k in order if k in inputs},
            "class_type": ntype,
            "_meta": {"title": title},
        }
    if problems:
        raise WorkflowConversionError(problems, source)
    return api


def _sort_key(nid: str):
    return (0, int(nid), "") if nid.isdigit() else (1, 0, nid)


# ---------------------------------------------------------------------------------------------- checks


def check_api(api: dict, object_info: dict) -> list[GraphProblem]:
    """Every class_type exists, every link fits (node, slot, type), every literal is valid for its input.

    Combos of files on disk (model files, uploads) are not checked against the list, which depends on the machine.
    """
    problems: list[GraphProblem] = []
    for nid in sorted(api, key=lambda n: _sort_key(str(n))):
        node = api[nid]
        ctype = node.get("class_type") if isinstance(node, dict) else None
        info = object_info.get(ctype) if ctype else None
        if info is None:
            problems.append(GraphProblem(str(nid), ctype, None, UNKNOWN_CLASS_TYPE,
                                         "node is missing the class_type property" if not ctype
                                         else f"unknown class_type {ctype!r}"))
            continue
        given = node.get("inputs") or {}
        specs = {s.name: s for s in input_specs(info)}
        for name in given:
            if name not in specs:
                problems.append(GraphProblem(str(nid), ctype, name, "unknown_input",
                                             f"{ctype} has no input {name!r} (inputs: {', '.join(specs)})"))
        for name, spec in specs.items():
            if name not in given:
                if spec.required:
                    problems.append(GraphProblem(str(nid), ctype, name, REQUIRED_INPUT_MISSING, "required input is missing"))
                continue
            value = given[name]
            if is_link(value):
                src = api.get(str(value[0]))
                src_info = object_info.get(src.get("class_type")) if isinstance(src, dict) else None
                if src is None:
                    problems.append(GraphProblem(str(nid), ctype, name, BAD_LINKED_INPUT, f"linked to node {value[0]!r}, which does not exist"))
                elif src_info is not None:
                    outs = src_info.get("output") or []
                    slot = value[1]
                    if not 0 <= slot < len(outs):
                        problems.append(GraphProblem(str(nid), ctype, name, BAD_LINKED_INPUT,
                            f"linked to output {slot} of node {value[0]} ({src['class_type']}), which has {len(outs)} output(s)"))
                    else:
                        out_t = outs[slot] if isinstance(outs[slot], str) else "COMBO"
                        if not _types_match(out_t, spec.type):
                            problems.append(GraphProblem(str(nid), ctype, name, RETURN_TYPE_MISMATCH,
                                f"linked output {slot} of node {value[0]} is {out_t}, input expects {spec.type}"))
                continue
            if spec.is_combo and is_file_combo(spec, value):
                if not isinstance(value, str):
                    problems.append(GraphProblem(str(nid), ctype, name, "invalid_input_type", f"file name {value!r} is not a string"))
                continue
            _check_literal(str(nid), ctype, spec, value, problems)
    return problems


def check_ui(ui: dict, object_info: dict, *, source: str = "workflow") -> tuple[dict | None, list[GraphProblem]]:
    """Check a UI workflow: every node type exists (muted ones too) and its API conversion passes :func:`check_api`."""
    problems: list[GraphProblem] = []
    for node in ui.get("nodes") or []:
        t = node.get("type")
        if t not in VIRTUAL_TYPES and t not in object_info:
            problems.append(GraphProblem(str(node.get("id")), t, None, UNKNOWN_CLASS_TYPE, f"unknown node type {t!r}"))
    try:
        api = ui_to_api(ui, object_info, source=source)
    except WorkflowConversionError as exc:
        seen = {(p.node_id, p.message) for p in problems}
        return None, problems + [p for p in exc.problems if (p.node_id, p.message) not in seen]
    return api, problems + check_api(api, object_info)


def strip_meta(api: dict) -> dict:
    """API graph without the cosmetic ``_meta`` (for comparing a conversion with a checked-in twin)."""
    return {str(k): {"class_type": v.get("class_type"), "inputs": v.get("inputs", {})} for k, v in api.items()}


def api_diff(expected: dict, actual: dict) -> list[str]:
    """Human-readable differences between two API graphs (ignoring ``_meta``)."""
    a, b = strip_meta(expected), strip_meta(actual)
    out = []
    for nid in sorted(set(a) | set(b), key=_sort_key):
        if nid not in a:
            out.append(f"node {nid} ({b[nid]['class_type']}) only in the conversion")
        elif nid not in b:
            out.append(f"node {nid} ({a[nid]['class_type']}) only in the twin")
        elif a[nid] != b[nid]:
            if a[nid]["class_type"] != b[nid]["class_type"]:
                out.append(f"node {nid}: class_type {a[nid]['class_type']!r} vs {b[nid]['class_type']!r}")
            for k in sorted(set(a[nid]["inputs"]) | set(b[nid]["inputs"])):
                va, vb = a[nid]["inputs"].get(k, "<missing>"), b[nid]["inputs"].get(k, "<missing>")
                if va != vb:
                    out.append(f"node {nid} ({a[nid]['class_type']}) input {k!r}: twin {va!r}, conversion {vb!r}")
    return out

