"""``emovid train``: fine-tune a Wan2.1 LoRA on EmoVid clips with the paper's recipe (``emovid_core.train``).

Every check that needs no model runs first (options, outputs, dataset, clip lengths, model kind), so a mistake is
named in seconds, not after the 14B weights have loaded. The same command runs under ``accelerate launch``.
"""

from __future__ import annotations

import sys


def register(sub) -> None:
    from ...train.config import DTYPES, LR_SCHEDULES, SHORT_CLIPS, TASKS, TrainConfig
    from ._model_args import add_single_file_args
    from .dataset import _add_filters

    d = TrainConfig()
    p = sub.add_parser(
        "train", help="train an emotion LoRA for Wan2.1 T2V/I2V on EmoVid clips (the paper's DiffSynth recipe)",
        description="Fine-tune a rank-32 LoRA on Wan2.1 with the EmoVid paper's recipe: latents and text embeddings are "
        "encoded once and cached, then only the transformer trains (bf16, fp32 LoRA, gradient checkpointing). Writes "
        "epoch-K.safetensors in DiffSynth-Studio's format, training.json, loss.csv and loss.png into --out. Runs under "
        "`accelerate launch -m emovid_core train ...` unchanged (data parallel). See docs/training.md.")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", required=True, metavar="ROOT",
                   help="EmoVid dataset root (its index or emovid_metadata.csv) or a DiffSynth-Studio folder with metadata.csv")
    g.add_argument("--metadata", default=None, help="metadata table to read instead of the root's")
    g.add_argument("--mix", choices=["paper"], default=None,
                   help="draw the paper's training mix (2,727 animation / 8,000 movie / 6,616 sticker, benchmark clips excluded)")
    g.add_argument("--mix-seed", type=int, default=0, help="seed of the training-mix draw and the benchmark it excludes")
    g.add_argument("--import-type", default=None, choices=["animation", "movie", "sticker"],
                   help="DiffSynth folders: source type for clips whose path names none")
    _add_filters(p)
    m = p.add_argument_group("model source (one of)")
    m.add_argument("--tiny", choices=["t2v", "i2v"], help="the tiny random Wan2.1 (built in code, cached in $EMOVID_CACHE): tests")
    m.add_argument("--model", "--diffusers", dest="model", metavar="DIR", help="a Wan2.1 diffusers folder (e.g. Wan2.1-T2V-14B-Diffusers)")
    add_single_file_args(m)
    m.add_argument("--task", choices=TASKS, default=d.task, help="t2v or i2v (I2V conditions on each clip's first frame); "
                   "auto: the model's kind. A mismatch with the model is refused before loading")
    r = p.add_argument_group("recipe (defaults: the paper's)")
    r.add_argument("--rank", type=int, default=d.rank, help=f"LoRA rank (default {d.rank})")
    r.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: = rank, scale 1, as DiffSynth)")
    r.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr:g})")
    r.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"AdamW weight decay (default {d.weight_decay:g})")
    r.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule,
                   help="diffsynth: torch ConstantLR defaults as DiffSynth uses them (lr/3 for 5 steps, then lr); constant: lr")
    r.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    r.add_argument("--steps", type=int, default=d.steps, help="stop after N optimizer steps in total (0: all epochs)")
    r.add_argument("--batch", type=int, default=d.batch, help="clips per step per process (default 1)")
    r.add_argument("--repeat", type=int, default=d.repeat, help="dataset repeats per epoch (DiffSynth's dataset_repeat; default 1)")
    r.add_argument("--frames", type=int, default=d.frames, help=f"frames per clip, 4k+1 (default {d.frames}): the first N at the native rate")
    r.add_argument("--size", default=f"{d.width}x{d.height}", help=f"WIDTHxHEIGHT, multiples of 16 (default {d.width}x{d.height}); "
                   "resized with the aspect kept, centre-cropped")
    r.add_argument("--short-clips", choices=SHORT_CLIPS, default=d.short_clips,
                   help="clips with fewer frames: cut to their largest 4k+1 (DiffSynth) or skip them")
    r.add_argument("--no-emotion-sentence", action="store_true",
                   help="train on the caption alone (default: caption + 'The video is in the \"<emotion>\" emotion.')")
    r.add_argument("--template", default=None, help="prompt template (default: the paper's; see docs/emotions.md)")
    r.add_argument("--seed", type=int, default=d.seed, help="seed of the LoRA init, the clip order, timesteps and noise")
    r.add_argument("--dtype", choices=DTYPES, default=d.dtype, help="base weights (LoRA and optimizer are float32; default bfloat16)")
    r.add_argument("--no-gradient-checkpointing", action="store_true", help="faster steps, far more activation memory")
    r.add_argument("--shift", type=float, default=d.shift, help=f"flow-matching shift of the training timesteps (default {d.shift:g})")
    o = p.add_argument_group("output and running")
    o.add_argument("--out", default=None, metavar="DIR", help="folder for the LoRA files, training.json, loss.csv/png")
    o.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR (its --out) with its optimizer and RNG state; same options required")
    o.add_argument("--force", action="store_true", help="replace the files of an earlier run in --out")
    o.add_argument("--save-every", type=int, default=d.save_every, help="also write step-N.safetensors every N steps")
    o.add_argument("--save-dtype", choices=["float32", "bfloat16"], default=d.save_dtype, help="dtype of the written LoRA")
    o.add_argument("--comfy-copy", action="store_true",
                   help="also write <name>.comfy.safetensors (diffusion_model.* keys, ComfyUI's LoraLoaderModelOnly reads it)")
    o.add_argument("--sample-emotions", default="", metavar="LIST",
                   help="at each checkpoint write samples/<checkpoint>/<emotion>.mp4 for these emotions (comma-separated, or all)")
    o.add_argument("--sample-caption", default=d.sample_caption, help="caption of the sample prompts (+ the emotion sentence)")
    o.add_argument("--sample-steps", type=int, default=d.sample_steps, help=f"sampling steps of the sample videos (default {d.sample_steps})")
    o.add_argument("--cache", default=None, metavar="DIR", help="latent/text-embedding cache (default $EMOVID_CACHE/train)")
    o.add_argument("--device", default="auto", help="auto, cpu, cuda (under accelerate launch: each process's own GPU)")
    o.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (0: 1 for --tiny, torch's default otherwise)")
    o.add_argument("--skip-memory-check", action="store_true", help="train even when the memory estimate exceeds what is free")
    p.set_defaults(func=_run)


def config_from_args(args):
    from ...train.config import TrainConfig, parse_size

    w, h = parse_size(args.size)
    return TrainConfig(
        task=args.task, rank=args.rank, alpha=args.alpha, lr=args.lr, weight_decay=args.weight_decay, lr_schedule=args.lr_schedule,
        epochs=args.epochs, steps=args.steps, batch=args.batch, repeat=args.repeat, frames=args.frames, width=w, height=h,
        short_clips=args.short_clips, emotion_sentence=not args.no_emotion_sentence, template=args.template, seed=args.seed,
        dtype=args.dtype, gradient_checkpointing=not args.no_gradient_checkpointing, shift=args.shift,
        save_every=args.save_every, save_dtype=args.save_dtype, comfy_copy=args.comfy_copy, threads=args.threads,
        sample_emotions=_emotion_list(args.sample_emotions), sample_caption=args.sample_caption, sample_steps=args.sample_steps,
    ).check()


def _emotion_list(text: str) -> tuple[str, ...]:
    from ...emotions import EMOTIONS

    items = tuple(e.strip() for e in (text or "").split(",") if e.strip())
    return tuple(EMOTIONS) if items == ("all",) else items


def check_out(out, resume: bool, force: bool, inputs) -> None:
    """Refuse an output folder that cannot be written, or one holding another run's files (unless --force/--resume)."""
    import os
    from pathlib import Path

    from ...atomic import check_outputs
    from ...train.loop import LOSS_LOG, LOSS_PLOT, TRAINING_JSON

    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"--out {out}: {probe} is a file, not a folder; choose another --out")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: cannot write into {probe}; choose a folder you can write")
    if resume:
        return
    names = [TRAINING_JSON, LOSS_LOG, LOSS_PLOT, "resume"]
    existing = [out / n for n in names] + (sorted(out.glob("epoch-*.safetensors")) + sorted(out.glob("step-*.safetensors"))
                                           if out.is_dir() else [])
    check_outputs(existing, inputs=inputs, force=force)


def _run(args) -> int:
    import logging
    import os
    from pathlib import Path

    from ...train import data, models
    from ...train.loop import train
    from .dataset import _filter_from

    log = logging.getLogger("EmoVid")
    if args.models:
        os.environ["EMOVID_MODELS_DIR"] = str(Path(args.models).resolve())
    config = config_from_args(args)
    if args.resume and args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise ValueError(f"--resume {args.resume} continues that run in its own folder; drop --out {args.out} (or give the same folder)")
    out = Path(args.resume or args.out or "")
    if not (args.resume or args.out):
        raise ValueError("--out DIR is required (a new folder for the LoRA files), or --resume DIR to continue a run")
    ds = data.open_dataset(args.dataset, args.metadata, import_type=args.import_type)
    check_out(out, bool(args.resume), args.force, inputs=[ds.metadata_path])
    if args.resume:
        from ...train.checkpoint import read_state_info

        read_state_info(out)
    selection = data.select_clips(ds, config, _filter_from(args), mix=args.mix, mix_seed=args.mix_seed)
    model = models.resolve_model(tiny=args.tiny, folder=args.model, transformer=args.transformer, vae=args.vae,
                                 text_encoder=args.text_encoder, tokenizer=args.tokenizer, image_encoder=args.clip_vision,
                                 variant=args.variant)
    if config.task != "auto" and config.task != model.kind:
        raise ValueError(f"--task {config.task} needs a Wan2.1 {config.task.upper()} model, but {model.describe()} is "
                         f"{model.kind.upper()}; use --task {model.kind} or an {config.task.upper()} model")
    config.task = model.kind
    # Under accelerate/torchrun every process runs this; only rank 0 talks. (No accelerate state is made here:
    # the first one made decides the backend, and train() makes it.)
    main = os.environ.get("RANK", "0") == "0"
    if main:
        log.info("[EmoVid] %s", selection.summary())
        log.info("[EmoVid] model: %s", model.describe())
    result = train(config, selection, model, out, cache_dir=args.cache, resume=bool(args.resume), device=args.device,
                   check_memory=not args.skip_memory_check,
                   run_info={"command": " ".join(["emovid"] + [a for a in sys.argv[1:]])})
    if main:
        print(result.summary())
        for f in result.files:
            print(f"wrote {f}")
    return 130 if result.interrupted else 0
