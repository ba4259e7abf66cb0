"""The flow-matching LoRA training loop (DiffSynth-Studio's Wan recipe) on accelerate.

One code path for one process and for ``accelerate launch`` (data parallel, one or many machines): accelerate
wraps the model and optimizer, and each process takes its slice of every global batch. Everything random about a
sample (its timestep index and its noise) is drawn from a generator seeded by (seed, epoch, position in the epoch),
so the result does not depend on how many processes share the work nor on where a run was interrupted: a resumed
run gives the same weights as an uninterrupted one, and 2 processes × batch 1 the same as 1 process × batch 2.

Loss (DiffSynth ``FlowMatchScheduler(shift=5, sigma_min=0, extra_one_step=True)``, ``set_timesteps(1000,
training=True)``): an index i uniform in [0, 1000), σ_i from the shifted schedule, t_i = 1000·σ_i,
x_t = (1−σ)·x0 + σ·ε, target ε − x0, loss = MSE(prediction, target) × w(t_i) with the bell-shaped weight
w ∝ exp(−2((t−500)/1000)²), shifted to a minimum of 0 and normalised to mean 1 over the 1000 timesteps.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import runtime
from .config import TARGET_REGEX, TrainConfig, lr_factor

log = logging.getLogger("EmoVid")

ADAPTER = "default"  # peft's adapter name, the ".default." in DiffSynth's keys
LOSS_LOG = "loss.csv"
LOSS_PLOT = "loss.png"
TRAINING_JSON = "training.json"


# ------------------------------------------------------------------------------------------ the schedule


@dataclass
class FlowSchedule:
    sigmas: "object"  # torch [T]
    timesteps: "object"  # torch [T]
    weights: "object"  # torch [T], mean 1


def flow_schedule(shift: float = 5.0, steps: int = 1000) -> FlowSchedule:
    """DiffSynth's training schedule: ``linspace(1, 0, steps+1)[:-1]`` shifted, t = 1000·σ, and the timestep weights."""
    import torch

    sigmas = torch.linspace(1.0, 0.0, steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    timesteps = sigmas * steps
    y = torch.exp(-2 * ((timesteps - steps / 2) / steps) ** 2)
    y = y - y.min()
    weights = y * (steps / y.sum())
    return FlowSchedule(sigmas, timesteps, weights)


def sample_generator(seed: int, epoch: int, position: int):
    """The CPU generator of one sample: a function of (seed, epoch, position in the epoch's order) only."""
    import numpy as np
    import torch

    s = int(np.random.SeedSequence([int(seed), int(epoch), int(position)]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator(device="cpu").manual_seed(s)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of ``n`` samples in ``epoch`` (DiffSynth shuffles every epoch)."""
    import numpy as np

    return np.random.default_rng([int(seed), int(epoch), 7]).permutation(n).tolist()


def flow_loss(model, entry: dict, schedule: FlowSchedule, generator, device, dtype, kind: str):
    """(weighted loss, timestep index) of one cached sample."""
    import torch
    import torch.nn.functional as F

    x0 = entry["latents"].unsqueeze(0).to(device, dtype)
    idx = int(torch.randint(0, len(schedule.timesteps), (1,), generator=generator))
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(device, dtype)
    sigma = float(schedule.sigmas[idx])
    xt = (1 - sigma) * x0 + sigma * noise
    target = noise - x0
    inp = xt if kind == "t2v" else torch.cat([xt, entry["condition"].unsqueeze(0).to(device, dtype)], dim=1)
    kw = {}
    if kind == "i2v":
        kw["encoder_hidden_states_image"] = entry["image_embeds"].unsqueeze(0).to(device, dtype)
    pred = model(hidden_states=inp, timestep=schedule.timesteps[idx:idx + 1].to(device), return_dict=False,
                 encoder_hidden_states=entry["prompt_embeds"].unsqueeze(0).to(device, dtype), **kw)[0]
    loss = F.mse_loss(pred.float(), target.float()) * float(schedule.weights[idx])
    return loss, idx


# ----------------------------------------------------------------------------------------------- LoRA


def add_lora(transformer, config: TrainConfig) -> list:
    """Inject the DiffSynth LoRA (peft, adapter "default") and return its parameters (fp32, trainable)."""
    import torch
    from peft import LoraConfig

    torch.manual_seed(config.seed)  # kaiming-uniform A (B starts at zero): same init on every process
    transformer.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, target_modules=TARGET_REGEX,
                                       init_lora_weights=True, lora_dropout=0.0, bias="none"), adapter_name=ADAPTER)
    params = []
    for name, p in transformer.named_parameters():
        if ".lora_A." in name or ".lora_B." in name:
            p.data = p.data.to(torch.float32)
            p.requires_grad_(True)
            params.append(p)
        else:
            p.requires_grad_(False)
    if not params:
        raise RuntimeError("no LoRA parameters were injected: the transformer has no Wan2.1 attention/FFN linears")
    return params


def lora_from_model(transformer, config: TrainConfig, dtype: str = "float32"):
    """The trained adapter as a :class:`~emovid_core.lora.WanLora` keyed by original Wan2.1 module names."""
    import torch
    from peft.utils import get_peft_model_state_dict

    from ..lora import from_tensors
    from ..wan import dit_keys as wl

    sd = get_peft_model_state_dict(transformer, adapter_name=ADAPTER)
    dt = getattr(torch, dtype)
    modules = {}
    for key, t in sd.items():
        stem, _, part = key.rpartition(".lora_")
        orig = wl.diffusers_to_original(stem)
        if orig is None:
            raise RuntimeError(f"trained module {stem!r} has no original Wan2.1 name")
        slot = modules.setdefault(orig, [None, None, config.lora_alpha])
        slot[0 if part.startswith("A") else 1] = t.detach().to("cpu", dt).contiguous()
    return from_tensors({k: tuple(v) for k, v in modules.items()})


def write_checkpoint(transformer, config: TrainConfig, path: Path, info: dict) -> list[Path]:
    """``path`` in DiffSynth format (+ ``.comfy.safetensors`` with --comfy-copy); returns the files written."""
    from ..lora import write_lora

    lora = lora_from_model(transformer, config, config.save_dtype)
    meta = {"emovid_training": json.dumps(info, sort_keys=True)}
    write_lora(lora, path, fmt="diffsynth", metadata=meta)
    files = [path]
    if config.comfy_copy:
        comfy = path.with_name(path.name.replace(".safetensors", ".comfy.safetensors"))
        write_lora(lora, comfy, fmt="comfy", metadata=meta)
        files.append(comfy)
    return files


# ----------------------------------------------------------------------------------------------- the run


@dataclass
class TrainResult:
    out: Path
    steps: int  # optimizer steps completed in total
    total_steps: int
    steps_per_epoch: int
    files: list[Path] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # this session's step losses
    interrupted: bool = False
    encoded: int = 0
    encode_seconds: float = 0.0
    train_seconds: float = 0.0
    memory: str = ""
    transformer: object = None  # the trained model (return_model=True)

    def summary(self) -> str:
        state = "interrupted, resumable with --resume" if self.interrupted else "done"
        last = f", last loss {self.losses[-1]:.4f}" if self.losses else ""
        return (f"{state}: {self.steps}/{self.total_steps} steps ({self.steps_per_epoch} per epoch){last}; "
                f"encoded {self.encoded} clip(s) in {self.encode_seconds:.1f} s, trained {self.train_seconds:.1f} s -> {self.out}")


def plan_steps(n_items: int, config: TrainConfig, world: int) -> tuple[int, int, int]:
    """(samples per epoch, steps per epoch, total steps) for ``world`` processes; ValueError when a batch cannot fill."""
    samples = n_items * config.repeat
    global_batch = config.batch * world
    spe = samples // global_batch
    if spe < 1:
        raise ValueError(f"{samples} sample(s) per epoch cannot fill one global batch of {global_batch} "
                         f"(--batch {config.batch} × {world} process(es)); lower --batch or raise --repeat")
    return samples, spe, config.steps or config.epochs * spe


def train(config: TrainConfig, selection, model, out: str | Path, *, cache_dir: str | Path | None = None,
          resume: bool = False, device: str = "auto", progress: bool = True, return_model: bool = False,
          check_memory: bool = True, run_info: dict | None = None) -> TrainResult:
    """Train a LoRA on ``selection`` (:func:`~emovid_core.train.data.select_clips`) with ``model``
    (:func:`~emovid_core.train.models.resolve_model`), writing into ``out``. The caller has checked the outputs.

    KeyboardInterrupt during training saves a resumable state and returns with ``interrupted=True``.
    """
    import gc

    import torch
    from accelerate import Accelerator

    from . import checkpoint, memory
    from .data import LatentCache, default_cache_dir

    config.check()
    out = Path(out).expanduser()
    kind = model.kind
    # No GPU: accelerate's CPU mode, which is also what makes a torchrun/accelerate-launched group use gloo.
    acc = Accelerator(cpu=device == "cpu" or not torch.cuda.is_available())
    dev = str(acc.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    elif model.tiny:
        torch.set_num_threads(1)  # tiny models: one thread is fastest, and stable on a shared box
    dtype = getattr(torch, config.dtype)
    items = selection.items
    samples, spe, total = plan_steps(len(items), config, acc.num_processes)
    result = TrainResult(out, 0, total, spe)
    est = memory.estimate_for(model, config)
    result.memory = memory.check_fits(est, dev, config) if check_memory else f"memory estimate {est.describe()}"
    main = acc.is_main_process
    record = training_record(config, selection, model, run_info, processes=acc.num_processes, steps_per_epoch=spe,
                             total_steps=total, memory=est.describe())
    if resume:
        check_resumable(out, record)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        log.info("[EmoVid] %s", result.memory)
        _write_record(out, record, status="encoding", fresh=not resume)
        if not resume:  # a new run (over an old one only with --force): its log starts empty
            (out / LOSS_LOG).unlink(missing_ok=True)

    # Stage 1: encode what the cache lacks (each process its share), with only the encoders in memory.
    cache = LatentCache(cache_dir or default_cache_dir(), model.encoder_identity, kind, config)
    t0 = time.perf_counter()
    todo = cache.missing(items)[acc.process_index::acc.num_processes]
    sample_embeds = None
    if config.sample_emotions:
        from . import samples as sample_videos

        sample_embeds = sample_videos.embeds_path(cache.folder, config, kind, cache.path(items[0]).name if kind == "i2v" else "")
    need_samples = main and sample_embeds is not None and not sample_embeds.is_file()
    if todo or need_samples:
        pipe = model.load_encoders(dev, dtype)
        if todo:
            result.encoded = cache.encode(selection.dataset, todo, pipe, dev, progress=progress and main)
        if need_samples:
            from .data import prepare_frames

            first = prepare_frames(selection.dataset, items[0], config)[0] if kind == "i2v" else None
            sample_videos.encode_samples(pipe, config, kind, first, dev, sample_embeds)
        del pipe
        gc.collect()
        if dev.startswith("cuda"):
            torch.cuda.empty_cache()
    acc.wait_for_everyone()
    result.encode_seconds = time.perf_counter() - t0
    left = cache.missing(items)
    if left:
        raise RuntimeError(f"{len(left)} clip(s) were not encoded (first {left[0].clip.clip_id!r}); see the errors above")

    # Stage 2: the transformer alone, LoRA injected, then wrapped by accelerate.
    transformer = model.load_transformer(dev, dtype)
    params = add_lora(transformer, config)
    if config.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.999), eps=1e-8)
    wrapped, optimizer = acc.prepare(transformer, optimizer)
    start = 0
    if resume:
        info = checkpoint.load_state(out, transformer, optimizer)
        start = int(info["step"])
    schedule = flow_schedule(config.shift, config.train_timesteps)
    info = {**(run_info or {}), "rank": config.rank, "alpha": config.lora_alpha, "base": model.variant, "kind": kind}
    log_rows: list[list] = []
    gb, b, rank = config.batch * acc.num_processes, config.batch, acc.process_index
    orders: dict[int, list[int]] = {}
    step = start
    t1 = time.perf_counter()
    bar = runtime.progress(total - start if progress and main else 0, "train")
    try:
        while step < total:
            runtime.check_interrupted()
            epoch, pos = divmod(step, spe)
            if epoch not in orders:
                orders = {epoch: epoch_order(samples, config.seed, epoch)}
            mine = range(pos * gb + rank * b, pos * gb + rank * b + b)
            losses = []
            for k, p in enumerate(mine):
                entry = cache.load(items[orders[epoch][p] % len(items)])
                loss, _ = flow_loss(wrapped, entry, schedule, sample_generator(config.seed, epoch, p), dev, dtype, kind)
                if k < b - 1:
                    with acc.no_sync(wrapped):
                        acc.backward(loss / b)
                else:
                    acc.backward(loss / b)
                losses.append(loss.detach().float())
            lr = config.lr * lr_factor(config.lr_schedule, step)
            for g in optimizer.param_groups:
                g["lr"] = lr
            with _deferred_interrupt():  # Ctrl-C in the middle of an update would save half-updated weights
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss = float(acc.gather(torch.stack(losses).mean().reshape(1).to(dev)).mean())
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"loss became {step_loss} at step {step + 1}; lower --lr (now {config.lr:g}) "
                                         "or train in --dtype bfloat16/float32 instead of float16")
            step += 1
            result.losses.append(step_loss)
            log_rows.append([step, epoch + 1, f"{step_loss:.6f}", f"{lr:.3g}", f"{time.perf_counter() - t1:.3f}"])
            bar.update(1)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{step_loss:.4f}", epoch=epoch + 1)
            at_epoch = step % spe == 0
            at_save = bool(config.save_every) and step % config.save_every == 0
            if (at_epoch or at_save or step == total) and main:
                names = ([f"epoch-{step // spe}"] if at_epoch else []) + ([f"step-{step}"] if at_save and not at_epoch else [])
                if step == total and not names:
                    names = [f"step-{step}"]
                for name in names:
                    result.files += write_checkpoint(transformer, config, out / f"{name}.safetensors", {**info, "step": step})
                    if sample_embeds is not None:
                        result.files += sample_videos.write_samples(model, transformer, config, sample_embeds,
                                                                    out / sample_videos.SAMPLES_DIR / name, dev, dtype)
                _append_log(out, log_rows)
                log_rows = []
                checkpoint.save_state(out, transformer, optimizer, step, {"epoch": epoch + 1, "total_steps": total})
            if at_epoch or at_save or step == total:
                acc.wait_for_everyone()
    except KeyboardInterrupt:
        result.interrupted = True
        if main:
            # The step in progress is dropped: the state is the one after `step` completed steps.
            _append_log(out, log_rows)
            checkpoint.save_state(out, transformer, optimizer, step, {"epoch": step // spe + 1, "total_steps": total,
                                                                      "interrupted": True})
            log.warning("[EmoVid] interrupted at step %d of %d: state saved in %s; continue with --resume %s",
                        step, total, out / checkpoint.STATE_DIR, out)
    finally:
        bar.close()
    result.steps = step
    result.train_seconds = time.perf_counter() - t1
    if main:
        plot_losses(out / LOSS_LOG, out / LOSS_PLOT)
        _write_record(out, record, status="interrupted" if result.interrupted else "done", steps_done=step,
                      files=[f.name for f in result.files], encode_seconds=round(result.encode_seconds, 3),
                      train_seconds=round(result.train_seconds, 3))
    if return_model:
        result.transformer = transformer
    return result


@contextmanager
def _deferred_interrupt():
    """Hold SIGINT until the block is done (main thread only), then raise KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit = []
    previous = signal.signal(signal.SIGINT, lambda *_: hit.append(1))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit:
        raise KeyboardInterrupt


def training_record(config: TrainConfig, selection, model, run_info: dict | None = None, **extra) -> dict:
    """What ``training.json`` records: full configuration, model, dataset selection (clip ids), versions, seed."""
    import platform

    import accelerate
    import diffusers
    import peft
    import torch

    from .. import __version__

    return {
        "emovid": __version__, "config": config.to_dict(), "seed": config.seed,
        "model": {"source": model.label, "variant": model.variant, "kind": model.kind, "encoders": model.encoder_identity},
        "dataset": {"root": str(selection.dataset.root), "metadata": str(selection.dataset.metadata_path),
                    "selection": selection.trace, "notes": selection.notes, "skipped": selection.skipped,
                    "clips": selection.clip_ids},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
                     "peft": peft.__version__, "accelerate": accelerate.__version__},
        **(run_info or {}), **extra,
    }


def _write_record(out: Path, record: dict, fresh: bool = False, **status) -> None:
    from ..atomic import write_json

    path = out / TRAINING_JSON
    old = {}
    if path.is_file() and not fresh:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
    runs = old.get("sessions", [])
    if status.get("status") == "encoding":
        runs = runs + [{"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
    elif runs:
        runs[-1].update(status)
    write_json(path, {**record, **status, "sessions": runs})


def check_resumable(out: Path, record: dict) -> None:
    """A resume must train the same clips with the same weight-changing options as the run it continues."""
    from .checkpoint import read_state_info
    from .config import RESUME_LOCKED

    read_state_info(out)
    try:
        old = json.loads((out / TRAINING_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot resume {out}: its {TRAINING_JSON} is unreadable ({exc})") from None
    changed = [f"{k} {old['config'].get(k)!r} -> {record['config'].get(k)!r}" for k in RESUME_LOCKED
               if old["config"].get(k) != record["config"].get(k)]
    if changed:
        raise ValueError(f"cannot resume {out} with different settings: {', '.join(changed)}; use the original options "
                         "(or start a new run in a new --out folder)")
    if old["dataset"]["clips"] != record["dataset"]["clips"]:
        raise ValueError(f"cannot resume {out}: the selected clips differ from the original run's "
                         f"({len(old['dataset']['clips'])} then, {len(record['dataset']['clips'])} now); use the same "
                         "dataset and filters")
    if old.get("model", {}).get("variant") != record["model"]["variant"]:
        raise ValueError(f"cannot resume {out}: it was trained on {old['model']['variant']}, not {record['model']['variant']}")


def _append_log(out: Path, rows: list[list]) -> None:
    """Add rows to ``loss.csv`` (rewritten atomically with the earlier rows, so a resumed run continues the file)."""
    from ..atomic import write_text

    path = out / LOSS_LOG
    old = path.read_text(encoding="utf-8") if path.is_file() else "step,epoch,loss,lr,seconds\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    write_text(path, old + buf.getvalue())


def read_losses(path: str | Path) -> list[tuple[int, float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(fh)]


def plot_losses(csv_path: Path, png_path: Path) -> Path | None:
    """The loss curve (each step and a moving average) as a PNG; None when there is nothing to plot."""
    if not csv_path.is_file():
        return None
    rows = read_losses(csv_path)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    steps, losses = zip(*rows)
    k = max(1, len(losses) // 20)
    avg = [sum(losses[max(0, i - k + 1):i + 1]) / len(losses[max(0, i - k + 1):i + 1]) for i in range(len(losses))]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="step loss")
    ax.plot(steps, avg, lw=1.6, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted flow-matching loss")
    ax.legend()
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png_path
