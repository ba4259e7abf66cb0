"""EmoVid Frame Attributes node (through the headless runner, fed by EmoVid Load Video) and `emovid analyze`,
on real mp4 / gif files and image folders written with video_io."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from emovid_core import attributes as A
from emovid_core import runtime
from emovid_core import video_io as vio
from emovid_core.host.cli import main
from emovid_core.host.graph import GraphValidationError, NodeExecutionError, run_workflow
from tests.helpers.source_node import source_node

T, H, W, FPS = 45, 32, 48, 16.0


def clip_frames(n=T, seed=0) -> np.ndarray:
    """Blocky colour content that survives H.264 well, getting brighter over time."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (n, H // 8, W // 8, 3)).astype(np.float64)
    ramp = np.linspace(0.5, 1.0, n)[:, None, None, None]
    return np.ascontiguousarray((blocks * ramp).astype(np.uint8).repeat(8, axis=1).repeat(8, axis=2))


@pytest.fixture()
def media(tmp_path):
    d = tmp_path / "input"
    d.mkdir()
    vio.write_video(clip_frames(), d / "clip.mp4", FPS)
    vio.write_video(clip_frames(12, seed=1), d / "small.gif", 10)
    folder = d / "frames"
    folder.mkdir()
    for i, f in enumerate(clip_frames(5, seed=2)):
        cv2.imwrite(str(folder / f"f{i}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    with runtime.configured(input_dir=d):
        yield d


def load_node(**over):
    base = {"video": "clip.mp4", "max_frames": 0, "skip_first": 0, "every_nth": 1, "target_fps": 0.0,
            "width": 0, "height": 0, "crop": "center", "wan_4n1": False}
    return {"class_type": "EmoVidLoadVideo", "inputs": {**base, **over}}


def attr_node(src=("1", 0), stride=20, fps=FPS):
    return {"class_type": "EmoVidFrameAttributes", "inputs": {"images": list(src), "stride": stride, "fps": fps}}


def test_node_through_the_graph_matches_the_core(pack_nodes, media, out_dir):
    res = run_workflow({"1": load_node(), "2": attr_node(fps=["1", 1])}, classes=pack_nodes)
    b, c, h, report, plot = (res.outputs["2"][i][0] for i in range(5))
    decoded = vio.frames_to_image(vio.read_frames(media / "clip.mp4", progress=False))
    want = A.analyze(decoded, stride=20, fps=FPS, progress=False)
    assert (b, c, h) == (want.clip.brightness, want.clip.colorfulness, want.clip.hue)
    assert isinstance(b, float) and isinstance(h, int) and 0 <= h < 360
    data = json.loads(report)
    assert data["clip"]["frames"] == [0, 20, 40] and data["frames"] == T
    assert data["settings"]["fps"] == FPS and len(data["curves"]["brightness"]) == T
    assert data["summary"]["brightness"]["slope_per_frame"] > 0  # the clip brightens over time
    assert tuple(plot.shape) == (1, 520, 1000, 3) and plot.dtype == torch.float32
    assert 0.0 <= float(plot.min()) and float(plot.max()) <= 1.0 and float(plot.std()) > 0.05
    assert res.ui["2"]["text"] == [want.summary_line()]
    assert res.ui["2"]["text"][0].startswith(f"B={b:.1f} C={c:.1f} H={h}  (raw ")


def test_node_rgba_and_stride(pack_nodes):
    node = pack_nodes["EmoVidFrameAttributes"]()
    rgb = torch.rand(41, 8, 10, 3)
    rgba = torch.cat([rgb, torch.rand(41, 8, 10, 1)], -1)
    a = node.analyze(rgba, stride=40, fps=8.0)
    b = node.analyze(rgb, stride=40, fps=8.0)
    assert a["result"][:3] == b["result"][:3]
    assert json.loads(a["result"][3])["clip"]["frames"] == [0, 40]


def test_node_rejects_bad_images_and_settings(pack_nodes):
    bad = {"1": {"class_type": "EmoVidFrameAttributes", "inputs": {"images": ["9", 0], "stride": 0, "fps": 16.0}}}
    with pytest.raises(GraphValidationError, match="stride"):
        run_workflow(bad, classes=pack_nodes)
    node = pack_nodes["EmoVidFrameAttributes"]()
    with pytest.raises(ValueError, match="NaN"):
        node.analyze(torch.full((2, 4, 4, 3), math.nan), stride=20, fps=16.0)


def test_node_error_surfaces_through_the_runner(pack_nodes, media, out_dir):
    # A 1-channel IMAGE cannot come from the loader, so feed the node a wrong tensor through a direct call
    # and check the runner wraps core errors with the node id.
    classes = {**pack_nodes, "EmoVidTestSource": source_node("IMAGE", torch.rand(3, 4, 4, 2))}
    with pytest.raises(NodeExecutionError, match=r"node 2 \(EmoVidFrameAttributes\).*shape \[3, 4, 4, 2\]"):
        run_workflow({"1": {"class_type": "EmoVidTestSource", "inputs": {}}, "2": attr_node()}, classes=classes)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_mp4_json_and_plot(media, tmp_path, capsys):
    out_json, out_png = tmp_path / "r.json", tmp_path / "p.png"
    assert main(["analyze", str(media / "clip.mp4"), "--json", str(out_json), "--plot", str(out_png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    decoded = vio.frames_to_image(vio.read_frames(media / "clip.mp4", progress=False))
    want = A.analyze(decoded, stride=20, fps=FPS, progress=False)
    assert lines[0] == want.summary_line("clip.mp4")
    assert lines[0].endswith("; 3 frames)")
    data = json.loads(out_json.read_text())
    assert data["clip"] == want.to_dict()["clip"] and data["frames"] == T and data["settings"]["fps"] == FPS
    png = cv2.imread(str(out_png))
    assert png.shape == (520, 1000, 3)


def test_cli_fast_gives_the_same_clip_values(media, capsys):
    assert main(["analyze", str(media / "clip.mp4")]) == 0
    full = capsys.readouterr().out.strip()
    assert main(["analyze", str(media / "clip.mp4"), "--fast"]) == 0
    assert capsys.readouterr().out.strip() == full


def test_cli_gif_folder_and_many_paths(media, tmp_path, capsys):
    out_json = tmp_path / "many.json"
    gif, folder = media / "small.gif", media / "frames"
    assert main(["analyze", str(gif), str(folder), "--stride", "5", "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("small.gif  B=") and lines[0].endswith("; 3 frames)")  # frames 0, 5, 10 of 12
    assert lines[1].startswith("frames  B=") and lines[1].endswith("; 1 frame)")
    data = json.loads(out_json.read_text())
    assert [c["frames"] for c in data["clips"]] == [12, 5]
    assert data["clips"][1]["settings"]["fps"] == vio.DEFAULT_IMAGES_FPS
    gif_frames = vio.read_frames(gif, progress=False)
    assert data["clips"][0]["clip"] == A.analyze(list(gif_frames), stride=5, fps=10, progress=False).to_dict()["clip"]


def test_cli_errors(media, tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing.mp4")]) == 2
    assert "missing.mp4" in capsys.readouterr().err
    assert main(["analyze", str(media / "clip.mp4"), "--stride", "0"]) == 2
    assert "--stride 0" in capsys.readouterr().err
    assert main(["analyze", str(media / "clip.mp4"), str(media / "small.gif"), "--plot", str(tmp_path / "p.png")]) == 2
    assert "one PNG" in capsys.readouterr().err
