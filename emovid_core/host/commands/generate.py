"""``emovid generate``: headless Wan2.1 text/image-to-video with an emotion prompt and optional LoRAs."""

from __future__ import annotations

import json


def register(sub) -> None:
    from ._model_args import add_single_file_args

    p = sub.add_parser(
        "generate",
        help="generate a Wan2.1 clip (T2V/I2V) with an emotion prompt, headless (diffusers)",
        description="Generate a clip with Wan2.1 via diffusers from local files only. Pick one source: --tiny t2v|i2v "
        "(random test model), --diffusers DIR, or single files (--transformer/--vae/--text-encoder/--tokenizer "
        "[--clip-vision]). Settings left out use the model's defaults.",
    )
    src = p.add_argument_group("model source (one of)")
    src.add_argument("--tiny", choices=["t2v", "i2v"], help="the tiny random pipeline (built in code, cached in $EMOVID_CACHE)")
    src.add_argument("--diffusers", metavar="DIR", help="a Wan2.1 diffusers folder (model_index.json, transformer/, vae/, ...)")
    add_single_file_args(src)
    src.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    src.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    src.add_argument("--offload", default="auto", help="auto, none, model, sequential (GPU only)")
    g = p.add_argument_group("generation")
    g.add_argument("--caption", default="", help="what happens in the video")
    g.add_argument("--emotion", default="none", help="one of the eight emotions, or none (caption alone)")
    g.add_argument("--intensity", type=float, default=None, help="emotion intensity 0..2 (1 = the paper's prompt)")
    g.add_argument("--image", default=None, help="start image for I2V models")
    g.add_argument("--lora", action="append", default=[], metavar="PATH[:STRENGTH]", help="LoRA to apply (repeatable)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=None)
    g.add_argument("--frames", type=int, default=None, help="4n+1")
    g.add_argument("--width", type=int, default=None, help="multiple of 16")
    g.add_argument("--height", type=int, default=None, help="multiple of 16")
    g.add_argument("--guidance", type=float, default=None)
    g.add_argument("--shift", type=float, default=None, help="flow shift")
    g.add_argument("--negative", default=None, help="negative prompt (default: Wan2.1's standard one)")
    g.add_argument("--add-opposite", action="store_true", help="append the opposite-valence emotions to the negative prompt")
    o = p.add_argument_group("output")
    o.add_argument("--out", default="output/emovid_wan.mp4", help="video file to write (.mp4, .webm, .gif, .webp)")
    o.add_argument("--fps", type=float, default=16.0, help="frame rate of the written video (Wan2.1: 16)")
    o.add_argument("--json", dest="json_out", default=None, help="also write a JSON summary (prompts, settings, timing)")
    o.add_argument("--force", action="store_true", help="replace an existing --out/--json file")
    p.set_defaults(func=_run)


def parse_lora(spec: str, index: int) -> tuple[str, str, float]:
    """``PATH[:STRENGTH]`` -> (path, adapter name, strength); a Windows drive colon is not a separator."""
    from pathlib import Path

    path, strength = spec, 1.0
    head, sep, tail = spec.rpartition(":")
    if sep and head and not tail.startswith(("/", "\\")):
        try:
            strength = float(tail)
            path = head
        except ValueError:
            pass
    if not Path(path).is_file():
        raise FileNotFoundError(f"--lora {spec!r}: file {path!r} not found")
    return path, f"lora{index}_{Path(path).stem}".replace(".", "_"), strength


def _run(args) -> int:
    import os
    from pathlib import Path

    from ...atomic import check_outputs, write_text
    from ...video_io import write_video
    from ...wan.generation import check_settings, generate
    from ...wan.loading import load_pipeline

    if args.models:
        os.environ["EMOVID_MODELS_DIR"] = str(Path(args.models).resolve())
    given = [name for name, v in (("--tiny", args.tiny), ("--diffusers", args.diffusers), ("--transformer", args.transformer)) if v]
    if len(given) != 1:
        raise ValueError(f"pick exactly one model source: --tiny t2v|i2v, --diffusers DIR or --transformer FILE (+ --vae ...); "
                         f"got {', '.join(given) or 'none'}")
    # Everything that can be checked without the model is checked before the (slow) load.
    check_settings(frames=args.frames, width=args.width, height=args.height, steps=args.steps, guidance=args.guidance,
                   shift=args.shift, seed=args.seed)
    if args.image is not None and not Path(args.image).is_file():
        raise FileNotFoundError(f"--image {args.image!r} not found")
    stack = [parse_lora(s, i) for i, s in enumerate(args.lora)]
    inputs = [args.image, args.transformer, args.vae, args.text_encoder, args.clip_vision, *(s[0] for s in stack)]
    check_outputs([o for o in (args.out, args.json_out) if o], inputs=[i for i in inputs if i], force=args.force)
    source = f"tiny-{args.tiny}" if args.tiny else "diffusers folder" if args.diffusers else "single files"
    handle = load_pipeline(source, folder=args.diffusers, transformer=args.transformer, vae=args.vae, text_encoder=args.text_encoder,
                           tokenizer=args.tokenizer, image_encoder=args.clip_vision, variant=args.variant, dtype=args.dtype,
                           device=args.device, offload=args.offload)
    print(handle.summary(), flush=True)
    result = generate(handle, caption=args.caption, emotion=args.emotion, image=args.image, lora_stack=stack or None, seed=args.seed,
                      steps=args.steps, frames=args.frames, width=args.width, height=args.height, guidance=args.guidance,
                      shift=args.shift, negative=args.negative, intensity=args.intensity, add_opposite=args.add_opposite)
    out = write_video(result.frames, args.out, args.fps)
    print(f"prompt: {result.prompt}")
    print(result.summary())
    print(f"wrote {out}")
    if args.json_out:
        summary = {
            "file": str(out), "prompt": result.prompt, "negative_prompt": result.negative_prompt, "emotion": result.emotion,
            "intensity": result.intensity, "seed": result.seed, "steps": result.steps, "frames": result.num_frames,
            "width": result.width, "height": result.height, "guidance": result.guidance, "shift": result.shift,
            "loras": [str(x) for x in result.loras], "seconds": result.seconds, "seconds_per_step": result.seconds_per_step,
            "model": handle.summary(),
        }
        write_text(args.json_out, json.dumps(summary, indent=2, ensure_ascii=False))
    return 0
