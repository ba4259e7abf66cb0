"""A linear emotion probe on frozen CLIP vision features, trained by the pack on the dataset's train split.

Why a probe: ComfyUI users have ``clip_vision_h.safetensors`` (a vision tower without text), which cannot do
zero-shot; a multinomial logistic regression on its pooled features, fitted on EmoVid's own training clips,
can. Features: the vision tower's pooled output (post-layernorm CLS) of ``frames`` frames spread over the clip,
averaged; standardised with the training mean/std. Fit: full-batch L-BFGS on the cross-entropy plus an L2
penalty, deterministic for a seed. A stratified part of the training clips (``val_fraction``) is held out and
the probe's accuracy on it is reported; the benchmark (``test``) clips are never used.

File format (never pickle): ``<name>.safetensors`` holds ``weight [8, D]``, ``bias [8]``, ``feature_mean [D]``,
``feature_std [D]``; ``<name>.json`` beside it says what they mean (emotion order, the vision model, frames,
training data and held-out accuracy).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import runtime
from ..emotions import EMOTIONS

PROBE_FORMAT = "emovid-emotion-probe"
PROBE_VERSION = 1
TENSORS = ("weight", "bias", "feature_mean", "feature_std")


@dataclass
class LinearProbe:
    weight: np.ndarray  # [8, D]
    bias: np.ndarray  # [8]
    feature_mean: np.ndarray  # [D]
    feature_std: np.ndarray  # [D]
    vision: str  # the vision model the features came from (folder or clip_vision file)
    frames: int
    meta: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in TENSORS:
            h.update(np.ascontiguousarray(getattr(self, name), dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    def logits(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, np.float64) - self.feature_mean) / self.feature_std
        return z @ self.weight.T.astype(np.float64) + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        lg = self.logits(features)
        lg -= lg.max(axis=1, keepdims=True)
        e = np.exp(lg)
        return e / e.sum(axis=1, keepdims=True)


def fit(features: np.ndarray, labels: Sequence[int], l2: float = 1e-3, iters: int = 200, seed: int = 0):
    """(weight, bias, mean, std) of a multinomial logistic regression over the eight classes (see module doc)."""
    import torch

    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.int64)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"features {list(x.shape)} and {len(y)} labels do not match")
    mean = x.mean(0)
    std = x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    g = torch.Generator().manual_seed(int(seed))
    w = (torch.randn(len(EMOTIONS), x.shape[1], generator=g, dtype=torch.float64) * 0.01).requires_grad_(True)
    b = torch.zeros(len(EMOTIONS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=int(iters), line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w.T + b, yt) + float(l2) * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy(), mean, std


def save_probe(probe: LinearProbe, path: str | Path) -> tuple[Path, Path]:
    """Write ``path`` (safetensors) and its ``.json`` sidecar atomically; returns both paths."""
    import torch

    from ..atomic import save_safetensors, write_json

    path = Path(path)
    tensors = {n: torch.from_numpy(np.ascontiguousarray(getattr(probe, n), dtype=np.float32)) for n in TENSORS}
    save_safetensors(tensors, path, metadata={"format": PROBE_FORMAT, "version": str(PROBE_VERSION)})
    sidecar = sidecar_path(path)
    write_json(sidecar, {"format": PROBE_FORMAT, "version": PROBE_VERSION, "emotions": list(EMOTIONS), "vision": probe.vision,
                         "frames": probe.frames, "dim": probe.dim, "sha": probe.digest, **probe.meta})
    return path, sidecar


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def load_probe(path: str | Path) -> LinearProbe:
    """Read a probe written by :func:`save_probe`; refuses files whose sidecar or emotion order does not match."""
    from safetensors.numpy import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"probe {path} must be a .safetensors file written by `emovid eval train-probe`")
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise FileNotFoundError(f"probe {path} has no {sidecar.name} beside it (it says which vision model and emotion order "
                                "the weights belong to); copy both files together")
    meta = json.loads(sidecar.read_text())
    if meta.get("format") != PROBE_FORMAT:
        raise ValueError(f"{sidecar} is not an EmoVid emotion probe (format {meta.get('format')!r})")
    if meta.get("emotions") != list(EMOTIONS):
        raise ValueError(f"{sidecar} lists emotions {meta.get('emotions')}; the pack's order is {list(EMOTIONS)}")
    t = load_file(str(path))
    missing = [n for n in TENSORS if n not in t]
    if missing:
        raise ValueError(f"probe {path} lacks tensors {missing}")
    d = t["weight"].shape[1] if t["weight"].ndim == 2 else -1
    if t["weight"].shape != (len(EMOTIONS), d) or t["bias"].shape != (len(EMOTIONS),) or \
            t["feature_mean"].shape != (d,) or t["feature_std"].shape != (d,):
        raise ValueError(f"probe {path}: tensor shapes {({n: list(t[n].shape) for n in TENSORS})} are inconsistent")
    extra = {k: v for k, v in meta.items() if k not in ("format", "version", "emotions", "vision", "frames", "dim", "sha")}
    return LinearProbe(t["weight"].astype(np.float64), t["bias"].astype(np.float64), t["feature_mean"].astype(np.float64),
                       t["feature_std"].astype(np.float64), str(meta.get("vision", "")), int(meta.get("frames", 8)), extra)


# -------------------------------------------------------------------------------------------- training


@dataclass
class ProbeReport:
    path: Path
    sidecar: Path
    train: int
    val: int
    train_accuracy: float
    val_accuracy: float | None
    per_emotion_train: dict[str, int]

    def __str__(self) -> str:
        val = f"{self.val_accuracy * 100:.1f}% on {self.val} held-out training clips" if self.val_accuracy is not None else "no held-out clips"
        return (f"probe {self.path} (+ {self.sidecar.name}): fitted on {self.train} clips, train accuracy "
                f"{self.train_accuracy * 100:.1f}%, {val}")


def clip_features(encoder, files: Sequence[Path], frames: int, desc: str = "features") -> np.ndarray:
    """One feature per video: the mean pooled vision feature of ``frames`` frames spread over it."""
    from .classifiers import read_sampled

    out = []
    with runtime.progress_bar(len(files), desc) as bar:
        for f in files:
            runtime.check_interrupted()
            out.append(encoder.pooled(read_sampled(f, frames)).mean(0))
            bar.update(1)
    return np.stack(out)


def training_clips(ds) -> list:
    """The clips a probe may learn from: the ``train`` split, else every clip outside the benchmark split."""
    from ..dataset.sampling import TRAIN_SPLIT, benchmark_clips

    marked = [c for c in ds.clips if c.split == TRAIN_SPLIT]
    if marked:
        return marked
    bench = {c.clip_id for c in benchmark_clips(ds.clips)}
    return [c for c in ds.clips if c.clip_id not in bench]


def _stratified(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(int(seed))
    train, val = [], []
    for k in range(len(EMOTIONS)):
        idx = [i for i, y in enumerate(labels) if y == k]
        idx = [idx[i] for i in rng.permutation(len(idx))]
        n_val = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


def train_probe(dataset_root: str | Path, vision: str, out: str | Path, *, frames: int = 8, val_fraction: float = 0.2,
                l2: float = 1e-3, seed: int = 0, device: str = "auto", metadata: str | None = None) -> ProbeReport:
    """Fit a probe on the dataset's training clips with the vision model ``vision`` and save it to ``out``."""
    from ..dataset import load_dataset
    from .classifiers import load_encoder

    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction {val_fraction} must be in [0, 1)")
    if int(frames) < 1:
        raise ValueError(f"frames {frames} must be at least 1")
    ds = load_dataset(dataset_root, metadata)
    clips = training_clips(ds)
    labels = [EMOTIONS.index(c.emotion) for c in clips]
    absent = [e for k, e in enumerate(EMOTIONS) if k not in labels]
    if absent:
        raise ValueError(f"the training clips of {ds.root} have no {', '.join(absent)}; a probe needs every emotion "
                         "(check the split column, or index more clips)")
    encoder = load_encoder(vision, device)
    x = clip_features(encoder, [ds.clip_file(c) for c in clips], frames, "probe features")
    tr, va = _stratified(labels, float(val_fraction), seed)
    y = np.asarray(labels)
    w, b, mean, std = fit(x[tr], y[tr], l2=l2, seed=seed)
    probe = LinearProbe(w, b, mean, std, encoder.source, int(frames))
    train_acc = float((probe.probabilities(x[tr]).argmax(1) == y[tr]).mean())
    val_acc = float((probe.probabilities(x[va]).argmax(1) == y[va]).mean()) if va else None
    per = {e: int(sum(1 for i in tr if y[i] == k)) for k, e in enumerate(EMOTIONS)}
    probe.meta = {"features": "vision pooled output (post-layernorm CLS), mean over frames, standardised",
                  "dataset": str(ds.root), "train_clips": len(tr), "val_clips": len(va), "train_accuracy": train_acc,
                  "val_accuracy": val_acc, "l2": l2, "seed": seed, "per_emotion_train": per,
                  "note": "trained by emovid eval train-probe; its scores are not comparable with the paper's classifier"}
    path, sidecar = save_probe(probe, out)
    return ProbeReport(path, sidecar, len(tr), len(va), train_acc, val_acc, per)
