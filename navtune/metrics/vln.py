"""Vision-and-language navigation metrics as plain functions over trajectories and a distance callable.

Definitions (R2R's official evaluator, Anderson et al. 2018; nDTW/SDTW, Ilharco et al. 2019; CLS, Jain et
al. 2019), with `dist(a, b)` the shortest-path distance and `edge_length(a, b)` the length of one hop:
- pl: path length, sum of hop lengths; consecutive repeated viewpoints (turns in place) add nothing.
- ne: dist(final, goal), goal = last reference viewpoint.     sr: ne < success_radius (3 m).
- osr: min over trajectory viewpoints of dist(v, goal) < success_radius.
- spl: sr * L / max(pl, L), L = dist(reference start, goal) ("shortest", official) or the reference
  path's length ("path").
- ndtw: exp(-DTW(q, r) / (success_radius * |r|)), DTW with dist as cost.   sdtw: sr * ndtw.
- cls: PC * LS, PC = mean_r exp(-min_q dist(r, q) / success_radius), LS = PC*PL(r) / (PC*PL(r) + |PC*PL(r) - PL(q)|).
- steps: number of trajectory entries after the start (every action, including turns).
ndtw, sdtw and cls are computed on the trajectory with consecutive repeats collapsed.
"""
from __future__ import annotations

import math
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

import numpy as np

T = TypeVar("T", bound=Hashable)
Dist = Callable[[T, T], float]

METRIC_KEYS = ("pl", "ne", "osr", "sr", "spl", "ndtw", "sdtw", "cls", "steps")


def collapse_repeats(path: Sequence[T]) -> list[T]:
    """Drop consecutive duplicates (turns in place): [a, a, b, b, a] -> [a, b, a]."""
    out: list[T] = []
    for v in path:
        if not out or out[-1] != v:
            out.append(v)
    return out


def path_length(path: Sequence[T], edge_length: Dist) -> float:
    """Sum of hop lengths; a repeated viewpoint is a zero-length hop."""
    return float(sum(edge_length(a, b) for a, b in zip(path[:-1], path[1:]) if a != b))


def _pairwise(a: Sequence[T], b: Sequence[T], dist: Dist) -> list[list[float]]:
    return [[float(dist(x, y)) for y in b] for x in a]


def dtw(query: Sequence[T], reference: Sequence[T], dist: Dist) -> float:
    """Dynamic time warping cost between two viewpoint sequences (every element of both is matched)."""
    cost = _pairwise(query, reference, dist)
    m = len(reference)
    inf = math.inf
    prev = [0.0] + [inf] * m  # row i-1 of the accumulated cost, with the (0, 0) corner at 0
    for row in cost:
        cur = [inf] * (m + 1)
        for j in range(1, m + 1):
            cur[j] = row[j - 1] + min(prev[j], cur[j - 1], prev[j - 1])
        prev = cur
    return float(prev[m])


def ndtw(query: Sequence[T], reference: Sequence[T], dist: Dist, threshold: float = 3.0) -> float:
    """Normalised DTW (Ilharco et al. 2019): exp(-DTW / (threshold * |reference|)), in (0, 1]."""
    return float(math.exp(-dtw(query, reference, dist) / (threshold * len(reference))))


def cls(query: Sequence[T], reference: Sequence[T], dist: Dist, edge_length: Dist, threshold: float = 3.0) -> float:
    """Coverage weighted by Length Score (Jain et al. 2019)."""
    cost = _pairwise(reference, query, dist)
    coverage = sum(math.exp(-min(row) / threshold) for row in cost) / len(cost)
    expected = coverage * path_length(reference, edge_length)
    pl = path_length(query, edge_length)
    denom = expected + abs(expected - pl)
    score = 1.0 if denom == 0 else expected / denom  # both lengths 0: a one-viewpoint reference matched exactly
    return coverage * score


def vln_episode_metrics(
    trajectory: Sequence[T],
    reference: Sequence[T],
    dist: Dist,
    edge_length: Dist | None = None,
    success_radius: float = 3.0,
    spl_reference: str = "shortest",
    steps: int | None = None,
) -> dict[str, float]:
    """All R2R metrics of one episode. `trajectory` is the visited viewpoints, start first, one entry per
    action (repeats allowed); `reference` the reference path. `edge_length` defaults to `dist`."""
    if not trajectory:
        raise ValueError("empty trajectory")
    if not reference:
        raise ValueError("empty reference path")
    if spl_reference not in ("shortest", "path"):
        raise ValueError(f"spl_reference must be 'shortest' or 'path', not {spl_reference!r}")
    edge_length = edge_length or dist
    goal = reference[-1]
    q = collapse_repeats(trajectory)
    pl = path_length(q, edge_length)
    ne = float(dist(trajectory[-1], goal))
    oracle = min(float(dist(v, goal)) for v in q)
    success = float(ne < success_radius)
    ref_len = float(dist(reference[0], goal)) if spl_reference == "shortest" else path_length(reference, edge_length)
    denom = max(pl, ref_len)
    spl = success * (ref_len / denom if denom > 0 else 1.0)
    nd = ndtw(q, reference, dist, success_radius)
    return {
        "pl": pl,
        "ne": ne,
        "osr": float(oracle < success_radius),
        "sr": success,
        "spl": spl,
        "ndtw": nd,
        "sdtw": success * nd,
        "cls": cls(q, reference, dist, edge_length, success_radius),
        "steps": float(len(trajectory) - 1 if steps is None else steps),
    }


def average(rows: Iterable[dict], keys: Sequence[str] | None = None) -> dict[str, float]:
    """Mean of each numeric key over episodes, plus `episodes` (the count)."""
    rows = list(rows)
    if keys is None:
        keys = [k for k in (rows[0] if rows else {}) if isinstance(rows[0][k], (int, float)) and not isinstance(rows[0][k], bool)]
    out = {k: float(np.mean([r[k] for r in rows])) if rows else float("nan") for k in keys}
    out["episodes"] = len(rows)
    return out
