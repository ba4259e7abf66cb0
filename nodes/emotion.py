"""Emotion conditioning nodes: pick an emotion, build the paper's prompt, encode it (with blends), sweep all eight."""

from __future__ import annotations

from emovid_core import prompts
from emovid_core.emotions import EMOTIONS, INTENSITY_MAX, INTENSITY_MIN, EmotionChoice, get_emotion
from emovid_core.prompts import PAPER_TEMPLATE, WAN_NEGATIVE_PROMPT, build_prompt, parse_template, sweep_prompts

CATEGORY = "EmoVid/emotion"
EMOTION_TYPE = "EMOVID_EMOTION"
NO_SECOND = "none"

_TIPS = {
    "caption": "What happens in the video (EmoVid used the clip's VLM caption). The emotion sentence is appended "
    "after it; leading/trailing whitespace is removed.",
    "emotion": "One of Mikels' eight emotions EmoVid was trained on, in the paper's order "
    "(positive: amusement, awe, contentment, excitement; negative: anger, disgust, fear, sadness).",
    "intensity": "1 = the exact paper prompt (what the EmoVid LoRA learned). 0 = caption only, 2 = double weight on "
    "the emotion text.",
    "template": "Prompt template. Placeholders: {caption}, {emotion}, {valence} (positive/negative), {arousal} "
    "(high/low). The default is the paper's; changing it moves away from what the EmoVid LoRA learned.",
    "negative_prompt": "Base negative prompt. Default: Wan2.1's standard negative prompt (the official Wan/ComfyUI "
    "template text). Empty = no base.",
    "negative_add_opposite": "Append the four emotions of the opposite valence to the negative prompt "
    "(e.g. 'anger, disgust, fear, sadness' for a positive emotion).",
    "emotion_override": "Optional EMOVID_EMOTION from an 'EmoVid Emotion' node; when connected it replaces the "
    "emotion and intensity widgets.",
}


class _ChecksTemplate:
    @classmethod
    def VALIDATE_INPUTS(cls, template=None):
        """Checked before the graph runs, so a bad template is reported like any other invalid widget value.

        Only ``template`` is named: ComfyUI then passes just that input and still range-checks the others itself.
        """
        if template is None:  # linked from another node: checked when the node runs
            return True
        try:
            parse_template(template)
        except ValueError as exc:
            return str(exc)
        return True


def _intensity_input() -> tuple:
    return ("FLOAT", {"default": 1.0, "min": INTENSITY_MIN, "max": INTENSITY_MAX, "step": 0.05, "tooltip": _TIPS["intensity"]})


def _choice(emotion: str, intensity: float, override: EmotionChoice | None) -> EmotionChoice:
    if override is None:
        return EmotionChoice.of(emotion, intensity)
    if not isinstance(override, EmotionChoice):
        raise ValueError(f"emotion_override must come from an 'EmoVid Emotion' node, got {type(override).__name__}")
    return override


class EmoVidEmotion:
    DESCRIPTION = (
        "Pick one of EmoVid's eight emotions and an intensity. Outputs an EMOVID_EMOTION for the other EmoVid "
        "nodes and the emotion's name as text."
    )
    CATEGORY = CATEGORY
    FUNCTION = "pick"
    RETURN_TYPES = (EMOTION_TYPE, "STRING")
    RETURN_NAMES = ("emotion", "name")
    OUTPUT_TOOLTIPS = (
        "The emotion and its intensity, for the emotion_override input of the EmoVid prompt/encode nodes.",
        "The emotion's lower-case name (e.g. 'fear').",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "emotion": (list(EMOTIONS), {"default": EMOTIONS[0], "tooltip": _TIPS["emotion"]}),
                "intensity": _intensity_input(),
            }
        }

    def pick(self, emotion, intensity):
        choice = EmotionChoice.of(emotion, intensity)
        return (choice, choice.name)


class EmoVidEmotionPrompt(_ChecksTemplate):
    DESCRIPTION = (
        "Build EmoVid's prompt: the caption followed by 'The video is in the \"<emotion>\" emotion.' (the paper's "
        "template, byte-exact at intensity 1), plus the negative prompt. Connect the outputs to CLIPTextEncode. "
        "Intensity other than 1 uses ComfyUI's (text:weight) syntax on the emotion sentence."
    )
    CATEGORY = CATEGORY
    FUNCTION = "build"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("positive", "negative")
    OUTPUT_TOOLTIPS = (
        "Positive prompt text for CLIPTextEncode.",
        "Negative prompt text for CLIPTextEncode.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "caption": ("STRING", {"multiline": True, "default": "", "tooltip": _TIPS["caption"]}),
                "emotion": (list(EMOTIONS), {"default": EMOTIONS[0], "tooltip": _TIPS["emotion"]}),
                "intensity": _intensity_input(),
                "template": ("STRING", {"default": PAPER_TEMPLATE, "tooltip": _TIPS["template"]}),
                "negative_prompt": ("STRING", {"multiline": True, "default": WAN_NEGATIVE_PROMPT, "tooltip": _TIPS["negative_prompt"]}),
                "negative_add_opposite": ("BOOLEAN", {"default": False, "tooltip": _TIPS["negative_add_opposite"]}),
            },
            "optional": {
                "emotion_override": (EMOTION_TYPE, {"tooltip": _TIPS["emotion_override"]}),
            },
        }

    def build(self, caption, emotion, intensity, template, negative_prompt, negative_add_opposite, emotion_override=None):
        choice = _choice(emotion, intensity, emotion_override)
        positive = build_prompt(caption, choice.emotion, template, choice.intensity)
        # The input is named like the function; reach the function through its module.
        negative = prompts.negative_prompt(choice.emotion, add_opposite=bool(negative_add_opposite), base=negative_prompt)
        return (positive, negative)


class EmoVidEmotionEncode(_ChecksTemplate):
    DESCRIPTION = (
        "Encode EmoVid's emotion prompt with a CLIP (for Wan2.1: CLIPLoader type 'wan', umt5) into positive and "
        "negative CONDITIONING. Optionally blend a second emotion (weighted average of the two encodings). "
        "Intensity is applied on the encodings: caption-only + intensity x (emotion prompt - caption-only)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "STRING")
    RETURN_NAMES = ("positive", "negative", "positive_text")
    OUTPUT_TOOLTIPS = (
        "Positive conditioning (the emotion prompt, blended and scaled as set).",
        "Negative conditioning.",
        "The positive text(s) that were encoded, one per line (emotion prompt, second emotion, caption-only base).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip": ("CLIP", {"tooltip": "Text encoder. For Wan2.1: CLIPLoader with type 'wan' (umt5_xxl)."}),
                "caption": ("STRING", {"multiline": True, "default": "", "tooltip": _TIPS["caption"]}),
                "emotion": (list(EMOTIONS), {"default": EMOTIONS[0], "tooltip": _TIPS["emotion"]}),
                "intensity": _intensity_input(),
                "second_emotion": ([NO_SECOND, *EMOTIONS], {"default": NO_SECOND,
                    "tooltip": "Optional second emotion to blend with the first ('none' = no blend)."}),
                "blend": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                    "tooltip": "Share of the second emotion: 0 = first only, 0.5 = the mean of both, 1 = second only."}),
                "template": ("STRING", {"default": PAPER_TEMPLATE, "tooltip": _TIPS["template"]}),
                "negative_prompt": ("STRING", {"multiline": True, "default": WAN_NEGATIVE_PROMPT, "tooltip": _TIPS["negative_prompt"]}),
                "negative_add_opposite": ("BOOLEAN", {"default": False, "tooltip": _TIPS["negative_add_opposite"]
                    + " With a blend, the second emotion is never added."}),
            },
            "optional": {
                "emotion_override": (EMOTION_TYPE, {"tooltip": _TIPS["emotion_override"]}),
            },
        }

    def encode(self, clip, caption, emotion, intensity, second_emotion, blend, template, negative_prompt,
               negative_add_opposite, emotion_override=None):
        from emovid_core.conditioning import encode_emotion

        choice = _choice(emotion, intensity, emotion_override)
        second = None if second_emotion in (None, NO_SECOND) else get_emotion(second_emotion)
        enc = encode_emotion(
            clip, caption, choice.emotion, intensity=choice.intensity, template=template, second_emotion=second,
            blend=blend, negative_base=negative_prompt, negative_add_opposite=bool(negative_add_opposite),
        )
        return (enc.positive, enc.negative, "\n".join(enc.texts))


class EmoVidEmotionSweep(_ChecksTemplate):
    DESCRIPTION = (
        "One caption -> the eight EmoVid emotion prompts as a list (amusement ... sadness), plus the list of "
        "emotion names. Nodes downstream run once per item, so one graph renders the same scene in all eight."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sweep"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("prompts", "emotions")
    OUTPUT_IS_LIST = (True, True)
    OUTPUT_TOOLTIPS = (
        "Eight positive prompts, one per emotion, in the paper's order.",
        "The eight emotion names, in the same order (e.g. for file name prefixes).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "caption": ("STRING", {"multiline": True, "default": "", "tooltip": _TIPS["caption"]}),
                "intensity": _intensity_input(),
                "template": ("STRING", {"default": PAPER_TEMPLATE, "tooltip": _TIPS["template"]}),
            }
        }

    def sweep(self, caption, intensity, template):
        prompts = sweep_prompts(caption, template=template, intensity=intensity)
        return (list(prompts.values()), list(prompts.keys()))


NODE_CLASS_MAPPINGS = {
    "EmoVidEmotion": EmoVidEmotion,
    "EmoVidEmotionPrompt": EmoVidEmotionPrompt,
    "EmoVidEmotionEncode": EmoVidEmotionEncode,
    "EmoVidEmotionSweep": EmoVidEmotionSweep,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "EmoVidEmotion": "EmoVid Emotion",
    "EmoVidEmotionPrompt": "EmoVid Emotion Prompt",
    "EmoVidEmotionEncode": "EmoVid Emotion Encode",
    "EmoVidEmotionSweep": "EmoVid Emotion Sweep",
}
