"""emovid_core — the headless library behind ComfyUI-EmoVid.

Nothing in this package imports ComfyUI (``comfy``, ``folder_paths``, ``server`` or ``nodes``).
The ComfyUI nodes in the pack's ``nodes/`` folder are thin adapters over these modules, and the
headless graph runner (:mod:`emovid_core.host.graph`) executes those same nodes without a server.
Domain code (emotions, prompts, attributes, video, dataset, lora, wan) sits at the top level; the machinery
that emulates and drives ComfyUI (runner, schemas, converter, queue client, CLI) is :mod:`emovid_core.host`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
