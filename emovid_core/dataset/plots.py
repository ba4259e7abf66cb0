"""Plots of :func:`emovid_core.dataset.stats.compute_stats` output (matplotlib, Agg backend, no display).

Four figures of the same pixel size (so they stack into one ComfyUI IMAGE batch): clip counts, attribute
means per emotion with error bars, the paper's Fig. 5 positive-share curves, and the Markov transition heat
map with its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .format import SOURCE_TYPES, Clip

FIG_SIZE = (9.0, 5.4)  # inches
DPI = 100
PLOT_NAMES = ("counts", "attributes", "positive_share", "transitions")
_TYPE_COLOURS = {"animation": "#4C72B0", "movie": "#DD8452", "sticker": "#55A868"}
_VALENCE_COLOURS = {"positive": "#E1A100", "negative": "#5B5EA6"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _to_rgb(fig) -> np.ndarray:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def _valence_of(emos):
    from .format import emotion_valence

    return [emotion_valence(e) for e in emos]


def plot_counts(stats: dict, plt):
    emos = list(stats["counts"]["by_emotion"])
    fig, ax = plt.subplots(figsize=FIG_SIZE, dpi=DPI)
    bottom = np.zeros(len(emos))
    for t in SOURCE_TYPES:
        vals = np.array([stats["counts"]["by_type_emotion"][t][e] for e in emos], dtype=float)
        ax.bar(emos, vals, bottom=bottom, label=f"{t} ({int(vals.sum())})", color=_TYPE_COLOURS[t])
        bottom += vals
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{int(total)}", ha="center", va="bottom", fontsize=9)
    for lbl, val in zip(ax.get_xticklabels(), _valence_of(emos)):
        lbl.set_color(_VALENCE_COLOURS[val])
    ax.set_ylabel("clips")
    ax.set_title(f"Clips per emotion and source type (N = {stats['n']}); labels coloured by valence")
    ax.legend(title="type", loc="upper center", ncol=len(SOURCE_TYPES))
    ax.set_ylim(0, max(1.0, float(bottom.max())) * 1.25)  # head room so the legend never covers a bar
    fig.tight_layout()
    return fig


def plot_attributes(stats: dict, plt):
    emos = list(stats["counts"]["by_emotion"])
    colours = [_VALENCE_COLOURS[v] for v in _valence_of(emos)]
    fig, axes = plt.subplots(1, 3, figsize=FIG_SIZE, dpi=DPI)
    for ax, attr in zip(axes, ("brightness", "colorfulness", "hue")):
        a = stats["attributes"][attr]
        per = a["by_emotion"]
        means = [per[e]["mean"] if per[e]["mean"] is not None else np.nan for e in emos]
        stds = [per[e]["std"] if per[e].get("std") is not None else 0.0 for e in emos]
        y = np.arange(len(emos))
        ax.errorbar(means, y, xerr=stds, fmt="none", ecolor="#888", capsize=3)
        ax.scatter(means, y, c=colours, s=40, zorder=3)
        ax.set_yticks(y)
        ax.set_yticklabels(emos if attr == "brightness" else [])
        ax.invert_yaxis()
        an = a["anova"]
        eta = "n/a" if an.get("eta2") is None else f"{an['eta2']:.3f}"
        p = an.get("p")
        p_txt = "n/a" if p is None else f"{p:.2g}"
        if attr == "hue":
            ax.set_xlim(0, 360)
            ax.set_xlabel("circular mean ± circular std (°)")
        else:
            ax.set_xlim(0, 1)
            ax.set_xlabel("mean ± std")
        ax.set_title(f"{attr}\nη²={eta}, p={p_txt}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Clip attributes per emotion (paper Eqs. 1–3); gold = positive, purple = negative valence")
    fig.tight_layout()
    return fig


def plot_positive_share(stats: dict, plt):
    fig, ax = plt.subplots(figsize=FIG_SIZE, dpi=DPI)
    for attr, colour in (("colorfulness", "#C44E52"), ("brightness", "#4C72B0")):
        bins = stats["positive_share"][attr]
        xs = [b["center"] for b in bins if b["share"] is not None]
        ys = [b["share"] for b in bins if b["share"] is not None]
        ns = [b["n"] for b in bins if b["share"] is not None]
        if not xs:
            continue
        size = 20 + 180 * np.sqrt(np.asarray(ns) / max(ns))
        ax.plot(xs, ys, "-", color=colour, label=attr)
        ax.scatter(xs, ys, s=size, color=colour, alpha=0.7)
    pos = stats["counts"]["by_valence"].get("positive", 0)
    if stats["n"]:
        ax.axhline(pos / stats["n"], ls="--", color="#666", lw=1, label=f"overall ({pos / stats['n']:.2f})")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(0, 1)
    ax.set_xlabel("attribute value (bin centre)")
    ax.set_ylabel("positive / total")
    ax.set_title("Share of positive emotions across attribute bins (paper Fig. 5); marker area ~ clips in bin")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no brightness/colorfulness values: index the dataset first", ha="center", va="center",
                transform=ax.transAxes)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_transitions(stats: dict, plt):
    m = stats["markov"]
    emos = m["emotions"]
    mat = np.asarray(m["matrix"], dtype=float)
    counts = np.asarray(m["counts"], dtype=int)
    fig, ax = plt.subplots(figsize=FIG_SIZE, dpi=DPI)
    im = ax.imshow(mat, cmap="magma_r", vmin=0, vmax=max(0.5, float(mat.max()) if mat.size else 1.0))
    for i in range(len(emos)):
        for j in range(len(emos)):
            if counts[i].sum():
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if mat[i, j] > 0.35 else "black")
    ax.set_xticks(range(len(emos)))
    ax.set_xticklabels(emos, rotation=35, ha="right")
    ax.set_yticks(range(len(emos)))
    ax.set_yticklabels([f"{e} (n={int(counts[i].sum())})" for i, e in enumerate(emos)])
    ax.set_xlabel("next clip")
    ax.set_ylabel("current clip")
    ax.set_title(f"Emotion transitions between consecutive movie clips ({m['pairs']} pairs, {m['films']} films)")
    fig.colorbar(im, ax=ax, fraction=0.04, label="P(next | current)")
    fig.tight_layout()
    return fig


_PLOTTERS = {"counts": plot_counts, "attributes": plot_attributes, "positive_share": plot_positive_share,
             "transitions": plot_transitions}


def render_plots(stats: dict) -> dict[str, np.ndarray]:
    """name -> RGB uint8 array, every array the same size."""
    plt = _plt()
    out = {}
    for name in PLOT_NAMES:
        fig = _PLOTTERS[name](stats, plt)
        try:
            out[name] = _to_rgb(fig)
        finally:
            plt.close(fig)
    return out


def save_plots(stats: dict, folder: str | Path, prefix: str = "dataset_", force: bool = False) -> list[Path]:
    """Write the four plots as PNGs (atomically) and return their paths; existing files are replaced only with ``force``."""
    from PIL import Image

    from ..atomic import atomic_path, check_outputs

    folder = Path(folder)
    plots = {folder / f"{prefix}{name}.png": rgb for name, rgb in render_plots(stats).items()}
    check_outputs(plots, force=force)
    for path, rgb in plots.items():
        with atomic_path(path) as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
    return list(plots)


@dataclass(frozen=True)
class StatsReport:
    """Everything EmoVid Dataset Stats shows: the statistics, the four plots stacked [4, H, W, 3] and a summary."""

    stats: dict
    plots: np.ndarray  # uint8, in PLOT_NAMES order
    lines: list[str]


def stats_report(clips: Sequence[Clip], bins: int = 11, consecutive_only: bool = False) -> StatsReport:
    """:func:`compute_stats` of ``clips``, rendered (:func:`render_plots`) and summarised (``summary_lines``)."""
    from .stats import compute_stats, summary_lines

    stats = compute_stats(clips, bins=bins, consecutive_only=consecutive_only)
    plots = render_plots(stats)
    return StatsReport(stats, np.stack([plots[name] for name in PLOT_NAMES]), summary_lines(stats))
