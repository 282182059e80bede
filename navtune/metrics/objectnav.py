"""ObjectNav metrics (habitat-lab's definitions) from per-step positions and geodesic distances to the goal.

Inputs per episode: `positions` (T+1, 3) — the agent's position at reset and after each action — and
`geodesic_to_goal` (T+1,) — the geodesic distance from each of those positions to the nearest goal (or
its success region), as the backend computes it. No simulator is imported here.
- distance_to_goal: the last geodesic distance.
- sr: the agent called stop and distance_to_goal < success_distance.
- spl: sr * d0 / max(d0, L), d0 = geodesic distance at the start, L = Euclidean length walked.
- soft_spl: max(0, 1 - distance_to_goal / d0) * d0 / max(d0, L) (habitat's SoftSPL; no stop needed).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

OBJECTNAV_KEYS = ("sr", "spl", "soft_spl", "distance_to_goal", "path_length", "steps")


def walked_length(positions: np.ndarray | Sequence[Sequence[float]]) -> float:
    """Sum of Euclidean distances between consecutive positions (metres)."""
    p = np.asarray(positions, dtype=np.float64)
    if len(p) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def objectnav_episode_metrics(
    positions: np.ndarray | Sequence[Sequence[float]],
    geodesic_to_goal: np.ndarray | Sequence[float],
    stop_called: bool,
    success_distance: float = 1.0,
    steps: int | None = None,
) -> dict[str, float]:
    """sr, spl, soft_spl, distance_to_goal, path_length, steps of one episode."""
    pos = np.asarray(positions, dtype=np.float64)
    geo = np.asarray(geodesic_to_goal, dtype=np.float64).reshape(-1)
    if pos.ndim != 2 or len(pos) == 0:
        raise ValueError(f"positions must be (T+1, 2 or 3), got shape {pos.shape}")
    if len(geo) != len(pos):
        raise ValueError(f"{len(geo)} geodesic distances for {len(pos)} positions")
    d0, d_end = float(geo[0]), float(geo[-1])
    length = walked_length(pos)
    success = float(bool(stop_called) and np.isfinite(d_end) and d_end < success_distance)
    if not np.isfinite(d0):  # goal unreachable from the start: nothing to normalise by
        eff, soft = 0.0, 0.0
    else:
        eff = d0 / max(d0, length) if max(d0, length) > 0 else 1.0
        soft = max(0.0, 1.0 - d_end / d0) if d0 > 0 else float(d_end <= 0)
    return {
        "sr": success,
        "spl": success * eff,
        "soft_spl": soft * eff,
        "distance_to_goal": d_end,
        "path_length": length,
        "steps": float(len(pos) - 1 if steps is None else steps),
    }
