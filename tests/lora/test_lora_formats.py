"""LoRA file formats: detection, one converter per format, normalisation, refusal, safety, writing."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from emovid_core.lora import (
    FORMATS,
    LoraError,
    ShapeSpec,
    UnsupportedLoraError,
    inspect_lora,
    load_lora,
    lora_state_dict,
    normalize,
    validate,
    write_lora,
)
from emovid_core.lora.testing import random_lora
from emovid_core.safetensors_header import SafetensorsHeaderError
from emovid_core.wan import dit_keys as wl
from emovid_core.wan.variants import width_name

R, D = 4, 128


def _pair(seed, out_f=D, in_f=D, r=R):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(r, in_f, generator=g), torch.randn(out_f, r, generator=g)


# Hand-written keys as each producer spells them (not produced by our writer), and the module they must map to.
HAND_WRITTEN = [
    ("comfy", "diffusion_model.blocks.0.self_attn.q", ".lora_A.weight", ".lora_B.weight", "blocks.0.self_attn.q"),
    ("comfy_down_up", "diffusion_model.blocks.1.cross_attn.o", ".lora_down.weight", ".lora_up.weight", "blocks.1.cross_attn.o"),
    ("bare", "blocks.0.cross_attn.k", ".lora_A.weight", ".lora_B.weight", "blocks.0.cross_attn.k"),
    ("diffsynth", "blocks.1.self_attn.v", ".lora_A.default.weight", ".lora_B.default.weight", "blocks.1.self_attn.v"),
    ("diffsynth_pipe", "pipe.dit.blocks.0.ffn.0", ".lora_A.default.weight", ".lora_B.default.weight", "blocks.0.ffn.0"),
    ("peft", "base_model.model.blocks.0.cross_attn.k", ".lora_A.weight", ".lora_B.weight", "blocks.0.cross_attn.k"),
    # attn1 is SELF-attention, attn2 CROSS-attention in diffusers' Wan.
    ("diffusers", "transformer.blocks.0.attn1.to_q", ".lora_A.weight", ".lora_B.weight", "blocks.0.self_attn.q"),
    ("diffusers", "transformer.blocks.0.attn2.to_k", ".lora_A.weight", ".lora_B.weight", "blocks.0.cross_attn.k"),
    ("diffusers", "transformer.blocks.1.attn1.to_out.0", ".lora_A.weight", ".lora_B.weight", "blocks.1.self_attn.o"),
    ("diffusers", "transformer.blocks.0.ffn.net.0.proj", ".lora_A.weight", ".lora_B.weight", "blocks.0.ffn.0"),
    ("diffusers", "transformer.blocks.0.ffn.net.2", ".lora_A.weight", ".lora_B.weight", "blocks.0.ffn.2"),
    ("diffusers", "transformer.blocks.0.attn2.add_k_proj", ".lora_A.weight", ".lora_B.weight", "blocks.0.cross_attn.k_img"),
    ("diffusers_bare", "blocks.0.attn2.add_v_proj", ".lora_A.weight", ".lora_B.weight", "blocks.0.cross_attn.v_img"),
    ("kohya", "lora_unet_blocks_0_self_attn_q", ".lora_down.weight", ".lora_up.weight", "blocks.0.self_attn.q"),
    ("kohya", "lora_unet_blocks_1_cross_attn_k_img", ".lora_down.weight", ".lora_up.weight", "blocks.1.cross_attn.k_img"),
    ("wanfun", "lora_unet__blocks_0_cross_attn_k", ".lora_down.weight", ".lora_up.weight", "blocks.0.cross_attn.k"),
    ("kohya_mixed", "lora_unet_blocks_1.self_attn.q", ".lora_down.weight", ".lora_up.weight", "blocks.1.self_attn.q"),
    # kohya-style flattening of diffusers names (attn2 = cross-attention)
    ("kohya", "lora_unet_blocks_1_attn2_to_out_0", ".lora_down.weight", ".lora_up.weight", "blocks.1.cross_attn.o"),
    ("lycoris", "lycoris_blocks_0_ffn_2", ".lora_down.weight", ".lora_up.weight", "blocks.0.ffn.2"),
    # Rows added as rows only (#12 item 4): diffusers names under diffusion_model., OneTrainer's lora_transformer_.
    ("comfy_diffusers_names", "diffusion_model.blocks.1.attn2.to_v", ".lora_A.weight", ".lora_B.weight", "blocks.1.cross_attn.v"),
    ("comfy_diffusers_names", "diffusion_model.blocks.0.ffn.net.2", ".lora_A.weight", ".lora_B.weight", "blocks.0.ffn.2"),
    ("onetrainer", "lora_transformer_blocks_1_attn2_to_k", ".lora_down.weight", ".lora_up.weight", "blocks.1.cross_attn.k"),
    ("onetrainer", "lora_transformer_blocks_0_ffn_net_0_proj", ".lora_down.weight", ".lora_up.weight", "blocks.0.ffn.0"),
]


@pytest.mark.parametrize("fmt,stem,a_suf,b_suf,module", HAND_WRITTEN, ids=[f"{h[0]}:{h[4]}" for h in HAND_WRITTEN])
def test_each_format_maps_to_the_original_module(fmt, stem, a_suf, b_suf, module):
    in_f = D
    out_f = 256 if module.endswith("ffn.0") else D
    if module.endswith("ffn.2"):
        in_f = 256
    down, up = _pair(1, out_f, in_f)
    lora = normalize({stem + a_suf: down, stem + b_suf: up})
    assert lora.source_format == fmt
    assert list(lora.modules) == [module]
    m = lora.modules[module]
    assert m.down is down and m.up is up  # shared, not copied
    assert m.alpha is None and m.scale == 1.0  # no alpha stored: alpha = rank, as ComfyUI and diffusers do
    assert not lora.unused_keys


def test_format_table_examples_all_parse():
    for fmt in FORMATS.values():
        from emovid_core.lora.formats import classify_stem, split_key

        stem, suffix, part = split_key(fmt.example)
        got_fmt, module = classify_stem(stem, suffix)
        assert (got_fmt, module) == (fmt.key, "blocks.0.self_attn.q"), fmt.key


@pytest.mark.parametrize("alpha", [torch.tensor(8, dtype=torch.int64), torch.tensor(8.0, dtype=torch.bfloat16),
                                   torch.tensor([8.0], dtype=torch.float16)], ids=["int64", "bf16", "fp16-1elem"])
def test_alpha_any_dtype(alpha):
    down, up = _pair(2)
    lora = normalize({"lora_unet_blocks_0_self_attn_q.lora_down.weight": down,
                      "lora_unet_blocks_0_self_attn_q.lora_up.weight": up,
                      "lora_unet_blocks_0_self_attn_q.alpha": alpha})
    m = lora.modules["blocks.0.self_attn.q"]
    assert m.alpha == 8.0 and m.scale == 2.0 and m.alpha_source == "key"
    torch.testing.assert_close(m.weight_delta(0.5), 0.5 * 2.0 * up @ down)


def test_peft_metadata_alpha_and_patterns():
    down, up = _pair(3)
    down2, up2 = _pair(4, r=8)
    meta = {"lora_adapter_metadata": json.dumps({"transformer.r": 4, "transformer.lora_alpha": 8,
                                                  "transformer.alpha_pattern": {"blocks.0.attn1.to_k": 2},
                                                  "transformer.rank_pattern": {"blocks.0.attn1.to_k": 8}})}
    lora = normalize({"transformer.blocks.0.attn1.to_q.lora_A.weight": down, "transformer.blocks.0.attn1.to_q.lora_B.weight": up,
                      "transformer.blocks.0.attn1.to_k.lora_A.weight": down2, "transformer.blocks.0.attn1.to_k.lora_B.weight": up2},
                     meta)
    assert lora.modules["blocks.0.self_attn.q"].scale == 2.0
    assert lora.modules["blocks.0.self_attn.k"].scale == 0.25
    assert {m.alpha_source for m in lora.modules.values()} == {"metadata"}
    rs = normalize({"base_model.model.blocks.0.self_attn.q.lora_A.weight": down,
                    "base_model.model.blocks.0.self_attn.q.lora_B.weight": up},
                   {"lora_adapter_metadata": json.dumps({"r": 4, "lora_alpha": 8, "use_rslora": True})})
    assert rs.modules["blocks.0.self_attn.q"].scale == pytest.approx(8 / 4**0.5)  # rs-LoRA: alpha / sqrt(r)


def test_full_deltas_and_bias():
    diff = torch.randn(D)
    diff_b = torch.randn(D)
    w_diff = torch.randn(D, D)
    lora = normalize({"diffusion_model.blocks.0.norm3.diff": diff, "diffusion_model.blocks.0.self_attn.q.diff_b": diff_b,
                      "diffusion_model.blocks.0.self_attn.k.diff": w_diff})
    assert lora.modules["blocks.0.norm3"].diff is diff
    assert lora.modules["blocks.0.self_attn.q"].diff_b is diff_b
    torch.testing.assert_close(lora.modules["blocks.0.self_attn.k"].weight_delta(-0.5), -0.5 * w_diff)


def test_unused_keys_are_accounted_for():
    down, up = _pair(5)
    tensors = {"diffusion_model.blocks.0.self_attn.q.lora_A.weight": down, "diffusion_model.blocks.0.self_attn.q.lora_B.weight": up,
               "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": down,  # a text-encoder LoRA part
               "diffusion_model.blocks.0.self_attn.k.lora_A.weight": down,  # A without B
               "some_random_tensor": torch.zeros(1)}
    lora = normalize(tensors)
    assert list(lora.modules) == ["blocks.0.self_attn.q"]
    assert set(lora.unused_keys) == set(tensors) - {"diffusion_model.blocks.0.self_attn.q.lora_A.weight",
                                                    "diffusion_model.blocks.0.self_attn.q.lora_B.weight"}
    assert "without its up partner" in lora.unused_keys["diffusion_model.blocks.0.self_attn.k.lora_A.weight"]
    used = {k for m in lora.modules.values() for k in m.source_keys}
    assert used | set(lora.unused_keys) == set(tensors)  # every key: used or skipped with a reason


@pytest.mark.parametrize("marker,name", [(".lora_magnitude_vector", "DoRA saved by peft"), (".oft_blocks", "OFT"),
                                         (".a1.weight", "GLoRA"), (".on_input", "IA"), (".lora_mid.weight", "Tucker")])
def test_refused_variants_name_the_format(marker, name):
    """What is still refused names itself and why (LoKr, LoHa and DoRA .dora_scale apply: test_lora_lycoris.py)."""
    down, up = _pair(6)
    tensors = {"diffusion_model.blocks.0.self_attn.q.lora_A.weight": down, "diffusion_model.blocks.0.self_attn.q.lora_B.weight": up,
               "diffusion_model.blocks.0.self_attn.q" + marker: torch.ones(D)}
    with pytest.raises(UnsupportedLoraError, match=name) as err:
        normalize(tensors)
    assert "which EmoVid does not apply: " in str(err.value) and "LoKr, LoHa, DoRA (.dora_scale)" in str(err.value)


def test_no_wan_keys_is_an_error():
    with pytest.raises(LoraError, match="no Wan2.1 LoRA weights"):
        normalize({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 8)})


def test_pickles_truncation_and_garbage_are_refused(tmp_path):
    pt = tmp_path / "x.pt"
    pt.write_bytes(b"\x80\x04junk")
    with pytest.raises(SafetensorsHeaderError, match="pickle"):
        load_lora(pt)
    good = tmp_path / "good.safetensors"
    write_lora(random_lora(layers=1), good, "comfy")
    data = good.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) - 100])
    with pytest.raises(SafetensorsHeaderError, match="truncated"):
        load_lora(trunc)
    html = tmp_path / "html.safetensors"
    html.write_bytes(b"<!DOCTYPE html><html>404 Not Found</html>")
    with pytest.raises(SafetensorsHeaderError, match="not a safetensors file"):
        load_lora(html)
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(SafetensorsHeaderError, match="too short"):
        load_lora(short)
    with pytest.raises(FileNotFoundError):
        load_lora(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_write_read_round_trip_every_format(tmp_path, fmt):
    lora = random_lora(layers=2, rank=4, alpha=2.0, i2v=True, seed=3)
    lora.modules["blocks.1.ffn.2"].alpha = 16.0  # a per-module alpha must survive too
    path = tmp_path / f"{fmt}.safetensors"
    write_lora(lora, path, fmt, metadata={"ss_network_dim": "4"})
    back = load_lora(path)
    assert back.source_format == fmt and not back.unused_keys
    assert set(back.modules) == set(lora.modules)
    for name, m in lora.modules.items():
        # alpha/rank = 0.5 and 4.0 are powers of two, so folding the scale into B (DiffSynth) is exact too.
        assert torch.equal(back.modules[name].weight_delta(0.7), m.weight_delta(0.7)), name
    assert back.metadata["ss_network_dim"] == "4"


def test_writer_refuses_what_a_format_cannot_store():
    lora = normalize({"diffusion_model.blocks.0.self_attn.k.diff": torch.randn(D, D)})
    with pytest.raises(LoraError, match="full-weight delta"):
        lora_state_dict(lora, "diffusers")
    with pytest.raises(LoraError, match="unknown LoRA format"):
        lora_state_dict(lora, "nope")


def test_inspect_reports_architecture(tmp_path):
    big = {}
    g = torch.Generator().manual_seed(0)
    for rel in ("self_attn.q", "cross_attn.k_img"):
        big[f"diffusion_model.blocks.0.{rel}.lora_A.weight"] = torch.randn(2, 1536, generator=g, dtype=torch.float32).to(torch.bfloat16)
        big[f"diffusion_model.blocks.0.{rel}.lora_B.weight"] = torch.zeros(1536, 2, dtype=torch.bfloat16)
        big[f"diffusion_model.blocks.0.{rel}.alpha"] = torch.tensor(1.0)
    path = tmp_path / "wan13.safetensors"
    save_file(big, str(path), metadata={"ss_output_name": "emo_anger", "ss_network_dim": "2"})
    info = inspect_lora(load_lora(path))
    assert info.width == 1536 and "1.3B" in info.architecture and info.i2v
    assert info.ranks == {2: 2} and info.scales == {0.5: 2} and info.block_count == 1
    assert info.targets == ["self_attn.q", "cross_attn.k_img"] and info.dtypes == ["bfloat16"]
    text = str(info)
    assert "ss_output_name: emo_anger" in text and "rank: 2" in text
    custom = inspect_lora(random_lora(dim=256, ffn=512, layers=3))
    assert custom.architecture.startswith("custom width 256") and custom.block_count == 3 and not custom.i2v
    assert width_name(5120) == "Wan2.1 14B / Wan2.2 A14B (dim 5120)"


def _hand_made_file(tmp_path, name, tensors):
    """A file written with safetensors itself, keys spelled by hand (not by the pack's writer)."""
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def test_hand_made_diffusers_names_under_diffusion_model_file(tmp_path):
    down, up = _pair(21)
    path = _hand_made_file(tmp_path, "dm_diffusers.safetensors", {
        "diffusion_model.blocks.0.attn1.to_out.0.lora_A.weight": down,
        "diffusion_model.blocks.0.attn1.to_out.0.lora_B.weight": up,
        "diffusion_model.blocks.0.attn1.to_out.0.alpha": torch.tensor(2.0),
        "diffusion_model.blocks.0.norm2.diff": torch.ones(D),  # diffusers norm2 = original norm3
    })
    lora = load_lora(path)
    assert lora.source_format == "comfy_diffusers_names" and not lora.unused_keys
    assert set(lora.modules) == {"blocks.0.self_attn.o", "blocks.0.norm3"}
    assert lora.modules["blocks.0.self_attn.o"].scale == 0.5 and lora.modules["blocks.0.self_attn.o"].alpha_source == "key"
    assert "diffusers module names" in inspect_lora(lora).format_label


def test_hand_made_onetrainer_file(tmp_path):
    down, up = _pair(22)
    path = _hand_made_file(tmp_path, "onetrainer.safetensors", {
        "lora_transformer_blocks_1_attn1_to_q.lora_down.weight": down,
        "lora_transformer_blocks_1_attn1_to_q.lora_up.weight": up,
        "lora_transformer_blocks_1_attn1_to_q.alpha": torch.tensor(8, dtype=torch.int64),
        "lora_transformer_blocks_1_attn2_add_k_proj.lora_down.weight": down.clone(),  # I2V image K, flattened diffusers name
        "lora_transformer_blocks_1_attn2_add_k_proj.lora_up.weight": up.clone(),
    })
    lora = load_lora(path)
    assert lora.source_format == "onetrainer" and not lora.unused_keys
    assert set(lora.modules) == {"blocks.1.self_attn.q", "blocks.1.cross_attn.k_img"}
    assert lora.modules["blocks.1.self_attn.q"].scale == 2.0
    tensors, _, _ = lora_state_dict(lora, "onetrainer")
    assert "lora_transformer_blocks_1_attn2_add_k_proj.lora_up.weight" in tensors  # written back the same way


def test_hand_made_diff_m_modulation_delta_file(tmp_path):
    """lightx2v-style ``blocks.N.diff_m``: a full delta on the block's ``modulation`` parameter, in any name space."""
    down, up = _pair(23)
    dm0, dm1 = torch.randn(1, 6, D), torch.randn(1, 6, D)
    path = _hand_made_file(tmp_path, "lightx2v_like.safetensors", {
        "diffusion_model.blocks.0.self_attn.q.lora_down.weight": down,
        "diffusion_model.blocks.0.self_attn.q.lora_up.weight": up,
        "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(4.0),
        "diffusion_model.blocks.0.diff_m": dm0,
        "diffusion_model.blocks.1.diff_m": dm1,
    })
    lora = load_lora(path)
    assert not lora.unused_keys and lora.source_format == "comfy_down_up"
    assert torch.equal(lora.modules["blocks.0.modulation"].diff, dm0)
    assert torch.equal(lora.modules["blocks.1.modulation"].weight_delta(0.5), 0.5 * dm1)
    assert lora.modules["blocks.1.modulation"].source_keys == ["diffusion_model.blocks.1.diff_m"]
    assert inspect_lora(lora).full_deltas == 2
    report = validate(lora, ShapeSpec.from_state_dict(wl.tiny_wan_state_dict(layers=2)))
    assert report.ok and {"blocks.0.modulation", "blocks.1.modulation"} <= set(report.applied)
    # Converting keeps it, as the spelling core ComfyUI reads for a bare parameter (diffusion_model.X.diff).
    tensors, _, _ = lora_state_dict(lora, "comfy")
    assert torch.equal(tensors["diffusion_model.blocks.0.modulation.diff"], dm0)
    # kohya / musubi spelling of the same delta.
    kohya = normalize({"lora_unet_blocks_1.diff_m": dm1})
    assert list(kohya.modules) == ["blocks.1.modulation"] and not kohya.unused_keys


def test_a_new_format_is_one_row(monkeypatch):
    """Adding a made-up layout to FORMATS alone makes it readable and writable: no branch elsewhere to touch."""
    from emovid_core.lora import formats

    row = formats.LoraFormat("acme", "ACME trainer (acme_dit.)", "acme_dit.", "diffusers", ".lora_down.weight",
                             ".lora_up.weight", "key", True, "acme_dit.blocks.0.attn1.to_q.lora_down.weight")
    monkeypatch.setitem(formats.FORMATS, "acme", row)
    for name, value in zip(("_PART_BY_SUFFIX", "_FAMILY", "_ROWS_BY_PREFIX", "_PARTS"), formats._derive_tables()):
        monkeypatch.setattr(formats, name, value)
    down, up = _pair(24)
    lora = normalize({"acme_dit.blocks.1.attn2.to_q.lora_down.weight": down, "acme_dit.blocks.1.attn2.to_q.lora_up.weight": up,
                      "acme_dit.blocks.1.attn2.to_q.alpha": torch.tensor(2.0)})
    assert lora.source_format == "acme" and list(lora.modules) == ["blocks.1.cross_attn.q"] and not lora.unused_keys
    tensors, _, _ = lora_state_dict(lora, "acme")
    assert set(tensors) == {"acme_dit.blocks.1.attn2.to_q.lora_down.weight", "acme_dit.blocks.1.attn2.to_q.lora_up.weight",
                            "acme_dit.blocks.1.attn2.to_q.alpha"}
    assert formats.classify_stem(*formats.split_key(row.example)[:2]) == ("acme", "blocks.0.self_attn.q")
