"""navtune's one heading convention (R2R / MatterSim's), and conversions to it.

Heading: radians in [0, 2*pi), 0 along +y, positive turning right (clockwise seen from above, z up);
the view direction is (sin h, cos h). Positions are metres (x, y, z), z up.
"""
from __future__ import annotations

import math

TWO_PI = 2.0 * math.pi


def wrap_heading(h: float) -> float:
    """Wrap an angle to [0, 2*pi)."""
    h = math.fmod(h, TWO_PI)
    if h < 0:
        h += TWO_PI
    return 0.0 if h >= TWO_PI else h


def heading_vector(h: float) -> tuple[float, float]:
    """Unit (x, y) direction of a heading."""
    return math.sin(h), math.cos(h)


def heading_to(dx: float, dy: float) -> float:
    """Heading that looks along (dx, dy)."""
    return wrap_heading(math.atan2(dx, dy))


def angle_diff(a: float, b: float) -> float:
    """Signed smallest difference a - b in (-pi, pi]."""
    d = math.fmod(a - b, TWO_PI)
    if d <= -math.pi:
        d += TWO_PI
    elif d > math.pi:
        d -= TWO_PI
    return d


def horizontal_fov(vfov: float, aspect: float) -> float:
    """Horizontal field of view (radians) of a pinhole camera with vertical fov and width/height aspect."""
    return 2.0 * math.atan(math.tan(vfov / 2.0) * aspect)
