"""MatterSim's low-level navigation on any NavGraph: Left/Right/Move/Stop (and Adjust), in either of its
two heading modes.

Faithful to Matterport3DSimulator (`Simulator::populateNavigable`, `makeAction`, `setHeadingElevation`):
from a viewpoint at heading h the navigable neighbours are the adjacent viewpoints whose horizontal
direction lies within half the horizontal field of view of the view direction (cos(angle) >=
cos(vfov * W/H / 2); MatterSim uses vfov * W/H, not the pinhole formula, so 60° at 4:3 gives ±40°),
sorted by the angular distance sqrt(rel_heading² + rel_elevation²) from the view centre. "Move" goes to
the first (closest to the centre) and keeps the heading; "Adjust" turns in place by that neighbour's
relative heading (MatterSim's `makeAction(0, rel_heading, 0)`). MatterSim's own list also holds the
current viewpoint at index 0; ours does not, so our `move_to(k)` is MatterSim's index k + 1.

Heading modes (`NavigatorConfig.headings`, the one place that decides):

* ``discrete`` (`setDiscretizedViewingAngles(True)`, the R2R default): the start heading snaps to the
  nearest 30°, every turn is ±30°, so a heading is one of 12 (an Adjust turns 30° towards the neighbour).
* ``continuous`` (`setDiscretizedViewingAngles(False)`, seed 1's setup): the start heading is the episode's
  own; Left/Right add ∓30° exactly, so headings stay on the episode's grid start + k·30°; an Adjust
  leaves that grid for an arbitrary heading.

A state is (viewpoint, heading index k, grid offset): heading = offset + k·30°, offset in [0°, 30°) (0 in
discrete mode). The index is what the BFS expert searches over; the offset names the grid.

The navigability test and relative headings are computed from float32 offsets, as MatterSim does with
glm, so a neighbour on the edge of the field of view is decided as in the simulator.
"""
from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

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
#: Turn in place to face the navigable location closest to the view centre (seed 1's optional action; its
#: prompts call it "Automatically Turn Towards Node").
ADJUST = "Adjust"
HeadingMode = Literal["discrete", "continuous"]
HEADING_MODES: tuple[str, ...] = ("discrete", "continuous")


@dataclass(frozen=True)
class Camera:
    """MatterSim's camera: frames rendered at `width` x `height` with vertical fov `vfov` (radians), then
    resized to `output_size` (Lanczos) when given, as seed 1's frames were (640x480 -> 320x240)."""

    width: int = 320
    height: int = 240
    vfov: float = DEFAULT_VFOV
    output_size: tuple[int, int] | None = None  # (width, height) after resizing

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive (got {self.width}x{self.height})")
        if not 0.0 < self.vfov < math.pi:
            raise ValueError(f"camera vfov must be in (0, pi) radians (got {self.vfov})")
        if self.output_size is not None:
            if len(self.output_size) != 2 or min(self.output_size) <= 0:
                raise ValueError(f"camera output_size must be (width, height) > 0 (got {self.output_size})")
            object.__setattr__(self, "output_size", (int(self.output_size[0]), int(self.output_size[1])))  # hashable

    @property
    def hfov(self) -> float:
        """Horizontal fov of MatterSim's navigability test: vfov * W / H (radians)."""
        return self.vfov * self.width / self.height

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames an agent sees."""
        return self.output_size if self.output_size is not None else (self.width, self.height)


@dataclass(frozen=True)
class NavigatorConfig:
    """How the simulator is set up for low-level navigation: heading mode, camera, whether Adjust exists."""

    headings: HeadingMode = "discrete"
    camera: Camera = field(default_factory=Camera)
    adjust: bool = False  # offer "Adjust" as an action (allowed where Move is)

    def __post_init__(self) -> None:
        if self.headings not in HEADING_MODES:
            raise ValueError(f"headings must be one of {', '.join(HEADING_MODES)} (got {self.headings!r})")

    @property
    def continuous(self) -> bool:
        return self.headings == "continuous"

    @property
    def action_space(self) -> tuple[str, ...]:
        return (LEFT, RIGHT, MOVE, ADJUST, STOP) if self.adjust else (LEFT, RIGHT, MOVE, STOP)


def heading_index_of(heading: float) -> int:
    """Nearest of the 12 discrete headings (MatterSim snaps start headings this way: lround)."""
    step = int(math.floor(wrap_heading(heading) / HEADING_STEP + 0.5))
    return step % NUM_HEADINGS


def heading_of(index: int, offset: float = 0.0) -> float:
    """Heading of grid index `index` on the grid offset + k * 30°."""
    if offset == 0.0:
        return (index % NUM_HEADINGS) * HEADING_STEP
    return wrap_heading(offset + (index % NUM_HEADINGS) * HEADING_STEP)


def grid_of(heading: float) -> tuple[int, float]:
    """(index, offset) with heading = offset + index * 30°, offset in [0, 30°): a continuous heading's grid."""
    h = wrap_heading(heading)
    k = int(h // HEADING_STEP)
    offset = h - k * HEADING_STEP
    if offset >= HEADING_STEP:  # rounding at a grid line
        k, offset = k + 1, 0.0
    if offset < 0.0:
        k, offset = k - 1, offset + HEADING_STEP
    return k % NUM_HEADINGS, offset


class _EdgeGeometry:
    """Per graph, once: every directed edge i -> j (grouped by i, in adjacency order) with MatterSim's float32
    offsets (glm::vec3 target_dir), 1 / its horizontal length and its elevation angle."""

    def __init__(self, graph: NavGraph):
        counts = np.fromiter((len(a) for a in graph.adjacency), dtype=np.int64, count=len(graph.ids))
        self.start = np.concatenate([[0], np.cumsum(counts)])
        self.src = np.repeat(np.arange(len(graph.ids)), counts)
        self.dst = np.fromiter((j for a in graph.adjacency for j in a), dtype=np.int64, count=int(counts.sum()))
        pos = graph.positions.astype(np.float32)
        d = pos[self.dst] - pos[self.src]
        self.dx, self.dy = d[:, 0], d[:, 1]
        horiz = np.sqrt(self.dx * self.dx + self.dy * self.dy)  # glm::length of the xy projection
        with np.errstate(divide="ignore"):
            self.inv = np.float32(1.0) / horiz  # glm::normalize = v * inversesqrt(dot(v, v))
        self.rel_elevation = np.arctan2(d[:, 2].astype(np.float64), horiz.astype(np.float64))

    def view(self, sl, heading: float, hfov: float, elevation: float = 0.0):
        """(visible mask, rel_heading, angular distance from the view centre) of the edges `sl` at `heading`."""
        adj = math.pi / 2.0 - heading
        cx, cy = np.float32(math.cos(adj)), np.float32(math.sin(adj))  # camera_horizon_dir = (sin h, cos h)
        dx, dy, inv = self.dx[sl], self.dy[sl], self.inv[sl]
        with np.errstate(invalid="ignore"):
            cos_angle = (dx * inv) * cx + (dy * inv) * cy  # nan for a neighbour straight above: never visible
        visible = cos_angle.astype(np.float64) >= math.cos(hfov / 2.0)
        rel_heading = np.arctan2((dx * cy - dy * cx).astype(np.float64), (dx * cx + dy * cy).astype(np.float64))
        rel_elevation = self.rel_elevation[sl] - elevation
        return visible, rel_heading, np.sqrt(rel_heading**2 + rel_elevation**2)


_GEOMETRY: "weakref.WeakKeyDictionary[NavGraph, _EdgeGeometry]" = weakref.WeakKeyDictionary()


def _geometry(graph: NavGraph) -> _EdgeGeometry:
    geo = _GEOMETRY.get(graph)
    if geo is None:
        geo = _GEOMETRY[graph] = _EdgeGeometry(graph)
    return geo


def _visible_order(graph: NavGraph, i: int, heading: float, hfov: float, elevation: float = 0.0):
    """(neighbour indices visible at `heading`, closest to the view centre first; their rel_headings)."""
    geo = _geometry(graph)
    sl = slice(geo.start[i], geo.start[i + 1])
    visible, rel_heading, ang = geo.view(sl, heading, hfov, elevation)
    keep = np.nonzero(visible)[0]
    order = keep[np.argsort(ang[keep], kind="stable")]
    return geo.dst[sl][order].tolist(), rel_heading[order]


def _first_visible(graph: NavGraph, heading: float, hfov: float) -> np.ndarray:
    """(N,) index of every node's first navigable neighbour at one heading (-1: none), all nodes at once."""
    geo = _geometry(graph)
    out = np.full(len(graph.ids), -1, dtype=np.int64)
    visible, _, ang = geo.view(slice(None), heading, hfov)
    edges = np.nonzero(visible)[0]
    if len(edges):
        order = edges[np.lexsort((edges, ang[edges], geo.src[edges]))]  # by node, then angle, then adjacency
        first = np.unique(geo.src[order], return_index=True)[1]
        out[geo.src[order[first]]] = geo.dst[order[first]]
    return out


def navigable_neighbours(
    graph: NavGraph, node_id: str, heading: float, hfov: float | None = None, elevation: float = 0.0
) -> list[str]:
    """Adjacent viewpoints visible within the horizontal fov at `heading`, closest to the view centre first."""
    order, _ = _visible_order(graph, graph.index[node_id], heading, DEFAULT_HFOV if hfov is None else hfov, elevation)
    return [graph.ids[j] for j in order]


@dataclass(frozen=True)
class LowLevelState:
    """Agent state: viewpoint and heading index k on the grid `heading_offset` + k * 30° (offset 0 in
    discretised mode), elevation 0."""

    viewpoint: str
    heading_index: int
    heading_offset: float = 0.0

    @property
    def heading(self) -> float:
        return heading_of(self.heading_index, self.heading_offset)

    @classmethod
    def from_heading(cls, viewpoint: str, heading: float) -> "LowLevelState":
        """Discretised mode's state at `heading` (snapped to the nearest 30°)."""
        return cls(viewpoint, heading_index_of(heading))

    @classmethod
    def exact(cls, viewpoint: str, heading: float) -> "LowLevelState":
        """Continuous mode's state at exactly `heading`."""
        k, offset = grid_of(heading)
        return cls(viewpoint, k, offset)

    def turned(self, steps: int) -> "LowLevelState":
        """The state after `steps` turns of 30° (positive: right), on the same grid."""
        return LowLevelState(self.viewpoint, (self.heading_index + steps) % NUM_HEADINGS, self.heading_offset)


class LowLevelNavigator:
    """Applies Left/Right/Move/Adjust/Stop and `move_to(k)` on a NavGraph in the mode of its `config`;
    caches the navigable lists. `hfov` overrides the camera's horizontal fov (radians)."""

    def __init__(self, graph: NavGraph, hfov: float | None = None, config: NavigatorConfig | None = None):
        self.graph = graph
        self.config = config if config is not None else NavigatorConfig()
        self.hfov = float(hfov) if hfov is not None else self.config.camera.hfov
        self._cache: dict[tuple[str, float], tuple[list[str], np.ndarray]] = {}
        self._move_tables: OrderedDict[float, np.ndarray] = OrderedDict()

    # ---------------------------------------------------------------- states
    def start_state(self, viewpoint: str, heading: float) -> LowLevelState:
        """The state MatterSim's newEpisode puts the agent in (snapped to 30° in discretised mode)."""
        return LowLevelState.exact(viewpoint, heading) if self.config.continuous else LowLevelState.from_heading(viewpoint, heading)

    def state_at(self, viewpoint: str, heading: float) -> LowLevelState:
        """The state at a recorded heading (continuous: exactly; discretised: the nearest of the 12)."""
        return self.start_state(viewpoint, heading)

    @property
    def action_space(self) -> tuple[str, ...]:
        return self.config.action_space

    # ---------------------------------------------------------------- view
    def _visible(self, state: LowLevelState) -> tuple[list[str], np.ndarray]:
        key = (state.viewpoint, state.heading)
        hit = self._cache.get(key)
        if hit is None:
            order, rel = _visible_order(self.graph, self.graph.index[state.viewpoint], key[1], self.hfov)
            hit = self._cache[key] = ([self.graph.ids[j] for j in order], rel)
            if len(self._cache) > 200_000:  # continuous headings are unbounded: keep memory flat
                self._cache.clear()
        return hit

    def navigable(self, state: LowLevelState) -> list[str]:
        """Navigable neighbours in MatterSim order (without the current viewpoint)."""
        return self._visible(state)[0]

    def move_table(self, heading_offset: float = 0.0) -> np.ndarray:
        """(N, 12) int array: graph index of the "Move" target from (node, heading index) on the grid
        `heading_offset` + k * 30°, -1 if none. Kept for the 16 most recent grids."""
        table = self._move_tables.get(heading_offset)
        if table is None:
            table = np.stack([_first_visible(self.graph, heading_of(h, heading_offset), self.hfov)
                              for h in range(NUM_HEADINGS)], axis=1)
            self._move_tables[heading_offset] = table
            if len(self._move_tables) > 16:
                self._move_tables.popitem(last=False)
        else:
            self._move_tables.move_to_end(heading_offset)
        return table

    def move_possible(self, state: LowLevelState) -> bool:
        return bool(self.navigable(state))

    def allowed_actions(self, state: LowLevelState) -> tuple[str, ...]:
        if not self.move_possible(state):
            return (LEFT, RIGHT, STOP)
        return self.action_space

    # ---------------------------------------------------------------- actions
    def move_to(self, state: LowLevelState, k: int) -> LowLevelState:
        """Move to the k-th navigable neighbour, keeping the heading."""
        nav = self.navigable(state)
        if not 0 <= k < len(nav):
            raise ValueError(f"move_to({k}): only {len(nav)} navigable neighbours from {state}")
        return LowLevelState(nav[k], state.heading_index, state.heading_offset)

    def adjust(self, state: LowLevelState) -> LowLevelState:
        """Turn in place to face the navigable neighbour closest to the view centre (MatterSim's
        makeAction(0, rel_heading, 0)); in discretised mode that turn is 30° towards it (or none)."""
        nav, rel = self._visible(state)
        if not nav:
            raise ValueError(f"Adjust: nothing navigable from {state}")
        turn = float(rel[0])
        if not self.config.continuous:
            return state.turned(0 if turn == 0.0 else (1 if turn > 0.0 else -1))
        if turn == 0.0:
            return state
        return LowLevelState.exact(state.viewpoint, wrap_heading(state.heading + turn))

    def step(self, state: LowLevelState, action: str) -> LowLevelState:
        if action == LEFT:
            return state.turned(-1)
        if action == RIGHT:
            return state.turned(1)
        if action == MOVE:
            return self.move_to(state, 0)
        if action == ADJUST:
            return self.adjust(state)
        if action == STOP:
            return state
        raise ValueError(f"unknown low-level action {action!r}; expected one of {', '.join(self.action_space)}")


#: Navigators kept per process, least recently used evicted. (Keyed weakly by graph they were never freed:
#: each navigator holds its graph, so the key stayed alive, and a run over thousands of houses grew ~0.1 MiB
#: per house.) 64 holds every scan of an R2R split in use at once with room to spare.
NAVIGATOR_CACHE_SIZE = 64
_NAVIGATORS: "OrderedDict[tuple[int, float, NavigatorConfig], LowLevelNavigator]" = OrderedDict()


def navigator_for(graph: NavGraph, hfov: float | None = None, config: NavigatorConfig | None = None) -> LowLevelNavigator:
    """The process's shared navigator of `graph` per (hfov, config) (its move tables and the expert's search
    are built once, however many envs of the process visit the graph)."""
    config = config if config is not None else NavigatorConfig()
    hfov = float(hfov) if hfov is not None else config.camera.hfov
    key = (id(graph), hfov, config)  # a cached navigator holds its graph, so the id is not reused meanwhile
    nav = _NAVIGATORS.get(key)
    if nav is None or nav.graph is not graph:
        nav = _NAVIGATORS[key] = LowLevelNavigator(graph, hfov, config)
        while len(_NAVIGATORS) > NAVIGATOR_CACHE_SIZE:
            _NAVIGATORS.popitem(last=False)
    else:
        _NAVIGATORS.move_to_end(key)
    return nav
