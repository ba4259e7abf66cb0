"""Frame attribute node: a thin adapter over ``emovid_core.attributes``."""

from __future__ import annotations

from emovid_core import attributes

CATEGORY = "EmoVid/analysis"


class EmoVidFrameAttributes:
    DESCRIPTION = (
        "Measure the EmoVid paper's visual attributes of a clip: brightness B (mean HSV value), colorfulness C "
        "(mean HSV saturation) and hue H (circular mean, degrees), pooled over the pixels of frames 0, stride, "
        "2*stride, ... exactly as in the paper (Eqs. 1-3, OpenCV float HSV). Also returns per-frame curves with a "
        "temporal summary (mean, std, slope, extremes) as a JSON report and a plot of the curves."
    )
    CATEGORY = CATEGORY
    FUNCTION = "analyze"
    OUTPUT_NODE = True
    RETURN_TYPES = ("FLOAT", "FLOAT", "INT", "STRING", "IMAGE")
    RETURN_NAMES = ("brightness", "colorfulness", "hue", "report", "plot")
    OUTPUT_TOOLTIPS = (
        "Paper brightness B: mean HSV value V over the sampled frames' pixels, rounded to 1 decimal (0..1).",
        "Paper colorfulness C: mean HSV saturation S over the sampled frames' pixels, rounded to 1 decimal (0..1). "
        "Not Hasler-Suesstrunk colorfulness (that one is in the report as hasler_colorfulness).",
        "Paper hue H: circular mean of per-pixel hue in whole degrees, 0..359 (grey pixels count as hue 0, as in the paper).",
        "JSON report: clip values (rounded and raw), per-frame curves of every frame (brightness, colorfulness, hue, "
        "hue_concentration, hasler_colorfulness), their temporal summary, and the settings used.",
        "Plot of the per-frame curves with the clip values marked, as a 1-image IMAGE batch.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The clip's frames as an IMAGE batch [frames, H, W, 3] (RGBA: alpha is ignored)."}),
                "stride": ("INT", {"default": attributes.PAPER_STRIDE, "min": 1, "max": 100000,
                                   "tooltip": "Clip values pool frames 0, stride, 2*stride, ...; the paper uses 20. "
                                              "Curves always cover every frame."}),
                "fps": ("FLOAT", {"default": 16.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                  "tooltip": "Frame rate of the clip, used only to express slopes per second (Wan2.1: 16)."}),
            },
        }

    def analyze(self, images, stride, fps):
        from emovid_core.video_io import frames_to_image

        report = attributes.analyze(images, stride=stride, fps=fps)
        clip = report.clip
        plot = frames_to_image(attributes.plot_rgb(report)[None])
        return {
            "ui": {"text": [report.summary_line()]},
            "result": (clip.brightness, clip.colorfulness, clip.hue, report.to_json(), plot),
        }


NODE_CLASS_MAPPINGS = {"EmoVidFrameAttributes": EmoVidFrameAttributes}
NODE_DISPLAY_NAME_MAPPINGS = {"EmoVidFrameAttributes": "EmoVid Frame Attributes"}
