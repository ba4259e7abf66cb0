"""LyCORIS LoKr / LoHa and DoRA (``dora_scale``): read under every name space, validated, reported, applied on a
ComfyUI-style MODEL (patch structure + patched weights) and merged on the diffusers transformer, converted.

The files are hand-made with explicit keys (tests/lora/utils.py ``lycoris_module``) and the weights they must give
come from the definitions written out in utils.py, not from the pack. The real-ComfyUI comparison with core's
LoraLoaderModelOnly is tests/lora/test_lora_comfyui_real.py.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from emovid_core.host import cli
from emovid_core.lora import (
    FORMATS,
    LoraError,
    LoraMismatchError,
    NonFiniteLoraError,
    ShapeSpec,
    apply_lora_stack_to_comfy,
    apply_lora_stack_to_diffusers,
    inspect_lora,
    load_lora,
    lora_state_dict,
    normalize,
    validate,
    write_lora,
)
from emovid_core.lora.formats import ALGORITHMS, PARTS
from emovid_core.lora.testing import ReferencePatcher
from emovid_core.wan import dit_keys as wl
from tests.lora.utils import expected_lycoris_weight, lycoris_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: threads only add contention

D, F = 128, 256
# module -> (kind, dora): one of each, on attention and FFN layers of both blocks of the tiny model
PLAN = {"blocks.0.self_attn.q": ("lokr", ""), "blocks.0.cross_attn.o": ("lokr_full", ""),
        "blocks.1.ffn.0": ("lokr_ab", "out"), "blocks.0.ffn.2": ("loha", ""), "blocks.1.self_attn.k": ("loha", "in"),
        "blocks.1.cross_attn.v": ("lora", "out"), "blocks.0.self_attn.v": ("lora", "in")}
KIND = {"lokr": "LoKr", "lokr_full": "LoKr", "lokr_ab": "LoKr", "loha": "LoHa", "lora": "LoRA"}


def _shape(module):
    return (F, D) if module.endswith("ffn.0") else (D, F) if module.endswith("ffn.2") else (D, D)


def hand_tensors(stem_of=lambda m: "diffusion_model." + m, plan=PLAN) -> tuple[dict, dict]:
    """(file tensors with explicit keys ``<stem>.<part>``, {module: its parts}) for ``plan``."""
    parts = {m: lycoris_module(kind, *_shape(m), seed=i, dora=dora) for i, (m, (kind, dora)) in enumerate(plan.items())}
    return {f"{stem_of(m)}.{p}": t for m, tensors in parts.items() for p, t in tensors.items()}, parts


@pytest.fixture(scope="module")
def base_sd():
    return wl.tiny_wan_state_dict(dim=D, ffn=F, layers=2, in_dim=16, seed=7)


# Explicit spellings of one module per trainer's name space (never produced by the pack's writer).
SPELLINGS = [
    ("lycoris_blocks_0_self_attn_q", "lycoris"), ("lora_unet_blocks_0_self_attn_q", "kohya"),
    ("lora_unet__blocks_0_self_attn_q", "wanfun"), ("lora_unet_blocks_0.self_attn.q", "kohya_mixed"),
    ("diffusion_model.blocks.0.self_attn.q", "comfy"), ("diffusion_model.blocks.0.attn1.to_q", "comfy_diffusers_names"),
    ("blocks.0.self_attn.q", "bare"), ("pipe.dit.blocks.0.self_attn.q", "diffsynth_pipe"),
    ("base_model.model.blocks.0.self_attn.q", "peft"), ("transformer.blocks.0.attn1.to_q", "diffusers"),
    ("blocks.0.attn1.to_q", "diffusers_bare"), ("lora_transformer_blocks_0_attn1_to_q", "onetrainer"),
]


@pytest.mark.parametrize("stem,row", SPELLINGS, ids=[s[1] for s in SPELLINGS])
@pytest.mark.parametrize("kind,dora", [("lokr", ""), ("loha", "in"), ("lora", "out")])
def test_every_name_space_reads_lokr_loha_and_dora(stem, row, kind, dora):
    parts = lycoris_module(kind, D, D, seed=3, dora=dora)
    lora = normalize({f"{stem}.{p}": t for p, t in parts.items()})
    assert FORMATS[lora.source_format].prefix == FORMATS[row].prefix  # the row's prefix (rows sharing one are alike)
    assert list(lora.modules) == ["blocks.0.self_attn.q"] and not lora.unused_keys
    m = lora.modules["blocks.0.self_attn.q"]
    assert m.kind == KIND[kind] + ("+DoRA" if dora else "") and m.weight_shape == (D, D)
    assert m.dora_scale is (parts["dora_scale"] if dora else None)
    for p, t in parts.items():  # the file's tensors, shared, not copied
        if p.startswith(("lokr_", "hada_")):
            assert m.factors[p] is t
    assert sorted(m.source_keys) == sorted(f"{stem}.{p}" for p in parts)


def test_the_tables_hold_every_lycoris_tensor():
    """Each algorithm is one row of ALGORITHMS; PARTS reads every tensor name of every row and .dora_scale."""
    suffixes = {p.suffix for p in PARTS}
    for algo in ALGORITHMS.values():
        assert {"." + p for p in algo.parts} <= suffixes
    assert ".dora_scale" in suffixes
    assert ALGORITHMS["lokr"].missing({"lokr_w1": 1, "lokr_w2_a": 1}) == "lokr_w2 or lokr_w2_a+lokr_w2_b"
    assert ALGORITHMS["loha"].missing(dict.fromkeys(["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"])) is None


def test_scales_follow_comfyui(base_sd):
    tensors, parts = hand_tensors()
    lora = normalize(tensors)
    assert lora.modules["blocks.0.self_attn.q"].scale == 1.0 / 2  # alpha / rank of the low-rank factor
    assert lora.modules["blocks.0.cross_attn.o"].scale == 1.0  # both factors full: alpha (3) unused
    assert lora.modules["blocks.1.ffn.0"].scale == 4 / 2  # int64 alpha, both factors low-rank
    info = inspect_lora(lora)
    assert info.kinds == {"LoKr": 2, "LoKr+DoRA": 1, "LoHa": 1, "LoHa+DoRA": 1, "LoRA+DoRA": 2}
    text = str(info)
    assert "kinds: LoHa (1), LoHa+DoRA (1), LoKr (2), LoKr+DoRA (1), LoRA+DoRA (2)" in text
    assert "LoKr: blocks.0.cross_attn.o, blocks.0.self_attn.q (2)" in text
    assert info.parameters == sum(t.numel() for p in parts.values() for k, t in p.items() if k != "alpha")


def test_comfy_patches_and_patched_weights(base_sd):
    """On a ComfyUI-style MODEL: one patch per module in ComfyUI's own layout for its kind (legacy tuples here, as
    no ComfyUI is loaded; the same tuples feed its adapter classes), and each patched weight equals the formula."""
    tensors, parts = hand_tensors(lambda m: "lycoris_" + m.replace(".", "_"))
    model = ReferencePatcher.from_state_dict(base_sd)
    out, report = apply_lora_stack_to_comfy(model, [(normalize(tensors), "lyco", 0.7)], strict=True)
    rep = report.entries[0].report
    assert sorted(rep.applied) == sorted(PLAN) and rep.kinds["blocks.1.ffn.0"] == "LoKr+DoRA"
    assert "applied as LoKr+DoRA: 1 module(s) (blocks.1.ffn.0)" in str(report)
    patches = {k.removeprefix("diffusion_model."): v for k, v in out.get_key_patches().items()}
    kind, w = patches["blocks.0.self_attn.q.weight"][0][1]
    p = parts["blocks.0.self_attn.q"]
    assert kind == "lokr" and len(w) == 9 and w[0] is p["lokr_w1"] and w[1] is None and w[5] is p["lokr_w2_a"]
    assert w[2] == 1.0 and w[7] is None and w[8] is None
    kind, w = patches["blocks.1.self_attn.k.weight"][0][1]
    assert kind == "loha" and w[0] is parts["blocks.1.self_attn.k"]["hada_w1_a"] and w[7] is parts["blocks.1.self_attn.k"]["dora_scale"]
    kind, w = patches["blocks.1.cross_attn.v.weight"][0][1]
    assert kind == "lora" and w[4] is parts["blocks.1.cross_attn.v"]["dora_scale"] and w[3] is None
    assert patches["blocks.0.self_attn.q.weight"][0][0] == 0.7  # the strength rides on the patch
    for name, t in parts.items():
        got = out.patched_weight("diffusion_model." + name + ".weight")
        torch.testing.assert_close(got, expected_lycoris_weight(base_sd[name + ".weight"], t, 0.7), rtol=0, atol=2e-6)
        assert not torch.equal(got, base_sd[name + ".weight"])
    zero, _ = apply_lora_stack_to_comfy(model, [(normalize(tensors), "lyco", 0.0)])
    assert not zero.get_key_patches()


def test_validation_tucker_nan_and_shapes(base_sd):
    spec = ShapeSpec.from_state_dict(base_sd)
    q = lycoris_module("loha", D, D, seed=1)
    tucker = {"diffusion_model.blocks.0.self_attn.k." + p: t for p, t in q.items()}
    tucker["diffusion_model.blocks.0.self_attn.k.hada_t1"] = torch.ones(2, 2, 3, 3)
    tucker["diffusion_model.blocks.0.self_attn.k.hada_t2"] = torch.ones(2, 2, 3, 3)
    tucker.update({"diffusion_model.blocks.0.self_attn.q." + p: t for p, t in q.items()})
    lora = normalize(tucker)
    assert list(lora.modules) == ["blocks.0.self_attn.q"]
    assert "Tucker cores (hada_t1, hada_t2)" in lora.unused_keys["diffusion_model.blocks.0.self_attn.k.hada_t1"]
    assert len(lora.unused_keys) == 7  # every key of that module, with the reason
    with pytest.raises(LoraMismatchError, match="Tucker"):
        validate(lora, spec, strict=True)
    with pytest.raises(LoraError, match="'lycoris_blocks_0_ffn_0.lokr_w1': incomplete LoKr .* no lokr_w2 or lokr_w2_a"):
        normalize({"lycoris_blocks_0_ffn_0.lokr_w1": torch.ones(4, 4)})
    # a LoKr whose Kronecker product is the wrong size, a DoRA magnitude on neither axis
    bad = {f"diffusion_model.blocks.0.ffn.0.{p}": t for p, t in lycoris_module("lokr", D, D, seed=2).items()}
    bad.update({f"diffusion_model.blocks.0.self_attn.o.{p}": t for p, t in lycoris_module("lora", D, D, seed=3).items()})
    bad["diffusion_model.blocks.0.self_attn.o.dora_scale"] = torch.ones(D, 2)
    rep = validate(normalize(bad), spec)
    assert rep.skipped["blocks.0.ffn.0"] == "shape (128, 128) does not match the model's (256, 128)"
    assert "dora_scale (128, 2) fits neither the output axis (128, 1) nor the input axis (1, 128)" in rep.skipped["blocks.0.self_attn.o"]
    nan = dict(tucker)
    nan["diffusion_model.blocks.0.self_attn.q.hada_w2_b"] = torch.full((2, D), float("nan"))
    with pytest.raises(NonFiniteLoraError, match=r"blocks.0.self_attn.q \(hada_w2_b\)"):
        normalize(nan)
    with pytest.raises(LoraError, match="holds LoKr and LoRA tensors"):
        normalize({"blocks.0.self_attn.q.lokr_w1": torch.ones(4, 4), "blocks.0.self_attn.q.lora_A.weight": torch.ones(2, D),
                   "blocks.0.self_attn.q.lora_B.weight": torch.ones(D, 2)})
    with pytest.raises(LoraError, match="lokr_w2_a .* and lokr_w2_b .* ranks differ"):
        normalize({"blocks.0.self_attn.q.lokr_w1": torch.ones(4, 4), "blocks.0.self_attn.q.lokr_w2_a": torch.ones(32, 2),
                   "blocks.0.self_attn.q.lokr_w2_b": torch.ones(3, 32)})


@pytest.mark.parametrize("target,prefix", [("comfy", "diffusion_model.blocks.0.self_attn.q"),
                                           ("kohya", "lora_unet_blocks_0_self_attn_q")])
def test_convert_keeps_lokr_loha_dora(tmp_path, base_sd, target, prefix, capsys):
    tensors, parts = hand_tensors(lambda m: "transformer." + wl.original_to_diffusers(m))
    src = tmp_path / "lyco.safetensors"
    save_file(tensors, str(src))
    out = tmp_path / f"out_{target}.safetensors"
    assert cli.main(["lora", "convert", str(src), str(out), "--to", target]) == 0
    from safetensors.torch import load_file

    written = load_file(str(out))
    for p, t in parts["blocks.0.self_attn.q"].items():  # the LoKr module, spelled for the target
        key = f"{prefix}.{p}"
        assert torch.equal(written[key], t.float() if p == "alpha" else t), key
    assert len(written) == len(tensors)  # nothing dropped, nothing added
    back = load_lora(out)
    model = ReferencePatcher.from_state_dict(base_sd)
    a = apply_lora_stack_to_comfy(model, [(load_lora(src), "a", 0.9)])[0]
    b = apply_lora_stack_to_comfy(model, [(back, "b", 0.9)])[0]
    for name in PLAN:
        key = "diffusion_model." + name + ".weight"
        assert torch.equal(a.patched_weight(key), b.patched_weight(key)), name


def test_convert_to_diffusers_refuses_in_one_sentence(tmp_path, capsys):
    tensors, _ = hand_tensors(plan={"blocks.0.self_attn.q": ("lokr", "")})
    src = tmp_path / "lokr.safetensors"
    save_file(tensors, str(src))
    for fmt in ("diffusers", "diffsynth", "peft"):
        with pytest.raises(LoraError, match="blocks.0.self_attn.q is a LoKr module, which the .* format cannot hold"):
            lora_state_dict(load_lora(src), fmt)
    out = tmp_path / "out.safetensors"
    assert cli.main(["lora", "convert", str(src), str(out), "--to", "diffusers"]) != 0
    err = capsys.readouterr().err
    assert "convert to comfy or kohya" in err and not out.exists()


# ---------------------------------------------------------------------------------------------- diffusers


def _transformer():
    pytest.importorskip("diffusers")
    pytest.importorskip("peft")
    from tests.lora.test_lora_diffusers import make_transformer

    return make_transformer(False)


def _forward(model):
    from tests.lora.test_lora_diffusers import run

    return run(model, False)


def test_diffusers_merges_lokr_loha_dora_with_exact_undo(tmp_path):
    """Unfused: merged into the weights in float32 (peft's LoraLayer holds plain pairs only), the output equals a
    transformer whose weights are the formula's; a strength change and LoRA off restore the originals bit for bit;
    a plain LoRA in the same stack stays a peft adapter. Fused: the same weights, adapters gone."""
    model = _transformer()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    tensors, parts = hand_tensors(lambda m: "lycoris_" + m.replace(".", "_"))
    lyco = tmp_path / "lyco.safetensors"
    save_file(tensors, str(lyco))
    plain = tmp_path / "plain.safetensors"
    g = torch.Generator().manual_seed(9)
    pa, pb = torch.randn(4, D, generator=g) * 0.1, torch.randn(D, 4, generator=g) * 0.1
    save_file({"diffusion_model.blocks.0.self_attn.k.lora_down.weight": pa,
               "diffusion_model.blocks.0.self_attn.k.lora_up.weight": pb}, str(plain))

    ref = _transformer()

    def reference(strength):  # the same tiny transformer with the formula's weights loaded
        sd = {k: v.clone() for k, v in base.items()}
        for name, t in parts.items():
            key = wl.original_to_diffusers(name) + ".weight"
            sd[key] = expected_lycoris_weight(base[key], t, strength)
        sd["blocks.0.attn1.to_k.weight"] = base["blocks.0.attn1.to_k.weight"] + 0.5 * (pb @ pa)
        ref.load_state_dict(sd)
        return ref, sd

    report = apply_lora_stack_to_diffusers(model, [(lyco, "lyco", 0.8), (plain, "plain", 0.5)], strict=True)
    assert "7 LoKr/LoHa/DoRA module(s) merged into the weights in float32" in str(report)
    assert "applied as LoRA+DoRA: 2 module(s) (blocks.0.self_attn.v, blocks.1.cross_attn.v)" in str(report)
    assert set(model.peft_config) == {"plain"}  # only the plain pair is a peft adapter
    ref, ref_sd = reference(0.8)
    torch.testing.assert_close(_forward(model), _forward(ref), rtol=0, atol=1e-5)
    sd = model.state_dict()
    for name in parts:
        key = wl.original_to_diffusers(name) + ".weight"
        torch.testing.assert_close(sd[key], ref_sd[key], rtol=0, atol=2e-6)

    apply_lora_stack_to_diffusers(model, [(None, "lyco", 0.3), (None, "plain", 0.5)])  # strength change, no reload
    torch.testing.assert_close(_forward(model), _forward(reference(0.3)[0]), rtol=0, atol=1e-5)
    apply_lora_stack_to_diffusers(model, [])
    sd = model.state_dict()
    for name in parts:
        key = wl.original_to_diffusers(name)
        assert torch.equal(sd.get(key + ".weight", sd.get(key + ".base_layer.weight")), base[key + ".weight"]), name
    fused = _transformer()
    apply_lora_stack_to_diffusers(fused, [(lyco, "lyco", 0.8), (plain, "plain", 0.5)], fuse=True)
    assert not getattr(fused, "peft_config", None) or not any(".lora_" in k for k in fused.state_dict())
    torch.testing.assert_close(_forward(fused), _forward(reference(0.8)[0]), rtol=0, atol=1e-5)


def test_lokr_file_spelled_by_each_trainer_gives_the_same_merge(tmp_path):
    """The same modules under musubi, diffusers and DiffSynth stems merge to the same weights on diffusers."""
    outs = []
    for i, stem_of in enumerate((lambda m: "lora_unet_" + m.replace(".", "_"),
                                 lambda m: "transformer." + wl.original_to_diffusers(m), lambda m: m)):
        path = tmp_path / f"f{i}.safetensors"
        save_file(hand_tensors(stem_of)[0], str(path))
        model = _transformer()
        apply_lora_stack_to_diffusers(model, [(path, "x", 1.0)], strict=True)
        outs.append(_forward(model))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    fused = _transformer()  # no peft adapter at all: fusing only merges, and gives the same output
    report = apply_lora_stack_to_diffusers(fused, [(path, "x", 1.0)], fuse=True)
    assert report.fused and torch.equal(_forward(fused), outs[2])
    zero = _transformer()
    apply_lora_stack_to_diffusers(zero, [(path, "x", 0.0)])
    assert torch.equal(_forward(zero), _forward(_transformer()))  # strength 0 is exactly the base model


def test_write_lora_roundtrip_keeps_everything(tmp_path):
    tensors, parts = hand_tensors()
    lora = normalize(tensors)
    path = tmp_path / "x.safetensors"
    write_lora(lora, path, "lycoris")
    back = load_lora(path)
    assert back.source_format == "lycoris"
    for name, m in lora.modules.items():
        b = back.modules[name]
        assert b.kind == m.kind and b.scale == m.scale and set(b.factors) == set(m.factors)
        assert all(torch.equal(b.factors[p], t) for p, t in m.factors.items())


def test_cli_names_why_keys_were_left_out_and_the_kinds(tmp_path, capsys):
    """convert says why a Tucker module was left out (not "not Wan2.1 LoRA weights"); inspect --check lists kinds."""
    tensors, _ = hand_tensors(plan={"blocks.0.self_attn.q": ("lokr", ""), "blocks.0.ffn.2": ("loha", "in")})
    tensors["diffusion_model.blocks.1.self_attn.k.hada_w1_a"] = torch.ones(D, 2)
    tensors["diffusion_model.blocks.1.self_attn.k.hada_t1"] = torch.ones(2, 2, 3, 3)
    src = tmp_path / "lyco.safetensors"
    save_file(tensors, str(src))
    assert cli.main(["lora", "convert", str(src), str(tmp_path / "out.safetensors"), "--to", "kohya"]) == 0
    out = capsys.readouterr().out
    assert "2 key(s) of the input were left out: 2: LoHa (LyCORIS Hadamard product) with Tucker cores" in out
    model = tmp_path / "model.safetensors"
    wl.write_tiny_wan(model, dim=D, ffn=F, layers=2, seed=1)
    import json

    assert cli.main(["lora", "inspect", str(src), "--json", "--check", str(model)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kinds"] == {"LoKr": 1, "LoHa+DoRA": 1}
    assert data["validation"]["kinds"] == {"blocks.0.self_attn.q": "LoKr", "blocks.0.ffn.2": "LoHa+DoRA"}
