"""Dataset nodes: open an EmoVid-format dataset, draw a clip from it, show its statistics.

Thin adapters over ``emovid_core.dataset``; the ``EMOVID_DATASET`` value passed between nodes is the core's
``Dataset`` object (root, table path, clips sorted by id).
"""

from __future__ import annotations

import json
from pathlib import Path

from emovid_core import runtime
from emovid_core.dataset import PICK_MODES, SOURCE_TYPES, Filter, load_dataset, pick_clip
from emovid_core.emotions import EMOTIONS
from emovid_core.video_io import DecodeOptions, frames_to_image

from ._inputs import DECODE_INPUTS, WAN_SIZE_INPUTS, inputs

CATEGORY = "EmoVid/dataset"
DATASET_TYPE = "EMOVID_DATASET"
MODES = list(PICK_MODES)


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
                **inputs(DECODE_INPUTS, "max_frames", "skip_first", "every_nth", "target_fps", "width", "height", "wan_4n1",
                         width=WAN_SIZE_INPUTS["width"], height=WAN_SIZE_INPUTS["height"]),
            },
        }

    def sample(self, dataset, emotion, type, label_source, split, mode, seed, index, max_frames, skip_first, every_nth,
               target_fps, width, height, wan_4n1):
        filters = Filter(emotions=emotion, types=type, label_sources=label_source, splits=split)
        options = DecodeOptions(max_frames=max_frames, skip_first=skip_first, every_nth=every_nth, target_fps=target_fps,
                                width=width, height=height, wan_4n1=wan_4n1)
        picked = pick_clip(dataset, filters, mode, seed, index, options)
        image, clip = frames_to_image(picked.frames), picked.clip
        return (image, image[:1].clone(), clip.caption, clip.emotion, clip.clip_id, picked.brightness, picked.colorfulness,
                picked.hue, float(picked.fps))


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
        from emovid_core.dataset.plots import stats_report

        report = stats_report(dataset.clips, bins=bins, consecutive_only=consecutive_only)
        image = frames_to_image(report.plots)
        return {"ui": {"text": ["\n".join(report.lines)]}, "result": (image, json.dumps(report.stats, indent=1))}


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
