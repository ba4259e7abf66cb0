"""The single-file model-source options shared by the commands that load Wan2.1 (``generate``, ``train``)."""

from __future__ import annotations


def add_single_file_args(group) -> None:
    """``--transformer --vae --text-encoder --tokenizer --clip-vision --variant --models`` on an argument group."""
    group.add_argument("--transformer", metavar="FILE", help="single files: diffusion model (name in models/diffusion_models or a path)")
    group.add_argument("--vae", metavar="FILE", help="single files: Wan2.1 VAE (wan_2.1_vae.safetensors)")
    group.add_argument("--text-encoder", metavar="FILE", help="single files: umt5-xxl fp16/bf16 (scaled fp8 is refused)")
    group.add_argument("--tokenizer", metavar="DIR", help="single files: folder with umt5's tokenizer.json")
    group.add_argument("--clip-vision", metavar="FILE", help="single files, I2V: clip_vision_h.safetensors")
    group.add_argument("--variant", default="auto", help="auto (detect from shapes) or t2v-1.3b, t2v-14b, i2v-14b-480p, i2v-14b-720p")
    group.add_argument("--models", default=None, help="models folder with ComfyUI-style subfolders for file names")
