"""Deterministic sampling and the paper's splits.

Every function sorts its input by clip id before drawing and draws with ``numpy.random.default_rng(seed)``,
so the same table and seed give the same clips whatever order the rows were in.

- ``sample_random``: n clips uniformly without replacement.
- ``sample_balanced``: round-robin over the (type × emotion) cells, each cell shuffled.
- ``benchmark_split``: the paper's test set — ``per_cell`` (10) human-labelled clips per (type × emotion) = 240.
- ``training_mix``: the paper's LoRA training set — 2,727 animation / 8,000 movie / 6,616 sticker with the
  benchmark clips excluded, scaled down proportionally when the local copy is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .format import SOURCE_TYPES, Clip, emotion_names

PAPER_BENCHMARK_PER_CELL = 10
PAPER_TRAINING_MIX = {"animation": 2727, "movie": 8000, "sticker": 6616}
TEST_SPLIT = "test"
TRAIN_SPLIT = "train"


def _sorted(clips: Iterable[Clip]) -> list[Clip]:
    return sorted(clips, key=lambda c: c.clip_id)


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed {seed!r} must be a non-negative integer")
    return np.random.default_rng(int(seed))


def cells(clips: Iterable[Clip]) -> dict[tuple[str, str], list[Clip]]:
    """(type, emotion) -> clips sorted by id, for every one of the 24 cells (empty lists included), in canonical order."""
    out: dict[tuple[str, str], list[Clip]] = {(t, e): [] for t in SOURCE_TYPES for e in emotion_names()}
    for c in _sorted(clips):
        out[(c.type, c.emotion)].append(c)
    return out


def sample_random(clips: Iterable[Clip], n: int, seed: int = 0) -> list[Clip]:
    pool = _sorted(clips)
    if n < 1:
        raise ValueError(f"sample size {n} must be at least 1")
    if n > len(pool):
        raise ValueError(f"cannot draw {n} clips from {len(pool)}; lower n or widen the filters")
    idx = _rng(seed).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in idx]


def balanced_order(clips: Iterable[Clip], seed: int = 0) -> list[Clip]:
    """All clips, ordered so that every prefix is as balanced over (type × emotion) as the cells allow."""
    rng = _rng(seed)
    queues = []
    for _key, members in cells(clips).items():
        if members:
            perm = rng.permutation(len(members))
            queues.append([members[i] for i in perm])
    out: list[Clip] = []
    depth = 0
    while queues:
        nxt = []
        for q in queues:
            out.append(q[depth])
            if depth + 1 < len(q):
                nxt.append(q)
        queues = nxt
        depth += 1
    return out


def sample_balanced(clips: Iterable[Clip], n: int, seed: int = 0) -> list[Clip]:
    order = balanced_order(clips, seed)
    if n < 1:
        raise ValueError(f"sample size {n} must be at least 1")
    if n > len(order):
        raise ValueError(f"cannot draw {n} clips from {len(order)}; lower n or widen the filters")
    return order[:n]


def benchmark_split(clips: Iterable[Clip], per_cell: int = PAPER_BENCHMARK_PER_CELL, seed: int = 0) -> list[Clip]:
    """``per_cell`` human-labelled clips from each of the 24 (type × emotion) cells (paper: 10 → 240).

    The paper picked "representative" clips by hand; we cannot know which, so we draw at random among the
    human-labelled ones. A cell with too few human-labelled clips is an error naming every short cell.
    """
    if per_cell < 1:
        raise ValueError(f"per_cell {per_cell} must be at least 1")
    rng = _rng(seed)
    chosen: list[Clip] = []
    short = []
    for (t, e), members in cells(c for c in clips if c.label_source == "human").items():
        if len(members) < per_cell:
            short.append(f"{t}/{e} has {len(members)}")
            continue
        idx = np.sort(rng.choice(len(members), size=per_cell, replace=False))
        chosen.extend(members[i] for i in idx)
    if short:
        raise ValueError(
            f"benchmark split needs {per_cell} human-labelled clips per type × emotion, but "
            + "; ".join(short) + " — lower --per-cell or label more clips (label_source=human)"
        )
    return chosen


@dataclass
class MixReport:
    targets: dict[str, int]
    available: dict[str, int]
    chosen: dict[str, int]
    scale: float
    excluded: int
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        counts = " / ".join(f"{self.chosen[t]} {t}" for t in SOURCE_TYPES)
        text = f"training mix: {counts} ({sum(self.chosen.values())} clips; {self.excluded} benchmark clips excluded)"
        return text + ("; " + "; ".join(self.notes) if self.notes else "")


def training_mix(
    clips: Iterable[Clip],
    exclude_ids: Iterable[str] = (),
    seed: int = 0,
    targets: dict[str, int] | None = None,
) -> tuple[list[Clip], MixReport]:
    """The paper's training set: per-type targets, benchmark clips excluded.

    When a type has fewer clips than its target, every target is scaled by the same factor
    (the smallest available/target ratio) so the paper's type proportions are kept, and the report says so.
    Within a type that has more clips than needed, the pick is emotion-balanced (round-robin over emotions):
    the paper says movies were subsampled "to balance the distribution" without saying how.
    """
    targets = dict(targets or PAPER_TRAINING_MIX)
    for t in targets:
        if t not in SOURCE_TYPES:
            raise ValueError(f"training mix type {t!r}: use {', '.join(SOURCE_TYPES)}")
    excl = set(exclude_ids)
    everything = _sorted(clips)
    pool = [c for c in everything if c.clip_id not in excl]
    excluded = len(everything) - len(pool)
    by_type = {t: [c for c in pool if c.type == t] for t in targets}
    available = {t: len(v) for t, v in by_type.items()}
    ratios = [available[t] / targets[t] for t in targets if targets[t] > 0]
    scale = min([1.0] + ratios)
    notes: list[str] = []
    if scale < 1.0:
        want = {t: min(available[t], int(round(targets[t] * scale))) for t in targets}
        short = min((t for t in targets if targets[t] > 0), key=lambda t: available[t] / targets[t])
        notes.append(
            f"local copy is smaller than the paper's ({short}: {available[short]} available vs {targets[short]}), "
            f"so every type target was scaled by {scale:.4f} to keep the paper's proportions"
        )
    else:
        want = dict(targets)
    rng = _rng(seed)
    chosen: list[Clip] = []
    for t in targets:
        members = by_type[t]
        if want[t] >= len(members):
            chosen.extend(members)
        else:
            chosen.extend(balanced_order(members, int(rng.integers(0, 2**31 - 1)))[: want[t]])
    report = MixReport(targets=targets, available=available, chosen={t: sum(1 for c in chosen if c.type == t) for t in targets},
                       scale=scale, excluded=excluded, notes=notes)
    return _sorted(chosen), report


@dataclass
class SplitReport:
    test: int
    train: int
    unassigned: int
    per_cell: int
    mix: MixReport

    def __str__(self) -> str:
        return f"test {self.test} ({self.per_cell} per type × emotion), train {self.train}, unassigned {self.unassigned}; {self.mix}"


def assign_splits(clips: Sequence[Clip], per_cell: int = PAPER_BENCHMARK_PER_CELL, seed: int = 0,
                  targets: dict[str, int] | None = None) -> tuple[list[Clip], SplitReport]:
    """Return copies of ``clips`` with ``split`` set: ``test`` (benchmark), ``train`` (training mix) or empty."""
    bench = benchmark_split(clips, per_cell=per_cell, seed=seed)
    bench_ids = {c.clip_id for c in bench}
    train, mix = training_mix(clips, bench_ids, seed=seed, targets=targets)
    train_ids = {c.clip_id for c in train}
    out = [c.replace(split=TEST_SPLIT if c.clip_id in bench_ids else TRAIN_SPLIT if c.clip_id in train_ids else "")
           for c in _sorted(clips)]
    return out, SplitReport(test=len(bench_ids), train=len(train_ids), unassigned=len(out) - len(bench_ids) - len(train_ids),
                            per_cell=per_cell, mix=mix)


def benchmark_clips(clips: Sequence[Clip], per_cell: int = PAPER_BENCHMARK_PER_CELL, seed: int = 0) -> list[Clip]:
    """The benchmark set: the ``test`` split when the table has one, else drawn by the paper's rule."""
    marked = [c for c in clips if c.split == TEST_SPLIT]
    if marked:
        return sorted(marked, key=lambda c: (SOURCE_TYPES.index(c.type), emotion_names().index(c.emotion), c.clip_id))
    chosen = benchmark_split(clips, per_cell=per_cell, seed=seed)
    return chosen
