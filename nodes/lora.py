"""LoRA nodes for Wan2.1: load any common LoRA format onto a ComfyUI MODEL or onto the EmoVid diffusers pipeline.
Thin adapters over ``emovid_core.lora``.
"""

from __future__ import annotations

from emovid_core.emotions import EMOTIONS

from ._inputs import NONE, STRENGTH, inputs, lora_files, lora_inputs

CATEGORY = "EmoVid/lora"
NO_EMOTION = "none"
PIPE_TYPE = "EMOVID_WAN_PIPE"


def _report_result(model, report):
    lines = report.lines()
    return {"ui": {"text": lines}, "result": (model, "\n".join(lines))}


class EmoVidLoraLoader:
    DESCRIPTION = (
        "Apply a Wan2.1 LoRA to a MODEL from Load Diffusion Model. Reads ComfyUI, DiffSynth-Studio (EmoVid's "
        "trainer), diffusers/finetrainers, peft, kohya/musubi, Wan-Fun, mixed-separator and LyCORIS files, "
        "LoKr, LoHa and DoRA included (core LoraLoaderModelOnly silently skips most of these spellings), checks "
        "the LoRA fits the model (1.3B vs 14B, Wan2.1 vs Wan2.2 is an "
        "error; I2V keys on a T2V model are dropped and listed) and adds ComfyUI's own weight patches, so the "
        "result equals core LoRA loading and nothing reloads when the strength changes."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL", "STRING")
    RETURN_NAMES = ("model", "report")
    OUTPUT_TOOLTIPS = (
        "The model with the LoRA patches added (a clone: the input model is unchanged).",
        "What was applied and every skipped key with its reason.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "A Wan2.1 MODEL (UNETLoader / Load Diffusion Model, or another LoRA node)."}),
                **inputs(lora_inputs(), "lora_name", "strength", "strict"),
            },
            "optional": inputs(lora_inputs(), "blocks"),
        }

    @classmethod
    def IS_CHANGED(cls, lora_name=None, **kwargs):
        from emovid_core.lora.stack import lora_file_stamps

        return lora_file_stamps(lora_name)

    def apply(self, model, lora_name, strength, strict, blocks=""):
        from emovid_core.lora import LoraSpec, apply_lora_stack_to_comfy, resolve_lora_path

        spec = LoraSpec(resolve_lora_path(lora_name), strength=strength, blocks=blocks)
        out, report = apply_lora_stack_to_comfy(model, [spec], strict=strict)
        return _report_result(out, report)


class EmoVidLoraStack:
    DESCRIPTION = (
        "Apply several Wan2.1 LoRAs at once, each with its strength: an emotion LoRA plus style or character "
        "LoRAs (the EmoVid paper's multi-LoRA 'custom roles'). For one LoRA per emotion, fill emotion_map "
        "(e.g. 'anger=anger.safetensors, fear=fear.safetensors') and pick the emotion: its LoRA is added with "
        "emotion_strength. Every LoRA is validated before any patch is added."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL", "STRING")
    RETURN_NAMES = ("model", "report")
    OUTPUT_TOOLTIPS = (
        "The model with every chosen LoRA patched in (a clone: the input model is unchanged).",
        "Per LoRA: what was applied and every skipped key with its reason.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        files = [NONE] + lora_files()
        opt = {}
        for i in (1, 2, 3):
            opt[f"lora_{i}"] = (files, {"emovid_dynamic_list": True, "default": NONE,
                                        "tooltip": f"LoRA {i} from models/loras, or None."})
            opt[f"strength_{i}"] = ("FLOAT", dict(STRENGTH, tooltip=f"Strength of LoRA {i} (negative inverts it)."))
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "A Wan2.1 MODEL (UNETLoader / Load Diffusion Model)."}),
                **inputs(lora_inputs(), "strict"),
            },
            "optional": {
                **opt,
                "emotion": ([NO_EMOTION, *EMOTIONS], {"default": NO_EMOTION,
                                                      "tooltip": "Emotion whose LoRA (from emotion_map) is added; none = skip."}),
                "emotion_map": ("STRING", {"default": "", "multiline": True,
                                           "tooltip": "One 'emotion=lora file' per line or comma-separated, files from "
                                                      "models/loras, e.g. 'anger=wan_anger.safetensors'."}),
                "emotion_strength": ("FLOAT", dict(STRENGTH, tooltip="Strength of the emotion's LoRA.")),
            },
        }

    @classmethod
    def IS_CHANGED(cls, lora_1=NONE, lora_2=NONE, lora_3=NONE, emotion=NO_EMOTION, emotion_map="", **kwargs):
        from emovid_core.lora.stack import lora_stack_stamps

        return lora_stack_stamps([lora_1, lora_2, lora_3], emotion, emotion_map)

    def apply(self, model, strict, lora_1=NONE, strength_1=1.0, lora_2=NONE, strength_2=1.0, lora_3=NONE,
              strength_3=1.0, emotion=NO_EMOTION, emotion_map="", emotion_strength=1.0):
        from emovid_core.lora import apply_lora_stack_to_comfy
        from emovid_core.lora.stack import lora_stack

        slots = [(lora_1, strength_1), (lora_2, strength_2), (lora_3, strength_3)]
        stack = lora_stack(slots, emotion, emotion_map, emotion_strength)
        out, report = apply_lora_stack_to_comfy(model, stack, strict=strict)
        return _report_result(out, report)


class EmoVidLoraLoaderPipeline:
    DESCRIPTION = (
        "Apply a Wan2.1 LoRA (any supported format) to the EmoVid diffusers pipeline as a named peft adapter. "
        "Chain several: earlier adapters stay active with their strengths; re-running with a new strength "
        "only changes the adapter weight (no reload); LoKr/LoHa/DoRA modules are merged into the weights "
        "instead (restored exactly when the stack changes). Branches of one loader may carry different LoRAs: the "
        "weights are shared, each pipe output keeps its own LoRAs and Generate activates exactly those. fuse "
        "merges this pipe's LoRAs into the shared weights in float32 (faster sampling; other branches of the same "
        "loader are then refused, and changing a fused strength needs a reloaded pipeline)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = (PIPE_TYPE, "STRING")
    RETURN_NAMES = ("pipe", "report")
    OUTPUT_TOOLTIPS = (
        "The pipeline with this LoRA added to the input's LoRAs (the same loaded weights, not copied; the input pipe "
        "keeps its own LoRAs).",
        "What was applied and every skipped key with its reason.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pipe": (PIPE_TYPE, {"tooltip": "The pipeline from EmoVid Wan Loader (or another EmoVid LoRA pipeline node)."}),
                **inputs(lora_inputs(), "lora_name", "strength", strength="Adapter weight; negative inverts it, 0 = no change."),
                "adapter_name": ("STRING", {"default": "", "tooltip": "peft adapter name; empty = the file name. The same "
                                            "name with another file replaces that adapter."}),
                "fuse": ("BOOLEAN", {"default": False, "tooltip": "Merge the active LoRAs into the weights (float32 math). "
                                     "Off keeps them switchable without reloading."}),
                **inputs(lora_inputs(), "strict"),
            },
            "optional": inputs(lora_inputs(), "blocks"),
        }

    @classmethod
    def IS_CHANGED(cls, lora_name=None, **kwargs):
        from emovid_core.lora.stack import lora_file_stamps

        return lora_file_stamps(lora_name)

    def apply(self, pipe, lora_name, strength, adapter_name, fuse, strict, blocks=""):
        from emovid_core.lora import LoraSpec, resolve_lora_path
        from emovid_core.lora.stack import add_lora_to_pipeline

        spec = LoraSpec(resolve_lora_path(lora_name), name=adapter_name.strip() or None, strength=strength, blocks=blocks)
        out, report = add_lora_to_pipeline(pipe, spec, fuse=fuse, strict=strict)
        return _report_result(out, report)


NODE_CLASS_MAPPINGS = {
    "EmoVidLoraLoader": EmoVidLoraLoader,
    "EmoVidLoraStack": EmoVidLoraStack,
    "EmoVidLoraLoaderPipeline": EmoVidLoraLoaderPipeline,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "EmoVidLoraLoader": "EmoVid LoRA Loader (Wan2.1)",
    "EmoVidLoraStack": "EmoVid LoRA Stack (Wan2.1)",
    "EmoVidLoraLoaderPipeline": "EmoVid LoRA Loader (Wan2.1 pipeline)",
}
