"""95 % intervals for per-episode results, so that tables say how much a number can be trusted.

* a rate (every value 0 or 1: SR, OSR) gets the Wilson score interval, which stays inside [0, 1] and is
  honest for small n and rates near 0 or 1 (scipy's `binomtest(...).proportion_ci(method="wilson")`);
* any other per-episode mean (SPL, nDTW, EPA, NE) gets a percentile bootstrap interval over episodes;
* the difference of two runs on the same episodes gets a paired bootstrap interval over episodes (the
  episodes' own difficulty cancels, so it is much tighter than comparing two separate intervals).

Bootstraps use a fixed seed, so the same rows always give the same interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 2000

Interval = tuple[float, float]


def _finite(values: Sequence[float | None]) -> np.ndarray:
    arr = np.array([float(v) for v in values if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def is_rate(values: Sequence[float]) -> bool:
    """True when every value is 0 or 1 (a success indicator)."""
    arr = np.asarray(values, dtype=np.float64)
    return arr.size > 0 and bool(np.all((arr == 0.0) | (arr == 1.0)))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a proportion `successes / n`."""
    from scipy.stats import binomtest

    if n <= 0:
        raise ValueError("wilson interval of 0 trials")
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def bootstrap_mean(values: Sequence[float], confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                   seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean over episodes (a single value or constant data: that value)."""
    from scipy.stats import bootstrap

    arr = _finite(values)
    if arr.size == 0:
        raise ValueError("bootstrap interval of no values")
    if arr.size == 1 or np.all(arr == arr[0]):
        return (float(arr[0]), float(arr[0]))
    res = bootstrap((arr,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                    vectorized=True, random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def mean_interval(values: Sequence[float | None], confidence: float = CONFIDENCE) -> Interval | None:
    """The interval of a per-episode metric's mean: Wilson for rates, bootstrap otherwise (None: no values)."""
    arr = _finite(values)
    if arr.size == 0:
        return None
    if is_rate(arr):
        return wilson(int(arr.sum()), int(arr.size), confidence)
    return bootstrap_mean(arr, confidence)


@dataclass(frozen=True)
class PairedDifference:
    """mean(b - a) over the episodes both runs hold, with its paired 95 % interval."""

    metric: str
    a: float
    b: float
    diff: float
    ci95: Interval
    episodes: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.ci95[0] > 0.0 or self.ci95[1] < 0.0


def paired_difference(metric: str, a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE,
                      n_resamples: int = N_RESAMPLES, seed: int = 0) -> PairedDifference:
    """Paired bootstrap of mean(b - a) over episodes; `a[i]` and `b[i]` are the same episode's values."""
    if len(a) != len(b):
        raise ValueError(f"{metric}: paired values of different lengths ({len(a)} vs {len(b)})")
    pairs = np.array([(x, y) for x, y in zip(a, b) if x is not None and y is not None
                      and math.isfinite(float(x)) and math.isfinite(float(y))], dtype=np.float64).reshape(-1, 2)
    if len(pairs) == 0:
        raise ValueError(f"{metric}: no episode has a value in both runs")
    d = pairs[:, 1] - pairs[:, 0]
    return PairedDifference(metric, float(pairs[:, 0].mean()), float(pairs[:, 1].mean()), float(d.mean()),
                            bootstrap_mean(d, confidence, n_resamples, seed), len(d))
