"""GPU check of emovid_core.wan (run on a CUDA machine; prints one line per check and the timings).

Stage 1, tiny pipeline on CUDA: bf16 generation, model CPU offload equals no offload, auto offload choice,
seed determinism, I2V, LoRA on/off, single files in original layout.
Stage 2, real sizes with random weights (no download): the Wan2.1 T2V 1.3B transformer, the Wan VAE and the
umt5-xxl encoder are built from the configs shipped in the pack, written as ComfyUI-style single files
(original layouts, bf16) and loaded back through ``load_single_files`` with variant auto-detection, then a
480P clip is generated and timed. Skip it with --tiny-only.

    python benchmarks/check_wan_gpu.py [--tiny-only] [--frames 33] [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")


def say(msg: str) -> None:
    print(msg, flush=True)


def stage_tiny(tmp: Path) -> None:
    import torch

    from emovid_core.wan import export_single_files, generate, load_tiny_pipeline
    from emovid_core.wan.loading import load_single_files

    img = torch.rand(1, 48, 64, 3, generator=torch.Generator().manual_seed(0))
    kw = dict(caption="A dog runs on a beach.", emotion="amusement", seed=5, steps=4)
    h = load_tiny_pipeline("t2v", dtype="bfloat16", device="cuda", offload="none")
    a = generate(h, **kw)
    b = generate(h, **kw)
    say(f"tiny t2v bf16 cuda: {tuple(a.frames.shape)} finite={bool(torch.isfinite(a.frames).all())} "
        f"transformer on {h.pipe.transformer.device} {h.pipe.transformer.dtype}; same seed max diff {(a.frames - b.frames).abs().max():.2e}")
    off = load_tiny_pipeline("t2v", dtype="bfloat16", device="cuda", offload="model")
    c = generate(off, **kw)
    say(f"tiny t2v model offload ({off.offload}): max diff vs on-GPU {(a.frames - c.frames).abs().max():.2e}")
    auto = load_tiny_pipeline("t2v", dtype="auto", device="auto", offload="auto")
    say(f"auto choices: dtype {auto.dtype}, device {auto.device}, offload {auto.offload}")
    i2v = load_tiny_pipeline("i2v", dtype="bfloat16", device="cuda")
    d = generate(i2v, image=img, **kw)
    say(f"tiny i2v bf16 cuda: {tuple(d.frames.shape)} finite={bool(torch.isfinite(d.frames).all())}")

    from emovid_core.lora import from_tensors, write_lora

    g = torch.Generator().manual_seed(0)
    mods = {f"blocks.{i}.self_attn.q": (torch.randn(4, 24, generator=g) * 0.5, torch.randn(24, 4, generator=g) * 0.5, 4.0) for i in range(2)}
    lp = tmp / "lora.safetensors"
    write_lora(from_tensors(mods), lp, fmt="comfy")
    base = generate(h, lora_stack=[], **kw)
    on = generate(h, lora_stack=[(str(lp), "x", 1.0)], **kw)
    zero = generate(h, lora_stack=[(str(lp), "x", 0.0)], **kw)
    say(f"LoRA on cuda: on-vs-off {(on.frames - base.frames).abs().max():.3f}, strength0-vs-off {(zero.frames - base.frames).abs().max():.2e}")
    paths = export_single_files("t2v", tmp / "sf")
    sf = load_single_files(paths["transformer"], paths["vae"], paths["text_encoder"], paths["tokenizer"], dtype="bfloat16", device="cuda")
    e = generate(sf, lora_stack=[], **kw)
    ref = load_tiny_pipeline("t2v", dtype="bfloat16", device="cuda")
    diffs = []
    for name in ("transformer", "text_encoder", "vae"):
        x, y = getattr(sf.pipe, name).state_dict(), getattr(ref.pipe, name).state_dict()
        diffs += [f"{name}.{k} {x[k].dtype}/{y[k].dtype}" for k in x if x[k].dtype != y[k].dtype or not torch.equal(x[k], y[k])]
    f = generate(ref, **kw)
    say(f"single files bf16 cuda: variant {sf.variant}, max diff vs folder {(e.frames - f.frames).abs().max():.2e}; "
        f"{len(diffs)} tensor(s) differ from the folder load {diffs[:4]}")


def stage_real(tmp: Path, frames: int, steps: int) -> None:
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from safetensors.torch import save_file
    from transformers import UMT5Config, UMT5EncoderModel

    from emovid_core.wan import generate
    from emovid_core.wan.loading import load_single_files
    from emovid_core.wan.single_file import transformer_to_original, vae_to_original
    from emovid_core.wan.tiny import build_tokenizer
    from emovid_core.wan.variants import get_variant

    v = get_variant("t2v-1.3b")
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device("cuda"):
        tr = WanTransformer3DModel.from_config(v.config("transformer")).to(torch.bfloat16)
        vae = AutoencoderKLWan.from_config(v.config("vae"))
        te = UMT5EncoderModel(UMT5Config(**v.config("text_encoder"))).to(torch.bfloat16)
    # Random init gives huge activations in a 24-layer T5; shrink the output so the DiT sees sane context.
    with torch.no_grad():
        te.encoder.final_layer_norm.weight.fill_(0.1)
    n_tr = sum(p.numel() for p in tr.parameters()) / 1e9
    n_te = sum(p.numel() for p in te.parameters()) / 1e9
    say(f"built random 1.3B transformer ({n_tr:.2f} B params), Wan VAE, umt5-xxl ({n_te:.2f} B) on GPU in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    files = {"transformer": tmp / "wan2.1_t2v_1.3B_random_bf16.safetensors", "vae": tmp / "wan_2.1_vae_random.safetensors",
             "text_encoder": tmp / "umt5_xxl_random_bf16.safetensors"}
    save_file({k: t.detach().cpu().contiguous() for k, t in transformer_to_original(tr.state_dict(), "model.diffusion_model.").items()},
              str(files["transformer"]))
    save_file({k: t.detach().cpu().contiguous() for k, t in vae_to_original(vae.state_dict()).items()}, str(files["vae"]))
    sd = {k: t.detach().cpu().contiguous() for k, t in te.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_file(sd, str(files["text_encoder"]))
    ref_tr = {k: t.detach().cpu() for k, t in list(tr.state_dict().items())[:6]}
    del tr, vae, te, sd
    torch.cuda.empty_cache()
    tok_dir = tmp / "tok"
    build_tokenizer().save_pretrained(str(tok_dir))
    say(f"wrote single files ({sum(f.stat().st_size for f in files.values()) / 2**30:.1f} GiB) in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    h = load_single_files(files["transformer"], files["vae"], files["text_encoder"], tok_dir, dtype="bfloat16", device="cuda",
                          offload="auto")
    load_s = time.perf_counter() - t0
    same = all(torch.equal(h.pipe.transformer.state_dict()[k].cpu(), t) for k, t in ref_tr.items())
    say(f"load_single_files: variant {h.variant} (auto), offload {h.offload}, {load_s:.1f} s, weights round-trip exact: {same}")
    torch.cuda.reset_peak_memory_stats()
    r = generate(h, caption="A woman smiles at the camera.", emotion="contentment", seed=1, steps=steps, frames=frames)
    say(f"generate 1.3B bf16: {r.num_frames} frames {r.width}x{r.height}, {r.steps} steps, CFG {r.guidance:g}: {r.seconds:.1f} s total, "
        f"{r.seconds_per_step:.3f} s/step, peak CUDA {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, "
        f"finite={bool(torch.isfinite(r.frames).all())}, std {r.frames.std():.3f}")
    del h
    torch.cuda.empty_cache()
    t0 = time.perf_counter()
    h = load_single_files(files["transformer"], files["vae"], files["text_encoder"], tok_dir, dtype="bfloat16", device="cuda",
                          offload="model")
    torch.cuda.reset_peak_memory_stats()
    r2 = generate(h, caption="A woman smiles at the camera.", emotion="contentment", seed=1, steps=steps, frames=frames)
    say(f"model offload: load {time.perf_counter() - t0 - r2.seconds:.1f} s, {r2.seconds_per_step:.3f} s/step, "
        f"peak CUDA {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, max diff vs no offload {(r2.frames - r.frames).abs().max():.2e}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny-only", action="store_true")
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        say("no CUDA device: nothing to check")
        return 1
    say(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EMOVID_CACHE", str(Path(tmp) / "cache"))
        t0 = time.perf_counter()
        stage_tiny(Path(tmp))
        say(f"stage 1 (tiny) done in {time.perf_counter() - t0:.1f} s")
        if not args.tiny_only:
            t0 = time.perf_counter()
            stage_real(Path(tmp), args.frames, args.steps)
            say(f"stage 2 (real sizes) done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
