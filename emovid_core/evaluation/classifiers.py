"""Emotion classifiers behind one interface: ``clip`` (zero-shot), ``probe`` (linear probe on frozen CLIP vision
features) and ``vlm`` (a local vision-language model that answers with one of the eight words).

The paper's classifier (a fine-tuned NVILA-Lite-2B) is not released, and no package ships emotion-classifier
weights, so the classifier is pluggable and loads **local files only** (``local_files_only=True``; nothing is
ever fetched from a hub). Scores from any of these are *not comparable* with the paper's Table 3 numbers:
:data:`NOT_COMPARABLE` says so wherever a score is reported.

Every backend turns a clip's frames (uint8 ``[T, H, W, 3]``) into a :class:`Prediction`: eight probabilities in
the paper's emotion order (``clip``, ``probe``) or a parsed label (``vlm``; an answer that is not exactly one of
the eight words is *unparsed*, counted and reported, never guessed). Models are loaded once per process and
reused (:func:`load_classifier` keeps them keyed by path, file times and device).

Frames: :data:`DEFAULT_FRAMES` frames spread evenly over the clip (first and last included) are classified;
``clip`` and ``probe`` average the frames' L2-normalised embeddings (``clip``) or pooled features (``probe``)
into one clip vector, so a clip is one decision, as the paper's video classifier makes one.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import runtime
from ..emotions import EMOTIONS, valence

log = logging.getLogger("EmoVid")

BACKENDS = ("clip", "probe", "vlm")
CLASSIFIER_TYPE = "EMOVID_CLASSIFIER"
# Model-folder kind for classifier files and folders (models/emovid_classifiers in ComfyUI, $EMOVID_MODELS_DIR/... headless).
MODEL_KIND = "emovid_classifiers"
DEFAULT_FRAMES = 8
NOT_COMPARABLE = (
    "Not comparable with the paper's Table 3: the paper scores with its own fine-tuned NVILA-Lite-2B classifier, which is "
    "not released; any other classifier (this one included) gives different EA-2/EA-8 numbers. Compare rows scored by the "
    "same classifier only."
)
# Zero-shot prompts, one per emotion in the paper's order; "{emotion}" is the Mikels word.
CLIP_PROMPT = "a video frame that evokes {emotion}."
VLM_QUESTION = (
    "Which emotion does this video evoke? Answer with exactly one word from this list: " + ", ".join(EMOTIONS) + "."
)
# OpenAI CLIP's normalisation, used when a folder has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class Prediction:
    """One clip's classification: ``probabilities`` (8, paper order) or only ``label`` (VLM); ``label`` None = unparsed."""

    label: str | None
    probabilities: np.ndarray | None = None
    answer: str = ""  # the VLM's raw text

    @property
    def valence(self) -> str | None:
        return valence(self.label) if self.label else None

    def probability_dict(self) -> dict[str, float] | None:
        if self.probabilities is None:
            return None
        return {e: float(p) for e, p in zip(EMOTIONS, self.probabilities)}


def sample_indices(n: int, k: int) -> list[int]:
    """``k`` frame indices spread evenly over ``n`` frames, first and last included (all when ``n <= k``)."""
    if n <= 0:
        raise ValueError("the clip has no frames")
    if k <= 0 or n <= k:
        return list(range(n))
    return sorted({int(round(i * (n - 1) / (k - 1))) for i in range(k)}) if k > 1 else [n // 2]


def resolve_path(name: str | Path, kinds: Sequence[str] = (MODEL_KIND,), what: str = "classifier") -> Path:
    """The one place a user-given model path is resolved: an absolute path as given, else ``name`` inside one of
    the model folders of ``kinds`` (files or folders; it must stay inside that folder), else (headless) the working
    folder. Goes through :func:`emovid_core.runtime.resolve_user_path`, so in a ComfyUI server it must lie inside
    the server's folders (``PathNotAllowed`` otherwise), as every other node path does.

    Raises FileNotFoundError naming the folders searched.
    """
    text = str(name).strip()
    if not text:
        raise ValueError(f"{what} path is empty; give a folder or file (absolute, or relative to models/{kinds[0]})")
    p = Path(text).expanduser()
    folders = [str(f) for kind in kinds for f in runtime.model_folders(kind)]
    where = ", ".join(folders) or "(no model folders: set EMOVID_MODELS_DIR, or pass an absolute path)"
    missing = FileNotFoundError(f"{what} {text!r} not found as a path or in the model folders {', '.join(kinds)}: {where}")
    # A name inside a model folder may not climb out of it ('..'); links placed there by the user are followed.
    if not p.is_absolute() and ".." in p.parts:
        raise missing
    found = runtime.resolve_user_path(kinds, p, what=what)
    if not found.exists():
        raise missing
    return found.resolve()


def resolve_device(device: str = "auto") -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA GPU is available here; use cpu or auto")
    return str(device)


# --------------------------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class Preprocess:
    """CLIP image preprocessing read from ``preprocessor_config.json``: resize the short side, centre crop, normalise."""

    size: int
    crop: int
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    @classmethod
    def from_folder(cls, folder: Path | None, image_size: int) -> "Preprocess":
        cfg: dict = {}
        if folder is not None and (folder / "preprocessor_config.json").is_file():
            cfg = json.loads((folder / "preprocessor_config.json").read_text())
        size = cfg.get("size", {})
        crop = cfg.get("crop_size", {})
        short = size.get("shortest_edge", image_size) if isinstance(size, dict) else int(size or image_size)
        c = crop.get("height", image_size) if isinstance(crop, dict) else int(crop or image_size)
        return cls(int(short), int(c), tuple(cfg.get("image_mean", CLIP_MEAN)), tuple(cfg.get("image_std", CLIP_STD)))

    def __call__(self, frames: np.ndarray):
        """uint8 ``[T, H, W, 3]`` -> float32 ``[T, 3, crop, crop]`` torch tensor."""
        import cv2
        import torch

        out = np.empty((len(frames), self.crop, self.crop, 3), dtype=np.float32)
        for i, f in enumerate(frames):
            h, w = f.shape[:2]
            scale = self.size / min(h, w)
            nw, nh = max(self.crop, round(w * scale)), max(self.crop, round(h * scale))
            r = cv2.resize(f[..., :3], (nw, nh), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
            y, x = (nh - self.crop) // 2, (nw - self.crop) // 2
            out[i] = r[y:y + self.crop, x:x + self.crop]
        arr = (out / 255.0 - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def as_frames(frames: Any) -> np.ndarray:
    """Frames from a uint8/float array or a ComfyUI IMAGE tensor ``[T, H, W, 3|4]`` as uint8 RGB, checked."""
    from ..frame_check import check_frame, check_values
    from ..video_io import image_to_uint8

    if hasattr(frames, "detach"):
        frames = frames.detach().to("cpu").float().numpy()
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise ValueError(f"frames have shape {list(arr.shape)}; expected [frames, height, width, 3] (an IMAGE batch) with at least one frame")
    check_frame(arr[0], 0)
    for i in range(len(arr)) if arr.dtype != np.uint8 else ():
        check_values(arr[i], i)
    return image_to_uint8(arr)[..., :3]


# ----------------------------------------------------------------------------------------------- encoders


class ClipEncoder:
    """A CLIP model (text + vision) or a vision tower alone, with its preprocessing, on one device.

    ``pooled(frames)``: the vision tower's pooled output (post-layernorm CLS), what a probe is trained on;
    ``image_embeds(frames)`` / ``text_embeds(texts)``: L2-normalised projected embeddings (needs both towers and
    the projections: a full CLIP folder).
    """

    def __init__(self, vision, preprocess: Preprocess, source: str, *, model=None, tokenizer=None, device: str = "cpu",
                 dtype=None, batch: int = 32) -> None:
        import torch

        self.vision = vision
        self.model = model  # full CLIPModel, or None for a vision tower alone
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.source = source
        self.device = device
        self.dtype = dtype or torch.float32
        self.batch = batch
        self.hidden_size = int(vision.config.hidden_size)
        self._lock = threading.Lock()

    @property
    def has_text(self) -> bool:
        return self.model is not None and self.tokenizer is not None

    def _pixels(self, frames: np.ndarray):
        return self.preprocess(frames).to(self.device, self.dtype)

    def pooled(self, frames: np.ndarray) -> np.ndarray:
        import torch

        outs = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(frames), self.batch):
                out = self.vision(pixel_values=self._pixels(frames[i:i + self.batch]))
                outs.append(out.pooler_output.float().cpu().numpy())
        return np.concatenate(outs)

    def image_embeds(self, frames: np.ndarray) -> np.ndarray:
        import torch

        if self.model is None:
            raise ValueError(f"{self.source} is a vision tower without CLIP's projection; CLIP/SD scores and zero-shot need a "
                             "full transformers CLIP folder (config.json with text_config and vision_config)")
        outs = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(frames), self.batch):
                pooled = self.model.vision_model(pixel_values=self._pixels(frames[i:i + self.batch])).pooler_output
                e = self.model.visual_projection(pooled).float()
                outs.append(torch.nn.functional.normalize(e, dim=-1).cpu().numpy())
        return np.concatenate(outs)

    def text_embeds(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not self.has_text:
            raise ValueError(f"{self.source} has no text tower/tokenizer; zero-shot and CLIP score need a full CLIP folder "
                             "(a vision-only file such as clip_vision_h.safetensors works with the probe backend)")
        with self._lock, torch.inference_mode():
            tok = self.tokenizer(list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt")
            tok = {k: v.to(self.device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
            pooled = self.model.text_model(**tok).pooler_output
            e = self.model.text_projection(pooled).float()
            return torch.nn.functional.normalize(e, dim=-1).cpu().numpy()

    def identity(self) -> dict:
        return {"source": self.source, "hidden_size": self.hidden_size, "has_text": self.has_text, "files": files_digest(self.source)}


_CACHE: dict[tuple, Any] = {}
_CACHE_LOCK = threading.Lock()


def _stamp(path: Path) -> tuple:
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def files_digest(source: str | Path) -> str:
    """A short digest of a model file's or folder's names, sizes and times: a replaced model gives a new identity."""
    import hashlib

    p = Path(source)
    return hashlib.sha256(repr(_stamp(p)).encode()).hexdigest()[:16] if p.exists() else ""


def _cached(kind: str, path: Path, device: str, build, fresh: bool = False):
    key = (kind, str(path), _stamp(path), device)
    with _CACHE_LOCK:
        if not fresh and key in _CACHE:
            return _CACHE[key]
    obj = build()
    if not fresh:
        with _CACHE_LOCK:
            _CACHE[key] = obj
    return obj


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def _dtype_kwarg(dtype) -> dict:
    """transformers renamed ``torch_dtype`` to ``dtype`` in 4.56; pass the name the installed version wants."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def _torch_dtype(device: str, dtype: str):
    import torch

    if dtype in (None, "", "auto"):
        return torch.float16 if device.startswith("cuda") else torch.float32
    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in names:
        raise ValueError(f"dtype {dtype!r} is not one of auto, {', '.join(names)}")
    return names[dtype]


def _vision_config_from_shapes(shapes: dict[str, list], path: Path) -> dict:
    """A CLIPVisionConfig for a single clip_vision file, from its tensor shapes (ViT-H: the pack's shipped config)."""
    def shape(suffix: str) -> list:
        for k, v in shapes.items():
            if k.endswith(suffix):
                return v
        raise ValueError(f"{path} is not a CLIP vision file (no '*{suffix}' tensor); use a transformers CLIP folder or "
                         "ComfyUI's clip_vision_h.safetensors")

    hidden, _, patch, _ = shape("embeddings.patch_embedding.weight")
    positions = shape("embeddings.position_embedding.weight")[0]
    inter = shape("encoder.layers.0.mlp.fc1.weight")[0]
    layers = 1 + max(int(m.group(1)) for k in shapes if (m := re.search(r"encoder\.layers\.(\d+)\.", k)))
    # Heads are not visible in the shapes: the released CLIP towers use these; a toy model uses 16-wide heads.
    heads = {1280: 16, 1024: 16, 768: 12}.get(hidden) or (hidden // 64 if hidden % 64 == 0 else max(1, hidden // 16))
    image = int(round((positions - 1) ** 0.5)) * patch
    return dict(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                patch_size=patch, image_size=image, hidden_act="gelu" if hidden == 1280 else "quick_gelu")


def _load_encoder(path: Path, device: str, dtype) -> ClipEncoder:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if path.is_file():
        from safetensors.torch import load_file

        from ..safetensors_header import read_header
        from ..wan.single_file import image_encoder_to_hf

        shapes = {k: v["shape"] for k, v in read_header(path).items() if isinstance(v, dict) and "shape" in v}
        cfg = _vision_config_from_shapes(shapes, path)
        vision = CLIPVisionModel(CLIPVisionConfig(**cfg))
        sd = image_encoder_to_hf(load_file(str(path)), own_keys=vision.state_dict().keys())
        missing, unexpected = vision.load_state_dict(sd, strict=False)
        if missing:
            raise ValueError(f"{path}: CLIP vision file lacks {len(missing)} tensors the model needs (e.g. {missing[0]}); "
                             "is it a complete clip_vision file?")
        vision = vision.to(device, dtype).eval()
        return ClipEncoder(vision, Preprocess(cfg["image_size"], cfg["image_size"]), str(path), device=device, dtype=dtype)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a transformers model folder (no config.json); give a CLIP folder "
                                "(e.g. openai/clip-vit-large-patch14 downloaded with its config) or a clip_vision .safetensors file")
    cfg = json.loads((path / "config.json").read_text())
    kw = dict(local_files_only=True, **_dtype_kwarg(dtype))
    if "text_config" in cfg and "vision_config" in cfg:
        from transformers import AutoTokenizer, CLIPModel

        model = CLIPModel.from_pretrained(str(path), **kw).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        vision_cfg = model.config.vision_config
        return ClipEncoder(model.vision_model, Preprocess.from_folder(path, vision_cfg.image_size), str(path), model=model,
                           tokenizer=tokenizer, device=device, dtype=dtype)
    vision = CLIPVisionModel.from_pretrained(str(path), **kw).to(device).eval()
    return ClipEncoder(vision, Preprocess.from_folder(path, vision.config.image_size), str(path), device=device, dtype=dtype)


def load_encoder(source: str | Path, device: str = "auto", dtype: str = "auto", fresh: bool = False) -> ClipEncoder:
    """A CLIP encoder from a transformers folder (full CLIP or vision-only) or a clip_vision single file, loaded once."""
    path = resolve_path(source, (MODEL_KIND, "clip_vision", "clip"), what="CLIP folder or clip_vision file")
    dev = resolve_device(device)
    dt = _torch_dtype(dev, dtype)
    return _cached("encoder", path, f"{dev}/{dt}", lambda: _load_encoder(path, dev, dt), fresh)


# ---------------------------------------------------------------------------------------------- backends


class EmotionClassifier:
    """The interface every backend implements."""

    backend: str = ""
    source: str = ""
    frames: int = DEFAULT_FRAMES

    def classify(self, frames: np.ndarray) -> Prediction:  # pragma: no cover - interface
        raise NotImplementedError

    def identity(self) -> dict:
        """What a score depends on (backend, files, frames): written into reports and per-clip cache keys."""
        return {"backend": self.backend, "source": self.source, "frames": self.frames}

    def describe(self) -> str:
        return f"{self.backend}:{self.source} ({self.frames} frames per clip)"

    def _pick(self, frames: np.ndarray) -> np.ndarray:
        frames = as_frames(frames)
        return frames[sample_indices(len(frames), self.frames)]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max()
    e = np.exp(z)
    return e / e.sum()


class ClipZeroShot(EmotionClassifier):
    """Zero-shot over any transformers CLIP folder: the clip vector (mean of the frames' normalised image embeddings,
    renormalised) against the eight prompts ``CLIP_PROMPT``; probabilities = softmax(logit_scale × cosine)."""

    backend = "clip"

    def __init__(self, encoder: ClipEncoder, frames: int = DEFAULT_FRAMES, prompt: str = CLIP_PROMPT) -> None:
        if not encoder.has_text:
            raise ValueError(f"clip backend: {encoder.source} has no text tower; zero-shot needs a full CLIP folder. "
                             "For a vision-only file (clip_vision_h.safetensors) train a probe: emovid eval train-probe")
        self.encoder = encoder
        self.source = encoder.source
        self.frames = int(frames)
        self.prompt = prompt
        self.prompts = [prompt.format(emotion=e) for e in EMOTIONS]
        self._text = encoder.text_embeds(self.prompts)
        self._scale = float(encoder.model.logit_scale.detach().float().exp().cpu())

    def identity(self) -> dict:
        return {**super().identity(), "prompt": self.prompt, "model": self.encoder.identity()}

    def classify(self, frames: np.ndarray) -> Prediction:
        return self.classify_embeds(self.encoder.image_embeds(self._pick(frames)))

    def classify_embeds(self, frame_embeds: np.ndarray) -> Prediction:
        """The decision from the classified frames' normalised image embeddings (reused for the CLIP score)."""
        emb = frame_embeds.mean(0)
        emb = emb / max(float(np.linalg.norm(emb)), 1e-12)
        p = _softmax(self._scale * (self._text @ emb))
        return Prediction(EMOTIONS[int(np.argmax(p))], p)


class ProbeClassifier(EmotionClassifier):
    """A linear probe (see :mod:`emovid_core.evaluation.probe`) on the mean pooled CLIP vision feature of the frames."""

    backend = "probe"

    def __init__(self, probe, encoder: ClipEncoder, source: str, frames: int | None = None) -> None:
        if probe.dim != encoder.hidden_size:
            raise ValueError(f"probe {source} was trained on {probe.dim}-wide features but {encoder.source} gives "
                             f"{encoder.hidden_size}; use the vision model the probe was trained with ({probe.vision})")
        self.probe = probe
        self.encoder = encoder
        self.source = source
        self.frames = int(frames or probe.frames)

    def identity(self) -> dict:
        return {**super().identity(), "vision": self.encoder.identity(), "probe_sha": self.probe.digest}

    def describe(self) -> str:
        return f"probe:{self.source} on {self.encoder.source} ({self.frames} frames per clip)"

    def classify(self, frames: np.ndarray) -> Prediction:
        feat = self.encoder.pooled(self._pick(frames)).mean(0)
        p = self.probe.probabilities(feat[None])[0]
        return Prediction(EMOTIONS[int(np.argmax(p))], p)


def parse_vlm_answer(text: str) -> str | None:
    """The emotion a VLM answered, parsed strictly: the answer must be exactly one of the eight words (case and
    surrounding punctuation/whitespace ignored). Anything else (two words, a synonym, a sentence) is None."""
    word = re.sub(r"^[\s\"'`*.,:;!()\[\]]+|[\s\"'`*.,:;!()\[\]]+$", "", str(text)).lower()
    return word if word in EMOTIONS else None


class VlmClassifier(EmotionClassifier):
    """A local vision-language model folder (transformers ``AutoModelForImageTextToText`` + ``AutoProcessor``), asked
    :data:`VLM_QUESTION` about ``frames`` frames of the clip; greedy decoding; the answer parsed strictly."""

    backend = "vlm"

    def __init__(self, folder: Path, device: str, dtype, frames: int = 4, max_new_tokens: int = 8) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.source = str(folder)
        self.frames = int(frames)
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(str(folder), local_files_only=True, **_dtype_kwarg(dtype)).to(device).eval()
        self._lock = threading.Lock()

    def identity(self) -> dict:
        return {**super().identity(), "question": VLM_QUESTION, "files": files_digest(self.source)}

    def classify(self, frames: np.ndarray) -> Prediction:
        import torch
        from PIL import Image

        images = [Image.fromarray(f) for f in self._pick(frames)]
        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": VLM_QUESTION}]
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = self.processor(images=images, text=prompt, return_tensors="pt")
        inputs.pop("token_type_ids", None)  # some tokenizers emit it; generate() refuses what the model does not take
        inputs = inputs.to(self.device)
        with self._lock, torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        answer = self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0].strip()
        return Prediction(parse_vlm_answer(answer), None, answer)


@dataclass(frozen=True)
class ClassifierSpec:
    backend: str
    path: str

    @classmethod
    def parse(cls, text: str) -> "ClassifierSpec":
        backend, sep, path = str(text).partition(":")
        if not sep or backend not in BACKENDS or not path.strip():
            raise ValueError(f"classifier {text!r} must be clip:DIR (a CLIP folder), probe:FILE (a probe from emovid eval "
                             "train-probe) or vlm:DIR (a local vision-language model folder)")
        return cls(backend, path.strip())


def load_classifier(spec: str | ClassifierSpec, *, vision: str | None = None, frames: int | None = None, device: str = "auto",
                    dtype: str = "auto", fresh: bool = False) -> EmotionClassifier:
    """Load a classifier (once per process: a second call with the same files returns the same object; ``fresh``
    loads anew). ``vision`` overrides the vision model recorded in a probe; ``frames`` the frames per clip."""
    s = spec if isinstance(spec, ClassifierSpec) else ClassifierSpec.parse(spec)
    dev = resolve_device(device)
    if s.backend == "clip":
        enc = load_encoder(s.path, dev, dtype, fresh=fresh)
        path = Path(enc.source)
        return _cached(f"clip/{frames}", path, dev, lambda: ClipZeroShot(enc, frames or DEFAULT_FRAMES), fresh)
    if s.backend == "probe":
        from .probe import load_probe

        path = resolve_path(s.path, (MODEL_KIND,), what="probe file")
        probe = load_probe(path)
        enc = load_encoder(vision or probe.vision, dev, dtype, fresh=fresh)
        return _cached(f"probe/{enc.source}/{frames}", path, dev, lambda: ProbeClassifier(probe, enc, str(path), frames), fresh)
    path = resolve_path(s.path, (MODEL_KIND,), what="VLM folder")
    dt = _torch_dtype(dev, dtype)
    return _cached(f"vlm/{frames}", path, dev, lambda: VlmClassifier(path, dev, dt, frames or 4), fresh)


def read_sampled(path: str | Path, k: int = DEFAULT_FRAMES) -> np.ndarray:
    """``k`` frames spread evenly over the video at ``path`` (:func:`sample_indices`), decoded by seeking."""
    from .. import video_io

    info = video_io.probe(path)
    return video_io.read_frames(path, info=info, indices=sample_indices(info.frames, k), progress=False)
