"""Habitat's frame (metres, y up, the agent looks along -z, turn_left = +yaw about y) <-> navtune's
(metres, z up, heading 0 along +y, clockwise positive):

    navtune (x, y, z) = habitat (x, -z, y);   navtune heading = -(habitat yaw about +y)

Both frames are right-handed; habitat's identity rotation looks along navtune's +y (heading 0). The
position/rotation mapping is defined once in `navtune.tasks.habitat_datasets` (the dataset readers need it
and `tasks/` may not import `envs/`); this module adds the Pose-level pair the env uses.
"""
from __future__ import annotations

from typing import Any, Sequence

from navtune.envs.protocol import Pose
from navtune.tasks.habitat_datasets import (
    habitat_to_navtune_position,
    heading_from_rotation,
    navtune_to_habitat_position,
    quaternion_coeffs,
    rotation_from_heading,
)

__all__ = [
    "habitat_to_navtune",
    "habitat_to_navtune_position",
    "heading_from_rotation",
    "navtune_to_habitat",
    "navtune_to_habitat_position",
    "quaternion_coeffs",
    "rotation_from_heading",
]


def habitat_to_navtune(position: Sequence[float], rotation: Any | None = None) -> Pose:
    """A habitat agent state (position, rotation) as a navtune Pose."""
    x, y, z = habitat_to_navtune_position(position)
    return Pose(x, y, z, heading_from_rotation(rotation) if rotation is not None else 0.0)


def navtune_to_habitat(pose: Pose) -> tuple[tuple[float, float, float], list[float]]:
    """Inverse of `habitat_to_navtune`: (habitat position, rotation [x, y, z, w])."""
    return navtune_to_habitat_position(pose.position()), rotation_from_heading(pose.heading)
