"""Headless equivalents of ComfyUI core nodes (emovid_core.host.core_nodes) and the model-free workflows `emovid run` runs.

Schemas are checked against emovid_core/host/data/core_object_info.json (a real ComfyUI 0.3.64 /object_info); the files
written against what core SaveImage/PreviewImage write (names, counters, PNG text chunks, ui entries).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emovid_core import runtime
from emovid_core.host import core_nodes
from emovid_core.host.cli import main as cli_main
from emovid_core.host.graph import GraphValidationError, NeedsComfyUIError, default_classes, run_workflow, validate
from emovid_core.host.schema import node_schema

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
CORE_SNAPSHOT = json.loads((ROOT / "emovid_core" / "host" / "data" / "core_object_info.json").read_text())

# Every shipped API workflow that runs headless, and the test that runs it end to end on real files.
HEADLESS_WORKFLOWS = {
    "emovid_analyze_video": "tests/host/test_core_nodes.py::test_model_free_workflow_runs_headless",
    "emovid_dataset_explore": "tests/host/test_core_nodes.py::test_model_free_workflow_runs_headless",
    "emovid_demo_story": "tests/host/test_demo.py::test_the_story_workflow_runs_headless_on_the_demo_outputs",
    "emovid_headless_diffusers": "tests/host/test_workflows.py::test_headless_example_runs_without_comfyui",
}


def _png(color: tuple[int, int, int, int] | None = None, size=(6, 4)) -> Image.Image:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    if color is not None:
        arr[:] = color
    return Image.fromarray(arr, "RGBA")


def test_headless_core_nodes_have_core_schemas_exactly(tmp_path):
    """Names, types, defaults, order, outputs and flags equal the real server's /object_info entries."""
    assert set(core_nodes.NODE_CLASS_MAPPINGS) <= set(CORE_SNAPSHOT)
    assert core_nodes.object_info() == {k: CORE_SNAPSHOT[k] for k in core_nodes.NODE_CLASS_MAPPINGS}
    with runtime.configured(input_dir=tmp_path / "empty"):  # no files: the upload lists are [] as in the snapshot
        for nid, cls in core_nodes.NODE_CLASS_MAPPINGS.items():
            core = CORE_SNAPSHOT[nid]
            raw = cls.INPUT_TYPES()
            assert json.loads(json.dumps(raw)) == core["input"], nid
            assert {s: list(v) for s, v in raw.items()} == core["input_order"], nid
            schema = node_schema(nid, cls)
            assert (schema.output_types, schema.output_names, schema.output_is_list, schema.is_output_node) == (
                core["output"], core["output_name"], core["output_is_list"], core["output_node"]), nid
            assert (schema.category, cls.DISPLAY_NAME) == (core["category"], core["display_name"])
    assert {"KSampler", "UNETLoader", "CLIPTextEncode", "SaveVideo"} <= core_nodes.core_node_names()
    assert not any(n.startswith("EmoVid") for n in core_nodes.core_node_names())


def test_save_image_writes_comfyui_names_metadata_and_ui(tmp_path):
    out = tmp_path / "out"
    wf = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 5, "batch_size": 2, "color": 0xFF8001}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "EmoVid/still_%width%x%height%"}},
    }
    (out / "EmoVid").mkdir(parents=True)
    (out / "EmoVid" / "still_8x5_00007_.png").write_bytes(b"older run")  # the counter continues after it
    (out / "EmoVid" / "still_8x5_00042.png").write_bytes(b"not ours")  # no trailing '_': not counted, as in core
    extra = {"workflow": {"nodes": [], "links": [], "version": 0.4}}
    res = run_workflow(wf, out_dir=out, extra_pnginfo=extra)
    entries = res.ui["2"]["images"]
    assert entries == [{"filename": f"still_8x5_{n:05}_.png", "subfolder": "EmoVid", "type": "output"} for n in (8, 9)]
    assert sorted(res.files) == [out / "EmoVid" / e["filename"] for e in entries]
    for e in entries:
        with Image.open(out / e["subfolder"] / e["filename"]) as im:
            assert (im.mode, im.size) == ("RGB", (8, 5))
            assert np.array(im)[0, 0].tolist() == [255, 128, 1]
            assert json.loads(im.text["prompt"]) == wf and json.loads(im.text["workflow"]) == extra["workflow"]
    assert (out / "EmoVid" / "still_8x5_00007_.png").read_bytes() == b"older run"

    again = run_workflow(wf, out_dir=out, disable_metadata=True)  # ComfyUI's --disable-metadata
    name = again.ui["2"]["images"][0]["filename"]
    assert name == "still_8x5_00010_.png"
    with Image.open(out / "EmoVid" / name) as im:
        assert "prompt" not in im.text and "workflow" not in im.text


def test_save_image_refuses_a_prefix_outside_the_output_folder(tmp_path):
    wf = {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
          "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "../escaped"}}}
    with pytest.raises(RuntimeError, match="outside the folder"):
        run_workflow(wf, out_dir=tmp_path / "out")
    assert list(tmp_path.glob("escaped*")) == []


def test_preview_image_writes_into_temp_beside_the_output(tmp_path):
    img = torch.rand(1, 3, 5, 3)
    wf = {"1": {"class_type": "LoadImage", "inputs": {"image": "pic.png"}},
          "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    (tmp_path / "in").mkdir()
    Image.fromarray((img[0].numpy() * 255).astype(np.uint8)).save(tmp_path / "in" / "pic.png")
    with runtime.configured(input_dir=tmp_path / "in"):
        res = run_workflow(wf, out_dir=tmp_path / "out")
    (entry,) = res.ui["2"]["images"]
    assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_00001_\.png", entry["filename"]) and entry["type"] == "temp"
    assert entry["subfolder"] == ""
    path = tmp_path / "temp" / entry["filename"]
    assert res.files == [path] and not any((tmp_path / "out").rglob("*"))
    with Image.open(path) as im, Image.open(tmp_path / "in" / "pic.png") as src:
        assert np.array_equal(np.array(im), np.array(src))  # load -> preview keeps every byte
        assert json.loads(im.text["prompt"]) == wf


def test_load_image_gives_core_image_and_mask(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    _png().save(inp / "rgba.png")
    Image.new("RGB", (3, 2), (10, 20, 30)).save(inp / "plain.jpg", quality=100)
    (inp / "notes.txt").write_text("not an image")
    load = core_nodes.LoadImage()
    with runtime.configured(input_dir=inp):
        assert core_nodes.LoadImage.INPUT_TYPES()["required"]["image"][0] == ["plain.jpg", "rgba.png"]
        image, mask = load.load_image("rgba.png")
        rgba = np.array(Image.open(inp / "rgba.png"))
        assert image.shape == (1, 4, 6, 3) and image.dtype == torch.float32
        assert torch.equal(image[0], torch.from_numpy(rgba[..., :3].astype(np.float32) / 255.0))
        assert torch.allclose(mask[0], 1.0 - torch.from_numpy(rgba[..., 3].astype(np.float32) / 255.0))
        _, plain_mask = load.load_image("plain.jpg")
        assert plain_mask.shape == (1, 64, 64) and float(plain_mask.abs().sum()) == 0.0
        for bad, message in (("missing.png", "Invalid image file: missing.png"), ("../x.png", "outside the input folder")):
            wf = {"1": {"class_type": "LoadImage", "inputs": {"image": bad}},
                  "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
            with pytest.raises(GraphValidationError, match=re.escape(message)):
                validate(wf, default_classes())


def _input_with_clip(sample_root: Path, folder: Path) -> Path:
    clip = sorted(sample_root.rglob("*.mp4"))[0]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, folder / "emovid_example.mp4")
    return clip


@pytest.mark.parametrize("name", ["emovid_analyze_video", "emovid_dataset_explore"])
def test_model_free_workflow_runs_headless(name, sample_root, indexed_root, tmp_path, capsys):
    """The shipped API twin through `emovid run`, on the sample set's real videos: every file it writes checked."""
    from emovid_core import video_io

    clip = _input_with_clip(sample_root, tmp_path / "input")
    out, temp, summary = tmp_path / "output", tmp_path / "temp", tmp_path / "summary.json"
    args = ["run", str(WORKFLOWS / "api" / f"{name}.json"), "--out", str(out), "--input", str(tmp_path / "input"),
            "--json", str(summary)]
    if name == "emovid_dataset_explore":
        args += ["--set", f"2.root={indexed_root}"]
    assert cli_main(args) == 0, capsys.readouterr().err
    result = json.loads(summary.read_text())
    previews = [e for ui in result["ui"].values() for e in ui.get("images", []) if e["type"] == "temp"]
    assert previews and all(re.fullmatch(r"ComfyUI_temp_[a-z]{5}_\d{5}_\.png", e["filename"]) for e in previews)
    files = {Path(f) for f in result["files"]}
    assert {temp / e["subfolder"] / e["filename"] for e in previews} <= files
    for e in previews:
        with Image.open(temp / e["filename"]) as im:
            assert im.format == "PNG" and min(im.size) > 100  # a rendered plot, not a placeholder
            assert json.loads(im.text["prompt"])["2"]["class_type"] in ("LoadVideo", "EmoVidDataset")
            assert np.array(im).std() > 1.0
    texts = [t for ui in result["ui"].values() for t in ui.get("text", [])]
    if name == "emovid_analyze_video":
        info = video_io.probe(clip)
        assert len(previews) == 1 and files == {temp / previews[0]["filename"]}
        assert any(f"; {info.frames} frames)" in t for t in texts)  # every decoded frame reached the analysis
    else:
        assert len(previews) == 4  # the dataset statistics' four plots
        videos = [f for f in files if f.suffix == ".webp"]
        assert len(videos) == 1 and videos[0].parent == out / "EmoVid"
        assert video_io.probe(videos[0]).frames > 1
        assert any(t.startswith("72 clips") for t in texts)


def test_load_video_components_match_the_decoded_file(sample_root, tmp_path):
    from emovid_core import video_io

    clip = _input_with_clip(sample_root, tmp_path / "in")
    with runtime.configured(input_dir=tmp_path / "in"):
        assert core_nodes.LoadVideo.INPUT_TYPES()["required"]["file"][1]["options"] == ["emovid_example.mp4"]
        (video,) = core_nodes.LoadVideo().execute("emovid_example.mp4")
        images, audio, fps = core_nodes.GetVideoComponents().execute(video)
    info = video_io.probe(clip)
    assert images.shape == (info.frames, info.height, info.width, 3) and images.dtype == torch.float32
    assert audio is None and fps == pytest.approx(info.fps)
    assert torch.equal(images, video_io.frames_to_image(video_io.read_frames(clip)))
    assert video.get_dimensions() == (info.width, info.height)


def test_every_shipped_workflow_runs_headless_or_needs_a_model_file():
    """A workflow that needs no model file must run headless (and be tested end to end); the others need a loader."""
    classes = default_classes()
    headless = set()
    for path in sorted((WORKFLOWS / "api").glob("*.json")):
        wf = json.loads(path.read_text())
        needs = core_nodes.needs_comfyui(wf, classes)
        if needs:
            assert any(ctype.endswith("Loader") for _, ctype in needs), (path.name, needs)
        else:
            assert {n["class_type"] for n in wf.values()} <= set(classes), path.name
            headless.add(path.stem)
    assert headless == set(HEADLESS_WORKFLOWS)
    for name, test in HEADLESS_WORKFLOWS.items():  # the named tests exist
        file, func = test.split("::")
        assert f"def {func}(" in (ROOT / file).read_text(), (name, test)


def test_run_refuses_a_workflow_that_needs_comfyui_before_running_anything(tmp_path, capsys):
    path = WORKFLOWS / "api" / "emovid_t2v_emotion_wan21.json"
    wf = json.loads(path.read_text())
    out = tmp_path / "out"
    assert cli_main(["run", str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert not re.search(r"^\[\d+\] ", captured.out, re.M)  # no node started
    assert not out.exists() and not (tmp_path / "temp").exists()
    err = captured.err
    core = {nid: n["class_type"] for nid, n in wf.items() if not n["class_type"].startswith("EmoVid")}
    assert set(core.values()) >= {"UNETLoader", "KSampler", "CLIPLoader", "VAEDecode"}
    for nid, ctype in core.items():
        assert f"node {nid} ({ctype}): a ComfyUI core node with no headless equivalent" in err
    assert "EmoVidLoraLoader" not in err  # the pack's own nodes are not blamed
    assert f"emovid queue {path} --server http://127.0.0.1:8188" in err

    with pytest.raises(NeedsComfyUIError) as exc:
        run_workflow(wf, out_dir=out)
    assert [n for n, _ in exc.value.nodes] == sorted(core, key=int)
    # A node that is neither core nor ours is an ordinary validation problem, pointing at ComfyUI too.
    other = {"1": {"class_type": "VHS_VideoCombine", "inputs": {}}}
    with pytest.raises(GraphValidationError, match="neither a node of this pack nor a ComfyUI core node"):
        validate(other, default_classes())


def test_cli_temp_folder_and_disable_metadata(tmp_path, capsys):
    wf = {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 3, "batch_size": 1, "color": 0x0000FF}},
          "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "plain"}},
          "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(wf))
    out, temp = tmp_path / "o", tmp_path / "previews"
    assert cli_main(["run", str(path), "--out", str(out), "--temp", str(temp), "--disable-metadata"]) == 0
    printed = capsys.readouterr().out
    saved, (preview,) = out / "plain_00001_.png", list(temp.glob("ComfyUI_temp_*_00001_.png"))
    assert f"wrote {saved}" in printed and f"wrote {preview}" in printed
    for f in (saved, preview):
        with Image.open(f) as im:
            assert im.text == {} and np.array(im)[0, 0].tolist() == [0, 0, 255]
