"""Views from the Matterport3D Simulator itself (optional extra; `MatterSim` is built from source).

`MatterSimViews(config).for_scan(scan)` is a graph-world `ViewRenderer` backed by `MatterSim.Simulator`,
by default in discretised-view mode with the R2R camera (VFOV 60°, 320x240); seed 1's setup is
`discretized=False`, 640x480, VFOV 105°, `output_size=(320, 240)` (resized with OpenCV's Lanczos-4).
Navigation stays in navtune's graph world (it replays MatterSim's semantics exactly); MatterSim only renders. The module is
imported only when asked for, never on navtune's default path.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

INSTALL_HINT = (
    "the MatterSim Python module is not importable. Build Matterport3DSimulator "
    "(https://github.com/peteanderson80/Matterport3DSimulator: cmake -DEGL_RENDERING=ON .. && make) and put its "
    "build/ folder on PYTHONPATH, or use navtune's own skybox renderer (`navtune eval --renderer mp3d`), which needs no simulator."
)


class MatterSimUnavailable(ImportError):
    """`MatterSim` cannot be imported."""


def import_mattersim() -> ModuleType:
    try:
        import MatterSim  # type: ignore[import-not-found]
    except ImportError as e:
        raise MatterSimUnavailable(f"{INSTALL_HINT} ({e})") from e
    return MatterSim


@dataclass
class MatterSimConfig:
    skybox_root: str  # MatterSim's datasetPath: folder holding <scan>/matterport_skybox_images
    connectivity_dir: str  # MatterSim's navGraphPath: folder holding <scan>_connectivity.json + scans.txt
    width: int = 320
    height: int = 240
    vfov: float = math.radians(60)
    depth: bool = False
    preload: bool = False
    discretized: bool = True  # False: render any heading as given (continuous-heading setups)
    output_size: tuple[int, int] | None = None  # (width, height) to resize RGB to (Lanczos-4, as seed 1's frames)


class MatterSimViews:
    """One `MatterSim.Simulator` (discretised views) rendering any scan. `views.for_scan(scan)` is a graph-world
    `ViewRenderer` (give `views.for_scan` to `GraphNavEnv`); `views.render(scan, viewpoint, heading,
    elevation)` takes the scan first, like `navtune.envs.mp3d.SkyboxViews`, so either can be used.

    In discretised mode MatterSim snaps heading to 30° steps and elevation to {-30°, 0, +30°}: the seed
    model's action space."""

    def __init__(self, config: MatterSimConfig, module: ModuleType | None = None):
        ms = module if module is not None else import_mattersim()
        for path, what in ((config.skybox_root, "skybox root"), (config.connectivity_dir, "connectivity dir")):
            if not Path(path).is_dir():
                raise FileNotFoundError(f"{path}: MatterSim {what} not found")
        self.config = config
        sim = ms.Simulator()
        sim.setDatasetPath(os.fspath(config.skybox_root))
        sim.setNavGraphPath(os.fspath(config.connectivity_dir))
        sim.setCameraResolution(config.width, config.height)
        sim.setCameraVFOV(config.vfov)
        sim.setDiscretizedViewingAngles(config.discretized)
        sim.setRenderingEnabled(True)
        sim.setDepthEnabled(config.depth)
        sim.setPreloadingEnabled(config.preload)
        self._batched = hasattr(sim, "setBatchSize")  # v0.2+ batched API; v0.1 takes scalars
        if self._batched:
            sim.setBatchSize(1)
        sim.initialize()
        self._sim = sim
        self._scans: dict[str, MatterSimRenderer] = {}

    def render(self, scan: str, viewpoint_id: str, heading: float, elevation: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        if self._batched:
            self._sim.newEpisode([scan], [viewpoint_id], [float(heading)], [float(elevation)])
        else:
            self._sim.newEpisode(scan, viewpoint_id, float(heading), float(elevation))
        state: Any = self._sim.getState()
        if isinstance(state, (list, tuple)):
            state = state[0]
        rgb = np.ascontiguousarray(np.asarray(state.rgb, dtype=np.uint8)[..., ::-1])  # MatterSim gives BGR
        if self.config.output_size is not None:
            from navtune.envs.mp3d.resize import lanczos4_resize

            rgb = lanczos4_resize(rgb, self.config.output_size)
        depth = None
        if self.config.depth:
            d = np.asarray(state.depth).astype(np.float32)
            depth = (d[..., 0] if d.ndim == 3 else d) / 4000.0  # 16-bit, 0.25 mm units
        return rgb, depth

    def for_scan(self, scan: str) -> "MatterSimRenderer":
        if scan not in self._scans:
            self._scans[scan] = MatterSimRenderer(self, scan)
        return self._scans[scan]

    def close(self) -> None:
        close = getattr(self._sim, "close", None)
        if close is not None:
            close()


@dataclass
class MatterSimRenderer:
    """The `ViewRenderer` of one scan: render(viewpoint_id, heading, elevation) -> (rgb, depth | None)."""

    views: MatterSimViews
    scan: str

    def render(self, viewpoint_id: str, heading: float, elevation: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        return self.views.render(self.scan, viewpoint_id, heading, elevation)


def mattersim_available() -> bool:
    try:
        import_mattersim()
    except MatterSimUnavailable:
        return False
    return True
