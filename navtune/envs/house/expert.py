"""Continuous-action expert: A* over exact (position, heading) states with MiniWorld's own step semantics.

A greedy follower of the distance field oscillates in narrow doorways now and then; searching over the
states the agent can actually reach (0.25 m moves that MiniWorld's collision test allows, 30 degree turns)
never does. States are deduplicated on a 5 cm x heading lattice (hybrid A*); the heuristic is the geodesic
distance field in forward steps. No OpenGL: usable for episode generation and in workers.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from navtune.core.actions import MOVE_FORWARD, STOP_CONT, TURN_LEFT, TURN_RIGHT
from navtune.core.geometry import wrap_heading
from navtune.envs.house.layout import ObjectSpec
from navtune.envs.house.occupancy import OccupancyGrid, _closest_on_circle, _segments_cross


@dataclass
class ContinuousExpert:
    """Plans action sequences to reach any of `goals` (stop within `success_distance - margin`)."""

    grid: OccupancyGrid
    goals: Sequence[ObjectSpec]
    success_distance: float = 1.0
    forward_step: float = 0.25
    turn: float = math.radians(30.0)
    margin: float = 0.05
    max_expansions: int = 60000
    weight: float = 1.5
    #: stop only when a goal instance is within this angle of the view centre (None: any heading), so
    #: expert episodes end looking at the object
    face_tolerance: float | None = math.radians(30.0)
    dist_field: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.dist_field = self.grid.distance_field(self.grid.goal_mask(self.goals, self.success_distance - self.margin))
        self._segs = self.grid.house.wall_segments
        self._obj = np.array([[o.x, o.y, o.radius] for o in self.grid.house.objects]).reshape(-1, 3)
        self._goal = np.array([[o.x, o.y, o.radius] for o in self.goals]).reshape(-1, 3)
        self._seg_a = self._segs[:, 0, :]
        self._seg_ab = self._segs[:, 1, :] - self._seg_a
        self._seg_den = np.maximum((self._seg_ab * self._seg_ab).sum(axis=1), 1e-12)
        self._descent = _descent_headings(self.dist_field, self.grid.free)

    def heuristic(self, x: float, y: float, heading: float) -> float:
        """Forward steps along the distance field plus the turns needed to face down its slope."""
        i, j = self.grid.nearest_free_cell(*self.grid.cell_of(x, y))
        d = float(self.dist_field[i, j])
        if not math.isfinite(d):
            return math.inf
        want = self._descent[i, j]
        turns = 0.0
        if d > 0.3 and math.isfinite(want):
            diff = abs(math.remainder(heading - want, 2 * math.pi))
            turns = max(0.0, math.ceil((diff - self.turn / 2) / self.turn))
        return d / self.forward_step + turns

    # ------------------------------------------------------------------ predicates
    def collides(self, x: float, y: float) -> bool:
        """MiniWorld's collision test (same as OccupancyGrid.collides, inlined for speed)."""
        r = self.grid.agent_radius
        if len(self._obj):
            if (np.hypot(self._obj[:, 0] - x, self._obj[:, 1] - y) < r + self._obj[:, 2]).any():
                return True
        ap = np.array([x, y]) - self._seg_a
        t = np.clip((ap * self._seg_ab).sum(axis=1) / self._seg_den, 0.0, 1.0)
        c = self._seg_a + t[:, None] * self._seg_ab
        return bool((np.hypot(c[:, 0] - x, c[:, 1] - y) < r).any())

    def reached(self, x: float, y: float, heading: float | None = None, margin: float | None = None) -> bool:
        """Within `success_distance - margin` of a goal circle with no wall in between (and, given a heading
        and `face_tolerance`, with that goal near the view centre)."""
        limit = self.success_distance - (self.margin if margin is None else margin)
        d = np.hypot(self._goal[:, 0] - x, self._goal[:, 1] - y) - self._goal[:, 2]
        p = np.array([[x, y]])
        for k in np.flatnonzero(d <= limit):
            gx, gy, gr = self._goal[k]
            if heading is not None and self.face_tolerance is not None:
                off = abs(math.remainder(math.atan2(gx - x, gy - y) - heading, 2 * math.pi))
                if off > self.face_tolerance:
                    continue
            if not _segments_cross(p, _closest_on_circle(p, gx, gy, gr), self._segs)[0]:
                return True
        return False

    def geodesic(self, x: float, y: float) -> float:
        return self.grid.lookup(self.dist_field, x, y)

    # ------------------------------------------------------------------ search
    def plan(self, x: float, y: float, heading: float) -> list[str] | None:
        """Shortest action list from the pose (ending with 'stop'), or None when no plan was found."""
        if self.reached(x, y, heading):
            return [STOP_CONT]
        n_head = max(1, int(round(2 * math.pi / self.turn)))
        q = 0.05
        step = self.forward_step
        h0 = self.heuristic(x, y, heading)
        if not math.isfinite(h0):
            return None
        w = self.weight

        def key(px: float, py: float, k: int) -> tuple[int, int, int]:
            return (int(round(px / q)), int(round(py / q)), k % n_head)

        start = key(x, y, 0)
        best_g = {start: 0}
        parent: dict[tuple, tuple[tuple, str] | None] = {start: None}
        pos = {start: (x, y, 0)}
        heap = [(w * h0, 0, 0, start)]  # (f, -g, tie, state): deeper first on ties
        tie = 0
        expansions = 0
        while heap:
            f, g, _, s = heapq.heappop(heap)
            g = -g
            if g > best_g.get(s, math.inf):
                continue
            px, py, k = pos[s]
            h = wrap_heading(heading + k * self.turn)
            if self.reached(px, py, h):
                actions = [STOP_CONT]
                while parent[s] is not None:
                    s, a = parent[s]  # type: ignore[misc]
                    actions.append(a)
                return actions[::-1]
            expansions += 1
            if expansions > self.max_expansions:
                return None
            succ = [(TURN_LEFT, px, py, k - 1), (TURN_RIGHT, px, py, k + 1)]
            nx, ny = px + step * math.sin(h), py + step * math.cos(h)
            if not self.collides(nx, ny):
                succ.append((MOVE_FORWARD, nx, ny, k))
            for a, sx, sy, sk in succ:
                sk %= n_head
                ns = key(sx, sy, sk)
                ng = g + 1
                if ng < best_g.get(ns, math.inf):
                    hv = self.heuristic(sx, sy, heading + sk * self.turn)
                    if not math.isfinite(hv):
                        continue
                    best_g[ns] = ng
                    parent[ns] = (s, a)
                    pos[ns] = (sx, sy, sk)
                    tie += 1
                    heapq.heappush(heap, (ng + w * hv, -ng, tie, ns))
        return None


def _descent_headings(field_: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Per cell, the navtune heading towards its lowest 8-neighbour in `field_` (nan where none is lower)."""
    h, w = field_.shape
    pad = np.pad(np.where(free, field_, np.inf), 1, constant_values=np.inf)
    best = np.full((h, w), np.inf)
    out = np.full((h, w), np.nan)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            nb = pad[1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
            better = nb < best
            best = np.where(better, nb, best)
            out = np.where(better, math.atan2(dj, di), out)  # rows are +y, columns +x
    out[~(best < field_)] = np.nan
    return out


def simulate(
    expert: ContinuousExpert, x: float, y: float, heading: float, actions: Sequence[str]
) -> list[tuple[float, float, float]]:
    """Poses (x, y, heading) visited by executing `actions` under the planner's model (for maps/tests)."""
    out = [(x, y, heading)]
    for a in actions:
        if a == MOVE_FORWARD:
            nx, ny = x + expert.forward_step * math.sin(heading), y + expert.forward_step * math.cos(heading)
            if not expert.collides(nx, ny):
                x, y = nx, ny
        elif a == TURN_LEFT:
            heading = wrap_heading(heading - expert.turn)
        elif a == TURN_RIGHT:
            heading = wrap_heading(heading + expert.turn)
        out.append((x, y, heading))
    return out
