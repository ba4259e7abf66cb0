"""Load a Wan2.1 T2V/I2V diffusers pipeline from local files only.

Two sources:

* a **diffusers folder** (``model_index.json`` + ``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
  ``scheduler/`` [+ ``image_encoder/``, ``image_processor/`` for I2V]), e.g. a downloaded
  ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``;
* the **single files** ComfyUI users have: the original-layout transformer (``models/diffusion_models``),
  the Wan VAE (``models/vae``), a umt5-xxl encoder (``models/text_encoders``; fp16/bf16/fp32 or plain fp8
  in HF/ComfyUI or original Wan names — *not* ComfyUI's scaled fp8), a tokenizer folder, and for I2V
  CLIP-vision-H (``models/clip_vision``). Configs come from the pack (``emovid_core/data/wan``), never a hub.

The variant is detected from the transformer's tensor shapes; an explicit variant is checked against them.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .. import runtime
from .files import FP8_DTYPES, check_not_scaled_fp8, load_safetensors
from .handle import WanHandle
from .single_file import image_encoder_to_hf, text_encoder_to_hf
from .variants import TransformerArch, Variant, match_variant, transformer_arch

log = logging.getLogger("EmoVid")

DTYPE_CHOICES = ["auto", "float32", "bfloat16", "float16"]
DEVICE_CHOICES = ["auto", "cpu", "cuda"]
OFFLOAD_CHOICES = ["auto", "none", "model", "sequential"]
SOURCES = ["tiny-t2v", "tiny-i2v", "diffusers folder", "single files"]

_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
PIPELINE_CLASSES = {"WanPipeline": "t2v", "WanImageToVideoPipeline": "i2v"}

UMT5_INSTEAD = ("an fp16/bf16 umt5-xxl encoder, e.g. umt5_xxl_fp16.safetensors from Comfy-Org/Wan_2.1_ComfyUI_repackaged "
                "(split_files/text_encoders) or the text_encoder/ folder of Wan-AI/Wan2.1-T2V-1.3B-Diffusers")


# --------------------------------------------------------------------------------------------- choices


def resolve_device(device: str = "auto") -> str:
    import torch

    d = (device or "auto").strip().lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but no CUDA GPU is available to torch; use device 'cpu' or 'auto'")
        if ":" in d and int(d[5:]) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist (torch sees {torch.cuda.device_count()} GPU(s))")
        return d
    raise ValueError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N")


def resolve_dtype(dtype: str = "auto", device: str = "cpu"):
    import torch

    name = _DTYPE_ALIASES.get((dtype or "auto").strip().lower(), (dtype or "auto").strip().lower())
    if name == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16 if device.startswith("cuda") else torch.float32
    if name not in DTYPE_CHOICES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPE_CHOICES)} (aliases fp32, bf16, fp16)")
    return getattr(torch, name)


def _dtype_name(dt) -> str:
    return str(dt).replace("torch.", "")


def _text_encoder_dtype(dt):
    import torch

    # T5 activations overflow fp16 (inf/NaN embeddings); bf16 has fp32's range.
    return torch.bfloat16 if dt == torch.float16 else dt


def resolve_offload(offload: str, device: str) -> str:
    o = (offload or "auto").strip().lower()
    if o not in OFFLOAD_CHOICES:
        raise ValueError(f"offload {offload!r} is not one of {', '.join(OFFLOAD_CHOICES)}")
    if not device.startswith("cuda"):
        if o in ("model", "sequential"):
            raise ValueError(f"offload {offload!r} moves models between CPU and GPU, but the device is {device!r}; use offload 'none' or 'auto'")
        return "none"
    return o


# ------------------------------------------------------------------------------------------- placement


def _module_bytes(pipe) -> int:
    import torch

    total = 0
    for name in ("transformer", "text_encoder", "vae", "image_encoder"):
        m = getattr(pipe, name, None)
        if isinstance(m, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in m.parameters())
    return total


def _place(pipe, device: str, offload: str) -> str:
    """Move the pipeline to ``device`` or set up CPU offload; returns the offload mode used."""
    import torch

    pipe.set_progress_bar_config(disable=True)  # our own bar (ComfyUI's or tqdm) reports steps
    if not device.startswith("cuda"):
        pipe.to("cpu")
        return "none"
    if offload == "auto":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        need = _module_bytes(pipe) * 1.15 + 3 * 2**30  # weights + activations for a 480P clip
        offload = "model" if need > free else "none"
        log.info("[EmoVid] Wan pipeline needs ~%.1f GiB, %.1f GiB free on %s -> offload %s", need / 2**30, free / 2**30, device, offload)
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    return offload


def _handle(pipe, variant: Variant, kind: str, source: str, dtype, device: str, offload: str) -> WanHandle:
    used = _place(pipe, device, resolve_offload(offload, device))
    return WanHandle(pipe=pipe, variant=variant.name, kind=kind, source=source, dtype=_dtype_name(dtype), device=device,
                     offload=used, defaults=dict(variant.defaults))


# ------------------------------------------------------------------------------------ diffusers folder


def _arch_from_config(cfg: dict) -> TransformerArch:
    return TransformerArch(
        layout="diffusers", dim=int(cfg.get("num_attention_heads", 40)) * int(cfg.get("attention_head_dim", 128)),
        in_dim=int(cfg.get("in_channels", 16)), ffn_dim=int(cfg.get("ffn_dim", 13824)), num_layers=int(cfg.get("num_layers", 40)),
        out_dim=int(cfg.get("out_channels") or 16), text_dim=int(cfg.get("text_dim", 4096)),
        has_image_branch=cfg.get("image_dim") is not None,
        extras=[f"pos_embed_seq_len {cfg['pos_embed_seq_len']} (FLF2V)"] if cfg.get("pos_embed_seq_len") else [],
    )


@contextmanager
def _quiet_loading():
    """Hide diffusers' 'Loading pipeline components' bar (a few ms of noise per load), then restore it."""
    from diffusers.utils import logging as dlog

    was = dlog.is_progress_bar_enabled()
    dlog.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            dlog.enable_progress_bar()


def inspect_diffusers_folder(path: str | Path) -> tuple[str, list[str]]:
    """(pipeline class name, component folders) of a diffusers Wan folder; raises naming what is wrong."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"diffusers folder {str(folder)!r} does not exist (expected a folder like Wan2.1-T2V-1.3B-Diffusers/)")
    index = folder / "model_index.json"
    if not index.is_file():
        loose = sorted(p.name for p in folder.glob("*.safetensors"))[:3]
        hint = f"; it holds single files ({', '.join(loose)}): use source 'single files'" if loose else ""
        raise FileNotFoundError(f"{str(folder)!r} is not a diffusers pipeline folder: no model_index.json{hint}")
    try:
        info = json.loads(index.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(index)!r} is not valid JSON: {exc}") from None
    cls = info.get("_class_name", "")
    if cls not in PIPELINE_CLASSES:
        raise ValueError(f"{str(folder)!r} holds a {cls or 'unknown'} pipeline; expected one of {', '.join(PIPELINE_CLASSES)} (Wan2.1 T2V/I2V)")
    if info.get("boundary_ratio") is not None or (isinstance(info.get("transformer_2"), list) and info["transformer_2"][0]):
        raise ValueError(f"{str(folder)!r} is a Wan2.2 two-expert pipeline (transformer_2 / boundary_ratio); only Wan2.1 is supported")
    comps = [k for k, v in info.items() if not k.startswith("_") and isinstance(v, list) and v and v[0] is not None]
    required = ["transformer", "vae", "scheduler", "text_encoder", "tokenizer"]
    if PIPELINE_CLASSES[cls] == "i2v":
        required += [c for c in ("image_encoder", "image_processor") if c in comps]
    missing = [c for c in required if not (folder / c).is_dir()]
    if missing:
        raise FileNotFoundError(f"diffusers folder {str(folder)!r} is missing component folder(s): {', '.join(missing)} "
                                f"(found: {', '.join(sorted(p.name for p in folder.iterdir() if p.is_dir())) or 'none'})")
    return cls, comps


def load_diffusers_folder(path: str | Path, variant: str = "auto", dtype: str = "auto", device: str = "auto",
                          offload: str = "auto") -> WanHandle:
    """Load a Wan2.1 pipeline saved in diffusers format (``save_pretrained`` / a ``*-Diffusers`` download)."""
    import torch
    from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanPipeline

    folder = Path(path).expanduser()
    cls_name, comps = inspect_diffusers_folder(folder)
    kind = PIPELINE_CLASSES[cls_name]
    cfg = json.loads((folder / "transformer" / "config.json").read_text())
    v = match_variant(_arch_from_config(cfg), variant, source=f"the transformer in {str(folder)!r}")
    if v.kind != kind:
        raise ValueError(f"{str(folder)!r} is a {cls_name} ({kind.upper()}) but its transformer is {v.kind.upper()} ({v.name})")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    extra = {"vae": AutoencoderKLWan.from_pretrained(str(folder), subfolder="vae", torch_dtype=torch.float32, local_files_only=True)}
    if _text_encoder_dtype(dt) != dt:
        from transformers import UMT5EncoderModel

        extra["text_encoder"] = UMT5EncoderModel.from_pretrained(str(folder), subfolder="text_encoder",
                                                                 torch_dtype=_text_encoder_dtype(dt), local_files_only=True)
    if kind == "i2v" and "image_encoder" in comps:
        from transformers import CLIPVisionModel

        # Image features are small; fp32 keeps CLIP identical to the reference implementation.
        extra["image_encoder"] = CLIPVisionModel.from_pretrained(str(folder), subfolder="image_encoder", torch_dtype=torch.float32,
                                                                 local_files_only=True)
    pipe_cls = WanPipeline if kind == "t2v" else WanImageToVideoPipeline
    with _quiet_loading():
        pipe = pipe_cls.from_pretrained(str(folder), torch_dtype=dt, local_files_only=True, **extra)
    if kind == "i2v" and cfg.get("image_dim") is not None and getattr(pipe, "image_encoder", None) is None:
        raise FileNotFoundError(f"{str(folder)!r}: the Wan2.1 I2V transformer needs image_encoder/ and image_processor/ folders (CLIP vision)")
    return _handle(pipe, v, kind, f"diffusers folder {folder}", dt, dev, offload)


# ----------------------------------------------------------------------------------------- single files


def _empty_init():
    """Parameters on the meta device cost no memory; the real tensors are then assigned from the file.

    Without accelerate the model is built normally (correct, but it briefly holds random weights too).
    """
    try:
        from accelerate import init_empty_weights
    except ImportError:
        log.warning("[EmoVid] accelerate is not installed: loading builds each model in memory first (install accelerate)")
        return nullcontext()
    return init_empty_weights(include_buffers=False)


def _assign(model, state_dict: dict, what: str, path: Path):
    missing, unexpected = [], []
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{what} {str(path)!r} does not fit the expected architecture: missing {len(missing)} tensor(s) "
            f"({', '.join(missing[:4])}), unexpected {len(unexpected)} ({', '.join(unexpected[:4])})"
        )
    bad = [(k, tuple(state_dict[k].shape), tuple(own[k].shape)) for k in own if tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if bad:
        k, got, want = bad[0]
        raise ValueError(f"{what} {str(path)!r}: tensor {k!r} has shape {got}, expected {want} ({len(bad)} mismatched tensor(s)); "
                         "is it the right model size?")
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model


def load_transformer_file(path: str | Path, variant: str = "auto", dtype=None):
    """(transformer, variant) from a single transformer file in original (ComfyUI) or diffusers names."""
    import torch
    from diffusers import WanTransformer3DModel

    path = Path(path)
    header = check_not_scaled_fp8(path, "transformer", "the fp16/bf16 (or plain fp8_e4m3fn) file, e.g. wan2.1_t2v_1.3B_fp16.safetensors")
    arch = transformer_arch({k: v["shape"] for k, v in header.items()}, source=f"transformer {str(path)!r}")
    v = match_variant(arch, variant, source=f"transformer {str(path)!r}")
    dtype = dtype or torch.float32
    if arch.layout == "original":
        # config= a local folder: diffusers would otherwise guess a hub repo from the shapes and download its config.
        model = WanTransformer3DModel.from_single_file(str(path), config=str(v.config_dir("transformer")), torch_dtype=dtype,
                                                       local_files_only=True)
    else:
        with _empty_init():
            model = WanTransformer3DModel.from_config(v.config("transformer"))
        sd = {k: t for k, t in load_safetensors(path).items()}
        model = _assign(model, sd, "transformer", path).to(dtype)
    _keep_fp32(model, dtype, path if arch.layout == "original" else None)
    if any(h["dtype"] in FP8_DTYPES for h in header.values()):
        log.info("[EmoVid] %s stores fp8 weights; upcast to %s", path.name, _dtype_name(dtype))
    return model.eval(), v


def _keep_fp32(model, dtype, original_file: Path | None = None) -> None:
    """Keep in fp32 the parameters diffusers keeps in fp32 under fp16/bf16 (time embedder, modulation tables,
    norms), as ``from_pretrained`` does; ``from_single_file`` casts everything to one dtype. The values are
    re-read from ``original_file`` so they keep the file's precision instead of a bf16 rounding."""
    import torch

    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    if dtype == torch.float32:
        return
    rope = getattr(model, "rope", None)
    if rope is not None and any(b.dtype != torch.float32 for b in rope.buffers()):
        # The rotary tables are computed buffers that from_pretrained leaves in fp32; a cast rounds them to bf16
        # (visible in the output), so they are computed again.
        cfg = model.config
        dev = next(rope.buffers()).device
        model.rope = type(rope)(cfg.attention_head_dim, cfg.patch_size, cfg.rope_max_seq_len).to(dev)
    names = [n for n, _ in model.named_parameters() if any(k in n.split(".") for k in keep)]
    source = {}
    if original_file is not None:
        from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
        from safetensors import safe_open

        with safe_open(str(original_file), framework="pt") as f:
            keys = list(f.keys())
            # The converter only renames keys, so feeding it names maps diffusers names back to file names.
            to_file = convert_wan_transformer_to_diffusers({k: k for k in keys})
            source = {n: f.get_tensor(to_file[n]) for n in names if n in to_file}
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n in names:
            p = params[n]
            p.data = (source[n].reshape(p.shape) if n in source else p.data).to(device=p.device, dtype=torch.float32)


def load_vae_file(path: str | Path, variant: Variant):
    import torch
    from diffusers import AutoencoderKLWan

    path = Path(path)
    header = check_not_scaled_fp8(path, "VAE", "wan_2.1_vae.safetensors")
    keys = set(header)
    if "decoder.upsamples.0.upsamples.0.residual.2.weight" in keys:
        raise ValueError(f"VAE {str(path)!r} is the Wan2.2 VAE (48 channels); Wan2.1 needs wan_2.1_vae.safetensors")
    cfg = variant.config("vae")
    if "encoder.conv1.weight" in keys:
        layout, first = "original", header["encoder.conv1.weight"]["shape"]
    elif "encoder.conv_in.weight" in keys:
        layout, first = "diffusers", header["encoder.conv_in.weight"]["shape"]
    else:
        raise ValueError(f"{str(path)!r} is not a Wan VAE (no 'encoder.conv1.weight' / 'encoder.conv_in.weight'); "
                         "pick wan_2.1_vae.safetensors from ComfyUI's models/vae")
    if first[0] != cfg["base_dim"]:
        raise ValueError(f"VAE {str(path)!r} has base width {first[0]}, but variant {variant.name!r} uses a VAE with base_dim "
                         f"{cfg['base_dim']}; use the VAE made for this model")
    if layout == "original":
        vae = AutoencoderKLWan.from_single_file(str(path), config=str(variant.config_dir("vae")), torch_dtype=torch.float32,
                                                local_files_only=True)
    else:
        with _empty_init():
            vae = AutoencoderKLWan.from_config(cfg)
        vae = _assign(vae, load_safetensors(path), "VAE", path).to(torch.float32)
    return vae.eval()


def load_text_encoder_file(path: str | Path, variant: Variant, dtype=None):
    """A transformers ``UMT5EncoderModel`` from a single umt5 file (HF/ComfyUI or original Wan names)."""
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    path = Path(path)
    check_not_scaled_fp8(path, "text encoder", UMT5_INSTEAD)
    sd = text_encoder_to_hf(load_safetensors(path))
    config = UMT5Config(**variant.config("text_encoder"))
    with _empty_init():
        model = UMT5EncoderModel(config)
    model = _assign(model, sd, "text encoder", path)
    # transformers keeps T5's 'wo' in fp32 only for fp16, which is never used here (fp16 is mapped to bf16).
    return model.to(_text_encoder_dtype(dtype or torch.float32)).eval()


def load_image_encoder_file(path: str | Path, variant: Variant):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    path = Path(path)
    check_not_scaled_fp8(path, "CLIP vision", "clip_vision_h.safetensors")
    with _empty_init():
        model = CLIPVisionModel(CLIPVisionConfig(**variant.config("image_encoder")))
    sd = image_encoder_to_hf(load_safetensors(path), own_keys=model.state_dict().keys())
    return _assign(model, sd, "CLIP vision", path).to(torch.float32).eval()


def load_tokenizer(path: str | Path):
    """A umt5 tokenizer from a local folder (``tokenizer.json`` and/or ``spiece.model``) or a ``tokenizer.json`` file."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    p = Path(path).expanduser()
    if p.is_file() and p.name.endswith(".json"):
        return PreTrainedTokenizerFast(tokenizer_file=str(p), pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    if not p.is_dir():
        raise FileNotFoundError(f"tokenizer folder {str(p)!r} does not exist; pass the folder holding umt5's tokenizer.json "
                                "(e.g. the tokenizer/ folder of Wan-AI/Wan2.1-T2V-1.3B-Diffusers or google/umt5-xxl)")
    names = {f.name for f in p.iterdir()}
    if not names & {"tokenizer.json", "spiece.model"}:
        raise FileNotFoundError(f"tokenizer folder {str(p)!r} has no tokenizer.json or spiece.model (found: {', '.join(sorted(names)) or 'nothing'})")
    if "tokenizer_config.json" in names:
        return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    if "tokenizer.json" in names:
        return PreTrainedTokenizerFast(tokenizer_file=str(p / "tokenizer.json"), pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    return AutoTokenizer.from_pretrained(str(p), local_files_only=True)


def load_single_files(transformer: str | Path, vae: str | Path, text_encoder: str | Path, tokenizer: str | Path,
                      image_encoder: str | Path | None = None, variant: str = "auto", dtype: str = "auto",
                      device: str = "auto", offload: str = "auto") -> WanHandle:
    """Assemble a Wan2.1 pipeline from ComfyUI-style single files (configs from the pack)."""
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline
    from transformers import CLIPImageProcessor

    for what, p in (("transformer", transformer), ("VAE", vae), ("text encoder", text_encoder)):
        if not p:
            raise ValueError(f"single-file loading needs a {what} file; none was given")
        if not Path(p).is_file():
            raise FileNotFoundError(f"{what} file {str(p)!r} not found")
    if not tokenizer:
        raise ValueError("single-file loading needs a tokenizer folder (umt5 tokenizer.json); none was given")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    model, v = load_transformer_file(transformer, variant, dt)
    if v.kind == "i2v" and not image_encoder:
        raise ValueError(f"transformer {str(transformer)!r} is an I2V model ({v.name}); it needs a CLIP vision file "
                         "(clip_vision_h.safetensors) as image encoder")
    if v.kind == "t2v" and image_encoder:
        log.info("[EmoVid] %s is a T2V model; the CLIP vision file is not used", Path(transformer).name)
    tok = load_tokenizer(tokenizer)
    te = load_text_encoder_file(text_encoder, v, dt)
    if len(tok) > te.config.vocab_size:
        raise ValueError(f"tokenizer {str(tokenizer)!r} has {len(tok)} tokens but text encoder {str(text_encoder)!r} only "
                         f"{te.config.vocab_size}; they do not belong together")
    parts = dict(tokenizer=tok, text_encoder=te, vae=load_vae_file(vae, v), transformer=model,
                 scheduler=UniPCMultistepScheduler.from_pretrained(str(v.config_dir("scheduler")), local_files_only=True))
    names = [Path(p).name for p in (transformer, vae, text_encoder) if p]
    if v.kind == "t2v":
        pipe = WanPipeline(**parts)
    else:
        if not Path(image_encoder).is_file():
            raise FileNotFoundError(f"CLIP vision file {str(image_encoder)!r} not found")
        proc = CLIPImageProcessor.from_pretrained(str(v.config_dir("image_processor")), local_files_only=True)
        pipe = WanImageToVideoPipeline(**parts, image_encoder=load_image_encoder_file(image_encoder, v), image_processor=proc)
        names.append(Path(image_encoder).name)
    return _handle(pipe, v, v.kind, "single files " + ", ".join(names), dt, dev, offload)


# ------------------------------------------------------------------------------------------- dispatcher


def _resolve_file(kind: str, name: str | None) -> Path | None:
    if not name or not str(name).strip():
        return None
    return runtime.resolve_model_file(kind, str(name).strip())


def _resolve_folder(name: str | None, kinds: tuple[str, ...], what: str) -> Path | None:
    if not name or not str(name).strip():
        return None
    # The loaders report a missing folder, naming the path; a server refuses one outside its folders here.
    return runtime.resolve_user_path(kinds, str(name).strip(), what=what)


def load_pipeline(source: str, *, folder: str | None = None, transformer: str | None = None, vae: str | None = None,
                  text_encoder: str | None = None, tokenizer: str | None = None, image_encoder: str | None = None,
                  variant: str = "auto", dtype: str = "auto", device: str = "auto", offload: str = "auto") -> WanHandle:
    """Load from one of :data:`SOURCES`. Single-file names are looked up in the model folders
    (``diffusion_models``, ``vae``, ``text_encoders``, ``clip_vision``) or taken as absolute paths."""
    if source in ("tiny-t2v", "tiny-i2v"):
        from .tiny import load_tiny_pipeline

        if variant not in ("auto", source):
            raise ValueError(f"variant {variant!r} does not apply to source {source!r} (the tiny model is its own variant); use 'auto'")
        dev = resolve_device(device)
        return load_tiny_pipeline(source.split("-")[1], dtype=dtype, device=dev, offload=offload)
    if source == "diffusers folder":
        if not folder or not str(folder).strip():
            raise ValueError("source 'diffusers folder' needs a folder path (e.g. /models/Wan2.1-T2V-1.3B-Diffusers)")
        p = _resolve_folder(folder, ("diffusers",), "diffusers folder")
        return load_diffusers_folder(p, variant=variant, dtype=dtype, device=device, offload=offload)
    if source == "single files":
        return load_single_files(
            transformer=_resolve_file("diffusion_models", transformer),
            vae=_resolve_file("vae", vae),
            text_encoder=_resolve_file("text_encoders", text_encoder),
            tokenizer=_resolve_folder(tokenizer, ("text_encoders", "tokenizers"), "tokenizer folder"),
            image_encoder=_resolve_file("clip_vision", image_encoder),
            variant=variant, dtype=dtype, device=device, offload=offload,
        )
    raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
