"""``emovid eval``: emotion classifiers and the paper's Table 3 (train-probe, score, table3)."""

from __future__ import annotations

from ._engine_args import add_engine_arguments, engine_options

CLASSIFIER_HELP = ("clip:DIR (zero-shot with a transformers CLIP folder), probe:FILE (from `emovid eval train-probe`) or "
                   "vlm:DIR (a local vision-language model folder); local files only")


def register(sub) -> None:
    p = sub.add_parser("eval", help="emotion classifiers and the paper's Table 3 (EA-2/EA-8, CLIP/SD score, flicker, FVD)",
                       description="Measure whether videos read as the emotion asked for. Classifiers load local files "
                       "only; scores from any classifier but the paper's unreleased one are not comparable with its numbers.")
    ev = p.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND")

    t = ev.add_parser("train-probe", help="fit a linear emotion probe on frozen CLIP vision features of the train split",
                      description="Fit a linear probe (multinomial logistic regression) on the pooled CLIP vision features "
                      "of the dataset's train-split clips; saves FILE.safetensors + FILE.json (never pickle).")
    t.add_argument("--dataset", required=True, metavar="ROOT", help="EmoVid-format dataset folder (metadata with a split column)")
    t.add_argument("--vision", required=True, metavar="DIR|FILE",
                   help="a transformers CLIP folder or a clip_vision .safetensors file (e.g. ComfyUI's clip_vision_h.safetensors)")
    t.add_argument("--out", required=True, metavar="FILE.safetensors", help="probe file to write (a .json sidecar is written beside it)")
    t.add_argument("--frames", type=int, default=8, help="frames per clip, spread evenly, features averaged (default 8)")
    t.add_argument("--val-fraction", type=float, default=0.2, help="training clips held out to report accuracy (default 0.2)")
    t.add_argument("--l2", type=float, default=1e-3, help="L2 penalty on the weights (default 0.001)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--metadata", default=None, help="metadata table to use (default: the root's index or metadata)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--force", action="store_true", help="replace an existing probe file")
    t.set_defaults(func=_train_probe)

    s = ev.add_parser("score", help="classify videos with an emotion classifier, one line each",
                      description="Print the top emotion, its valence and the eight probabilities of each video.")
    s.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or image folders")
    s.add_argument("--classifier", required=True, metavar="BACKEND:PATH", help=CLASSIFIER_HELP)
    s.add_argument("--vision", default=None, metavar="DIR|FILE", help="probe only: the vision model, if not where the probe says")
    s.add_argument("--frames", type=int, default=None, help="frames per clip (default: the classifier's, 8 for clip/probe)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    s.add_argument("--json", dest="json_out", default=None, metavar="OUT.json", help="also write the results as JSON")
    s.add_argument("--force", action="store_true", help="replace an existing --json file")
    s.set_defaults(func=_score)

    b = ev.add_parser("table3", help="the paper's Table 3 on the benchmark split: given videos or generated before/after",
                      description="Score videos of the benchmark clips (named by clip id) and write per_clip.csv, table3.json, "
                      "table3.md (the paper's column order, our rows beside its numbers), confusion.png and "
                      "per_emotion_accuracy.png into --out. Resumable: per-clip results are cached in OUT/cache/.")
    b.add_argument("--dataset", required=True, metavar="ROOT", help="EmoVid-format dataset (its test split is the benchmark)")
    b.add_argument("--classifier", required=True, metavar="BACKEND:PATH", help=CLASSIFIER_HELP)
    b.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs and the per-clip cache")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--videos", action="append", metavar="[NAME=]DIR",
                     help="folder of already generated videos named <clip_id>.mp4 (repeatable: --videos before=A --videos after=B)")
    src.add_argument("--generate", action="store_true", help="generate the benchmark videos first: 'before' without, 'after' with --lora")
    b.add_argument("--task", choices=["t2v", "i2v"], default=None, help="which half of Table 3 (default t2v; --generate: the pipeline's)")
    b.add_argument("--clip", default=None, metavar="DIR", help="a transformers CLIP folder for CLIP score (T2V) / SD score (I2V)")
    b.add_argument("--fvd-features", default=None, metavar="DIR|FILE",
                   help="a local vision feature network (CLIP folder or clip_vision file) for FVD; left out without one")
    b.add_argument("--vision", default=None, metavar="DIR|FILE", help="probe only: the vision model, if not where the probe says")
    b.add_argument("--frames", type=int, default=None, help="frames per clip for the classifier (default: the classifier's)")
    b.add_argument("--max-frames", type=int, default=0, help="decode at most this many frames per video for flicker (0 = all)")
    b.add_argument("--skip-missing", action="store_true", help="score the clips that have a video instead of stopping")
    b.add_argument("--metadata", default=None, help="metadata table to use (default: the root's index or metadata)")
    b.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    g = b.add_argument_group("--generate")
    g.add_argument("--pipeline", default=None, metavar="tiny-t2v|tiny-i2v|DIR", help="the Wan2.1 pipeline: a tiny test one or a diffusers folder")
    g.add_argument("--lora", action="append", default=[], metavar="PATH[:STRENGTH]", help="LoRA for the 'after' row (repeatable)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=None)
    g.add_argument("--gen-frames", type=int, default=None, help="frames to generate (4n+1; default: the model's)")
    g.add_argument("--width", type=int, default=None)
    g.add_argument("--height", type=int, default=None)
    g.add_argument("--guidance", type=float, default=None)
    b.add_argument("--force", action="store_true", help="replace output files in --out that an earlier table3 run did not write")
    b.add_argument("--workers", type=int, default=None,
                   help="pipelines/scorers loaded at once (local default 1, in this process; ray: one per GPU, else per CPU)")
    add_engine_arguments(b)
    b.set_defaults(func=_table3)

    k = ev.add_parser("tiny-clip", help="write a random-weight CLIP folder (for trying the commands; its scores are noise)",
                      description="Write a random-weight transformers CLIP folder built in code (tiny: 32 wide; small; clip-l: "
                      "CLIP ViT-L/14 shapes). It loads like a real CLIP folder, so every command can be tried without weights.")
    k.add_argument("--out", required=True, metavar="DIR", help="folder to write (must not exist yet)")
    k.add_argument("--size", choices=["tiny", "small", "clip-l"], default="tiny")
    k.set_defaults(func=_tiny_clip)
    p.set_defaults(func=lambda args: _help(p))


def _help(parser) -> int:
    parser.print_help()
    return 1


def _tiny_clip(args) -> int:
    import shutil
    from pathlib import Path

    from ...evaluation.tiny import ensure_tiny_clip

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"--out {out} exists; give a new folder name")
    shutil.copytree(ensure_tiny_clip(args.size), out)
    print(f"wrote a random-weight CLIP ({args.size}) to {out}; use it as clip:{out}")
    return 0


def _train_probe(args) -> int:
    from pathlib import Path

    from ...atomic import check_outputs
    from ...evaluation.probe import sidecar_path, train_probe

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out {args.out!r} must end in .safetensors (the probe is saved as safetensors + a .json sidecar)")
    check_outputs([out, sidecar_path(out)], inputs=[args.vision], force=args.force)
    report = train_probe(args.dataset, args.vision, out, frames=args.frames, val_fraction=args.val_fraction, l2=args.l2,
                         seed=args.seed, device=args.device, metadata=args.metadata)
    print(report)
    return 0


def _score(args) -> int:
    import json

    from ...atomic import check_outputs, write_text
    from ...evaluation.classifiers import NOT_COMPARABLE, load_classifier
    from ...evaluation.scoring import score_video

    if args.json_out:
        check_outputs([args.json_out], inputs=args.videos, force=args.force)
    clf = load_classifier(args.classifier, vision=args.vision, frames=args.frames, device=args.device)
    print(f"classifier {clf.describe()}")
    results = []
    for v in args.videos:
        res = score_video(clf, v)
        print(f"{v}: {res.line()}", flush=True)
        results.append({"video": v, **res.to_dict()})
    print(NOT_COMPARABLE)
    if args.json_out:
        write_text(args.json_out, json.dumps({"classifier": clf.identity(), "comparability": NOT_COMPARABLE, "videos": results},
                                             indent=1) + "\n")
    return 0


def _table3(args) -> int:
    from pathlib import Path

    from ...evaluation import table3
    from .generate import parse_lora

    out = Path(args.out)
    table3.check_out(out, args.force)
    engine = {"engine": args.engine, "workers": args.workers, "engine_options": engine_options(args)}
    if args.generate:
        if not args.pipeline:
            raise ValueError("--generate needs --pipeline tiny-t2v|tiny-i2v|DIR (a Wan2.1 diffusers folder)")
        stack = [parse_lora(s, i) for i, s in enumerate(args.lora)]
        g = table3.GenerateOptions(args.pipeline, stack, seed=args.seed, steps=args.steps, frames=args.gen_frames, width=args.width,
                                   height=args.height, guidance=args.guidance, device=args.device)
        task, rows = table3.generate_rows(g, args.dataset, out, args.metadata, task=args.task,
                                          announce=lambda text: print(text, flush=True), **engine)
    else:
        if args.lora or args.pipeline:
            raise ValueError("--lora/--pipeline only apply with --generate; with --videos the videos are already made")
        task = args.task or "t2v"
        rows = [table3.Row.parse(v, "ours" if len(args.videos) == 1 else f"row{i + 1}") for i, v in enumerate(args.videos)]
    opts = table3.Table3Options(dataset=Path(args.dataset), classifier=args.classifier, out=out, task=task, clip=args.clip,
                                fvd_features=args.fvd_features, vision=args.vision, frames=args.frames, device=args.device,
                                metadata=args.metadata, skip_missing=args.skip_missing, max_frames=args.max_frames)
    result = table3.run_table3(opts, rows, force=args.force, **engine)
    print(result.summary())
    print(table3.NOT_COMPARABLE)
    return 0
