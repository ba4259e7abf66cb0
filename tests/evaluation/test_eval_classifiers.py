"""The classifier backends on a tiny random CLIP built in code: zero-shot, the probe (from a CLIP folder and from a
ComfyUI-style clip_vision single file), loading once, local paths through the model folders, the probe file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovid_core import runtime
from emovid_core.emotions import EMOTIONS
from emovid_core.evaluation import classifiers, probe
from emovid_core.evaluation.classifiers import ClassifierSpec, load_classifier, load_encoder
from emovid_core.evaluation.tiny import export_clip_vision_file


def _frames(seed=0, n=10, h=40, w=56):
    return (np.random.default_rng(seed).random((n, h, w, 3)) * 255).astype(np.uint8)


def test_clip_zero_shot_gives_eight_probabilities_and_is_loaded_once(tiny_clip):
    clf = load_classifier(f"clip:{tiny_clip}")
    assert load_classifier(f"clip:{tiny_clip}") is clf  # loaded once, reused
    assert load_classifier(f"clip:{tiny_clip}", fresh=True) is not clf
    pred = clf.classify(_frames())
    assert pred.probabilities.shape == (8,) and pred.probabilities.sum() == pytest.approx(1.0)
    assert pred.label == EMOTIONS[int(pred.probabilities.argmax())] and pred.valence in ("positive", "negative")
    assert clf.prompts[6] == "a video frame that evokes fear."
    # An IMAGE tensor (float 0..1, RGBA) classifies as its uint8 frames do.
    image = torch.from_numpy(_frames()).float() / 255
    rgba = torch.cat([image, torch.ones_like(image[..., :1])], dim=-1)
    assert np.allclose(clf.classify(rgba).probabilities, pred.probabilities, atol=1e-5)
    bad = image.clone()
    bad[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="frame 3 contains 1 NaN"):
        clf.classify(bad)


def test_clip_vision_single_file_gives_the_folders_features(tiny_clip, tmp_path):
    file = export_clip_vision_file("tiny", tmp_path / "clip_vision_tiny.safetensors")
    from_file = load_encoder(file)
    from_folder = load_encoder(tiny_clip)
    assert not from_file.has_text and from_folder.has_text
    frames = _frames(1)
    assert np.allclose(from_file.pooled(frames), from_folder.pooled(frames), atol=1e-5)
    with pytest.raises(ValueError, match="no text tower"):
        classifiers.ClipZeroShot(from_file)


def test_probe_file_round_trip_and_refusals(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6))
    y = np.arange(80) % 8
    x[np.arange(80), y % 6] += 4.0  # separable enough
    w, b, mean, std = probe.fit(x, y)
    p = probe.LinearProbe(w, b, mean, std, "/models/clip", 8, {"note": "test"})
    path, sidecar = probe.save_probe(p, tmp_path / "p.safetensors")
    assert sidecar.name == "p.json" and json.loads(sidecar.read_text())["emotions"] == list(EMOTIONS)
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    back = probe.load_probe(path)
    assert np.allclose(back.probabilities(x), p.probabilities(x), atol=1e-5) and back.vision == "/models/clip"
    assert back.digest == p.digest and back.meta["note"] == "test"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "emotions": list(reversed(EMOTIONS))}))
    with pytest.raises(ValueError, match="lists emotions"):
        probe.load_probe(path)
    sidecar.unlink()
    with pytest.raises(FileNotFoundError, match="has no p.json beside it"):
        probe.load_probe(path)


def test_probe_classifier_checks_the_feature_width(tiny_clip, tmp_path):
    p = probe.LinearProbe(np.zeros((8, 7)), np.zeros(8), np.zeros(7), np.ones(7), str(tiny_clip), 4)
    path, _ = probe.save_probe(p, tmp_path / "wrong.safetensors")
    with pytest.raises(ValueError, match="trained on 7-wide features but .* gives 32"):
        load_classifier(f"probe:{path}")


def test_paths_resolve_through_the_model_folders(tiny_clip, tmp_path):
    models = tmp_path / "models" / classifiers.MODEL_KIND
    models.mkdir(parents=True)
    (models / "my_clip").symlink_to(tiny_clip, target_is_directory=True)
    (tmp_path / "models" / "secret").mkdir()
    with runtime.configured(model_folders={classifiers.MODEL_KIND: [models]}):
        assert classifiers.resolve_path("my_clip") == tiny_clip.resolve()  # a link the user put there is followed
        assert load_classifier("clip:my_clip").source == str(tiny_clip.resolve())
        with pytest.raises(FileNotFoundError, match="not found as a path or in the model folders"):
            classifiers.resolve_path("my_clip/../../secret")  # a name never climbs out of its model folder
    with pytest.raises(FileNotFoundError, match="set EMOVID_MODELS_DIR"):
        classifiers.resolve_path("surely_not_here")


@pytest.mark.parametrize("spec", ["clip", "clip:", "nvila:/x", "/some/folder"])
def test_classifier_spec_errors_name_the_forms(spec):
    with pytest.raises(ValueError, match="clip:DIR .* probe:FILE .* vlm:DIR"):
        ClassifierSpec.parse(spec)
