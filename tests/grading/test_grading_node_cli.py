"""EmoVid Emotion Grade / Drift Correct through the headless runner (fed by EmoVid Load Video and EmoVid Dataset
Stats) and `emovid grade` / `emovid drift` end to end on real mp4 files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovid_core import attributes as A
from emovid_core import runtime
from emovid_core import video_io as vio
from emovid_core.host.cli import main
from emovid_core.host.graph import run_workflow
from tests.grading.utils import hsv_clip
from tests.helpers.source_node import source_node

FPS = 16.0


def stats_json(tmp_path):
    from emovid_core.dataset.format import Clip
    from emovid_core.dataset.stats import compute_stats

    rows = [("fear", 0.25, 0.20, 230), ("fear", 0.35, 0.30, 250), ("awe", 0.7, 0.5, 40), ("awe", 0.6, 0.4, 50)]
    clips = [Clip(clip_id=f"c{i}", path=f"c{i}.mp4", type="movie", emotion=e, brightness=b, colorfulness=c, hue=h)
             for i, (e, b, c, h) in enumerate(rows)]
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(compute_stats(clips)))
    return path


@pytest.fixture()
def media(tmp_path):
    d = tmp_path / "input"
    d.mkdir()
    # Blocky content that survives H.264: bright and saturated, getting brighter (a drift).
    frames = hsv_clip(200, 0.6, np.linspace(0.55, 0.75, 21), n=21, height=32, width=48, spread=0.1)
    blocks = frames[:, ::8, ::8].repeat_interleave(8, 1).repeat_interleave(8, 2)
    vio.write_video(vio.image_to_uint8(blocks), d / "clip.mp4", FPS, quality=95)
    with runtime.configured(input_dir=d):
        yield d


def load_node():
    return {"class_type": "EmoVidLoadVideo", "inputs": {"video": "clip.mp4", "max_frames": 0, "skip_first": 0, "every_nth": 1,
                                                       "target_fps": 0.0, "width": 0, "height": 0, "crop": "center", "wan_4n1": False}}


def grade_node(**over):
    base = {"images": ["1", 0], "emotion": "fear", "strength": 1.0, "max_hue_shift": 30.0, "protect_skin": 0.0,
            "smooth_sigma": 6.0, "mode": "clip"}
    return {"class_type": "EmoVidEmotionGrade", "inputs": {**base, **over}}


def test_grade_node_through_the_graph_with_stats_text(pack_nodes, media, out_dir, tmp_path):
    # A STRING source stands in for EmoVid Dataset Stats' json output (the real chain is the next test).
    classes = {**pack_nodes, "EmoVidTestStats": source_node("STRING", stats_json(tmp_path).read_text())}
    wf = {"1": load_node(), "2": {"class_type": "EmoVidTestStats", "inputs": {}}, "3": grade_node(stats=["2", 0])}
    res = run_workflow(wf, classes=classes)
    images, report, plot = (res.outputs["3"][i][0] for i in range(3))
    assert images.shape == (21, 32, 48, 3) and images.dtype == torch.float32
    after = A.clip_attributes(images)
    assert after.brightness_raw == pytest.approx(0.30, abs=0.01) and after.colorfulness_raw == pytest.approx(0.25, abs=0.01)
    assert "fear in the dataset statistics (2 clips)" in report and "within 0.01 of the goal: yes" in report
    assert tuple(plot.shape) == (1, 840, 1000, 3) and float(plot.std()) > 0.05
    assert res.ui["3"]["text"] == [report]


def test_grade_node_with_dataset_stats_node_and_reference(pack_nodes, media, out_dir, indexed_root):
    # The real EmoVid Dataset -> Dataset Stats chain on the indexed sample set feeds the grade node.
    wf = {"1": load_node(),
          "4": {"class_type": "EmoVidDataset", "inputs": {"root": str(indexed_root)}},
          "5": {"class_type": "EmoVidDatasetStats", "inputs": {"dataset": ["4", 0], "bins": 11, "consecutive_only": False}},
          "3": grade_node(stats=["5", 1], emotion="sadness")}
    res = run_workflow(wf, classes=pack_nodes)
    assert "sadness in the dataset statistics" in res.outputs["3"][1][0]
    # Reference image instead of statistics; typed brightness replaces the reference's.
    node = pack_nodes["EmoVidEmotionGrade"]()
    x = hsv_clip(200, 0.6, 0.7, n=3)
    ref = hsv_clip(30, 0.3, 0.4, n=1)
    out = node.grade(x, "none", 1.0, 30.0, 0.0, 6.0, "clip", reference=ref, brightness=0.5)["result"]
    assert A.clip_attributes(out[0]).brightness_raw == pytest.approx(0.5, abs=0.01)
    assert A.clip_attributes(out[0]).colorfulness_raw == pytest.approx(A.clip_attributes(ref).colorfulness_raw, abs=0.01)
    with pytest.raises(ValueError, match="needs the per-emotion statistics"):
        node.grade(x, "fear", 1.0, 30.0, 0.0, 6.0, "clip")


def test_drift_node_flattens_the_clip(pack_nodes, media, out_dir):
    wf = {"1": load_node(), "2": {"class_type": "EmoVidDriftCorrect", "inputs": {
        "images": ["1", 0], "reference_frame": 0, "correct_hue": True, "strength": 1.0, "max_hue_shift": 30.0,
        "protect_skin": 0.0, "smooth_sigma": 0.0}}}
    res = run_workflow(wf, classes=pack_nodes)
    out = res.outputs["2"][0][0]
    decoded = vio.frames_to_image(vio.read_frames(media / "clip.mp4", progress=False))
    b0 = A.curves(A.frame_stats(decoded, progress=False))["brightness"]
    b1 = A.curves(A.frame_stats(out, progress=False))["brightness"]
    assert np.ptp(b0) > 0.1 and np.abs(b1 - b0[0]).max() < 0.01


def test_cli_grade_end_to_end(media, tmp_path, capsys):
    stats = stats_json(tmp_path)
    src, out = media / "clip.mp4", tmp_path / "graded.mp4"
    args = ["grade", str(src), "--emotion", "fear", "--stats", str(stats), "--out", str(out),
            "--json", str(tmp_path / "g.json"), "--plot", str(tmp_path / "g.png")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "EmoVid grade: clip mode" in text and "within 0.01 of the goal: yes" in text and f"wrote {out}" in text
    back = vio.frames_to_image(vio.read_frames(out, progress=False))
    assert back.shape[0] == 21
    got = A.clip_attributes(back)  # after an H.264 round trip the goal still holds closely
    assert got.brightness_raw == pytest.approx(0.30, abs=0.02) and got.colorfulness_raw == pytest.approx(0.25, abs=0.03)
    data = json.loads((tmp_path / "g.json").read_text())
    assert data["close_enough"] is True and data["targets"]["brightness"] == pytest.approx(0.30)
    assert (tmp_path / "g.png").stat().st_size > 10000
    # Never the input, and nothing existing without --force.
    before = src.read_bytes()
    assert main(["grade", str(src), "--brightness", "0.3", "--out", str(src), "--force"]) == 2
    assert "is one of the inputs" in capsys.readouterr().err and src.read_bytes() == before
    assert main(args) == 2 and "pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    # An emotion without statistics is refused with the fix, before anything is decoded.
    assert main(["grade", str(src), "--emotion", "fear", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "--stats STATS.json" in capsys.readouterr().err and not (tmp_path / "x.mp4").exists()


def test_cli_drift_end_to_end(media, tmp_path, capsys):
    out = tmp_path / "steady.mp4"
    assert main(["drift", str(media / "clip.mp4"), "--out", str(out)]) == 0
    assert "EmoVid drift correction" in capsys.readouterr().out
    b = A.curves(A.frame_stats(vio.frames_to_image(vio.read_frames(out, progress=False)), progress=False))["brightness"]
    assert np.ptp(b) < 0.03
