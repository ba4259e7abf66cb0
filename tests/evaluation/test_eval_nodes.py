"""EmoVid Emotion Classifier / Emotion Score through the headless graph runner: frames from core-style nodes (Load
Video) and the Emotion Sweep's eight generated clips scored one by one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovid_core import video_io
from emovid_core.emotions import EMOTIONS
from emovid_core.evaluation.classifiers import load_classifier
from emovid_core.host.graph import NodeExecutionError, run_workflow


def _classifier(model, backend="clip", vision=""):
    return {"class_type": "EmoVidEmotionClassifier",
            "inputs": {"backend": backend, "model": str(model), "vision": vision, "frames": 0, "device": "cpu"}}


def test_score_node_on_loaded_video_frames_matches_the_library(tiny_clip, tmp_path, out_dir):
    frames = (np.random.default_rng(0).random((9, 48, 64, 3)) * 255).astype(np.uint8)
    video = video_io.write_video(frames, tmp_path / "clip.mp4", fps=8.0)
    wf = {
        "1": _classifier(tiny_clip),
        "2": {"class_type": "EmoVidLoadVideo", "inputs": {"video": "", "path": str(video), "max_frames": 0, "skip_first": 0,
                                                          "every_nth": 1, "target_fps": 0.0, "width": 0, "height": 0,
                                                          "crop": "center", "wan_4n1": False}},
        "3": {"class_type": "EmoVidEmotionScore", "inputs": {"classifier": ["1", 0], "images": ["2", 0], "intended": "fear"}},
    }
    result = run_workflow(wf, out_dir=out_dir)
    emotion, valence, probs_json, chart = (result.outputs["3"][i][0] for i in range(4))
    data = json.loads(probs_json)
    expected = load_classifier(f"clip:{tiny_clip}").classify(video_io.read_frames(video, progress=False))
    assert emotion == expected.label and valence == expected.valence and data["intended"] == "fear"
    assert list(data["probabilities"]) == list(EMOTIONS)
    assert np.allclose(list(data["probabilities"].values()), expected.probabilities, atol=1e-5)
    assert chart.shape == (1, 288, 512, 3) and chart.dtype == torch.float32 and 0 <= float(chart.min()) <= float(chart.max()) <= 1
    (line,) = result.ui["3"]["text"]
    assert line.startswith(f"{emotion} ({valence}) p=") and "asked fear: EA-8" in line
    assert "clip:" in result.outputs["1"][1][0]


@pytest.mark.slow
def test_scores_each_of_the_emotion_sweeps_eight_generated_clips(tiny_clip, out_dir):
    wf = {
        "1": {"class_type": "EmoVidEmotionSweep", "inputs": {"caption": "A dog runs on a beach.", "intensity": 1.0,
                                                             "template": '{caption} The video is in the "{emotion}" emotion.'}},
        "2": {"class_type": "EmoVidWanLoader", "inputs": dict(source="tiny-t2v", variant="auto", folder="", transformer="", vae="",
                                                              text_encoder="", tokenizer="", clip_vision="", dtype="auto",
                                                              device="cpu", offload="auto")},
        "3": {"class_type": "EmoVidWanGenerate", "inputs": dict(pipe=["2", 0], caption=["1", 0], emotion="none", seed=0, steps=2,
                                                                guidance=1.0, shift=0.0, frames=5, width=0, height=0, negative="")},
        "4": _classifier(tiny_clip),
        "5": {"class_type": "EmoVidEmotionScore", "inputs": {"classifier": ["4", 0], "images": ["3", 0], "intended": ["1", 1]}},
    }
    result = run_workflow(wf, out_dir=out_dir)
    emotions = result.outputs["5"][0]
    assert len(emotions) == 8 and all(e in EMOTIONS for e in emotions)
    lines = result.ui["5"]["text"]
    assert len(lines) == 8 and [ln.split("asked ")[1].split(":")[0] for ln in lines] == list(EMOTIONS)


def test_loader_errors_name_the_problem(tmp_path, out_dir):
    image = {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 2, "color": 0}}
    wf = {"1": _classifier(tmp_path / "missing_probe.safetensors", backend="probe"), "2": image,
          "3": {"class_type": "EmoVidEmotionScore", "inputs": {"classifier": ["1", 0], "images": ["2", 0], "intended": ""}}}
    with pytest.raises(NodeExecutionError, match="probe file .*missing_probe.safetensors.* not found"):
        run_workflow(wf, out_dir=out_dir)
