"""``emovid demo``: the whole EmoVid story headless, on built-in defaults.

synthetic EmoVid sample → sample a clip of an emotion → its frame attributes → the paper's emotion prompt →
I2V on the tiny Wan2.1 pipeline from the clip's first frame with a tiny emotion LoRA (DiffSynth format, as the
paper's trainer writes it) → save the video → analyse the result and place it among the dataset's per-emotion
statistics → JSON report + plots.

The tiny model has random weights, so the video is noise: the demo proves the pipeline runs end to end and shows
what each output looks like. Point it at real weights with ``--wan-folder`` (a diffusers Wan2.1 I2V folder) and
an EmoVid LoRA with ``--lora``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_text

TINY_NOTE = (
    "NOTE: the built-in Wan2.1 model is tiny and has RANDOM weights, so the generated video is noise. "
    "It shows that every step runs; for real videos pass --wan-folder <diffusers Wan2.1-I2V-14B-480P folder> "
    "and --lora <your EmoVid LoRA .safetensors> (see docs/generation.md#where-the-weights-come-from)."
)


@dataclass
class DemoResult:
    out: Path
    report_path: Path
    files: dict[str, Path] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    seconds: float = 0.0


def write_tiny_emotion_lora(path: Path, transformer_config, seed: int = 0) -> Path:
    """A random rank-4 LoRA shaped for a (tiny) diffusers Wan transformer config, written in DiffSynth-Studio's key
    format (the paper's trainer); kept when it already exists. ``transformer_config`` is a config object or dict."""
    from ..lora.formats import write_lora
    from ..lora.testing import random_lora

    cfg = transformer_config if isinstance(transformer_config, dict) else dict(transformer_config)
    if not path.is_file():
        lora = random_lora(dim=cfg["num_attention_heads"] * cfg["attention_head_dim"], ffn=cfg["ffn_dim"],
                           layers=cfg["num_layers"], rank=4, alpha=None, seed=seed, scale=0.2)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_lora(lora, path, "diffsynth", metadata={"emovid_demo": "random tiny LoRA, not trained"})
    return path


def run_demo(
    out: str | Path = "emovid_demo",
    emotion: str = "fear",
    seed: int = 0,
    clip_type: str = "animation",
    steps: int | None = None,
    frames: int | None = None,
    wan_folder: str | None = None,
    lora: str | None = None,
    lora_strength: float = 1.0,
    log=print,
) -> DemoResult:
    from .. import attributes, prompts, video_io
    from ..dataset import load_dataset
    from ..dataset.decode import DecodeOptions, decode_clip
    from ..dataset.filters import Filter, apply_filter
    from ..dataset.plots import save_plots
    from ..dataset.sampling import sample_random
    from ..dataset.stats import compute_stats
    from ..dataset.synthetic import make_sample
    from ..emotions import get_emotion

    t0 = time.perf_counter()
    emotion = get_emotion(emotion).name
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    # 1. The synthetic EmoVid-format sample (reused when already complete).
    sample = make_sample(out / "emovid_sample", seed=0)
    log(f"[1/8] EmoVid sample: {sample.clips} clips in {sample.root} ({'reused' if sample.reused else 'written'})")
    ds = load_dataset(sample.root)
    if any(c.brightness is None for c in ds.clips):
        # The sample ships captions and labels only; the indexer measures the paper's attributes (resumable).
        from ..dataset.indexer import index_dataset

        idx = index_dataset(sample.root, progress=False)
        log(f"      {idx}")
        ds = load_dataset(sample.root, idx.output)

    # 2. A clip of the emotion, seeded.
    chosen, _trace = apply_filter(ds.clips, Filter(emotions=[emotion], types=[clip_type]))
    clip = sample_random(chosen, 1, seed=seed)[0]
    decoded = decode_clip(ds, clip, DecodeOptions())
    log(f"[2/8] sampled {clip.clip_id} ({clip.type}, {clip.emotion}): {len(decoded.frames)} frames at {decoded.fps:g} fps")

    # 3. Its frame attributes (paper Eqs. 1-3 + per-frame curves).
    src_report = attributes.analyze(decoded.frames, fps=decoded.fps, source=str(ds.clip_path(clip)), progress=False)
    files["source_attributes_plot"] = attributes.save_plot(src_report, out / "source_attributes.png")
    log(f"[3/8] source clip  {src_report.summary_line(clip.clip_id)}")

    # 4. The paper's prompt.
    prompt = prompts.build_prompt(clip.caption, emotion)
    log(f"[4/8] prompt: {prompt}")

    # 5. I2V from the first frame with an emotion LoRA.
    from ..wan import generate
    from ..wan.loading import load_pipeline
    from ..wan.tiny import load_tiny_pipeline

    if wan_folder:
        handle = load_pipeline("diffusers folder", folder=wan_folder)
    else:
        handle = load_tiny_pipeline("i2v")
    lora_path = Path(lora) if lora else write_tiny_emotion_lora(
        out / "loras" / f"emovid_{emotion}_tiny_diffsynth.safetensors", handle.pipe.transformer.config, seed)
    first = video_io.frames_to_image(decoded.frames[:1])
    width = height = None  # a real model uses its variant's default size (e.g. 832x480)
    if not wan_folder:
        # The tiny model renders at the source clip's size (Wan needs multiples of 16), 9 frames unless told.
        height, width = (max(16, d // 16 * 16) for d in decoded.frames.shape[1:3])
        frames = frames or 9
    import torch

    threads = torch.get_num_threads()
    if not wan_folder:
        # The tiny model is all overhead: extra threads only fight over the cores (up to 10x slower on 2 cores).
        torch.set_num_threads(1)
    try:
        result = generate(handle, caption=clip.caption, emotion=emotion, image=first, seed=seed, steps=steps, frames=frames,
                          width=width, height=height,
                          lora_stack=[(str(lora_path), f"emovid_{emotion}", float(lora_strength))])
    finally:
        torch.set_num_threads(threads)
    log(f"[5/8] generated {result.num_frames} frames {result.width}x{result.height} in {result.seconds:.1f} s "
        f"on {handle.summary()}")

    # 6. Save the video.
    video_path = video_io.write_video(result.frames, out / f"generated_{emotion}.mp4", fps=16.0)
    files["video"] = video_path
    log(f"[6/8] saved {video_path}")

    # 7. Analyse the result and compare it with the dataset's per-emotion statistics.
    gen_report = attributes.analyze(result.frames, fps=16.0, source=str(video_path), progress=False)
    files["generated_attributes_plot"] = attributes.save_plot(gen_report, out / "generated_attributes.png")
    stats = compute_stats(ds.clips)
    per_emotion = attributes.emotion_stats_from_dataset(stats)
    comparison = attributes.compare_to_emotion_stats(gen_report.clip, per_emotion)
    src_comparison = attributes.compare_to_emotion_stats(src_report.clip, per_emotion)
    for path in save_plots(stats, out / "dataset_plots", force=True):  # the demo refreshes its own folder
        files[path.stem] = path
    log(f"[7/8] generated {gen_report.summary_line('video')}; nearest emotion by attributes: "
        f"{comparison['nearest']} (source clip: {src_comparison['nearest']}, target: {emotion})")

    # 8. The report.
    report = {
        "emotion": emotion,
        "seed": seed,
        "clip": {"id": clip.clip_id, "type": clip.type, "caption": clip.caption, "path": str(ds.clip_path(clip))},
        "prompt": result.prompt,
        "negative_prompt": result.negative_prompt,
        "generation": {"model": handle.summary(), "steps": result.steps, "frames": result.num_frames,
                       "width": result.width, "height": result.height, "guidance": result.guidance, "shift": result.shift,
                       "loras": [str(x) for x in result.loras], "lora_file": str(lora_path), "seconds": result.seconds,
                       "tiny_random_weights": not wan_folder},
        "source_attributes": src_report.to_dict(),
        "generated_attributes": gen_report.to_dict(),
        "comparison_with_dataset": {"generated": comparison, "source": src_comparison},
        "dataset_summary": {"n": stats["n"], "counts": stats["counts"]},
        "files": {k: str(v) for k, v in files.items()},
        "note": TINY_NOTE if not wan_folder else "",
    }
    report_path = out / "demo_report.json"
    write_text(report_path, json.dumps(report, indent=1, default=str))
    seconds = time.perf_counter() - t0
    log(f"[8/8] report: {report_path}")
    return DemoResult(out=out, report_path=report_path, files=files, report=report, seconds=seconds)
