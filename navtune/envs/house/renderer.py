"""`HouseViewRenderer`: the graph world's ViewRenderer over a generated house (views rendered by MiniWorld at
a viewpoint and heading), and helpers to run `GraphNavEnv` on house graphs. One MiniWorld world serves
every house of a process (it is reloaded when the scan changes)."""
from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from navtune.envs.house.layout import generate_house, seed_from_scene_id
from navtune.envs.house.navgraph import build_house_graph
from navtune.graph.navgraph import NavGraph

if TYPE_CHECKING:
    from navtune.envs.house.world import HouseWorld


@lru_cache(maxsize=64)
def house_graph(scan: str) -> NavGraph:
    """The navigation graph of house scan 'house_<seed>' (deterministic; cached per process)."""
    return build_house_graph(generate_house(seed_from_scene_id(scan)))[0]


class HouseViewRenderer:
    """Renders (rgb (H, W, 3) uint8, depth (H, W) float32 metres) at a viewpoint of `graph` in house `scan`.
    Heading in navtune's convention; elevation in radians, positive up (R2R's)."""

    def __init__(self, scan: str, graph: NavGraph | None = None, world: "HouseWorld | None" = None,
                 width: int = 320, height: int = 240, vfov_deg: float = 60.0, depth: bool = True,
                 cam_height: float = 1.5):
        if world is None:
            from navtune.envs.house.world import HouseWorld

            world = HouseWorld(seed=seed_from_scene_id(scan), width=width, height=height, vfov_deg=vfov_deg,
                               depth=depth, cam_height=cam_height)
        self.world = world
        self.scan = scan
        self.seed = seed_from_scene_id(scan)
        self.graph = graph if graph is not None else house_graph(scan)
        self.depth = depth

    def render(self, viewpoint_id: str, heading: float, elevation: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        if viewpoint_id not in self.graph.index:
            raise KeyError(f"viewpoint {viewpoint_id!r} is not in house graph {self.scan!r}")
        self.world.load(self.seed)
        x, y, _ = self.graph.position(viewpoint_id)
        return self.world.render_at(float(x), float(y), heading, elevation, depth=self.depth)


class HouseRenderers:
    """scan -> HouseViewRenderer sharing one world (pass as GraphNavEnv's `renderer`). The last `keep`
    renderers are kept (each holds its house graph): an evaluation over thousands of houses stays flat."""

    def __init__(self, width: int = 320, height: int = 240, vfov_deg: float = 60.0, depth: bool = True,
                 cam_height: float = 1.5, keep: int = 8):
        self._kw = dict(width=width, height=height, vfov_deg=vfov_deg, depth=depth, cam_height=cam_height)
        self._world: "HouseWorld | None" = None
        self._cache: OrderedDict[str, HouseViewRenderer] = OrderedDict()
        self._keep = keep

    def __call__(self, scan: str) -> HouseViewRenderer:
        if scan in self._cache:
            self._cache.move_to_end(scan)
            return self._cache[scan]
        if self._world is None:
            from navtune.envs.house.world import HouseWorld

            self._world = HouseWorld(seed=seed_from_scene_id(scan), **self._kw)  # type: ignore[arg-type]
        self._cache[scan] = r = HouseViewRenderer(scan, world=self._world, depth=bool(self._kw["depth"]))
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        return r

    def close(self) -> None:
        if self._world is not None:
            self._world.close()
            self._world = None


def house_graph_env(renderer: bool = True, **kwargs):
    """A `GraphNavEnv` over generated houses (graphs built per scan on first use), with rendered views
    when `renderer` is true (else a pure graph world)."""
    from navtune.envs.graph.env import GraphNavEnv

    return GraphNavEnv(house_graph, HouseRenderers() if renderer else None, **kwargs)
