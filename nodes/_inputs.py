"""Input declarations that several nodes share, defined once: the decode options and the LoRA inputs.

A node takes the entries it needs, in its own order, with :func:`inputs`; an override replaces an entry's
options for that node only (e.g. Sample Clip's width/height step by 16 because its frames go to Wan2.1).
Input names, order, types and defaults are part of saved workflows: change an entry here and every node
that uses it changes (tests/nodes/test_node_contracts.py holds them).
"""

from __future__ import annotations

from emovid_core import runtime

NONE = "None"  # the "no LoRA" choice of a LoRA list

# The decode options, named like emovid_core.video_io.DecodeOptions' fields (a test keeps the two in step).
DECODE_INPUTS: dict[str, tuple] = {
    "max_frames": ("INT", {"default": 0, "min": 0, "max": 100000,
                           "tooltip": "Keep at most this many frames (0 = all). Applied after target_fps and every_nth."}),
    "skip_first": ("INT", {"default": 0, "min": 0, "max": 1000000,
                           "tooltip": "Drop this many source frames from the start."}),
    "every_nth": ("INT", {"default": 1, "min": 1, "max": 1000,
                          "tooltip": "Keep every n-th frame (after resampling to target_fps); 1 keeps all."}),
    "target_fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 240.0, "step": 0.01,
                             "tooltip": "Resample to this rate by timestamp, repeating or dropping frames (0 = source rate). Wan2.1 uses 16."}),
    "width": ("INT", {"default": 0, "min": 0, "max": 8192,
                      "tooltip": "Output width in pixels (0 = keep; with only height set, follows the aspect ratio)."}),
    "height": ("INT", {"default": 0, "min": 0, "max": 8192,
                       "tooltip": "Output height in pixels (0 = keep; with only width set, follows the aspect ratio)."}),
    "crop": (["center", "none"], {"default": "center",
                                  "tooltip": "center: keep the aspect ratio and centre-crop to width x height; none: stretch."}),
    "wan_4n1": ("BOOLEAN", {"default": False,
                            "tooltip": "Trim the frame count to the largest 4n+1 (Wan2.1 works on 4n+1 frames, e.g. 33, 81)."}),
}

# Width/height for frames that go straight to Wan2.1: both set, in steps of 16 (DecodeOptions.check_wan_size).
WAN_SIZE_INPUTS: dict[str, tuple] = {
    "width": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 16,
                      "tooltip": "Resize + centre-crop to this width (multiple of 16; 0 with height 0 = source size)."}),
    "height": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 16,
                       "tooltip": "Resize + centre-crop to this height (multiple of 16; 0 with width 0 = source size)."}),
}

STRENGTH = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
BLOCKS_TIP = ("Optional block selection: empty = all blocks. 'A-B' keeps only blocks A..B (e.g. '0-14'); 'A-B:w' gives "
              "them weight w, e.g. '0-9:1.0, 10-29:0.5'. Unnamed blocks are skipped (listed in the report).")
STRICT_TIP = ("On: fail if any key of the LoRA would be skipped (unknown module, I2V keys on a T2V model, outside the "
              "block selection). Off: apply the rest and list every skipped key in the report.")


def lora_files() -> list[str]:
    """LoRA files in models/loras, read when a node's inputs are listed (the list follows the folder)."""
    return runtime.list_model_files("loras")


def lora_inputs() -> dict[str, tuple]:
    """The LoRA inputs (the file list is read now, so call this inside INPUT_TYPES)."""
    return {
        "lora_name": (lora_files(), {"emovid_dynamic_list": True,
                                     "tooltip": "LoRA .safetensors from models/loras, in any supported format."}),
        "strength": ("FLOAT", dict(STRENGTH, tooltip="LoRA strength; negative values invert it, 0 = no change.")),
        "strict": ("BOOLEAN", {"default": False, "tooltip": STRICT_TIP}),
        "blocks": ("STRING", {"default": "", "tooltip": BLOCKS_TIP}),
    }


def inputs(table: dict[str, tuple], *names: str, **overrides) -> dict[str, tuple]:
    """The entries ``names`` of ``table`` in that order; an override is a whole entry or, as a string, a tooltip."""
    out = {}
    for name in names:
        entry = overrides.get(name, table[name])
        if isinstance(entry, str):
            type_, opts = table[name]
            entry = (type_, {**opts, "tooltip": entry})
        out[name] = entry
    return out

