"""Arguments and the shared handler body of ``emovid grade`` and ``emovid drift`` (both read a video, grade its
frames with emovid_core.grading, print the report and write the graded video, optionally a JSON report and a plot)."""

from __future__ import annotations


def add_common(p) -> None:
    p.add_argument("video", metavar="VIDEO", help="video (mp4/webm/mov/...), GIF/WebP animation or folder of images")
    p.add_argument("--out", required=True, metavar="OUT.mp4", help="the graded video (format from the suffix: mp4, webm, gif, webp)")
    p.add_argument("--strength", type=float, default=1.0, help="0..1: how far to move toward the target (0 = unchanged)")
    p.add_argument("--max-hue-shift", type=float, default=30.0, help="cap on the hue rotation in degrees (default 30)")
    p.add_argument("--protect-skin", nargs="?", type=float, const=1.0, default=0.0, metavar="AMOUNT",
                   help="hold skin-like pixels back from the grade (AMOUNT 0..1, default 1 when given)")
    p.add_argument("--stride", type=int, default=20, help="pool frames 0, stride, 2*stride, ... for the clip values (paper: 20)")
    p.add_argument("--quality", type=int, default=90, help="output quality 1..100 (mp4/webm CRF, WebP quality)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT.json", help="also write the report as JSON")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="also write the before/after curves as a PNG")
    p.add_argument("--force", action="store_true", help="replace existing output files (never the input)")


def run(args, work, extra_inputs=()) -> int:
    """Check outputs, decode, ``work(frames, fps) -> (IMAGE, GradeReport)``, print, write."""
    import json

    from ... import grading, video_io
    from ...atomic import check_outputs, write_bytes, write_text

    if args.plot and not args.plot.lower().endswith(".png"):
        raise ValueError(f"--plot {args.plot!r} must end in .png")
    check_outputs([o for o in (args.out, args.json_out, args.plot) if o], inputs=[args.video, *extra_inputs], force=args.force)
    info = video_io.probe(args.video)
    frames = video_io.frames_to_image(video_io.read_frames(args.video, info=info))
    out, report = work(frames, info.fps)
    print("\n".join(report.lines()), flush=True)
    video_io.write_video(out, args.out, info.fps, quality=args.quality)
    print(f"wrote {args.out}")
    if args.json_out:
        write_text(args.json_out, json.dumps(report.to_dict(), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json_out}")
    if args.plot:
        import cv2

        ok, buf = cv2.imencode(".png", cv2.cvtColor(grading.plot_rgb(report), cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"PNG encoding of the plot for {args.plot!r} failed")
        write_bytes(args.plot, buf.tobytes())
        print(f"wrote {args.plot}")
    return 0


def reference_frames(path: str):
    from ... import video_io

    return video_io.frames_to_image(video_io.read_frames(path, progress=False))
