"""Sample videos at each checkpoint: one fixed prompt per emotion, so a run shows what its LoRA does as it trains.

The prompts (caption + the paper's emotion sentence, Wan's negative prompt) are encoded in the encoding stage with
the other texts and stored beside the cache, so the text encoder is still never in memory while training; for
I2V the start image is the first training clip's first frame, its CLIP features encoded then too. At a
checkpoint the VAE alone is loaded, the trained transformer (LoRA active) generates, the VAE is freed again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import TrainConfig

SAMPLES_DIR = "samples"
GUIDANCE = 5.0
SAMPLE_SHIFT = 3.0  # Wan2.1's 480P sampling shift (diffusers' shipped scheduler config)


def sample_prompts(config: TrainConfig) -> dict[str, tuple[str, str]]:
    """emotion -> (prompt, negative prompt)."""
    from .. import prompts

    tpl = config.template or prompts.PAPER_TEMPLATE
    return {e: (prompts.build_prompt(config.sample_caption, e, template=tpl), prompts.negative_prompt(e))
            for e in config.sample_emotions}


def embeds_path(cache_folder: Path, config: TrainConfig, kind: str, image_key: str) -> Path:
    payload = {"prompts": sample_prompts(config), "kind": kind, "image": image_key, "w": config.width, "h": config.height}
    return cache_folder / f"samples-{hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]}.safetensors"


def encode_samples(pipe, config: TrainConfig, kind: str, first_frame, device: str, path: Path) -> None:
    """Encode every sample prompt (and for I2V the start image's CLIP features) into ``path``."""
    import numpy as np
    import torch

    from ..atomic import save_safetensors

    out = {}
    with torch.no_grad():
        for e, (pos, neg) in sample_prompts(config).items():
            p, n = pipe.encode_prompt(pos, neg, do_classifier_free_guidance=True, max_sequence_length=512, device=device)
            out[f"{e}.positive"], out[f"{e}.negative"] = p[0].float().cpu(), n[0].float().cpu()
        if kind == "i2v":
            from PIL import Image

            out["image"] = torch.from_numpy(np.ascontiguousarray(first_frame))
            out["image_embeds"] = pipe.encode_image(Image.fromarray(first_frame), device)[0].float().cpu()
    save_safetensors(out, path)


def write_samples(model, transformer, config: TrainConfig, embeds: Path, folder: Path, device: str, dtype) -> list[Path]:
    """Generate one clip per emotion with ``transformer`` as it is now; returns the mp4 files."""
    import torch
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline
    from PIL import Image
    from safetensors.torch import load_file

    from ..video_io import write_video

    data = load_file(str(embeds))
    vae = model.load_vae(device)
    sched = UniPCMultistepScheduler.from_config(model.scheduler_config(), flow_shift=SAMPLE_SHIFT)
    was_training = transformer.training
    transformer.eval()
    kw = dict(transformer=transformer, vae=vae, scheduler=sched, text_encoder=None, tokenizer=None)
    if model.kind == "i2v":
        pipe = WanImageToVideoPipeline(**kw, image_encoder=None, image_processor=None)
        feats = data["image_embeds"].unsqueeze(0).to(device)
        pipe.encode_image = lambda *a, **k: feats  # the CLIP features cached in the encoding stage
        extra = {"image": Image.fromarray(data["image"].numpy())}
    else:
        pipe = WanPipeline(**kw)
        extra = {}
    pipe.set_progress_bar_config(disable=True)
    files = []
    try:
        with torch.no_grad():
            for e in config.sample_emotions:
                video = pipe(prompt_embeds=data[f"{e}.positive"].unsqueeze(0).to(device, dtype),
                             negative_prompt_embeds=data[f"{e}.negative"].unsqueeze(0).to(device, dtype),
                             height=config.height, width=config.width, num_frames=config.frames,
                             num_inference_steps=config.sample_steps, guidance_scale=GUIDANCE, output_type="np",
                             generator=torch.Generator("cpu").manual_seed(config.seed), **extra).frames[0]
                frames = (video.clip(0, 1) * 255 + 0.5).astype("uint8")
                files.append(Path(write_video(frames, folder / f"{e}.mp4", fps=16.0, format="mp4")))
    finally:
        transformer.train(was_training)
        del pipe, vae
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return files
