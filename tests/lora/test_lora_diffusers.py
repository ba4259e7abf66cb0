"""LoRAs on a tiny diffusers WanTransformer3DModel: peft adapters, switching, strength 0, fp32 fuse, I2V on T2V,
and files we write loaded by diffusers' own loaders (and a file diffusers wrote read by us)."""

from __future__ import annotations

import pytest
import torch

from emovid_core.lora import (
    LoraMismatchError,
    LoraSpec,
    active_diffusers_loras,
    apply_lora_stack_to_diffusers,
    load_lora,
    write_lora,
)
from emovid_core.lora.testing import random_lora
from emovid_core.wan import dit_keys as wl
from emovid_core.wan.variants import Variant
from tests.lora.utils import expected_diffusers_weights

pytest.importorskip("diffusers")
pytest.importorskip("peft")


def make_transformer(i2v: bool, seed: int = 0):
    from diffusers import WanTransformer3DModel

    variant = Variant.custom(128, 256, 2, 36 if i2v else 16, name="tiny")
    torch.manual_seed(seed)
    # 2 heads x 64 = dim 128; I2V: image_dim = CLIP width (16 here) and added_kv_proj_dim = dim, as in the release.
    cfg = wl.diffusers_transformer_config(variant, num_heads=2, text_dim=32, image_dim=16)
    return WanTransformer3DModel(**cfg).eval()


def run(model, i2v: bool):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 36 if i2v else 16, 1, 8, 8, generator=g)
    kw = {"encoder_hidden_states_image": torch.randn(1, 3, 16, generator=g)} if i2v else {}
    with torch.no_grad():
        return model(x, torch.tensor([500]), torch.randn(1, 5, 32, generator=g), return_dict=False, **kw)[0]


@pytest.fixture()
def i2v_model():
    return make_transformer(True)


def test_adapters_strength_zero_switch_and_fuse(i2v_model):
    model = i2v_model
    base = {k: v.clone() for k, v in model.state_dict().items()}
    emo = random_lora(i2v=True, rank=4, alpha=8.0, seed=1)
    style = random_lora(i2v=True, rank=2, alpha=None, seed=2, targets=["self_attn.q", "ffn.2"])
    # Mixed ranks/alphas inside one adapter exercise peft's rank/alpha patterns.
    emo.modules["blocks.1.ffn.0"].alpha = 3.0
    q = style.modules["blocks.0.self_attn.q"]
    q.down, q.up, q.alpha = torch.randn(8, 128) * 0.1, torch.randn(128, 8) * 0.1, 5.0
    y_base = run(model, True)

    report = apply_lora_stack_to_diffusers(model, [(emo, "emo", 0.0)])
    assert report.active == ["emo"] and report.weights == [0.0]
    assert torch.equal(run(model, True), y_base)  # strength 0 == no LoRA, exactly

    apply_lora_stack_to_diffusers(model, [(emo, "emo", 0.8), (style, "style", -0.5)])
    y_both = run(model, True)
    assert not torch.allclose(y_both, y_base)
    assert active_diffusers_loras(model) == [("emo", 0.8), ("style", -0.5)]

    # Switching weights reuses the loaded adapters (no reload) and matches a fresh load.
    report = apply_lora_stack_to_diffusers(model, [(emo, "emo", 0.3)])
    assert "weight changed only" in str(report)
    y_emo03 = run(model, True)
    fresh = make_transformer(True)
    apply_lora_stack_to_diffusers(fresh, [(emo, "emo", 0.3)])
    torch.testing.assert_close(run(fresh, True), y_emo03, rtol=0, atol=1e-6)
    apply_lora_stack_to_diffusers(model, [])  # empty stack: LoRA off
    assert torch.equal(run(model, True), y_base)

    # Fuse in fp32: weights equal W + s*(alpha/r)*B@A and the output equals the unfused one.
    apply_lora_stack_to_diffusers(model, [(emo, "emo", 0.8), (style, "style", -0.5)])
    y_unfused = run(model, True)
    report = apply_lora_stack_to_diffusers(model, [(emo, "emo", 0.8), (style, "style", -0.5)], fuse=True)
    assert report.fused and "fused in float32" in str(report)
    sd = model.state_dict()
    assert not any("lora_" in k for k in sd)  # adapter layers unloaded
    want = expected_diffusers_weights(base, emo, 0.8)
    for k, v in expected_diffusers_weights(base, style, -0.5).items():
        want[k] = want[k] + (v - base[k].float())
    for k, v in want.items():
        torch.testing.assert_close(sd[k], v, rtol=0, atol=1e-6)
    torch.testing.assert_close(run(model, True), y_unfused, rtol=0, atol=1e-5)


def test_block_weights_and_i2v_lora_on_t2v():
    model = make_transformer(False)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    lora = random_lora(i2v=True, seed=3)
    report = apply_lora_stack_to_diffusers(model, [LoraSpec(lora, "emo", 1.0, blocks="1:0.5")], fuse=True)
    rep = report.entries[0].report
    assert rep.skipped["blocks.1.cross_attn.k_img"].startswith("image cross-attention")
    assert rep.skipped["blocks.0.self_attn.q"] == "outside the selected blocks"
    sd = model.state_dict()
    assert torch.equal(sd["blocks.0.attn1.to_q.weight"], base["blocks.0.attn1.to_q.weight"])
    want = expected_diffusers_weights(base, lora, 0.5, modules={"blocks.1.attn2.to_v"} | {"blocks.1.cross_attn.v"})
    torch.testing.assert_close(sd["blocks.1.attn2.to_v.weight"], want["blocks.1.attn2.to_v.weight"], rtol=0, atol=1e-6)
    with pytest.raises(LoraMismatchError):
        apply_lora_stack_to_diffusers(make_transformer(False), [(lora, "emo", 1.0)], strict=True)
    with pytest.raises(LoraMismatchError, match="custom width 256"):
        apply_lora_stack_to_diffusers(make_transformer(False), [(random_lora(dim=256, ffn=512), "x", 1.0)])


@pytest.mark.parametrize("fmt", ["diffusers", "kohya", "comfy"])
def test_diffusers_own_loader_reads_our_files(tmp_path, fmt):
    """What `emovid lora convert --to diffusers|kohya|comfy` writes, diffusers loads with no skipped keys and the same scale."""
    from diffusers import WanPipeline

    lora = random_lora(rank=4, alpha=2.0, seed=4)
    lora.modules["blocks.0.ffn.0"].alpha = 6.0
    path = tmp_path / f"{fmt}.safetensors"
    write_lora(lora, path, fmt)
    model = make_transformer(False)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    sd, meta = WanPipeline.lora_state_dict(str(tmp_path), weight_name=path.name, return_lora_metadata=True)
    model.load_lora_adapter(sd, prefix="transformer", adapter_name="x", metadata=meta)
    loaded = {k for k in model.state_dict() if ".lora_A.x." in k}
    assert len(loaded) == len(lora.modules)  # every module placed
    model.fuse_lora(lora_scale=0.7)
    got = model.state_dict()
    for k, v in expected_diffusers_weights(base, lora, 0.7).items():
        torch.testing.assert_close(got[k.replace(".weight", ".base_layer.weight")], v, rtol=0, atol=2e-6)


def test_we_read_a_lora_diffusers_saved(tmp_path):
    """A peft adapter saved by diffusers (alpha in the LoraConfig header metadata) reads back at the right scale."""
    from peft import LoraConfig

    model = make_transformer(False)
    model.add_adapter(LoraConfig(r=4, lora_alpha=12, target_modules=["to_q", "to_k", "ffn.net.2"], init_lora_weights=False),
                      adapter_name="trained")
    model.save_lora_adapter(str(tmp_path), adapter_name="trained")
    files = list(tmp_path.glob("*.safetensors"))
    lora = load_lora(files[0])
    assert len(lora.modules) == 2 * 5  # to_q/to_k in attn1+attn2, ffn.net.2, two blocks
    assert {m.scale for m in lora.modules.values()} == {3.0}  # 12 / 4 from the header, not 1
    assert {m.alpha_source for m in lora.modules.values()} == {"metadata"}
    # Our fused result equals peft's own fuse of the trained adapter.
    model.fuse_lora(lora_scale=1.0, adapter_names=["trained"])
    fused = {k.replace(".base_layer", ""): v for k, v in model.state_dict().items() if "lora_" not in k}
    other = make_transformer(False)
    apply_lora_stack_to_diffusers(other, [(files[0], "mine", 1.0)], fuse=True)
    for k, v in other.state_dict().items():
        torch.testing.assert_close(v, fused[k], rtol=0, atol=2e-6)


def test_pipeline_node_chains_adapters(pack_nodes, loras_dir):
    from types import SimpleNamespace

    from emovid_core.wan.handle import WanHandle

    emo, style = random_lora(seed=31), random_lora(seed=32, targets=["ffn.0"])
    write_lora(emo, loras_dir / "emo_anger.safetensors", "diffsynth")
    write_lora(style, loras_dir / "style.safetensors", "kohya")
    model = make_transformer(False)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    y_base = run(model, False)
    handle = WanHandle(pipe=SimpleNamespace(transformer=model), variant="tiny", kind="t2v", source="test")
    node = pack_nodes["EmoVidLoraLoaderPipeline"]()
    h1, text1 = node.apply(handle, "emo_anger.safetensors", 0.8, "", False, False)["result"]
    h2, text2 = node.apply(h1, "style.safetensors", -0.5, "style", False, False)["result"]
    assert h2.loras == ["emo_anger:0.8", "style:-0.5"] and handle.loras == []
    assert "20 module(s) applied" in text1
    y_both = run(model, False)
    h3, text3 = node.apply(h2, "emo_anger.safetensors", 0.0, "", False, False)["result"]  # re-run: weight only
    assert "weight changed only" in text3 and h3.loras == ["style:-0.5", "emo_anger:0"]
    h4, _ = node.apply(h3, "style.safetensors", 0.0, "style", False, False)["result"]
    assert torch.equal(run(model, False), y_base)  # every strength 0 == base
    h5, text5 = node.apply(h4, "emo_anger.safetensors", 0.8, "", True, False)["result"]  # fuse: emo 0.8, style 0
    assert h5.loras == ["style:0 (fused)", "emo_anger:0.8 (fused)"]
    sd = model.state_dict()
    for k, v in expected_diffusers_weights(base, emo, 0.8).items():
        torch.testing.assert_close(sd[k], v, rtol=0, atol=1e-6)
    assert not torch.allclose(y_both, y_base)


def test_diff_m_modulation_delta_on_the_diffusers_transformer(tmp_path):
    """A hand-made lightx2v-style file: ``blocks.1.diff_m`` lands on ``blocks.1.scale_shift_table`` unfused (merged,
    undone exactly on the next call) and fused; the report names it; a ``.diff`` on a layer weight unfused is refused."""
    from safetensors.torch import save_file

    model = make_transformer(False)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(5)
    dm = torch.randn(1, 6, 128, generator=g)
    down, up = torch.randn(4, 128, generator=g) * 0.1, torch.randn(128, 4, generator=g) * 0.1
    path = tmp_path / "lightx2v_style.safetensors"
    save_file({"diffusion_model.blocks.1.diff_m": dm,
               "diffusion_model.blocks.0.self_attn.q.lora_down.weight": down,
               "diffusion_model.blocks.0.self_attn.q.lora_up.weight": up,
               "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(4.0)}, str(path))
    sst = "blocks.1.scale_shift_table"

    report = apply_lora_stack_to_diffusers(model, [(path, "distill", 0.7)])
    entry = report.entries[0].report
    assert entry.ok and sorted(entry.applied) == ["blocks.0.self_attn.q", "blocks.1.modulation"]
    assert "full-parameter delta on blocks.1.modulation" in str(report)
    assert active_diffusers_loras(model) == [("distill", 0.7)]
    torch.testing.assert_close(model.state_dict()[sst], base[sst] + 0.7 * dm, rtol=0, atol=1e-6)
    assert torch.equal(model.state_dict()["blocks.0.scale_shift_table"], base["blocks.0.scale_shift_table"])

    apply_lora_stack_to_diffusers(model, [(None, "distill", 0.3)])  # strength change: restored, then merged again
    torch.testing.assert_close(model.state_dict()[sst], base[sst] + 0.3 * dm, rtol=0, atol=1e-6)
    apply_lora_stack_to_diffusers(model, [])  # LoRA off: the parameter is the original, bit for bit
    assert torch.equal(model.state_dict()[sst], base[sst])

    report = apply_lora_stack_to_diffusers(model, [(path, "distill", 0.5)], fuse=True)
    sd = model.state_dict()
    torch.testing.assert_close(sd[sst], base[sst] + 0.5 * dm, rtol=0, atol=1e-6)
    want_q = (base["blocks.0.attn1.to_q.weight"] + 0.5 * (4.0 / 4) * (up @ down))
    torch.testing.assert_close(sd["blocks.0.attn1.to_q.weight"], want_q, rtol=0, atol=1e-6)
    assert "full-parameter delta on blocks.1.modulation" in str(report)

    # A full delta on a layer's weight has no peft layer to live in: refused unfused, with the module and the option.
    wpath = tmp_path / "full_weight.safetensors"
    save_file({"diffusion_model.blocks.0.self_attn.k.diff": torch.randn(128, 128, generator=g)}, str(wpath))
    rep = apply_lora_stack_to_diffusers(make_transformer(False), [(wpath, None, 1.0)]).entries[0].report
    assert rep.applied == [] and "blocks.0.self_attn.k.weight" in rep.skipped["blocks.0.self_attn.k"]
    assert "fuse=True" in rep.skipped["blocks.0.self_attn.k"]


def test_many_modulation_deltas_are_named_as_one_block_range(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "all_blocks.safetensors"
    save_file({f"blocks.{i}.diff_m": torch.full((1, 6, 128), 0.01) for i in range(2)}, str(path))
    report = apply_lora_stack_to_diffusers(make_transformer(False), [(path, None, 1.0)])
    assert "full-parameter delta on blocks.0-1.modulation" in str(report)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_adapters_load_without_random_init_and_equal_the_initialising_load(monkeypatch, dtype):
    """#17 item 5: no adapter tensor is initialised at random; the result equals diffusers' add_adapter (random init)
    + set_peft_model_state_dict bit for bit, and the adapter never shares storage with the (cached) LoRA."""
    from emovid_core.lora import ShapeSpec, validate
    from emovid_core.lora.apply import _lora_config, _peft_state_dict, add_peft_adapter

    lora = random_lora(i2v=True, rank=4, alpha=8.0, seed=3, dtype=dtype)
    lora.modules["blocks.1.ffn.0"].alpha = 3.0  # an alpha pattern too
    new, old = make_transformer(True), make_transformer(True)
    inits = []
    real = torch.nn.init.kaiming_uniform_

    def spy(t, *a, **k):
        if not t.is_meta:
            inits.append(tuple(t.shape))
        return real(t, *a, **k)

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", spy)
    apply_lora_stack_to_diffusers(new, [(lora, "emo", 0.8)])
    assert inits == []
    rep = validate(lora, ShapeSpec.from_diffusers(old))
    add_peft_adapter(old, _lora_config(lora, rep, None), "emo", _peft_state_dict(lora, rep), init_free=False)
    assert inits  # the reference path does initialise every adapter first
    old.set_adapters(["emo"], [0.8])
    sd_new, sd_old = new.state_dict(), old.state_dict()
    assert sd_new.keys() == sd_old.keys()
    assert all(sd_new[k].dtype == sd_old[k].dtype and torch.equal(sd_new[k], sd_old[k]) for k in sd_new)
    assert torch.equal(run(new, True), run(old, True))
    a = new.blocks[0].attn1.to_q.lora_A["emo"].weight
    assert a.dtype == torch.float32 and a.data_ptr() != lora.modules["blocks.0.self_attn.q"].down.data_ptr()


def test_fusing_a_chain_merges_the_earlier_lora_full_deltas_too(tmp_path):
    """A ``.diff`` on a layer weight has no peft adapter to live in while unfused; when a later node of the chain
    fuses, it is merged with the rest of the chain's LoRAs (not only the last node's)."""
    from types import SimpleNamespace

    from safetensors.torch import save_file

    from emovid_core.lora.stack import add_lora_to_pipeline
    from emovid_core.wan.handle import WanHandle

    model = make_transformer(False)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    diff = torch.randn(128, 128, generator=torch.Generator().manual_seed(7)) * 0.01
    path = tmp_path / "full.safetensors"
    save_file({"diffusion_model.blocks.0.self_attn.k.diff": diff}, str(path))
    style = random_lora(seed=8, targets=["ffn.0"])
    handle = WanHandle(pipe=SimpleNamespace(transformer=model), variant="tiny", kind="t2v", source="test")
    h1, r1 = add_lora_to_pipeline(handle, LoraSpec(path, "full", 0.5))
    assert "fuse=True" in r1.entries[0].report.skipped["blocks.0.self_attn.k"]
    h2, r2 = add_lora_to_pipeline(h1, LoraSpec(style, "style", 1.0), fuse=True)
    assert h2.loras == ["full:0.5 (fused)", "style:1 (fused)"]
    sd = model.state_dict()
    k = "blocks.0.attn1.to_k.weight"
    torch.testing.assert_close(sd[k], base[k] + 0.5 * diff, rtol=0, atol=1e-7)
    for key, v in expected_diffusers_weights(base, style, 1.0).items():
        torch.testing.assert_close(sd[key], v, rtol=0, atol=1e-6)
