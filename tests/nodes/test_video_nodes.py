"""EmoVid Load Video / Save Video through the headless graph runner, on real files."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from emovid_core import runtime
from emovid_core import video_io as vio
from emovid_core.host.graph import GraphValidationError, NodeExecutionError, run_workflow

T, H, W, FPS = 24, 48, 64, 16.0


def frames(n=T, seed=0):
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (n, H // 8, W // 8, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(8, axis=1).repeat(8, axis=2))


@pytest.fixture()
def input_dir(tmp_path):
    d = tmp_path / "input"
    (d / "clips").mkdir(parents=True)
    vio.write_video(frames(), d / "clip.mp4", FPS)
    vio.write_video(frames(9, seed=1), d / "clips" / "small.gif", 8)
    (d / "readme.txt").write_text("not a video")
    with runtime.configured(input_dir=d):
        yield d


def load_inputs(**over):
    base = {"video": "clip.mp4", "max_frames": 0, "skip_first": 0, "every_nth": 1, "target_fps": 0.0,
            "width": 0, "height": 0, "crop": "center", "wan_4n1": False}
    return {**base, **over}


def save_node(src, fmt="mp4", prefix="EmoVid/video", fps=FPS):
    return {"class_type": "EmoVidSaveVideo", "inputs": {"images": src, "fps": fps, "filename_prefix": prefix, "format": fmt}}


def test_load_node_lists_input_videos(pack_nodes, input_dir):
    spec = pack_nodes["EmoVidLoadVideo"].INPUT_TYPES()["required"]["video"]
    assert spec[0] == ["clip.mp4", "clips/small.gif"]
    assert spec[1]["video_upload"] is True and spec[1]["emovid_dynamic_list"] is True


def test_load_then_save_through_the_graph(pack_nodes, input_dir, out_dir):
    wf = {
        "1": {"class_type": "EmoVidLoadVideo", "inputs": load_inputs(every_nth=2, width=32, height=32, wan_4n1=True)},
        "2": save_node(["1", 0], fps=["1", 1]),
    }
    res = run_workflow(wf, classes=pack_nodes)
    image = res.outputs["1"][0][0]
    assert tuple(image.shape) == (9, 32, 32, 3)  # 24 frames, every 2nd = 12, 4n+1 trim = 9
    assert str(image.dtype) == "torch.float32" and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert res.outputs["1"][1] == [8.0] and res.outputs["1"][2] == [9]
    assert "24 frames" in res.outputs["1"][3][0] and "9 frames 32x32" in res.outputs["1"][3][0]
    saved = out_dir / "EmoVid" / "video_00001.mp4"
    assert res.files == [saved]
    assert res.outputs["2"][0] == [str(saved)]
    info = vio.probe(saved)
    assert (info.frames, info.width, info.height) == (9, 32, 32) and info.fps == pytest.approx(8.0)


@pytest.mark.parametrize("fmt,mime", [("mp4", "video/h264-mp4"), ("webm", "video/webm"), ("gif", "image/gif"), ("webp", "image/webp")])
def test_save_node_counter_and_ui_entries(pack_nodes, input_dir, out_dir, fmt, mime):
    wf = {"1": {"class_type": "EmoVidLoadVideo", "inputs": load_inputs(max_frames=5)}, "2": save_node(["1", 0], fmt, "runs/a/emo")}
    first = run_workflow(wf, classes=pack_nodes)
    second = run_workflow(wf, classes=pack_nodes)
    ui = second.ui["2"]
    entry = {"filename": f"emo_00002.{fmt}", "subfolder": "runs/a", "type": "output", "format": mime}
    assert ui["images"] == [entry]
    assert ui["animated"] == [True]
    assert ui["gifs"] == [{**entry, "frame_rate": FPS}]
    assert f"runs/a/emo_00002.{fmt}" in ui["text"][0]
    assert first.ui["2"]["images"][0]["filename"] == f"emo_00001.{fmt}"
    path = out_dir / "runs" / "a" / f"emo_00002.{fmt}"
    assert second.files == [path] and vio.probe(path).frames == 5
    # What a client does with an entry: GET /view?filename=..&subfolder=..&type=output resolves to this file.
    assert (out_dir / entry["subfolder"] / entry["filename"]) == path


def test_save_counter_continues_after_the_highest_existing_number(out_dir):
    (out_dir / "EmoVid").mkdir(parents=True)
    (out_dir / "EmoVid" / "video_00007.gif").write_bytes(b"x")
    (out_dir / "EmoVid" / "video_final.mp4").write_bytes(b"x")  # not a counter file
    (out_dir / "EmoVid" / "videos_00050.mp4").write_bytes(b"x")  # another prefix
    path, sub, name = vio.output_file("EmoVid/video", "mp4")
    assert (sub, name, path) == ("EmoVid", "video_00008.mp4", out_dir / "EmoVid" / "video_00008.mp4")
    assert vio.output_file("top", "gif")[1:] == ("", "top_00001.gif")


@pytest.mark.parametrize("prefix", ["../escape", "EmoVid/../../escape", "/etc/video", "a/..", "EmoVid/"])
def test_save_refuses_prefixes_outside_the_output_folder(pack_nodes, input_dir, out_dir, prefix):
    wf = {"1": {"class_type": "EmoVidLoadVideo", "inputs": load_inputs(max_frames=2)}, "2": save_node(["1", 0], "gif", prefix)}
    with pytest.raises(NodeExecutionError, match="filename_prefix") as err:
        run_workflow(wf, classes=pack_nodes)
    assert isinstance(err.value.original, ValueError)
    assert [p for p in out_dir.parent.rglob("*.gif") if input_dir not in p.parents] == []


def test_path_input_overrides_the_list_and_accepts_image_folders(pack_nodes, input_dir, out_dir, tmp_path):
    from PIL import Image

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, f in enumerate(frames(6, seed=3)):
        Image.fromarray(f).save(folder / f"{i}.png")
    wf = {"1": {"class_type": "EmoVidLoadVideo", "inputs": load_inputs(path=str(folder), target_fps=8.0)},
          "2": save_node(["1", 0], "gif")}
    res = run_workflow(wf, classes=pack_nodes)
    # A folder plays at 16 fps: 6 frames = 0.375 s, resampled to 8 fps = frames 0, 2, 4.
    got = vio.image_to_uint8(res.outputs["1"][0][0])
    assert np.array_equal(got, frames(6, seed=3)[[0, 2, 4]])
    wf["1"]["inputs"]["path"] = "clips/small.gif"  # relative to the input folder
    assert run_workflow(wf, classes=pack_nodes).outputs["1"][2] == [9]
    # ComfyUI's annotated names: a file from the output folder, e.g. the GIF saved by the first run.
    wf["1"]["inputs"]["path"] = "EmoVid/video_00001.gif [output]"
    assert run_workflow(wf, classes=pack_nodes).outputs["1"][2] == [2]  # 3 frames at 16 fps -> 8 fps = 2


def test_missing_file_fails_with_the_path(pack_nodes, input_dir, out_dir):
    cls = pack_nodes["EmoVidLoadVideo"]
    assert cls.VALIDATE_INPUTS("clip.mp4") is True
    msg = cls.VALIDATE_INPUTS("clip.mp4", path="/no/such/video.mp4")
    assert isinstance(msg, str) and "/no/such/video.mp4" in msg
    wf = {"1": {"class_type": "EmoVidLoadVideo", "inputs": load_inputs(path="/no/such/video.mp4")},
          "2": save_node(["1", 0])}
    with pytest.raises(GraphValidationError, match="/no/such/video.mp4"):  # caught before anything runs
        run_workflow(wf, classes=pack_nodes)
    # A file that vanishes between validation and execution still fails with its path.
    node = pack_nodes["EmoVidLoadVideo"]()
    with pytest.raises(FileNotFoundError, match="gone.mp4"):
        node.load(**load_inputs(path=str(input_dir / "gone.mp4")))


def test_is_changed_follows_the_file(pack_nodes, input_dir):
    cls = pack_nodes["EmoVidLoadVideo"]
    before = cls.IS_CHANGED("clip.mp4", "")
    assert before == cls.IS_CHANGED("clip.mp4", "")
    assert before != cls.IS_CHANGED("clips/small.gif", "")
    p = input_dir / "clip.mp4"
    vio.write_video(frames(5, seed=9), p, FPS)
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # mtime resolution differs per filesystem
    assert cls.IS_CHANGED("clip.mp4", "") != before
    assert cls.IS_CHANGED("gone.mp4", "") == "missing"


def test_load_node_memory_guard_message(pack_nodes, input_dir, out_dir):
    # The node uses the default limit (half of free RAM); a huge upscale of 24 frames must be refused up front.
    wf = {"1": {"class_type": "EmoVidLoadVideo", "inputs": load_inputs(width=8192, height=8192, target_fps=240.0)},
          "2": save_node(["1", 0])}
    free = vio.available_memory()
    need = 360 * 8192 * 8192 * 3 * 4
    if need <= free // 2:
        pytest.skip("machine has more than 2 x 290 GB free RAM")
    t0 = time.perf_counter()
    with pytest.raises(NodeExecutionError, match="360 frames of 8192x8192.*max_frames"):
        run_workflow(wf, classes=pack_nodes)
    assert time.perf_counter() - t0 < 5.0, "the guard must fire before decoding or resizing"
