"""Named simulator setups for R2R low-level runs (`--preset NAME` of `navtune eval`, `navtune collect r2r`,
`navtune r2r expert` and `navtune r2r replay`). One dataclass per setup, registered here and nowhere else.

* ``r2r``: MatterSim's discretised-view R2R setup (12 headings, start snapped to 30°, VFOV 60°, frames
  rendered at 320x240), navtune's default. Matches the R2R shortest-path agent and most published
  low-level agents.
* ``seed1``: the setup seed 1's model (Qwen2.5-VL-3B-R2R-low-level) was trained and evaluated in:
  continuous headings (start heading as given, turns of exactly 30°), VFOV 105°, frames rendered at
  640x480 and resized to 320x240 with Lanczos, Move keeps the heading, at most 32 steps, no Adjust.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from navtune.core.registry import Registry
from navtune.graph.lowlevel import Camera, NavigatorConfig


@dataclass(frozen=True)
class R2RSetup:
    """A simulator configuration for low-level R2R: navigation (heading mode, camera, Adjust) and the
    step budget of an episode."""

    name: str
    navigator: NavigatorConfig = field(default_factory=NavigatorConfig)
    max_steps: int = 50

    @property
    def camera(self) -> Camera:
        return self.navigator.camera


SETUPS: Registry[R2RSetup] = Registry("R2R setup (--preset)")
DEFAULT_SETUP = "r2r"

SETUPS.add("r2r", R2RSetup("r2r", NavigatorConfig("discrete", Camera(320, 240, math.radians(60))), max_steps=50))
SETUPS.add("seed1", R2RSetup(
    "seed1", NavigatorConfig("continuous", Camera(640, 480, math.radians(105), output_size=(320, 240))), max_steps=32))


def get_setup(name: str | R2RSetup | None) -> R2RSetup:
    """The registered setup `name` (None: the default); clear error naming the known ones."""
    if isinstance(name, R2RSetup):
        return name
    return SETUPS.get(name or DEFAULT_SETUP)
