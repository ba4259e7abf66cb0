"""Dataset nodes: open an EmoVid-format dataset, draw a clip from it, show its statistics.

Thin adapters over ``emovid_core.dataset``; the ``EMOVID_DATASET`` value passed between nodes is the core's
``Dataset`` object (root, table path, clips sorted by id).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from emovid_core import runtime
from emovid_core.dataset import SOURCE_TYPES, Filter, apply_filter, balanced_order, benchmark_clips, load_dataset, sample_random
from emovid_core.dataset.decode import DecodeOptions, decode_clip
from emovid_core.emotions import EMOTIONS

CATEGORY = "EmoVid/dataset"
DATASET_TYPE = "EMOVID_DATASET"
MODES = ["random", "balanced", "benchmark", "index"]


DATASET_KIND = "emovid_datasets"  # ComfyUI folder kind for dataset roots (extra_model_paths.yaml)
_REFUSED = (OSError, ValueError)  # not found, refused by the server's path policy, or empty


def _resolve_root(root: str) -> Path:
    """``root``: absolute, or relative to the emovid_datasets folders or ComfyUI's input folder (headless also to
    the working folder). In a ComfyUI server the folder must lie inside the server's folders
    (runtime.resolve_user_path)."""
    text = (root or "").strip()
    if not text:
        raise ValueError("dataset root is empty: set 'root' to a folder with emovid_index.csv or emovid_metadata.csv "
                         "(make one with `emovid dataset make-sample DIR`), e.g. a folder name in emovid_datasets")
    return runtime.resolve_user_path(DATASET_KIND, text, relative_to=[runtime.input_directory()], what="dataset root")


def _resolve_metadata(metadata: str, root: Path) -> Path | None:
    text = (metadata or "").strip()
    if not text:
        return None
    return runtime.resolve_user_path(DATASET_KIND, text, relative_to=[root], what="metadata table")


class EmoVidDataset:
    DESCRIPTION = (
        "Open an EmoVid-format dataset: a folder whose emovid_index.csv (made by `emovid dataset index`) or "
        "emovid_metadata.csv lists the clips (type, emotion, caption, attributes, film/segment, split). "
        "Rows with bad values are skipped and counted in the summary."
    )
    CATEGORY = CATEGORY
    FUNCTION = "open"
    RETURN_TYPES = (DATASET_TYPE, "STRING")
    RETURN_NAMES = ("dataset", "summary")
    OUTPUT_TOOLTIPS = (
        "The loaded dataset, for EmoVid Sample Clip and EmoVid Dataset Stats.",
        "One line: clip counts per type, human-labelled clips, splits, rejected rows and the table used.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "root": ("STRING", {"default": "", "tooltip": "Dataset folder: a folder name in an emovid_datasets folder "
                                                              "(models/emovid_datasets or extra_model_paths.yaml) or in ComfyUI's "
                                                              "input folder, or an absolute path; on a server it must lie inside "
                                                              "the server's folders (EMOVID_ALLOW_ANY_PATH=1 lifts this). Its "
                                                              "emovid_index.csv is used when present, else emovid_metadata.csv."}),
            },
            "optional": {
                "metadata": ("STRING", {"default": "", "tooltip": "Optional: a specific .csv/.jsonl table to read instead of the "
                                                                  "root's own (relative to the root, or a path as for root)."}),
            },
        }

    def open(self, root, metadata=""):
        folder = _resolve_root(root)
        ds = load_dataset(folder, _resolve_metadata(metadata, folder))
        return (ds, ds.summary())

    @classmethod
    def IS_CHANGED(cls, root, metadata="", **kwargs):
        # Re-run (and so re-run everything downstream) when the table changes on disk.
        try:
            from emovid_core.dataset.table import find_metadata

            folder = _resolve_root(root)
            path = _resolve_metadata(metadata, folder) or find_metadata(folder)
            st = path.stat()
            return f"{path}:{st.st_mtime_ns}:{st.st_size}"
        except _REFUSED:
            return "missing"

    @classmethod
    def VALIDATE_INPUTS(cls, root="", metadata=""):
        # A path the server's policy refuses is a validation error (HTTP 400 from /prompt), not a run-time one.
        try:
            folder = _resolve_root(root)
            _resolve_metadata(metadata, folder)
        except runtime.PathNotAllowed as exc:
            return str(exc)
        except ValueError:
            pass  # reported when the node runs, with the run-time message
        return True


class EmoVidSampleClip:
    DESCRIPTION = (
        "Pick one clip from an EmoVid dataset and decode it. Filters narrow the pool; mode picks from it: random "
        "(by seed), balanced (round-robin over type × emotion, position = index), benchmark (the paper's 240-clip "
        "test set, or the table's 'test' split; position = index) or index (the index-th clip by id). Decode "
        "controls match EmoVid Load Video; width/height must be multiples of 16 for Wan2.1."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE", "IMAGE", "STRING", "STRING", "STRING", "FLOAT", "FLOAT", "INT", "FLOAT")
    RETURN_NAMES = ("frames", "first_frame", "caption", "emotion", "clip_id", "brightness", "colorfulness", "hue", "fps")
    OUTPUT_TOOLTIPS = (
        "The decoded frames [T, H, W, 3].",
        "The first decoded frame (the I2V condition the paper uses).",
        "The clip's caption (feed it to EmoVid Emotion Prompt to add the paper's emotion sentence).",
        "The clip's emotion label.",
        "The clip id in the dataset table.",
        "Paper brightness B (mean HSV value, 1 decimal) from the index, or measured now if the table has none.",
        "Paper colorfulness C (mean HSV saturation, 1 decimal) from the index, or measured now.",
        "Paper hue H (circular mean, integer degrees) from the index, or measured now.",
        "Frame rate of the returned frames.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dataset": (DATASET_TYPE, {"tooltip": "A dataset from EmoVid Dataset."}),
                "emotion": (["any"] + list(EMOTIONS), {"default": "any", "tooltip": "Keep only clips of this emotion."}),
                "type": (["any"] + list(SOURCE_TYPES), {"default": "any", "tooltip": "Keep only this source type."}),
                "label_source": (["any", "human", "vlm"], {"default": "any", "tooltip": "Keep only human- or VLM-labelled clips."}),
                "split": (["any", "test", "train", "none"], {"default": "any", "tooltip": "Keep only this split ('none' = clips in no split)."}),
                "mode": (MODES, {"default": "random", "tooltip": "random: by seed; balanced: position 'index' in a seed-shuffled "
                                                                  "round-robin over type × emotion; benchmark: position 'index' in the "
                                                                  "benchmark set; index: the index-th clip by id."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Seed for random and balanced modes."}),
                "index": ("INT", {"default": 0, "min": 0, "max": 10_000_000, "tooltip": "Position in the pool for balanced, benchmark and index modes."}),
                "max_frames": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip": "Keep at most this many frames (0 = all)."}),
                "skip_first": ("INT", {"default": 0, "min": 0, "max": 1000000, "tooltip": "Drop this many source frames from the start."}),
                "every_nth": ("INT", {"default": 1, "min": 1, "max": 1000, "tooltip": "Keep every n-th frame (after target_fps)."}),
                "target_fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 240.0, "step": 0.01,
                                         "tooltip": "Resample to this rate by timestamp (0 = source rate; Wan2.1 uses 16)."}),
                "width": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 16,
                                  "tooltip": "Resize + centre-crop to this width (multiple of 16; 0 with height 0 = source size)."}),
                "height": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 16,
                                   "tooltip": "Resize + centre-crop to this height (multiple of 16; 0 with width 0 = source size)."}),
                "wan_4n1": ("BOOLEAN", {"default": False, "tooltip": "Trim the frame count to the largest 4n+1 (what Wan2.1 generates)."}),
            },
        }

    _cache: OrderedDict = OrderedDict()  # decoded clips keyed by inputs + file times, shared by instances
    _CACHE_SIZE = 4

    def sample(self, dataset, emotion, type, label_source, split, mode, seed, index, max_frames, skip_first, every_nth,
               target_fps, width, height, wan_4n1):
        ds = dataset
        flt = Filter(emotions=emotion, types=type, label_sources=label_source, splits=split)
        opts = DecodeOptions(max_frames=max_frames, skip_first=skip_first, every_nth=every_nth, target_fps=target_fps,
                             width=width, height=height, wan_4n1=wan_4n1).check()
        if mode == "benchmark":
            pool, _ = apply_filter(benchmark_clips(ds.clips), flt)
        else:
            pool, _ = apply_filter(ds.clips, flt)
        if mode == "random":
            clip = sample_random(pool, 1, seed)[0]
        else:
            ordered = balanced_order(pool, seed) if mode == "balanced" else pool
            if index >= len(ordered):
                raise ValueError(f"index {index} is past the {len(ordered)} clip(s) left after the filters (mode {mode}); use 0..{len(ordered) - 1}")
            clip = ordered[index]
        path = ds.clip_file(clip)  # a missing file: the clip id, its path and "re-index", not a raw [Errno 2]
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size, ds.mtime_ns, clip.clip_id, repr(opts))
        hit = self._cache.get(key)
        if hit is None:
            decoded = decode_clip(ds, clip, opts)
            b, c, h = clip.brightness, clip.colorfulness, clip.hue
            if b is None or c is None or h is None:
                from emovid_core.dataset.indexer import measure_clip

                m = measure_clip(path)
                b, c, h = m["brightness"], m["colorfulness"], m["hue"]
            hit = (decoded.frames, decoded.fps, float(b), float(c), int(h))
            self._cache[key] = hit
            while len(self._cache) > self._CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        frames, fps, b, c, h = hit
        from emovid_core.video_io import frames_to_image

        image = frames_to_image(frames)
        return (image, image[:1].clone(), clip.caption, clip.emotion, clip.clip_id, b, c, h, float(fps))


class EmoVidDatasetStats:
    DESCRIPTION = (
        "Statistics of an EmoVid dataset: counts per emotion and type, brightness/colorfulness/hue per emotion with "
        "ANOVA (η², F, p; hue treated as circular), the share of positive emotions across brightness and "
        "colorfulness bins (the paper's Fig. 5) and the emotion transition matrix of consecutive movie clips."
    )
    CATEGORY = CATEGORY
    FUNCTION = "stats"
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("plots", "json")
    OUTPUT_TOOLTIPS = (
        "Four plots as an IMAGE batch: counts, attribute means per emotion, Fig. 5 positive share, transition heat map.",
        "All statistics as JSON.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dataset": (DATASET_TYPE, {"tooltip": "A dataset from EmoVid Dataset."}),
                "bins": ("INT", {"default": 11, "min": 2, "max": 101,
                                 "tooltip": "Bins over [0, 1] for the positive-share curves (11 = the paper's rounded values 0.0..1.0)."}),
                "consecutive_only": ("BOOLEAN", {"default": False,
                                                 "tooltip": "Markov matrix: count only segment n → n+1 (off: bridge gaps between a film's clips)."}),
            },
        }

    def stats(self, dataset, bins, consecutive_only):
        from emovid_core.dataset.plots import render_plots
        from emovid_core.dataset.stats import compute_stats, summary_lines
        from emovid_core.video_io import frames_to_image

        stats = compute_stats(dataset.clips, bins=bins, consecutive_only=consecutive_only)
        plots = render_plots(stats)
        image = frames_to_image(np.stack(list(plots.values())))
        lines = summary_lines(stats)
        return {"ui": {"text": ["\n".join(lines)]}, "result": (image, json.dumps(stats, indent=1))}


NODE_CLASS_MAPPINGS = {
    "EmoVidDataset": EmoVidDataset,
    "EmoVidSampleClip": EmoVidSampleClip,
    "EmoVidDatasetStats": EmoVidDatasetStats,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "EmoVidDataset": "EmoVid Dataset",
    "EmoVidSampleClip": "EmoVid Sample Clip",
    "EmoVidDatasetStats": "EmoVid Dataset Stats",
}
