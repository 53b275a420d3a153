"""Hyperparameter importance: how much of the metric's spread each parameter explains alone.

The method is a binned estimate of each parameter's *first-order* (main-effect) share of
the metric's variance, the quantity functional ANOVA (fANOVA) calls the main effect:

1. The metric is replaced by its rank (ties share the mean rank), scaled to [0, 1]. One
   diverged trial then cannot dominate, and any monotone transform of the metric (loss
   or log loss, accuracy or error) gives the same importances.
2. Each parameter's values are split into groups: one per distinct value when there are
   at most ``MAX_GROUPS`` of them (choices, small integer ranges), otherwise quantile bins
   (about ``sqrt(n / 2)`` of them, between 2 and ``MAX_GROUPS``) so every bin holds trials.
   A parameter a result lacks (nested search spaces) forms its own group.
3. The importance is the share of the ranks' variance explained by the group means,
   corrected for what ``k`` random groups explain by chance (the bias-adjusted correlation
   ratio, epsilon squared: ``(SS_between - (k - 1) * MS_within) / SS_total``, clipped at 0).

What it does not do: interactions (a parameter that matters only together with another
scores low, so the importances need not add up to 1), and causal claims (a tuner samples
promising regions more densely, which this estimate does not correct for). With few
results (under about 20) the values are rough; the answer carries ``n`` for that reason.
For numeric parameters the Spearman rank correlation with the metric is given as well:
its sign says whether larger values went with larger metrics.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

MAX_GROUPS = 10
MIN_RESULTS = 5

METHOD = ("first-order variance share of the metric's rank explained by each parameter alone"
          " (binned correlation ratio, bias-adjusted: epsilon squared); Spearman correlation for direction")


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties given their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(len(values), dtype=float)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def _groups(values: Sequence[Any]) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Group index per value, the parameter's kind, and its numeric values (numeric kind only)."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                  for v in values if v is not None)
    present = [v for v in values if v is not None]
    if numeric and present:
        x = np.array([np.nan if v is None else float(v) for v in values])
        distinct = np.unique(x[~np.isnan(x)])
        # Few values that repeat (a small integer range) are groups of their own; values that
        # hardly repeat (continuous, or few results) are binned, else every group has one member.
        if len(distinct) <= MAX_GROUPS and 2 * len(distinct) <= len(present):
            index = np.searchsorted(distinct, x)
        else:
            bins = int(min(MAX_GROUPS, max(2, round(math.sqrt(len(present) / 2)))))
            edges = np.unique(np.quantile(x[~np.isnan(x)], np.linspace(0, 1, bins + 1))[1:-1])
            index = np.searchsorted(edges, x, side="right")
        index = np.where(np.isnan(x), -1, index)
        return index, "numeric", x
    labels = [json.dumps(v, sort_keys=True) if v is not None else None for v in values]
    codes: dict[str, int] = {}
    index = np.array([-1 if label is None else codes.setdefault(label, len(codes)) for label in labels])
    return index, "categorical", None


def epsilon_squared(y: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Bias-adjusted share of ``y``'s variance explained by the group means, and the group count."""
    _, index = np.unique(groups, return_inverse=True)
    k = int(index.max()) + 1 if len(index) else 0
    n = len(y)
    total = float(np.sum((y - y.mean()) ** 2))
    if k < 2 or n <= k or total == 0.0:
        return 0.0, k
    sizes = np.bincount(index, minlength=k)
    means = np.bincount(index, weights=y, minlength=k) / sizes
    between = float(np.sum(sizes * (means - y.mean()) ** 2))
    within = total - between
    value = (between - (k - 1) * within / (n - k)) / total
    return float(min(1.0, max(0.0, value))), k


def spearman(x: np.ndarray, y_rank: np.ndarray) -> float | None:
    """Rank correlation of ``x`` (NaN = missing, left out) with ``y``; None when undefined."""
    keep = ~np.isnan(x)
    if keep.sum() < 3:
        return None
    rx = rank(x[keep])
    ry = rank(y_rank[keep])
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def importance(names: list[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Importances from rows of (metric, value of each parameter in ``names``)."""
    answer: dict[str, Any] = {"method": METHOD, "n": len(rows), "parameters": []}
    if len(rows) < MIN_RESULTS:
        answer["note"] = f"needs at least {MIN_RESULTS} final results with a numeric metric, has {len(rows)}"
        return answer
    metric = np.array([float(r[0]) for r in rows])
    keep = np.isfinite(metric)
    rows = [r for r, k in zip(rows, keep) if k]
    metric = metric[keep]
    y = rank(metric) / max(1, len(metric) - 1)
    for i, name in enumerate(names):
        values = [r[i + 1] for r in rows]
        groups, kind, x = _groups(values)
        share, k = epsilon_squared(y, groups)
        answer["parameters"].append({
            "name": name,
            "importance": share,
            "kind": kind,
            "groups": k,
            "spearman": spearman(x, y) if x is not None else None,
        })
    answer["n"] = len(rows)
    answer["parameters"].sort(key=lambda p: -p["importance"])
    return answer

