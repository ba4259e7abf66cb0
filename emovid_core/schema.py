"""Node schemas: read a V1 ComfyUI node class into plain data, load the pack's nodes headless.

Used by the headless runner (validation), the node-contract tests (the checked-in snapshot) and the
UI→API workflow converter. Schemas come from the classes themselves, never from a hand-kept list.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACK_ROOT = Path(__file__).resolve().parent.parent
NODES_PACKAGE = "emovid_pack_nodes"
SNAPSHOT_PATH = PACK_ROOT / "tests" / "data" / "node_schema.json"


@dataclass
class InputSpec:
    name: str
    type: str | list  # a type name ("INT", "IMAGE", "*") or a combo list
    options: dict = field(default_factory=dict)
    required: bool = True

    @property
    def is_combo(self) -> bool:
        return isinstance(self.type, (list, tuple)) or self.type == "COMBO"

    @property
    def combo_values(self) -> list:
        if isinstance(self.type, (list, tuple)):
            return list(self.type)
        return list(self.options.get("options", []))

    @property
    def is_widget(self) -> bool:
        """True when the value is typed into the node (a widget) rather than linked."""
        return self.is_combo or self.type in ("INT", "FLOAT", "STRING", "BOOLEAN")


@dataclass
class NodeSchema:
    node_id: str
    cls: type
    inputs: list[InputSpec]
    hidden: dict
    output_types: list[str]
    output_names: list[str]
    output_is_list: list[bool]
    input_is_list: bool
    is_output_node: bool
    category: str
    description: str
    function: str

    def input(self, name: str) -> InputSpec | None:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None


def node_schema(node_id: str, cls: type) -> NodeSchema:
    raw = cls.INPUT_TYPES()
    inputs: list[InputSpec] = []
    for section, required in (("required", True), ("optional", False)):
        for name, spec in (raw.get(section) or {}).items():
            type_, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
            inputs.append(InputSpec(name, type_, dict(opts), required))
    outputs = list(getattr(cls, "RETURN_TYPES", ()))
    names = list(getattr(cls, "RETURN_NAMES", outputs))
    is_list = list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(outputs)))
    return NodeSchema(
        node_id=node_id,
        cls=cls,
        inputs=inputs,
        hidden=dict(raw.get("hidden") or {}),
        output_types=[str(t) if not isinstance(t, (list, tuple)) else "COMBO" for t in outputs],
        output_names=names,
        output_is_list=is_list,
        input_is_list=bool(getattr(cls, "INPUT_IS_LIST", False)),
        is_output_node=bool(getattr(cls, "OUTPUT_NODE", False)),
        category=str(getattr(cls, "CATEGORY", "")),
        description=str(getattr(cls, "DESCRIPTION", "")),
        function=str(getattr(cls, "FUNCTION", "")),
    )


def load_pack_nodes() -> tuple[dict[str, type], dict[str, str]]:
    """Import the pack's ``nodes/`` package headless and return (class mappings, display names).

    The package is imported under a private name so it can never clash with ComfyUI's ``nodes``.
    """
    mod = sys.modules.get(NODES_PACKAGE)
    if mod is None:
        init = PACK_ROOT / "nodes" / "__init__.py"
        if not init.is_file():
            raise RuntimeError(
                f"the pack's nodes/ folder was not found next to emovid_core ({init}); "
                "run from a source checkout (git clone + `pip install -e .`)"
            )
        spec = importlib.util.spec_from_file_location(NODES_PACKAGE, init, submodule_search_locations=[str(init.parent)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[NODES_PACKAGE] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[NODES_PACKAGE]
            raise
    return dict(mod.NODE_CLASS_MAPPINGS), dict(mod.NODE_DISPLAY_NAME_MAPPINGS)


def pack_schemas() -> dict[str, NodeSchema]:
    classes, _ = load_pack_nodes()
    return {nid: node_schema(nid, cls) for nid, cls in sorted(classes.items())}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def snapshot(schemas: dict[str, NodeSchema] | None = None) -> dict:
    """The part of each schema that saved workflows depend on: ids, input names/order/types/defaults, outputs.

    Combo lists of model files depend on the machine, so only their kind is recorded.
    """
    schemas = schemas if schemas is not None else pack_schemas()
    out = {}
    for nid, s in schemas.items():
        ins = []
        for spec in s.inputs:
            type_repr = "COMBO" if spec.is_combo else spec.type
            entry = {"name": spec.name, "type": type_repr, "required": spec.required}
            if "default" in spec.options:
                entry["default"] = _jsonable(spec.options["default"])
            if spec.is_combo and not spec.options.get("emovid_dynamic_list"):
                entry["options"] = _jsonable(spec.combo_values)
            ins.append(entry)
        out[nid] = {
            "inputs": ins,
            "outputs": [{"name": n, "type": t} for n, t in zip(s.output_names, s.output_types)],
            "output_node": s.is_output_node,
        }
    return out


def write_snapshot(path: Path = SNAPSHOT_PATH) -> Path:
    from .atomic import write_text

    return write_text(path, json.dumps(snapshot(), indent=1, sort_keys=True) + "\n")


def object_info(schemas: dict[str, NodeSchema] | None = None, display: dict[str, str] | None = None) -> dict:
    """The pack's nodes in ComfyUI's ``/object_info`` shape (used by the workflow converter)."""
    if schemas is None:
        schemas = pack_schemas()
    if display is None:
        display = load_pack_nodes()[1]
    info = {}
    for nid, s in schemas.items():
        raw = s.cls.INPUT_TYPES()
        info[nid] = {
            "input": {k: _jsonable(v) for k, v in raw.items() if k in ("required", "optional", "hidden")},
            "input_order": {sec: list((raw.get(sec) or {}).keys()) for sec in ("required", "optional") if raw.get(sec)},
            "output": s.output_types,
            "output_is_list": s.output_is_list,
            "output_name": s.output_names,
            "name": nid,
            "display_name": display.get(nid, nid),
            "description": s.description,
            "category": s.category,
            "output_node": s.is_output_node,
        }
    return info


def markdown_reference(schemas: dict[str, NodeSchema] | None = None, display: dict[str, str] | None = None) -> str:
    """The README's node reference table, generated from the classes so it cannot drift."""
    if schemas is None:
        schemas = pack_schemas()
    if display is None:
        display = load_pack_nodes()[1]
    rows = ["| node (id) | category | inputs | outputs | what it does |", "|---|---|---|---|---|"]
    for nid, s in sorted(schemas.items(), key=lambda kv: (kv[1].category, kv[0])):
        ins = ", ".join(
            f"`{i.name}`" + ("" if i.required else "?") + (f" {i.type}" if not i.is_widget else "") for i in s.inputs
        )
        outs = ", ".join(f"`{n}` {t}" for n, t in zip(s.output_names, s.output_types)) or "—"
        desc = " ".join(s.description.split())
        # First sentence: a period followed by a capital, not inside "e.g." or a number.
        first = re.split(r"(?<!e\.g)(?<!i\.e)(?<=[a-z0-9)'\"])\.\s+(?=[A-Z])", desc)[0].rstrip(".") + "."
        rows.append(f"| **{display.get(nid, nid)}** (`{nid}`) | {s.category} | {ins} | {outs} | {first} |")
    return "\n".join(rows) + "\n\n`?` marks an optional input; inputs without a type are widgets (typed in on the node).\n"


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Print or (with --write) regenerate the node schema snapshot.")
    ap.add_argument("--write", action="store_true", help=f"write {SNAPSHOT_PATH.relative_to(PACK_ROOT)}")
    ap.add_argument("--markdown", action="store_true", help="print the README's node reference table")
    ns = ap.parse_args()
    if ns.markdown:
        print(markdown_reference(), end="")
    elif ns.write:
        print(f"wrote {write_snapshot()}")
    else:
        print(json.dumps(snapshot(), indent=1, sort_keys=True))
