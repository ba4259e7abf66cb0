"""Applying LoRAs to a ComfyUI-style MODEL: patched weights, every format identical, validation, stacking, nodes."""

from __future__ import annotations

import pytest
import torch

from emovid_core.lora import (
    FORMATS,
    LoraMismatchError,
    LoraSpec,
    ShapeSpec,
    apply_lora_stack_to_comfy,
    load_lora,
    parse_block_weights,
    validate,
    write_lora,
)
from emovid_core.lora.testing import ReferencePatcher, random_lora
from emovid_core.safetensors_header import SafetensorsHeaderError
from emovid_core.wan import dit_keys as wl
from tests.lora.utils import expected_weight

PREFIX = "diffusion_model."


@pytest.fixture(scope="module")
def base_sd():
    return wl.tiny_wan_state_dict(dim=128, ffn=256, layers=2, in_dim=16, seed=7)


@pytest.fixture()
def model(base_sd):
    return ReferencePatcher.from_state_dict(base_sd)


def test_patched_weights_equal_formula(model, base_sd, tmp_path):
    lora = random_lora(rank=4, alpha=2.0, seed=1)
    lora.modules["blocks.0.ffn.0"].alpha = 3.0  # non-power-of-two scale on one module
    path = tmp_path / "l.safetensors"
    write_lora(lora, path, "kohya")
    out, report = apply_lora_stack_to_comfy(model, [(path, None, 0.8)])
    assert out is not model and not model.patches  # a clone; the input MODEL is untouched
    entry = report.entries[0]
    assert len(entry.report.applied) == 20 and entry.report.ok
    sd = out.patched_state_dict()
    for name in lora.modules:
        torch.testing.assert_close(sd[PREFIX + name + ".weight"], expected_weight(base_sd, lora, name, 0.8), rtol=0, atol=2e-6)
    # Untouched weights stay bit-identical.
    assert torch.equal(sd[PREFIX + "blocks.0.self_attn.q.bias"], base_sd["blocks.0.self_attn.q.bias"])


def test_every_format_gives_identical_patched_weights(model, tmp_path):
    lora = random_lora(rank=4, alpha=2.0, seed=2)  # scale 0.5: exact under DiffSynth's fold-into-B too
    results = {}
    for fmt in FORMATS:
        path = tmp_path / f"{fmt}.safetensors"
        write_lora(lora, path, fmt)
        out, report = apply_lora_stack_to_comfy(model, [(path, fmt, -1.3)])
        assert report.entries[0].report.ok, fmt
        results[fmt] = out.patched_state_dict()
    ref = results["comfy"]
    for fmt, sd in results.items():
        for k in ref:
            assert torch.equal(sd[k], ref[k]), (fmt, k)
    assert not torch.equal(ref[PREFIX + "blocks.1.ffn.2.weight"], model.patched_weight(PREFIX + "blocks.1.ffn.2.weight"))


def test_strength_zero_is_no_lora(model):
    out, report = apply_lora_stack_to_comfy(model, [(random_lora(seed=3), "z", 0.0)])
    assert out.patches == {}
    assert "strength 0" in str(report)


def test_stack_adds_up(model, base_sd):
    a = random_lora(seed=4)
    b = random_lora(seed=5, targets=["self_attn.q"])
    out, report = apply_lora_stack_to_comfy(model, [LoraSpec(a, "emotion", 1.0), LoraSpec(b, "style", -0.5)])
    assert [e.adapter_name for e in report.entries] == ["emotion", "style"]
    got = out.patched_weight(PREFIX + "blocks.1.self_attn.q.weight")
    ma, mb = a.modules["blocks.1.self_attn.q"], b.modules["blocks.1.self_attn.q"]
    want = base_sd["blocks.1.self_attn.q.weight"] + ma.weight_delta(1.0) + mb.weight_delta(-0.5)
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)


def test_block_range_and_weights(model, base_sd):
    lora = random_lora(seed=6, layers=2)
    out, report = apply_lora_stack_to_comfy(model, [LoraSpec(lora, "b", 1.0, blocks="1")])
    sd = out.patched_state_dict()
    assert torch.equal(sd[PREFIX + "blocks.0.self_attn.q.weight"], base_sd["blocks.0.self_attn.q.weight"])
    assert not torch.equal(sd[PREFIX + "blocks.1.self_attn.q.weight"], base_sd["blocks.1.self_attn.q.weight"])
    assert report.entries[0].report.skipped["blocks.0.ffn.0"] == "outside the selected blocks"
    out2, _ = apply_lora_stack_to_comfy(model, [LoraSpec(lora, "b", 2.0, blocks="0:0.25, 1:1")])
    torch.testing.assert_close(out2.patched_weight(PREFIX + "blocks.0.ffn.0.weight"),
                               expected_weight(base_sd, lora, "blocks.0.ffn.0", 0.5), rtol=0, atol=2e-6)
    assert parse_block_weights("0-2:0.5,5", 8) == {0: 0.5, 1: 0.5, 2: 0.5, 5: 1.0}
    with pytest.raises(ValueError, match="'x-2'"):
        parse_block_weights("x-2", 8)
    with pytest.raises(ValueError, match="blocks 0-1"):
        parse_block_weights("4-5", 2)


def test_wrong_width_is_one_clear_error_before_patching(model):
    lora = random_lora(dim=256, ffn=512, seed=7)
    with pytest.raises(LoraMismatchError, match="custom width 256.*custom width 128"):
        apply_lora_stack_to_comfy(model, [lora])
    with pytest.raises(LoraMismatchError, match=r"Wan2.1 T2V 1.3B \(dim 1536\).*Wan2.1 T2V 14B \(dim 5120\)"):
        validate(random_lora(dim=1536, ffn=8960, layers=1, rank=2, targets=["self_attn.q"]), ShapeSpec.from_variant("t2v-14B"))
    assert not model.patches


def test_i2v_lora_on_t2v_drops_only_image_keys(model, base_sd, tmp_path):
    lora = random_lora(i2v=True, seed=8)
    path = tmp_path / "i2v.safetensors"
    write_lora(lora, path, "diffsynth")
    out, report = apply_lora_stack_to_comfy(model, [(path, "i2v", 1.0)])
    rep = report.entries[0].report
    assert sorted(rep.skipped) == ["blocks.0.cross_attn.k_img", "blocks.0.cross_attn.v_img",
                                   "blocks.1.cross_attn.k_img", "blocks.1.cross_attn.v_img"]
    assert len(rep.applied) == 20 and "I2V LoRA on a T2V model" in str(report)
    assert rep.file_keys == {"applied": 40, "skipped": 8}  # every file key (A and B per module) is accounted for
    torch.testing.assert_close(out.patched_weight(PREFIX + "blocks.1.cross_attn.k.weight"),
                               expected_weight(base_sd, lora, "blocks.1.cross_attn.k", 1.0), rtol=0, atol=2e-6)
    with pytest.raises(LoraMismatchError, match="(?s)strict mode.*image cross-attention"):
        apply_lora_stack_to_comfy(model, [(path, "i2v", 1.0)], strict=True)
    # On an I2V model nothing is skipped.
    i2v_model = ReferencePatcher.from_state_dict(wl.tiny_wan_state_dict(in_dim=36))
    _, rep2 = apply_lora_stack_to_comfy(i2v_model, [(path, "i2v", 1.0)], strict=True)
    assert rep2.entries[0].report.ok and len(rep2.entries[0].report.applied) == 24


def test_extra_blocks_and_full_deltas(model, base_sd):
    lora = random_lora(layers=3, seed=9, targets=["self_attn.q"])  # block 2 does not exist in a 2-block model
    from emovid_core.lora import normalize

    deltas = normalize({"diffusion_model.blocks.0.norm3.diff": torch.full((128,), 0.5),
                        "diffusion_model.blocks.0.self_attn.o.diff_b": torch.full((128,), 0.25)})
    out, report = apply_lora_stack_to_comfy(model, [LoraSpec(lora, "a"), LoraSpec(deltas, "d", 2.0)])
    assert "block 2 does not exist" in report.entries[0].report.skipped["blocks.2.self_attn.q"]
    torch.testing.assert_close(out.patched_weight(PREFIX + "blocks.0.norm3.weight"), base_sd["blocks.0.norm3.weight"] + 1.0)
    torch.testing.assert_close(out.patched_weight(PREFIX + "blocks.0.self_attn.o.bias"), base_sd["blocks.0.self_attn.o.bias"] + 0.5)


def test_not_a_wan_model_is_explained():
    other = ReferencePatcher.from_state_dict({"input_blocks.0.weight": torch.zeros(4, 4)})
    with pytest.raises(ValueError, match="not a Wan2.1 DiT"):
        apply_lora_stack_to_comfy(other, [random_lora()])
    with pytest.raises(ValueError, match="not a ComfyUI MODEL"):
        apply_lora_stack_to_comfy(object(), [random_lora()])


# ------------------------------------------------------------------------------------------------ nodes


def test_loader_node(pack_nodes, model, base_sd, loras_dir):
    lora = random_lora(i2v=True, seed=10)
    write_lora(lora, loras_dir / "emo_diffsynth.safetensors", "diffsynth")
    node = pack_nodes["EmoVidLoraLoader"]
    assert node.INPUT_TYPES()["required"]["lora_name"][0] == ["emo_diffsynth.safetensors"]
    res = node().apply(model, "emo_diffsynth.safetensors", 0.6, False, blocks="")
    out, text = res["result"]
    assert res["ui"]["text"] and "20 module(s) applied, 4 skipped" in text
    torch.testing.assert_close(out.patched_weight(PREFIX + "blocks.0.self_attn.v.weight"),
                               expected_weight(base_sd, lora, "blocks.0.self_attn.v", 0.6), rtol=0, atol=2e-6)
    with pytest.raises(LoraMismatchError):
        node().apply(model, "emo_diffsynth.safetensors", 0.6, True)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        node().apply(model, "nope.safetensors", 1.0, False)


def test_stack_node_with_emotion_map(pack_nodes, model, base_sd, loras_dir):
    anger = random_lora(seed=11)
    style = random_lora(seed=12, targets=["ffn.0"])
    write_lora(anger, loras_dir / "anger.safetensors", "kohya")
    write_lora(style, loras_dir / "style.safetensors", "diffusers")
    node = pack_nodes["EmoVidLoraStack"]
    res = node().apply(model, False, lora_1="style.safetensors", strength_1=0.5, emotion="anger",
                       emotion_map="fear = fear.safetensors\nanger=anger.safetensors", emotion_strength=1.0)
    out, text = res["result"]
    assert "[emotion_anger]" in text and "[style]" in text
    want = (base_sd["blocks.0.ffn.0.weight"] + anger.modules["blocks.0.ffn.0"].weight_delta(1.0)
            + style.modules["blocks.0.ffn.0"].weight_delta(0.5))
    torch.testing.assert_close(out.patched_weight(PREFIX + "blocks.0.ffn.0.weight"), want, rtol=0, atol=2e-6)
    with pytest.raises(ValueError, match="no LoRA for 'awe'"):
        node().apply(model, False, emotion="awe", emotion_map="anger=anger.safetensors")
    with pytest.raises(ValueError, match="unknown emotion 'blorp'"):
        node().apply(model, False, emotion="anger", emotion_map="blorp=anger.safetensors")
    with pytest.raises(ValueError, match="no LoRA chosen"):
        node().apply(model, False)


def test_errors_name_the_file(model, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(SafetensorsHeaderError, match="bad.safetensors"):
        apply_lora_stack_to_comfy(model, [bad])
    assert load_lora  # imported API stays public


def test_is_changed_follows_the_file(pack_nodes, loras_dir):
    import os

    write_lora(random_lora(seed=13), loras_dir / "a.safetensors", "comfy")
    node = pack_nodes["EmoVidLoraLoader"]
    first = node.IS_CHANGED(lora_name="a.safetensors", strength=1.0)
    assert first == node.IS_CHANGED(lora_name="a.safetensors", strength=0.5)
    os.utime(loras_dir / "a.safetensors", ns=(1, 1))
    assert node.IS_CHANGED(lora_name="a.safetensors") != first
    stack = pack_nodes["EmoVidLoraStack"]
    assert "a.safetensors" in stack.IS_CHANGED(emotion="fear", emotion_map="fear=a.safetensors")


def test_diff_m_modulation_delta_applies_to_the_comfy_model(model, base_sd, tmp_path):
    """A hand-made lightx2v-style file: ``blocks.N.diff_m`` patches ``blocks.N.modulation`` and the report lists it."""
    from safetensors.torch import save_file

    dm = torch.randn(1, 6, 128, generator=torch.Generator().manual_seed(5))
    path = tmp_path / "diff_m.safetensors"
    save_file({"diffusion_model.blocks.1.diff_m": dm}, str(path))
    out, report = apply_lora_stack_to_comfy(model, [(path, None, 0.7)])
    entry = report.entries[0].report
    assert entry.ok and entry.applied == ["blocks.1.modulation"]
    sd = out.patched_state_dict()
    torch.testing.assert_close(sd[PREFIX + "blocks.1.modulation"], base_sd["blocks.1.modulation"] + 0.7 * dm, rtol=0, atol=1e-6)
    assert torch.equal(sd[PREFIX + "blocks.0.modulation"], base_sd["blocks.0.modulation"])
    assert "1 module(s) applied, 0 skipped; file keys: 1 applied, 0 skipped" in str(report)
