"""``emovid drift``: keep a video's brightness, colorfulness and hue on its first frame's (or a reference's)."""

from __future__ import annotations

from . import _grade_args


def register(sub) -> None:
    p = sub.add_parser(
        "drift",
        help="correct colour drift: keep every frame's brightness/colorfulness/hue on a reference frame or clip",
        description=(
            "For long or chained generations whose colours wander: per-frame gamma curves on V and S (no clipping) "
            "and a capped hue rotation keep each frame's B/C/H on those of the first frame (--reference-frame N for "
            "another) or on a --reference clip's per-frame curves (resampled to this clip's length). Prints the report."
        ),
    )
    _grade_args.add_common(p)
    p.add_argument("--reference-frame", type=int, default=0, help="frame of the video whose look every frame keeps (default 0)")
    p.add_argument("--reference", default=None, metavar="CLIP", help="follow this clip's per-frame curves instead")
    p.add_argument("--no-hue", action="store_true", help="leave the hue alone (correct brightness and colorfulness only)")
    p.add_argument("--smooth-sigma", type=float, default=0.0, help="Gaussian smoothing of the correction over time in frames (0 = none)")
    p.set_defaults(func=_drift)


def _drift(args) -> int:
    from ... import grading

    reference = _grade_args.reference_frames(args.reference) if args.reference else None

    def work(frames, fps):
        return grading.drift_inputs(
            frames, reference_frame=args.reference_frame, reference=reference, hue=not args.no_hue,
            strength=args.strength, max_hue_shift=args.max_hue_shift, protect_skin=args.protect_skin,
            smooth_sigma=args.smooth_sigma, stride=args.stride, fps=fps,
        )

    return _grade_args.run(args, work, [args.reference] if args.reference else [])
