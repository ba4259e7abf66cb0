"""The training recipe: every option with the EmoVid paper's (DiffSynth-Studio's) default, checked in one place.

Facts reproduced (DiffSynth-Studio at the paper's time; see docs/training.md#the-recipe):
LoRA rank 32, alpha = rank, on ``self_attn.{q,k,v,o}``, ``cross_attn.{q,k,v,o}``, ``ffn.0``, ``ffn.2`` of every block
(never the I2V ``k_img``/``v_img``); AdamW lr 1e-4, weight decay 0.01, ``ConstantLR(optimizer)`` with torch's defaults
(lr/3 for the first 5 steps, then lr); batch 1; 3 epochs; bf16 base weights with fp32 LoRA weights; gradient
checkpointing; flow matching with shift 5 over 1000 training timesteps and the bell-shaped timestep weight.

What the paper does not say is an option with a paper-like default: resolution (832×480), frame count (81),
dataset repeats (1) and the training prompt (caption + the paper's emotion sentence, as ``emovid dataset export``
writes it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

# The DiT modules DiffSynth's target_modules="q,k,v,o,ffn.0,ffn.2" matches, in diffusers names (self- and
# cross-attention of every block; the I2V image projections add_k_proj/add_v_proj are deliberately not matched).
TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
TARGET_REGEX = r"blocks\.\d+\.(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)|blocks\.\d+\.ffn\.net\.(0\.proj|2)"

TASKS = ("auto", "t2v", "i2v")
DTYPES = ("bfloat16", "float32", "float16")
LR_SCHEDULES = ("diffsynth", "constant")
SHORT_CLIPS = ("cut", "skip")
WAN_MULTIPLE = 16


@dataclass
class TrainConfig:
    """Options of one training run. ``steps`` > 0 stops after that many optimizer steps (epochs still number them)."""

    task: str = "auto"  # t2v / i2v; auto = the model's kind
    rank: int = 32
    alpha: float | None = None  # None = rank (DiffSynth: no alpha stored, scale 1)
    lr: float = 1e-4
    weight_decay: float = 0.01  # DiffSynth's default (= torch AdamW's)
    lr_schedule: str = "diffsynth"  # torch ConstantLR(optimizer) defaults: lr/3 for 5 steps; "constant": lr throughout
    epochs: int = 3
    steps: int = 0
    batch: int = 1  # per process; the global batch is batch × processes
    repeat: int = 1  # dataset repeats per epoch (DiffSynth's dataset_repeat)
    frames: int = 81
    width: int = 832
    height: int = 480
    short_clips: str = "cut"  # a clip shorter than `frames`: cut to its largest 4k+1 (DiffSynth) or skip it
    emotion_sentence: bool = True  # prompt = caption + the paper's emotion sentence; False: the caption alone
    template: str | None = None  # prompt template (default: the paper's)
    seed: int = 0
    dtype: str = "bfloat16"  # base weights; LoRA weights and the optimizer are always float32
    gradient_checkpointing: bool = True
    shift: float = 5.0
    train_timesteps: int = 1000
    save_every: int = 0  # also write step-N.safetensors every N steps (0: only epoch-K)
    save_dtype: str = "float32"  # dtype of the written LoRA files (DiffSynth upcasts LoRA weights to fp32)
    comfy_copy: bool = False  # also write <name>.comfy.safetensors (diffusion_model.* keys + alpha)
    threads: int = 0  # torch CPU threads (0: 1 for tiny models, torch's default otherwise)
    sample_emotions: tuple[str, ...] = field(default_factory=tuple)  # sample videos per checkpoint (empty: none)
    sample_caption: str = "A person in a room."
    sample_steps: int = 20

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)

    def check(self) -> "TrainConfig":
        """Raise ValueError naming the first bad option (and the value that would work)."""
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(self.task in TASKS, f"--task {self.task!r} is not one of {', '.join(TASKS)}")
        need(isinstance(self.rank, int) and 1 <= self.rank <= 1024, f"--rank {self.rank} must be a whole number in 1..1024 (paper: 32)")
        need(self.alpha is None or (math.isfinite(self.alpha) and self.alpha > 0), f"--alpha {self.alpha} must be positive (paper: = rank)")
        need(math.isfinite(self.lr) and 0 < self.lr < 1, f"--lr {self.lr} must be in (0, 1) (paper: 1e-4)")
        need(math.isfinite(self.weight_decay) and self.weight_decay >= 0, f"--weight-decay {self.weight_decay} must be >= 0")
        need(self.lr_schedule in LR_SCHEDULES, f"--lr-schedule {self.lr_schedule!r} is not one of {', '.join(LR_SCHEDULES)}")
        need(self.epochs >= 1, f"--epochs {self.epochs} must be at least 1 (paper: 3)")
        need(self.steps >= 0, f"--steps {self.steps} must be 0 (train all epochs) or more")
        need(self.batch >= 1, f"--batch {self.batch} must be at least 1 (paper: 1)")
        need(self.repeat >= 1, f"--repeat {self.repeat} must be at least 1")
        need(self.frames >= 1 and (self.frames - 1) % 4 == 0,
             f"--frames {self.frames} must be 4k+1 (Wan2.1's VAE packs 4 frames per latent after the first), e.g. "
             f"{max(1, (self.frames - 1) // 4 * 4 + 1)} or {(max(self.frames, 1) - 1) // 4 * 4 + 5}")
        for name, v in (("width", self.width), ("height", self.height)):
            lo = max(WAN_MULTIPLE, v // WAN_MULTIPLE * WAN_MULTIPLE)
            need(v >= WAN_MULTIPLE and v % WAN_MULTIPLE == 0,
                 f"--size: {name} {v} is not a multiple of {WAN_MULTIPLE} (VAE 8× and DiT patch 2×); use {lo} or {lo + WAN_MULTIPLE}")
        need(self.short_clips in SHORT_CLIPS, f"--short-clips {self.short_clips!r} is not one of {', '.join(SHORT_CLIPS)}")
        need(self.dtype in DTYPES, f"--dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        need(self.save_dtype in ("float32", "bfloat16"), f"--save-dtype {self.save_dtype!r} is not float32 or bfloat16")
        need(math.isfinite(self.shift) and self.shift > 0, f"--shift {self.shift} must be positive (paper: 5)")
        need(self.train_timesteps >= 2, f"train_timesteps {self.train_timesteps} must be at least 2 (paper: 1000)")
        need(self.save_every >= 0, f"--save-every {self.save_every} must be 0 (epochs only) or more")
        need(self.threads >= 0, f"--threads {self.threads} must be 0 (auto) or more")
        need(self.sample_steps >= 1, f"--sample-steps {self.sample_steps} must be at least 1")
        if self.sample_emotions:
            from ..emotions import get_emotion

            self.sample_emotions = tuple(getattr(get_emotion(e), "name", e) for e in self.sample_emotions)
        if self.template is not None:
            from ..prompts import validate_template

            validate_template(self.template)
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sample_emotions"] = list(self.sample_emotions)
        d["lora_alpha"] = self.lora_alpha
        d["target_modules"] = list(TARGET_MODULES)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        if "sample_emotions" in kw:
            kw["sample_emotions"] = tuple(kw["sample_emotions"])
        return cls(**kw)


# Options that change the trained weights: a resumed run must use the same values as the run it continues.
RESUME_LOCKED = ("task", "rank", "alpha", "lr", "weight_decay", "lr_schedule", "batch", "repeat", "frames", "width", "height",
                 "short_clips", "emotion_sentence", "template", "seed", "dtype", "shift", "train_timesteps")


def parse_size(text: str) -> tuple[int, int]:
    """``832x480`` -> (832, 480), with an error naming the value."""
    try:
        w, h = (int(v) for v in str(text).lower().replace("×", "x").split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r} must be WIDTHxHEIGHT, e.g. 832x480") from None
    return w, h


def lr_factor(schedule: str, step: int) -> float:
    """The learning-rate multiplier at optimizer step ``step`` (0-based).

    "diffsynth": DiffSynth-Studio builds ``torch.optim.lr_scheduler.ConstantLR(optimizer)`` with torch's default
    arguments (factor 1/3, total_iters 5), so its first 5 steps run at lr/3. "constant": lr throughout.
    """
    if schedule == "diffsynth":
        return 1.0 / 3.0 if step < 5 else 1.0
    return 1.0
