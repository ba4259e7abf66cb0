"""Scoring one clip: a classifier's prediction shaped for people (one line, JSON, a bar chart).

What the EmoVid Emotion Score node and ``emovid eval score`` call. ``intended`` (the emotion the clip was made
for) adds EA-8/EA-2 hit or miss to the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS, get_emotion, valence
from .classifiers import NOT_COMPARABLE, EmotionClassifier, Prediction, as_frames


@dataclass
class ScoreResult:
    prediction: Prediction
    intended: str | None = None

    @property
    def label(self) -> str | None:
        return self.prediction.label

    def line(self) -> str:
        p = self.prediction
        if p.label is None:
            text = f"unparsed answer {p.answer!r} (not one of the eight emotions; counted, not guessed)"
        else:
            text = f"{p.label} ({p.valence})"
            if p.probabilities is not None:
                text += f" p={float(p.probabilities[EMOTIONS.index(p.label)]):.2f}"
        if self.intended:
            ok8 = p.label == self.intended
            ok2 = p.label is not None and p.valence == valence(self.intended)
            text += f"; asked {self.intended}: EA-8 {'hit' if ok8 else 'miss'}, EA-2 {'hit' if ok2 else 'miss'}"
        return text

    def to_dict(self) -> dict:
        p = self.prediction
        return {"emotion": p.label, "valence": p.valence, "probabilities": p.probability_dict(), "answer": p.answer,
                "intended": self.intended, "comparability": NOT_COMPARABLE}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def score_frames(classifier: EmotionClassifier, frames, intended: str | None = None) -> ScoreResult:
    """Classify a clip's frames (uint8/float array or IMAGE tensor ``[T, H, W, 3|4]``)."""
    if not isinstance(classifier, EmotionClassifier):
        raise ValueError(f"classifier must be a loaded emotion classifier (EmoVid Emotion Classifier / load_classifier), "
                         f"got {type(classifier).__name__}")
    want = get_emotion(intended).name if intended and str(intended).strip().lower() not in ("", "none") else None
    return ScoreResult(classifier.classify(as_frames(frames)), want)


def score_video(classifier: EmotionClassifier, path: str | Path, intended: str | None = None) -> ScoreResult:
    from .classifiers import read_sampled

    return score_frames(classifier, read_sampled(path, classifier.frames), intended)


def chart_rgb(result: ScoreResult, width: int = 512, height: int = 288) -> np.ndarray:
    """A bar chart of the eight probabilities (VLM: the answered word at 1) as uint8 ``[H, W, 3]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = result.prediction
    vals = p.probabilities if p.probabilities is not None else np.array([1.0 if e == p.label else 0.0 for e in EMOTIONS])
    colors = ["#e8a33d" if valence(e) == "positive" else "#4a6fa5" for e in EMOTIONS]
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_subplot(111)
    bars = ax.bar(range(len(EMOTIONS)), vals, color=colors)
    if result.intended:
        bars[EMOTIONS.index(result.intended)].set_edgecolor("black")
        bars[EMOTIONS.index(result.intended)].set_linewidth(2)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=30, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability", fontsize=8)
    ax.set_title(result.line()[:90], fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb
