"""Dataset statistics as plain data (JSON-ready): counts, attribute means, ANOVA, Fig. 5 shares, Markov matrix.

ANOVA. For brightness and colorfulness: one-way ANOVA across the eight emotions, effect size
η² = SS_between / SS_total, F = (SS_between / (k−1)) / (SS_within / (N−k)), p = P(F(k−1, N−k) > F) from the
regularized incomplete beta function (implemented below; scipy is not a dependency).

Hue is circular (359° is next to 0°), so a linear ANOVA on degrees would be wrong. Each hue becomes the unit
vector (cos h, sin h); the sums of squares are those of the 2-D vectors (SS_total = Σ|uᵢ − ū|², SS_between =
Σₖ nₖ|ūₖ − ū|²). η² is their ratio, as in the linear case. F uses doubled degrees of freedom (2(k−1), 2(N−k)),
treating the two components as independent with equal variance — an approximation, so its p is labelled
approximate. Per-emotion hue summaries are the circular mean (as Eq. 1), the resultant length R and the
circular standard deviation sqrt(−2 ln R) in degrees.

Markov. Movie clips are grouped by ``film_id`` and ordered by ``segment``; each pair of neighbouring clips
of the same film adds one count (emotion of clip k → emotion of clip k+1). Pairs never straddle two films.
By default neighbours are the next clip present in the table (gaps in the segment numbers, e.g. from the
paper's 4–30 s length filter, are bridged); ``consecutive_only=True`` counts only segment n → n+1. Rows are
normalised to sum to 1 (a row with no outgoing pair stays all zero).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable, Sequence

import numpy as np

from .format import SOURCE_TYPES, Clip, emotion_names, emotion_valence

LINEAR_ATTRIBUTES = ("brightness", "colorfulness")


# ------------------------------------------------------------------------------ F distribution (no scipy)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a, b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got x={x}")
    if x == 0.0 or x == 1.0:
        return x
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    # The continued fraction converges fast only below the mean; use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a).
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def f_sf(f: float, d1: float, d2: float) -> float:
    """P(F(d1, d2) > f), the p-value of an F statistic."""
    if not math.isfinite(f):
        return 0.0
    if f <= 0:
        return 1.0
    return betainc(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * f))


# ------------------------------------------------------------------------------------------------- ANOVA


def anova(groups: Sequence[Sequence[float]]) -> dict:
    """One-way ANOVA over groups of numbers: η², F, degrees of freedom, p. Groups with no values are ignored."""
    gs = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    k = len(gs)
    n = int(sum(len(g) for g in gs))
    if k < 2 or n <= k:
        return {"eta2": None, "F": None, "df_between": max(k - 1, 0), "df_within": max(n - k, 0), "p": None, "n": n,
                "note": "needs at least 2 groups and more values than groups"}
    allv = np.concatenate(gs)
    grand = allv.mean()
    ss_total = float(((allv - grand) ** 2).sum())
    ss_between = float(sum(len(g) * (g.mean() - grand) ** 2 for g in gs))
    ss_within = ss_total - ss_between
    return _anova_result(ss_between, ss_within, ss_total, k - 1, n - k, n)


def _anova_result(ss_b: float, ss_w: float, ss_t: float, df_b: float, df_w: float, n: int) -> dict:
    if ss_t <= 0:
        return {"eta2": 0.0, "F": None, "df_between": df_b, "df_within": df_w, "p": None, "n": n,
                "note": "all values are equal"}
    eta2 = ss_b / ss_t
    if ss_w <= 0:
        f = math.inf
    else:
        f = (ss_b / df_b) / (ss_w / df_w)
    return {"eta2": eta2, "F": f if math.isfinite(f) else None, "df_between": df_b, "df_within": df_w,
            "p": f_sf(f, df_b, df_w), "n": n}


def circular_anova(groups_deg: Sequence[Sequence[float]]) -> dict:
    """ANOVA of angles in degrees on their unit vectors (see module doc); the p-value is approximate."""
    gs = [np.deg2rad(np.asarray(g, dtype=np.float64)) for g in groups_deg if len(g)]
    k = len(gs)
    n = int(sum(len(g) for g in gs))
    if k < 2 or n <= k:
        return {"eta2": None, "F": None, "df_between": 2 * max(k - 1, 0), "df_within": 2 * max(n - k, 0), "p": None,
                "n": n, "method": "unit-vector", "note": "needs at least 2 groups and more values than groups"}
    vecs = [np.stack([np.cos(g), np.sin(g)], axis=1) for g in gs]
    allv = np.concatenate(vecs)
    grand = allv.mean(axis=0)
    ss_total = float(((allv - grand) ** 2).sum())
    ss_between = float(sum(len(v) * ((v.mean(axis=0) - grand) ** 2).sum() for v in vecs))
    out = _anova_result(ss_between, ss_total - ss_between, ss_total, 2 * (k - 1), 2 * (n - k), n)
    out["method"] = "unit-vector"
    out["p_approximate"] = True
    return out


def circular_summary(deg: Sequence[float]) -> dict:
    """Circular mean (Eq. 1 of the paper, integer-free), resultant length R and circular std, in degrees."""
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    if a.size == 0:
        return {"n": 0, "mean": None, "R": None, "std": None}
    s, c = np.sin(a).mean(), np.cos(a).mean()
    r = float(math.hypot(s, c))
    mean = (math.degrees(math.atan2(s, c)) + 360.0) % 360.0
    std = math.degrees(math.sqrt(-2.0 * math.log(r))) if r > 1e-12 else None
    return {"n": int(a.size), "mean": mean, "R": r, "std": std}


def linear_summary(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "mean": None, "std": None}
    return {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}


# --------------------------------------------------------------------------------- Fig. 5 positive share


def positive_share(clips: Iterable[Clip], attribute: str, bins: int = 11) -> list[dict]:
    """Share of positive-valence clips in bins of ``attribute`` over [0, 1] (the paper's Fig. 5).

    With the default 11 bins each bin is centred on one of the paper's rounded values 0.0, 0.1, …, 1.0
    (edges at ±0.05), so rounded and raw values bin the same way. Empty bins have share None.
    """
    if attribute not in LINEAR_ATTRIBUTES:
        raise ValueError(f"positive share needs brightness or colorfulness, not {attribute!r}")
    if bins < 2:
        raise ValueError(f"bins={bins} must be at least 2")
    step = 1.0 / (bins - 1)
    n = np.zeros(bins, dtype=np.int64)
    pos = np.zeros(bins, dtype=np.int64)
    pos_names = {e for e in emotion_names() if emotion_valence(e) == "positive"}
    for c in clips:
        v = getattr(c, attribute)
        if v is None:
            continue
        i = min(bins - 1, max(0, int(math.floor(v / step + 0.5))))
        n[i] += 1
        pos[i] += c.emotion in pos_names
    return [{"center": round(i * step, 6), "lo": round(max(0.0, (i - 0.5) * step), 6), "hi": round(min(1.0, (i + 0.5) * step), 6),
             "n": int(n[i]), "positive": int(pos[i]), "share": float(pos[i] / n[i]) if n[i] else None} for i in range(bins)]


# ------------------------------------------------------------------------------------------------ Markov


def markov_transitions(clips: Iterable[Clip], consecutive_only: bool = False) -> dict:
    """First-order transition counts and row-normalised matrix of emotions over consecutive movie clips."""
    emos = list(emotion_names())
    index = {e: i for i, e in enumerate(emos)}
    films: dict[str, list[Clip]] = defaultdict(list)
    skipped = 0
    for c in clips:
        if c.type != "movie":
            continue
        if not c.film_id or c.segment is None:
            skipped += 1
            continue
        films[c.film_id].append(c)
    counts = np.zeros((len(emos), len(emos)), dtype=np.int64)
    pairs = duplicates = gaps = 0
    for film in sorted(films):
        seq = sorted(films[film], key=lambda c: (c.segment, c.clip_id))
        for a, b in zip(seq, seq[1:]):
            if a.segment == b.segment:
                duplicates += 1  # two clips claim the same position: no order between them to count
                continue
            if b.segment != a.segment + 1:
                gaps += 1
                if consecutive_only:
                    continue
            counts[index[a.emotion], index[b.emotion]] += 1
            pairs += 1
    sums = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, sums, out=np.zeros(counts.shape, dtype=np.float64), where=sums > 0)
    return {
        "emotions": emos,
        "counts": counts.tolist(),
        "matrix": matrix.tolist(),
        "films": len(films),
        "pairs": pairs,
        "gaps_bridged": 0 if consecutive_only else gaps,
        "gaps_skipped": gaps if consecutive_only else 0,
        "duplicate_segments": duplicates,
        "movie_clips_without_film": skipped,
        "consecutive_only": consecutive_only,
        "self_persistence": {e: float(matrix[i, i]) for i, e in enumerate(emos)},
    }


# ---------------------------------------------------------------------------------------------- summary


def compute_stats(clips: Sequence[Clip], bins: int = 11, consecutive_only: bool = False) -> dict:
    """Everything ``emovid dataset stats`` reports, as JSON-ready data."""
    clips = list(clips)
    emos = list(emotion_names())
    by_emotion = Counter(c.emotion for c in clips)
    by_type = Counter(c.type for c in clips)
    cell = Counter((c.type, c.emotion) for c in clips)
    out: dict = {
        "n": len(clips),
        "counts": {
            "by_emotion": {e: by_emotion.get(e, 0) for e in emos},
            "by_type": {t: by_type.get(t, 0) for t in SOURCE_TYPES},
            "by_type_emotion": {t: {e: cell.get((t, e), 0) for e in emos} for t in SOURCE_TYPES},
            "by_label_source": dict(sorted(Counter(c.label_source or "unknown" for c in clips).items())),
            "by_split": dict(sorted(Counter(c.split or "none" for c in clips).items())),
            "by_valence": dict(sorted(Counter(emotion_valence(c.emotion) for c in clips).items())),
        },
        "attributes": {},
    }
    from .. import emotions as emo_mod

    for attr in LINEAR_ATTRIBUTES:
        per = {e: [getattr(c, attr) for c in clips if c.emotion == e and getattr(c, attr) is not None] for e in emos}
        present = [c for c in clips if getattr(c, attr) is not None]
        out["attributes"][attr] = {
            "n": len(present),
            "missing": len(clips) - len(present),
            "by_emotion": {e: linear_summary(v) for e, v in per.items()},
            "by_valence": {val: linear_summary([getattr(c, attr) for c in present if emotion_valence(c.emotion) == val])
                           for val in ("positive", "negative")},
            "by_arousal": {lvl: linear_summary([getattr(c, attr) for c in present if emo_mod.arousal_level(c.emotion) == lvl])
                           for lvl in ("high", "low")},
            "by_type": {t: linear_summary([getattr(c, attr) for c in present if c.type == t]) for t in SOURCE_TYPES},
            "anova": anova(list(per.values())),
        }
    per_h = {e: [c.hue for c in clips if c.emotion == e and c.hue is not None] for e in emos}
    n_h = sum(len(v) for v in per_h.values())
    out["attributes"]["hue"] = {
        "n": n_h,
        "missing": len(clips) - n_h,
        "by_emotion": {e: circular_summary(v) for e, v in per_h.items()},
        "by_type": {t: circular_summary([c.hue for c in clips if c.type == t and c.hue is not None]) for t in SOURCE_TYPES},
        "anova": circular_anova(list(per_h.values())),
    }
    out["positive_share"] = {a: positive_share(clips, a, bins) for a in LINEAR_ATTRIBUTES}
    out["markov"] = markov_transitions(clips, consecutive_only=consecutive_only)
    return out


def summary_lines(stats: dict) -> list[str]:
    """A few human lines for a terminal or a node's text box."""
    c = stats["counts"]
    lines = [
        f"{stats['n']} clips: " + ", ".join(f"{n} {t}" for t, n in c["by_type"].items()),
        "per emotion: " + ", ".join(f"{e} {n}" for e, n in c["by_emotion"].items()),
    ]
    for attr in ("brightness", "colorfulness", "hue"):
        a = stats["attributes"][attr]
        an = a["anova"]
        if a["n"] == 0:
            lines.append(f"{attr}: no values in the table; run `emovid dataset index ROOT` to measure them")
            continue
        if an.get("eta2") is None:
            lines.append(f"{attr}: {a['n']} values, ANOVA not computable ({an.get('note', '')})")
            continue
        p = an.get("p")
        p_txt = "n/a" if p is None else (f"{p:.3g}" + (" (approx.)" if an.get("p_approximate") else ""))
        f_txt = "inf" if an.get("F") is None else f"{an['F']:.3g}"
        lines.append(f"{attr}: η²={an['eta2']:.4f}, F({an['df_between']},{an['df_within']})={f_txt}, p={p_txt}")
    m = stats["markov"]
    if m["pairs"]:
        diag = sorted(m["self_persistence"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"Markov: {m['pairs']} transitions in {m['films']} films; strongest self-persistence "
                     + ", ".join(f"{e} {v:.2f}" for e, v in diag))
    else:
        lines.append("Markov: no consecutive movie clips with film_id and segment")
    return lines
