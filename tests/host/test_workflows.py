"""UI→API conversion, workflow checks, and the shipped example workflows (workflows/ + workflows/api/).

Core node schemas come from emovid_core/host/data/core_object_info.json (a real ComfyUI 0.3.64 /object_info, trimmed to
the nodes used); the pack's own nodes from their classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from emovid_core.host.cli import main as cli_main
from emovid_core.host.object_info import core_object_info
from emovid_core.host.workflow_convert import (
    WorkflowConversionError,
    api_diff,
    check_api,
    check_ui,
    offline_object_info,
    ui_to_api,
)

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"


class UI:
    """A small builder for UI-format (v0.4) graphs, laid out the way the frontend saves them."""

    def __init__(self):
        self.nodes, self.links = [], []

    def node(self, nid, type_, widgets=None, inputs=(), outputs=(), mode=0, title=None):
        n = {"id": nid, "type": type_, "pos": [nid * 10, 0], "size": [200, 100], "flags": {}, "order": nid,
             "mode": mode, "inputs": [{"name": nm, "type": t, "link": None, **({"widget": {"name": nm}} if w else {})}
                                      for nm, t, w in inputs],
             "outputs": [{"name": nm, "type": t, "links": []} for nm, t in outputs],
             "properties": {"Node name for S&R": type_}}
        if widgets is not None:
            n["widgets_values"] = widgets
        if title:
            n["title"] = title
        self.nodes.append(n)
        return n

    def link(self, src, slot, dst, dslot, type_):
        lid = len(self.links) + 1
        self.links.append([lid, src, slot, dst, dslot, type_])
        nodes = {n["id"]: n for n in self.nodes}
        nodes[src]["outputs"][slot]["links"].append(lid)
        nodes[dst]["inputs"][dslot]["link"] = lid
        return lid

    def graph(self, v1_links=False):
        links = self.links
        if v1_links:
            links = [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), lk)) for lk in links]
        return {"last_node_id": max(n["id"] for n in self.nodes), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": links, "groups": [], "config": {}, "extra": {}, "version": 0.4}


@pytest.fixture(scope="module")
def core():
    return core_object_info()


def _t2v_graph():
    g = UI()
    g.node(1, "UNETLoader", ["wan2.1_t2v_1.3B_fp16.safetensors", "default"], outputs=[("MODEL", "MODEL")])
    g.node(2, "LoraLoaderModelOnly", ["emo.safetensors", 0.8], inputs=[("model", "MODEL", False)],
           outputs=[("MODEL", "MODEL")])
    g.node(3, "ModelSamplingSD3", [8], inputs=[("model", "MODEL", False)], outputs=[("MODEL", "MODEL")])
    g.node(4, "KSampler", [1234, "randomize", 30, 6, "uni_pc", "simple", 1],
           inputs=[("model", "MODEL", False), ("positive", "CONDITIONING", False), ("negative", "CONDITIONING", False),
                   ("latent_image", "LATENT", False), ("seed", "INT", True)],
           outputs=[("LATENT", "LATENT")])
    g.node(5, "CLIPLoader", ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan", "default"], outputs=[("CLIP", "CLIP")])
    g.node(6, "CLIPTextEncode", ["a calm lake"], inputs=[("clip", "CLIP", False)], outputs=[("CONDITIONING", "CONDITIONING")])
    g.node(7, "CLIPTextEncode", ["blurry"], inputs=[("clip", "CLIP", False)], outputs=[("CONDITIONING", "CONDITIONING")])
    g.node(8, "EmptyHunyuanLatentVideo", [832, 480, 33, 1], outputs=[("LATENT", "LATENT")])
    g.node(9, "Reroute", None, inputs=[("", "*", False)], outputs=[("", "CLIP")])
    g.node(10, "PrimitiveNode", [777, "fixed"], outputs=[("INT", "INT")], title="seed")
    g.node(11, "Note", ["read me"])
    g.node(12, "MarkdownNote", ["# read me"])
    g.link(1, 0, 2, 0, "MODEL")
    g.link(2, 0, 3, 0, "MODEL")
    g.link(3, 0, 4, 0, "MODEL")
    g.link(5, 0, 9, 0, "CLIP")
    g.link(9, 0, 6, 0, "CLIP")
    g.link(9, 0, 7, 0, "CLIP")
    g.link(6, 0, 4, 1, "CONDITIONING")
    g.link(7, 0, 4, 2, "CONDITIONING")
    g.link(8, 0, 4, 3, "LATENT")
    g.link(10, 0, 4, 4, "INT")
    g.node(13, "VAELoader", ["wan_2.1_vae.safetensors"], outputs=[("VAE", "VAE")])
    g.node(14, "VAEDecode", None, inputs=[("samples", "LATENT", False), ("vae", "VAE", False)], outputs=[("IMAGE", "IMAGE")])
    g.node(15, "CreateVideo", [16], inputs=[("images", "IMAGE", False), ("audio", "AUDIO", False)], outputs=[("VIDEO", "VIDEO")])
    g.node(16, "SaveVideo", ["video/EmoVid", "auto", "auto"], inputs=[("video", "VIDEO", False)])
    g.link(4, 0, 14, 0, "LATENT")
    g.link(13, 0, 14, 1, "VAE")
    g.link(14, 0, 15, 0, "IMAGE")
    g.link(15, 0, 16, 0, "VIDEO")
    return g


EXPECTED_T2V = {
    "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "wan2.1_t2v_1.3B_fp16.safetensors", "weight_dtype": "default"}},
    "2": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "emo.safetensors", "strength_model": 0.8}},
    "3": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["2", 0], "shift": 8}},
    "4": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "seed": 777, "steps": 30, "cfg": 6, "sampler_name": "uni_pc",
                                               "scheduler": "simple", "positive": ["6", 0], "negative": ["7", 0],
                                               "latent_image": ["8", 0], "denoise": 1}},
    "5": {"class_type": "CLIPLoader", "inputs": {"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "type": "wan", "device": "default"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a calm lake", "clip": ["5", 0]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["5", 0]}},
    "8": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 832, "height": 480, "length": 33, "batch_size": 1}},
    "13": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_2.1_vae.safetensors"}},
    "14": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["13", 0]}},
    "15": {"class_type": "CreateVideo", "inputs": {"images": ["14", 0], "fps": 16}},
    "16": {"class_type": "SaveVideo", "inputs": {"video": ["15", 0], "filename_prefix": "video/EmoVid", "format": "auto", "codec": "auto"}},
}


def test_t2v_graph_converts_like_the_frontend(core):
    api = ui_to_api(_t2v_graph().graph(), core)
    # Seed control value skipped, PrimitiveNode inlined (its 777 wins over the stored 1234), reroute followed,
    # notes dropped, input order as the server declares it.
    assert api_diff(EXPECTED_T2V, api) == []
    assert list(api["4"]["inputs"]) == ["model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive",
                                        "negative", "latent_image", "denoise"]
    assert api["4"]["_meta"]["title"] == "KSampler"
    assert check_api(api, core) == []


def test_v1_link_objects_give_the_same_result(core):
    assert api_diff(EXPECTED_T2V, ui_to_api(_t2v_graph().graph(v1_links=True), core)) == []


def test_bypassed_node_is_rewired_by_type_and_muted_node_dropped(core):
    g = _t2v_graph()
    nodes = {n["id"]: n for n in g.nodes}
    nodes[2]["mode"] = 4  # bypass the LoRA: the sampler-shift node gets the UNETLoader's model
    nodes[10]["mode"] = 2  # mute the seed primitive: the KSampler keeps its own stored seed
    api = ui_to_api(g.graph(), core)
    assert "2" not in api and api["3"]["inputs"]["model"] == ["1", 0]
    assert api["4"]["inputs"]["seed"] == 1234
    nodes[15]["mode"] = 2  # mute CreateVideo: SaveVideo loses its required input and the check says so
    api = ui_to_api(g.graph(), core)
    assert "15" not in api and "video" not in api["16"]["inputs"]
    probs = check_api(api, core)
    assert [(p.node_id, p.input_name, p.type) for p in probs] == [("16", "video", "required_input_missing")]


def test_bypass_follows_the_frontends_slot_choice(core):
    def graph(linked_slot):
        g = UI()
        g.node(1, "EmptyImage", [64, 48, 1, 0], outputs=[("IMAGE", "IMAGE")])
        g.node(2, "ImageBatch", None, inputs=[("image1", "IMAGE", False), ("image2", "IMAGE", False)],
               outputs=[("IMAGE", "IMAGE")], mode=4)
        g.node(3, "ImageFromBatch", [0, 1], inputs=[("image", "IMAGE", False)], outputs=[("IMAGE", "IMAGE")], mode=4)
        g.node(4, "PreviewImage", None, inputs=[("images", "IMAGE", False)])
        g.link(1, 0, 2, linked_slot, "IMAGE")
        g.link(2, 0, 3, 0, "IMAGE")
        g.link(3, 0, 4, 0, "IMAGE")
        return g.graph()

    api = ui_to_api(graph(0), core)  # two bypassed nodes in a row: the preview reads the EmptyImage
    assert set(api) == {"1", "4"} and api["4"]["inputs"]["images"] == ["1", 0]
    # Output 0 passes input 0 through even when only input 1 is connected (frontend 1.27 behaviour), so the
    # preview loses its input and the check reports it instead of queueing a broken graph.
    api = ui_to_api(graph(1), core)
    assert "images" not in api["4"]["inputs"]
    assert [(p.node_id, p.type) for p in check_api(api, core)] == [("4", "required_input_missing")]
    # A node whose same-index input has another type: the first input of the link's type is used.
    info = dict(core)
    info["MaskThenImage"] = {"input": {"required": {"mask": ["MASK"], "image": ["IMAGE"]}},
                             "input_order": {"required": ["mask", "image"]}, "output": ["IMAGE"]}
    g = UI()
    g.node(1, "EmptyImage", [64, 48, 1, 0], outputs=[("IMAGE", "IMAGE")])
    g.node(2, "MaskThenImage", None, inputs=[("mask", "MASK", False), ("image", "IMAGE", False)],
           outputs=[("IMAGE", "IMAGE")], mode=4)
    g.node(3, "PreviewImage", None, inputs=[("images", "IMAGE", False)])
    g.link(1, 0, 2, 1, "IMAGE")
    g.link(2, 0, 3, 0, "IMAGE")
    assert ui_to_api(g.graph(), info)["3"]["inputs"]["images"] == ["1", 0]


def test_upload_widget_value_and_converted_widget_link_to_a_real_primitive(core):
    g = UI()
    g.node(1, "LoadImage", ["clip_frame.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")])
    g.node(2, "PrimitiveInt", [96], outputs=[("INT", "INT")])
    g.node(3, "ImageScale", ["bilinear", 512, 512, "disabled"],
           inputs=[("image", "IMAGE", False), ("width", "INT", True)], outputs=[("IMAGE", "IMAGE")])
    g.node(4, "SaveImage", ["EmoVid/frame"], inputs=[("images", "IMAGE", False)])
    g.link(1, 0, 3, 0, "IMAGE")
    g.link(2, 0, 3, 1, "INT")
    g.link(3, 0, 4, 0, "IMAGE")
    api = ui_to_api(g.graph(), core)
    assert api["1"]["inputs"] == {"image": "clip_frame.png"}
    assert api["2"]["inputs"] == {"value": 96}
    # A real node feeding a converted widget stays a link; the stored 512 is ignored.
    assert api["3"]["inputs"] == {"image": ["1", 0], "upscale_method": "bilinear", "width": ["2", 0],
                                  "height": 512, "crop": "disabled"}
    assert check_api(api, core) == []


def test_dict_widgets_values_as_saved_by_videohelpersuite(core):
    info = dict(core)
    info["VHS_VideoCombine"] = {
        "input": {"required": {"images": ["IMAGE"], "frame_rate": ["FLOAT", {"default": 8, "min": 1, "step": 1}],
                               "loop_count": ["INT", {"default": 0, "min": 0, "max": 100}],
                               "filename_prefix": ["STRING", {"default": "AnimateDiff"}],
                               "format": [["image/gif", "video/h264-mp4"]], "pingpong": ["BOOLEAN", {"default": False}],
                               "save_output": ["BOOLEAN", {"default": True}]}},
        "output": ["VHS_FILENAMES"], "output_name": ["Filenames"], "output_node": True}
    g = UI()
    g.node(1, "EmptyImage", [32, 32, 4, 0], outputs=[("IMAGE", "IMAGE")])
    g.node(2, "VHS_VideoCombine", {"frame_rate": 16, "loop_count": 0, "filename_prefix": "EmoVid", "format": "video/h264-mp4",
                                   "pingpong": False, "save_output": True, "videopreview": {"hidden": False}},
           inputs=[("images", "IMAGE", False)])
    g.link(1, 0, 2, 0, "IMAGE")
    api = ui_to_api(g.graph(), info)
    assert api["2"]["inputs"] == {"images": ["1", 0], "frame_rate": 16, "loop_count": 0, "filename_prefix": "EmoVid",
                                  "format": "video/h264-mp4", "pingpong": False, "save_output": True}


def test_unknown_node_and_bad_widget_count_are_reported_together(core):
    g = UI()
    g.node(1, "EmptyImage", [64, 48], outputs=[("IMAGE", "IMAGE")])
    g.node(2, "SomePackNode", [1], inputs=[("images", "IMAGE", False)])
    g.link(1, 0, 2, 0, "IMAGE")
    with pytest.raises(WorkflowConversionError) as ei:
        ui_to_api(g.graph(), core)
    msg = str(ei.value)
    assert "node 1 (EmptyImage)" in msg and "widgets_values has 2 value(s)" in msg
    assert "node 2 (SomePackNode)" in msg and "install the custom node pack" in msg
    with pytest.raises(ValueError, match="not a UI-format workflow"):
        ui_to_api({"1": {"class_type": "EmptyImage", "inputs": {}}}, core)


def test_check_api_reports_range_combo_type_and_link_problems_but_not_model_files(core):
    api = json.loads(json.dumps(EXPECTED_T2V))
    api["4"]["inputs"]["steps"] = 0
    api["4"]["inputs"]["sampler_name"] = "not_a_sampler"
    api["4"]["inputs"]["cfg"] = "six"
    api["14"]["inputs"]["vae"] = ["1", 0]  # a MODEL into a VAE input
    api["15"]["inputs"]["images"] = ["99", 0]
    api["1"]["inputs"]["unet_name"] = "my_own_finetune.safetensors"  # model files depend on the machine: fine
    probs = {(p.node_id, p.input_name, p.type) for p in check_api(api, core)}
    assert probs == {("4", "steps", "value_smaller_than_min"), ("4", "sampler_name", "value_not_in_list"),
                     ("4", "cfg", "invalid_input_type"), ("14", "vae", "return_type_mismatch"),
                     ("15", "images", "bad_linked_input")}
    api2 = {"1": {"class_type": "NoSuchNode", "inputs": {}}, "2": {"inputs": {}}}
    assert {p.type for p in check_api(api2, core)} == {"invalid_prompt"}


def test_cli_to_api_and_check(tmp_path, capsys):
    ui_path = tmp_path / "t2v.json"
    ui_path.write_text(json.dumps(_t2v_graph().graph()))
    out = tmp_path / "api" / "t2v.json"
    assert cli_main(["workflow", "to-api", str(ui_path), "-o", str(out)]) == 0
    assert api_diff(EXPECTED_T2V, json.loads(out.read_text())) == []
    assert cli_main(["workflow", "check", "--twins", str(ui_path), str(out)]) == 0
    bad = json.loads(out.read_text())
    bad["8"]["inputs"]["length"] = 0
    out.write_text(json.dumps(bad))
    capsys.readouterr()
    assert cli_main(["workflow", "check", "--twins", str(ui_path)]) == 1
    text = capsys.readouterr().out
    assert "FAIL" in text and "node 8 (EmptyHunyuanLatentVideo) input 'length': twin 0, conversion 33" in text
    assert cli_main(["workflow", "check", str(out)]) == 1
    assert "value_smaller_than_min" in capsys.readouterr().out
    assert cli_main(["workflow", "to-api", str(tmp_path / "missing.json")]) == 2


def test_core_snapshot_is_object_info_shaped_with_input_order(core):
    for name, info in core.items():
        assert info["name"] == name and "input_order" in info and isinstance(info["output"], list)
    assert core["KSampler"]["input"]["required"]["seed"][1]["control_after_generate"] is True


# ------------------------------------------------------------------------------ the shipped examples


def _ui_files():
    # Exactly what ComfyUI's /workflow_templates lists (app/custom_node_manager.py: <folder>/*.json, top level).
    return sorted(WORKFLOWS.glob("*.json"))


def _script(name):
    """A module of scripts/ (not a package), imported by path."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up while the class is made
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def full_info():
    return offline_object_info()


@pytest.fixture(scope="module")
def wl():
    """scripts/workflow_layout.py: the frontend's node sizing model the builder lays the examples out with."""
    return _script("workflow_layout")


def test_examples_exist_with_twins_previews_and_catalog():
    files = _ui_files()
    if not files:
        pytest.skip("no example workflows yet")
    # The catalogue is not in the template browser's glob, so it shows no card of its own.
    assert not (WORKFLOWS / "index.json").exists() and not (WORKFLOWS / "index.jpg").exists()
    catalog = json.loads((WORKFLOWS / "catalog" / "index.json").read_text())
    entries = {e["name"]: e for e in catalog["emovid_examples"]}
    assert set(entries) == {p.stem for p in files}
    for p in files:
        e = entries[p.stem]
        assert e["title"].strip() and e["title"] != p.stem and len(e["description"]) > 40, e
        for key in ("ui", "api", "preview"):
            assert (ROOT / e[key]).is_file(), e[key]
        with Image.open(WORKFLOWS / f"{p.stem}.jpg") as im:  # the template browser hard-codes .jpg
            # square: the card shows the thumbnail contained in a 256 x 256 box
            assert im.format == "JPEG" and im.size[0] == im.size[1] >= 256
        assert (WORKFLOWS / "api" / p.name).is_file(), f"missing API twin for {p.name}"
    # Only UI-format graphs in the top folder: ComfyUI's template browser cannot open API files. The fields the
    # frontend's workflow schema (zComfyWorkflow, frontend 1.27) requires are all there.
    ids = set()
    for p in files:
        data = json.loads(p.read_text())
        assert {"last_node_id", "last_link_id", "nodes", "links", "version"} <= set(data), p.name
        ids.add(data["id"])
        for n in data["nodes"]:
            assert {"id", "type", "pos", "size", "flags", "order", "mode", "properties"} <= set(n), (p.name, n["id"])
            assert len(n["pos"]) == 2 and len(n["size"]) == 2
        for lk in data["links"]:
            assert len(lk) == 6 and all(isinstance(v, int) for v in lk[:5]) and isinstance(lk[5], str)
        assert data["last_node_id"] >= max(n["id"] for n in data["nodes"])
        assert data["last_link_id"] >= max([lk[0] for lk in data["links"]], default=0)
    assert len(ids) == len(files)  # distinct workflow ids
    # The one text the frontend lets a pack set for its templates: the category label (by pack folder name).
    locale = json.loads((ROOT / "locales" / "en" / "main.json").read_text())
    assert set(locale["templateWorkflows"]["category"]) == {"ComfyUI-EmoVid", "comfyui-emovid"}


def test_sizing_model_matches_the_frontend(wl, full_info):
    """computeSize of frontend 1.27.10, on nodes whose drawn size is known."""
    def node(type_, **kw):
        from emovid_core.host.workflow_convert import _is_widget, input_specs

        info = full_info[type_]
        return {"type": type_, "inputs": [{"name": s.name} for s in input_specs(info) if not _is_widget(s)],
                "outputs": [{"name": n} for n in info.get("output_name") or info["output"]], **kw}

    # Sample Clip: 9 output rows + 15 widgets (14 inputs + the seed's control) = 180 + 15 * 24 + 8 + 6: the
    # 554 px the frontend draws (issue 12 measured it on screen; the old builder wrote 476).
    assert wl.compute_size(wl.node_shape(node("EmoVidSampleClip"), full_info))[1] == 554
    # VAE Decode: two input rows, no widgets: 2 * 20 + 6; width = the 140 px LiteGraph minimum.
    assert wl.compute_size(wl.node_shape(node("VAEDecode"), full_info)) == (140, 46)
    # KSampler: 4 input rows, 7 widgets (seed, control, steps, cfg, sampler, scheduler, denoise).
    assert wl.compute_size(wl.node_shape(node("KSampler"), full_info))[1] == 4 * 20 + 7 * 24 + 8 + 6
    # A multiline text box is a DOM widget of min height 50 (+4); a new node is at least 400 x 200.
    clip_text = wl.node_shape(node("CLIPTextEncode"), full_info)
    assert wl.compute_size(clip_text)[1] == 20 + 54 + 8 + 6
    assert wl.frontend_size(clip_text) == (400, 200)
    # Upload combos bring a button widget; previews add what a run adds (video 256 + 4).
    load_video = wl.node_shape(node("LoadVideo"), full_info)
    assert [w.label for w in load_video.widgets] == ["file", "upload"]
    assert wl.frontend_size(load_video)[1] == 20 + 2 * 24 + 8 + 6 + 260
    # Titles set the width: 30 + Arial 14px text + 9.9.
    wide = wl.node_shape({**node("VAEDecode"), "title": "A rather long custom title for a decoder"}, full_info)
    assert wl.compute_size(wide)[0] == pytest.approx(30 + wl.text_width(wide.title, 14) + 9.9)
    assert wl.text_width("MODEL", 12) == pytest.approx(12 * (833 + 778 + 722 + 667 + 556) / 1000)


def test_sizing_model_matches_the_real_frontend(wl, full_info):
    """Every node type of the examples against computeSize() read from frontend 1.27.10 in Chromium; notes against
    the text heights it rendered."""
    from emovid_core.host.workflow_convert import _is_widget, input_specs

    measured = json.loads((ROOT / "tests" / "data" / "frontend_measured.json").read_text())
    assert len(measured["nodes"]) >= 30
    for entry in measured["nodes"]:
        info = full_info.get(entry["type"], {})
        node = {"type": entry["type"], "title": entry["title"],
                "inputs": [{"name": s.name} for s in input_specs(info) if not _is_widget(s)],
                "outputs": [{"name": n} for n in info.get("output_name") or info.get("output", [])]}
        w, h = wl.compute_size(wl.node_shape(node, full_info))
        # heights exact; widths to a pixel (Chromium's Arial vs the metric table)
        assert h == entry["compute_size"][1] and abs(w - entry["compute_size"][0]) <= 1, (entry, (w, h))
    # Markdown notes: the text-height estimate is never short of what the frontend renders (no scrollbar).
    for note in measured["markdown"]:
        est = wl.markdown_height(note["text"], note["width"])
        assert note["text_height"] <= est <= 1.3 * note["text_height"], (note["text"][:40], est)


@pytest.mark.parametrize("path", _ui_files(), ids=lambda p: p.stem)
def test_example_reads_well_in_the_frontend(path, wl, full_info):
    """No node smaller than the frontend draws it, no two overlapping (title bars included), every node in a
    titled stage group, titled notes, and the whole graph shown at 75 % zoom or more in a 1440 x 900 window."""
    ui = json.loads(path.read_text())
    nodes = ui["nodes"]
    for n in nodes:
        w, h = wl.compute_size(wl.node_shape(n, full_info))
        assert n["size"][0] >= w and n["size"][1] >= h, (n["id"], n["type"], n["size"], (w, h))
        if n["type"] in wl.MEDIA_PREVIEW:  # room for the preview a run adds, so the node does not grow
            assert n["size"][1] >= h + wl.MEDIA_PREVIEW[n["type"]], (n["id"], n["type"])
    rects = {n["id"]: wl.node_rect(n) for n in nodes}
    clashes = [(a, b) for a in rects for b in rects if a < b and wl.overlaps(rects[a], rects[b])]
    assert clashes == [], f"overlapping nodes {clashes}"
    groups = ui["groups"]
    assert len(groups) >= 3 and all(g["title"].strip() and g["title"] != "Group" for g in groups)
    assert [g["id"] for g in groups] == list(range(1, len(groups) + 1))
    for i, a in enumerate(groups):
        assert {"title", "bounding", "color", "font_size"} <= set(a) and len(a["bounding"]) == 4
        assert not any(wl.overlaps(a["bounding"], b["bounding"]) for b in groups[i + 1:]), a["title"]
    for n in nodes:
        inside = [g["title"] for g in groups if wl.contains(g["bounding"], rects[n["id"]])]
        if n["type"] in wl.NOTE_TYPES:
            assert inside == [] and n.get("title", "").strip() not in ("", "Note", "Markdown Note"), n["id"]
        else:
            assert len(inside) == 1, (n["id"], n["type"], inside)
            # below the group's title band
            g = next(g for g in groups if g["title"] == inside[0])
            assert rects[n["id"]][1] >= g["bounding"][1] + g["font_size"] * 1.4, (n["id"], inside)
    # Measured in frontend 1.27.10 (scripts/frontend_check.py, headless Chromium, 1440 x 900 window): the canvas
    # is 1400 x 860 and the workflow tabs cover its top 37 px, so 1400 x 823 is what a user sees. At 75 % that
    # holds 1866 x 1097 canvas units (nodes, title bars and groups).
    x, y, w, h = wl.workflow_bounds(ui)
    assert w <= 1400 / 0.75 and h <= 823 / 0.75, f"{w:.0f} x {h:.0f} canvas units do not fit 1400 x 823 at 75 % zoom"
    # The stored view shows the whole graph on load, at 75 % or more, on that canvas below the tabs.
    ds = ui["extra"]["ds"]
    assert ds["scale"] >= 0.75, ds
    sx0, sy0 = (x + ds["offset"][0]) * ds["scale"], (y + ds["offset"][1]) * ds["scale"]
    assert 0 <= sx0 and 37 <= sy0 and sx0 + w * ds["scale"] <= 1400 and sy0 + h * ds["scale"] <= 860


def test_stages_read_left_to_right():
    """Stage groups follow load -> condition -> sample -> decode -> measure -> save in reading order."""
    bw = _script("build_workflows")
    order = list(bw.STAGES)
    colour = {c: k for k, (_, c) in bw.STAGES.items()}
    for p in _ui_files():
        groups = json.loads(p.read_text())["groups"]
        # reading order: by column (x), then top to bottom
        seq = [order.index(colour[g["color"]]) for g in sorted(groups, key=lambda g: (g["bounding"][0], g["bounding"][1]))]
        assert seq == sorted(seq), (p.name, [g["title"] for g in groups])


@pytest.mark.parametrize("path", _ui_files(), ids=lambda p: p.stem)
def test_example_converts_to_its_twin_and_passes_checks(path, full_info):
    ui = json.loads(path.read_text())
    api, problems = check_ui(ui, full_info, source=path.name)
    assert [str(p) for p in problems] == []
    twin = json.loads((WORKFLOWS / "api" / path.name).read_text())
    assert api_diff(twin, api) == []
    assert [str(p) for p in check_api(twin, full_info)] == []


def test_example_files_match_their_builder():
    """workflows/ is generated by scripts/build_workflows.py; a schema change must be rebuilt on purpose."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_workflows.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr + "\nrebuild with: python scripts/build_workflows.py"


def test_headless_example_runs_without_comfyui(tmp_path):
    """`emovid run` executes the headless example's API twin (tiny built-in model) and writes a real video."""
    from emovid_core.host.graph import load_workflow, run_workflow
    from emovid_core.video_io import probe

    wf = load_workflow(WORKFLOWS / "api" / "emovid_headless_diffusers.json")
    result = run_workflow(wf, out_dir=tmp_path)
    videos = [f for f in result.files if f.suffix == ".mp4"]
    assert len(videos) == 1
    info = probe(videos[0])
    assert info.frames == 9
    attrs = next(ui for ui in result.ui.values() if "text" in ui and "images" not in ui)
    assert attrs["text"]
