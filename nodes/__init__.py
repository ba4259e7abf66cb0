"""ComfyUI node adapters. Each module ``nodes/<group>.py`` exports ``NODE_CLASS_MAPPINGS`` and
``NODE_DISPLAY_NAME_MAPPINGS``; a group that fails to import is logged and skipped so the rest of
the pack still loads (e.g. the Wan generation nodes when diffusers is missing).
"""

import importlib
import logging
import pkgutil

from . import _comfy  # noqa: F401  (installs ComfyUI hooks into emovid_core.runtime when in a server)

log = logging.getLogger("EmoVid")

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
FAILED_GROUPS: dict[str, str] = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    try:
        _mod = importlib.import_module(f".{_info.name}", __name__)
    except Exception as exc:  # one optional group must not take the whole pack down
        FAILED_GROUPS[_info.name] = f"{type(exc).__name__}: {exc}"
        log.warning("[EmoVid] node group %r not loaded: %s: %s", _info.name, type(exc).__name__, exc)
        continue
    NODE_CLASS_MAPPINGS.update(getattr(_mod, "NODE_CLASS_MAPPINGS", {}))
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_mod, "NODE_DISPLAY_NAME_MAPPINGS", {}))
