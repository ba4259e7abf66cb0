"""Table 3's metrics, each defined here exactly (the paper names most of them but prints no formula).

- **EA-8** = 100 × (clips whose predicted emotion is the asked-for emotion) / (clips with a prediction).
- **EA-2** = 100 × (clips whose predicted emotion has the asked-for emotion's valence) / (clips with a prediction);
  the valence split is the Mikels/EmoSet 4 + 4 (:mod:`emovid_core.emotions`).
  Clips without a prediction (a VLM answer that is not one of the eight words) are left out of both and counted
  as ``unparsed``; they are never guessed.
- **Confusion matrix** ``[true, predicted]`` over the eight emotions in the paper's order; per-emotion accuracy
  is its diagonal over its row sums.
- **Temporal flicker** (ours; lower is better): the mean absolute difference between consecutive frames,
  averaged over pixels and RGB channels, with 0..255 values divided by 255:
  ``mean_t mean_pixels |x[t+1] - x[t]| / 255``. VBench's temporal-flickering score is ``(255 - that mean) / 255``
  (higher is better); the paper reports a lower-is-better number, so we report ``1 - VBench``. A clip of one
  frame has no flicker (None).
- **CLIP score** (Hessel et al. 2021, T2V): the mean over the classified frames of the cosine between the frame's
  CLIP image embedding and the prompt's CLIP text embedding. Raw cosine (no ``2.5 × max(·, 0)`` rescaling), which
  is the scale of the paper's 0.29-0.30.
- **SD score** (I2V; EvalCrafter's "video vs its first frame" as the paper describes it): the mean over frames
  1.. of the cosine between the frame's CLIP image embedding and that of the condition image (the benchmark
  clip's first frame).
- **FVD** (content-debiased variant cited; feature network not stated): the Fréchet distance between Gaussians
  fitted to per-video features of the generated and the real benchmark videos, with the feature network the
  user gives. Values depend on that network; they are comparable only between rows scored with the same one.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..emotions import EMOTIONS, valence


def confusion_matrix(true: Sequence[str], predicted: Sequence[str | None]) -> np.ndarray:
    """8×8 counts ``[true, predicted]`` (paper order); pairs with no prediction are skipped."""
    m = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true labels but {len(predicted)} predictions")
    for t, p in zip(true, predicted):
        if p is None:
            continue
        m[EMOTIONS.index(t), EMOTIONS.index(p)] += 1
    return m


def ea8(matrix: np.ndarray) -> float | None:
    """EA-8 in % from a confusion matrix (None when it is empty)."""
    n = int(matrix.sum())
    return 100.0 * float(np.trace(matrix)) / n if n else None


def ea2(matrix: np.ndarray) -> float | None:
    """EA-2 in % from a confusion matrix: the mass whose predicted valence equals the true valence."""
    n = int(matrix.sum())
    if not n:
        return None
    same = np.array([[valence(t) == valence(p) for p in EMOTIONS] for t in EMOTIONS])
    return 100.0 * float(matrix[same].sum()) / n


def per_emotion_accuracy(matrix: np.ndarray) -> dict[str, float | None]:
    rows = matrix.sum(1)
    return {e: (100.0 * float(matrix[i, i]) / int(rows[i]) if rows[i] else None) for i, e in enumerate(EMOTIONS)}


def flicker(frames: np.ndarray) -> float | None:
    """Temporal flicker of uint8 (0..255) or float (0..1) frames ``[T, H, W, C]``; see the module doc."""
    arr = np.asarray(frames)
    if arr.ndim != 4:
        raise ValueError(f"frames have shape {list(arr.shape)}; expected [frames, height, width, channels]")
    if len(arr) < 2:
        return None
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    arr = arr[..., :3]
    total = 0.0
    for t in range(len(arr) - 1):  # frame pairs one at a time: no [T, H, W, C] float copy of a long clip
        total += float(np.abs(arr[t + 1].astype(np.float32) - arr[t].astype(np.float32)).mean())
    return total / (len(arr) - 1) / scale


def clip_score(image_embeds: np.ndarray, text_embed: np.ndarray) -> float:
    """Mean cosine between normalised frame embeddings ``[T, D]`` and one normalised text embedding ``[D]``."""
    return float(np.mean(np.asarray(image_embeds) @ np.asarray(text_embed)))


def sd_score(image_embeds: np.ndarray, reference_embed: np.ndarray) -> float | None:
    """Mean cosine between frames 1.. (normalised ``[T, D]``) and the condition image's normalised embedding."""
    e = np.asarray(image_embeds)
    if len(e) < 2:
        return None
    return float(np.mean(e[1:] @ np.asarray(reference_embed)))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` (``[N, D]`` each, N ≥ 2)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"Fréchet distance needs two [N>=2, D] feature sets of the same D, got {list(a.shape)} and {list(b.shape)}")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    s1, s2 = np.atleast_2d(s1), np.atleast_2d(s2)
    # tr(sqrt(s1 s2)) = sum of sqrt of the eigenvalues of sqrt(s1) s2 sqrt(s1), which is symmetric PSD.
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    tr_covmean = float(np.sqrt(np.clip(inner, 0, None)).sum())
    # Rounding can leave a tiny negative for (near) identical sets; a distance is never below 0.
    return max(0.0, float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean))


def summarize(true: Sequence[str], predicted: Sequence[str | None]) -> dict:
    """EA-2, EA-8, the confusion matrix, per-emotion accuracy and counts for one row of Table 3."""
    m = confusion_matrix(true, predicted)
    return {"ea2": ea2(m), "ea8": ea8(m), "confusion": m.tolist(), "per_emotion_accuracy": per_emotion_accuracy(m),
            "clips": len(true), "scored": int(m.sum()), "unparsed": sum(1 for p in predicted if p is None)}
