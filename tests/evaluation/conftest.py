"""Fixtures for the evaluation tests: the tiny random CLIP and a planted-signal dataset.

Planted signal: the clips' colour encodes their emotion (hue = 45° × the emotion's index in the paper's order, with
per-clip jitter, pixel noise and a moving square), so a probe on random-weight CLIP features *can* learn the label
and every metric downstream has a known right answer. The sample set's own colours are only loosely emotion-tied.
"""

from __future__ import annotations

import numpy as np
import pytest

PLANTED_TRAIN_PER_CELL = 3
PLANTED_TEST_PER_CELL = 2
PLANTED_FRAMES = 5
PLANTED_SIZE = 32


def planted_frames(rng: np.random.Generator, k: int, n: int = PLANTED_FRAMES, size: int = PLANTED_SIZE) -> np.ndarray:
    import cv2

    hue = (45.0 * k + rng.normal(0, 6)) % 360
    sat, val = np.clip(rng.normal(0.7, 0.08), 0.3, 1), np.clip(rng.normal(0.7, 0.08), 0.3, 1)
    out = np.empty((n, size, size, 3), np.uint8)
    x0, y0 = rng.integers(0, size // 2, 2)
    for t in range(n):
        hsv = np.empty((size, size, 3), np.float32)
        hsv[..., 0] = hue
        hsv[..., 1] = np.clip(sat + rng.normal(0, 0.05, (size, size)), 0, 1)
        hsv[..., 2] = np.clip(val + rng.normal(0, 0.05, (size, size)), 0, 1)
        x, y = (x0 + 2 * t) % (size - 8), (y0 + t) % (size - 8)
        hsv[y:y + 8, x:x + 8, 2] *= 0.5  # a darker moving square: motion, same hue
        out[t] = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def write_planted(root, seed: int = 0, train: int = PLANTED_TRAIN_PER_CELL, test: int = PLANTED_TEST_PER_CELL):
    """A dataset whose colour encodes the emotion; split column set (train / test); returns the root."""
    from emovid_core import video_io
    from emovid_core.dataset import SOURCE_TYPES, Clip, write_table
    from emovid_core.emotions import EMOTIONS

    rng = np.random.default_rng(seed)
    clips = []
    for t in SOURCE_TYPES:
        for k, e in enumerate(EMOTIONS):
            for i in range(train + test):
                cid = f"{t[:3]}_{e}_{i:02d}"
                rel = f"{t}/{cid}.gif"
                video_io.write_video(planted_frames(rng, k), root / rel, fps=8.0, format="gif")
                clips.append(Clip(cid, rel, t, e, "human", f"A cartoon character reacts to a {e} moment.",
                                  split="test" if i >= train else "train"))
    write_table(root / "emovid_metadata.csv", clips)
    return root


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every evaluation module runs its tiny models on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def tiny_clip():
    from emovid_core.evaluation.tiny import ensure_tiny_clip

    return ensure_tiny_clip("tiny")


@pytest.fixture(scope="session")
def planted_root(tmp_path_factory):
    return write_planted(tmp_path_factory.mktemp("planted"))
