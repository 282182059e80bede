"""Failure modes of a navigation episode as plain functions over its action / pose / collision sequences.

The three modes of the seed-2 failure miner, defined so that they can only fire on what really happened
in a simulator that stepped (the seed's reference never stepped its simulator, so every forward move
looked blocked and every episode looked like a collision):

- **stuck**: some window of `n_forward` consecutive *forward* moves made less than `min_progress` metres
  of net displacement (the agent pushes against something, or circles in place). Progress is measured on
  positions, so a freely moving agent (each forward move displaces it by the step size) is never stuck.
- **oscillation**: a run of at least `window` consecutive turn actions that alternate direction
  (left, right, left, right, ...): the agent dithers between two headings.
- **collision**: at least `min_collisions` actions reported as blocked by the simulator.
- **early_stop**: the agent stopped where the episode does not count as a success (far from the goal).
- **timeout**: the step budget ran out before the agent stopped.

The last two are the commonest ways an episode fails (a random agent stops early, an agent that never
stops times out); they need the episode's outcome (`success`), so they are False when it is not given.

Inputs: `actions` (T,), `positions` (T+1, 2 or 3) — the position at reset and after each action — and
`collided` (T,) booleans as the env reported them. Nothing here imports a simulator.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from navtune.core.actions import FORWARD, STOP_ACTIONS, TURNS, action_space_of
from navtune.core.config import option

FAILURE_MODES = ("stuck", "oscillation", "collision", "early_stop", "timeout")


@dataclass(frozen=True)
class FailureConfig:
    """Thresholds of the failure detectors (defaults suit 0.25 m forward steps and 2 m graph hops)."""

    n_forward: int = option(8, flag="--stuck-forward", help="stuck: window of forward moves ...")
    min_progress: float = option(0.5, flag="--stuck-progress", help="... with less net displacement (m) than this.")
    oscillation_window: int = option(6, help="oscillation: consecutive alternating turns.")
    min_collisions: int = option(3, help="collision: at least this many blocked moves.")

    def to_dict(self) -> dict:
        return asdict(self)


def _space(actions: Sequence[str], action_space: str | None) -> str | None:
    if action_space is not None:
        return action_space
    for a in actions:
        return action_space_of(a)
    return None


def _positions(positions, n_actions: int) -> np.ndarray:
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"positions must be (T+1, 2 or 3), got shape {p.shape}")
    if len(p) != n_actions + 1:
        raise ValueError(f"{len(p)} positions for {n_actions} actions (expected one more position than actions)")
    return p[:, :2]


def stuck_windows(
    actions: Sequence[str],
    positions,
    n_forward: int = FailureConfig.n_forward,
    min_progress: float = FailureConfig.min_progress,
    action_space: str | None = None,
) -> list[tuple[int, int]]:
    """(first, last) action indices of every window of `n_forward` consecutive forward moves whose net
    planar displacement (position before the first to position after the last) is < `min_progress`."""
    if n_forward < 1:
        raise ValueError("n_forward must be >= 1")
    space = _space(actions, action_space)
    p = _positions(positions, len(actions))
    if space is None:
        return []
    fwd = FORWARD[space]
    idx = [t for t, a in enumerate(actions) if a == fwd]
    out = []
    for k in range(len(idx) - n_forward + 1):
        i, j = idx[k], idx[k + n_forward - 1]
        if float(np.linalg.norm(p[j + 1] - p[i])) < min_progress:
            out.append((i, j))
    return out


def is_stuck(actions: Sequence[str], positions, n_forward: int = FailureConfig.n_forward,
             min_progress: float = FailureConfig.min_progress, action_space: str | None = None) -> bool:
    return bool(stuck_windows(actions, positions, n_forward, min_progress, action_space))


def longest_alternating_turns(actions: Sequence[str], action_space: str | None = None) -> int:
    """Length of the longest run of consecutive turns that alternate direction (L R L R ... -> its length;
    a single turn counts 1, two turns the same way break the run)."""
    space = _space(actions, action_space)
    if space is None:
        return 0
    left, right = TURNS[space]
    best = run = 0
    prev = None
    for a in actions:
        if a in (left, right):
            run = run + 1 if (prev is not None and a != prev) else 1
            prev = a
        else:
            run, prev = 0, None
        best = max(best, run)
    return best


def is_oscillating(actions: Sequence[str], window: int = FailureConfig.oscillation_window,
                   action_space: str | None = None) -> bool:
    return longest_alternating_turns(actions, action_space) >= window


def collision_count(collided: Sequence[bool]) -> int:
    return int(sum(bool(c) for c in collided))


def inferred_collisions(actions: Sequence[str], positions, action_space: str | None = None,
                        eps: float = 1e-6) -> list[bool]:
    """Forward moves that left the agent where it was (for logs whose env reported no collision flags)."""
    space = _space(actions, action_space)
    p = _positions(positions, len(actions))
    if space is None:
        return []
    fwd = FORWARD[space]
    return [a == fwd and float(np.linalg.norm(p[t + 1] - p[t])) <= eps for t, a in enumerate(actions)]


def failure_modes(
    actions: Sequence[str],
    positions,
    collided: Sequence[bool] | None = None,
    config: FailureConfig = FailureConfig(),
    action_space: str | None = None,
    success: bool | None = None,
) -> dict:
    """{stuck, oscillation, collision, early_stop, timeout: bool, collisions: int, longest_alternation: int,
    stuck_windows: int, failed: bool} for one finished episode. `collided=None` infers collisions from
    positions; `success` (the episode's outcome) decides early_stop / timeout (both False when None)."""
    if collided is None:
        collided = inferred_collisions(actions, positions, action_space)
    if len(collided) != len(actions):
        raise ValueError(f"{len(collided)} collision flags for {len(actions)} actions")
    windows = stuck_windows(actions, positions, config.n_forward, config.min_progress, action_space)
    alt = longest_alternating_turns(actions, action_space)
    n_coll = collision_count(collided)
    out = {
        "stuck": bool(windows),
        "oscillation": alt >= config.oscillation_window,
        "collision": n_coll >= config.min_collisions,
        "collisions": n_coll,
        "longest_alternation": alt,
        "stuck_windows": len(windows),
    }
    stopped = bool(actions) and actions[-1] in STOP_ACTIONS
    out["early_stop"] = success is not None and stopped and not success
    out["timeout"] = success is not None and not stopped
    out["failed"] = any(out[m] for m in FAILURE_MODES)
    return out


def failure_rates(rows: Sequence[dict]) -> dict[str, float]:
    """Share of episodes (0..1) showing each failure mode, from rows holding a `failures` dict."""
    n = len(rows)
    out = {}
    for m in FAILURE_MODES + ("failed",):
        out[m] = float(sum(bool(r["failures"].get(m)) for r in rows) / n) if n else float("nan")
    return out
