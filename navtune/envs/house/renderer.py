"""`HouseViewRenderer`: the graph world's ViewRenderer over a generated house (views rendered by MiniWorld at
a viewpoint and heading), and helpers to run `GraphNavEnv` on house graphs. One MiniWorld world serves
every house of a process (it is reloaded when the scan changes)."""
from __future__ import annotations

import os
from collections import OrderedDict
from functools import lru_cache
from typing import TYPE_CHECKING, Hashable

import numpy as np

from navtune.envs.house.layout import generate_house, seed_from_scene_id
from navtune.envs.house.navgraph import build_house_graph
from navtune.graph.navgraph import NavGraph

if TYPE_CHECKING:
    from navtune.envs.house.world import HouseWorld


class FrameCache:
    """Rendered views by (render settings, house, viewpoint, heading, elevation), least recently used first out
    beyond `max_bytes`. A graph world revisits the same views all the time (an RL group starts G roll-outs from
    one pose; evaluation reruns the same starts for every agent), and a house view is a pure function of those
    keys, so a hit returns exactly the frame a render would (read-only arrays, shared by the callers)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = self.misses = 0
        self._items: OrderedDict[Hashable, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[np.ndarray, np.ndarray | None] | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: Hashable, rgb: np.ndarray, depth: np.ndarray | None) -> None:
        size = rgb.nbytes + (depth.nbytes if depth is not None else 0)
        if size > self.max_bytes:
            return
        for a in (rgb, depth):
            if a is not None:
                a.flags.writeable = False
        self._items[key] = (rgb, depth)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (r, d) = self._items.popitem(last=False)
            self.bytes -= r.nbytes + (d.nbytes if d is not None else 0)

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0


#: One per process (envs of an inline pool share it); NAVTUNE_FRAME_CACHE_MB sets its size (0: off).
FRAME_CACHE = FrameCache(int(float(os.environ.get("NAVTUNE_FRAME_CACHE_MB", "256")) * (1 << 20)))


@lru_cache(maxsize=64)
def house_graph(scan: str) -> NavGraph:
    """The navigation graph of house scan 'house_<seed>' (deterministic; cached per process)."""
    return build_house_graph(generate_house(seed_from_scene_id(scan)))[0]


class HouseViewRenderer:
    """Renders (rgb (H, W, 3) uint8, depth (H, W) float32 metres) at a viewpoint of `graph` in house `scan`.
    Heading in navtune's convention; elevation in radians, positive up (R2R's)."""

    def __init__(self, scan: str, graph: NavGraph | None = None, world: "HouseWorld | None" = None,
                 width: int = 320, height: int = 240, vfov_deg: float = 60.0, depth: bool = True,
                 cam_height: float = 1.5, cache: FrameCache | None = FRAME_CACHE):
        self.cache = cache
        self._settings = (width, height, vfov_deg, cam_height)
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
        key = (self._settings, self.depth, self.scan, viewpoint_id, round(float(heading), 9), round(float(elevation), 9))
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        self.world.load(self.seed)
        x, y, _ = self.graph.position(viewpoint_id)
        rgb, depth = self.world.render_at(float(x), float(y), heading, elevation, depth=self.depth)
        if self.cache is not None:
            self.cache.put(key, rgb, depth)
        return rgb, depth


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
        kw = self._kw  # the settings also key the frame cache: pass the world's own
        self._cache[scan] = r = HouseViewRenderer(scan, world=self._world, width=int(kw["width"]),
                                                  height=int(kw["height"]), vfov_deg=float(kw["vfov_deg"]),
                                                  depth=bool(kw["depth"]), cam_height=float(kw["cam_height"]))
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
