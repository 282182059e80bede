"""View renderers for the graph world (R2R labels with frames, graph evaluation), by name.

A renderer factory is a picklable zero-argument callable, so each worker process builds its own renderer
(simulators and GL contexts must not cross processes). Scene renderers answer
`render(scan, viewpoint, heading) -> (rgb (H, W, 3) uint8, depth (H, W) metres or None)`; `per_scan` turns
one into GraphNavEnv's scan -> `ViewRenderer` callable.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

RENDERERS = ("none", "house", "mp3d")


def _mp3d(skybox_dir: str, data_dir: str, width: int, height: int, depth: bool, camera: Any = None) -> Any:
    from navtune.envs.mp3d import CameraSpec, SkyboxViews

    return SkyboxViews(skybox_dir, data_dir, camera=camera or CameraSpec(width=width, height=height), depth=depth)


class ScanRenderer:
    """GraphNavEnv's per-scan `ViewRenderer` over a scene renderer `render(scan, viewpoint, heading)`."""

    def __init__(self, scenes: Any, scan: str):
        self.scenes, self.scan = scenes, scan

    def render(self, viewpoint_id: str, heading: float, elevation: float = 0.0):
        return self.scenes.render(self.scan, viewpoint_id, heading)


def per_scan(scenes: Any) -> Callable[[str], ScanRenderer]:
    """scan -> `ScanRenderer` over `scenes` (a light adapter made per call), the `renderer` GraphNavEnv takes."""

    def for_scan(scan: str) -> ScanRenderer:
        return ScanRenderer(scenes, scan)

    return for_scan


class HouseScenes:
    """The house simulator's views behind the scene-renderer interface: one MiniWorld world for every
    house scan of the process."""

    def __init__(self, width: int, height: int, depth: bool = True):
        os.environ.setdefault("PYGLET_HEADLESS", "1")
        from navtune.envs.house.renderer import HouseRenderers

        self.renderers = HouseRenderers(width=width, height=height, depth=depth)

    def render(self, scan: str, viewpoint: str, heading: float):
        return self.renderers(scan).render(viewpoint, heading, 0.0)

    def close(self) -> None:
        self.renderers.close()


def _house(data_dir: str, width: int, height: int, depth: bool) -> Any:
    return HouseScenes(width, height, depth)


def renderer_factory(
    name: str,
    data_dir: str | os.PathLike | None = None,
    skybox_dir: str | os.PathLike | None = None,
    width: int = 320,
    height: int = 240,
    depth: bool = True,
    camera: Any = None,
) -> Callable[[], Any] | None:
    """The factory for renderer `name` (None for "none"); clear errors for missing inputs. `camera` (a
    `navtune.graph.Camera`, e.g. an R2R setup's) replaces width x height for the mp3d renderer."""
    if name == "none":
        return None
    if name == "mp3d":
        if skybox_dir is None:
            raise ValueError("renderer 'mp3d' needs --skybox-dir (the Matterport3D skybox images)")
        if not Path(skybox_dir).is_dir():
            raise ValueError(f"--skybox-dir {skybox_dir}: folder not found")
        return functools.partial(_mp3d, str(skybox_dir), str(data_dir), width, height, depth, camera)
    if name == "house":
        return functools.partial(_house, str(data_dir), width, height, depth)
    raise ValueError(f"unknown renderer {name!r}; known: {', '.join(RENDERERS)}")
