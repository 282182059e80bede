"""Occupancy grid of a house inflated by the agent radius, exact collision test, and geodesic distance fields.

`collides(x, y)` is MiniWorld's own test written over the plan (circle vs wall segments, circle vs object
circles; strict `<` like MiniWorld), and the grid marks a cell free exactly when its centre passes that test
and lies inside a room, so planning on the grid and stepping in MiniWorld agree. Distance fields are
multi-source Dijkstra runs (scipy.sparse.csgraph) over the 8-connected free cells.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

if TYPE_CHECKING:
    from navtune.envs.house.layout import HouseSpec, ObjectSpec

RESOLUTION = 0.1


def _seg_dist(px: np.ndarray, py: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Distance from points (P,) to each segment (S, 2, 2): returns (P, S)."""
    a = segs[:, 0, :]
    ab = segs[:, 1, :] - a
    apx = px[:, None] - a[None, :, 0]
    apy = py[:, None] - a[None, :, 1]
    denom = np.maximum((ab * ab).sum(axis=1), 1e-12)
    t = np.clip((apx * ab[None, :, 0] + apy * ab[None, :, 1]) / denom, 0.0, 1.0)
    cx = a[None, :, 0] + t * ab[None, :, 0]
    cy = a[None, :, 1] + t * ab[None, :, 1]
    return np.hypot(cx - px[:, None], cy - py[:, None])


def _segments_cross(p0: np.ndarray, p1: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """For P segments p0->p1 (P, 2), whether each properly crosses any of the wall segments (S, 2, 2)."""
    if len(segs) == 0:
        return np.zeros(len(p0), dtype=bool)

    def orient(ax, ay, bx, by, cx, cy):
        return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)

    ax, ay = p0[:, 0:1], p0[:, 1:2]
    bx, by = p1[:, 0:1], p1[:, 1:2]
    cx, cy = segs[None, :, 0, 0], segs[None, :, 0, 1]
    dx, dy = segs[None, :, 1, 0], segs[None, :, 1, 1]
    o1 = orient(ax, ay, bx, by, cx, cy)
    o2 = orient(ax, ay, bx, by, dx, dy)
    o3 = orient(cx, cy, dx, dy, ax, ay)
    o4 = orient(cx, cy, dx, dy, bx, by)
    return ((o1 * o2 < 0) & (o3 * o4 < 0)).any(axis=1)


@dataclass
class OccupancyGrid:
    """Free cells of a house for an agent of `agent_radius`; cell (i, j) has centre
    (origin_x + (j + .5) * res, origin_y + (i + .5) * res) — rows along y, columns along x."""

    house: "HouseSpec"
    agent_radius: float
    resolution: float
    origin: tuple[float, float]
    free: np.ndarray  # (H, W) bool
    _graph: csr_matrix | None = field(default=None, repr=False)
    _nearest: np.ndarray | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, house: "HouseSpec", agent_radius: float = 0.4, resolution: float = RESOLUTION) -> "OccupancyGrid":
        min_x, min_y, max_x, max_y = house.bounds
        ox, oy = min_x - 0.2, min_y - 0.2
        w = int(math.ceil((max_x + 0.2 - ox) / resolution))
        h = int(math.ceil((max_y + 0.2 - oy) / resolution))
        xs = ox + (np.arange(w) + 0.5) * resolution
        ys = oy + (np.arange(h) + 0.5) * resolution
        gx, gy = np.meshgrid(xs, ys)
        inside = np.zeros((h, w), dtype=bool)
        for r in house.rooms:
            inside |= (gx > r.x0) & (gx < r.x1) & (gy > r.y0) & (gy < r.y1)
        # doorway strips belong to no room's interior but are walkable
        for d in house.doors:
            if d.vertical:
                inside |= (np.abs(gx - d.line) <= resolution) & (gy > d.lo) & (gy < d.hi)
            else:
                inside |= (np.abs(gy - d.line) <= resolution) & (gx > d.lo) & (gx < d.hi)
        free = inside.copy()
        idx = np.flatnonzero(inside)
        px, py = gx.ravel()[idx], gy.ravel()[idx]
        ok = _seg_dist(px, py, house.wall_segments).min(axis=1) >= agent_radius
        for o in house.objects:
            ok &= np.hypot(px - o.x, py - o.y) >= agent_radius + o.radius
        free.ravel()[idx] = ok
        return cls(house=house, agent_radius=agent_radius, resolution=resolution, origin=(ox, oy), free=free)

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        return self.free.shape  # type: ignore[return-value]

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        j = int(math.floor((x - self.origin[0]) / self.resolution))
        i = int(math.floor((y - self.origin[1]) / self.resolution))
        h, w = self.shape
        return min(max(i, 0), h - 1), min(max(j, 0), w - 1)

    def cell_center(self, i: int, j: int) -> tuple[float, float]:
        return (self.origin[0] + (j + 0.5) * self.resolution, self.origin[1] + (i + 0.5) * self.resolution)

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.shape
        xs = self.origin[0] + (np.arange(w) + 0.5) * self.resolution
        ys = self.origin[1] + (np.arange(h) + 0.5) * self.resolution
        return np.meshgrid(xs, ys)

    def collides(self, x: float, y: float) -> bool:
        """MiniWorld's collision test for the agent at (x, y) (walls, then objects)."""
        r = self.agent_radius
        if _seg_dist(np.array([x]), np.array([y]), self.house.wall_segments).min() < r:
            return True
        return any(math.hypot(x - o.x, y - o.y) < r + o.radius for o in self.house.objects)

    def is_free(self, x: float, y: float) -> bool:
        i, j = self.cell_of(x, y)
        return bool(self.free[i, j])

    def line_walkable(self, p: Sequence[float], q: Sequence[float], step: float = 0.05) -> bool:
        """Whether every point of the straight segment p->q is a free position (sampled every `step`)."""
        n = max(2, int(math.ceil(math.hypot(q[0] - p[0], q[1] - p[1]) / step)) + 1)
        ts = np.linspace(0.0, 1.0, n)
        px = p[0] + ts * (q[0] - p[0])
        py = p[1] + ts * (q[1] - p[1])
        # quick reject on the grid: a point in an occupied cell almost always collides; exact test below
        i = np.clip(np.floor((py - self.origin[1]) / self.resolution).astype(int), 0, self.shape[0] - 1)
        j = np.clip(np.floor((px - self.origin[0]) / self.resolution).astype(int), 0, self.shape[1] - 1)
        if (~self.free[i, j]).mean() > 0.2:
            return False
        if (_seg_dist(px, py, self.house.wall_segments).min(axis=1) < self.agent_radius).any():
            return False
        for o in self.house.objects:
            if (np.hypot(px - o.x, py - o.y) < self.agent_radius + o.radius).any():
                return False
        return True

    # ------------------------------------------------------------------ connectivity and distances
    @property
    def graph(self) -> csr_matrix:
        """16-connected graph over free cells (8 neighbours + knight moves), an edge only where every cell it
        passes through is free; metres. Knight moves cut the grid metric's overestimate of straight-line
        length from up to 8 % (8-connected) to under 3 %, which keeps SPL's reference distance honest."""
        if self._graph is None:
            h, w = self.shape
            free = self.free
            ids = np.arange(h * w).reshape(h, w)
            rows, cols, wts = [], [], []
            res = self.resolution
            # (di, dj), cells passed through on the way (relative to the start cell)
            moves = (
                ((0, 1), ()), ((1, 0), ()), ((1, 1), ((0, 1), (1, 0))), ((1, -1), ((0, -1), (1, 0))),
                ((1, 2), ((0, 1), (1, 1))), ((2, 1), ((1, 0), (1, 1))),
                ((1, -2), ((0, -1), (1, -1))), ((2, -1), ((1, 0), (1, -1))),
            )
            pad = np.zeros((h + 4, w + 4), dtype=bool)
            pad[2:-2, 2:-2] = free
            for (di, dj), via in moves:
                sl_a = (slice(0, h - di), slice(max(0, -dj), w - max(0, dj)))
                sl_b = (slice(di, h), slice(max(0, dj), w - max(0, -dj)))
                m = free[sl_a] & free[sl_b]
                for vi, vj in via:
                    m &= pad[2 + vi : 2 + vi + h - di, 2 + max(0, -dj) + vj : 2 + w - max(0, dj) + vj]
                rows.append(ids[sl_a][m])
                cols.append(ids[sl_b][m])
                wts.append(np.full(int(m.sum()), res * math.hypot(di, dj)))
            r = np.concatenate(rows)
            c = np.concatenate(cols)
            wt = np.concatenate(wts)
            self._graph = csr_matrix(
                (np.concatenate([wt, wt]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(h * w, h * w)
            )
        return self._graph

    def components(self) -> np.ndarray:
        """(H, W) component label of each free cell (-1 for occupied)."""
        _, labels = connected_components(self.graph, directed=False)
        out = labels.reshape(self.shape).copy()
        out[~self.free] = -1
        return out

    def single_component(self, free: np.ndarray | None = None) -> bool:
        """All free space is one connected piece (slivers under 1 % of the free area are ignored);
        4-connected labelling, a little stricter than the 8-connected planning graph."""
        return single_component(self.free if free is None else free)

    def largest_component_mask(self) -> np.ndarray:
        lab = self.components()
        counts = np.bincount(lab[lab >= 0].ravel())
        return lab == int(np.argmax(counts))

    def distance_field(self, sources: np.ndarray) -> np.ndarray:
        """(H, W) geodesic metres from the nearest source cell (bool mask (H, W)); inf where unreachable."""
        src = np.flatnonzero(sources & self.free)
        h, w = self.shape
        if len(src) == 0:
            return np.full((h, w), np.inf)
        d = dijkstra(self.graph, directed=False, indices=src, min_only=True)
        return d.reshape(h, w)

    def nearest_free_cell(self, i: int, j: int) -> tuple[int, int]:
        """The free cell nearest to (i, j) (itself when free), to read fields at any collision-free pose."""
        if self._nearest is None:
            _, inds = ndimage.distance_transform_edt(~self.free, return_indices=True)
            self._nearest = inds
        return int(self._nearest[0, i, j]), int(self._nearest[1, i, j])

    def lookup(self, field_: np.ndarray, x: float, y: float) -> float:
        """Value of a per-cell field at a position (via the nearest free cell)."""
        i, j = self.nearest_free_cell(*self.cell_of(x, y))
        return float(field_[i, j])

    # ------------------------------------------------------------------ goals
    def goal_mask(
        self, goals: Sequence["ObjectSpec"], success_distance: float, free: np.ndarray | None = None
    ) -> np.ndarray:
        """Free cells from which one of `goals` is reached: within `success_distance` of its bounding circle
        with no wall between (see `object_goal_reached`)."""
        gx, gy = self.cell_centers()
        free = self.free if free is None else free
        mask = np.zeros(self.shape, dtype=bool)
        for o in goals:
            near = free & (np.hypot(gx - o.x, gy - o.y) - o.radius <= success_distance)
            idx = np.flatnonzero(near)
            if len(idx) == 0:
                continue
            p0 = np.stack([gx.ravel()[idx], gy.ravel()[idx]], axis=1)
            p1 = _closest_on_circle(p0, o.x, o.y, o.radius)
            ok = ~_segments_cross(p0, p1, self.house.wall_segments)
            mask.ravel()[idx[ok]] = True
        return mask


def single_component(free: np.ndarray) -> bool:
    lab, n = ndimage.label(free)
    if n == 0:
        return False
    counts = np.bincount(lab.ravel())[1:]
    return int((counts >= max(4, 0.01 * counts.sum())).sum()) == 1


def _closest_on_circle(p: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    d = p - np.array([cx, cy])
    n = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return np.array([cx, cy]) + d / n * r


def object_goal_distance(house: "HouseSpec", x: float, y: float, goals: Sequence["ObjectSpec"]) -> float:
    """Distance from (x, y) to the nearest goal circle's edge with no wall in between (inf if all blocked)."""
    best = math.inf
    p = np.array([[x, y]])
    for o in goals:
        d = max(0.0, math.hypot(x - o.x, y - o.y) - o.radius)
        if d < best and not _segments_cross(p, _closest_on_circle(p, o.x, o.y, o.radius), house.wall_segments)[0]:
            best = d
    return best


def object_goal_reached(house: "HouseSpec", x: float, y: float, goals: Sequence["ObjectSpec"], success_distance: float) -> bool:
    """ObjectNav success test: within `success_distance` of an instance's bounding circle, seen past no wall."""
    return object_goal_distance(house, x, y, goals) <= success_distance
