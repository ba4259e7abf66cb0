"""Table 3 metrics against numbers worked out by hand: EA-2/EA-8 on a small confusion matrix, flicker on clips with
known frame differences, CLIP/SD score cosines, the Fréchet distance, and the strict VLM answer parser."""

from __future__ import annotations

import numpy as np
import pytest

from emovid_core.emotions import EMOTIONS
from emovid_core.evaluation import metrics
from emovid_core.evaluation.classifiers import parse_vlm_answer, sample_indices

# (asked for, predicted): 10 clips, one VLM answer unparsed (None).
PAIRS = [
    ("amusement", "amusement"), ("amusement", "amusement"), ("amusement", "awe"),  # EA-8 2/3, EA-2 3/3
    ("fear", "fear"), ("fear", "anger"), ("fear", "amusement"),  # EA-8 1/3, EA-2 2/3
    ("sadness", "contentment"), ("sadness", "sadness"),  # EA-8 1/2, EA-2 1/2
    ("awe", "excitement"), ("awe", None),  # EA-8 0/1, EA-2 1/1, one unparsed
]


def test_ea2_ea8_confusion_and_per_emotion_accuracy_by_hand():
    true, pred = zip(*PAIRS)
    m = metrics.confusion_matrix(true, pred)
    assert m.sum() == 9  # the unparsed answer is left out, not guessed
    a, aw, fe, sa = (EMOTIONS.index(e) for e in ("amusement", "awe", "fear", "sadness"))
    assert m[a, a] == 2 and m[a, aw] == 1 and m[fe, EMOTIONS.index("anger")] == 1 and m[sa, EMOTIONS.index("contentment")] == 1
    assert metrics.ea8(m) == pytest.approx(100 * 4 / 9)
    assert metrics.ea2(m) == pytest.approx(100 * 7 / 9)
    acc = metrics.per_emotion_accuracy(m)
    assert acc["amusement"] == pytest.approx(200 / 3) and acc["fear"] == pytest.approx(100 / 3)
    assert acc["sadness"] == 50 and acc["awe"] == 0 and acc["anger"] is None
    s = metrics.summarize(true, pred)
    assert (s["clips"], s["scored"], s["unparsed"]) == (10, 9, 1)
    assert metrics.ea8(np.zeros((8, 8), int)) is None and metrics.ea2(np.zeros((8, 8), int)) is None


def test_flicker_on_clips_with_known_frame_differences():
    h = w = 6
    alternating = np.stack([np.full((h, w, 3), v, np.uint8) for v in (0, 51, 0, 51, 0)])
    assert metrics.flicker(alternating) == pytest.approx(51 / 255)  # every step changes every value by 51
    ramp = np.stack([np.full((h, w, 3), 3 * t, np.uint8) for t in range(9)])
    assert metrics.flicker(ramp) == pytest.approx(3 / 255)
    half = np.zeros((3, h, w, 3), np.uint8)
    half[1, :, : w // 2] = 255  # frame 1 differs from 0 and 2 on half the pixels
    assert metrics.flicker(half) == pytest.approx(0.5)
    assert metrics.flicker(np.repeat(alternating[:1], 4, axis=0)) == 0.0
    assert metrics.flicker(alternating[:1]) is None  # one frame: no frame pair
    assert metrics.flicker(alternating.astype(np.float32) / 255) == pytest.approx(51 / 255)  # float 0..1 gives the same
    with pytest.raises(ValueError, match="frames have shape"):
        metrics.flicker(alternating[0])


def test_clip_and_sd_scores_are_mean_cosines():
    e = np.eye(3)
    frames = np.stack([e[0], e[1], (e[0] + e[1]) / np.sqrt(2)])
    assert metrics.clip_score(frames, e[0]) == pytest.approx((1 + 0 + 1 / np.sqrt(2)) / 3)
    assert metrics.sd_score(frames, e[0]) == pytest.approx((0 + 1 / np.sqrt(2)) / 2)  # frames 1.. only
    assert metrics.sd_score(frames[:1], e[0]) is None


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([1.0, -2.0, 0.0, 0.5])
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(float((shift ** 2).sum()), rel=1e-6)  # same covariance
    # b = 2a: |mu|^2 from the means, tr(S) + tr(4S) - 2 tr(2S) = tr(S) from the covariances
    expected = float((a.mean(0) ** 2).sum() + np.trace(np.cov(a, rowvar=False)))
    assert metrics.frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="Fréchet distance needs"):
        metrics.frechet_distance(a[:1], a)


@pytest.mark.parametrize("answer, parsed", [
    ("fear", "fear"), (" Fear.", "fear"), ('"Awe"', "awe"), ("**sadness**", "sadness"), ("anger\n", "anger"),
    ("scared", None), ("fear and anger", None), ("The video evokes fear.", None), ("", None), ("neutral", None),
])
def test_vlm_answers_are_parsed_strictly(answer, parsed):
    assert parse_vlm_answer(answer) == parsed


def test_frame_sampling_spreads_over_the_clip():
    assert sample_indices(81, 8) == [0, 11, 23, 34, 46, 57, 69, 80]
    assert sample_indices(5, 8) == [0, 1, 2, 3, 4]
    assert sample_indices(10, 1) == [5]
    with pytest.raises(ValueError):
        sample_indices(0, 8)
