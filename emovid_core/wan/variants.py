"""THE Wan variant table: one row per released model, used by loading, detection and LoRA validation alike.

Rows live in ``emovid_core/data/wan/variants.json`` (shape numbers, names, defaults) next to the configs of the
released models (T2V 1.3B, T2V 14B, I2V 14B 480P/720P), so loading never asks a hub for a config. The Wan2.2
rows (A14B high-/low-noise experts, TI2V-5B) have no config folder: they are detected and LoRAs are checked
against them, but no pipeline is built (:attr:`Variant.loadable`). Everything that
needs a variant's facts reads a :class:`Variant`: the loader (:func:`match_variant`), LoRA validation
(``ShapeSpec.from_variant`` -> :meth:`Variant.param_shapes`), ``emovid lora inspect --check`` and the width names in
messages (:func:`width_name`). A new model generation (Wan2.2 A14B experts, TI2V-5B) is new rows: ``generation``,
``size``, ``out_dim``, ``image_branch`` and ``expert`` carry what tells them apart. The tiny test variants are
registered by :mod:`emovid_core.wan.tiny` with their own config folders (written at build time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from . import dit_keys

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "wan"

# Components whose configs a variant provides, and the file each config folder holds.
CONFIG_FILES = {
    "transformer": "config.json",
    "vae": "config.json",
    "scheduler": "scheduler_config.json",
    "text_encoder": "config.json",
    "image_encoder": "config.json",
    "image_processor": "preprocessor_config.json",
}


@dataclass(frozen=True)
class Variant:
    """One row of the variant table: the shape-defining numbers of a Wan DiT and what loading it needs."""

    name: str
    kind: str  # "t2v" or "i2v"
    label: str
    dim: int
    in_dim: int
    ffn_dim: int
    num_layers: int
    out_dim: int = dit_keys.OUT_DIM  # latent channels out (Wan2.1 16; Wan2.2 TI2V-5B 48)
    image_branch: bool | None = None  # CLIP img_emb + image cross-attention; None = Wan2.1's rule (kind i2v)
    generation: str = "Wan2.1"
    size: str = ""  # "1.3B", "14B": with ``generation`` the name a width goes by in messages
    expert: str = ""  # "" or, for a two-expert model (Wan2.2 A14B), "high_noise" / "low_noise"
    aliases: tuple[str, ...] = ()  # other accepted names (case-insensitive), e.g. the LoRA check's "i2v-14B"
    defaults: dict = field(default_factory=dict, hash=False, compare=False)
    # component -> folder, or a function giving it: the tiny variants' folders live in a cache whose location is
    # decided when a config is read ($EMOVID_CACHE may change after registration), never captured up front.
    config_dirs: dict = field(default_factory=dict, hash=False, compare=False)
    comfy_file: str = ""
    hf_repo: str = ""
    tiny: bool = False

    @property
    def loadable(self) -> bool:
        """The pack can build this variant's pipeline (it ships its transformer config); Wan2.2 rows are detected
        and checked against LoRAs only."""
        return "transformer" in self.config_dirs

    @property
    def expert_name(self) -> str:
        """``high-noise`` / ``low-noise`` for a two-expert model's row, else ''."""
        return self.expert.replace("_", "-")

    def config_dir(self, component: str) -> Path:
        if not self.loadable and self.generation != "Wan2.1":
            raise ValueError(f"{self.label} ({self.name}) is recognised, but the pack builds Wan2.1 pipelines only: "
                             "it detects Wan2.2 models and checks LoRAs against them; load a Wan2.1 model to generate")
        if component not in self.config_dirs:
            raise KeyError(f"variant {self.name!r} has no {component} config")
        folder = self.config_dirs[component]
        return Path(folder() if callable(folder) else folder)

    def config(self, component: str) -> dict:
        return json.loads((self.config_dir(component) / CONFIG_FILES[component]).read_text())

    def describe_shapes(self) -> str:
        out = "" if self.out_dim == dit_keys.OUT_DIM else f", out_dim {self.out_dim}"
        return f"dim {self.dim}, in_dim {self.in_dim}, ffn_dim {self.ffn_dim}, {self.num_layers} layers{out}"

    @property
    def i2v(self) -> bool:
        return self.kind == "i2v"

    @property
    def has_image_branch(self) -> bool:
        return self.i2v if self.image_branch is None else self.image_branch

    @property
    def num_heads(self) -> int:
        return self.dim // dit_keys.HEAD_DIM

    @property
    def family(self) -> str:
        """``Wan2.1 14B``: the model a LoRA for this width was trained on."""
        return f"{self.generation} {self.size}".strip()

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every original-layout DiT parameter of this variant, name -> shape, without any weights."""
        return dit_keys.param_shapes(self.dim, self.ffn_dim, self.num_layers, self.in_dim, self.out_dim,
                                     self.has_image_branch)

    @classmethod
    def custom(cls, dim: int, ffn_dim: int, num_layers: int, in_dim: int = 16, name: str = "custom") -> "Variant":
        """A Wan2.1-style DiT of any size (tests, benchmarks, detected shapes that match no row)."""
        kind = "i2v" if in_dim == 36 else "t2v"
        return cls(name=name, kind=kind, label=f"{name} Wan2.1 {kind.upper()} DiT ({width_name(dim)})", dim=dim,
                   in_dim=in_dim, ffn_dim=ffn_dim, num_layers=num_layers)


_EXTRA: dict[str, Variant] = {}


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Variant]:
    table = json.loads((DATA_DIR / "variants.json").read_text())["variants"]
    out = {}
    for name, v in table.items():
        dirs = {c: DATA_DIR / c for c in CONFIG_FILES if c != "transformer"}
        dirs["transformer"] = DATA_DIR / "transformer" / name
        if not dirs["transformer"].is_dir():  # a row the pack detects but does not load (Wan2.2)
            dirs = {}
        elif v["kind"] != "i2v":
            dirs.pop("image_encoder")
            dirs.pop("image_processor")
        out[name] = Variant(
            name=name, kind=v["kind"], label=v["label"], dim=v["dim"], in_dim=v["in_dim"], ffn_dim=v["ffn_dim"],
            num_layers=v["num_layers"], out_dim=v.get("out_dim", dit_keys.OUT_DIM), image_branch=v.get("image_branch"),
            generation=v["generation"], size=v["size"], expert=v.get("expert", ""), aliases=tuple(v.get("aliases", ())),
            defaults=dict(v.get("defaults", {})), config_dirs=dirs, comfy_file=v.get("comfy_file", ""),
            hf_repo=v.get("hf_repo", ""),
        )
    return out


def register_variant(variant: Variant) -> None:
    """Add a variant (the tiny test models) to the registry used by detection and ``get_variant``."""
    _EXTRA[variant.name] = variant


def shipped_variant_names(loadable: bool = False) -> list[str]:
    """The table's rows; ``loadable=True``: only those the pack can build a pipeline for (the loader's choices)."""
    return [n for n, v in _shipped().items() if v.loadable or not loadable]


def all_variants() -> dict[str, Variant]:
    if not any(v.tiny for v in _EXTRA.values()):
        # The tiny variants are always known by name, even before the tiny models are built.
        from . import tiny

        tiny.register_tiny_variants()
    return {**_shipped(), **_EXTRA}


def find_variant(name: str) -> Variant | None:
    """The variant called ``name`` or one of its aliases, case-insensitively (``t2v-1.3B`` = ``t2v-1.3b``); else None."""
    variants = all_variants()
    if name in variants:
        return variants[name]
    want = name.strip().lower()
    for v in variants.values():
        if want == v.name.lower() or want in (a.lower() for a in v.aliases):
            return v
    return None


def get_variant(name: str) -> Variant:
    v = find_variant(name)
    if v is None:
        raise ValueError(f"unknown Wan variant {name!r}; known variants: {', '.join(all_variants())} (or 'auto' to detect it)")
    return v


def width_name(dim: int) -> str:
    """Human name of a model width from the table: "Wan2.1 1.3B (dim 1536)", or "custom width 256"."""
    families = list(dict.fromkeys(v.family for v in all_variants().values() if v.dim == dim and not v.tiny))
    return f"{' / '.join(families)} (dim {dim})" if families else f"custom width {dim}"


@dataclass
class TransformerArch:
    """What the tensors of a Wan transformer file say about its architecture."""

    layout: str  # "original" (Wan / ComfyUI names) or "diffusers"
    dim: int
    in_dim: int
    ffn_dim: int
    num_layers: int
    out_dim: int
    text_dim: int
    has_image_branch: bool
    extras: list[str]  # architecture features Wan2.1 T2V/I2V do not have (VACE, FLF2V, ...)

    @property
    def kind(self) -> str:
        return "i2v" if self.has_image_branch or self.in_dim == 36 else "t2v"

    def describe(self) -> str:
        s = f"dim {self.dim}, in_dim {self.in_dim}, ffn_dim {self.ffn_dim}, {self.num_layers} layers"
        s += f", out_dim {self.out_dim}" if self.out_dim not in (0, dit_keys.OUT_DIM) else ""
        s += ", image branch (img_emb)" if self.has_image_branch else ", no image branch"
        return s


def transformer_arch(shapes: dict[str, list], source: str = "the transformer file") -> TransformerArch:
    """Detect a Wan transformer's architecture from ``{key: shape}`` (original or diffusers names)."""
    s = dit_keys.strip_prefixes(shapes)
    if "patch_embedding.weight" not in s:
        sample = ", ".join(list(shapes)[:5])
        raise ValueError(
            f"{source} is not a Wan2.1 transformer: it has no 'patch_embedding.weight' tensor (first keys: {sample}). "
            "Pick the diffusion model file (e.g. wan2.1_t2v_1.3B_fp16.safetensors from ComfyUI's models/diffusion_models)."
        )
    pe = s["patch_embedding.weight"]
    blocks = {int(k.split(".")[1]) for k in s if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    if "head.modulation" in s or "blocks.0.self_attn.q.weight" in s:
        layout = "original"
        ffn = s.get("blocks.0.ffn.0.weight", [0])[0]
        out_rows = s.get("head.head.weight", [0])[0]
        text_dim = s.get("text_embedding.0.weight", [0, 0])[1]
        has_img = "img_emb.proj.0.bias" in s or "img_emb.proj.1.weight" in s
    else:
        layout = "diffusers"
        ffn = s.get("blocks.0.ffn.net.0.proj.weight", [0])[0]
        out_rows = s.get("proj_out.weight", [0])[0]
        text_dim = s.get("condition_embedder.text_embedder.linear_1.weight", [0, 0])[1]
        has_img = any(k.startswith("condition_embedder.image_embedder.") for k in s)
    extras = []
    if any(k.startswith("vace_") for k in s):
        extras.append("VACE (vace_patch_embedding)")
    if "img_emb.emb_pos" in s or "condition_embedder.image_embedder.pos_embed" in s:
        extras.append("FLF2V (img_emb.emb_pos)")
    if out_rows and out_rows // 4 not in {v.out_dim for v in all_variants().values()}:
        extras.append(f"out_dim {out_rows // 4} (Wan2.1 and Wan2.2 A14B have 16, Wan2.2 TI2V-5B 48)")
    if any(k.startswith(("face_adapter", "motion_encoder", "audio", "control_adapter")) for k in s):
        extras.append("Animate/S2V/camera adapters")
    return TransformerArch(
        layout=layout, dim=int(pe[0]), in_dim=int(pe[1]), ffn_dim=int(ffn), num_layers=len(blocks),
        out_dim=int(out_rows) // 4 if out_rows else 0, text_dim=int(text_dim), has_image_branch=has_img, extras=extras,
    )


def match_variant(arch: TransformerArch, requested: str = "auto", source: str = "the transformer file") -> Variant:
    """The variant whose transformer matches ``arch``; ``requested`` (a name) is checked instead of guessed.

    720P and 480P I2V share one architecture: auto-detection returns 480P (only the default size differs). Wan2.2
    T2V A14B's experts have Wan2.1 T2V 14B's shapes exactly: auto-detection returns the first row (Wan2.1), a name
    (``t2v-a14b-low-noise``) says which expert it is.
    """
    if arch.extras:
        raise ValueError(
            f"{source} is not a plain Wan2.1 T2V/I2V transformer: found {', '.join(arch.extras)}. "
            f"Supported: {', '.join(v.label for v in _shipped().values())}."
        )
    variants = all_variants()

    def fits(v: Variant) -> bool:
        # The image branch tells Wan2.1 I2V (CLIP img_emb + k_img/v_img) from Wan2.2 I2V A14B (none), same blocks.
        return (v.dim, v.in_dim, v.ffn_dim, v.num_layers) == (arch.dim, arch.in_dim, arch.ffn_dim, arch.num_layers) and (
            v.kind == arch.kind) and arch.out_dim in (0, v.out_dim) and v.has_image_branch == arch.has_image_branch

    if requested and requested != "auto":
        v = get_variant(requested)
        if not fits(v):
            raise ValueError(
                f"variant mismatch: {source} has {arch.describe()} ({arch.kind.upper()}), but variant {requested!r} "
                f"expects {v.describe_shapes()} ({v.kind.upper()}). Use variant 'auto' or pick the matching file."
            )
        return v
    for v in variants.values():
        if fits(v):
            return v
    known = "; ".join(f"{n}: {v.describe_shapes()}" for n, v in variants.items())
    raise ValueError(f"{source} has {arch.describe()}, which matches no known Wan variant ({known})")


def detect_variant(shapes: Mapping[str, tuple[int, ...]], source: str = "the transformer") -> Variant:
    """The table's row for these parameter shapes (original or diffusers names), else a :meth:`Variant.custom`
    with the detected numbers (a tiny test model, a pruned DiT)."""
    arch = transformer_arch({k: list(v) for k, v in shapes.items()}, source=source)
    if arch.extras:
        return match_variant(arch, source=source)  # raises, naming the features Wan2.1 does not have
    try:
        return match_variant(arch, source=source)
    except ValueError:
        return Variant.custom(arch.dim, arch.ffn_dim, arch.num_layers, arch.in_dim, name="detected")
