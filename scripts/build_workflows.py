"""Build the example workflows: workflows/<name>.json (UI format), workflows/api/<name>.json (API twin),
workflows/<name>.jpg (preview for the template browser) and workflows/index.json.

    .venv/bin/python scripts/build_workflows.py          # rewrite everything
    .venv/bin/python scripts/build_workflows.py --check  # exit 1 when the files on disk differ

Graphs are written from node schemas (core: emovid_core/host/data/core_object_info.json; ours: the node classes), so
widget order, seed control values and sockets are laid out the way the ComfyUI frontend saves them. The API twin
is the converter's output for the UI file; tests/test_workflows.py checks they stay in step.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emovid_core.host.workflow_convert import (  # noqa: E402
    _has_control,
    _has_upload,
    _is_widget,
    input_specs,
    offline_object_info,
    ui_to_api,
)

OUT = ROOT / "workflows"

# ComfyUI's official Wan2.1 repackaged file names (Comfy-Org/Wan_2.1_ComfyUI_repackaged, split_files/...).
T2V_UNET = "wan2.1_t2v_1.3B_fp16.safetensors"
I2V_UNET = "wan2.1_i2v_480p_14B_fp16.safetensors"
TEXT_ENCODER = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
VAE = "wan_2.1_vae.safetensors"
CLIP_VISION = "clip_vision_h.safetensors"
T2V_LORA = "emovid_wan2.1_t2v_1.3B_lora.safetensors"  # the user's EmoVid-trained LoRA (see docs/workflows.md#where-the-model-files-go)
I2V_LORA = "emovid_wan2.1_i2v_480p_14B_lora.safetensors"
# Loader nodes carry these like the official templates do: the frontend offers to download missing files.
REPACKAGED = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
MODEL_DIRS = {T2V_UNET: "diffusion_models", I2V_UNET: "diffusion_models", TEXT_ENCODER: "text_encoders",
              VAE: "vae", CLIP_VISION: "clip_vision"}
CAPTION = "A woman stands on a windy cliff above the sea, her hair moving as the clouds pass."

MODELS_NOTE = f"""## Model files (ComfyUI/models/...)
- `diffusion_models/{T2V_UNET}` (T2V) or `diffusion_models/{I2V_UNET}` (I2V)
- `text_encoders/{TEXT_ENCODER}`
- `vae/{VAE}`
- `clip_vision/{CLIP_VISION}` (I2V only)
- `loras/`: your EmoVid LoRA for the same base model (rename the LoRA node's file)

Official files: Comfy-Org/Wan_2.1_ComfyUI_repackaged on Hugging Face, folder `split_files/`."""


class Graph:
    """A UI-format (v0.4) graph built from /object_info schemas."""

    def __init__(self, info: dict):
        self.info = info
        self.nodes: list[dict] = []
        self.links: list[list] = []

    def add(self, type_: str, values: dict | None = None, pos=(0, 0), title: str | None = None, mode: int = 0,
            controls: dict | None = None, width: int = 320) -> dict:
        values = dict(values or {})
        nid = len(self.nodes) + 1
        if type_ in ("Note", "MarkdownNote"):
            node = {"id": nid, "type": type_, "pos": list(pos), "size": [width, 260], "flags": {}, "order": nid,
                    "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": [values["text"]],
                    "color": "#432", "bgcolor": "#653"}
            if title:
                node["title"] = title
            self.nodes.append(node)
            return node
        info = self.info[type_]
        specs = input_specs(info)
        unknown = set(values) - {s.name for s in specs}
        if unknown:
            raise KeyError(f"{type_} has no input(s) {sorted(unknown)}")
        widgets, sockets = [], []
        for s in specs:
            if _is_widget(s):
                default = s.options.get("default", s.combo_values[0] if s.is_combo and s.combo_values else None)
                widgets.append(values.get(s.name, default))
                if _has_control(s):
                    widgets.append((controls or {}).get(s.name, "fixed"))
                if _has_upload(s):
                    widgets.append("image")
            else:
                sockets.append({"name": s.name, "type": s.type if isinstance(s.type, str) else "COMBO", "link": None,
                                **({"shape": 7} if not s.required else {})})
        outputs = [{"name": n, "type": t, "links": [], "slot_index": i}
                   for i, (n, t) in enumerate(zip(info.get("output_name") or info["output"], info["output"]))]
        node = {"id": nid, "type": type_, "pos": list(pos), "size": [width, 60 + 26 * (len(widgets) + len(sockets))],
                "flags": {}, "order": nid, "mode": mode, "inputs": sockets, "outputs": outputs,
                "properties": {"Node name for S&R": type_, **({"cnr_id": "comfyui-emovid"} if type_.startswith("EmoVid")
                                                              else {"cnr_id": "comfy-core", "ver": "0.3.64"})},
                "widgets_values": widgets}
        if title:
            node["title"] = title
        files = [v for v in values.values() if isinstance(v, str) and v in MODEL_DIRS]
        if files:
            node["properties"]["models"] = [
                {"name": f, "url": f"{REPACKAGED}/{MODEL_DIRS[f]}/{f}?download=true", "directory": MODEL_DIRS[f]}
                for f in files]
        self.nodes.append(node)
        return node

    def connect(self, src: dict, out: str | int, dst: dict, inp: str) -> None:
        outs = src["outputs"]
        slot = out if isinstance(out, int) else next(i for i, o in enumerate(outs) if o["name"] == out)
        lid = len(self.links) + 1
        socket = next((i for i, s in enumerate(dst["inputs"]) if s["name"] == inp), None)
        if socket is None:  # a widget turned into an input (the frontend adds the socket when linked)
            spec = next(s for s in input_specs(self.info[dst["type"]]) if s.name == inp)
            dst["inputs"].append({"name": inp, "type": spec.type if isinstance(spec.type, str) else "COMBO",
                                  "widget": {"name": inp}, "link": None})
            socket = len(dst["inputs"]) - 1
        dst["inputs"][socket]["link"] = lid
        outs[slot]["links"].append(lid)
        self.links.append([lid, src["id"], slot, dst["id"], socket, outs[slot]["type"]])

    def ui(self, name: str) -> dict:
        # A stable id per workflow (the frontend tells open workflows apart by it).
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-emovid/workflows/{name}")), "revision": 0, "last_node_id": len(self.nodes),
                "last_link_id": len(self.links), "nodes": self.nodes, "links": self.links, "groups": [],
                "config": {}, "extra": {"ds": {"scale": 0.75, "offset": [40, 40]}, "frontendVersion": "1.27.10"},
                "version": 0.4}


NEG = None  # filled from the Emotion Encode default (Wan's standard negative prompt)


def t2v(info) -> tuple[dict, str]:
    g = Graph(info)
    g.add("MarkdownNote", {"text": "# EmoVid T2V on Wan2.1\nPick the emotion on **EmoVid Emotion Encode**; the "
          "LoRA node loads your EmoVid LoRA (strength 0 = base model).\n\n" + MODELS_NOTE}, pos=(0, -330), width=520)
    unet = g.add("UNETLoader", {"unet_name": T2V_UNET, "weight_dtype": "default"}, pos=(0, 0))
    lora = g.add("EmoVidLoraLoader", {"lora_name": T2V_LORA, "strength": 1.0, "strict": False}, pos=(0, 140))
    shift = g.add("ModelSamplingSD3", {"shift": 8.0}, pos=(0, 330))
    clip = g.add("CLIPLoader", {"clip_name": TEXT_ENCODER, "type": "wan", "device": "default"}, pos=(0, 460))
    enc = g.add("EmoVidEmotionEncode", {"caption": CAPTION, "emotion": "awe", "intensity": 1.0}, pos=(380, 0), width=400)
    latent = g.add("EmptyHunyuanLatentVideo", {"width": 832, "height": 480, "length": 33, "batch_size": 1}, pos=(380, 560))
    ks = g.add("KSampler", {"seed": 20251125, "steps": 30, "cfg": 6.0, "sampler_name": "uni_pc", "scheduler": "simple",
                            "denoise": 1.0}, pos=(840, 0), controls={"seed": "randomize"})
    vae = g.add("VAELoader", {"vae_name": VAE}, pos=(840, 380))
    dec = g.add("VAEDecode", pos=(840, 500))
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, pos=(1200, 0))
    cv = g.add("CreateVideo", {"fps": 16.0}, pos=(1200, 330))
    save = g.add("SaveVideo", {"filename_prefix": "video/EmoVid_t2v", "format": "auto", "codec": "auto"}, pos=(1200, 500))
    g.connect(unet, "MODEL", lora, "model")
    g.connect(lora, "model", shift, "model")
    g.connect(shift, "MODEL", ks, "model")
    g.connect(clip, "CLIP", enc, "clip")
    g.connect(enc, "positive", ks, "positive")
    g.connect(enc, "negative", ks, "negative")
    g.connect(latent, "LATENT", ks, "latent_image")
    g.connect(ks, "LATENT", dec, "samples")
    g.connect(vae, "VAE", dec, "vae")
    g.connect(dec, "IMAGE", attrs, "images")
    g.connect(dec, "IMAGE", cv, "images")
    g.connect(cv, "VIDEO", save, "video")
    return g.ui("emovid_t2v_emotion_wan21"), ("Text to video on the native Wan2.1 nodes with an EmoVid LoRA and an emotion-conditioned prompt "
                    "(EmoVid Emotion Encode); measures brightness/colourfulness/hue of the result and saves an mp4.")


def i2v(info) -> tuple[dict, str]:
    g = Graph(info)
    g.add("MarkdownNote", {"text": "# EmoVid I2V from a dataset clip\nThe first frame of an EmoVid clip starts a "
          "Wan2.1 I2V generation in the emotion you choose; the clip's caption is the prompt. Set the dataset "
          "folder on **EmoVid Dataset**. The LoRA node is bypassed: enable it (Ctrl+B) when you have an I2V "
          "EmoVid LoRA.\n\n" + MODELS_NOTE}, pos=(0, -330), width=560)
    ds = g.add("EmoVidDataset", {"root": "EmoVid", "metadata": ""}, pos=(0, 0))
    clipsel = g.add("EmoVidSampleClip", {"emotion": "any", "mode": "balanced", "seed": 7, "max_frames": 33,
                                         "wan_4n1": True}, pos=(0, 140), width=340)
    unet = g.add("UNETLoader", {"unet_name": I2V_UNET, "weight_dtype": "default"}, pos=(380, -60))
    lora = g.add("EmoVidLoraLoader", {"lora_name": I2V_LORA, "strength": 1.0, "strict": False}, pos=(380, 80), mode=4)
    shift = g.add("ModelSamplingSD3", {"shift": 8.0}, pos=(380, 270))
    clip = g.add("CLIPLoader", {"clip_name": TEXT_ENCODER, "type": "wan", "device": "default"}, pos=(380, 380))
    enc = g.add("EmoVidEmotionEncode", {"caption": "", "emotion": "contentment"}, pos=(380, 520), width=400)
    cvl = g.add("CLIPVisionLoader", {"clip_name": CLIP_VISION}, pos=(0, 700))
    cve = g.add("CLIPVisionEncode", {"crop": "none"}, pos=(0, 820))
    vae = g.add("VAELoader", {"vae_name": VAE}, pos=(380, 960))
    w2v = g.add("WanImageToVideo", {"width": 512, "height": 512, "length": 33, "batch_size": 1}, pos=(820, 500))
    ks = g.add("KSampler", {"seed": 20251125, "steps": 20, "cfg": 6.0, "sampler_name": "uni_pc", "scheduler": "simple",
                            "denoise": 1.0}, pos=(820, 0), controls={"seed": "randomize"})
    dec = g.add("VAEDecode", pos=(1180, 0))
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, pos=(1180, 120))
    cv = g.add("CreateVideo", {"fps": 16.0}, pos=(1180, 420))
    save = g.add("SaveVideo", {"filename_prefix": "video/EmoVid_i2v", "format": "auto", "codec": "auto"}, pos=(1180, 580))
    prev = g.add("PreviewImage", pos=(820, 800), title="Start frame")
    g.connect(ds, "dataset", clipsel, "dataset")
    g.connect(unet, "MODEL", lora, "model")
    g.connect(lora, "model", shift, "model")
    g.connect(shift, "MODEL", ks, "model")
    g.connect(clip, "CLIP", enc, "clip")
    g.connect(clipsel, "caption", enc, "caption")
    g.connect(cvl, "CLIP_VISION", cve, "clip_vision")
    g.connect(clipsel, "first_frame", cve, "image")
    g.connect(enc, "positive", w2v, "positive")
    g.connect(enc, "negative", w2v, "negative")
    g.connect(vae, "VAE", w2v, "vae")
    g.connect(cve, "CLIP_VISION_OUTPUT", w2v, "clip_vision_output")
    g.connect(clipsel, "first_frame", w2v, "start_image")
    g.connect(w2v, "positive", ks, "positive")
    g.connect(w2v, "negative", ks, "negative")
    g.connect(w2v, "latent", ks, "latent_image")
    g.connect(ks, "LATENT", dec, "samples")
    g.connect(vae, "VAE", dec, "vae")
    g.connect(dec, "IMAGE", attrs, "images")
    g.connect(dec, "IMAGE", cv, "images")
    g.connect(cv, "VIDEO", save, "video")
    g.connect(clipsel, "first_frame", prev, "images")
    return g.ui("emovid_i2v_from_clip_wan21"), ("Image to video from an EmoVid clip: its first frame starts Wan2.1 I2V (with CLIP vision) in a "
                    "chosen emotion, using the clip's caption; attributes of the result, mp4 saved.")


def sweep(info) -> tuple[dict, str]:
    g = Graph(info)
    g.add("MarkdownNote", {"text": "# The same scene in all eight emotions\n**EmoVid Emotion Sweep** outputs eight "
          "prompts as a list, so every node after it runs eight times with the same fixed seed: eight videos that "
          "differ only by emotion, each with its attribute report.\n\n" + MODELS_NOTE}, pos=(0, -330), width=520)
    unet = g.add("UNETLoader", {"unet_name": T2V_UNET, "weight_dtype": "default"}, pos=(0, 0))
    lora = g.add("EmoVidLoraLoader", {"lora_name": T2V_LORA, "strength": 1.0, "strict": False}, pos=(0, 140))
    shift = g.add("ModelSamplingSD3", {"shift": 8.0}, pos=(0, 330))
    clip = g.add("CLIPLoader", {"clip_name": TEXT_ENCODER, "type": "wan", "device": "default"}, pos=(0, 460))
    sw = g.add("EmoVidEmotionSweep", {"caption": CAPTION, "intensity": 1.0}, pos=(380, 0), width=400)
    pos_enc = g.add("CLIPTextEncode", {"text": ""}, pos=(380, 260), title="Emotion prompt (x8)")
    neg_enc = g.add("CLIPTextEncode", {"text": NEG}, pos=(380, 420), title="Negative prompt")
    latent = g.add("EmptyHunyuanLatentVideo", {"width": 832, "height": 480, "length": 33, "batch_size": 1}, pos=(380, 640))
    ks = g.add("KSampler", {"seed": 20251125, "steps": 30, "cfg": 6.0, "sampler_name": "uni_pc", "scheduler": "simple",
                            "denoise": 1.0}, pos=(840, 0), controls={"seed": "fixed"})
    vae = g.add("VAELoader", {"vae_name": VAE}, pos=(840, 380))
    dec = g.add("VAEDecode", pos=(840, 500))
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, pos=(1200, 0))
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/sweep", "format": "mp4", "quality": 80},
                 pos=(1200, 330))
    g.connect(unet, "MODEL", lora, "model")
    g.connect(lora, "model", shift, "model")
    g.connect(shift, "MODEL", ks, "model")
    g.connect(clip, "CLIP", pos_enc, "clip")
    g.connect(clip, "CLIP", neg_enc, "clip")
    g.connect(sw, "prompts", pos_enc, "text")
    g.connect(pos_enc, "CONDITIONING", ks, "positive")
    g.connect(neg_enc, "CONDITIONING", ks, "negative")
    g.connect(latent, "LATENT", ks, "latent_image")
    g.connect(ks, "LATENT", dec, "samples")
    g.connect(vae, "VAE", dec, "vae")
    g.connect(dec, "IMAGE", attrs, "images")
    g.connect(dec, "IMAGE", save, "images")
    return g.ui("emovid_emotion_sweep_wan21"), ("One scene in all eight Mikels emotions with a fixed seed (EmoVid Emotion Sweep feeding core "
                    "CLIPTextEncode): eight mp4s and eight attribute reports to compare.")


def analyze(info) -> tuple[dict, str]:
    g = Graph(info)
    g.add("MarkdownNote", {"text": "# Attribute analysis of your video\nUpload a video on **Load Video** (mp4, "
          "webm, gif...). **EmoVid Frame Attributes** measures brightness, colourfulness and hue per frame as in the "
          "EmoVid paper and shows the summary and a plot. No models needed."}, pos=(0, -280), width=460)
    lv = g.add("LoadVideo", {"file": "emovid_example.mp4"}, pos=(0, 0))
    comp = g.add("GetVideoComponents", pos=(0, 360))
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, pos=(380, 0))
    prev = g.add("PreviewImage", pos=(760, 0), title="Attribute plot")
    g.connect(lv, "VIDEO", comp, "video")
    g.connect(comp, "images", attrs, "images")
    g.connect(comp, "fps", attrs, "fps")
    g.connect(attrs, "plot", prev, "images")
    return g.ui("emovid_analyze_video"), "Upload a video and measure its brightness, colourfulness and hue per frame (paper Eqs. 1-3), with a plot. No models needed."


def dataset(info) -> tuple[dict, str]:
    g = Graph(info)
    g.add("MarkdownNote", {"text": "# Explore the EmoVid dataset\nSet **root** to your EmoVid folder (absolute, or "
          "relative to ComfyUI's input folder; `emovid dataset make-sample` writes a small synthetic one). The "
          "statistics node plots the attribute distributions per emotion; the sampler draws a clip per emotion "
          "in balanced mode and measures it."}, pos=(0, -280), width=460)
    ds = g.add("EmoVidDataset", {"root": "EmoVid", "metadata": ""}, pos=(0, 0))
    stats = g.add("EmoVidDatasetStats", {"bins": 11, "consecutive_only": False}, pos=(380, 0))
    plots = g.add("PreviewImage", pos=(760, 0), title="Dataset statistics")
    clipsel = g.add("EmoVidSampleClip", {"emotion": "any", "mode": "balanced", "seed": 0, "max_frames": 48},
                    pos=(380, 260), width=340, controls={"seed": "increment"})
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, pos=(760, 300))
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/sampled_clip", "format": "webp",
                                     "quality": 80}, pos=(760, 620))
    g.connect(ds, "dataset", stats, "dataset")
    g.connect(stats, "plots", plots, "images")
    g.connect(ds, "dataset", clipsel, "dataset")
    g.connect(clipsel, "frames", attrs, "images")
    g.connect(clipsel, "fps", attrs, "fps")
    g.connect(clipsel, "frames", save, "images")
    g.connect(clipsel, "fps", save, "fps")
    return g.ui("emovid_dataset_explore"), "Dataset statistics plots (attributes per emotion) and a balanced sample clip with its attributes, saved as an animated webp."


def headless(info) -> tuple[dict, str]:
    g = Graph(info)
    g.add("MarkdownNote", {"text": "# Headless diffusers path (EmoVid nodes only)\nRuns inside ComfyUI and "
          "without it: `emovid run workflows/api/emovid_headless_diffusers.json`. The loader starts on the built-in "
          "tiny random model (a smoke test: noise, seconds on CPU); choose **diffusers folder** and set its path "
          "for a real Wan2.1 model."}, pos=(0, -280), width=460)
    ld = g.add("EmoVidWanLoader", {"source": "tiny-t2v"}, pos=(0, 0), width=360)
    gen = g.add("EmoVidWanGenerate", {"caption": CAPTION, "emotion": "excitement", "seed": 42, "steps": 0,
                                      "guidance": 5.0, "shift": 0.0, "frames": 9, "width": 0, "height": 0},
                pos=(400, 0), width=400, controls={"seed": "fixed"})
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, pos=(840, 0))
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/headless", "format": "mp4",
                                     "quality": 80}, pos=(840, 330))
    g.connect(ld, "pipe", gen, "pipe")
    g.connect(gen, "frames", attrs, "images")
    g.connect(gen, "frames", save, "images")
    return g.ui("emovid_headless_diffusers"), ("The diffusers path with EmoVid nodes only (Wan Loader, Wan Generate, attributes, save); "
                    "`emovid run` executes its API twin without ComfyUI. Starts on the tiny built-in model.")


def story(info) -> tuple[dict, str]:
    g = Graph(info)
    g.add("MarkdownNote", {"text": "# The EmoVid story, pack nodes only\nThe graph `emovid demo` runs step by step: "
          "sample a *fear* clip from an EmoVid dataset, measure it, I2V from its first frame with its caption plus the "
          "paper's emotion sentence and an emotion LoRA, save and measure the result. Headless, after `emovid demo` "
          "(which writes the sample set and a tiny LoRA): `emovid run workflows/api/emovid_demo_story.json --models "
          "emovid_demo --out out`. In ComfyUI: set **root** to your dataset, pick your LoRA and a real model "
          "(the tiny one makes noise)."}, pos=(0, -300), width=520)
    ds = g.add("EmoVidDataset", {"root": "emovid_demo/emovid_sample", "metadata": ""}, pos=(0, 0))
    clipsel = g.add("EmoVidSampleClip", {"emotion": "fear", "type": "animation", "mode": "random", "seed": 0,
                                         "width": 64, "height": 48}, pos=(0, 160), width=340, controls={"seed": "fixed"})
    src_attrs = g.add("EmoVidFrameAttributes", {"stride": 20, "fps": 12.0}, pos=(380, 520), title="Source clip attributes")
    ld = g.add("EmoVidWanLoader", {"source": "tiny-i2v"}, pos=(380, 0), width=340)
    lora = g.add("EmoVidLoraLoaderPipeline", {"lora_name": "emovid_fear_tiny_diffsynth.safetensors", "strength": 1.0,
                                              "adapter_name": "emovid_fear"}, pos=(380, 260), width=340)
    gen = g.add("EmoVidWanGenerate", {"emotion": "fear", "seed": 0, "steps": 0, "guidance": 5.0, "shift": 0.0,
                                      "frames": 9, "width": 64, "height": 48}, pos=(760, 0), width=400,
                controls={"seed": "fixed"})
    attrs = g.add("EmoVidFrameAttributes", {"stride": 20, "fps": 16.0}, pos=(1200, 0), title="Generated clip attributes")
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/story", "format": "mp4", "quality": 80},
                 pos=(1200, 330))
    g.connect(ds, "dataset", clipsel, "dataset")
    g.connect(clipsel, "frames", src_attrs, "images")
    g.connect(clipsel, "fps", src_attrs, "fps")
    g.connect(ld, "pipe", lora, "pipe")
    g.connect(lora, "pipe", gen, "pipe")
    g.connect(clipsel, "caption", gen, "caption")
    g.connect(clipsel, "first_frame", gen, "start_image")
    g.connect(gen, "frames", attrs, "images")
    g.connect(gen, "frames", save, "images")
    return g.ui("emovid_demo_story"), ("The whole EmoVid story with pack nodes only (dataset clip, attributes, emotion "
                    "prompt, I2V with an emotion LoRA, save, attributes); `emovid run` executes it after `emovid demo`.")


BUILDERS = {
    "emovid_t2v_emotion_wan21": t2v,
    "emovid_i2v_from_clip_wan21": i2v,
    "emovid_emotion_sweep_wan21": sweep,
    "emovid_analyze_video": analyze,
    "emovid_dataset_explore": dataset,
    "emovid_headless_diffusers": headless,
    "emovid_demo_story": story,
}


def render_preview(ui: dict, title: str, path: Path) -> None:
    """A schematic of the graph (nodes and links at their canvas positions) as the template thumbnail."""
    from PIL import Image, ImageDraw, ImageFont

    W, H, pad, top = 768, 432, 24, 56
    img = Image.new("RGB", (W, H), (30, 32, 38))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    nodes = [n for n in ui["nodes"] if n["type"] not in ("Note", "MarkdownNote")]
    xs = [n["pos"][0] for n in nodes] + [n["pos"][0] + n["size"][0] for n in nodes]
    ys = [n["pos"][1] for n in nodes] + [n["pos"][1] + n["size"][1] for n in nodes]
    sx = (W - 2 * pad) / max(1, max(xs) - min(xs))
    sy = (H - top - pad) / max(1, max(ys) - min(ys))
    s = min(sx, sy)

    def pt(x, y):
        return pad + (x - min(xs)) * s, top + (y - min(ys)) * s

    by_id = {n["id"]: n for n in nodes}
    for lk in ui["links"]:
        a, b = by_id.get(lk[1]), by_id.get(lk[3])
        if a and b:
            x0, y0 = pt(a["pos"][0] + a["size"][0], a["pos"][1] + 30 + 20 * lk[2])
            x1, y1 = pt(b["pos"][0], b["pos"][1] + 30 + 20 * lk[4])
            d.line([(x0, y0), (x1, y1)], fill=(120, 170, 220), width=2)
    for n in nodes:
        x0, y0 = pt(*n["pos"])
        x1, y1 = pt(n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
        ours = n["type"].startswith("EmoVid")
        fill = (70, 52, 92) if ours else (54, 58, 66)
        if n.get("mode") == 4:
            fill = (92, 40, 92)
        d.rounded_rectangle([x0, y0, x1, y1], radius=6, fill=fill, outline=(200, 160, 255) if ours else (140, 140, 150))
        label = n.get("title") or n["type"]
        d.text((x0 + 5, y0 + 4), label[: max(4, int((x1 - x0) / 6))], fill=(240, 240, 240), font=font)
    d.rectangle([0, 0, W, top - 14], fill=(58, 40, 86))
    d.text((pad, 14), title, fill=(255, 255, 255), font=font)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, "JPEG", quality=88)
    tmp.replace(path)


def build_index(built: dict) -> dict:
    """index.json: the machine-readable list (``emovid_examples``) inside a UI graph holding one note.

    ComfyUI lists every workflows/*.json in its template browser, index.json included, and opens it as a
    graph; so the index is also a valid workflow whose only node is a catalogue of the examples.
    """
    entries = [{"name": n, "description": d, "api": f"api/{n}.json", "preview": f"{n}.jpg"}
               for n, (_, _, d) in built.items()]
    text = "# ComfyUI-EmoVid examples\n" + "\n".join(f"- **{e['name']}**: {e['description']}" for e in entries)
    g = Graph({})
    g.add("MarkdownNote", {"text": text}, pos=(0, 0), width=720)
    ui = g.ui("index")
    ui["emovid_examples"] = entries
    return ui


def render_index_preview(index: dict, path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (768, 432), (30, 32, 38))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    d.rectangle([0, 0, 768, 42], fill=(58, 40, 86))
    d.text((24, 14), "ComfyUI-EmoVid examples", fill=(255, 255, 255), font=font)
    for i, e in enumerate(index["emovid_examples"]):
        y = 64 + 58 * i
        d.rounded_rectangle([24, y, 744, y + 48], radius=6, fill=(70, 52, 92), outline=(200, 160, 255))
        d.text((34, y + 6), e["name"], fill=(255, 255, 255), font=font)
        d.text((34, y + 26), e["description"][:118], fill=(210, 210, 220), font=font)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, "JPEG", quality=88)
    tmp.replace(path)


def build() -> dict[str, tuple[dict, dict, str]]:
    global NEG
    info = offline_object_info()
    NEG = info["EmoVidEmotionEncode"]["input"]["required"]["negative_prompt"][1]["default"]
    out = {}
    for name, fn in BUILDERS.items():
        ui, desc = fn(info)
        out[name] = (ui, ui_to_api(ui, info, source=name), desc)
    return out


def main(argv=None) -> int:
    from emovid_core.host.workflow_convert import write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    args = ap.parse_args(argv)
    built = build()
    index = build_index(built)
    if args.check:
        stale = [n for n, (ui, api, _) in built.items()
                 if not (OUT / f"{n}.json").is_file() or json.loads((OUT / f"{n}.json").read_text()) != ui
                 or json.loads((OUT / "api" / f"{n}.json").read_text()) != api]
        if not (OUT / "index.json").is_file() or json.loads((OUT / "index.json").read_text()) != index:
            stale.append("index.json")
        print("stale: " + ", ".join(stale) if stale else "workflows are up to date")
        return 1 if stale else 0
    for n, (ui, api, desc) in built.items():
        write_json_atomic(OUT / f"{n}.json", ui)
        write_json_atomic(OUT / "api" / f"{n}.json", api)
        render_preview(ui, f"EmoVid - {desc.split(':')[0].split('(')[0].strip()[:90]}", OUT / f"{n}.jpg")
    write_json_atomic(OUT / "index.json", index)
    render_index_preview(index, OUT / "index.jpg")
    print(f"wrote {len(built)} workflows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
