"""The ``vlm`` backend on tiny random LLaVA folders built in code (CLIP vision + Llama text + processor + chat template,
loaded by transformers' AutoModelForImageTextToText): one that always answers "fear" and one that answers gibberish,
which must be counted as unparsed and left out of EA-2/EA-8, never guessed."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from emovid_core.dataset import load_dataset
from emovid_core.evaluation.classifiers import load_classifier
from emovid_core.evaluation.tiny import write_tiny_vlm
from emovid_core.host.cli import main


@pytest.fixture(scope="module")
def test_videos(planted_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("vlm_videos")
    ds = load_dataset(planted_root)
    for c in ds.clips:
        if c.split == "test":
            (out / f"{c.clip_id}.gif").symlink_to(ds.clip_file(c))
    return out


def test_a_vlm_that_answers_fear_is_scored_as_fear(planted_root, test_videos, tmp_path):
    folder = write_tiny_vlm(tmp_path / "vlm_fear", answer="fear")
    clf = load_classifier(f"vlm:{folder}", device="cpu")
    pred = clf.classify((np.random.default_rng(0).random((6, 40, 56, 3)) * 255).astype(np.uint8))
    assert (pred.label, pred.answer, pred.probabilities) == ("fear", "fear", None)
    out = tmp_path / "t3"
    assert main(["eval", "table3", "--dataset", str(planted_root), "--classifier", f"vlm:{folder}", "--videos", str(test_videos),
                 "--out", str(out), "--device", "cpu"]) == 0
    row = json.loads((out / "table3.json").read_text())["rows"][0]
    assert (row["scored"], row["unparsed"]) == (48, 0)
    assert row["metrics"]["ea8"] == pytest.approx(100 * 6 / 48)  # the 6 fear clips
    assert row["metrics"]["ea2"] == pytest.approx(50.0)  # every negative clip
    with open(out / "per_clip.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["answer"] for r in rows} == {"fear"} and all(r["p_fear"] == "" for r in rows)


def test_gibberish_answers_are_counted_as_unparsed_not_guessed(planted_root, test_videos, tmp_path):
    folder = write_tiny_vlm(tmp_path / "vlm_random", answer=None)
    out = tmp_path / "t3"
    assert main(["eval", "table3", "--dataset", str(planted_root), "--classifier", f"vlm:{folder}", "--videos", str(test_videos),
                 "--out", str(out), "--device", "cpu"]) == 0
    row = json.loads((out / "table3.json").read_text())["rows"][0]
    assert (row["clips"], row["scored"], row["unparsed"]) == (48, 0, 48)
    assert row["metrics"]["ea8"] is None and row["not_measured"]["ea8"] == "no clip got a parsable prediction"
    assert "48 unparsed answers (left out, never guessed)" in (out / "table3.md").read_text()
