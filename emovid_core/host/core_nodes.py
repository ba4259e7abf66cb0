"""Headless equivalents of the ComfyUI core nodes that model-free workflows use, for ``emovid run``.

Host side only: the graph runner and the CLI import this module; domain code never does. Each class takes its
inputs, outputs, category and description from ComfyUI 0.3.64's own ``/object_info`` entry (package data
``host/data/core_object_info.json``, the snapshot the UI->API converter uses too), so a workflow validates here exactly as on a server, and writes what the
server writes:

- **SaveImage**: ``<prefix>_<counter:05>_.png`` in the output folder (counter = highest existing + 1, the
  server's ``%width%``/``%height%``/``%year%``… and ``%batch_num%`` expanded), PNG text chunks ``prompt`` and one
  per ``extra_pnginfo`` key (the UI workflow) unless metadata is disabled, compress level 4, ``ui.images``
  entries ``{filename, subfolder, type: "output"}``.
- **PreviewImage**: the same into the temp folder, prefix ``ComfyUI_temp_<5 random letters>``, compress level 1,
  ``type: "temp"``.
- **LoadImage**, **EmptyImage**, **LoadVideo**, **GetVideoComponents**: the same tensors as core (IMAGE
  ``[B, H, W, 3]`` float 0..1, MASK ``1 - alpha``); a VIDEO is decoded with ``video_io`` (audio: None, as core
  returns for a silent file; headless decoding of audio streams is not supported).

Every other core node (loaders, samplers, text encoders …) needs ComfyUI itself: :func:`needs_comfyui` names
them so ``emovid run`` can refuse the workflow before running anything.
"""

from __future__ import annotations

import json
import mimetypes
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import runtime

NAMES_PATH = Path(__file__).resolve().parent / "data" / "core_node_names.json"


@lru_cache(maxsize=1)
def _core_info() -> dict:
    # The one snapshot of core schemas (ComfyUI 0.3.64 /object_info), shared with the UI->API converter.
    from .object_info import core_object_info

    return core_object_info()


@lru_cache(maxsize=1)
def core_node_names() -> frozenset[str]:
    """Every node class ComfyUI's core (``nodes``, ``comfy_extras``, ``comfy_api_nodes``) registers."""
    return frozenset(json.loads(NAMES_PATH.read_text(encoding="utf-8"))["core_node_names"])


def object_info() -> dict:
    """The headless nodes' entries exactly as a ComfyUI server's ``GET /object_info`` returns them."""
    return {k: json.loads(json.dumps(_core_info()[k])) for k in NODE_CLASS_MAPPINGS}


# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class HostSettings:
    """What a ComfyUI server takes from its command line and the queued request, for one headless run."""

    temp_dir: Path | None = None  # default: $EMOVID_TEMP_DIR, else "temp" beside the output folder (ComfyUI's layout)
    disable_metadata: bool = False  # ComfyUI's --disable-metadata


SETTINGS = HostSettings()


@contextmanager
def configured(**changes) -> Iterator[HostSettings]:
    """Temporarily change :data:`SETTINGS` (``temp_dir``, ``disable_metadata``)."""
    global SETTINGS
    old = SETTINGS
    SETTINGS = replace(old, **{k: (Path(v) if k == "temp_dir" and v is not None else v) for k, v in changes.items()})
    try:
        yield SETTINGS
    finally:
        SETTINGS = old


def temp_directory() -> Path:
    """Where PreviewImage writes: like ComfyUI's ``temp/`` beside ``output/`` unless set."""
    chosen = SETTINGS.temp_dir or os.environ.get("EMOVID_TEMP_DIR")
    return Path(chosen) if chosen else Path(os.path.abspath(runtime.output_directory())).parent / "temp"


def _folder(kind: str) -> Path:
    return {"input": runtime.input_directory, "output": runtime.output_directory, "temp": temp_directory}[kind]()


def annotated_path(name: str) -> Path:
    """A file picked in a LoadImage/LoadVideo list: ``x.png`` (input folder) or ``x.png [output]`` / ``[temp]``.

    Unlike the server, a name that leaves its folder (``..``, absolute) is refused: node inputs stay in their roots.
    """
    kind = "input"
    for k in ("input", "output", "temp"):
        if name.endswith(f" [{k}]"):
            name, kind = name[: -len(f" [{k}]")], k
            break
    base = Path(os.path.abspath(_folder(kind)))
    path = Path(os.path.abspath(base / name))
    if not name or os.path.commonpath([base, path]) != str(base):
        raise ValueError(f"file {name!r} is outside the {kind} folder {str(base)!r}; give a name inside it")
    return path


def _check_file(content_type: str, name: str) -> bool | str:
    """True, or core's "Invalid <type> file: NAME" with where it was looked for and how to fix it."""
    try:
        path = annotated_path(name)
    except ValueError as exc:
        return str(exc)
    if path.is_file():
        return True
    return (f"Invalid {content_type} file: {name} (no such file {str(path)!r}; put it in that folder, or pick another "
            f"file; headless, `emovid run --input DIR` sets the input folder)")


def _listed(content_type: str) -> list[str]:
    """Files directly in the input folder whose MIME type is ``content_type`` (as ComfyUI lists them)."""
    root = runtime.input_directory()
    if not root.is_dir():
        return []
    names = [f for f in os.listdir(root) if (root / f).is_file()]
    return sorted(f for f in names if (mimetypes.guess_type(f, strict=False)[0] or "").split("/")[0] == content_type)


# ------------------------------------------------------------------------------------------------- schemas


def _spec(value: Any) -> tuple:
    return tuple(value) if isinstance(value, list) else value


def _input_types(node_id: str) -> dict:
    """INPUT_TYPES in core's order (object_info sorts the keys; ``input_order`` keeps the real order)."""
    info = _core_info()[node_id]
    out: dict[str, dict] = {}
    for section, specs in info["input"].items():
        order = info.get("input_order", {}).get(section, sorted(specs))
        out[section] = {name: _spec(json.loads(json.dumps(specs[name]))) for name in order}
    return out


def _with_file_list(node_id: str, name: str, content_type: str) -> dict:
    """INPUT_TYPES with the input folder's files of ``content_type`` as the choices of combo ``name``, in the
    spelling core uses for it (a V1 list, or V3's ``COMBO`` with ``options``)."""
    types = _input_types(node_id)
    kind, opts = types["required"][name]
    files = _listed(content_type)
    types["required"][name] = (files, opts) if isinstance(kind, (list, tuple)) else (kind, {**opts, "options": files})
    return types


def _core(node_id: str):
    """Class decorator: outputs, category, description and flags from core's object_info entry."""

    def deco(cls):
        info = _core_info()[node_id]
        cls.NODE_ID = node_id
        cls.RETURN_TYPES = tuple(info["output"])
        cls.RETURN_NAMES = tuple(info["output_name"])
        cls.OUTPUT_IS_LIST = tuple(info["output_is_list"])
        cls.OUTPUT_NODE = bool(info["output_node"])
        cls.CATEGORY = info["category"]
        cls.DESCRIPTION = info.get("description", "")
        cls.DISPLAY_NAME = info["display_name"]
        if not hasattr(cls, "INPUT_TYPES"):
            cls.INPUT_TYPES = classmethod(lambda c: _input_types(c.NODE_ID))
        return cls

    return deco


# --------------------------------------------------------------------------------------------------- images


def _expand_prefix(prefix: str, width: int, height: int) -> str:
    # The variables the server expands (folder_paths.get_save_image_path); %date:…% and %Node.widget% are
    # expanded by the frontend before it queues, so a headless run sees them as typed.
    now = time.localtime()
    for key, value in (("width", width), ("height", height), ("year", now.tm_year), ("month", now.tm_mon),
                       ("day", now.tm_mday), ("hour", now.tm_hour), ("minute", now.tm_min), ("second", now.tm_sec)):
        prefix = prefix.replace(f"%{key}%", str(value) if key in ("width", "height", "year") else f"{value:02d}")
    return prefix


def save_image_path(prefix: str, root: Path, width: int, height: int) -> tuple[Path, str, int, str]:
    """(folder, file name stem, first counter, subfolder) for ComfyUI-style ``<stem>_<counter:05>_.<ext>`` files.

    The counter is one more than the highest ``<stem>_<digits>_…`` already in the folder, as the server counts.
    """
    root = Path(os.path.abspath(root))
    if "%" in prefix:
        prefix = _expand_prefix(prefix, width, height)
    norm = os.path.normpath(prefix.replace("\\", "/"))
    subfolder, stem = os.path.dirname(norm), os.path.basename(norm)
    folder = Path(os.path.abspath(root / subfolder))
    if os.path.isabs(norm) or os.path.commonpath([root, folder]) != str(root) or stem in ("", ".", ".."):
        raise ValueError(f"filename_prefix {prefix!r} points outside the folder {str(root)!r}; "
                         "give a name inside it, e.g. 'ComfyUI' or 'EmoVid/frames'")
    folder.mkdir(parents=True, exist_ok=True)
    counters = [0]
    for f in os.listdir(folder):
        if f.startswith(stem + "_"):
            digits, sep, _ = f[len(stem) + 1:].partition("_")
            if sep and digits.isdigit():
                counters.append(int(digits))
    return folder, stem, max(counters) + 1, subfolder


def _png_info(prompt: Any, extra_pnginfo: dict | None):
    if SETTINGS.disable_metadata:
        return None
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def save_images(images, filename_prefix: str, kind: str, compress_level: int, prompt=None, extra_pnginfo=None) -> list[dict]:
    """Write an IMAGE batch as PNGs the way core SaveImage/PreviewImage do; return their ``ui.images`` entries."""
    from PIL import Image

    from ..atomic import atomic_path

    arr = images.detach().cpu().float().numpy() if hasattr(images, "detach") else np.asarray(images, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4) or 0 in arr.shape:
        raise ValueError(f"images have shape {list(arr.shape)}; expected a ComfyUI IMAGE batch [B, H, W, 3]")
    root = _folder(kind)
    folder, stem, counter, subfolder = save_image_path(filename_prefix, root, arr.shape[2], arr.shape[1])
    metadata = _png_info(prompt, extra_pnginfo)
    results = []
    for batch_number, image in enumerate(arr):
        # Truncating (not rounding) like the server, so the same IMAGE gives the same bytes.
        pixels = np.clip(255.0 * image, 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        name = f"{stem.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
        target = folder / name
        if target.exists():
            raise FileExistsError(f"{str(target)!r} already exists and was not written by this run; "
                                  "use another filename_prefix")
        with atomic_path(target) as tmp:
            img.save(tmp, format="PNG", pnginfo=metadata, compress_level=compress_level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return results


@_core("SaveImage")
class SaveImage:
    FUNCTION = "save_images"

    def save_images(self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        return {"ui": {"images": save_images(images, filename_prefix, "output", 4, prompt, extra_pnginfo)}}


@_core("PreviewImage")
class PreviewImage:
    FUNCTION = "save_images"
    # The server's alphabet for the random part of preview names (sic: two 'p', no 'w').
    LETTERS = "abcdefghijklmnopqrstupvxyz"

    def save_images(self, images, prompt=None, extra_pnginfo=None):
        prefix = "ComfyUI_temp_" + "".join(random.choice(self.LETTERS) for _ in range(5))
        return {"ui": {"images": save_images(images, prefix, "temp", 1, prompt, extra_pnginfo)}}


@_core("EmptyImage")
class EmptyImage:
    FUNCTION = "generate"

    def generate(self, width, height, batch_size=1, color=0):
        import torch

        rgb = [((color >> shift) & 0xFF) / 0xFF for shift in (16, 8, 0)]
        return (torch.tensor(rgb, dtype=torch.float32).expand(batch_size, height, width, 3).contiguous(),)


@_core("LoadImage")
class LoadImage:
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls):
        return _with_file_list(cls.NODE_ID, "image", "image")

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        # Naming 'image' makes the runner (like the server) skip the list check: any file in the folder loads.
        return _check_file("image", image)

    def load_image(self, image):
        from PIL import Image

        with Image.open(annotated_path(image)) as img:
            return _image_and_mask(img)


def _image_and_mask(img) -> tuple:
    """Core LoadImage's tensors: every frame of the first frame's size as IMAGE, and MASK = 1 - alpha."""
    import torch
    from PIL import ImageOps, ImageSequence

    frames, masks, size = [], [], None
    for frame in ImageSequence.Iterator(img):
        frame = ImageOps.exif_transpose(frame)
        if frame.mode == "I":
            frame = frame.point(lambda v: v * (1 / 255))
        rgb = frame.convert("RGB")
        size = size or rgb.size
        if rgb.size != size:  # frames of another size are dropped, as the server does
            continue
        frames.append(torch.from_numpy(np.array(rgb).astype(np.float32) / 255.0)[None])
        if "A" in frame.getbands():
            alpha = np.array(frame.getchannel("A")).astype(np.float32) / 255.0
        elif frame.mode == "P" and "transparency" in frame.info:
            alpha = np.array(frame.convert("RGBA").getchannel("A")).astype(np.float32) / 255.0
        else:
            alpha = None
        mask = 1.0 - torch.from_numpy(alpha) if alpha is not None else torch.zeros((64, 64), dtype=torch.float32)
        masks.append(mask[None])
    if len(frames) > 1 and img.format != "MPO":
        return (torch.cat(frames, dim=0), torch.cat(masks, dim=0))
    return (frames[0], masks[0])


class Video:
    """A VIDEO value headless: a file (LoadVideo), decoded on demand like core's ``VideoFromFile``."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def get_dimensions(self) -> tuple[int, int]:
        from ..video_io import probe

        info = probe(self.path)
        return info.width, info.height

    def get_components(self) -> tuple[Any, None, float]:
        """(images [T, H, W, 3] float 0..1, audio, frame rate): every frame, as core decodes it."""
        from ..video_io import frames_to_image, probe, read_frames

        info = probe(self.path)
        return frames_to_image(read_frames(self.path, info=info)), None, float(info.fps)


@_core("LoadVideo")
class LoadVideo:
    FUNCTION = "execute"

    @classmethod
    def INPUT_TYPES(cls):
        return _with_file_list(cls.NODE_ID, "file", "video")

    @classmethod
    def VALIDATE_INPUTS(cls, file):
        return _check_file("video", file)

    def execute(self, file):
        return (Video(annotated_path(file)),)


@_core("GetVideoComponents")
class GetVideoComponents:
    FUNCTION = "execute"

    def execute(self, video):
        return video.get_components()


NODE_CLASS_MAPPINGS: dict[str, type] = {
    cls.NODE_ID: cls for cls in (SaveImage, PreviewImage, LoadImage, EmptyImage, LoadVideo, GetVideoComponents)
}


def needs_comfyui(workflow: dict, classes: dict[str, type]) -> list[tuple[str, str]]:
    """(node id, class_type) of the ComfyUI core nodes in ``workflow`` that ``classes`` cannot run headless."""
    names = core_node_names()
    return [(str(nid), node["class_type"]) for nid, node in workflow.items()
            if isinstance(node, dict) and node.get("class_type") in names and node["class_type"] not in classes]
