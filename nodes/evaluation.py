"""Emotion classifier nodes: a loader and a scorer, thin adapters over ``emovid_core.evaluation``."""

from __future__ import annotations

from emovid_core.evaluation.classifiers import BACKENDS, CLASSIFIER_TYPE, DEFAULT_FRAMES, MODEL_KIND, NOT_COMPARABLE

CATEGORY = "EmoVid/evaluation"
DEVICES = ["auto", "cpu", "cuda"]


class EmoVidEmotionClassifier:
    DESCRIPTION = (
        "Load an emotion classifier from local files (nothing is downloaded): 'clip' = zero-shot with a transformers CLIP "
        "folder over eight emotion prompts; 'probe' = a linear probe trained by `emovid eval train-probe` on CLIP vision "
        "features (works with ComfyUI's clip_vision_h.safetensors); 'vlm' = a local vision-language model asked for one of "
        "the eight words. Loaded once and reused. " + NOT_COMPARABLE
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (CLASSIFIER_TYPE, "STRING")
    RETURN_NAMES = ("classifier", "info")
    OUTPUT_TOOLTIPS = (
        "The loaded classifier, for EmoVid Emotion Score.",
        "One line: backend, files and frames per clip.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "backend": (list(BACKENDS), {"default": "probe", "tooltip": "clip: zero-shot with a full CLIP folder (text + vision). "
                            "probe: a probe .safetensors from `emovid eval train-probe`. vlm: a vision-language model folder."}),
                "model": ("STRING", {"default": "", "tooltip": f"clip/vlm: a model folder; probe: the probe .safetensors file (its "
                          f".json beside it). A name inside models/{MODEL_KIND} or an absolute path."}),
                "vision": ("STRING", {"default": "", "tooltip": "probe only: the CLIP vision model the probe was trained on, e.g. "
                           "clip_vision_h.safetensors in models/clip_vision; empty = the one recorded in the probe's JSON."}),
                "frames": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "Frames per clip, spread evenly over it; 0 = the "
                           f"backend's default ({DEFAULT_FRAMES} for clip and probe, 4 for vlm; a probe keeps its training value)."}),
                "device": (DEVICES, {"default": "auto", "tooltip": "auto = the first CUDA GPU when there is one, else CPU."}),
            }
        }

    def load(self, backend, model, vision, frames, device):
        from emovid_core.evaluation.classifiers import load_classifier

        clf = load_classifier(f"{backend}:{model}", vision=vision or None, frames=frames or None, device=device)
        return (clf, clf.describe())


class EmoVidEmotionScore:
    DESCRIPTION = (
        "Classify a clip's frames with a loaded emotion classifier: the top emotion, its valence, the eight probabilities as "
        "JSON and a bar chart. Set 'intended' to the emotion the clip was made for to see EA-8/EA-2 hit or miss (a list "
        "of clips, e.g. the Emotion Sweep's eight videos, is scored one by one). " + NOT_COMPARABLE
    )
    CATEGORY = CATEGORY
    FUNCTION = "score"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING", "STRING", "IMAGE")
    RETURN_NAMES = ("emotion", "valence", "probabilities", "chart")
    OUTPUT_TOOLTIPS = (
        "The predicted emotion (one of the eight), or 'unparsed' when a VLM answered something else.",
        "positive or negative (the EA-2 split), or 'unparsed'.",
        "JSON: the eight probabilities in the paper's order (null for vlm), the raw VLM answer, the intended emotion.",
        "A bar chart of the eight probabilities as a 1-image IMAGE batch.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "classifier": (CLASSIFIER_TYPE, {"tooltip": "A classifier from EmoVid Emotion Classifier."}),
                "images": ("IMAGE", {"tooltip": "The clip's frames as an IMAGE batch [frames, H, W, 3] (RGBA: alpha is ignored)."}),
                "intended": ("STRING", {"default": "", "tooltip": "The emotion the clip was made for (one of the eight; link the "
                             "Emotion Sweep's 'emotions' output here); adds EA-8/EA-2 hit or miss to the summary. Empty or "
                             "'none' = just classify."}),
            }
        }

    def score(self, classifier, images, intended):
        from emovid_core.evaluation.scoring import chart_rgb, score_frames
        from emovid_core.video_io import frames_to_image

        res = score_frames(classifier, images, intended)
        chart = frames_to_image(chart_rgb(res)[None])
        label = res.label or "unparsed"
        return {"ui": {"text": [res.line()]}, "result": (label, res.prediction.valence or "unparsed", res.to_json(), chart)}


NODE_CLASS_MAPPINGS = {"EmoVidEmotionClassifier": EmoVidEmotionClassifier, "EmoVidEmotionScore": EmoVidEmotionScore}
NODE_DISPLAY_NAME_MAPPINGS = {"EmoVidEmotionClassifier": "EmoVid Emotion Classifier", "EmoVidEmotionScore": "EmoVid Emotion Score"}
