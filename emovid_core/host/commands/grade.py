"""``emovid grade``: colour-grade a video toward an emotion's look (dataset statistics), a reference or typed values."""

from __future__ import annotations

from . import _grade_args


def register(sub) -> None:
    p = sub.add_parser(
        "grade",
        help="colour-grade a video toward an emotion's brightness/colorfulness/hue (from your dataset's statistics)",
        description=(
            "Move a clip's brightness, colorfulness and hue (the paper's Eqs. 1-3) toward the per-emotion means of "
            "your dataset (--emotion with --stats STATS.json from `emovid dataset stats --json`, or --dataset ROOT), a "
            "--reference clip/image, or typed values. Gamma curves on V and S (no clipping), a capped hue rotation, "
            "solved in a closed loop so the measured values land within 0.01 of the goal. Prints the report."
        ),
    )
    _grade_args.add_common(p)
    p.add_argument("--emotion", default=None, help="one of the eight emotions (needs --stats or --dataset)")
    p.add_argument("--stats", default=None, metavar="STATS.json", help="per-emotion statistics from `emovid dataset stats ROOT --json STATS.json`")
    p.add_argument("--dataset", default=None, metavar="ROOT", help="an indexed dataset folder: its per-emotion means are computed")
    p.add_argument("--reference", default=None, metavar="CLIP", help="grade toward this clip's (or image folder's) measured values")
    p.add_argument("--brightness", type=float, default=None, help="typed target brightness 0..1 (replaces the emotion's)")
    p.add_argument("--colorfulness", type=float, default=None, help="typed target colorfulness 0..1 (replaces the emotion's)")
    p.add_argument("--hue", type=float, default=None, help="typed target hue in degrees (replaces the emotion's)")
    p.add_argument("--mode", choices=("clip", "frame"), default="clip",
                   help="clip: one grade for the whole clip (no flicker); frame: per frame, smoothed over time")
    p.add_argument("--smooth-sigma", type=float, default=6.0, help="frame mode: Gaussian smoothing over time in frames")
    p.set_defaults(func=_grade)


def _grade(args) -> int:
    from ... import grading

    reference = _grade_args.reference_frames(args.reference) if args.reference else None

    def work(frames, fps):
        return grading.grade_inputs(
            frames, emotion=args.emotion, stats=args.stats, dataset=args.dataset, reference=reference,
            brightness=args.brightness, colorfulness=args.colorfulness, hue=args.hue, strength=args.strength,
            max_hue_shift=args.max_hue_shift, protect_skin=args.protect_skin, mode=args.mode,
            smooth_sigma=args.smooth_sigma, stride=args.stride, fps=fps,
        )

    if args.emotion and not (args.stats or args.dataset or args.reference) and args.brightness is None \
            and args.colorfulness is None and args.hue is None:
        grading.resolve_targets(emotion=args.emotion)  # the error naming the fix, before anything is decoded
    return _grade_args.run(args, work, [p for p in (args.stats, args.reference) if p])
