"""``emovid analyze``: the EmoVid paper's brightness / colorfulness / hue of video files and image folders."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="paper B/C/H attributes, per-frame curves and their summary for videos, GIFs and image folders",
        description=(
            "Print one line per clip: paper brightness B, colorfulness C, hue H (Eqs. 1-3 over frames 0, stride, "
            "2*stride, ...) and their unrounded values. By default every frame is decoded so the per-frame curves "
            "and their temporal summary (in --json and --plot) cover the whole clip; --fast decodes only the "
            "sampled frames (same B/C/H, curves only at those frames)."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="video (mp4/webm/mov/mkv/...), GIF/WebP animation or folder of images")
    p.add_argument("--stride", type=int, default=20, help="pool frames 0, stride, 2*stride, ... for B/C/H (paper: 20)")
    p.add_argument("--fps", type=float, default=None, help="frame rate for slopes per second (default: the file's; image folders: 16)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT.json",
                   help="write the full report (one clip: its report; several: {\"clips\": [...]})")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="write a PNG plot of the curves (one PATH only)")
    p.add_argument("--fast", action="store_true", help="decode only the sampled frames (B/C/H unchanged; curves only at those frames)")
    p.add_argument("--no-hasler", action="store_true", help="skip the Hasler-Suesstrunk colorfulness curve (a little faster)")
    p.add_argument("--force", action="store_true", help="replace an existing --json/--plot file")
    p.set_defaults(func=_analyze)


def _analyze(args) -> int:
    import json
    from pathlib import Path

    from ... import attributes, video_io
    from ...atomic import check_outputs, write_text

    if args.stride < 1:
        raise ValueError(f"--stride {args.stride} must be >= 1 (the paper samples every 20th frame: --stride 20)")
    if args.plot and len(args.paths) > 1:
        raise ValueError(f"--plot writes one PNG but {len(args.paths)} paths were given; run analyze once per clip to plot each")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ValueError(f"--plot {args.plot!r} must end in .png")
    check_outputs([o for o in (args.json_out, args.plot) if o], inputs=args.paths, force=args.force)
    reports = []
    for path in args.paths:
        info = video_io.probe(path, fps=args.fps)
        fps = args.fps or info.fps
        if args.fast:
            planned = video_io.plan_indices(info, every_nth=args.stride)
            frames = video_io.iter_frames(path, info=info, indices=planned)
        else:
            planned = None
            frames = video_io.iter_frames(path, info=info)
        report = attributes.analyze(
            frames, stride=args.stride, fps=fps, indices=planned, hasler=not args.no_hasler, source=str(path),
        )
        print(report.summary_line(Path(path).name), flush=True)
        reports.append(report)
    if args.json_out:
        data = reports[0].to_dict() if len(reports) == 1 else {"clips": [r.to_dict() for r in reports]}
        write_text(args.json_out, json.dumps(data, indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json_out}")
    if args.plot:
        attributes.save_plot(reports[0], args.plot)
        print(f"wrote {args.plot}")
    return 0
