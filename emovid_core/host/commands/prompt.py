"""``emovid prompt``: print EmoVid emotion prompts (positive and negative) without ComfyUI."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "prompt",
        help="print the EmoVid emotion prompt for a caption (the paper's template by default)",
        description='Build the EmoVid prompt: CAPTION followed by \'The video is in the "<emotion>" emotion.\', '
        "and the negative prompt (Wan2.1's standard one by default).",
    )
    p.add_argument("caption", nargs="?", default=None, help="the video caption (use '-' to read it from stdin)")
    p.add_argument("--emotion", "-e", help="one of the eight emotions (or a synonym such as 'scared', 'joy')")
    p.add_argument("--all", action="store_true", help="print the prompts for all eight emotions (the sweep)")
    p.add_argument("--intensity", type=float, default=1.0,
                   help="0..2; 1 = exact paper prompt, other values use ComfyUI's (text:weight) syntax (default 1)")
    p.add_argument("--template", default=None, help="template with {caption} {emotion} [{valence} {arousal}] (default: the paper's)")
    p.add_argument("--negative-opposite", action="store_true", help="append the opposite-valence emotions to the negative prompt")
    p.add_argument("--negative-base", default=None, help="base negative prompt (default: Wan2.1's standard one; '' for none)")
    p.add_argument("--json", action="store_true",
                   help="print JSON (adds the caption-only text and weight that headless encoders use for intensity)")
    p.add_argument("--list", action="store_true", help="print the eight emotions with valence and Warriner (2013) arousal, then exit")
    p.set_defaults(func=_run)


def _emotion_table() -> str:
    from ...emotions import EMOTION_OBJECTS

    rows = [f"{'emotion':<12} {'valence':<9} {'V (1-9)':>7} {'A (1-9)':>7}  arousal"]
    for e in EMOTION_OBJECTS:
        rows.append(f"{e.name:<12} {e.valence:<9} {e.valence_rating:>7.2f} {e.arousal_rating:>7.2f}  {e.arousal_level}")
    rows.append("V/A: Warriner, Kuperman & Brysbaert (2013) norms; arousal high/low = above/below the median of the eight")
    return "\n".join(rows)


def _run(args) -> int:
    import json
    import sys

    from ...emotions import EMOTIONS
    from ...prompts import PAPER_TEMPLATE, WAN_NEGATIVE_PROMPT, build_prompt, negative_prompt, weighted_prompt

    if args.list:
        print(_emotion_table())
        return 0
    if args.caption is None:
        raise ValueError('give a caption, e.g. emovid prompt "A man walks into a dark room." --emotion fear')
    caption = sys.stdin.read() if args.caption == "-" else args.caption
    if args.all == bool(args.emotion):
        raise ValueError("pass exactly one of --emotion NAME or --all (the eight emotions: " + ", ".join(EMOTIONS) + ")")
    template = PAPER_TEMPLATE if args.template is None else args.template
    base = WAN_NEGATIVE_PROMPT if args.negative_base is None else args.negative_base
    names = list(EMOTIONS) if args.all else [args.emotion]
    rows = []
    for name in names:
        wp = weighted_prompt(caption, name, template, args.intensity)  # validates name, template and intensity
        rows.append({
            "emotion": _canonical(name),
            "positive": build_prompt(caption, name, template, args.intensity),
            "negative": negative_prompt(name, add_opposite=args.negative_opposite, base=base),
            "plain": wp.text,
            "caption_only": wp.base,
            "weight": wp.weight,
        })
    if args.json:
        print(json.dumps(rows if args.all else rows[0], ensure_ascii=False, indent=2))
        return 0
    if not args.all:
        print(f"positive: {rows[0]['positive']}")
        print(f"negative: {rows[0]['negative']}")
        return 0
    for row in rows:
        print(f"{row['emotion']}: {row['positive']}")
    negatives = {row["negative"] for row in rows}
    if len(negatives) == 1:
        print(f"negative: {rows[0]['negative']}")
    else:  # one negative per valence when the opposite emotions are appended
        for row in rows:
            print(f"negative ({row['emotion']}): {row['negative']}")
    return 0


def _canonical(name: str) -> str:
    from ...emotions import get_emotion

    return get_emotion(name).name
