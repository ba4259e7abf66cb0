"""Wan2.1 generation with diffusers on the tiny random pipeline (built in code, cached on disk).

Real code paths only: the tiny pipeline is saved with save_pretrained and loaded back through the same
loader functions as real weights; the single-file path loads the tiny model written in ComfyUI's original
layouts; LoRAs are real safetensors files applied through emovid_core.lora.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from emovid_core.wan import WanHandle, generate, load_tiny_pipeline
from emovid_core.wan.generation import check_settings
from emovid_core.wan.loading import load_diffusers_folder, load_pipeline, load_single_files, resolve_dtype, resolve_offload
from emovid_core.wan.tiny import TINY_CONFIGS, ensure_tiny, export_single_files, tiny_dir
from emovid_core.wan.variants import DATA_DIR, get_variant, match_variant, transformer_arch

CAPTION = "A man walks his dog along a beach."


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def t2v():
    return load_tiny_pipeline("t2v")


@pytest.fixture(scope="module")
def i2v():
    return load_tiny_pipeline("i2v")


def _gen(handle, **kw):
    kw.setdefault("caption", CAPTION)
    kw.setdefault("emotion", "amusement")
    kw.setdefault("seed", 7)
    kw.setdefault("steps", 3)
    return generate(handle, **kw)


def _gradient(h=48, w=64, flip=False):
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([x, y, 1 - x * y], -1)
    return (1 - img if flip else img)[None]


# ------------------------------------------------------------------------------------------- generation


def test_t2v_returns_comfy_image_frames_and_the_paper_prompt(t2v):
    r = _gen(t2v, frames=9)
    assert isinstance(t2v, WanHandle) and t2v.kind == "t2v" and t2v.variant == "tiny-t2v"
    assert r.frames.shape == (9, 32, 32, 3) and r.frames.dtype == torch.float32
    assert torch.isfinite(r.frames).all() and 0.0 <= r.frames.min() and r.frames.max() <= 1.0
    assert r.frames.std() > 0.01  # a real decode, not a constant
    assert r.prompt == 'A man walks his dog along a beach. The video is in the "amusement" emotion.'
    assert r.negative_prompt.startswith("色调艳丽")  # Wan2.1's standard negative prompt
    assert r.steps == 3 and r.seconds > 0 and r.seconds_per_step > 0


def test_same_seed_is_deterministic_and_seed_emotion_change_output(t2v):
    a, b = _gen(t2v), _gen(t2v)
    assert torch.equal(a.frames, b.frames)
    assert not torch.equal(a.frames, _gen(t2v, seed=8).frames)
    fear = _gen(t2v, emotion="fear")
    assert fear.prompt.endswith('"fear" emotion.') and (fear.frames - a.frames).abs().max() > 1e-3


def test_intensity_moves_along_the_emotion_direction(t2v):
    caption_only = _gen(t2v, emotion="none")
    assert caption_only.prompt == CAPTION
    zero = _gen(t2v, intensity=0.0)  # embeddings = the caption's alone
    assert torch.allclose(zero.frames, caption_only.frames, atol=1e-6)
    one, double = _gen(t2v, intensity=1.0), _gen(t2v, intensity=2.0)
    assert torch.allclose(one.frames, _gen(t2v).frames, atol=1e-6)
    assert (double.frames - one.frames).abs().max() > 1e-3


def test_emotion_choice_object_brings_its_intensity(t2v):
    from emovid_core.emotions import EmotionChoice

    r = _gen(t2v, emotion=EmotionChoice.of("sadness", 0.0))
    assert r.emotion == "sadness" and r.intensity == 0.0
    assert torch.allclose(r.frames, _gen(t2v, emotion="none").frames, atol=1e-6)


def test_shift_and_guidance_are_used(t2v):
    base = _gen(t2v)
    assert (base.frames - _gen(t2v, shift=8.0).frames).abs().max() > 1e-4
    assert (base.frames - _gen(t2v, guidance=1.0).frames).abs().max() > 1e-4


def test_i2v_follows_the_start_image(i2v):
    a = _gen(i2v, image=_gradient())
    b = _gen(i2v, image=_gradient(flip=True))
    assert a.frames.shape == (5, 32, 32, 3)
    assert (a.frames - b.frames).abs().max() > 1e-3
    # RGBA and uint8 numpy inputs are accepted and mean the same picture.
    rgba = torch.cat([_gradient(), torch.ones(1, 48, 64, 1)], -1)
    assert torch.equal(_gen(i2v, image=rgba).frames, a.frames)
    as_u8 = (_gradient()[0].numpy() * 255 + 0.5).astype("uint8")
    assert torch.equal(_gen(i2v, image=as_u8).frames, a.frames)
    # A 64x48 image is centre-cropped to the square output, not stretched: its middle 48x48 gives the same clip.
    assert torch.equal(_gen(i2v, image=_gradient()[:, :, 8:56]).frames, a.frames)


def test_image_kind_mismatch_is_refused(t2v, i2v):
    with pytest.raises(ValueError, match="image-to-video"):
        _gen(i2v)
    with pytest.raises(ValueError, match="text-to-video"):
        _gen(t2v, image=_gradient())


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"frames": 8}, r"frames 8 is not 4n\+1.*use 5 or 9"),
        ({"frames": 0}, "frames 0 is outside"),
        ({"width": 40}, r"width 40 is not a multiple of 16 .*use 32 or 48"),
        ({"height": 0}, "height 0 is outside"),
        ({"width": 1024}, "width 1024 gives 64 positions"),
        ({"steps": 0}, "steps 0 is outside"),
        ({"steps": 2.5}, "steps must be a whole number, got 2.5"),
        ({"guidance": float("nan")}, "guidance nan is outside"),
        ({"shift": 0}, "shift 0 is outside"),
        ({"seed": -1}, "seed -1 is outside"),
        ({"emotion": "grumpy"}, "grumpy"),
        ({"emotion": "none", "caption": "  "}, "nothing to prompt"),
        ({"intensity": 3}, "intensity 3 is outside"),
    ],
)
def test_bad_settings_are_rejected_naming_the_value(t2v, kw, match):
    with pytest.raises(ValueError, match=match):
        _gen(t2v, **kw)


def test_settings_are_checked_without_a_model():
    assert check_settings(frames=33, width=832, height=480) == {"frames": 33, "width": 832, "height": 480}
    with pytest.raises(ValueError, match="frames 34"):
        check_settings(frames=34)


def test_progress_reports_every_step(t2v):
    from emovid_core import runtime

    seen = []

    class Bar:
        def __init__(self, total, desc):
            seen.append(("open", total, desc))

        def update(self, n=1):
            seen.append(("step", n))

        def close(self):
            seen.append(("close",))

    with runtime.configured(progress_factory=Bar):
        _gen(t2v, steps=4)
    assert seen[0] == ("open", 4, "Wan T2V") and seen.count(("step", 1)) == 4 and seen[-1] == ("close",)


def test_interrupt_stops_generation(t2v):
    from emovid_core import runtime

    class Stop(Exception):
        pass

    def interrupt():
        raise Stop()

    with runtime.configured(interrupt_check=interrupt), pytest.raises(Stop):
        _gen(t2v)


# ------------------------------------------------------------------------------------------------ LoRA


def _write_lora(path, dim, seed=0, scale=0.5):
    from emovid_core.lora import from_tensors, write_lora

    g = torch.Generator().manual_seed(seed)
    mods = {}
    for b in range(TINY_CONFIGS["transformer_t2v"]["num_layers"]):
        for name in ("self_attn.q", "self_attn.v", "cross_attn.o", "ffn.2"):
            out_f, in_f = (dim, TINY_CONFIGS["transformer_t2v"]["ffn_dim"]) if name == "ffn.2" else (dim, dim)
            mods[f"blocks.{b}.{name}"] = (torch.randn(4, in_f, generator=g) * scale, torch.randn(out_f, 4, generator=g) * scale, 4.0)
    write_lora(from_tensors(mods), path, fmt="comfy")
    return path


def test_lora_changes_output_and_strength_zero_equals_off(tmp_path):
    h = load_tiny_pipeline("t2v")  # its own handle: adapters stay loaded on the transformer
    dim = h.pipe.transformer.config.num_attention_heads * h.pipe.transformer.config.attention_head_dim
    path = _write_lora(tmp_path / "emotion_lora.safetensors", dim)
    off = _gen(h, lora_stack=[])
    on = _gen(h, lora_stack=[(str(path), "joy", 1.0)])
    assert on.loras == ["joy"] and h.loras == ["joy:1"]
    assert (on.frames - off.frames).abs().max() > 1e-3
    zero = _gen(h, lora_stack=[(str(path), "joy", 0.0)])
    assert torch.allclose(zero.frames, off.frames, atol=1e-6)
    half = _gen(h, lora_stack=[(str(path), "joy", 0.5)])
    assert 0 < (half.frames - off.frames).abs().max() < (on.frames - off.frames).abs().max() + 1e-6
    # None keeps what is active on the handle; [] turns it off again.
    assert torch.allclose(_gen(h).frames, half.frames, atol=1e-6)
    assert torch.allclose(_gen(h, lora_stack=[]).frames, off.frames, atol=1e-6)


# --------------------------------------------------------------------------------------------- loading


def test_tiny_cache_is_reused_and_keyed_by_config():
    folder = ensure_tiny("t2v")
    stamp = (folder / "model_index.json").stat().st_mtime_ns
    assert ensure_tiny("t2v") == folder and (folder / "model_index.json").stat().st_mtime_ns == stamp
    assert folder.parent == tiny_dir("t2v").parent and folder.name.startswith("t2v-")
    assert tiny_dir("i2v") != folder
    assert not list(folder.parent.glob(".*"))  # no temporary build folders left behind


@pytest.mark.parametrize("kind", ["t2v", "i2v"])
def test_single_files_in_original_layout_give_the_same_clip_as_the_folder(kind, tmp_path, t2v, i2v):
    folder_handle = t2v if kind == "t2v" else i2v
    paths = export_single_files(kind, tmp_path)
    from emovid_core.safetensors_header import read_header

    keys = set(read_header(paths["transformer"]))
    assert "model.diffusion_model.head.modulation" in keys and "model.diffusion_model.blocks.0.norm3.weight" in keys
    assert ("model.diffusion_model.img_emb.proj.0.bias" in keys) == (kind == "i2v")
    assert "decoder.middle.0.residual.0.gamma" in read_header(paths["vae"])  # ComfyUI's Wan VAE detection key
    h = load_single_files(paths["transformer"], paths["vae"], paths["text_encoder"], paths["tokenizer"], paths.get("image_encoder"),
                          device="cpu")
    assert h.variant == f"tiny-{kind}" and "single files" in h.source
    for name in ("transformer", "vae", "text_encoder") + (("image_encoder",) if kind == "i2v" else ()):
        a, b = getattr(h.pipe, name).state_dict(), getattr(folder_handle.pipe, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name  # bit-identical weights
    img = _gradient() if kind == "i2v" else None
    # Outputs agree to float rounding (CPU kernels may reduce in another order for differently allocated tensors).
    torch.testing.assert_close(_gen(h, image=img).frames, _gen(folder_handle, image=img).frames, atol=2e-5, rtol=0)


def test_umt5_in_original_wan_names_loads_the_same(tmp_path, t2v):
    from safetensors.torch import load_file

    from emovid_core.atomic import save_safetensors

    paths = export_single_files("t2v", tmp_path)
    sd = load_file(str(paths["text_encoder"]))
    wan = {}
    for k, v in sd.items():  # rename to the original Wan T5 layout (Wan2.1 repo / Kijai's umt5-xxl-enc files)
        k = k.replace("shared.weight", "token_embedding.weight").replace("encoder.final_layer_norm.weight", "norm.weight")
        for a, b in (("layer.0.layer_norm", "norm1"), ("layer.0.SelfAttention.relative_attention_bias", "pos_embedding.embedding"),
                     ("layer.0.SelfAttention", "attn"), ("layer.1.layer_norm", "norm2"), ("layer.1.DenseReluDense.wi_0", "ffn.gate.0"),
                     ("layer.1.DenseReluDense.wi_1", "ffn.fc1"), ("layer.1.DenseReluDense.wo", "ffn.fc2")):
            k = k.replace(a, b)
        wan[k.replace("encoder.block.", "blocks.")] = v
    save_safetensors(wan, tmp_path / "umt5_wan_layout.safetensors")
    h = load_single_files(paths["transformer"], paths["vae"], tmp_path / "umt5_wan_layout.safetensors", paths["tokenizer"], device="cpu")
    a, b = h.pipe.text_encoder.state_dict(), t2v.pipe.text_encoder.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    emb = [p.encode_prompt(CAPTION, None, do_classifier_free_guidance=False, device="cpu")[0] for p in (h.pipe, t2v.pipe)]
    assert torch.equal(emb[0], emb[1])


def test_bfloat16_loading_keeps_fp32_modules_and_generates(tmp_path):
    h = load_tiny_pipeline("t2v", dtype="bfloat16")
    assert h.dtype == "bfloat16" and h.pipe.transformer.dtype == torch.bfloat16
    assert h.pipe.vae.dtype == torch.float32  # the VAE always decodes in float32
    paths = export_single_files("t2v", tmp_path)
    sf = load_single_files(paths["transformer"], paths["vae"], paths["text_encoder"], paths["tokenizer"], dtype="bf16", device="cpu")
    tr, ref = sf.pipe.transformer, load_tiny_pipeline("t2v").pipe.transformer
    assert tr.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16 and tr.scale_shift_table.dtype == torch.float32
    # fp32-kept parameters carry the file's full precision, as with from_pretrained (not a bf16 rounding).
    assert torch.equal(tr.scale_shift_table, ref.scale_shift_table)
    assert torch.equal(tr.condition_embedder.time_embedder.linear_1.weight, ref.condition_embedder.time_embedder.linear_1.weight)
    for name in ("transformer", "text_encoder", "vae"):  # same dtype and value for every tensor as the folder load
        a = {**getattr(sf.pipe, name).state_dict(), **dict(getattr(sf.pipe, name).named_buffers())}
        b = {**getattr(h.pipe, name).state_dict(), **dict(getattr(h.pipe, name).named_buffers())}
        assert a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a), name
    out = _gen(h, steps=2).frames
    assert torch.isfinite(out).all()
    torch.testing.assert_close(_gen(sf, steps=2).frames, out, atol=2e-3, rtol=0)


def test_diffusers_folder_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_diffusers_folder(tmp_path / "nope")
    loose = tmp_path / "loose"
    export_single_files("t2v", loose)
    with pytest.raises(FileNotFoundError, match="no model_index.json.*use source 'single files'"):
        load_diffusers_folder(loose)
    broken = tmp_path / "broken"
    shutil.copytree(ensure_tiny("t2v"), broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(FileNotFoundError, match="missing component folder.*vae"):
        load_diffusers_folder(broken)
    with pytest.raises(ValueError, match="variant mismatch.*t2v-1.3b.*dim 1536"):
        load_diffusers_folder(ensure_tiny("t2v"), variant="t2v-1.3b")
    idx = json.loads((broken / "model_index.json").read_text())
    idx["_class_name"] = "FluxPipeline"
    (broken / "model_index.json").write_text(json.dumps(idx))
    with pytest.raises(ValueError, match="FluxPipeline"):
        load_diffusers_folder(broken)


def test_single_file_errors_name_what_is_wrong(tmp_path):
    from emovid_core.atomic import save_safetensors

    paths = export_single_files("i2v", tmp_path)
    with pytest.raises(ValueError, match="variant mismatch.*in_dim 36.*'t2v-14b' expects dim 5120"):
        load_single_files(paths["transformer"], paths["vae"], paths["text_encoder"], paths["tokenizer"], paths["image_encoder"],
                          variant="t2v-14b", device="cpu")
    with pytest.raises(ValueError, match="I2V model.*CLIP vision"):
        load_single_files(paths["transformer"], paths["vae"], paths["text_encoder"], paths["tokenizer"], device="cpu")
    fp8 = save_safetensors({"scaled_fp8": torch.zeros(2), "encoder.block.0.layer.0.SelfAttention.q.weight": torch.zeros(2, 2),
                                   "encoder.block.0.layer.0.SelfAttention.q.scale_weight": torch.ones(1)}, tmp_path / "umt5_fp8_scaled.safetensors")
    with pytest.raises(ValueError, match="scaled-fp8.*umt5_xxl_fp16"):
        load_single_files(paths["transformer"], paths["vae"], fp8, paths["tokenizer"], paths["image_encoder"], device="cpu")
    with pytest.raises(ValueError, match="not a Wan2.1 transformer"):
        load_single_files(paths["vae"], paths["vae"], paths["text_encoder"], paths["tokenizer"], device="cpu")
    with pytest.raises(ValueError, match="not a Wan VAE"):
        load_single_files(paths["transformer"], paths["text_encoder"], paths["text_encoder"], paths["tokenizer"], paths["image_encoder"],
                          device="cpu")
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_single_files(paths["transformer"], paths["vae"], paths["text_encoder"], tmp_path, paths["image_encoder"], device="cpu")
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"not really")
    with pytest.raises(ValueError, match="only safetensors"):
        load_single_files(pickle, paths["vae"], paths["text_encoder"], paths["tokenizer"], device="cpu")


def test_choices_are_checked():
    with pytest.raises(ValueError, match="dtype 'float64' is not one of"):
        resolve_dtype("float64")
    assert resolve_dtype("bf16") == torch.bfloat16 and resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ValueError, match="offload 'model'.*device is 'cpu'"):
        resolve_offload("model", "cpu")
    assert resolve_offload("auto", "cpu") == "none"
    with pytest.raises(ValueError, match="source 'hub' is not one of"):
        load_pipeline("hub")
    with pytest.raises(ValueError, match="needs a folder path"):
        load_pipeline("diffusers folder", folder="")
    with pytest.raises(ValueError, match="variant 't2v-14b' does not apply to source 'tiny-t2v'"):
        load_pipeline("tiny-t2v", variant="t2v-14b")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            load_pipeline("tiny-t2v", device="cuda")


# -------------------------------------------------------------------------------- shipped configs


def _meta_original_shapes(variant_name):
    """Original-layout shapes of a released variant, built from the shipped config on the meta device."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    from emovid_core.wan.single_file import transformer_to_original

    with init_empty_weights():
        model = WanTransformer3DModel.from_config(get_variant(variant_name).config("transformer"))
    return {k: tuple(v.shape) for k, v in transformer_to_original(model.state_dict()).items()}


@pytest.mark.parametrize("name, ref", [("t2v-1.3b", "t2v-1.3B"), ("t2v-14b", "t2v-14B"), ("i2v-14b-480p", "i2v-14B")])
def test_shipped_configs_build_the_released_architectures(name, ref):
    shapes = _meta_original_shapes(name)
    # An independent shape function (emovid_core.wan.dit_keys, from ComfyUI's detection facts) fed the row's numbers
    # must agree exactly; ``ref`` is the spelling `emovid lora inspect --check` released, which still names the row.
    assert get_variant(ref).name == name
    assert shapes == get_variant(ref).param_shapes()
    layers = get_variant(name).num_layers
    assert len(shapes) == (23 + 32 * layers if name.startswith("i2v") else 15 + 27 * layers)
    assert match_variant(transformer_arch(shapes)).name == name


def test_variant_detection_overrides_and_refusals():
    shapes = {"model.diffusion_model." + k: v for k, v in _meta_original_shapes("i2v-14b-480p").items()}
    arch = transformer_arch(shapes)
    assert (arch.dim, arch.in_dim, arch.ffn_dim, arch.num_layers, arch.kind) == (5120, 36, 13824, 40, "i2v")
    assert match_variant(arch, "i2v-14b-720p").defaults["width"] == 1280
    with pytest.raises(ValueError, match="variant mismatch.*I2V.*t2v-1.3b"):
        match_variant(arch, "t2v-1.3b")
    wan22 = dict(shapes, **{"model.diffusion_model.head.head.weight": (192, 5120)})
    with pytest.raises(ValueError, match="out_dim 48"):
        match_variant(transformer_arch(wan22))
    odd = dict(_meta_original_shapes("t2v-1.3b"), **{"blocks.0.ffn.0.weight": (4096, 1536)})
    with pytest.raises(ValueError, match="matches no known Wan variant"):
        match_variant(transformer_arch(odd))


def test_shipped_component_configs_match_the_reference():
    te = json.loads((DATA_DIR / "text_encoder" / "config.json").read_text())
    assert (te["d_model"], te["num_layers"], te["num_heads"], te["d_ff"], te["vocab_size"]) == (4096, 24, 64, 10240, 256384)
    clip = json.loads((DATA_DIR / "image_encoder" / "config.json").read_text())
    tokens = (clip["image_size"] // clip["patch_size"]) ** 2 + 1
    assert (clip["hidden_size"], tokens) == (1280, 257)  # Wan reads [B, 257, 1280]
    vae = json.loads((DATA_DIR / "vae" / "config.json").read_text())
    assert vae["base_dim"] == 96 and len(vae["latents_mean"]) == 16 and math.isclose(vae["latents_std"][0], 2.8184)
    sched = json.loads((DATA_DIR / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == "flow_prediction" and sched["use_flow_sigmas"] and sched["flow_shift"] == 3.0


def test_transformer_file_in_diffusers_names_loads_too(tmp_path, t2v):
    from emovid_core.atomic import save_safetensors
    from emovid_core.wan.loading import load_transformer_file

    f = save_safetensors(t2v.pipe.transformer.state_dict(), tmp_path / "wan_tiny_diffusers_names.safetensors")
    model, variant = load_transformer_file(f)
    assert variant.name == "tiny-t2v"
    a, b = model.state_dict(), t2v.pipe.transformer.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
