"""Per-step cost of Wan2.1 generation with and without a LoRA (unfused peft adapter vs fused into the weights).

Runs the tiny random pipeline (default) through ``emovid_core.wan.generate`` and prints, from one run:
per-step time (median of --repeats generations, each timed between the first and last denoising step),
the ratio to the no-LoRA case, and peak memory (process RSS; on CUDA also torch's peak allocation).

    .venv/bin/python benchmarks/bench_generate.py                     # tiny T2V on CPU
    .venv/bin/python benchmarks/bench_generate.py --device cuda --width 320 --height 192 --frames 17

The tiny model is overhead-bound, so its ratios show the adapter bookkeeping cost, not the matmul cost;
use a larger size (or a real model via --diffusers) for that.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mib() -> float:
    # ru_maxrss is KiB on Linux: the process's peak resident set so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_lora(path: Path, transformer, rank: int) -> Path:
    """A LoRA on every attention and FFN linear of every block (DiffSynth's target set), comfy format."""
    import torch

    from emovid_core.lora import from_tensors, write_lora

    cfg = transformer.config
    dim, ffn = cfg.num_attention_heads * cfg.attention_head_dim, cfg.ffn_dim
    g = torch.Generator().manual_seed(0)
    mods = {}
    for b in range(cfg.num_layers):
        for attn in ("self_attn", "cross_attn"):
            for p in ("q", "k", "v", "o"):
                mods[f"blocks.{b}.{attn}.{p}"] = (torch.randn(rank, dim, generator=g) * 0.02, torch.randn(dim, rank, generator=g) * 0.02, None)
        mods[f"blocks.{b}.ffn.0"] = (torch.randn(rank, dim, generator=g) * 0.02, torch.randn(ffn, rank, generator=g) * 0.02, None)
        mods[f"blocks.{b}.ffn.2"] = (torch.randn(rank, ffn, generator=g) * 0.02, torch.randn(dim, rank, generator=g) * 0.02, None)
    write_lora(from_tensors(mods), path, fmt="comfy")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=["t2v", "i2v"], default="t2v")
    ap.add_argument("--diffusers", default=None, help="benchmark a real diffusers folder instead of the tiny model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()

    import torch

    from emovid_core.lora.stack import set_pipeline_loras
    from emovid_core.wan import generate
    from emovid_core.wan.loading import load_diffusers_folder
    from emovid_core.wan.tiny import ensure_tiny

    os.environ.setdefault("EMOVID_NO_PROGRESS", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    folder = Path(args.diffusers) if args.diffusers else ensure_tiny(args.kind)

    def load():
        return load_diffusers_folder(folder, dtype=args.dtype, device=args.device, offload="none")

    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0)) if args.kind == "i2v" else None

    def run(handle, stack):
        times = []
        for i in range(args.repeats + 1):  # the first call warms up kernels and is not counted
            r = generate(handle, caption="A woman laughs at a joke.", emotion="amusement", image=image, lora_stack=stack,
                         seed=i, steps=args.steps, frames=args.frames, width=args.width, height=args.height)
            if i:
                times.append(r.seconds_per_step)
        return statistics.median(times), r

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        h = load()
        lora = write_lora(Path(tmp) / "bench_lora.safetensors", h.pipe.transformer, args.rank)
        base, r = run(h, [])
        rows.append(("no LoRA", base, rss_mib(), torch.cuda.max_memory_allocated() / 2**20 if cuda else None))
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        h, _ = set_pipeline_loras(h, [(str(lora), "bench", 1.0)])  # the handle generation activates
        load_s = time.perf_counter() - t0
        unfused, _ = run(h, None)
        rows.append(("LoRA unfused (peft adapter)", unfused, rss_mib(), torch.cuda.max_memory_allocated() / 2**20 if cuda else None))
        del h
        h = load()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        h, _ = set_pipeline_loras(h, [(str(lora), "bench", 1.0)], fuse=True)
        fuse_s = time.perf_counter() - t0
        fused, _ = run(h, None)
        rows.append(("LoRA fused (fp32 merge)", fused, rss_mib(), torch.cuda.max_memory_allocated() / 2**20 if cuda else None))

    print(f"Wan2.1 {args.kind.upper()} from {folder.name}: {r.num_frames} frames {r.width}x{r.height}, {args.steps} steps, "
          f"guidance {r.guidance:g}, {args.dtype} on {args.device}, rank-{args.rank} LoRA on all block linears, "
          f"median of {args.repeats} runs, torch threads {torch.get_num_threads()}")
    print(f"{'case':30s} {'s/step':>10s} {'ratio':>7s} {'peak RSS MiB':>13s}" + ("  peak CUDA MiB" if cuda else ""))
    for name, t, rss, gpu in rows:
        line = f"{name:30s} {t:10.4f} {t / base:7.2f} {rss:13.0f}"
        print(line + (f"  {gpu:13.0f}" if cuda else ""))
    print(f"LoRA load + adapter injection: {load_s:.3f} s; load + fp32 fuse: {fuse_s:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
