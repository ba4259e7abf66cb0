"""Wan2.1 LoRAs: read any common format, inspect, validate against a model, apply (ComfyUI or diffusers), convert.

Canonical form: :class:`WanLora`, keyed by original Wan2.1 module names (see :mod:`emovid_core.wan.dit_keys`).
"""

from .apply import (
    LoraSpec,
    StackReport,
    active_diffusers_loras,
    apply_lora_stack_to_comfy,
    apply_lora_stack_to_diffusers,
    comfy_shape_spec,
    fused_diffusers_loras,
    load_lora_cached,
    lora_for_emotion,
    parse_block_weights,
    parse_emotion_map,
    resolve_lora_path,
)
from .formats import CONVERT_TARGETS, FORMATS, from_tensors, load_lora, lora_state_dict, normalize, read_safetensors, write_lora
from .inspect import LoraInfo, inspect_lora
from .model import LoraError, LoraMismatchError, LoraModule, NonFiniteLoraError, UnsupportedLoraError, WanLora
from .validate import ShapeSpec, ValidationReport, lora_width, validate

__all__ = [
    "CONVERT_TARGETS", "FORMATS", "LoraError", "LoraInfo", "LoraMismatchError", "LoraModule", "LoraSpec", "ShapeSpec",
    "NonFiniteLoraError", "StackReport", "UnsupportedLoraError", "ValidationReport", "WanLora", "active_diffusers_loras",
    "apply_lora_stack_to_comfy", "fused_diffusers_loras",
    "apply_lora_stack_to_diffusers", "comfy_shape_spec", "from_tensors", "inspect_lora", "load_lora", "load_lora_cached",
    "lora_for_emotion", "lora_state_dict", "lora_width", "normalize", "parse_block_weights", "parse_emotion_map",
    "read_safetensors", "resolve_lora_path", "validate", "write_lora",
]
