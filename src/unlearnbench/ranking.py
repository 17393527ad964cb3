"""Uncertainty on leaderboards: a bootstrap confidence interval of each method's mean score over
seeds, and ranks that cannot be told apart from their neighbours. Pure NumPy / pandas.

The percentile bootstrap (Efron & Tibshirani 1993, ch. 13) resamples a method's per-seed values with replacement;
two neighbours are indistinguishable when the bootstrap interval of the difference of their means (each method
resampled on its own) contains 0. With fewer than 2 seeds nothing can be told apart: the interval is NaN and the
rank is marked tied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _clean(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[~np.isnan(v)]


def _boot_means(v: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    return v[rng.integers(0, len(v), (n_boot, len(v)))].mean(1)


def bootstrap_ci(values, level: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the non-NaN values and its percentile-bootstrap interval at ``level``."""
    v = _clean(values)
    if len(v) < 2:
        return (float(v.mean()) if len(v) else np.nan), np.nan, np.nan
    lo, hi = np.percentile(_boot_means(v, n_boot, np.random.default_rng(seed)), [50 * (1 - level), 50 * (1 + level)])
    return float(v.mean()), float(lo), float(hi)


def distinguishable(a, b, level: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> bool:
    """Whether the bootstrap interval of mean(a) - mean(b) excludes 0 (False with fewer than 2 values on a side)."""
    a, b = _clean(a), _clean(b)
    if len(a) < 2 or len(b) < 2:
        return False
    rng = np.random.default_rng(seed)
    diff = _boot_means(a, n_boot, rng) - _boot_means(b, n_boot, rng)
    lo, hi = np.percentile(diff, [50 * (1 - level), 50 * (1 + level)])
    return bool(lo > 0 or hi < 0)


def rank_methods(
    scores: pd.DataFrame, direction: str = "higher", value: str = "value", by: str = "method",
    level: float = 0.95, n_boot: int = 10_000, seed: int = 0,
) -> pd.DataFrame:
    """One row per method, best first: n (seeds), mean, ci_low, ci_high, rank, tied_above, tied_below.

    ``scores`` has one row per (method, seed) with the score in ``value``; ``direction`` is ``higher`` or ``lower``
    (for a metric judged by closeness to the oracle, pass the gap to the oracle with ``lower``). ``tied_above``
    marks a method not distinguishable from the one ranked just above it (``tied_below`` the same downwards).
    """
    if direction not in ("higher", "lower"):
        raise ValueError(f"rank_methods: direction must be 'higher' or 'lower', got {direction!r}")
    groups = {m: np.sort(_clean(g[value])) for m, g in scores.groupby(by, sort=False)}  # row order cannot matter
    rows = [dict(zip(("mean", "ci_low", "ci_high"), bootstrap_ci(v, level, n_boot, seed)), **{by: m, "n": len(v)})
            for m, v in groups.items()]
    table = pd.DataFrame(rows).sort_values("mean", ascending=direction == "lower", kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    ordered = [groups[m] for m in table[by]]
    ties = [not distinguishable(a, b, level, n_boot, seed) for a, b in zip(ordered, ordered[1:])]
    table["tied_above"] = [False] + ties
    table["tied_below"] = ties + [False]
    return table[[by, "n", "mean", "ci_low", "ci_high", "rank", "tied_above", "tied_below"]]
