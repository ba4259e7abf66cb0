"""ComfyUI-EmoVid: EmoVid emotion conditioning, LoRA loading, frame attributes and dataset tools for Wan2.1.

ComfyUI imports this file under a module name derived from its path (dots become ``_x_``), so every
import of the pack's own modules here is relative. ``emovid_core`` is the pack's headless library;
the nodes import it by its own name, so we make the pack folder importable first.
"""

import importlib.util
import logging
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.find_spec("emovid_core")
if _spec is None:
    # Appended (not prepended) so this folder's `nodes/` can never shadow ComfyUI's own `nodes` module.
    sys.path.append(_HERE)
elif _spec.origin and os.path.dirname(os.path.dirname(_spec.origin)) != _HERE:
    logging.getLogger("EmoVid").warning(
        "[EmoVid] using emovid_core from %s, not the copy in %s; reinstall with `pip install -e %s` to match",
        os.path.dirname(_spec.origin), _HERE, _HERE,
    )

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

WEB_DIRECTORY = None

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
