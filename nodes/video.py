"""Video load/save nodes: thin adapters over ``emovid_core.video_io``."""

from __future__ import annotations

from pathlib import Path

from emovid_core import runtime, video_io

from ._inputs import DECODE_INPUTS, inputs

CATEGORY = "EmoVid/video"
VIDEO_KIND = "emovid_videos"  # ComfyUI folder kind for videos kept outside the input folder
_REFUSED = (ValueError, FileNotFoundError, runtime.PathNotAllowed)


def _input_videos() -> list[str]:
    """The 'video' list: the input folder's videos, then those in the emovid_videos folders (extra_model_paths.yaml)."""
    names = dict.fromkeys(video_io.video_files(runtime.input_directory()))
    for folder in runtime.model_folders(VIDEO_KIND):
        names.update(dict.fromkeys(video_io.video_files(folder)))
    return list(names)


def _resolve(video: str, path: str = "") -> Path:
    """The file to load: ``path`` when given, else ``video``; absolute, or relative to the input folder or an
    emovid_videos folder. In a ComfyUI server it must lie inside the server's folders (runtime.resolve_user_path)."""
    folder = runtime.input_directory()
    chosen = (path or "").strip() or (video or "").strip()
    if not chosen:
        raise ValueError("no video chosen: pick a file in the 'video' list or set 'path' to a video file or image folder")
    # ComfyUI annotates names picked from other folders: "clip.mp4 [output]" (e.g. a dragged-in result).
    if chosen.endswith(" [output]"):
        chosen, folder = chosen[: -len(" [output]")], runtime.output_directory()
    elif chosen.endswith(" [input]"):
        chosen = chosen[: -len(" [input]")]
    p = runtime.resolve_user_path(VIDEO_KIND, chosen, relative_to=[folder], what="video")
    if not p.exists():
        raise FileNotFoundError(f"video {str(p)!r} not found; put it in the input folder {str(folder)!r} or set 'path' to an absolute path")
    return p


class EmoVidLoadVideo:
    DESCRIPTION = (
        "Load a video (mp4/webm/mov/mkv/avi, GIF, animated WebP) or a folder of images as IMAGE frames. "
        "Frames are picked by timestamp for a target fps, then every n-th, then capped; optional resize + centre "
        "crop and a 4n+1 trim for Wan2.1. Transparent frames are composited onto black."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE", "FLOAT", "INT", "STRING")
    RETURN_NAMES = ("frames", "fps", "frame_count", "info")
    OUTPUT_TOOLTIPS = (
        "The selected frames as an IMAGE batch [T, H, W, 3].",
        "Frame rate of the returned frames (target fps, or the source rate, divided by every_nth).",
        "Number of frames returned.",
        "One-line summary of the source and of what was taken from it.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video": (_input_videos(), {
                    "video_upload": True,
                    "emovid_dynamic_list": True,
                    "tooltip": "A video in ComfyUI's input folder (upload one with the button) or in an emovid_videos folder "
                               "(extra_model_paths.yaml). Ignored when 'path' is set.",
                }),
                **inputs(DECODE_INPUTS, "max_frames", "skip_first", "every_nth", "target_fps", "width", "height", "crop",
                         "wan_4n1"),
            },
            "optional": {
                "path": ("STRING", {"default": "",
                                    "tooltip": "Overrides 'video': a file or image folder, absolute or relative to the input folder (handy "
                                               "headless). On a ComfyUI server it must lie in its input/output/temp/models "
                                               "or emovid_videos folders (EMOVID_ALLOW_ANY_PATH=1 lifts this)."}),
            },
        }

    def load(self, video, max_frames, skip_first, every_nth, target_fps, width, height, crop, wan_4n1, path=""):
        options = video_io.DecodeOptions(max_frames=max_frames, skip_first=skip_first, every_nth=every_nth,
                                         target_fps=target_fps, width=width, height=height, crop=crop, wan_4n1=wan_4n1)
        loaded = video_io.load_video(_resolve(video, path), options)
        return (video_io.frames_to_image(loaded.frames), loaded.fps, len(loaded.frames), loaded.summary())

    @classmethod
    def IS_CHANGED(cls, video, path="", **kwargs):
        # The selection inputs are part of ComfyUI's cache key already; this covers the file changing on disk.
        try:
            p = _resolve(video, path)
        except _REFUSED:
            return "missing"
        return video_io.source_stamp(p)

    @classmethod
    def VALIDATE_INPUTS(cls, video, path=""):
        # Naming 'video' here also makes ComfyUI skip its own list check, so a workflow that sets 'path'
        # runs even when the chosen list entry is not on this machine.
        try:
            _resolve(video, path)
        except _REFUSED as exc:
            return str(exc)
        return True


class EmoVidSaveVideo:
    DESCRIPTION = (
        "Save IMAGE frames as a video in the output folder: mp4 (H.264, plays in browsers), webm (VP9), GIF or "
        "animated WebP (both keep RGBA transparency). Files are numbered like ComfyUI's (prefix_00001.mp4) and "
        "previewed on the node."
    )
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Absolute path of the saved file.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Frames to save, [T, H, W, 3] (or 4 channels = RGBA)."}),
                "fps": ("FLOAT", {"default": 16.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                  "tooltip": "Playback frame rate. Wan2.1 generates at 16 fps."}),
                "filename_prefix": ("STRING", {"default": "EmoVid/video",
                                               "tooltip": "File name prefix inside the output folder; '/' makes sub-folders. A counter is appended."}),
                "format": (list(video_io.WRITE_FORMATS), {"default": "mp4",
                                                          "tooltip": "mp4 = H.264 (widest support), webm = VP9, gif/webp = animated images (keep transparency)."}),
            },
            "optional": {
                "quality": ("INT", {"default": 80, "min": 1, "max": 100,
                                    "tooltip": "1..100, higher is better and bigger. mp4/webm map it to CRF; webp uses it directly (100 = lossless); gif ignores it."}),
            },
        }

    def save(self, images, fps, filename_prefix, format, quality=80):
        saved = video_io.save_video(images, filename_prefix, fps, format, quality=quality)
        entry = saved.ui_entry()
        return {
            "ui": {
                # What core SaveVideo / SaveAnimatedWEBP return: the frontend previews "images" entries and plays
                # them as video when "animated" is true (by file extension: <video> for mp4/webm, <img> for gif/webp).
                "images": [entry],
                "animated": [True],
                # What VideoHelperSuite's Video Combine returns; headless clients written for VHS look here.
                "gifs": [{**entry, "frame_rate": saved.fps}],
                "text": [saved.summary()],
            },
            "result": (str(saved.path),),
        }


NODE_CLASS_MAPPINGS = {"EmoVidLoadVideo": EmoVidLoadVideo, "EmoVidSaveVideo": EmoVidSaveVideo}
NODE_DISPLAY_NAME_MAPPINGS = {"EmoVidLoadVideo": "EmoVid Load Video", "EmoVidSaveVideo": "EmoVid Save Video"}
