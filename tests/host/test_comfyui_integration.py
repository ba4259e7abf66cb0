"""The pack inside a real ComfyUI (opt-in: set COMFYUI_DIR; its python is found by tests/helpers/comfyui_env.py:
COMFYUI_PYTHON, COMFYUI_DIR/.venv or venv, or this interpreter when it imports ComfyUI; otherwise skipped).

    COMFYUI_DIR=/path/to/ComfyUI .venv/bin/python -m pytest tests/host/test_comfyui_integration.py -q

One server is started for the module on a free 127.0.0.1 port with a temporary --base-directory (so nothing of
the user's is touched): the pack is linked into its custom_nodes, tiny models are written into its models/
folders under the official Wan2.1 file names, and only that server is stopped at the end.

Substitutions, because full-size components cannot run on a CPU test machine:
- Text encoder: umt5-xxl (CLIPLoader type "wan", 5.7 B parameters) is replaced in the generation graphs by a
  test-only node (``TestOnlyTextToWanConditioning``, written into the temporary custom_nodes, never shipped) that
  turns the prompt strings from the pack's Emotion Prompt / Emotion Sweep nodes into a deterministic
  [1, 16, 4096] CONDITIONING. The pack's Emotion Encode runs against a real (random-weight) CLIP-L text encoder
  loaded by core CLIPLoader instead, and must equal Emotion Prompt → core CLIPTextEncode.
- CLIP vision (ViT-H, 632 M parameters) is left out of the I2V graph: Wan I2V runs without clip_vision_output.
- DiT: tiny random Wan2.1 T2V/I2V checkpoints in the original key layout (emovid_core.wan.dit_keys).
- VAE: the real Wan2.1 VAE architecture (127 M parameters) with random weights, built with ComfyUI's own class.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emovid_core.emotions import EMOTIONS
from tests.helpers.comfyui_env import find_comfyui

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
_COMFY_DIR, COMFYUI_PYTHON, _SKIP_WHY = find_comfyui()
COMFYUI_DIR = str(_COMFY_DIR) if _COMFY_DIR else None

pytestmark = pytest.mark.skipif(COMFYUI_PYTHON is None, reason=_SKIP_WHY or "no ComfyUI")

TEST_SUPPORT_NODES = r'''
"""TEST ONLY (written by tests/host/test_comfyui_integration.py into a temporary custom_nodes folder; never shipped)."""
import hashlib
import os

import torch
from safetensors.torch import save_file

import folder_paths


class TestOnlyTextToWanConditioning:
    """Stands in for umt5-xxl, which cannot be loaded on a CPU test machine: a deterministic function of the
    text giving Wan's context width (4096), so different prompts give different conditionings."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "testing"
    OUTPUT_NODE = True

    def encode(self, text):
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        cond = torch.randn(1, 16, 4096, generator=torch.Generator().manual_seed(seed)) * 0.5
        return {"ui": {"text": [text]}, "result": ([[cond, {}]],)}


class TestOnlySaveConditioning:
    """Writes the first conditioning tensor to the output folder so the test can download and compare it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "name": ("STRING", {"default": "cond"})}}

    RETURN_TYPES = ()
    FUNCTION = "save"
    CATEGORY = "testing"
    OUTPUT_NODE = True

    def save(self, conditioning, name):
        out = os.path.join(folder_paths.get_output_directory(), "emovid_test")
        os.makedirs(out, exist_ok=True)
        save_file({"cond": conditioning[0][0].contiguous().float()}, os.path.join(out, name + ".safetensors"))
        return {"ui": {"emovid_tensors": [{"filename": name + ".safetensors", "subfolder": "emovid_test",
                                           "type": "output"}]}}


class TestOnlyImageDigest:
    """sha256 of an IMAGE's float32 bytes, shown as text: equal digests mean bit-identical frames."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    RETURN_TYPES = ()
    FUNCTION = "digest"
    CATEGORY = "testing"
    OUTPUT_NODE = True

    def digest(self, images):
        data = images.detach().cpu().float().contiguous().numpy().tobytes()
        return {"ui": {"text": [hashlib.sha256(data).hexdigest()]}}


NODE_CLASS_MAPPINGS = {"TestOnlyTextToWanConditioning": TestOnlyTextToWanConditioning,
                       "TestOnlySaveConditioning": TestOnlySaveConditioning,
                       "TestOnlyImageDigest": TestOnlyImageDigest}
'''

MAKE_VAE = r'''
import sys
out = sys.argv[1]
sys.argv = [sys.argv[0], "--cpu"]  # ComfyUI reads its flags at import; without --cpu it looks for CUDA
import comfy.options
comfy.options.enable_args_parsing()
import torch
from safetensors.torch import save_file
import comfy.ldm.wan.vae as v
torch.manual_seed(0)
m = v.WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
             temperal_downsample=[False, True, True], dropout=0.0)
# ComfyUI's layers skip weight init (torch.empty), so initialise every tensor here: unit norms, zero biases,
# weights N(0, 1/fan_in) so activations stay finite through the decoder.
g = torch.Generator().manual_seed(0)
sd = {}
for k, t in m.state_dict().items():
    if k.endswith("gamma"):
        sd[k] = torch.ones_like(t)
    elif k.endswith("bias"):
        sd[k] = torch.zeros_like(t)
    else:
        fan_in = max(1, t[0].numel())
        sd[k] = torch.randn(t.shape, generator=g) / fan_in ** 0.5
save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()}, out)
'''

T2V_UNET = "wan2.1_t2v_1.3B_fp16.safetensors"
I2V_UNET = "wan2.1_i2v_480p_14B_fp16.safetensors"
VAE_NAME = "wan_2.1_vae.safetensors"
T2V_LORA = "emovid_wan2.1_t2v_1.3B_lora.safetensors"
CLIP_L = "clip_l_random_test.safetensors"


def _python() -> str:
    return COMFYUI_PYTHON


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _write_models(base: Path, py: str) -> None:
    import torch
    from safetensors.torch import save_file

    from emovid_core.lora.formats import write_lora
    from emovid_core.lora.testing import random_lora
    from emovid_core.wan.dit_keys import write_tiny_wan

    models = base / "models"
    write_tiny_wan(models / "diffusion_models" / T2V_UNET)
    write_tiny_wan(models / "diffusion_models" / I2V_UNET, in_dim=36)
    write_lora(random_lora(seed=3, scale=0.3), models / "loras" / T2V_LORA, fmt="comfy")
    (models / "vae").mkdir(parents=True, exist_ok=True)
    subprocess.run([py, "-c", MAKE_VAE, str(models / "vae" / VAE_NAME)], cwd=COMFYUI_DIR, check=True, timeout=300)
    # A CLIP-L text encoder with random weights (ComfyUI's SD1 config is fixed; 123 M parameters).
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(0)
    te = CLIPTextModelWithProjection(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                                    num_hidden_layers=12, projection_dim=768))
    (models / "text_encoders").mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.float16).contiguous() for k, v in te.state_dict().items()},
              str(models / "text_encoders" / CLIP_L))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from emovid_core.dataset.synthetic import make_sample
    from emovid_core.host.queue_client import ComfyClient

    py = _python()
    base = tmp_path_factory.mktemp("comfyui_base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "ComfyUI-EmoVid").symlink_to(ROOT, target_is_directory=True)
    (base / "custom_nodes" / "emovid_test_support.py").write_text(TEST_SUPPORT_NODES)
    _write_models(base, py)
    make_sample(base / "input" / "EmoVid", seed=0)
    port = _free_port()
    log_path = base / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [py, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
         "--database-url", "sqlite:///:memory:", "--base-directory", str(base)],
        cwd=COMFYUI_DIR, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/system_stats", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ComfyUI did not answer within 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        client = ComfyClient(url, log=lambda m: None)
        yield {"url": url, "base": base, "client": client, "log": log_path, "info": client.object_info()}
    finally:
        proc.terminate()  # only the server this fixture started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _api(name: str) -> dict:
    return json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())


def _find(wf: dict, class_type: str) -> str:
    ids = [k for k, v in wf.items() if v["class_type"] == class_type]
    assert len(ids) == 1, f"{class_type}: {ids}"
    return ids[0]


def _next_id(wf: dict) -> str:
    return str(max(int(k) for k in wf) + 1)


def _replace_text_encoder(wf: dict, caption: str | None, emotion: str) -> None:
    """Swap CLIPLoader(wan) + EmoVid Emotion Encode for EmoVid Emotion Prompt + the test-only encoder."""
    enc = _find(wf, "EmoVidEmotionEncode")
    del wf[_find(wf, "CLIPLoader")]
    ins = wf.pop(enc)["inputs"]
    wf[enc] = {"class_type": "EmoVidEmotionPrompt", "inputs": {
        k: ins[k] for k in ("caption", "emotion", "intensity", "template", "negative_prompt", "negative_add_opposite")}}
    if caption is not None:
        wf[enc]["inputs"]["caption"] = caption
    wf[enc]["inputs"]["emotion"] = emotion
    pos_id, neg_id = _next_id(wf), str(int(_next_id(wf)) + 1)
    wf[pos_id] = {"class_type": "TestOnlyTextToWanConditioning", "inputs": {"text": [enc, 0]}}
    wf[neg_id] = {"class_type": "TestOnlyTextToWanConditioning", "inputs": {"text": [enc, 1]}}
    for node in wf.values():
        for k, v in node["inputs"].items():
            if v == [enc, 0] and node["class_type"] != "TestOnlyTextToWanConditioning":
                node["inputs"][k] = [pos_id, 0]
            elif v == [enc, 1] and node["class_type"] != "TestOnlyTextToWanConditioning":
                node["inputs"][k] = [neg_id, 0]


def _probe(path: Path):
    from emovid_core.video_io import probe

    return probe(path)


# ----------------------------------------------------------------------------------------------- tests


def test_pack_imports_and_object_info_lists_every_node(server):
    from emovid_core.host.schema import load_pack_nodes
    from emovid_core.host.workflow_convert import api_diff, ui_to_api

    log = server["log"].read_text()
    assert re.search(r"seconds: .*ComfyUI-EmoVid\n", log), log[-2000:]
    assert "ComfyUI-EmoVid (IMPORT FAILED)" not in log and "node group" not in log
    ours = set(load_pack_nodes()[0])
    assert ours <= set(server["info"]), sorted(ours - set(server["info"]))
    # The template browser sees our examples (UI files) ...
    with urllib.request.urlopen(server["url"] + "/workflow_templates") as r:
        templates = json.loads(r.read())
    expected = {p.stem for p in WORKFLOWS.glob("*.json")}
    assert set(templates["ComfyUI-EmoVid"]) == expected
    # ... and each converts, with the real server's schemas, to exactly its checked-in API twin.
    for p in WORKFLOWS.glob("emovid_*.json"):
        assert api_diff(_api(p.stem), ui_to_api(json.loads(p.read_text()), server["info"])) == [], p.name


def test_analyze_example_on_an_uploaded_video(server, tmp_path):
    from emovid_core.attributes import clip_attributes
    from emovid_core.video_io import read_frames, write_video

    frames = np.zeros((12, 48, 64, 3), np.uint8)
    frames[..., 0] = np.linspace(40, 220, 12, dtype=np.uint8)[:, None, None]  # brightening red clip
    frames[..., 2] = 90
    video = write_video(frames, tmp_path / "emovid_example.mp4", fps=12)
    wf = _api("emovid_analyze_video")
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=300,
                               uploads=[f"{_find(wf, 'LoadVideo')}.file={video}"])
    plot = [f for f in job.files if f.suffix == ".png"]
    assert len(plot) == 1 and Image.open(plot[0]).size[0] > 200
    text = " ".join(job.outputs[_find(wf, "EmoVidFrameAttributes")]["text"])
    raw_b = float(re.search(r"raw ([0-9.]+) ", text).group(1))
    # Same numbers as the headless analysis of the same file (decoders may differ by rounding only).
    ref = clip_attributes(read_frames(video, progress=False), stride=1)
    assert abs(raw_b - ref.brightness_raw) < 0.02 * max(1.0, abs(ref.brightness_raw))
    assert "12 frames" in text


def test_dataset_example(server, tmp_path):
    wf = _api("emovid_dataset_explore")
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=300)
    pngs = [f for f in job.files if f.suffix == ".png"]
    webps = [f for f in job.files if f.suffix == ".webp"]
    assert pngs and webps
    with Image.open(webps[0]) as im:
        assert getattr(im, "n_frames", 1) > 1
    stats_text = " ".join(job.outputs[_find(wf, "EmoVidDatasetStats")]["text"])
    assert "clips" in stats_text


def test_headless_example_also_runs_in_comfyui(server, tmp_path):
    job = server["client"].run(_api("emovid_headless_diffusers"), out_dir=tmp_path / "out", timeout=600)
    mp4 = [f for f in job.files if f.suffix == ".mp4"]
    assert len(mp4) == 1 and _probe(mp4[0]).frames == 9


def test_t2v_example_with_tiny_models(server, tmp_path):
    wf = _api("emovid_t2v_emotion_wan21")
    _replace_text_encoder(wf, None, "fear")
    sets = [f"{_find(wf, 'EmptyHunyuanLatentVideo')}.width=64", f"{_find(wf, 'EmptyHunyuanLatentVideo')}.height=64",
            f"{_find(wf, 'EmptyHunyuanLatentVideo')}.length=5", f"{_find(wf, 'KSampler')}.steps=2"]
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=600, overrides=sets)
    mp4 = [f for f in job.files if f.suffix == ".mp4"]
    assert len(mp4) == 1
    info = _probe(mp4[0])
    assert (info.frames, info.width, info.height) == (5, 64, 64)  # 2 latent frames -> 4*2-3 frames
    lora_report = " ".join(job.outputs.get(_find(wf, "EmoVidLoraLoader"), {}).get("text", []))
    attrs = " ".join(job.outputs[_find(wf, "EmoVidFrameAttributes")]["text"])
    assert "5 frames" in attrs
    texts = [t for k, v in job.outputs.items() if wf[k]["class_type"] == "TestOnlyTextToWanConditioning"
             for t in v["text"]]
    assert any('"fear" emotion' in t for t in texts), texts
    assert lora_report == "" or "error" not in lora_report.lower()


def test_sweep_example_gives_eight_videos(server, tmp_path):
    wf = _api("emovid_emotion_sweep_wan21")
    sweep = _find(wf, "EmoVidEmotionSweep")
    del wf[_find(wf, "CLIPLoader")]
    for nid in [k for k, v in wf.items() if v["class_type"] == "CLIPTextEncode"]:
        wf[nid] = {"class_type": "TestOnlyTextToWanConditioning", "inputs": {"text": wf[nid]["inputs"]["text"]}}
    lat = _find(wf, "EmptyHunyuanLatentVideo")
    sets = [f"{lat}.width=64", f"{lat}.height=64", f"{lat}.length=5", f"{_find(wf, 'KSampler')}.steps=1"]
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=600, overrides=sets)
    mp4 = sorted(f for f in job.files if f.suffix == ".mp4")
    assert len(mp4) == 8 and all(_probe(f).frames == 5 for f in mp4)
    prompts = [t for k, v in job.outputs.items() if k != sweep and wf[k]["class_type"] == "TestOnlyTextToWanConditioning"
               for t in v["text"] if "emotion" in t]
    emotions = {m.group(1) for t in prompts for m in [re.search(r'"(\w+)" emotion', t)] if m}
    assert emotions == {"amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness"}
    assert len(set(prompts)) == 8
    # One attribute report per video. (The videos themselves need not differ: a random-weight VAE saturates.)
    assert len(job.outputs[_find(wf, "EmoVidFrameAttributes")]["text"]) == 8


def test_i2v_example_from_a_dataset_clip(server, tmp_path):
    wf = _api("emovid_i2v_from_clip_wan21")
    clip = _find(wf, "EmoVidSampleClip")
    _replace_text_encoder(wf, [clip, 2], "sadness")
    del wf[_find(wf, "CLIPVisionLoader")], wf[_find(wf, "CLIPVisionEncode")]
    w2v = _find(wf, "WanImageToVideo")
    del wf[w2v]["inputs"]["clip_vision_output"]
    sets = [f"{w2v}.width=64", f"{w2v}.height=64", f"{w2v}.length=5", f"{_find(wf, 'KSampler')}.steps=2"]
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=600, overrides=sets)
    mp4 = [f for f in job.files if f.suffix == ".mp4"]
    assert len(mp4) == 1 and (_probe(mp4[0]).frames, _probe(mp4[0]).width) == (5, 64)
    start = [f for f in job.files if "temp" in f.parts and f.suffix == ".png"]
    assert start, job.files  # the clip's first frame, previewed by a core node
    texts = [t for k, v in job.outputs.items() if wf[k]["class_type"] == "TestOnlyTextToWanConditioning"
             for t in v["text"]]
    assert any('"sadness" emotion' in t and len(t) > 40 for t in texts)  # caption from the clip + emotion


def test_emotion_nodes_with_a_real_clip_text_encoder(server, tmp_path):
    """Emotion Prompt strings feed core CLIPTextEncode; Emotion Encode on the same CLIP gives the same tensor."""
    from safetensors.torch import load_file

    cap = "A dog runs across a snowy field."
    wf = {
        "1": {"class_type": "CLIPLoader", "inputs": {"clip_name": CLIP_L, "type": "stable_diffusion", "device": "default"}},
        "2": {"class_type": "EmoVidEmotionPrompt", "inputs": {"caption": cap, "emotion": "excitement"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": ["2", 0], "clip": ["1", 0]}},
        "4": {"class_type": "EmoVidEmotionEncode", "inputs": {"clip": ["1", 0], "caption": cap, "emotion": "excitement"}},
        "5": {"class_type": "TestOnlySaveConditioning", "inputs": {"conditioning": ["3", 0], "name": "core"}},
        "6": {"class_type": "TestOnlySaveConditioning", "inputs": {"conditioning": ["4", 0], "name": "emovid"}},
        "7": {"class_type": "EmoVidEmotionPrompt", "inputs": {"caption": cap, "emotion": "sadness"}},
        "8": {"class_type": "CLIPTextEncode", "inputs": {"text": ["7", 0], "clip": ["1", 0]}},
        "9": {"class_type": "TestOnlySaveConditioning", "inputs": {"conditioning": ["8", 0], "name": "sad"}},
    }
    # Fill the optional widgets with the nodes' defaults, as the frontend would.
    for nid in ("2", "4", "7"):
        spec = server["info"][wf[nid]["class_type"]]["input"]["required"]
        for k, v in spec.items():
            if k not in wf[nid]["inputs"] and len(v) > 1 and "default" in v[1]:
                wf[nid]["inputs"][k] = v[1]["default"]
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=300)
    t = {f.stem: load_file(f)["cond"] for f in job.files if f.suffix == ".safetensors"}
    assert set(t) == {"core", "emovid", "sad"}
    assert t["core"].shape[-1] == 768 and t["core"].shape[1] >= 77
    assert np.array_equal(t["core"].numpy(), t["emovid"].numpy())
    assert not np.array_equal(t["core"].numpy(), t["sad"].numpy())


def test_frame_attributes_on_frames_from_core_nodes(server, tmp_path):
    src = tmp_path / "grey.png"
    Image.new("RGB", (40, 30), (128, 128, 128)).save(src)
    wf = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 3, "color": 0xFF0000}},
        "2": {"class_type": "EmoVidFrameAttributes", "inputs": {"images": ["1", 0], "stride": 1, "fps": 16.0}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
        "4": {"class_type": "EmoVidFrameAttributes", "inputs": {"images": ["3", 0], "stride": 1, "fps": 16.0}},
    }
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=300, uploads=[f"3.image={src}"])
    red = " ".join(job.outputs["2"]["text"])
    grey = " ".join(job.outputs["4"]["text"])
    assert "3 frames" in red and "1 frame" in grey
    c_red = float(re.search(r"raw [0-9.]+ ([0-9.]+) ", red).group(1))
    c_grey = float(re.search(r"raw [0-9.]+ ([0-9.]+) ", grey).group(1))
    assert c_red > 0.5 > c_grey == 0.0  # pure red is saturated; grey has no colour


def test_emotion_grade_and_drift_on_frames_from_core_nodes(server, tmp_path):
    # Brown frames from core EmptyImage (V 0.5, S 0.5) graded to typed targets; the plot goes to a core image node.
    wf = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 4, "color": 0x806040}},
        "2": {"class_type": "EmoVidEmotionGrade", "inputs": {
            "images": ["1", 0], "emotion": "none", "strength": 1.0, "max_hue_shift": 30.0, "protect_skin": 0.0,
            "smooth_sigma": 6.0, "mode": "clip", "brightness": 0.3, "colorfulness": 0.3}},
        "3": {"class_type": "EmoVidDriftCorrect", "inputs": {
            "images": ["2", 0], "reference_frame": 0, "correct_hue": True, "strength": 1.0, "max_hue_shift": 30.0,
            "protect_skin": 0.0, "smooth_sigma": 0.0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 2]}},
        "5": {"class_type": "EmoVidFrameAttributes", "inputs": {"images": ["3", 0], "stride": 1, "fps": 16.0}},
    }
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=300)
    report = job.outputs["2"]["text"][0]
    assert "within 0.01 of the goal: yes" in report and "brightness    before 0.5020" in report
    assert re.search(r"raw 0\.30\d+ 0\.30\d+ ", job.outputs["5"]["text"][0])
    assert "EmoVid drift correction" in job.outputs["3"]["text"][0]
    assert any(f.suffix == ".png" for f in job.files)  # the before/after plot reached PreviewImage


def test_emotion_classifier_nodes_on_frames_from_core_nodes(server, tmp_path):
    """Both classifier backends that need no VLM, resolved through ComfyUI's model folders (models/emovid_classifiers
    for the CLIP folder and the probe, models/clip_vision for the probe's vision file), on core EmptyImage frames."""
    import shutil

    from emovid_core.evaluation.probe import LinearProbe, save_probe
    from emovid_core.evaluation.tiny import ensure_tiny_clip, export_clip_vision_file

    models = server["base"] / "models"
    shutil.copytree(ensure_tiny_clip("tiny"), models / "emovid_classifiers" / "tiny_clip", dirs_exist_ok=True)
    export_clip_vision_file("tiny", models / "clip_vision" / "tiny_vision.safetensors")
    rng = np.random.default_rng(0)
    save_probe(LinearProbe(rng.normal(size=(8, 32)), rng.normal(size=8), np.zeros(32), np.ones(32), "moved/elsewhere", 4),
               models / "emovid_classifiers" / "tiny_probe.safetensors")
    wf = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 5, "color": 0xFF0000}},
        "2": {"class_type": "EmoVidEmotionClassifier", "inputs": {"backend": "clip", "model": "tiny_clip", "vision": "",
                                                                  "frames": 0, "device": "cpu"}},
        "3": {"class_type": "EmoVidEmotionScore", "inputs": {"classifier": ["2", 0], "images": ["1", 0], "intended": "awe"}},
        "4": {"class_type": "EmoVidEmotionClassifier", "inputs": {"backend": "probe", "model": "tiny_probe.safetensors",
                                                                  "vision": "tiny_vision.safetensors", "frames": 0, "device": "cpu"}},
        "5": {"class_type": "EmoVidEmotionScore", "inputs": {"classifier": ["4", 0], "images": ["1", 0], "intended": ""}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["3", 3]}},
    }
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=300)
    for node in ("3", "5"):
        (line,) = job.outputs[node]["text"]
        assert line.split(" ")[0] in EMOTIONS and "p=" in line, line
    assert "asked awe: EA-8" in job.outputs["3"]["text"][0]
    assert any(f.suffix == ".png" for f in job.files)  # the bar chart reached a core image node


def test_lora_node_matches_core_lora_loader(server, tmp_path):
    from safetensors.torch import load_file

    def branch(model_src):
        return {"class_type": "KSampler", "inputs": {"model": model_src, "seed": 5, "steps": 2, "cfg": 1.0,
                                                     "sampler_name": "euler", "scheduler": "simple",
                                                     "positive": ["5", 0], "negative": ["5", 0],
                                                     "latent_image": ["6", 0], "denoise": 1.0}}

    wf = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": T2V_UNET, "weight_dtype": "default"}},
        "2": {"class_type": "EmoVidLoraLoader", "inputs": {"model": ["1", 0], "lora_name": T2V_LORA, "strength": 0.7,
                                                           "strict": True}},
        "3": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": T2V_LORA,
                                                              "strength_model": 0.7}},
        "5": {"class_type": "TestOnlyTextToWanConditioning", "inputs": {"text": "a calm lake"}},
        "6": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 64, "height": 64, "length": 5, "batch_size": 1}},
        "7": branch(["2", 0]), "8": branch(["3", 0]), "9": branch(["1", 0]),
        "10": {"class_type": "SaveLatent", "inputs": {"samples": ["7", 0], "filename_prefix": "lat/emovid"}},
        "11": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": "lat/core"}},
        "12": {"class_type": "SaveLatent", "inputs": {"samples": ["9", 0], "filename_prefix": "lat/base"}},
    }
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=300)
    lat = {f.name.split("_")[0]: load_file(f)["latent_tensor"].numpy() for f in job.files if f.suffix == ".latent"}
    assert set(lat) == {"emovid", "core", "base"}
    np.testing.assert_allclose(lat["emovid"], lat["core"], rtol=0, atol=1e-5)
    assert np.abs(lat["emovid"] - lat["base"]).max() > 1e-3  # the LoRA really changed the result


def test_cli_reports_validation_and_execution_errors_from_the_real_server(server, tmp_path, capsys):
    from emovid_core.host.cli import main as cli_main

    bad = _api("emovid_dataset_explore")
    bad[_find(bad, "EmoVidDatasetStats")]["inputs"]["bins"] = 1
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    assert cli_main(["queue", str(p), "--server", server["url"], "--out", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert "(EmoVidDatasetStats" in err and "input 'bins'" in err
    broken = _api("emovid_dataset_explore")
    # A name inside the input folder that is not there (an absolute path outside it is refused at validation).
    broken[_find(broken, "EmoVidDataset")]["inputs"]["root"] = "no_such_dataset"
    p.write_text(json.dumps(broken))
    assert cli_main(["queue", str(p), "--server", server["url"], "--out", str(tmp_path / "o")]) == 4
    err = capsys.readouterr().err
    assert "(EmoVidDataset) failed" in err and "no_such_dataset" in err


def test_demo_story_example_runs_in_comfyui(server, tmp_path):
    """The `emovid demo` story as pack nodes, in a real server: dataset clip -> I2V with a DiffSynth-format LoRA."""
    from emovid_core.host.demo import write_tiny_emotion_lora
    from emovid_core.wan.tiny import TINY_CONFIGS

    write_tiny_emotion_lora(server["base"] / "models" / "loras" / "emovid_fear_tiny_diffsynth.safetensors",
                            TINY_CONFIGS["transformer_i2v"], seed=1)
    wf = _api("emovid_demo_story")
    job = server["client"].run(wf, out_dir=tmp_path / "out", timeout=600,
                               overrides=[f"{_find(wf, 'EmoVidDataset')}.root=EmoVid"])
    mp4 = [f for f in job.files if f.suffix == ".mp4"]
    assert len(mp4) == 1
    info = _probe(mp4[0])
    assert (info.frames, info.width, info.height) == (9, 64, 48)
    report = " ".join(job.outputs[_find(wf, "EmoVidLoraLoaderPipeline")]["text"])
    assert "emovid_fear" in report, report


def test_lora_branches_of_one_pipeline_in_comfyui(server, tmp_path):
    """One EmoVid Wan Loader feeding two LoRA pipeline branches and a plain one, run by ComfyUI itself (its order,
    its cache: the second run re-executes only the Generate nodes): every branch's frames are bit-identical to
    those of a graph where each branch has its own loader."""
    from emovid_core.lora import write_lora
    from emovid_core.lora.testing import random_lora
    from emovid_core.wan.tiny import TINY_CONFIGS

    t = TINY_CONFIGS["transformer_t2v"]
    dim, ffn, layers = t["num_attention_heads"] * t["attention_head_dim"], t["ffn_dim"], t["num_layers"]
    loras = server["base"] / "models" / "loras"
    write_lora(random_lora(dim, ffn, layers, seed=21, scale=0.5), loras / "branch_lora1.safetensors", "diffsynth")
    write_lora(random_lora(dim, ffn, layers, seed=22, scale=0.5, targets=["self_attn.k", "ffn.0"]),
               loras / "branch_lora2.safetensors", "kohya")
    loader = {"class_type": "EmoVidWanLoader", "inputs": {
        "source": "tiny-t2v", "variant": "auto", "folder": "", "transformer": "", "vae": "", "text_encoder": "",
        "tokenizer": "", "clip_vision": "", "dtype": "auto", "device": "cpu", "offload": "none"}}

    def lora(pipe, name, strength):
        return {"class_type": "EmoVidLoraLoaderPipeline", "inputs": {"pipe": [pipe, 0], "lora_name": name, "strength": strength,
                                                                     "adapter_name": "", "fuse": False, "strict": False}}

    def graph(nodes: dict, pipes: tuple[str, str, str], seed: int) -> dict:
        wf = dict(nodes)
        for i, pipe in enumerate(pipes):  # the pipes of branches A, B, C
            wf[f"{20 + i}"] = {"class_type": "EmoVidWanGenerate", "inputs": {
                "pipe": [pipe, 0], "caption": "A dog runs.", "emotion": "amusement", "seed": seed, "steps": 2, "guidance": 5.0,
                "shift": 0.0, "frames": 5, "width": 0, "height": 0, "negative": "blurry"}}
            wf[f"{30 + i}"] = {"class_type": "TestOnlyImageDigest", "inputs": {"images": [f"{20 + i}", 0]}}
        return wf

    shared = {"1": loader, "2": lora("1", "branch_lora1.safetensors", 1.0), "3": lora("1", "branch_lora2.safetensors", 0.7)}
    own = {"11": loader, "12": loader, "13": loader, "14": lora("11", "branch_lora1.safetensors", 1.0),
           "15": lora("12", "branch_lora2.safetensors", 0.7)}

    def digests(nodes, pipes, seed):
        job = server["client"].run(graph(nodes, pipes, seed), out_dir=tmp_path / "out", timeout=600)
        return [job.outputs[f"{30 + i}"]["text"][0] for i in range(3)]

    # Seed 2 right after seed 1: ComfyUI serves the loader and LoRA nodes from its cache, only Generate runs again.
    got = [digests(shared, ("2", "3", "1"), seed) for seed in (1, 2)]
    want = [digests(own, ("14", "15", "13"), seed) for seed in (1, 2)]
    assert got == want, "branches A, B, C of one loader differ from branches with their own loaders"
    assert all(len(set(d)) == 3 for d in got)


def test_headless_core_nodes_write_what_the_server_writes(server, tmp_path):
    """`emovid run`'s Save Image / Preview Image / Load Image / EmptyImage / Load Video / Get Video Components
    (emovid_core.host.core_nodes) against the real ones: same ui entries, same pixels, same PNG text chunks."""
    from emovid_core import runtime
    from emovid_core.host.graph import run_workflow
    from emovid_core.video_io import write_video

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (5, 7, 4), dtype=np.uint8), "RGBA").save(tmp_path / "parity_rgba.png")
    clip = np.zeros((6, 32, 48, 3), np.uint8)
    clip[..., 1] = np.linspace(30, 200, 6, dtype=np.uint8)[:, None, None]
    write_video(clip, tmp_path / "parity_clip.mp4", fps=8)
    wf = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "parity_rgba.png"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 5, "batch_size": 2, "color": 0xFF8001}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "parity/empty_%width%x%height%"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "parity/loaded"}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "6": {"class_type": "LoadVideo", "inputs": {"file": "parity_clip.mp4"}},
        "7": {"class_type": "GetVideoComponents", "inputs": {"video": ["6", 0]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "parity/frames"}},
    }
    job = server["client"].run(wf, out_dir=tmp_path / "server", timeout=300,
                               uploads=[str(tmp_path / "parity_rgba.png"), str(tmp_path / "parity_clip.mp4")])
    server_files = {f.name: f for f in job.files}
    (tmp_path / "input").mkdir()
    for name in ("parity_rgba.png", "parity_clip.mp4"):
        (tmp_path / "input" / name).write_bytes((tmp_path / name).read_bytes())
    with runtime.configured(input_dir=tmp_path / "input"):
        res = run_workflow(wf, out_dir=tmp_path / "headless" / "output", temp_dir=tmp_path / "headless" / "temp")
    for nid in ("3", "4", "8"):
        assert res.ui[nid]["images"] == job.outputs[nid]["images"], nid
    assert len(res.ui["8"]["images"]) == 6
    (ours,), (theirs,) = res.ui["5"]["images"], job.outputs["5"]["images"]
    assert ours["type"] == theirs["type"] == "temp" and ours["subfolder"] == theirs["subfolder"] == ""
    assert re.sub("_[a-z]{5}_", "_", ours["filename"]) == re.sub("_[a-z]{5}_", "_", theirs["filename"])
    pairs = [(tmp_path / "headless" / "output" / e["subfolder"] / e["filename"], server_files[e["filename"]])
             for nid in ("3", "4", "8") for e in res.ui[nid]["images"]]
    pairs.append((tmp_path / "headless" / "temp" / ours["filename"], server_files[theirs["filename"]]))
    for mine, real in pairs:
        with Image.open(mine) as a, Image.open(real) as b:
            assert (a.mode, a.size, set(a.text)) == (b.mode, b.size, set(b.text)) == (a.mode, a.size, {"prompt"})
            # The server's cache adds its IS_CHANGED fingerprints to the prompt it embeds; the runner has no cache.
            real_prompt = {k: {f: v for f, v in n.items() if f != "is_changed"} for k, n in json.loads(b.text["prompt"]).items()}
            assert json.loads(a.text["prompt"]) == real_prompt == wf
            pa, pb = np.asarray(a, dtype=np.int16), np.asarray(b, dtype=np.int16)
            if "frames" in mine.name:  # OpenCV here, PyAV there: the same frames up to YUV->RGB rounding
                assert np.abs(pa - pb).max() <= 3, mine.name
            else:
                assert np.array_equal(pa, pb), mine.name


def test_server_refuses_node_paths_outside_its_folders(server, tmp_path):
    """An exposed server is not a file browser: Load Video `path` and Dataset `root` outside the served folders are
    refused by /prompt (HTTP 400), without quoting the file; inside the input folder the same file is accepted."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd.mp4").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    (secret / "emovid_metadata.csv").write_text("clip_id,path,type,emotion\n")
    load = {"class_type": "EmoVidLoadVideo", "inputs": {"video": "none.mp4", "path": str(secret / "passwd.mp4"),
                                                      "max_frames": 0, "skip_first": 0, "every_nth": 1, "target_fps": 0.0,
                                                      "width": 0, "height": 0, "crop": "center", "wan_4n1": False}}
    cases = {
        "video path": {"1": load, "2": {"class_type": "EmoVidFrameAttributes", "inputs": {"images": ["1", 0], "stride": 1, "fps": 16.0}}},
        "dataset root": {"1": {"class_type": "EmoVidDataset", "inputs": {"root": str(secret)}},
                         "2": {"class_type": "EmoVidDatasetStats", "inputs": {"dataset": ["1", 0], "bins": 11, "consecutive_only": False}}},
        "dotdot": {"1": {"class_type": "EmoVidDataset", "inputs": {"root": "../../" + secret.name}},
                   "2": {"class_type": "EmoVidDatasetStats", "inputs": {"dataset": ["1", 0], "bins": 11, "consecutive_only": False}}},
    }
    for label, wf in cases.items():
        req = urllib.request.Request(server["url"] + "/prompt", data=json.dumps({"prompt": wf}).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code == 400, label
        body = err.value.read().decode()
        assert "outside the folders this ComfyUI server reads" in body and "EMOVID_ALLOW_ANY_PATH" in body, (label, body[:600])
        assert "root:x" not in body and "bin/bash" not in body, label
    # The same kind of input inside the server's input folder passes validation (and fails only as a bad video).
    (server["base"] / "input" / "passwd_copy.mp4").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    load["inputs"]["path"] = "passwd_copy.mp4"
    req = urllib.request.Request(server["url"] + "/prompt", data=json.dumps({"prompt": cases["video path"]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200 and json.loads(r.read())["prompt_id"]
