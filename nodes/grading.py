"""Emotion colour grading and drift correction nodes: thin adapters over ``emovid_core.grading``."""

from __future__ import annotations

from emovid_core import grading
from emovid_core.emotions import EMOTIONS

from .dataset import DATASET_TYPE

CATEGORY = "EmoVid/grading"
RETURN_TYPES = ("IMAGE", "STRING", "IMAGE")
RETURN_NAMES = ("images", "report", "plot")

_SETTINGS = {
    "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                           "tooltip": "How far to move: the goal is B + strength*(target - B) (same for C and the hue "
                                      "shift); 0 returns the frames unchanged."}),
    "max_hue_shift": ("FLOAT", {"default": grading.DEFAULT_MAX_HUE_SHIFT, "min": 0.0, "max": 180.0, "step": 1.0,
                                "tooltip": "Cap on the hue rotation in degrees (30 keeps skin and skies plausible; "
                                           "large rotations look wrong)."}),
    "protect_skin": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05,
                               "tooltip": "Hold skin-like pixels (orange hues, moderate saturation) back from the grade: "
                                          "0 = off, 1 = keep them as they are. The gammas are solved with this "
                                          "protection included; the report says how close the clip came."}),
    "smooth_sigma": ("FLOAT", {"default": grading.DEFAULT_SIGMA, "min": 0.0, "max": 100.0, "step": 0.5,
                               "tooltip": "Per-frame mode only: Gaussian smoothing of the per-frame grade over time, "
                                          "in frames (0 = none). Higher is steadier."}),
}


class EmoVidEmotionGrade:
    DESCRIPTION = (
        "Colour-grade a clip toward an emotion's look: brightness (mean V), colorfulness (mean S) and hue (circular "
        "mean) moved to the per-emotion means of your dataset (connect EmoVid Dataset Stats' json or an EmoVid "
        "Dataset), to a reference image/clip's measured values, or to values typed in. Gamma curves on V and S (no "
        "clipping: black and white stay put) and a capped hue rotation, solved in a closed loop so the measured "
        "clip values (the paper's Eqs. 1-3) land within 0.01 of the goal. Per-clip mode is flicker-free; per-frame "
        "mode grades each frame and smooths over time. Returns the graded frames, a report and a before/after plot."
    )
    CATEGORY = CATEGORY
    FUNCTION = "grade"
    OUTPUT_NODE = True
    RETURN_TYPES = RETURN_TYPES
    RETURN_NAMES = RETURN_NAMES
    OUTPUT_TOOLTIPS = (
        "The graded frames (same size; alpha carried over).",
        "Before / after / goal per attribute, the gammas, the hue shift and how close the clip came.",
        "Per-frame brightness, colorfulness and hue before (top) and after (bottom) grading.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The clip's frames as an IMAGE batch [frames, H, W, 3|4]."}),
                "emotion": (["none"] + list(EMOTIONS), {"default": "none",
                                                        "tooltip": "The emotion whose look to grade toward, taken from the "
                                                                   "connected statistics or dataset ('none' with a reference "
                                                                   "or typed targets)."}),
                **_SETTINGS,
                "mode": (list(grading.MODES), {"default": "clip",
                                               "tooltip": "clip: one grade for the whole clip (no flicker); frame: each "
                                                          "frame toward the goal, smoothed over time (for clips whose "
                                                          "content changes)."}),
            },
            "optional": {
                "stats": ("STRING", {"forceInput": True,
                                     "tooltip": "The json output of EmoVid Dataset Stats (per-emotion means of your dataset)."}),
                "dataset": (DATASET_TYPE, {"tooltip": "An EmoVid Dataset: its per-emotion means are computed here."}),
                "reference": ("IMAGE", {"tooltip": "A reference image or clip: grade toward its measured B/C/H instead."}),
                "brightness": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0, "step": 0.01,
                                         "tooltip": "Typed-in target brightness 0..1 (replaces the emotion's); -1 = not given."}),
                "colorfulness": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0, "step": 0.01,
                                           "tooltip": "Typed-in target colorfulness 0..1 (replaces the emotion's); -1 = not given."}),
                "hue": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 360.0, "step": 1.0,
                                  "tooltip": "Typed-in target hue in degrees 0..360 (replaces the emotion's); -1 = not given."}),
            },
        }

    def grade(self, images, emotion, strength, max_hue_shift, protect_skin, smooth_sigma, mode, stats=None, dataset=None,
              reference=None, brightness=-1.0, colorfulness=-1.0, hue=-1.0):
        out, report = grading.grade_inputs(images, emotion=emotion, stats=stats, dataset=dataset, reference=reference,
                                           brightness=brightness, colorfulness=colorfulness, hue=hue, strength=strength,
                                           max_hue_shift=max_hue_shift, protect_skin=protect_skin, mode=mode,
                                           smooth_sigma=smooth_sigma)
        return grading.node_outputs(out, report)


class EmoVidDriftCorrect:
    DESCRIPTION = (
        "Correct colour drift in long or chained generations: keep every frame's brightness, colorfulness and hue on "
        "those of a reference frame of the clip (default the first) or, when a reference clip is connected, on that "
        "clip's per-frame curves. Per-frame gamma curves on V and S (no clipping) and a capped hue rotation, solved "
        "in a closed loop; returns the corrected frames, a report and a before/after plot."
    )
    CATEGORY = CATEGORY
    FUNCTION = "correct"
    OUTPUT_NODE = True
    RETURN_TYPES = RETURN_TYPES
    RETURN_NAMES = RETURN_NAMES
    OUTPUT_TOOLTIPS = (
        "The corrected frames (same size; alpha carried over).",
        "Before / after per attribute, the spread around the reference, gammas and hue shifts.",
        "Per-frame brightness, colorfulness and hue before (top) and after (bottom) correction.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The clip's frames as an IMAGE batch [frames, H, W, 3|4]."}),
                "reference_frame": ("INT", {"default": 0, "min": 0, "max": 1000000,
                                            "tooltip": "The frame of this clip whose look every frame keeps (0 = the "
                                                       "first); ignored when a reference clip is connected."}),
                "correct_hue": ("BOOLEAN", {"default": True, "tooltip": "Also keep the hue on the reference (capped rotation)."}),
                **{k: _SETTINGS[k] for k in ("strength", "max_hue_shift", "protect_skin")},
                "smooth_sigma": (_SETTINGS["smooth_sigma"][0], {**_SETTINGS["smooth_sigma"][1], "default": 0.0,
                                                                "tooltip": "Gaussian smoothing of the per-frame "
                                                                           "correction over time, in frames (0 = none: "
                                                                           "every frame exactly on the reference)."}),
            },
            "optional": {
                "reference": ("IMAGE", {"tooltip": "A reference clip: follow its per-frame curves (resampled to this "
                                                   "clip's length) instead of one frame."}),
            },
        }

    def correct(self, images, reference_frame, correct_hue, strength, max_hue_shift, protect_skin, smooth_sigma, reference=None):
        out, report = grading.drift_inputs(images, reference_frame=reference_frame, reference=reference, hue=correct_hue,
                                           strength=strength, max_hue_shift=max_hue_shift, protect_skin=protect_skin,
                                           smooth_sigma=smooth_sigma)
        return grading.node_outputs(out, report)


NODE_CLASS_MAPPINGS = {"EmoVidEmotionGrade": EmoVidEmotionGrade, "EmoVidDriftCorrect": EmoVidDriftCorrect}
NODE_DISPLAY_NAME_MAPPINGS = {"EmoVidEmotionGrade": "EmoVid Emotion Grade", "EmoVidDriftCorrect": "EmoVid Drift Correct"}
