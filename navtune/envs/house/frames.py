"""MiniWorld's frame <-> navtune's frame, in one place.

MiniWorld: (x, y up, z), ``dir = 0`` looks along +x, forward is (cos d, 0, -sin d), turning left adds to d.
navtune (core/geometry.py): (x, y, z up), heading 0 along +y, clockwise positive, direction (sin h, cos h).
So navtune (x, y, z) = MiniWorld (x, -z, y) and h = pi/2 - d. Nothing else in navtune converts.
"""
from __future__ import annotations

import math

import numpy as np

from navtune.core.geometry import wrap_heading


def mw_dir_to_heading(d: float) -> float:
    """The one heading conversion: MiniWorld ``dir`` (radians, CCW from +x) -> navtune heading."""
    return wrap_heading(math.pi / 2.0 - d)


def heading_to_mw_dir(h: float) -> float:
    """Inverse of `mw_dir_to_heading` (the MiniWorld ``dir`` that looks along navtune heading h)."""
    return math.pi / 2.0 - h


def mw_to_nav(p) -> tuple[float, float, float]:
    """MiniWorld position (x, y up, z) -> navtune (x, y, z up)."""
    return float(p[0]), float(-p[2]), float(p[1])


def nav_to_mw(x: float, y: float, z: float = 0.0) -> np.ndarray:
    """navtune position (x, y, z up) -> MiniWorld position array (x, y up, z)."""
    return np.array([x, z, -y], dtype=float)
