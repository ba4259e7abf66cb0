"""Measuring emotion: pluggable emotion classifiers (``clip`` zero-shot, ``probe`` on CLIP vision features, ``vlm``),
the paper's Table 3 metrics (EA-2, EA-8, CLIP score, SD score, flicker, FVD) and its protocol end to end.

See docs/evaluation.md. Heavy modules (torch, transformers, matplotlib) are imported by the functions that need them.
"""

from .classifiers import (
    BACKENDS,
    CLASSIFIER_TYPE,
    NOT_COMPARABLE,
    ClassifierSpec,
    EmotionClassifier,
    Prediction,
    load_classifier,
    load_encoder,
    parse_vlm_answer,
)
from .metrics import clip_score, confusion_matrix, ea2, ea8, flicker, frechet_distance, sd_score

__all__ = [
    "BACKENDS", "CLASSIFIER_TYPE", "NOT_COMPARABLE", "ClassifierSpec", "EmotionClassifier", "Prediction", "load_classifier",
    "load_encoder", "parse_vlm_answer", "clip_score", "confusion_matrix", "ea2", "ea8", "flicker", "frechet_distance", "sd_score",
]
