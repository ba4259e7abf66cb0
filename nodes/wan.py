"""Wan2.1 generation with diffusers inside the graph: a loader (tiny test model, diffusers folder or ComfyUI
single files) and a generator that turns caption + emotion into IMAGE frames. Thin adapters over
``emovid_core.wan``.
"""

from __future__ import annotations

from emovid_core.emotions import EMOTIONS
from emovid_core.prompts import WAN_NEGATIVE_PROMPT
from emovid_core.wan import WAN_PIPE_TYPE, WanHandle

CATEGORY = "EmoVid/wan"
SOURCES = ["tiny-t2v", "tiny-i2v", "diffusers folder", "single files"]
DTYPES = ["auto", "float32", "bfloat16", "float16"]
DEVICES = ["auto", "cpu", "cuda"]
OFFLOADS = ["auto", "none", "model", "sequential"]
NO_EMOTION = "none"


def _variants() -> list[str]:
    from emovid_core.wan.variants import shipped_variant_names

    return ["auto"] + shipped_variant_names(loadable=True)


class EmoVidWanLoader:
    DESCRIPTION = (
        "Load a Wan2.1 text-to-video or image-to-video pipeline with diffusers, from local files only: the tiny "
        "random test model, a diffusers folder (e.g. Wan2.1-T2V-1.3B-Diffusers), or the single files ComfyUI uses "
        "(diffusion model, Wan VAE, fp16/bf16 umt5-xxl + tokenizer folder, CLIP vision H for I2V). The variant is "
        "detected from the transformer's shapes. ComfyUI's scaled-fp8 umt5 is not supported: use umt5_xxl_fp16."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (WAN_PIPE_TYPE, "STRING")
    RETURN_NAMES = ("pipe", "info")
    OUTPUT_TOOLTIPS = (
        "The loaded pipeline, for EmoVid Wan Generate (and the EmoVid LoRA pipeline node).",
        "One line: variant, source, dtype, device and offload mode.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": (SOURCES, {"default": "tiny-t2v", "tooltip": "Where the weights come from. tiny-t2v / tiny-i2v: a tiny "
                                     "random model built in code (for testing graphs, output is noise-like). 'diffusers folder' "
                                     "uses folder; 'single files' uses the file inputs below."}),
                "variant": (_variants(), {"default": "auto", "tooltip": "Wan2.1 variant. auto detects it from the transformer's "
                                          "tensor shapes; a named variant is checked against them (and sets 720P defaults)."}),
                "folder": ("STRING", {"default": "", "tooltip": "diffusers folder: path of a Wan2.1 diffusers pipeline folder "
                                      "(holding model_index.json)."}),
                "transformer": ("STRING", {"default": "", "tooltip": "single files: the diffusion model, a name in models/"
                                           "diffusion_models or an absolute path (e.g. wan2.1_t2v_1.3B_fp16.safetensors)."}),
                "vae": ("STRING", {"default": "", "tooltip": "single files: the Wan2.1 VAE, a name in models/vae or an absolute "
                                   "path (wan_2.1_vae.safetensors)."}),
                "text_encoder": ("STRING", {"default": "", "tooltip": "single files: the umt5-xxl encoder in fp16/bf16/fp32 "
                                            "(e.g. umt5_xxl_fp16.safetensors), a name in models/text_encoders or an absolute "
                                            "path. The scaled-fp8 file is refused."}),
                "tokenizer": ("STRING", {"default": "", "tooltip": "single files: folder holding umt5's tokenizer.json (e.g. "
                                         "the tokenizer/ folder of Wan2.1-T2V-1.3B-Diffusers), absolute or under models/"
                                         "text_encoders."}),
                "clip_vision": ("STRING", {"default": "", "tooltip": "single files, I2V only: CLIP vision H, a name in models/"
                                           "clip_vision or an absolute path (clip_vision_h.safetensors)."}),
                "dtype": (DTYPES, {"default": "auto", "tooltip": "Weights dtype. auto = bfloat16 on a GPU that supports it, "
                                   "else float16 on GPU, float32 on CPU. The VAE and CLIP vision always run in float32."}),
                "device": (DEVICES, {"default": "auto", "tooltip": "auto = the first CUDA GPU when there is one, else CPU."}),
                "offload": (OFFLOADS, {"default": "auto", "tooltip": "GPU only. model = keep each model on the CPU until it is "
                                       "needed (diffusers enable_model_cpu_offload); sequential = per layer (slowest, least "
                                       "memory); auto = model offload when the GPU lacks free memory for the whole pipeline."}),
            }
        }

    def load(self, source, variant, folder, transformer, vae, text_encoder, tokenizer, clip_vision, dtype, device, offload):
        from emovid_core.wan.loading import load_pipeline

        handle = load_pipeline(source, folder=folder, transformer=transformer, vae=vae, text_encoder=text_encoder,
                               tokenizer=tokenizer, image_encoder=clip_vision, variant=variant, dtype=dtype, device=device,
                               offload=offload)
        return (handle, handle.summary())


class EmoVidWanGenerate:
    DESCRIPTION = (
        "Generate a clip with a loaded Wan2.1 pipeline: the caption plus the paper's emotion sentence "
        "('... The video is in the \"fear\" emotion.'), Wan's negative prompt, optional start image (I2V models). "
        "Settings left at 0 use the loaded model's defaults (832x480, 30 steps, shift 3 for Wan2.1 480P; 32x32, 4 "
        "steps for the tiny model). Deterministic for a seed on CPU."
    )
    CATEGORY = CATEGORY
    FUNCTION = "generate"
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("frames", "prompt", "negative_prompt")
    OUTPUT_TOOLTIPS = (
        "The generated frames as an IMAGE batch [frames, H, W, 3] (connect to EmoVid Save Video).",
        "The positive prompt that was used.",
        "The negative prompt that was used.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pipe": (WAN_PIPE_TYPE, {"tooltip": "A pipeline from EmoVid Wan Loader."}),
                "caption": ("STRING", {"default": "A person walks along a beach at sunset.", "multiline": True,
                                       "tooltip": "What happens in the video; the emotion sentence is appended."}),
                "emotion": ([NO_EMOTION] + list(EMOTIONS), {"default": EMOTIONS[0], "tooltip": "One of Mikels' eight emotions "
                            "EmoVid was trained on; 'none' uses the caption alone."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                                 "tooltip": "Noise seed; the same seed gives the same clip on the same device."}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip": "Denoising steps; 0 = the model's default "
                                  "(30 for Wan2.1)."}),
                "guidance": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 100.0, "step": 0.1, "tooltip": "Classifier-free "
                                       "guidance scale; 1 or less turns it off (twice as fast)."}),
                "shift": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.1, "tooltip": "Flow shift of the "
                                    "UniPC scheduler; 0 = the model's default (3 for 480P, 5 for 720P; ComfyUI's templates use 8)."}),
                "frames": ("INT", {"default": 33, "min": 1, "max": 1001, "step": 4, "tooltip": "Number of frames, 4n+1 "
                                   "(1, 5, ..., 33, 81); 33 matches ComfyUI's Wan templates (2 s at 16 fps)."}),
                "width": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 16, "tooltip": "Width in pixels, a multiple "
                                  "of 16; 0 = the model's default."}),
                "height": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 16, "tooltip": "Height in pixels, a multiple "
                                   "of 16; 0 = the model's default."}),
                "negative": ("STRING", {"default": WAN_NEGATIVE_PROMPT, "multiline": True, "tooltip": "Negative prompt "
                                        "(default: Wan2.1's standard one). Used only when guidance > 1."}),
            },
            "optional": {
                "emotion_override": ("EMOVID_EMOTION", {"tooltip": "Optional EMOVID_EMOTION from EmoVid Emotion; replaces the "
                                                        "emotion widget and brings its intensity (applied on the text embeddings)."}),
                "start_image": ("IMAGE", {"tooltip": "First frame for I2V models (the first image of the batch is used); "
                                          "required by I2V, refused by T2V."}),
            },
        }

    def generate(self, pipe, caption, emotion, seed, steps, guidance, shift, frames, width, height, negative,
                 emotion_override=None, start_image=None):
        from emovid_core.wan.generation import generate

        if not isinstance(pipe, WanHandle):
            raise ValueError(f"pipe must come from EmoVid Wan Loader, got {type(pipe).__name__}")
        zero_is_default = lambda v: None if v in (0, 0.0) else v  # noqa: E731
        result = generate(
            pipe, caption=caption, emotion=emotion_override if emotion_override is not None else emotion, image=start_image,
            seed=seed, steps=zero_is_default(steps), frames=frames, width=zero_is_default(width),
            height=zero_is_default(height), guidance=guidance, shift=zero_is_default(shift), negative=negative,
        )
        return (result.frames, result.prompt, result.negative_prompt)


NODE_CLASS_MAPPINGS = {"EmoVidWanLoader": EmoVidWanLoader, "EmoVidWanGenerate": EmoVidWanGenerate}
NODE_DISPLAY_NAME_MAPPINGS = {"EmoVidWanLoader": "EmoVid Wan Loader", "EmoVidWanGenerate": "EmoVid Wan Generate"}
