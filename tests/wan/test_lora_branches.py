"""LoRAs per branch: handles made from one loaded pipeline by the LoRA pipeline node share its transformer (the
base weights are not copied) but each generates with its own LoRA stack, whatever order the branches run in --
the videos equal those of separately loaded pipelines, bit for bit. Fused LoRAs never leak into another branch.
"""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from emovid_core.lora import LoraError, LoraSpec, apply_lora_stack_to_diffusers, write_lora
from emovid_core.lora.stack import add_lora_to_pipeline
from emovid_core.lora.testing import random_lora
from emovid_core.wan import generate, load_tiny_pipeline
from emovid_core.wan.tiny import TINY_CONFIGS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T = TINY_CONFIGS["transformer_t2v"]
DIM, FFN, LAYERS = T["num_attention_heads"] * T["attention_head_dim"], T["ffn_dim"], T["num_layers"]


@pytest.fixture(scope="module")
def loras(tmp_path_factory):
    """lora1 (DiffSynth names) and lora2 (ComfyUI names plus a lightx2v-style ``diff_m`` delta on blocks.1's
    modulation, which is merged into the shared parameter, so switching branches must restore it exactly)."""
    folder = tmp_path_factory.mktemp("loras")
    l1 = folder / "lora1.safetensors"
    write_lora(random_lora(DIM, FFN, LAYERS, seed=11, scale=0.5), l1, "diffsynth")
    l2 = folder / "lora2.safetensors"
    write_lora(random_lora(DIM, FFN, LAYERS, seed=12, scale=0.5, targets=["self_attn.q", "cross_attn.o", "ffn.2"]), l2, "comfy")
    sd = load_file(str(l2))
    sd["diffusion_model.blocks.1.diff_m"] = torch.randn(1, 6, DIM, generator=torch.Generator().manual_seed(13)) * 0.5
    save_file(sd, str(l2))
    return l1, l2


def clip(handle):
    return generate(handle, caption="A dog runs along the beach.", emotion="amusement", seed=5, steps=2, frames=5).frames


def base_tensors(handle) -> dict[str, tuple[int, torch.Tensor]]:
    """Every base parameter by its plain name (peft's ``.base_layer`` removed): (data_ptr, the Parameter)."""
    return {n.replace(".base_layer", ""): (p.data_ptr(), p) for n, p in handle.pipe.transformer.named_parameters()
            if ".lora_" not in n}


_SEPARATE: dict = {}


def separate(*specs, fuse=False):
    """The reference: a pipeline loaded for this stack alone (once per stack in this module)."""
    key = (tuple((str(s.source), s.name, s.strength) for s in specs), fuse)
    if key not in _SEPARATE:
        h = load_tiny_pipeline("t2v")
        for s in specs:
            h, _ = add_lora_to_pipeline(h, s, fuse=fuse)
        _SEPARATE[key] = clip(h)
    return _SEPARATE[key]


@pytest.mark.parametrize("order", ["ABCD", "DCBA"])
def test_branches_of_one_pipeline_equal_separately_loaded_pipelines(loras, order):
    l1, l2 = loras
    base = load_tiny_pipeline("t2v")
    before = base_tensors(base)
    # Both LoRA nodes run before any generation (the order that leaked), and both ask for the adapter name "emo".
    h = {"A": add_lora_to_pipeline(base, LoraSpec(l1, "emo", 1.0))[0],
         "B": add_lora_to_pipeline(base, LoraSpec(l2, "emo", 0.7))[0],
         "C": base,
         "D": add_lora_to_pipeline(base, LoraSpec(l1, None, 0.5))[0]}  # the same file as A, another strength
    got = {k: clip(h[k]) for k in order}
    want = {"A": separate(LoraSpec(l1, "emo", 1.0)), "B": separate(LoraSpec(l2, "emo", 0.7)), "C": separate(),
            "D": separate(LoraSpec(l1, None, 0.5))}
    for k in "ABCD":
        assert torch.equal(got[k], want[k]), f"branch {k} (run order {order}) differs from its own pipeline"
    assert torch.equal(clip(h[order[0]]), want[order[0]])  # and again after the others ran
    for a, b in ("AB", "AC", "BC", "AD"):
        assert (got[a] - got[b]).abs().max() > 1e-3  # the stacks really differ

    # One pipeline, base weights not copied: every base tensor is the same object at the same address.
    assert all(x.pipe is base.pipe for x in h.values())
    after = base_tensors(base)
    assert after.keys() == before.keys()
    assert all(after[n][0] == ptr and after[n][1] is t for n, (ptr, t) in before.items())
    # A and D share one adapter (same file, same blocks); B's "emo" is another file, so it got its own name.
    t = base.pipe.transformer
    assert sorted(t.peft_config) == ["emo", "emo_2"]
    assert [(e.label, e.adapter) for e in h["B"].lora_stack + h["D"].lora_stack] == [("emo", "emo_2"), ("lora1", "emo")]
    # Each handle lists its own LoRAs only.
    assert h["A"].summary().endswith("; LoRAs: emo:1") and h["B"].summary().endswith("; LoRAs: emo:0.7")
    assert h["D"].summary().endswith("; LoRAs: lora1:0.5") and "LoRAs" not in base.summary()


def test_a_chain_on_one_branch_keeps_the_other_branch_clean(loras):
    l1, l2 = loras
    base = load_tiny_pipeline("t2v")
    a1, _ = add_lora_to_pipeline(base, LoraSpec(l1, None, 1.0))
    both, report = add_lora_to_pipeline(a1, LoraSpec(l2, None, 0.7))
    only2, _ = add_lora_to_pipeline(base, LoraSpec(l2, None, 0.7))
    assert both.loras == ["lora1:1", "lora2:0.7"] and only2.loras == ["lora2:0.7"] and a1.loras == ["lora1:1"]
    assert torch.equal(clip(only2), separate(LoraSpec(l2, None, 0.7)))
    assert torch.equal(clip(both), separate(LoraSpec(l1, None, 1.0), LoraSpec(l2, None, 0.7)))
    assert torch.equal(clip(a1), separate(LoraSpec(l1, None, 1.0)))


def test_fuse_on_one_branch_never_leaks_into_another(loras):
    l1, l2 = loras
    base = load_tiny_pipeline("t2v")
    before = base_tensors(base)
    b, _ = add_lora_to_pipeline(base, LoraSpec(l2, None, 0.7))
    assert torch.equal(clip(b), separate(LoraSpec(l2, None, 0.7)))  # B ran before the fuse: its own video
    f, report = add_lora_to_pipeline(base, LoraSpec(l1, None, 1.0), fuse=True)
    assert report.fused and f.loras == ["lora1:1 (fused)"]
    assert torch.equal(clip(f), separate(LoraSpec(l1, None, 1.0), fuse=True))  # fused in place, bit for bit
    after = base_tensors(base)
    assert all(after[n][0] == ptr for n, (ptr, _) in before.items())  # merged in place, still not copied

    # The shared weights now hold lora1: the branches that do not expect it are refused, never given lora1.
    for other in (b, base):
        with pytest.raises(LoraError, match=r"weights have lora1:1 fused in, but this pipe expects no LoRA fused.*"
                                             r"give the fused branch its own EmoVid Wan Loader"):
            clip(other)
    with pytest.raises(LoraError, match="fused weights cannot be unfused"):
        add_lora_to_pipeline(base, LoraSpec(l2, None, 0.7))
    # Building on the fused branch works: lora1 fused plus lora2 as an adapter, as on its own pipeline.
    f2, _ = add_lora_to_pipeline(f, LoraSpec(l2, None, 0.7))
    assert f2.loras == ["lora1:1 (fused)", "lora2:0.7"]
    ref = load_tiny_pipeline("t2v")
    ref, _ = add_lora_to_pipeline(ref, LoraSpec(l1, None, 1.0), fuse=True)
    ref, _ = add_lora_to_pipeline(ref, LoraSpec(l2, None, 0.7))
    assert torch.equal(clip(f2), clip(ref))


def test_generate_with_a_stack_sets_that_handle_only(loras):
    l1, _ = loras
    base = load_tiny_pipeline("t2v")
    a, _ = add_lora_to_pipeline(base, LoraSpec(l1, None, 1.0))
    plain = clip(base)
    r = generate(base, caption="A dog runs along the beach.", emotion="amusement", seed=5, steps=2, frames=5,
                 lora_stack=[(str(l1), "x", 0.5)])
    assert r.loras == ["x"] and base.loras == ["x:0.5"] and a.loras == ["lora1:1"]
    assert sorted(base.pipe.transformer.peft_config) == ["lora1"]  # the file is loaded once, under A's name
    assert torch.equal(clip(a), separate(LoraSpec(l1, None, 1.0)))
    assert torch.equal(r.frames, separate(LoraSpec(l1, None, 0.5)))
    generate(base, caption="x", emotion="fear", steps=1, frames=1, lora_stack=[])
    assert torch.equal(clip(base), plain)


def test_a_lora_file_replaced_in_place_is_loaded_again(tmp_path):
    """The adapter cache keys on the file's stamp: a new epoch saved over the old file is not the old adapter."""
    from emovid_core.wan import dit_keys as wl

    def make():
        from diffusers import WanTransformer3DModel

        torch.manual_seed(0)
        return WanTransformer3DModel(**T).eval()

    path = tmp_path / "epoch.safetensors"
    write_lora(random_lora(DIM, FFN, LAYERS, seed=1), path, "comfy")
    model = make()
    apply_lora_stack_to_diffusers(model, [(path, "x", 1.0)])
    st = path.stat()
    write_lora(random_lora(DIM, FFN, LAYERS, seed=2), path, "comfy")  # same keys and size, other values
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = apply_lora_stack_to_diffusers(model, [(path, "x", 1.0)])
    assert "weight changed only" not in str(report) and "replaced" in str(report)
    fresh = make()
    apply_lora_stack_to_diffusers(fresh, [(path, "x", 1.0)])
    key = wl.original_to_diffusers("blocks.0.self_attn.q") + ".lora_B.x.weight"
    assert torch.equal(model.state_dict()[key], fresh.state_dict()[key])


def test_branches_generating_at_the_same_time_take_turns(loras):
    """Two threads generate on two branches of one pipeline at once: the pipeline's lock keeps each run's adapters
    (and scheduler) its own, so each equals its separately loaded pipeline."""
    import threading

    l1, l2 = loras
    base = load_tiny_pipeline("t2v")
    branches = {"A": add_lora_to_pipeline(base, LoraSpec(l1, None, 1.0))[0], "B": add_lora_to_pipeline(base, LoraSpec(l2, None, 0.7))[0]}
    got: dict[str, list] = {"A": [], "B": []}
    errors = []

    def work(name):
        try:
            for _ in range(2):
                got[name].append(clip(branches[name]))
        except Exception as exc:  # surfaced below; a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(torch.equal(x, separate(LoraSpec(l1, None, 1.0))) for x in got["A"])
    assert all(torch.equal(x, separate(LoraSpec(l2, None, 0.7))) for x in got["B"])


def test_lycoris_branches_are_merged_and_taken_out_per_branch(tmp_path, loras):
    """LoKr/LoHa/DoRA are merged into the shared weights on the diffusers pipeline (no peft adapter holds them):
    switching branches must take one branch's merge out exactly before the next one samples."""
    from tests.lora.utils import lycoris_module

    sd = {}
    for i, (blk, kind, dora) in enumerate([(0, "lokr", ""), (1, "loha", "out"), (0, "lora", "in")]):
        target = "self_attn.q" if kind != "lora" else "cross_attn.o"
        for part, t in lycoris_module(kind, DIM, DIM, seed=40 + i, dora=dora).items():
            sd[f"diffusion_model.blocks.{blk}.{target}.{part}"] = t
    lyco = tmp_path / "lyco.safetensors"
    save_file(sd, str(lyco))
    l1, _ = loras
    base = load_tiny_pipeline("t2v")
    before = {n: p.detach().clone() for n, p in base_tensors(base).items() for p in [p[1]]}
    h = {"L": add_lora_to_pipeline(base, LoraSpec(lyco, None, 0.8))[0],
         "P": add_lora_to_pipeline(base, LoraSpec(l1, None, 1.0))[0],
         "C": base}
    want = {"L": separate(LoraSpec(lyco, None, 0.8)), "P": separate(LoraSpec(l1, None, 1.0)), "C": separate()}
    assert not torch.equal(want["L"], want["C"])  # the LyCORIS file does change the video
    for k in "LPCLCP":
        assert torch.equal(clip(h[k]), want[k]), f"branch {k} differs from its own pipeline"
    after = {n: p for n, (_, p) in base_tensors(base).items()}
    assert all(torch.equal(after[n], before[n]) for n in before)  # the last branch (P) holds no merged delta
