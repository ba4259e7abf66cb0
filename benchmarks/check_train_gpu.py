"""GPU check of emovid_core.train (run on a CUDA machine; under 5 minutes on one modern GPU; prints one line per check).

Stage 1, tiny model end to end on CUDA: the synthetic sample set, ``emovid_core.train.train`` in bf16 (encoding,
cache, 10 steps, DiffSynth-format file), then the file applied with the pack's loader (0 skipped keys).
Stage 2, real sizes with random weights (no download): the Wan2.1 T2V 1.3B transformer built from the config the
pack ships, bf16, the rank-32 DiffSynth LoRA injected by our ``add_lora``, gradient checkpointing, and our
``flow_loss`` on 832×480×33 latents (9×60×104, 14,040 tokens) with a 512-token text embedding: seconds per step
(median after a warm-up) and peak CUDA memory against ``emovid_core.train.memory``'s estimate. ``--14b`` also runs
the 14B shapes (needs ~40 GB free; random init takes a few minutes more).

    python benchmarks/check_train_gpu.py [--steps 6] [--frames 33] [--size 832x480] [--14b] [--no-checkpointing]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("EMOVID_NO_PROGRESS", "1")
os.environ.setdefault("EMOVID_CACHE", tempfile.mkdtemp(prefix="emovid-gpu-train-"))


def say(msg: str) -> None:
    print(msg, flush=True)


def stage_tiny(tmp: Path) -> None:
    import torch

    from emovid_core.dataset.synthetic import make_sample
    from emovid_core.lora import apply_lora_stack_to_diffusers
    from emovid_core.train import TrainConfig, open_dataset, resolve_model, select_clips, train

    make_sample(tmp / "sample")
    cfg = TrainConfig(frames=9, width=32, height=32, rank=4, dtype="bfloat16", steps=10).check()
    sel = select_clips(open_dataset(tmp / "sample"), cfg, progress=False)
    sel.items = sel.items[:6]
    model = resolve_model(tiny="t2v")
    t0 = time.perf_counter()
    res = train(cfg, sel, model, tmp / "run", device="cuda", progress=False)
    say(f"tiny t2v bf16 cuda: {res.summary()} ({time.perf_counter() - t0:.1f} s)")
    base = model.load_transformer("cuda", torch.bfloat16)
    rep = apply_lora_stack_to_diffusers(base, [(tmp / "run" / "step-10.safetensors", "emo", 1.0)])
    say(f"tiny LoRA on CUDA: applied {len(rep.entries[0].report.applied)} module(s), skipped {len(rep.entries[0].report.skipped)}")


def stage_real(variant: str, frames: int, width: int, height: int, steps: int, checkpointing: bool) -> None:
    import torch
    from diffusers import WanTransformer3DModel

    from emovid_core.train import TrainConfig, memory
    from emovid_core.train.loop import add_lora, flow_loss, flow_schedule, sample_generator
    from emovid_core.wan.variants import get_variant

    v = get_variant(variant)
    cfg_t = v.config("transformer")
    cfg = TrainConfig(frames=frames, width=width, height=height, gradient_checkpointing=checkpointing).check()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = WanTransformer3DModel.from_config(cfg_t).to(torch.bfloat16)  # random weights, built on the GPU
    model.requires_grad_(False)
    params = add_lora(model, cfg)
    if checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    built = time.perf_counter() - t0
    lat = ((frames - 1) // 4 + 1, height // 8, width // 8)
    g = torch.Generator().manual_seed(0)
    entry = {"latents": torch.randn(16, *lat, generator=g), "prompt_embeds": torch.randn(512, cfg_t["text_dim"], generator=g) * 0.1}
    sched = flow_schedule(cfg.shift, cfg.train_timesteps)
    times = []
    torch.cuda.reset_peak_memory_stats()
    for i in range(steps):
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        loss, _ = flow_loss(model, entry, sched, sample_generator(0, 0, i), "cuda", torch.bfloat16, "t2v")
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t1)
    peak = torch.cuda.max_memory_allocated()
    est = memory.estimate(params=memory.transformer_params(cfg_t), dim=v.dim, ffn_dim=v.ffn_dim, num_layers=v.num_layers,
                          rank=cfg.rank, frames=frames, width=width, height=height, batch=1, dtype="bfloat16",
                          checkpointing=checkpointing)
    say(f"{variant} {width}x{height}x{frames} bf16 rank {cfg.rank} checkpointing={checkpointing}: built in {built:.1f} s; "
        f"{statistics.median(times[1:] or times):.2f} s/step (first {times[0]:.2f} s), loss {float(loss):.3f}; "
        f"peak allocated {peak / 2**30:.1f} GiB vs estimate {(est.total - memory.OVERHEAD) / 2**30:.1f} GiB without overhead "
        f"({est.describe()}) -> measured/estimated {peak / (est.total - memory.OVERHEAD):.2f}")
    del model, opt, params
    torch.cuda.empty_cache()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--size", default="832x480")
    ap.add_argument("--14b", dest="big", action="store_true", help="also the T2V-14B shapes")
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument("--tiny-only", action="store_true")
    a = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        say("no CUDA GPU visible to torch: nothing to check")
        return 2
    from emovid_core.train import parse_size

    w, h = parse_size(a.size)
    say(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        stage_tiny(Path(tmp))
    if not a.tiny_only:
        stage_real("t2v-1.3b", a.frames, w, h, a.steps, not a.no_checkpointing)
        if a.big:
            stage_real("t2v-14b", a.frames, w, h, a.steps, not a.no_checkpointing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
