"""``emovid demo``: the whole EmoVid story headless on built-in defaults (see emovid_core/demo.py)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole EmoVid story headless on a tiny built-in model and synthetic data")
    p.add_argument("--out", default="emovid_demo", help="output folder (default: ./emovid_demo)")
    p.add_argument("--emotion", default="fear", help="one of the eight Mikels emotions (default: fear)")
    p.add_argument("--type", dest="clip_type", default="animation", choices=["animation", "movie", "sticker"],
                   help="source type of the sampled clip (default: animation)")
    p.add_argument("--seed", type=int, default=0, help="seed for clip sampling and generation")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's default)")
    p.add_argument("--frames", type=int, default=None, help="frames to generate, 4n+1 (default: the model's default)")
    p.add_argument("--wan-folder", default=None, help="a local diffusers Wan2.1 I2V folder to use instead of the tiny model")
    p.add_argument("--lora", default=None, help="an EmoVid LoRA .safetensors (any supported format) instead of the tiny random one")
    p.add_argument("--lora-strength", type=float, default=1.0, help="LoRA strength (default 1.0)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..demo import TINY_NOTE, run_demo

    res = run_demo(args.out, emotion=args.emotion, seed=args.seed, clip_type=args.clip_type, steps=args.steps,
                   frames=args.frames, wan_folder=args.wan_folder, lora=args.lora, lora_strength=args.lora_strength)
    print()
    print(f"EmoVid demo finished in {res.seconds:.1f} s. Outputs in {res.out}:")
    print(f"  report   {res.report_path}")
    for name, path in res.files.items():
        print(f"  {name:<26} {path}")
    if not args.wan_folder:
        print()
        print(TINY_NOTE)
    return 0
