"""``emovid dataset …``: index, stats, filter, sample, split, export and make-sample for EmoVid-format data."""

from __future__ import annotations

import json
import sys

from ._engine_args import add_engine_arguments, engine_options


def _add_filters(p) -> None:
    g = p.add_argument_group("filters (applied in this order; repeat or comma-separate values)")
    g.add_argument("--emotion", action="append", default=[], help="keep these emotions, e.g. --emotion fear,anger")
    g.add_argument("--valence", default="", choices=["", "positive", "negative"], help="keep one valence")
    g.add_argument("--type", dest="types", action="append", default=[], help="animation, movie, sticker")
    g.add_argument("--label-source", action="append", default=[], help="human, vlm or unknown")
    g.add_argument("--split", dest="splits", action="append", default=[], help="e.g. test, train, none")
    g.add_argument("--film", action="append", default=[], help="movie film ids")
    g.add_argument("--range", dest="ranges", action="append", default=[], metavar="COL=MIN..MAX",
                   help="attribute range, e.g. brightness=0.3..0.7, hue=330..30 (wraps), duration=..5")
    g.add_argument("--caption", default="", help="keep clips whose caption contains this text (case-insensitive)")
    g.add_argument("--caption-regex", action="store_true", help="treat --caption as a regular expression")


def _filter_from(args):
    from ...dataset.filters import Filter, parse_range

    ranges = dict(parse_range(r) for r in args.ranges)
    return Filter(emotions=",".join(args.emotion), valence=args.valence, types=",".join(args.types),
                  label_sources=",".join(args.label_source), splits=",".join(args.splits), ranges=ranges,
                  caption=args.caption, caption_regex=args.caption_regex, films=",".join(args.film))


def _load(args):
    from ...dataset import load_dataset

    ds = load_dataset(args.root, getattr(args, "metadata", None))
    if ds.rejects:
        print(f"warning: {len(ds.rejects)} metadata row(s) rejected, first: {ds.rejects[0]}", file=sys.stderr)
    return ds


def _selected(args, ds):
    from ...dataset.filters import apply_filter

    clips, trace = apply_filter(ds.clips, _filter_from(args))
    return clips, trace


def _trace_text(trace) -> str:
    return " → ".join([str(trace[0][1])] + [f"{name} {n}" for name, n in trace[1:]])


def _add_force(p) -> None:
    p.add_argument("--force", action="store_true", help="replace existing output files")


def _check_outputs(args, ds, *outputs) -> None:
    """Refuse outputs that are the table being read, or existing files, unless --force (see emovid_core.atomic)."""
    from ...atomic import check_outputs

    check_outputs([o for o in outputs if o], inputs=[ds.metadata_path], force=args.force)


def register(sub) -> None:
    p = sub.add_parser("dataset", help="EmoVid dataset tools: index, stats, filter, sample, split, export, make-sample")
    dsub = p.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])

    q = dsub.add_parser("index", help="probe every clip, measure the paper's B/C/H, write ROOT/emovid_index.csv")
    q.add_argument("root", help="dataset root folder")
    q.add_argument("--metadata", default=None, help="source table (default: ROOT/emovid_metadata.csv, a DiffSynth metadata.csv or the <type>/<emotion>/ tree)")
    q.add_argument("--out", default=None, help="index file to write (.csv or .jsonl; default ROOT/emovid_index.csv)")
    q.add_argument("--workers", type=int, default=None, help="processes (default: all cores); ray: task slots (default: every CPU of the cluster)")
    q.add_argument("--stride", type=int, default=20, help="attribute frame stride (paper: 20)")
    q.add_argument("--type", dest="default_type", default=None, help="source type for imported clips whose path names none")
    q.add_argument("--label-source", default="", help="label source for imported clips (human or vlm)")
    add_engine_arguments(q)
    q.set_defaults(func=_index)

    q = dsub.add_parser("stats", help="counts, attribute means, ANOVA, Fig. 5 shares, Markov matrix (JSON + plots)")
    q.add_argument("root")
    q.add_argument("--metadata", default=None, help="metadata table to read instead of the root's")
    q.add_argument("--json", dest="json_out", default=None, help="write the statistics JSON here")
    q.add_argument("--plots", default=None, metavar="DIR", help="write the four PNG plots into DIR")
    q.add_argument("--bins", type=int, default=11, help="bins over [0,1] for the positive-share curves (default 11: 0.0..1.0)")
    q.add_argument("--consecutive-only", action="store_true", help="Markov: count only segment n → n+1 (no gaps bridged)")
    _add_force(q)
    _add_filters(q)
    q.set_defaults(func=_stats)

    q = dsub.add_parser("filter", help="apply filters; print the count after each and optionally write the rows")
    q.add_argument("root")
    q.add_argument("--metadata", default=None)
    q.add_argument("--out", default=None, help="write the kept rows to this .csv/.jsonl (a new file)")
    q.add_argument("--list", action="store_true", help="print the kept clip ids")
    _add_force(q)
    _add_filters(q)
    q.set_defaults(func=_filter)

    q = dsub.add_parser("sample", help="draw clips deterministically: random, balanced, benchmark or the training mix")
    q.add_argument("root")
    q.add_argument("--metadata", default=None)
    q.add_argument("--mode", choices=["random", "balanced", "benchmark", "train"], default="random")
    q.add_argument("-n", type=int, default=8, help="clips to draw (random, balanced)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--per-cell", type=int, default=10, help="benchmark: human-labelled clips per type × emotion (paper 10)")
    q.add_argument("--json", dest="json_out", default=None, help="write the drawn rows as JSON")
    _add_force(q)
    _add_filters(q)
    q.set_defaults(func=_sample)

    q = dsub.add_parser("split", help="fill the split column by the paper's rule: test = benchmark, train = training mix")
    q.add_argument("root")
    q.add_argument("--metadata", default=None)
    q.add_argument("--per-cell", type=int, default=10, help="benchmark clips per type × emotion (paper 10 → 240)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default=None, help="table to write (default: the root's index, rewritten atomically)")
    q.add_argument("--force", action="store_true", help="replace an existing --out file that is not an EmoVid index")
    q.set_defaults(func=_split)

    q = dsub.add_parser("export", help="write a DiffSynth-Studio training folder (metadata.csv video,prompt + clips)")
    q.add_argument("root")
    q.add_argument("out", help="new folder for the export")
    q.add_argument("--metadata", default=None)
    q.add_argument("--format", choices=["diffsynth"], default="diffsynth")
    q.add_argument("--link", choices=["symlink", "hardlink", "copy"], default="symlink")
    q.add_argument("--no-convert", action="store_true", help="keep GIF/WebP as they are (DiffSynth cannot read them)")
    q.add_argument("--force", action="store_true",
                   help="replace files at target names that an earlier export did not write (they are listed otherwise)")
    _add_filters(q)
    q.set_defaults(func=_export)

    q = dsub.add_parser("make-sample", help="write a small synthetic EmoVid-format dataset (reused when complete)")
    q.add_argument("out")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--per-cell", type=int, default=2, help="human-labelled clips per type × emotion")
    q.add_argument("--extra-per-cell", type=int, default=1, help="VLM-labelled clips per type × emotion")
    q.add_argument("--films", type=int, default=4)
    q.add_argument("--size", default="64x48", help="WxH of the clips")
    q.add_argument("--force", action="store_true", help="rewrite even if a complete set exists")
    q.add_argument("--index", action="store_true", help="also run the indexer on it")
    q.set_defaults(func=_make_sample)


def _index(args) -> int:
    from ...dataset.indexer import index_dataset

    report = index_dataset(args.root, metadata=args.metadata, out=args.out, workers=args.workers, stride=args.stride,
                           default_type=args.default_type, label_source=args.label_source, engine=args.engine,
                           engine_options=engine_options(args))
    print(report)
    for f in report.failed[:10]:
        print(f"  unreadable: {f['path']}: {f['error']}")
    for r in report.rejects[:10]:
        print(f"  rejected row {r}")
    return 0


def _stats(args) -> int:
    from ...atomic import write_text
    from ...dataset.stats import compute_stats, summary_lines

    ds = _load(args)
    _check_outputs(args, ds, args.json_out)
    clips, trace = _selected(args, ds)
    stats = compute_stats(clips, bins=args.bins, consecutive_only=args.consecutive_only)
    stats["selection"] = _trace_text(trace)
    print("\n".join(summary_lines(stats)))
    if args.json_out:
        write_text(args.json_out, json.dumps(stats, indent=1) + "\n", fsync=True)
        print(f"wrote {args.json_out}")
    if args.plots:
        from ...dataset.plots import save_plots

        for p in save_plots(stats, args.plots, force=args.force):
            print(f"wrote {p}")
    return 0


def _filter(args) -> int:
    ds = _load(args)
    _check_outputs(args, ds, args.out)
    clips, trace = _selected(args, ds)
    print(_trace_text(trace))
    if args.list:
        for c in clips:
            print(c.clip_id)
    if args.out:
        from ...dataset.table import write_table

        write_table(args.out, clips)
        print(f"wrote {len(clips)} row(s) to {args.out}")
    return 0


def _sample(args) -> int:
    from ...dataset import sampling

    ds = _load(args)
    _check_outputs(args, ds, args.json_out)
    clips, trace = _selected(args, ds)
    if args.mode == "random":
        drawn = sampling.sample_random(clips, args.n, args.seed)
    elif args.mode == "balanced":
        drawn = sampling.sample_balanced(clips, args.n, args.seed)
    elif args.mode == "benchmark":
        drawn = sampling.benchmark_split(clips, args.per_cell, args.seed)
    else:
        bench = sampling.benchmark_clips(ds.clips, args.per_cell, args.seed)
        drawn, report = sampling.training_mix(clips, {c.clip_id for c in bench}, args.seed)
        print(report)
    print(f"{len(drawn)} clip(s) from {_trace_text(trace)} (mode {args.mode}, seed {args.seed})")
    for c in drawn[:50]:
        print(f"{c.clip_id}\t{c.type}\t{c.emotion}\t{c.path}")
    if len(drawn) > 50:
        print(f"... and {len(drawn) - 50} more (use --json)")
    if args.json_out:
        from ...atomic import write_text

        write_text(args.json_out, json.dumps([{k: v for k, v in c.to_row().items()} for c in drawn], indent=1) + "\n", fsync=True)
    return 0


def _split(args) -> int:
    from pathlib import Path

    from ...dataset.sampling import assign_splits
    from ...dataset.table import INDEX_NAMES, write_table

    ds = _load(args)
    out = Path(args.out) if args.out else ds.metadata_path
    if out.resolve() == ds.metadata_path.resolve() and ds.metadata_path.name not in INDEX_NAMES:
        raise ValueError(f"{ds.metadata_path} is your own table; pass --out NEW.csv (run `emovid dataset index` first "
                         "to get an index that can be rewritten)")
    if args.out:
        from ...atomic import check_outputs

        # An index (emovid_index.csv/.jsonl) is the pack's own table: rewriting it is what split is for.
        check_outputs([out], force=args.force, owned=lambda p: p.name in INDEX_NAMES)
    clips, report = assign_splits(ds.clips, per_cell=args.per_cell, seed=args.seed)
    write_table(out, clips)
    print(f"{report} -> {out}")
    return 0


def _export(args) -> int:
    from ...dataset.export import export_diffsynth

    ds = _load(args)
    clips, trace = _selected(args, ds)
    report = export_diffsynth(ds, clips, args.out, link=args.link, convert_animations=not args.no_convert,
                              description=_trace_text(trace), force=args.force)
    print(report)
    return 0


def _make_sample(args) -> int:
    from ...dataset.synthetic import make_sample

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {args.size!r} must be WxH, e.g. 64x48") from None
    s = make_sample(args.out, seed=args.seed, per_cell=args.per_cell, extra_per_cell=args.extra_per_cell,
                    films=args.films, size=(w, h), force=args.force)
    print(s)
    if args.index:
        from ...dataset.indexer import index_dataset

        print(index_dataset(args.out))
    return 0
