"""EmoVid Wan Loader / Generate through the headless graph runner, and the ``emovid generate`` command."""

from __future__ import annotations

import json

import pytest
import torch

from emovid_core.host.graph import NodeExecutionError, run_workflow
from emovid_core.video_io import probe, read_frames

# The tiny models are built in the session's test cache (conftest), never in ~/.cache.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loader(source="tiny-t2v", **kw):
    inputs = dict(source=source, variant="auto", folder="", transformer="", vae="", text_encoder="", tokenizer="", clip_vision="",
                  dtype="auto", device="cpu", offload="auto")
    inputs.update(kw)
    return {"class_type": "EmoVidWanLoader", "inputs": inputs}


def _generate(**kw):
    inputs = dict(pipe=["1", 0], caption="A child blows out birthday candles.", emotion="amusement", seed=3, steps=3, guidance=5.0,
                  shift=0.0, frames=9, width=0, height=0, negative="blurry")
    inputs.update(kw)
    return {"class_type": "EmoVidWanGenerate", "inputs": inputs}


def _save(prefix="wan/test"):
    return {"class_type": "EmoVidSaveVideo", "inputs": {"images": ["2", 0], "fps": 16.0, "filename_prefix": prefix, "format": "mp4"}}


def test_t2v_graph_writes_a_video_of_the_generated_frames(out_dir):
    wf = {"1": _loader(), "2": _generate(), "3": _save()}
    result = run_workflow(wf, out_dir=out_dir)
    assert result.order == ["1", "2", "3"]
    frames, prompt, negative = (result.outputs["2"][i][0] for i in range(3))
    assert frames.shape == (9, 32, 32, 3) and frames.dtype == torch.float32
    assert prompt == 'A child blows out birthday candles. The video is in the "amusement" emotion.' and negative == "blurry"
    (video,) = [f for f in result.files if f.suffix == ".mp4"]
    info = probe(video)
    assert (info.width, info.height, info.frames) == (32, 32, 9)
    decoded = read_frames(video).astype("float32") / 255.0
    assert abs(decoded.mean() - frames.numpy().mean()) < 0.03  # the file holds these frames (lossy H.264)
    assert "Wan2.1 T2V [tiny-t2v]" in result.outputs["1"][1][0]


def test_emotion_node_override_and_i2v_start_image(out_dir, pack_nodes):
    image = torch.rand(1, 40, 56, 3, generator=torch.Generator().manual_seed(0))

    class StartImage:  # stands in for ComfyUI's LoadImage: a test-local node that outputs an IMAGE
        CATEGORY, FUNCTION, RETURN_TYPES, RETURN_NAMES = "test", "make", ("IMAGE",), ("image",)

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        def make(self):
            return (image,)

    classes = dict(pack_nodes, StartImage=StartImage)
    wf = {
        "1": _loader("tiny-i2v"),
        "2": _generate(emotion="amusement", emotion_override=["4", 0], start_image=["5", 0]),
        "3": _save("wan/i2v"),
        "4": {"class_type": "EmoVidEmotion", "inputs": {"emotion": "fear", "intensity": 1.0}},
        "5": {"class_type": "StartImage", "inputs": {}},
    }
    result = run_workflow(wf, out_dir=out_dir, classes=classes)
    assert result.outputs["2"][1][0].endswith('"fear" emotion.')  # the override wins over the widget
    assert result.outputs["2"][0][0].shape == (9, 32, 32, 3)


def test_node_errors_name_the_problem(out_dir):
    with pytest.raises(NodeExecutionError, match="frames 10 is not 4n\\+1"):
        run_workflow({"1": _loader(), "2": _generate(frames=10), "3": _save()}, out_dir=out_dir)
    with pytest.raises(NodeExecutionError, match="connect a start image"):
        run_workflow({"1": _loader("tiny-i2v"), "2": _generate(), "3": _save()}, out_dir=out_dir)
    with pytest.raises(NodeExecutionError, match="needs a folder path"):
        run_workflow({"1": _loader("diffusers folder"), "2": _generate(), "3": _save()}, out_dir=out_dir)
    with pytest.raises(NodeExecutionError, match="diffusion_models file 'wan.safetensors' not found"):
        run_workflow({"1": _loader("single files", transformer="wan.safetensors", vae="v.safetensors", text_encoder="t.safetensors",
                                   tokenizer="tok"), "2": _generate(), "3": _save()}, out_dir=out_dir)


def test_single_files_found_in_the_models_folder(out_dir, tmp_path):
    from emovid_core import runtime
    from emovid_core.wan.tiny import export_single_files

    models = tmp_path / "models"
    paths = export_single_files("t2v", models / "diffusion_models")
    for kind, key in (("vae", "vae"), ("text_encoders", "text_encoder")):
        (models / kind).mkdir(parents=True)
        paths[key].rename(models / kind / paths[key].name)
    paths["tokenizer"].rename(models / "text_encoders" / "umt5_tiny_tokenizer")
    wf = {"1": _loader("single files", transformer="wan2.1_tiny_t2v.safetensors", vae="wan_tiny_vae.safetensors",
                       text_encoder="umt5_tiny.safetensors", tokenizer="umt5_tiny_tokenizer"), "2": _generate(), "3": _save()}
    with runtime.configured(model_folders={k: [models / k] for k in ("diffusion_models", "vae", "text_encoders", "clip_vision")}):
        result = run_workflow(wf, out_dir=out_dir)
    assert "single files wan2.1_tiny_t2v.safetensors" in result.outputs["1"][1][0]
    assert result.outputs["2"][0][0].shape == (9, 32, 32, 3)


def test_cli_generate_writes_video_and_summary(tmp_path, capsys):
    from emovid_core.host.cli import main

    out, summary = tmp_path / "clip.mp4", tmp_path / "clip.json"
    rc = main(["generate", "--tiny", "t2v", "--device", "cpu", "--caption", "Waves crash on rocks.", "--emotion", "awe", "--steps", "2",
               "--frames", "5", "--seed", "4", "--out", str(out), "--json", str(summary)])
    assert rc == 0 and probe(out).frames == 5
    data = json.loads(summary.read_text())
    assert data["prompt"] == 'Waves crash on rocks. The video is in the "awe" emotion.' and data["seed"] == 4 and data["frames"] == 5
    assert "wrote" in capsys.readouterr().out


def test_cli_rejects_bad_settings_before_loading(tmp_path, capsys):
    from emovid_core.host.cli import main

    assert main(["generate", "--tiny", "t2v", "--frames", "12", "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr()
    assert "frames 12 is not 4n+1" in err.err and "Wan2.1 T2V" not in err.out  # refused before the model loaded
    assert main(["generate", "--caption", "x"]) == 2
    assert "pick exactly one model source" in capsys.readouterr().err
    assert main(["generate", "--tiny", "t2v", "--lora", str(tmp_path / "missing.safetensors:0.8")]) == 2
    assert "missing.safetensors' not found" in capsys.readouterr().err


def test_parse_lora_spec(tmp_path):
    from emovid_core.host.commands.generate import parse_lora

    f = tmp_path / "fear.v2.safetensors"
    f.write_bytes(b"x")
    assert parse_lora(f"{f}:0.75", 0) == (str(f), "lora0_fear_v2", 0.75)
    assert parse_lora(str(f), 1) == (str(f), "lora1_fear_v2", 1.0)


class Keep:
    """A test-local output node, so the runner executes the Generate node feeding it (as ComfyUI runs only what
    reaches an output)."""

    CATEGORY, FUNCTION, RETURN_TYPES, OUTPUT_NODE = "test", "keep", (), True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    def keep(self, images):
        return {}


@pytest.mark.parametrize("gen_ids", [("4", "5", "6"), ("6", "5", "4")])
def test_lora_branches_of_one_loader_equal_separate_loaders(out_dir, pack_nodes, tmp_path, gen_ids):
    """One EmoVid Wan Loader feeding two LoRA pipeline nodes (lora1 @1.0, lora2 @0.7) and a plain branch: both LoRA
    nodes run before any generation, then the three Generate nodes in the order their ids give. Each branch's
    frames equal those of a workflow where every branch has its own loader."""
    from emovid_core import runtime
    from emovid_core.lora import write_lora
    from emovid_core.lora.testing import random_lora
    from emovid_core.wan.tiny import TINY_CONFIGS

    t = TINY_CONFIGS["transformer_t2v"]
    dim, ffn, layers = t["num_attention_heads"] * t["attention_head_dim"], t["ffn_dim"], t["num_layers"]
    loras = tmp_path / "loras"
    loras.mkdir()
    write_lora(random_lora(dim, ffn, layers, seed=21, scale=0.5), loras / "lora1.safetensors", "diffsynth")
    write_lora(random_lora(dim, ffn, layers, seed=22, scale=0.5, targets=["self_attn.k", "ffn.0"]), loras / "lora2.safetensors", "kohya")

    def lora(pipe, name, strength):
        return {"class_type": "EmoVidLoraLoaderPipeline", "inputs": {"pipe": [pipe, 0], "lora_name": name, "strength": strength,
                                                                     "adapter_name": "", "fuse": False, "strict": False}}

    def branch_gens(pipes, ids):
        wf = {}
        for i, (gid, pipe) in enumerate(zip(ids, pipes)):
            wf[gid] = _generate(pipe=[pipe, 0], steps=2, frames=5)
            wf[str(10 + i)] = {"class_type": "Keep", "inputs": {"images": [gid, 0]}}
        return wf

    classes = dict(pack_nodes, Keep=Keep)
    shared = {"1": _loader(), "2": lora("1", "lora1.safetensors", 1.0), "3": lora("1", "lora2.safetensors", 0.7),
              **branch_gens(["2", "3", "1"], gen_ids)}
    own = {"1": _loader(), "2": _loader(), "3": _loader(), "7": lora("1", "lora1.safetensors", 1.0),
           "8": lora("2", "lora2.safetensors", 0.7), **branch_gens(["7", "8", "3"], ["4", "5", "6"])}
    with runtime.configured(model_folders={"loras": [loras]}):
        got = run_workflow(shared, out_dir=out_dir, classes=classes)
        want = run_workflow(own, out_dir=out_dir, classes=classes)
    assert got.order.index("3") < got.order.index(min(gen_ids, key=int))  # both LoRA nodes ran before the first Generate
    frames = lambda r, gid: r.outputs[gid][0][0]  # noqa: E731
    for branch, gid in enumerate(gen_ids):
        assert torch.equal(frames(got, gid), frames(want, "456"[branch])), f"branch {branch} differs from its own loader"
    assert not torch.equal(frames(got, gen_ids[0]), frames(got, gen_ids[1]))
    assert not torch.equal(frames(got, gen_ids[0]), frames(got, gen_ids[2]))
    assert got.outputs["2"][0][0].loras == ["lora1:1"] and got.outputs["3"][0][0].loras == ["lora2:0.7"]
