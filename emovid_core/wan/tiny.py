"""A tiny random-weight Wan2.1 pipeline, built entirely in code and cached on disk.

Every component has the real architecture at toy width (transformer, Wan VAE with the released
[1, 2, 4, 4] / 2-block layout so it can be written as an original-layout file, umt5 encoder, a
character-level tokenizer made with the ``tokenizers`` library, CLIP vision for I2V). The pipeline is
saved with ``save_pretrained`` into ``$EMOVID_CACHE/tiny/<kind>-<hash>`` (default ``~/.cache/emovid``) and
then loaded back through :func:`emovid_core.wan.loading.load_diffusers_folder`, the same function that
loads real weights. :func:`export_single_files` writes it as the single files ComfyUI users have so the
single-file path is exercised too. Nothing here is ever committed or downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
import tempfile
from functools import partial
from pathlib import Path

from .variants import Variant, register_variant

# Bump when the way weights are built changes, so stale caches are not reused.
TINY_FORMAT = 2
SEED = 1234

TEXT_DIM = 32
TINY_CONFIGS: dict[str, dict] = {
    "transformer_t2v": dict(
        patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=32, pos_embed_seq_len=None,
    ),
    "vae": dict(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[], temperal_downsample=[False, True, True]),
    "text_encoder": dict(
        d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=8,
        relative_attention_max_distance=16, feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False,
    ),
    "image_encoder": dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8,
                          projection_dim=16),
}
# I2V: 36 input channels (16 noise + 4 mask + 16 image latent); image K/V projections as wide as the model, as in 14B.
TINY_CONFIGS["transformer_i2v"] = {**TINY_CONFIGS["transformer_t2v"], "in_channels": 36, "image_dim": 16, "added_kv_proj_dim": 24}

TINY_DEFAULTS = {"width": 32, "height": 32, "frames": 5, "steps": 4, "guidance": 5.0, "shift": 3.0}

# Character-level vocabulary: every word maps to distinct ids, so two different prompts always encode differently.
_SPECIALS = ["<pad>", "</s>", "<unk>"]
_CHARS = list(string.ascii_lowercase + string.digits + ".,;:!?'\"-()")


def cache_root() -> Path:
    """The pack's cache folder, read from the environment on every call (so a changed ``EMOVID_CACHE`` is honoured)."""
    root = os.environ.get("EMOVID_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "emovid"


def _key(kind: str) -> str:
    import diffusers
    import transformers

    payload = {
        "format": TINY_FORMAT, "seed": SEED, "kind": kind, "configs": TINY_CONFIGS, "chars": _CHARS,
        # save_pretrained writes class names of the installed versions, so a cache is per version.
        "diffusers": diffusers.__version__, "transformers": transformers.__version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def tiny_dir(kind: str) -> Path:
    _check_kind(kind)
    return cache_root() / "tiny" / f"{kind}-{_key(kind)}"


def _check_kind(kind: str) -> None:
    if kind not in ("t2v", "i2v"):
        raise ValueError(f"tiny pipeline kind {kind!r} is not 't2v' or 'i2v'")


def _component_dir(kind: str, component: str) -> Path:
    return tiny_dir(kind) / component


def register_tiny_variants() -> None:
    """Make ``tiny-t2v`` / ``tiny-i2v`` known to variant detection (config folders are the cache folders)."""
    t = TINY_CONFIGS["transformer_t2v"]
    dim = t["num_attention_heads"] * t["attention_head_dim"]
    for kind in ("t2v", "i2v"):
        comps = ["transformer", "vae", "scheduler", "text_encoder"] + (["image_encoder", "image_processor"] if kind == "i2v" else [])
        register_variant(Variant(
            name=f"tiny-{kind}", kind=kind, label=f"tiny random Wan2.1 {kind.upper()} (tests)", dim=dim,
            in_dim=36 if kind == "i2v" else 16, ffn_dim=t["ffn_dim"], num_layers=t["num_layers"], defaults=dict(TINY_DEFAULTS),
            config_dirs={c: partial(_component_dir, kind, c) for c in comps}, tiny=True,
        ))


def build_tokenizer():
    """A umt5-like fast tokenizer built in code: lowercase, split on whitespace, one token per character, ``</s>`` appended."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(_SPECIALS)}
    for c in _CHARS:
        vocab.setdefault(c, len(vocab))
    for c in _CHARS:
        vocab.setdefault("##" + c, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="<unk>", max_input_chars_per_word=1000))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)


def _seeded(offset: int):
    import torch

    torch.manual_seed(SEED + offset)


def build_pipeline(kind: str):
    """Build the tiny pipeline in memory (random weights, fixed seed)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    from .variants import DATA_DIR

    _check_kind(kind)
    tokenizer = build_tokenizer()
    with torch.no_grad():
        _seeded(0)
        transformer = WanTransformer3DModel(**TINY_CONFIGS[f"transformer_{kind}"]).eval()
        _seeded(1)
        vae = AutoencoderKLWan(**TINY_CONFIGS["vae"]).eval()
        _seeded(2)
        text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), **TINY_CONFIGS["text_encoder"])).eval()
    # The real scheduler config, so the tiny model samples exactly like a released one.
    scheduler = UniPCMultistepScheduler.from_pretrained(str(DATA_DIR / "scheduler"), local_files_only=True)
    parts = dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer)
    if kind == "t2v":
        return WanPipeline(**parts)
    with torch.no_grad():
        _seeded(3)
        image_encoder = CLIPVisionModel(CLIPVisionConfig(**TINY_CONFIGS["image_encoder"])).eval()
    size = TINY_CONFIGS["image_encoder"]["image_size"]
    processor = CLIPImageProcessor.from_pretrained(str(DATA_DIR / "image_processor"), local_files_only=True,
                                                   size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return WanImageToVideoPipeline(**parts, image_encoder=image_encoder, image_processor=processor)


def ensure_tiny(kind: str = "t2v") -> Path:
    """The cache folder of the tiny pipeline, building it first if needed (atomically: tmp folder + rename)."""
    folder = tiny_dir(kind)
    if (folder / "model_index.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build_pipeline(kind).save_pretrained(str(tmp), safe_serialization=True)
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process finished first: its copy is identical (same seed and configs).
            if not (folder / "model_index.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_tiny_pipeline(kind: str = "t2v", dtype: str = "float32", device: str = "cpu", offload: str = "none"):
    """A :class:`~emovid_core.wan.handle.WanHandle` for the tiny pipeline (built and cached on first use)."""
    from .loading import load_diffusers_folder

    folder = ensure_tiny(kind)
    handle = load_diffusers_folder(folder, variant=f"tiny-{kind}", dtype=dtype, device=device, offload=offload)
    handle.source = f"tiny-{kind} ({folder})"
    return handle


def export_single_files(kind: str, out_dir: str | Path) -> dict[str, Path]:
    """Write the tiny pipeline as ComfyUI-style single files (original layouts) plus a tokenizer folder.

    Returns ``{"transformer", "vae", "text_encoder", "tokenizer", ["image_encoder"]}`` paths, ready for
    :func:`emovid_core.wan.loading.load_single_files`.
    """
    from safetensors.torch import load_file

    from ..atomic import save_safetensors
    from .single_file import check_vae_exportable, transformer_to_original, vae_to_original

    src = ensure_tiny(kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}

    def one(sub: str) -> dict:
        files = sorted((src / sub).glob("*.safetensors"))
        sd = {}
        for f in files:
            sd.update(load_file(str(f)))
        return sd

    paths["transformer"] = out / f"wan2.1_tiny_{kind}.safetensors"
    save_safetensors(transformer_to_original(one("transformer"), prefix="model.diffusion_model."), paths["transformer"])
    check_vae_exportable(json.loads((src / "vae" / "config.json").read_text()))
    paths["vae"] = out / "wan_tiny_vae.safetensors"
    save_safetensors(vae_to_original(one("vae")), paths["vae"])
    te = one("text_encoder")
    te.pop("encoder.embed_tokens.weight", None)  # tied to shared.weight; safetensors refuses shared storage
    paths["text_encoder"] = out / "umt5_tiny.safetensors"
    save_safetensors(te, paths["text_encoder"])
    paths["tokenizer"] = out / "umt5_tiny_tokenizer"
    if paths["tokenizer"].exists():
        shutil.rmtree(paths["tokenizer"])
    shutil.copytree(src / "tokenizer", paths["tokenizer"])
    if kind == "i2v":
        paths["image_encoder"] = out / "clip_vision_tiny.safetensors"
        # ComfyUI's clip_vision_h names the tower vision_model.* (transformers 5 saves it without the prefix).
        clip = {k if k.startswith("vision_model.") else "vision_model." + k: v for k, v in one("image_encoder").items()}
        save_safetensors(clip, paths["image_encoder"])
    return paths
