"""navtune's one navigation reward, and discounted returns.

Per step t (the agent takes action a_t at geodesic distance d_t and lands at distance d_{t+1}):

    r_t = progress * (d_t - d_{t+1})                        progress: decrease of geodesic distance
        + success_bonus   if a_t is a stop and d_{t+1} < success_radius
        - collision       if the step collided (a blocked move)
        - slack                                               every step (prefer short episodes)

and the return is G_t = r_t + gamma * G_{t+1} with G_T = 0 after the last step.

The seed-2 reference (ObjectNav with Habitat) used one-step *Euclidean* rewards and trained on them
without returns. navtune uses the *geodesic* (walkable shortest-path) distance, so walking around a wall
is progress and walking towards the goal through a wall is not, and writes real discounted returns.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from navtune.core.actions import STOP_ACTIONS


@dataclass(frozen=True)
class RewardConfig:
    """Coefficients of the navigation reward (defaults follow Habitat's PointNav/ObjectNav reward)."""

    progress: float = 1.0  # per metre of geodesic distance gained
    success_bonus: float = 2.5  # stop inside the success radius
    collision: float = 0.1  # penalty for a blocked move
    slack: float = 0.01  # penalty per step
    gamma: float = 0.99  # discount of returns

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value):
                raise ValueError(f"RewardConfig.{name} must be finite (got {value})")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"RewardConfig.gamma must be in [0, 1] (got {self.gamma})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RewardConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"RewardConfig: unknown field(s) {sorted(unknown)}")
        return cls(**d)


def step_rewards(
    distances: Sequence[float],
    actions: Sequence[str],
    collisions: Sequence[bool],
    success_radius: float,
    config: RewardConfig = RewardConfig(),
) -> np.ndarray:
    """Reward of each of the T steps. `distances` holds T+1 geodesic distances to the goal: before each
    action and after the last one. A stop ends the episode in place, so its progress term is zero."""
    d = np.asarray(distances, dtype=np.float64)
    n = len(actions)
    if d.shape != (n + 1,):
        raise ValueError(f"step_rewards: need len(actions) + 1 = {n + 1} distances, got {d.shape}")
    if len(collisions) != n:
        raise ValueError(f"step_rewards: need {n} collision flags, got {len(collisions)}")
    if not np.all(np.isfinite(d)):
        raise ValueError("step_rewards: distances must be finite (an unreachable goal has no reward)")
    stop = np.array([a in STOP_ACTIONS for a in actions], dtype=bool)
    coll = np.asarray(collisions, dtype=bool)
    r = config.progress * (d[:-1] - d[1:])
    r += config.success_bonus * (stop & (d[1:] < success_radius))
    r -= config.collision * coll
    r -= config.slack
    return r


def discounted_returns(rewards: Sequence[float], gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k}, computed backwards as a first-order IIR filter (scipy lfilter)."""
    from scipy.signal import lfilter  # here: scipy.signal takes ~0.7 s to import (the CLI imports this module)

    r = np.asarray(rewards, dtype=np.float64)
    if r.size == 0:
        return r.copy()
    return lfilter([1.0], [1.0, -gamma], r[::-1])[::-1].copy()
