"""MatterSim's discretised-view navigation on any NavGraph: 12 headings, Left/Right/Move/Stop.

Faithful to Matterport3DSimulator (`Simulator::populateNavigable`): from a viewpoint at heading h the
navigable neighbours are the adjacent viewpoints whose horizontal direction lies within half the
horizontal field of view of the view direction (cos(angle) >= cos(vfov * W/H / 2), vfov 60°, W/H 4/3, so
±40°), sorted by the angular distance sqrt(rel_heading² + rel_elevation²) from the view centre. "Move"
goes to the first (closest to the centre); moving keeps the heading. MatterSim's own list also holds the
current viewpoint at index 0; ours does not, so our `move_to(k)` is MatterSim's index k + 1.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from navtune.core.actions import LEFT, MOVE, RIGHT, STOP
from navtune.core.geometry import wrap_heading
from navtune.graph.navgraph import NavGraph

HEADING_STEP = math.radians(30)
NUM_HEADINGS = 12
ELEVATION_STEP = math.radians(30)
#: MatterSim's R2R camera: vfov 60°, 640x480; its navigability test uses vfov * W / H as the horizontal fov.
DEFAULT_VFOV = math.radians(60)
DEFAULT_ASPECT = 4.0 / 3.0
DEFAULT_HFOV = DEFAULT_VFOV * DEFAULT_ASPECT


def heading_index_of(heading: float) -> int:
    """Nearest of the 12 discrete headings (MatterSim snaps start headings this way: lround)."""
    step = int(math.floor(wrap_heading(heading) / HEADING_STEP + 0.5))
    return step % NUM_HEADINGS


def heading_of(index: int) -> float:
    return (index % NUM_HEADINGS) * HEADING_STEP


def navigable_neighbours(
    graph: NavGraph, node_id: str, heading: float, hfov: float | None = None, elevation: float = 0.0
) -> list[str]:
    """Adjacent viewpoints visible within the horizontal fov at `heading`, closest to the view centre first."""
    half = (DEFAULT_HFOV if hfov is None else hfov) / 2.0
    cos_half = math.cos(half)
    i = graph.index[node_id]
    nbrs = graph.adjacency[i]
    if not nbrs:
        return []
    d = graph.positions[nbrs] - graph.positions[i]
    horiz = np.hypot(d[:, 0], d[:, 1])
    cx, cy = math.sin(heading), math.cos(heading)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_angle = (d[:, 0] * cx + d[:, 1] * cy) / horiz  # nan for a neighbour straight above: never visible
    rel_heading = np.arctan2(d[:, 0] * cy - d[:, 1] * cx, d[:, 0] * cx + d[:, 1] * cy)
    rel_elevation = np.arctan2(d[:, 2], horiz) - elevation
    ang = np.sqrt(rel_heading**2 + rel_elevation**2)
    keep = np.nonzero(cos_angle >= cos_half)[0]
    order = keep[np.argsort(ang[keep], kind="stable")]
    return [graph.ids[nbrs[k]] for k in order]


@dataclass(frozen=True)
class LowLevelState:
    """Agent state in discretised-view mode: viewpoint and heading index (heading = idx * 30°), elevation 0."""

    viewpoint: str
    heading_index: int

    @property
    def heading(self) -> float:
        return heading_of(self.heading_index)

    @classmethod
    def from_heading(cls, viewpoint: str, heading: float) -> "LowLevelState":
        return cls(viewpoint, heading_index_of(heading))


class LowLevelNavigator:
    """Applies Left/Right/Move/Stop and `move_to(k)` on a NavGraph; caches the navigable lists."""

    def __init__(self, graph: NavGraph, hfov: float = DEFAULT_HFOV):
        self.graph = graph
        self.hfov = hfov
        self._cache: dict[tuple[str, int], list[str]] = {}
        self._move_table: np.ndarray | None = None

    def navigable(self, state: LowLevelState) -> list[str]:
        """Navigable neighbours in MatterSim order (without the current viewpoint)."""
        key = (state.viewpoint, state.heading_index % NUM_HEADINGS)
        nav = self._cache.get(key)
        if nav is None:
            nav = navigable_neighbours(self.graph, state.viewpoint, heading_of(key[1]), self.hfov)
            self._cache[key] = nav
        return nav

    def move_table(self) -> np.ndarray:
        """(N, 12) int array: graph index of the "Move" target from (node, heading index), -1 if none."""
        if self._move_table is None:
            table = np.full((len(self.graph.ids), NUM_HEADINGS), -1, dtype=np.int64)
            for i, vid in enumerate(self.graph.ids):
                for h in range(NUM_HEADINGS):
                    nav = self.navigable(LowLevelState(vid, h))
                    if nav:
                        table[i, h] = self.graph.index[nav[0]]
            self._move_table = table
        return self._move_table

    def move_possible(self, state: LowLevelState) -> bool:
        return bool(self.navigable(state))

    def allowed_actions(self, state: LowLevelState) -> tuple[str, ...]:
        return (LEFT, RIGHT, MOVE, STOP) if self.move_possible(state) else (LEFT, RIGHT, STOP)

    def move_to(self, state: LowLevelState, k: int) -> LowLevelState:
        """Move to the k-th navigable neighbour, keeping the heading."""
        nav = self.navigable(state)
        if not 0 <= k < len(nav):
            raise ValueError(f"move_to({k}): only {len(nav)} navigable neighbours from {state}")
        return LowLevelState(nav[k], state.heading_index)

    def step(self, state: LowLevelState, action: str) -> LowLevelState:
        if action == LEFT:
            return LowLevelState(state.viewpoint, (state.heading_index - 1) % NUM_HEADINGS)
        if action == RIGHT:
            return LowLevelState(state.viewpoint, (state.heading_index + 1) % NUM_HEADINGS)
        if action == MOVE:
            return self.move_to(state, 0)
        if action == STOP:
            return state
        raise ValueError(f"unknown low-level action {action!r}; expected one of Left, Right, Move, Stop")


_NAVIGATORS: "weakref.WeakKeyDictionary[NavGraph, dict[float, LowLevelNavigator]]" = weakref.WeakKeyDictionary()


def navigator_for(graph: NavGraph, hfov: float = DEFAULT_HFOV) -> LowLevelNavigator:
    """The process's shared navigator of `graph` (its move table and the expert's search are built once,
    however many envs of the process visit the graph)."""
    per_graph = _NAVIGATORS.setdefault(graph, {})
    nav = per_graph.get(hfov)
    if nav is None:
        nav = per_graph[hfov] = LowLevelNavigator(graph, hfov)
    return nav
