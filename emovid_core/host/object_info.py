"""ComfyUI ``GET /object_info`` snapshots: the core node schemas that ship with the pack, and files users give.

One snapshot of core schemas (ComfyUI 0.3.64, ``data/core_object_info.json``) serves both the UI->API converter
and the headless core nodes, so both read the same names, types, defaults and order.
"""

from __future__ import annotations

import json
from pathlib import Path

CORE_OBJECT_INFO_PATH = Path(__file__).resolve().parent / "data" / "core_object_info.json"


def load_object_info(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"object_info file {str(path)!r} not found; save one from a running server with "
            "`curl http://127.0.0.1:8188/object_info > object_info.json`"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"object_info file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "input" in v for v in data.values()):
        raise ValueError(f"{str(path)!r} is not in /object_info shape ({{node id: {{'input': ..., 'output': ...}}}})")
    return data


def core_object_info() -> dict:
    """The checked-in snapshot of the core ComfyUI nodes our workflows use (ComfyUI 0.3.64)."""
    if not CORE_OBJECT_INFO_PATH.is_file():
        raise FileNotFoundError(
            f"core node snapshot {CORE_OBJECT_INFO_PATH} is missing (it ships with the package: reinstall comfyui-emovid); "
            "pass --object-info FILE or --server URL instead"
        )
    return load_object_info(CORE_OBJECT_INFO_PATH)
