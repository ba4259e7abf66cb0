"""Benchmark: our trainer's step time against a bare diffusers + peft loop, and the first epoch against a cached one.

    .venv/bin/python benchmarks/bench_train.py [--steps 30] [--clips 6] [--threads 1]

1. Step time (median of per-step times from ``loss.csv``, save steps excluded) of ``emovid_core.train.train`` vs a
   bare loop written here with nothing but diffusers + peft + torch (same transformer, same LoRA, AdamW, the same
   flow-matching loss, the same cached tensors already in memory, no logging), on the tiny Wan2.1 T2V and on a
   small one (dim 256, ffn 1024, 4 blocks, 64×64×17 → 320 tokens). Target: ratio <= 1.05. Both interleaved in
   rounds; the fastest round of each counts.
2. Cost of the first epoch (encoding every clip + training) vs a later epoch (cached) on the tiny model.
All numbers are measured in this one run; print only ratios and the times behind them.
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
os.environ.setdefault("EMOVID_CACHE", tempfile.mkdtemp(prefix="emovid-bench-train-"))

import torch  # noqa: E402

SMALL = dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=128, in_channels=16, out_channels=16, text_dim=32,
             freq_dim=256, ffn_dim=1024, num_layers=4, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
             image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=64, pos_embed_seq_len=None)


def small_model_folder(root: Path):
    """A diffusers folder: the tiny pipeline with a wider transformer, registered as variant 'bench-small'."""
    from functools import partial

    from diffusers import WanTransformer3DModel

    from emovid_core.wan.tiny import TINY_DEFAULTS, build_pipeline
    from emovid_core.wan.variants import Variant, register_variant

    folder = root / "small"
    if not (folder / "model_index.json").is_file():
        pipe = build_pipeline("t2v")
        torch.manual_seed(0)
        pipe.transformer = WanTransformer3DModel(**SMALL).eval()
        pipe.save_pretrained(str(folder), safe_serialization=True)
    register_variant(Variant(name="bench-small", kind="t2v", label="benchmark small T2V", dim=256, in_dim=16, ffn_dim=1024,
                             num_layers=4, defaults=dict(TINY_DEFAULTS),
                             config_dirs={c: partial(lambda c: folder / c, c) for c in
                                          ("transformer", "vae", "scheduler", "text_encoder")}, tiny=True))
    return folder


def ours(cfg, sel, model, out: Path) -> tuple[list[float], object]:
    import csv

    from emovid_core.train import train

    res = train(cfg, sel, model, out, device="cpu", progress=False)
    with open(out / "loss.csv", newline="") as fh:
        stamps = [float(r["seconds"]) for r in csv.DictReader(fh)]
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    return steps, res


def bare(cfg, entries: list[dict], model) -> list[float]:
    """The reference: diffusers + peft + torch only, tensors in memory."""
    import torch.nn.functional as F
    from peft import LoraConfig

    torch.manual_seed(0)
    tr = model.load_transformer("cpu", torch.float32)
    tr.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.rank, target_modules=["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj",
                                                                               "ffn.net.2"]))
    params = [p for p in tr.parameters() if p.requires_grad]
    if cfg.gradient_checkpointing:
        tr.enable_gradient_checkpointing()
    tr.train()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sig = torch.linspace(1.0, 0.0, 1001)[:-1]
    sig = 5 * sig / (1 + 4 * sig)
    ts = sig * 1000
    w = torch.exp(-2 * ((ts - 500) / 1000) ** 2)
    w = (w - w.min()) * (1000 / (w - w.min()).sum())
    g = torch.Generator().manual_seed(0)
    times = []
    for i in range(cfg.steps):
        t0 = time.perf_counter()
        e = entries[i % len(entries)]
        x0 = e["latents"].unsqueeze(0)
        k = int(torch.randint(0, 1000, (1,), generator=g))
        noise = torch.randn(x0.shape, generator=g)
        xt = (1 - sig[k]) * x0 + sig[k] * noise
        pred = tr(hidden_states=xt, timestep=ts[k:k + 1], encoder_hidden_states=e["prompt_embeds"].unsqueeze(0), return_dict=False)[0]
        loss = F.mse_loss(pred.float(), (noise - x0).float()) * w[k]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())
        times.append(time.perf_counter() - t0)
    return times[1:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    import shutil

    from emovid_core.dataset.synthetic import make_sample
    from emovid_core.train import TrainConfig, open_dataset, resolve_model, select_clips
    from emovid_core.train.data import LatentCache, default_cache_dir

    work = Path(tempfile.mkdtemp(prefix="emovid-bench-train-"))
    root = work / "sample"
    make_sample(root)
    ds = open_dataset(root)
    print(f"torch {torch.__version__}, {a.threads} thread(s), {a.steps} steps, {a.clips} clips")
    cases = [("tiny T2V (dim 24, 2 blocks, 32x32x9)", resolve_model(tiny="t2v"), dict(width=32, height=32, frames=9)),
             ("small T2V (dim 256, 4 blocks, 64x64x17)", resolve_model(folder=small_model_folder(work)),
              dict(width=64, height=64, frames=17))]
    for label, model, size in cases:
        cfg = TrainConfig(**size, rank=8, dtype="float32", steps=a.steps, epochs=1, lr_schedule="constant",
                          threads=a.threads).check()
        sel = select_clips(ds, cfg, progress=False)
        sel.items = sel.items[: a.clips]
        cfg.steps = a.steps
        torch.set_num_threads(a.threads)
        best_ours, best_bare = [], []
        for r in range(a.rounds):
            out = work / f"run-{r}"
            shutil.rmtree(out, ignore_errors=True)
            steps, _ = ours(cfg, sel, model, out)
            cache = LatentCache(default_cache_dir(), model.encoder_identity, model.kind, cfg)
            entries = [cache.load(it) for it in sel.items]
            torch.set_num_threads(a.threads)
            best_ours.append(statistics.median(steps))
            best_bare.append(statistics.median(bare(cfg, entries, model)))
        o, b = min(best_ours), min(best_bare)
        print(f"{label}: ours {o * 1e3:.1f} ms/step, bare diffusers+peft {b * 1e3:.1f} ms/step -> ratio {o / b:.3f} "
              f"(target <= 1.05; rounds ours {[round(x * 1e3, 1) for x in best_ours]}, bare {[round(x * 1e3, 1) for x in best_bare]})")

    # First epoch (with encoding) vs a later one (cached), tiny model, fresh cache.
    cfg = TrainConfig(width=32, height=32, frames=9, rank=8, dtype="float32", epochs=2, lr_schedule="constant",
                      threads=a.threads).check()
    sel = select_clips(ds, cfg, progress=False)
    sel.items = sel.items[: max(a.clips, 12)]
    model = resolve_model(tiny="t2v")
    cache_dir = work / "fresh-cache"
    from emovid_core.train import train

    out = work / "epochs"
    res = train(cfg, sel, model, out, device="cpu", progress=False, cache_dir=cache_dir)
    import csv

    with open(out / "loss.csv", newline="") as fh:
        rows = [(int(r["epoch"]), float(r["seconds"])) for r in csv.DictReader(fh)]
    end1 = max(s for e, s in rows if e == 1)
    end2 = max(s for e, s in rows if e == 2)
    first, later = res.encode_seconds + end1, end2 - end1
    print(f"epochs ({len(sel.items)} clips): first epoch {first:.2f} s (encoding {res.encode_seconds:.2f} s incl. loading "
          f"the encoders + training {end1:.2f} s), second epoch {later:.2f} s (cached) -> first/later {first / later:.2f}x")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
