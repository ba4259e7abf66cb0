"""Random-weight CLIP models built in code, saved as ordinary transformers folders and cached on disk.

No emotion classifier or CLIP weights can reach the test machines, so every evaluation path is exercised on
these: a real ``CLIPModel`` (text and vision towers) at toy width, a word-level tokenizer made with the
``tokenizers`` library (``tokenizer.json`` + ``tokenizer_config.json``) and a ``preprocessor_config.json``. They
load through :func:`emovid_core.evaluation.classifiers.load_classifier`, the same code that loads a user's
real CLIP folder. Random weights carry no emotion knowledge: tests check plumbing, and a planted signal (a probe
trained on clips whose colour encodes the label) checks that the numbers mean something.

Sizes: ``tiny`` (width 32, 2 layers, 32 px; tests), ``small`` (width 128, 4 layers, 64 px; the benchmark) and
``clip-l`` (CLIP ViT-L/14 shapes, 224 px; the GPU check). Folders live in ``$EMOVID_CACHE/tiny/clip-<size>-<hash>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..emotions import EMOTIONS

TINY_CLIP_FORMAT = 1
SEED = 4321

# (text width, text layers, text heads, vision width, vision layers, vision heads, image size, patch, projection)
CLIP_SIZES: dict[str, dict] = {
    "tiny": dict(text=(32, 2, 2, 64), vision=(32, 2, 2, 64), image_size=32, patch_size=8, projection_dim=32),
    "small": dict(text=(128, 4, 4, 256), vision=(128, 4, 4, 256), image_size=64, patch_size=8, projection_dim=128),
    "clip-l": dict(text=(768, 12, 12, 3072), vision=(1024, 24, 16, 4096), image_size=224, patch_size=14, projection_dim=768),
}

# A word-level vocabulary: the eight emotions, the prompt words the pack writes and the sample set's caption words.
_WORDS = sorted(set(
    " ".join(EMOTIONS).split()
    + "a an the of in on at to and with is are was video frame photo that evokes feels emotion emotions picture image "
      "cartoon character film scene shows filmed steady shot animated sticker figure reacts funny reaction merry moment "
      "friends laughing together vast mountain view glowing night sky towering waterfall quiet afternoon cozy room calm "
      "lake dusk cheering crowd fast chase surprise party heated argument slammed door clenched fists spoiled food "
      "grimacing face filthy alley dark tunnel screaming sound approaching danger lonely tears rain empty chair person "
      "walks along beach sunset colour color red green blue".split()
))
_SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


def cache_root() -> Path:
    root = os.environ.get("EMOVID_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "emovid"


def _check_size(size: str) -> dict:
    if size not in CLIP_SIZES:
        raise ValueError(f"tiny CLIP size {size!r} is not one of {', '.join(CLIP_SIZES)}")
    return CLIP_SIZES[size]


def _key(size: str) -> str:
    import transformers

    payload = {"format": TINY_CLIP_FORMAT, "seed": SEED, "size": CLIP_SIZES[size], "words": _WORDS,
               "transformers": transformers.__version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def tiny_clip_dir(size: str = "tiny") -> Path:
    _check_size(size)
    return cache_root() / "tiny" / f"clip-{size}-{_key(size)}"


def build_tokenizer():
    """A word-level CLIP-style tokenizer: lower case, split on whitespace and punctuation, ``<bos> ... <eos>``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(_SPECIALS + _WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>",
                                   eos_token="<eos>", model_max_length=77)


def build_model(size: str = "tiny"):
    """A random ``CLIPModel`` of ``size`` (seeded, so every machine builds the same weights)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    s = _check_size(size)
    tw, tl, th, tf = s["text"]
    vw, vl, vh, vf = s["vision"]
    config = CLIPConfig(
        text_config=dict(vocab_size=len(_SPECIALS) + len(_WORDS), hidden_size=tw, num_hidden_layers=tl, num_attention_heads=th,
                         intermediate_size=tf, max_position_embeddings=77, pad_token_id=0, bos_token_id=2, eos_token_id=3),
        vision_config=dict(hidden_size=vw, num_hidden_layers=vl, num_attention_heads=vh, intermediate_size=vf,
                           image_size=s["image_size"], patch_size=s["patch_size"]),
        projection_dim=s["projection_dim"],
    )
    torch.manual_seed(SEED)
    return CLIPModel(config).eval()


def _preprocessor_config(size: str) -> dict:
    s = CLIP_SIZES[size]
    # The keys CLIPImageProcessor writes; our own preprocessing reads the same ones from a real CLIP folder.
    return {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": s["image_size"]},
            "do_center_crop": True, "crop_size": {"height": s["image_size"], "width": s["image_size"]},
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
            "resample": 3, "do_convert_rgb": True}


def ensure_tiny_clip(size: str = "tiny") -> Path:
    """Build (once) and return the folder of the random CLIP of ``size``: a folder any CLIP loader accepts."""
    target = tiny_clip_dir(size)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build_model(size).save_pretrained(tmp, safe_serialization=True)
        build_tokenizer().save_pretrained(tmp)
        (tmp / "preprocessor_config.json").write_text(json.dumps(_preprocessor_config(size), indent=1) + "\n")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def export_clip_vision_file(size: str, path: str | Path) -> Path:
    """The vision tower of the random CLIP of ``size`` as one ComfyUI-style ``clip_vision`` safetensors file
    (``vision_model.*`` and ``visual_projection.weight`` keys, like ComfyUI's ``clip_vision_h.safetensors``)."""
    from ..atomic import save_safetensors

    model = build_model(size)
    sd = {k: v for k, v in model.state_dict().items() if k.startswith(("vision_model.", "visual_projection."))}
    return save_safetensors(sd, path)


__all__ = ["CLIP_SIZES", "build_model", "build_tokenizer", "ensure_tiny_clip", "export_clip_vision_file", "tiny_clip_dir"]


# A chat template in the shape multimodal processors expect: images as "<image>" placeholders, then the text.
_VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image> {% else %}{{ item['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def write_tiny_vlm(out: str | Path, answer: str | None = "fear") -> Path:
    """A random-weight LLaVA folder (CLIP vision tower + Llama text model + processor with a chat template).

    ``answer`` set: the text model's final norm is zeroed, so every logit is 0 and greedy decoding picks token 0,
    which is that word and the end-of-sequence id: the model answers exactly ``answer``. ``answer=None``: plain random
    weights, which answer gibberish (what the strict parser must count as unparsed).
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    out = Path(out)
    first = [answer] if answer else []
    words = first + [w for w in ["<pad>", "<unk>", "<s>", "</s>", "<image>", "user", "assistant", ":", "?", ",", ".",
                                 *_WORDS, "which", "does", "this", "answer", "exactly", "one", "word", "from", "list"]
                     if w not in first]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", additional_special_tokens=["<image>"])
    config = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8),
        text_config=dict(model_type="llama", vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=vocab["<pad>"], bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"]),
        image_token_index=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(config).eval()
    if answer:
        with torch.no_grad():
            model.model.language_model.norm.weight.zero_()
        model.generation_config.eos_token_id = 0
    model.generation_config.pad_token_id = vocab["<pad>"]
    model.save_pretrained(out, safe_serialization=True)
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(**{k: v for k, v in _preprocessor_config("tiny").items()
                                                                     if k != "image_processor_type"}),
                               tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=_VLM_CHAT_TEMPLATE)
    processor.save_pretrained(out)
    return out
