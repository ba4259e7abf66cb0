"""Build the example workflows: workflows/<name>.json (UI format), workflows/api/<name>.json (API twin),
workflows/<name>.jpg (preview for the template browser) and workflows/index.json.

    .venv/bin/python scripts/build_workflows.py          # rewrite everything
    .venv/bin/python scripts/build_workflows.py --check  # exit 1 when the files on disk differ

Graphs are written from node schemas (core: emovid_core/host/data/core_object_info.json; ours: the node classes), so
widget order, seed control values and sockets are laid out the way the ComfyUI frontend saves them. The API twin
is the converter's output for the UI file; tests/host/test_workflows.py checks they stay in step.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from workflow_layout import (  # noqa: E402
    Block,
    frontend_size,
    layout,
    node_shape,
    note_size,
    view_for,
    workflow_bounds,
)

from emovid_core.atomic import atomic_path, write_json  # noqa: E402
from emovid_core.host.workflow_convert import (  # noqa: E402
    _has_control,
    _has_upload,
    _is_widget,
    input_specs,
    offline_object_info,
    ui_to_api,
)

OUT = ROOT / "workflows"
CATALOG = OUT / "catalog" / "index.json"
LOCALE = ROOT / "locales" / "en" / "main.json"
LEGACY = (OUT / "index.json", OUT / "index.jpg")

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


STAGES = {  # the reading order of every example, left to right; group colours from LiteGraph's palette
    "load": ("Load", "#3f789e"),
    "condition": ("Condition", "#a1309b"),
    "sample": ("Sample", "#b06634"),
    "decode": ("Decode", "#8AA"),
    "measure": ("Measure", "#8A8"),
    "save": ("Save", "#b58b2a"),
}


class Graph:
    """A UI-format (v0.4) graph built from /object_info schemas, laid out in titled stage groups."""

    def __init__(self, info: dict):
        self.info = info
        self.nodes: list[dict] = []
        self.links: list[list] = []
        self.stage_of: dict[int, tuple[str, str]] = {}  # node id -> (stage, group title)
        self.notes: list[dict] = []
        self.notes_after: list[dict] = []

    def note(self, title: str, text: str, width: int = 320, last: bool = False) -> dict:
        """A titled Markdown note sized for its text: before the stages, or after them with ``last``."""
        nid = len(self.nodes) + 1
        node = {"id": nid, "type": "MarkdownNote", "pos": [0, 0], "size": list(note_size(title, text, width)),
                "flags": {}, "order": nid, "mode": 0, "inputs": [], "outputs": [], "properties": {},
                "widgets_values": [text], "color": "#432", "bgcolor": "#653", "title": title}
        self.nodes.append(node)
        (self.notes_after if last else self.notes).append(node)
        return node

    def add(self, type_: str, values: dict | None = None, stage: str = "load", group: str | None = None,
            title: str | None = None, mode: int = 0, controls: dict | None = None) -> dict:
        """Add a node in ``stage`` (a key of STAGES); ``group`` names its group when a stage has several."""
        if stage not in STAGES:
            raise KeyError(f"unknown stage {stage!r}; use one of {list(STAGES)}")
        values = dict(values or {})
        nid = len(self.nodes) + 1
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
        node = {"id": nid, "type": type_, "pos": [0, 0], "size": [0, 0],
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
        self.stage_of[nid] = (stage, group or STAGES[stage][0])
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
        """Size every node as the frontend will, place notes then stage groups in reading order."""
        for n in self.nodes:
            if n["type"] != "MarkdownNote":
                n["size"] = list(frontend_size(node_shape(n, self.info)))
        blocks = [Block([n]) for n in self.notes]
        order = list(STAGES)
        keys = sorted(dict.fromkeys(self.stage_of.values()), key=lambda k: order.index(k[0]))  # stable
        for stage, title in keys:
            members = [n for n in self.nodes if self.stage_of.get(n["id"]) == (stage, title)]
            blocks.append(Block(members, title=title, color=STAGES[stage][1]))
        blocks += [Block([n]) for n in self.notes_after]
        try:
            groups = layout(blocks)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        ui = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-emovid/workflows/{name}")), "revision": 0,
              "last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
              "links": self.links, "groups": groups, "config": {},
              "extra": {"frontendVersion": "1.27.10"}, "version": 0.4}
        ui["extra"]["ds"] = view_for(ui)
        return ui


NEG = None  # filled from the Emotion Encode default (Wan's standard negative prompt)


@dataclass(frozen=True)
class Example:
    """One shipped example: its file stem, what people read (title, one line), and the function that builds it."""

    name: str
    title: str
    description: str
    build: Callable[[dict], dict]


def _wan_models(g: Graph, unet_name: str, lora_name: str, lora_mode: int = 0) -> tuple[dict, dict, dict, dict]:
    """The native Wan2.1 model chain every Wan example starts with: UNET, EmoVid LoRA, shift 8, umt5."""
    unet = g.add("UNETLoader", {"unet_name": unet_name, "weight_dtype": "default"}, "load", "Load models")
    lora = g.add("EmoVidLoraLoader", {"lora_name": lora_name, "strength": 1.0, "strict": False}, "load", "Load models",
                 mode=lora_mode)
    shift = g.add("ModelSamplingSD3", {"shift": 8.0}, "load", "Load models")
    clip = g.add("CLIPLoader", {"clip_name": TEXT_ENCODER, "type": "wan", "device": "default"}, "load", "Load models")
    return unet, lora, shift, clip


def t2v(info) -> dict:
    g = Graph(info)
    g.note("About: text to video in an emotion", "# Text to video in an emotion\nPick the emotion on **EmoVid "
           "Emotion Encode**; it appends the paper's emotion sentence to your caption. **EmoVid LoRA Loader** "
           "loads your EmoVid LoRA (strength 0 = the base model). The result is measured (brightness, "
           "colourfulness, hue) and saved as an mp4.")
    unet, lora, shift, clip = _wan_models(g, T2V_UNET, T2V_LORA)
    enc = g.add("EmoVidEmotionEncode", {"caption": CAPTION, "emotion": "awe", "intensity": 1.0}, "condition",
                "Emotion prompt")
    latent = g.add("EmptyHunyuanLatentVideo", {"width": 832, "height": 480, "length": 33, "batch_size": 1}, "sample")
    ks = g.add("KSampler", {"seed": 20251125, "steps": 30, "cfg": 6.0, "sampler_name": "uni_pc", "scheduler": "simple",
                            "denoise": 1.0}, "sample", controls={"seed": "randomize"})
    vae = g.add("VAELoader", {"vae_name": VAE}, "load", "Load models")
    dec = g.add("VAEDecode", stage="decode")
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, "measure", "Measure attributes")
    cv = g.add("CreateVideo", {"fps": 16.0}, "save", "Save video")
    save = g.add("SaveVideo", {"filename_prefix": "video/EmoVid_t2v", "format": "auto", "codec": "auto"}, "save",
                 "Save video")
    g.note("Model files", MODELS_NOTE, last=True)
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
    return g.ui("emovid_t2v_emotion_wan21")


def i2v(info) -> dict:
    g = Graph(info)
    g.note("About: image to video from a dataset clip", "# Image to video from a dataset clip\nThe first frame of "
           "an EmoVid clip starts a Wan2.1 I2V generation in the emotion you choose; the clip's caption is the "
           "prompt. Set the dataset folder on **EmoVid Dataset**. The LoRA node is bypassed: enable it (Ctrl+B) "
           "when you have an I2V EmoVid LoRA.\n\n**Models:** Wan2.1 I2V 14B 480p, umt5, VAE and CLIP vision H "
           "(the loaders name the files; folders in docs/workflows.md).")
    ds = g.add("EmoVidDataset", {"root": "EmoVid", "metadata": ""}, "load", "Load a dataset clip")
    clipsel = g.add("EmoVidSampleClip", {"emotion": "any", "mode": "balanced", "seed": 7, "max_frames": 33,
                                         "wan_4n1": True}, "load", "Load a dataset clip")
    unet, lora, shift, clip = _wan_models(g, I2V_UNET, I2V_LORA, lora_mode=4)  # bypassed until you have one
    enc = g.add("EmoVidEmotionEncode", {"caption": "", "emotion": "contentment"}, "condition",
                "Caption + emotion")
    cvl = g.add("CLIPVisionLoader", {"clip_name": CLIP_VISION}, "load", "Load models")
    cve = g.add("CLIPVisionEncode", {"crop": "none"}, "condition", "Start frame")
    vae = g.add("VAELoader", {"vae_name": VAE}, "load", "Load models")
    w2v = g.add("WanImageToVideo", {"width": 512, "height": 512, "length": 33, "batch_size": 1}, "condition",
                "Start frame")
    ks = g.add("KSampler", {"seed": 20251125, "steps": 20, "cfg": 6.0, "sampler_name": "uni_pc", "scheduler": "simple",
                            "denoise": 1.0}, "sample", controls={"seed": "randomize"})
    dec = g.add("VAEDecode", stage="decode")
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, "measure", "Measure attributes")
    cv = g.add("CreateVideo", {"fps": 16.0}, "save", "Save video")
    save = g.add("SaveVideo", {"filename_prefix": "video/EmoVid_i2v", "format": "auto", "codec": "auto"}, "save",
                 "Save video")
    # its own group, so that it can sit at the top of the next column: the graph then opens at 75 % or more
    # on a 1440 x 900 screen (the full "Model files" note of the other examples does not fit beside it)
    prev = g.add("PreviewImage", stage="condition", group="Start frame preview", title="Start frame preview")
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
    return g.ui("emovid_i2v_from_clip_wan21")


def sweep(info) -> dict:
    g = Graph(info)
    g.note("About: one scene in all eight emotions", "# One scene in all eight emotions\n**EmoVid Emotion Sweep** "
           "outputs eight prompts as a list, so every node after it runs eight times with the same fixed seed: "
           "eight videos that differ only by emotion, each with its attribute report.")
    unet, lora, shift, clip = _wan_models(g, T2V_UNET, T2V_LORA)
    sw = g.add("EmoVidEmotionSweep", {"caption": CAPTION, "intensity": 1.0}, "condition", "Eight emotion prompts")
    pos_enc = g.add("CLIPTextEncode", {"text": ""}, "condition", "Eight emotion prompts", title="Emotion prompt (x8)")
    neg_enc = g.add("CLIPTextEncode", {"text": NEG}, "condition", "Eight emotion prompts", title="Negative prompt")
    latent = g.add("EmptyHunyuanLatentVideo", {"width": 832, "height": 480, "length": 33, "batch_size": 1}, "sample")
    ks = g.add("KSampler", {"seed": 20251125, "steps": 30, "cfg": 6.0, "sampler_name": "uni_pc", "scheduler": "simple",
                            "denoise": 1.0}, "sample", controls={"seed": "fixed"})
    vae = g.add("VAELoader", {"vae_name": VAE}, "load", "Load models")
    dec = g.add("VAEDecode", stage="decode")
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, "measure", "Measure attributes")
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/sweep", "format": "mp4", "quality": 80},
                 "save", "Save eight videos")
    g.note("Model files", MODELS_NOTE, last=True)
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
    return g.ui("emovid_emotion_sweep_wan21")


def analyze(info) -> dict:
    g = Graph(info)
    g.note("About: attribute analysis of your video", "# Attribute analysis of your video\nUpload a video on "
           "**Load Video** (mp4, webm, gif...). **EmoVid Frame Attributes** measures brightness, colourfulness and "
           "hue per frame as in the EmoVid paper and shows the summary and a plot. No models needed.")
    lv = g.add("LoadVideo", {"file": "emovid_example.mp4"}, "load", "Load your video")
    comp = g.add("GetVideoComponents", stage="decode", group="Split into frames")
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, "measure", "Measure attributes")
    prev = g.add("PreviewImage", stage="save", group="Show the plot", title="Attribute plot")
    g.connect(lv, "VIDEO", comp, "video")
    g.connect(comp, "images", attrs, "images")
    g.connect(comp, "fps", attrs, "fps")
    g.connect(attrs, "plot", prev, "images")
    return g.ui("emovid_analyze_video")


def dataset(info) -> dict:
    g = Graph(info)
    g.note("About: explore the EmoVid dataset", "# Explore the EmoVid dataset\nSet **root** to your EmoVid folder "
           "(absolute, or relative to ComfyUI's input folder; `emovid dataset make-sample` writes a small synthetic "
           "one). The statistics node plots the attribute distributions per emotion; the sampler draws a clip per "
           "emotion in balanced mode and measures it.")
    ds = g.add("EmoVidDataset", {"root": "EmoVid", "metadata": ""}, "load", "Load the dataset")
    stats = g.add("EmoVidDatasetStats", {"bins": 11, "consecutive_only": False}, "measure", "Dataset statistics")
    plots = g.add("PreviewImage", stage="measure", group="Dataset statistics", title="Dataset statistics")
    clipsel = g.add("EmoVidSampleClip", {"emotion": "any", "mode": "balanced", "seed": 0, "max_frames": 48},
                    "load", "Draw a clip", controls={"seed": "increment"})
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, "measure", "Clip attributes")
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/sampled_clip", "format": "webp",
                                     "quality": 80}, "save", "Save the clip")
    g.connect(ds, "dataset", stats, "dataset")
    g.connect(stats, "plots", plots, "images")
    g.connect(ds, "dataset", clipsel, "dataset")
    g.connect(clipsel, "frames", attrs, "images")
    g.connect(clipsel, "fps", attrs, "fps")
    g.connect(clipsel, "frames", save, "images")
    g.connect(clipsel, "fps", save, "fps")
    return g.ui("emovid_dataset_explore")


def headless(info) -> dict:
    g = Graph(info)
    g.note("About: the headless diffusers path", "# Headless diffusers path (EmoVid nodes only)\nRuns inside "
           "ComfyUI and without it: `emovid run workflows/api/emovid_headless_diffusers.json`. The loader starts on "
           "the built-in tiny random model (a smoke test: noise, seconds on CPU); choose **diffusers folder** and "
           "set its path for a real Wan2.1 model.")
    ld = g.add("EmoVidWanLoader", {"source": "tiny-t2v"}, "load", "Load a Wan2.1 pipeline")
    gen = g.add("EmoVidWanGenerate", {"caption": CAPTION, "emotion": "excitement", "seed": 42, "steps": 0,
                                      "guidance": 5.0, "shift": 0.0, "frames": 9, "width": 0, "height": 0},
                "sample", "Emotion prompt + sample", controls={"seed": "fixed"})
    attrs = g.add("EmoVidFrameAttributes", {"stride": 1, "fps": 16.0}, "measure", "Measure attributes")
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/headless", "format": "mp4",
                                     "quality": 80}, "save", "Save video")
    g.connect(ld, "pipe", gen, "pipe")
    g.connect(gen, "frames", attrs, "images")
    g.connect(gen, "frames", save, "images")
    return g.ui("emovid_headless_diffusers")


def story(info) -> dict:
    g = Graph(info)
    g.note("About: the EmoVid story", "# The EmoVid story, pack nodes only\nThe graph `emovid demo` runs step by "
           "step: sample a *fear* clip from an EmoVid dataset, measure it, I2V from its first frame with its caption "
           "plus the paper's emotion sentence and an emotion LoRA, save and measure the result.")
    ds = g.add("EmoVidDataset", {"root": "emovid_demo/emovid_sample", "metadata": ""}, "load", "Load a fear clip")
    clipsel = g.add("EmoVidSampleClip", {"emotion": "fear", "type": "animation", "mode": "random", "seed": 0,
                                         "width": 64, "height": 48}, "load", "Load a fear clip",
                    controls={"seed": "fixed"})
    src_attrs = g.add("EmoVidFrameAttributes", {"stride": 20, "fps": 12.0}, "measure", "Measure source and result",
                      title="Source clip attributes")
    ld = g.add("EmoVidWanLoader", {"source": "tiny-i2v"}, "load", "Load the model + emotion LoRA")
    lora = g.add("EmoVidLoraLoaderPipeline", {"lora_name": "emovid_fear_tiny_diffsynth.safetensors", "strength": 1.0,
                                              "adapter_name": "emovid_fear"}, "load", "Load the model + emotion LoRA")
    gen = g.add("EmoVidWanGenerate", {"emotion": "fear", "seed": 0, "steps": 0, "guidance": 5.0, "shift": 0.0,
                                      "frames": 9, "width": 64, "height": 48}, "sample", "Emotion prompt + I2V",
                controls={"seed": "fixed"})
    attrs = g.add("EmoVidFrameAttributes", {"stride": 20, "fps": 16.0}, "measure", "Measure source and result",
                  title="Generated clip attributes")
    save = g.add("EmoVidSaveVideo", {"fps": 16.0, "filename_prefix": "EmoVid/story", "format": "mp4", "quality": 80},
                 "save", "Save video")
    g.note("How to run it", "## Headless\nAfter `emovid demo` (which writes the sample set and a tiny LoRA):\n"
           "`emovid run workflows/api/emovid_demo_story.json --models emovid_demo --out out`\n## In ComfyUI\nSet "
           "**root** to your dataset, pick your LoRA and a real model (the tiny one makes noise).", last=True)
    g.connect(ds, "dataset", clipsel, "dataset")
    g.connect(clipsel, "frames", src_attrs, "images")
    g.connect(clipsel, "fps", src_attrs, "fps")
    g.connect(ld, "pipe", lora, "pipe")
    g.connect(lora, "pipe", gen, "pipe")
    g.connect(clipsel, "caption", gen, "caption")
    g.connect(clipsel, "first_frame", gen, "start_image")
    g.connect(gen, "frames", attrs, "images")
    g.connect(gen, "frames", save, "images")
    return g.ui("emovid_demo_story")


EXAMPLES = [
    Example("emovid_t2v_emotion_wan21", "Text to video in an emotion (Wan2.1 + EmoVid LoRA)",
            "Text to video on the native Wan2.1 nodes with an EmoVid LoRA and an emotion-conditioned prompt "
            "(EmoVid Emotion Encode); measures brightness/colourfulness/hue of the result and saves an mp4.", t2v),
    Example("emovid_i2v_from_clip_wan21", "Image to video from a dataset clip (Wan2.1 I2V)",
            "Image to video from an EmoVid clip: its first frame starts Wan2.1 I2V (with CLIP vision) in a "
            "chosen emotion, using the clip's caption; attributes of the result, mp4 saved.", i2v),
    Example("emovid_emotion_sweep_wan21", "One scene in all eight emotions (Wan2.1)",
            "One scene in all eight Mikels emotions with a fixed seed (EmoVid Emotion Sweep feeding core "
            "CLIPTextEncode): eight mp4s and eight attribute reports to compare.", sweep),
    Example("emovid_analyze_video", "Attribute analysis of your video (no models)",
            "Upload a video and measure its brightness, colourfulness and hue per frame (paper Eqs. 1-3), with a "
            "plot. No models needed.", analyze),
    Example("emovid_dataset_explore", "Explore the EmoVid dataset (no models)",
            "Dataset statistics plots (attributes per emotion) and a balanced sample clip with its attributes, "
            "saved as an animated webp.", dataset),
    Example("emovid_headless_diffusers", "Headless diffusers path (EmoVid nodes only)",
            "The diffusers path with EmoVid nodes only (Wan Loader, Wan Generate, attributes, save); `emovid run` "
            "executes its API twin without ComfyUI. Starts on the tiny built-in model.", headless),
    Example("emovid_demo_story", "The EmoVid story: dataset clip to emotion video",
            "The whole EmoVid story with pack nodes only (dataset clip, attributes, emotion prompt, I2V with an "
            "emotion LoRA, save, attributes); `emovid run` executes it after `emovid demo`.", story),
]


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's bundled FreeType font: same thumbnails on every machine


def _wrap(draw, text: str, font, width: int) -> list[str]:
    lines, cur = [], ""
    for word in text.split():
        trial = f"{cur} {word}".strip()
        if cur and draw.textlength(trial, font=font) > width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + ([cur] if cur else [])


def render_preview(ui: dict, ex: Example, path: Path) -> None:
    """The template-browser thumbnail: the human title and one line (the card itself only shows the file
    name), over a schematic of the stage groups and nodes. Square, because the card shows it in a 256 x 256 box."""
    from PIL import Image, ImageDraw

    size, pad = 512, 20
    img = Image.new("RGB", (size, size), (30, 32, 38))
    d = ImageDraw.Draw(img)
    title_font, text_font, small = _font(30), _font(17), _font(11)
    title = _wrap(d, ex.title, title_font, size - 2 * pad)[:3]
    desc = _wrap(d, ex.description, text_font, size - 2 * pad)[:4]
    d.rectangle([0, 0, size, pad + 36 * len(title) + 4 + 22 * len(desc) + 8], fill=(58, 40, 86))
    y = pad
    for line in title:
        d.text((pad, y), line, fill=(255, 255, 255), font=title_font)
        y += 36
    y += 4
    for line in desc:
        d.text((pad, y), line, fill=(205, 205, 215), font=text_font)
        y += 22
    top = y + 22
    bx, by, bw, bh = workflow_bounds(ui)
    s = min((size - 2 * pad) / bw, (size - top - pad) / bh)

    def pt(x, yy):
        return pad + (x - bx) * s, top + (yy - by) * s

    for grp in ui["groups"]:
        x, yy, w, h = grp["bounding"]
        d.rounded_rectangle([*pt(x, yy), *pt(x + w, yy + h)], radius=4, outline=grp["color"], width=2)
        d.text((pt(x, yy)[0] + 4, pt(x, yy)[1] + 2), grp["title"], fill=grp["color"], font=small)
    by_id = {n["id"]: n for n in ui["nodes"]}
    for lk in ui["links"]:
        a, b = by_id[lk[1]], by_id[lk[3]]
        x0, y0 = pt(a["pos"][0] + a["size"][0], a["pos"][1] + 10 + 20 * lk[2])
        x1, y1 = pt(b["pos"][0], b["pos"][1] + 10 + 20 * lk[4])
        d.line([(x0, y0), (x1, y1)], fill=(120, 170, 220), width=1)
    for n in ui["nodes"]:
        x0, y0, w, h = n["pos"][0], n["pos"][1] - 30, n["size"][0], n["size"][1] + 30
        note = n["type"] in ("Note", "MarkdownNote")
        ours = n["type"].startswith("EmoVid")
        fill = (101, 85, 51) if note else (70, 52, 92) if ours else (54, 58, 66)
        if n.get("mode") == 4:
            fill = (92, 40, 92)
        d.rectangle([*pt(x0, y0), *pt(x0 + w, y0 + h)], fill=fill,
                    outline=(200, 160, 255) if ours else (140, 140, 150))
    with atomic_path(path) as tmp:
        img.save(tmp, "JPEG", quality=88)


def build_catalog(examples: list[Example]) -> dict:
    """workflows/catalog/index.json: the examples for people and tools (paths from the pack root).

    It sits in a sub-folder because ComfyUI lists every ``workflows/*.json`` as a template card
    (app/custom_node_manager.py globs the top level only)."""
    return {"emovid_examples": [
        {"name": ex.name, "title": ex.title, "description": ex.description, "ui": f"workflows/{ex.name}.json",
         "api": f"workflows/api/{ex.name}.json", "preview": f"workflows/{ex.name}.jpg"} for ex in examples]}


def build_locale() -> dict:
    """locales/en/main.json: the template browser's label for this pack's category.

    Frontend 1.27.10 looks up ``templateWorkflows.category.<pack folder>`` for a custom-node category (its only
    translatable text; card titles are file names). ComfyUI serves locales/ of every pack at /i18n. The
    folder is the git clone's name or the registry id."""
    label = "EmoVid examples"
    return {"templateWorkflows": {"category": {"ComfyUI-EmoVid": label, "comfyui-emovid": label}}}


def build() -> dict[str, tuple[dict, dict, Example]]:
    global NEG
    info = offline_object_info()
    NEG = info["EmoVidEmotionEncode"]["input"]["required"]["negative_prompt"][1]["default"]
    out = {}
    for ex in EXAMPLES:
        ui = ex.build(info)
        out[ex.name] = (ui, ui_to_api(ui, info, source=ex.name), ex)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    args = ap.parse_args(argv)
    built = build()
    files = {OUT / f"{n}.json": ui for n, (ui, _, _) in built.items()}
    files.update({OUT / "api" / f"{n}.json": api for n, (_, api, _) in built.items()})
    files[CATALOG] = build_catalog(EXAMPLES)
    files[LOCALE] = build_locale()
    if args.check:
        stale = [str(p.relative_to(ROOT)) for p, data in files.items()
                 if not p.is_file() or json.loads(p.read_text()) != data]
        stale += [str(p.relative_to(ROOT)) for p in LEGACY if p.exists()]
        print("stale: " + ", ".join(stale) if stale else "workflows are up to date")
        return 1 if stale else 0
    for p, data in files.items():
        write_json(p, data)
    for n, (ui, _, ex) in built.items():
        render_preview(ui, ex, OUT / f"{n}.jpg")
    for p in LEGACY:  # files this script wrote before (they would still show in the template browser)
        p.unlink(missing_ok=True)
    print(f"wrote {len(built)} workflows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
