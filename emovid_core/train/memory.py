"""How much memory a training run needs, estimated before the first step, and the check that refuses early.

Training holds only the transformer (the encoders ran before, their outputs are cached): base weights in the
training dtype, LoRA weights + gradients + AdamW's two moments in fp32, and activations. With gradient
checkpointing each block keeps only its input ([tokens, dim]) plus one block's internals while it is recomputed;
without it every block keeps its internals. The per-block factor (14·dim + 3·ffn values per token) counts the
attention projections, norms, modulation and the FFN hidden state; it is an estimate, which
``benchmarks/check_train_gpu.py`` measures against a real step (peak CUDA memory) on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
OVERHEAD = 1.5 * GIB  # CUDA context, allocator slack, text embeddings and latents of one sample


@dataclass
class MemoryEstimate:
    weights: int
    lora: int
    activations: int
    overhead: int
    tokens: int

    @property
    def total(self) -> int:
        return self.weights + self.lora + self.activations + self.overhead

    def describe(self) -> str:
        return (f"~{self.total / GIB:.1f} GiB (weights {self.weights / GIB:.1f}, LoRA+AdamW {self.lora / GIB:.2f}, "
                f"activations {self.activations / GIB:.1f} for {self.tokens} tokens, overhead {self.overhead / GIB:.1f})")


def transformer_params(config: dict) -> int:
    """Parameters of a ``WanTransformer3DModel`` with this config, counted from diffusers' module layout
    (exact: the tests compare it with the tiny models; building the 14B model even on the meta device takes ~15 s)."""
    dim = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    ffn, in_ch, text = int(config["ffn_dim"]), int(config["in_channels"]), int(config["text_dim"])
    freq, out_ch = int(config.get("freq_dim", 256)), int(config.get("out_channels") or 16)
    patch = 1
    for k in config.get("patch_size", (1, 2, 2)):
        patch *= int(k)
    block = 8 * (dim * dim + dim) + 4 * dim + 2 * dim + (dim * ffn + ffn) + (ffn * dim + dim) + 6 * dim
    added = config.get("added_kv_proj_dim")
    if added:
        block += 2 * (int(added) * dim + dim) + dim  # attn2.add_k_proj / add_v_proj + norm_added_k
    top = (in_ch * dim * patch + dim) + (freq * dim + dim) + (dim * dim + dim) + (dim * 6 * dim + 6 * dim)
    top += (text * dim + dim) + (dim * dim + dim) + (dim * out_ch * patch + out_ch * patch) + 2 * dim
    img = config.get("image_dim")
    if img:
        img = int(img)
        top += 2 * img + (img * img + img) + (img * dim + dim) + 2 * dim  # image_embedder norm1, ff, norm2
    return int(config["num_layers"]) * block + top


def lora_params(dim: int, ffn_dim: int, num_layers: int, rank: int) -> int:
    """LoRA parameters on the 10 DiffSynth target linears per block (8 dim→dim, ffn.0 dim→ffn, ffn.2 ffn→dim)."""
    return num_layers * (8 * rank * (dim + dim) + 2 * rank * (dim + ffn_dim))


def estimate(*, params: int, dim: int, ffn_dim: int, num_layers: int, rank: int, frames: int, width: int, height: int,
             batch: int, dtype: str, checkpointing: bool) -> MemoryEstimate:
    b = _DTYPE_BYTES[dtype]
    tokens = ((frames - 1) // 4 + 1) * (height // 16) * (width // 16)
    weights = params * b
    lora = lora_params(dim, ffn_dim, num_layers, rank) * 4 * 4  # weight, grad, exp_avg, exp_avg_sq (fp32)
    block = tokens * (14 * dim + 3 * ffn_dim) * b
    acts = (num_layers * tokens * dim * b + block) if checkpointing else num_layers * block
    return MemoryEstimate(weights, lora, acts * batch, int(OVERHEAD), tokens)


def estimate_for(model, config) -> MemoryEstimate:
    """:func:`estimate` for a :class:`~emovid_core.train.models.ModelSource` and a :class:`TrainConfig`."""
    return estimate(params=transformer_params(model.transformer_config()), dim=model.dim, ffn_dim=model.ffn_dim,
                    num_layers=model.num_layers, rank=config.rank, frames=config.frames,
                    width=config.width, height=config.height, batch=config.batch, dtype=config.dtype,
                    checkpointing=config.gradient_checkpointing)


def available(device: str) -> tuple[int, str]:
    """(bytes free, where) on ``device``: CUDA free memory, or the machine's available RAM."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"free on {device}"
    from ..video_io import available_memory

    return int(available_memory()), "available RAM"


def check_fits(est: MemoryEstimate, device: str, config) -> str:
    """A line for the log; ValueError naming the options to change when the estimate exceeds what is free."""
    free, where = available(device)
    line = f"memory estimate {est.describe()}; {free / GIB:.1f} GiB {where}"
    if est.total > free:
        hints = []
        if not config.gradient_checkpointing:
            hints.append("turn gradient checkpointing back on (drop --no-gradient-checkpointing)")
        if config.dtype == "float32":
            hints.append("--dtype bfloat16")
        hints += [f"fewer --frames (now {config.frames})", f"a smaller --size (now {config.width}x{config.height})"]
        if config.batch > 1:
            hints.append(f"--batch 1 (now {config.batch}; use more processes with accelerate launch instead)")
        raise ValueError(f"training needs {line}: it will not fit; try " + ", ".join(hints)
                         + " (or pass --skip-memory-check if you know better)")
    return line
