"""emovid_core — the headless library behind ComfyUI-EmoVid.

Nothing in this package imports ComfyUI (``comfy``, ``folder_paths``, ``server`` or ``nodes``).
The ComfyUI nodes in the pack's ``nodes/`` folder are thin adapters over these modules, and the
headless graph runner (:mod:`emovid_core.graph`) executes those same nodes without a server.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
