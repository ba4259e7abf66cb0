"""Generate a clip with a loaded Wan2.1 pipeline: caption + emotion prompt, optional LoRA stack and start image.

Every input is checked (naming the bad value) before any model work starts. Frames come back as a float32
``[F, H, W, 3]`` tensor in 0..1, ComfyUI's IMAGE layout with the frames flattened into the batch.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import runtime
from .handle import WanHandle

log = logging.getLogger("EmoVid")

MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF
MAX_STEPS = 1000
MAX_SIDE = 4096
NO_EMOTION = "none"


@dataclass
class GenerationResult:
    frames: Any  # torch.Tensor [F, H, W, 3] float32 0..1
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    num_frames: int
    width: int
    height: int
    guidance: float
    shift: float
    emotion: str | None
    intensity: float
    loras: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_per_step: float = 0.0

    def summary(self) -> str:
        s = (f"{self.num_frames} frames {self.width}x{self.height}, {self.steps} steps, guidance {self.guidance:g}, "
             f"shift {self.shift:g}, seed {self.seed}, {self.seconds:.2f} s ({self.seconds_per_step:.3f} s/step)")
        if self.loras:
            s += f", LoRAs {', '.join(str(x) for x in self.loras)}"
        return s


# --------------------------------------------------------------------------------------------- checks


def _int(name: str, value, lo: int, hi: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} {v} is outside {lo}..{hi}{hint}")
    return v


def _float(name: str, value, lo: float, hi: float, hint: str = "") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name} {value!r} is outside {lo:g}..{hi:g}{hint}")
    return v


def check_settings(*, frames=None, width=None, height=None, steps=None, guidance=None, shift=None, seed=None) -> dict:
    """Validate the model-independent settings (None = not given, skipped); returns them normalised."""
    out: dict = {}
    if frames is not None:
        f = _int("frames", frames, 1, 10_001)
        if (f - 1) % 4:
            lo = f - (f - 1) % 4
            raise ValueError(f"frames {f} is not 4n+1 (the Wan VAE packs 4 frames per latent); use {lo} or {lo + 4}")
        out["frames"] = f
    for name, v in (("width", width), ("height", height)):
        if v is not None:
            v = _int(name, v, 16, MAX_SIDE)
            if v % 16:
                raise ValueError(f"{name} {v} is not a multiple of 16 (VAE 8x and patch 2x); use {v - v % 16 or 16} or {v - v % 16 + 16}")
            out[name] = v
    if steps is not None:
        out["steps"] = _int("steps", steps, 1, MAX_STEPS)
    if guidance is not None:
        out["guidance"] = _float("guidance", guidance, 0.0, 100.0, " (1 or less turns classifier-free guidance off)")
    if shift is not None:
        out["shift"] = _float("shift", shift, 0.01, 100.0, " (flow shift: 3 for 480P, 5 for 720P in diffusers; ComfyUI's templates use 8)")
    if seed is not None:
        out["seed"] = _int("seed", seed, 0, MAX_SEED)
    return out


def check_generate_inputs(handle: WanHandle, *, frames, width, height, steps, guidance, shift, seed, image) -> dict:
    """Validate generation settings against the loaded model; returns them normalised. Raises ValueError."""
    if not isinstance(handle, WanHandle):
        raise ValueError(f"pipe must be a loaded Wan pipeline (EmoVid Wan Loader / load_pipeline), got {type(handle).__name__}")
    given = dict(frames=frames, width=width, height=height, steps=steps, guidance=guidance, shift=shift, seed=seed)
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(f"no value for {', '.join(missing)} and the loaded model ({handle.variant}) has no default for it")
    opts = check_settings(**given)
    f, w, h = opts["frames"], opts["width"], opts["height"]
    rope = int(getattr(handle.pipe.transformer.config, "rope_max_seq_len", 1024))
    for name, n, v in (("frames", (f - 1) // 4 + 1, f), ("height", h // 16, h), ("width", w // 16, w)):
        if n > rope:
            raise ValueError(f"{name} {v} gives {n} positions along that axis, more than this model's rotary table ({rope}); "
                             "use a smaller value")
    if handle.kind == "i2v" and image is None:
        raise ValueError(f"the loaded model is image-to-video ({handle.variant}); connect a start image")
    if handle.kind == "t2v" and image is not None:
        raise ValueError(f"a start image was given but the loaded model is text-to-video ({handle.variant}); "
                         "load an I2V model (e.g. i2v-14b-480p) or remove the image")
    return opts


def to_pil(image):
    """A start image as PIL RGB: IMAGE tensor [B,H,W,C] / [H,W,C] (first frame used), numpy array, PIL image or path."""
    import numpy as np
    from PIL import Image

    if isinstance(image, (str, Path)):
        p = Path(image)
        if not p.is_file():
            raise FileNotFoundError(f"start image {str(p)!r} not found")
        from ..video_io import open_image

        with open_image(p) as im:  # a huge image gets the memory message, not Pillow's bomb exception
            return im.convert("RGB")
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = image.detach().cpu().float().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"start image has shape {tuple(arr.shape)}; expected an IMAGE [B, H, W, 3] (or [H, W, 3])")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    arr = np.clip(np.nan_to_num(arr[..., :3].astype(np.float32)), 0.0, 1.0)  # RGBA: alpha dropped
    return Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8), "RGB")


def fit_image(img, width: int, height: int):
    """Centre-crop ``img`` (PIL) to the output's aspect ratio and resize it to width x height, as ComfyUI's
    WanImageToVideo does (crop 'center'); diffusers would otherwise stretch it."""
    from PIL import Image

    w, h = img.size
    target = width / height
    if w / h > target:
        cw = max(1, round(h * target))
        img = img.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
    elif w / h < target:
        ch = max(1, round(w / target))
        img = img.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
    return img if img.size == (width, height) else img.resize((width, height), Image.LANCZOS)


def _emotion_parts(emotion) -> tuple[str | None, float]:
    """(emotion name or None, intensity) from a name, an Emotion, an EmotionChoice (EMOVID_EMOTION) or None."""
    if emotion is None:
        return None, 1.0
    if isinstance(emotion, str):
        e = emotion.strip()
        return (None, 1.0) if e.lower() in ("", NO_EMOTION) else (e, 1.0)
    if hasattr(emotion, "emotion") and hasattr(emotion, "intensity"):  # EmotionChoice
        return emotion.emotion.name, float(emotion.intensity)
    if hasattr(emotion, "name"):
        return emotion.name, 1.0
    raise ValueError(f"emotion must be a name (e.g. 'fear'), 'none' or an EMOVID_EMOTION, got {type(emotion).__name__}")


# ------------------------------------------------------------------------------------------------ LoRA


def apply_lora_stack(handle: WanHandle, lora_stack) -> list:
    """Make the handle's own LoRAs active on its transformer (which other handles of the same pipeline share);
    returns their names (fused ones too). :func:`generate` calls it under the pipeline's lock.

    ``lora_stack`` -- (path or LoRA, adapter_name, strength[, blocks]) entries -- first becomes the handle's stack
    (``[]``: no LoRA); ``None`` uses the stack the handle has (e.g. as a LoRA node made it).
    """
    from ..lora.stack import activate_pipeline_loras, set_pipeline_loras

    if lora_stack is None:
        activate_pipeline_loras(handle)
    else:
        handle.lora_stack = set_pipeline_loras(handle, list(lora_stack))[0].lora_stack
    return [e.label for e in (*handle.lora_fused, *handle.lora_stack)]


# -------------------------------------------------------------------------------------------- generate


def generate(
    handle: WanHandle,
    caption: str = "",
    emotion=None,
    image=None,
    lora_stack=None,
    seed: int = 0,
    steps: int | None = None,
    frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
    guidance: float | None = None,
    shift: float | None = None,
    negative: str | None = None,
    template: str | None = None,
    intensity: float | None = None,
    add_opposite: bool = False,
    max_sequence_length: int = 512,
) -> GenerationResult:
    """Generate one clip. ``None`` settings take the loaded variant's defaults (``handle.defaults``).

    ``emotion`` is a name, ``'none'``/None (caption used as is), or an EMOVID_EMOTION (its intensity is used
    unless ``intensity`` is given). The prompt is the paper's (``build_prompt``); intensity other than 1 is
    applied on the text embeddings (``base + w * (full - base)``), since diffusers has no weight syntax.
    ``negative`` None means Wan's standard negative prompt (plus opposite-valence emotions with ``add_opposite``).
    """
    import torch

    from .. import prompts
    from ..conditioning import apply_intensity_tensor
    from ..emotions import get_emotion

    d = handle.defaults if isinstance(handle, WanHandle) else {}
    pick = lambda v, k: d.get(k) if v is None else v  # noqa: E731
    opts = check_generate_inputs(handle, frames=pick(frames, "frames"), width=pick(width, "width"), height=pick(height, "height"),
                                 steps=pick(steps, "steps"), guidance=pick(guidance, "guidance"), shift=pick(shift, "shift"),
                                 seed=seed, image=image)
    emo, emo_intensity = _emotion_parts(emotion)
    w_int = emo_intensity if intensity is None else intensity
    caption = (caption or "").strip()
    tpl = template or prompts.PAPER_TEMPLATE
    if emo is None:
        if not caption:
            raise ValueError("caption is empty and emotion is 'none': there is nothing to prompt with")
        wp = None
        text = caption
    else:
        wp = prompts.weighted_prompt(caption, emo, tpl, w_int)  # validates emotion, template and intensity
        text = wp.text
        emo = get_emotion(emo).name
    neg = prompts.negative_prompt(emo, add_opposite=bool(add_opposite and emo)) if negative is None else str(negative)
    pil = fit_image(to_pil(image), opts["width"], opts["height"]) if image is not None else None

    from diffusers import UniPCMultistepScheduler

    from ..lora.stack import pipeline_lock

    pipe = handle.pipe
    # Every handle of one loader shares this pipeline: the lock keeps other branches from switching its adapters
    # (or its scheduler) between this branch's activation and the end of its run.
    with pipeline_lock(pipe.transformer):
        loras = apply_lora_stack(handle, lora_stack)
        # A fresh scheduler per call: the flow shift is part of its config, and scheduler state must not leak between runs.
        pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, flow_shift=opts["shift"])
        device = pipe._execution_device
        cfg = opts["guidance"] > 1.0
        call: dict[str, Any] = {}
        with torch.no_grad():
            if wp is not None and wp.needs_scaling:
                full, neg_emb = pipe.encode_prompt(wp.text, neg, do_classifier_free_guidance=cfg, max_sequence_length=max_sequence_length,
                                                   device=device)
                base, _ = pipe.encode_prompt(wp.base, None, do_classifier_free_guidance=False, max_sequence_length=max_sequence_length,
                                             device=device)
                call.update(prompt_embeds=apply_intensity_tensor(full, base, wp.weight), negative_prompt_embeds=neg_emb)
            else:
                call.update(prompt=text, negative_prompt=neg if cfg else None)
        if pil is not None:
            call["image"] = pil

        stamps: list[float] = []  # end time of every step, for a per-step time free of encode/decode
        with runtime.progress_bar(opts["steps"], f"Wan {handle.kind.upper()}") as bar:

            def on_step(_pipe, i, t, kwargs):
                runtime.check_interrupted()
                stamps.append(time.perf_counter())
                bar.update(1)
                return kwargs

            t0 = time.perf_counter()
            out = pipe(
                **call,
                height=opts["height"], width=opts["width"], num_frames=opts["frames"], num_inference_steps=opts["steps"],
                guidance_scale=opts["guidance"], generator=torch.Generator(device="cpu").manual_seed(opts["seed"]),
                output_type="np", max_sequence_length=max_sequence_length, callback_on_step_end=on_step,
            )
            seconds = time.perf_counter() - t0
    video = out.frames[0] if hasattr(out, "frames") else out[0][0]
    frames_t = torch.from_numpy(video).float().clamp_(0.0, 1.0).contiguous()
    return GenerationResult(
        frames=frames_t, prompt=text, negative_prompt=neg, seed=opts["seed"], steps=opts["steps"], num_frames=frames_t.shape[0],
        width=opts["width"], height=opts["height"], guidance=opts["guidance"], shift=opts["shift"], emotion=emo,
        intensity=float(w_int) if emo else 1.0, loras=loras, seconds=seconds,
        seconds_per_step=(stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else seconds,
    )
