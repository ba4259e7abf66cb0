"""The model a training run uses, inspected before anything is loaded and then loaded in two stages.

Stage 1 (encoding) loads only the VAE, the text encoder and, for I2V, CLIP vision; stage 2 (training) loads only
the transformer. Nothing is loaded twice and the two stages never share memory, as in the real trainers
(finetrainers, musubi-tuner): with latents and text embeddings cached on disk the 11 GiB umt5-xxl encoder is
never in memory during training. Sources are the ones `emovid generate` reads: a diffusers folder, ComfyUI
single files, or the tiny random model (``--tiny``, built in ``$EMOVID_CACHE``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ModelSource:
    """What is known about the model without loading it: kind, variant, sizes and an identity for cache keys."""

    kind: str  # "t2v" | "i2v"
    variant: str
    label: str
    dim: int
    ffn_dim: int
    num_layers: int
    in_dim: int
    text_dim: int
    has_image_encoder: bool
    folder: Path | None = None  # diffusers folder (also the tiny model's cache folder)
    files: dict = field(default_factory=dict)  # single files: transformer, vae, text_encoder, tokenizer, image_encoder
    tiny: bool = False

    @property
    def encoder_identity(self) -> str:
        """A short hash of the encoders' files (path, size, mtime): part of every cache key."""
        parts: list = [self.kind]
        if self.folder is not None:
            subs = ["vae", "text_encoder", "tokenizer"] + (["image_encoder", "image_processor"] if self.kind == "i2v" else [])
            paths = [p for s in subs for p in sorted((self.folder / s).glob("*")) if p.is_file()]
        else:
            keys = ["vae", "text_encoder", "tokenizer"] + (["image_encoder"] if self.kind == "i2v" else [])
            paths = []
            for k in keys:
                p = Path(self.files[k])
                paths += sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for p in paths:
            st = p.stat()
            parts.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"{self.label} ({self.variant}, {self.kind.upper()}, dim {self.dim}, {self.num_layers} blocks)"

    def transformer_config(self) -> dict:
        if self.folder is not None:
            return json.loads((self.folder / "transformer" / "config.json").read_text())
        return self._variant().config("transformer")

    # ------------------------------------------------------------------------------------------- loading

    def load_encoders(self, device: str, dtype):
        """A diffusers Wan pipeline holding only the encoders (``transformer=None``): encode_prompt/encode_image/VAE."""
        import torch
        from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline

        from ..wan import loading

        te_dtype = loading._text_encoder_dtype(dtype)
        if self.folder is not None:
            from diffusers import AutoencoderKLWan
            from transformers import UMT5EncoderModel

            f = str(self.folder)
            parts = dict(
                vae=AutoencoderKLWan.from_pretrained(f, subfolder="vae", torch_dtype=torch.float32, local_files_only=True),
                text_encoder=UMT5EncoderModel.from_pretrained(f, subfolder="text_encoder", torch_dtype=te_dtype, local_files_only=True),
                tokenizer=loading.load_tokenizer(self.folder / "tokenizer"),
                scheduler=UniPCMultistepScheduler.from_pretrained(f, subfolder="scheduler", local_files_only=True),
            )
            if self.kind == "i2v":
                from transformers import CLIPImageProcessor, CLIPVisionModel

                parts["image_encoder"] = CLIPVisionModel.from_pretrained(f, subfolder="image_encoder", torch_dtype=torch.float32,
                                                                         local_files_only=True)
                parts["image_processor"] = CLIPImageProcessor.from_pretrained(f, subfolder="image_processor", local_files_only=True)
        else:
            v = self._variant()
            parts = dict(
                vae=loading.load_vae_file(self.files["vae"], v),
                text_encoder=loading.load_text_encoder_file(self.files["text_encoder"], v, dtype),
                tokenizer=loading.load_tokenizer(self.files["tokenizer"]),
                scheduler=UniPCMultistepScheduler.from_pretrained(str(v.config_dir("scheduler")), local_files_only=True),
            )
            if self.kind == "i2v":
                from transformers import CLIPImageProcessor

                parts["image_encoder"] = loading.load_image_encoder_file(self.files["image_encoder"], v)
                parts["image_processor"] = CLIPImageProcessor.from_pretrained(str(v.config_dir("image_processor")), local_files_only=True)
        pipe = (WanPipeline if self.kind == "t2v" else WanImageToVideoPipeline)(transformer=None, **parts)
        pipe.set_progress_bar_config(disable=True)
        for name in ("vae", "text_encoder", "image_encoder"):
            m = getattr(pipe, name, None)
            if m is not None:
                m.to(device).eval().requires_grad_(False)
        return pipe

    def load_vae(self, device: str):
        """The Wan VAE alone, fp32 (sample videos at checkpoints)."""
        import torch
        from diffusers import AutoencoderKLWan

        from ..wan import loading

        if self.folder is not None:
            vae = AutoencoderKLWan.from_pretrained(str(self.folder), subfolder="vae", torch_dtype=torch.float32, local_files_only=True)
        else:
            vae = loading.load_vae_file(self.files["vae"], self._variant())
        return vae.to(device).eval().requires_grad_(False)

    def scheduler_config(self) -> dict:
        if self.folder is not None:
            return json.loads((self.folder / "scheduler" / "scheduler_config.json").read_text())
        return json.loads((self._variant().config_dir("scheduler") / "scheduler_config.json").read_text())

    def load_transformer(self, device: str, dtype):
        """The frozen ``WanTransformer3DModel`` in ``dtype`` (diffusers keeps its norms/modulation in fp32)."""
        import torch
        from diffusers import WanTransformer3DModel

        from ..wan import loading

        if self.folder is not None:
            model = WanTransformer3DModel.from_pretrained(str(self.folder), subfolder="transformer", torch_dtype=dtype,
                                                          local_files_only=True)
        else:
            model, _ = loading.load_transformer_file(self.files["transformer"], self.variant, dtype)
        model = model.to(device)
        model.requires_grad_(False)
        if dtype == torch.float32:
            model.float()
        return model

    def _variant(self):
        from ..wan.variants import get_variant

        return get_variant(self.variant)


def resolve_model(*, tiny: str | None = None, folder: str | Path | None = None, transformer: str | None = None,
                  vae: str | None = None, text_encoder: str | None = None, tokenizer: str | None = None,
                  image_encoder: str | None = None, variant: str = "auto") -> ModelSource:
    """Inspect the model source (configs and safetensors headers only; no weights are read)."""
    from ..wan import loading
    from ..wan.files import check_not_scaled_fp8
    from ..wan.variants import match_variant, transformer_arch

    given = [n for n, v in (("--tiny", tiny), ("--model", folder), ("--transformer", transformer)) if v]
    if len(given) != 1:
        raise ValueError("pick one model source: --tiny t2v|i2v, --model DIFFUSERS_FOLDER, or single files "
                         f"(--transformer/--vae/--text-encoder/--tokenizer[/--clip-vision]); got {', '.join(given) or 'none'}")
    if tiny:
        from ..wan.tiny import ensure_tiny

        if tiny not in ("t2v", "i2v"):
            raise ValueError(f"--tiny {tiny!r} is not t2v or i2v")
        if variant not in ("auto", f"tiny-{tiny}"):
            raise ValueError(f"--variant {variant!r} does not apply to --tiny {tiny} (the tiny model is its own variant); use auto")
        src = _from_folder(ensure_tiny(tiny), f"tiny-{tiny}", match_variant)
        src.label, src.tiny = f"tiny random Wan2.1 {tiny.upper()}", True
        return src
    if folder:
        p = loading._resolve_folder(folder, ("diffusers",))
        return _from_folder(p, variant, match_variant)
    for what, v in (("--vae", vae), ("--text-encoder", text_encoder), ("--tokenizer", tokenizer)):
        if not v:
            raise ValueError(f"single-file training needs {what} as well as --transformer")
    files = {"transformer": loading._resolve_file("diffusion_models", transformer), "vae": loading._resolve_file("vae", vae),
             "text_encoder": loading._resolve_file("text_encoders", text_encoder),
             "tokenizer": loading._resolve_folder(tokenizer, ("text_encoders", "tokenizers"))}
    for what, p in files.items():
        if not Path(p).exists():
            raise FileNotFoundError(f"{what} {str(p)!r} not found")
    header = check_not_scaled_fp8(files["transformer"], "transformer", "the fp16/bf16 transformer file")
    arch = transformer_arch({k: h["shape"] for k, h in header.items()}, source=f"transformer {str(files['transformer'])!r}")
    v = match_variant(arch, variant, source=f"transformer {str(files['transformer'])!r}")
    if v.kind == "i2v":
        if not image_encoder:
            raise ValueError(f"transformer {str(files['transformer'])!r} is an I2V model ({v.name}); pass --clip-vision "
                             "clip_vision_h.safetensors")
        files["image_encoder"] = loading._resolve_file("clip_vision", image_encoder)
        if not Path(files["image_encoder"]).is_file():
            raise FileNotFoundError(f"CLIP vision file {str(files['image_encoder'])!r} not found")
    return ModelSource(kind=v.kind, variant=v.name, label=f"single files {Path(files['transformer']).name}", dim=arch.dim,
                       ffn_dim=arch.ffn_dim, num_layers=arch.num_layers, in_dim=arch.in_dim, text_dim=arch.text_dim,
                       has_image_encoder=v.kind == "i2v", files=files)


def _from_folder(folder: Path, variant: str, match_variant) -> ModelSource:
    from ..wan import loading

    cls, comps = loading.inspect_diffusers_folder(folder)
    kind = loading.PIPELINE_CLASSES[cls]
    cfg = json.loads((folder / "transformer" / "config.json").read_text())
    arch = loading._arch_from_config(cfg)
    v = match_variant(arch, variant, source=f"the transformer in {str(folder)!r}")
    if kind == "i2v" and not {"image_encoder", "image_processor"} <= set(comps):
        raise FileNotFoundError(f"{str(folder)!r}: Wan2.1 I2V training needs image_encoder/ and image_processor/ (CLIP vision)")
    return ModelSource(kind=kind, variant=v.name, label=f"diffusers folder {folder}", dim=arch.dim, ffn_dim=arch.ffn_dim,
                       num_layers=arch.num_layers, in_dim=arch.in_dim, text_dim=arch.text_dim, has_image_encoder=kind == "i2v",
                       folder=Path(folder))
