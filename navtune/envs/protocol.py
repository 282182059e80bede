"""The one small environment protocol every backend implements (gymnasium-like reset/step).

Import-light on purpose: agents and metrics may import these dataclasses without pulling a simulator.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass
class Pose:
    """Agent pose in navtune's convention: metres, z up; heading 0 along +y, clockwise positive."""

    x: float
    y: float
    z: float = 0.0
    heading: float = 0.0

    def position(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.z)

    def to_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "z": self.z, "heading": self.heading}


@dataclass
class Observation:
    rgb: np.ndarray | None  # (H, W, 3) uint8
    depth: np.ndarray | None  # (H, W) float32, metres
    pose: Pose
    allowed_actions: tuple[str, ...]
    instruction: str | None = None  # VLN route instruction, or the ObjectNav goal phrase
    step: int = 0
    distance_traveled: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # e.g. viewpoint id, geodesic distance to goal


@dataclass
class StepResult:
    observation: Observation
    done: bool
    collided: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class NavEnv(Protocol):
    """What navtune asks of a simulator backend."""

    action_space: tuple[str, ...]

    def reset(self, episode: Any) -> Observation: ...

    def step(self, action: str) -> StepResult: ...

    def expert_action(self) -> str: ...

    def close(self) -> None: ...


def check_step(env: Any, action: str, actions: Sequence[str]) -> None:
    """The guard every backend's `step` starts with: an episode is running and `action` is one it knows."""
    if env.episode is None:
        raise RuntimeError("call reset(episode) before step()")
    if env.done:
        raise RuntimeError("episode is over; call reset()")
    if action not in actions:
        raise ValueError(f"unknown action {action!r}; expected one of {tuple(actions)}")


def check_expert(env: Any) -> None:
    """The guard every backend's `expert_action` starts with: an episode is running."""
    if env.episode is None:
        raise RuntimeError("call reset(episode) before expert_action()")
