"""Low-level expert: the shortest Left/Right/Move action sequence to a goal viewpoint, then Stop.

One backward breadth-first search from the goal over all (viewpoint, heading index) states of one heading
grid (the 12 headings k * 30° in discretised mode; the episode's start heading + k * 30° in continuous
mode, which turns and moves never leave) gives a cost-to-go table; the expert's action anywhere is then a table look-up, so an environment can ask for
the oracle action at every step for free. Cost is the number of actions; ties are broken by metres
walked and then by the fixed order Move, Left, Right, so the teacher is deterministic and prefers the
geometrically shorter of equally short action sequences.
"""
from __future__ import annotations

import math
import weakref
from collections import OrderedDict

import numpy as np

from navtune.core.actions import LEFT, MOVE, RIGHT, STOP
from navtune.graph.lowlevel import NUM_HEADINGS, LowLevelNavigator, LowLevelState

_H = NUM_HEADINGS


class GoalUnreachable(ValueError):
    """No action sequence reaches the goal from the start state."""


_SEARCH_CACHE: "weakref.WeakKeyDictionary[LowLevelNavigator, OrderedDict[float, tuple]]" = weakref.WeakKeyDictionary()


def _search_graph(navigator: LowLevelNavigator, heading_offset: float = 0.0) -> tuple[list[int], list[float], list[list[int]]]:
    """Per navigator and heading grid, once (the 16 most recent grids): Move target and length per state id
    (v * 12 + h), and reverse Move edges."""
    per_grid = _SEARCH_CACHE.setdefault(navigator, OrderedDict())
    cached = per_grid.get(heading_offset)
    if cached is not None:
        per_grid.move_to_end(heading_offset)
    else:
        move = navigator.move_table(heading_offset)
        pos = navigator.graph.positions
        n = len(pos)
        safe = np.where(move >= 0, move, np.arange(n)[:, None])
        length = np.linalg.norm(pos[safe] - pos[:, None, :], axis=-1)
        target = [int(t) * _H + h if t >= 0 else -1 for v in range(n) for h, t in enumerate(move[v])]
        rev: list[list[int]] = [[] for _ in range(n * _H)]
        for s, t in enumerate(target):
            if t >= 0:
                rev[t].append(s)
        cached = per_grid[heading_offset] = (target, length.reshape(-1).tolist(), rev)
        if len(per_grid) > 16:
            per_grid.popitem(last=False)
    return cached


class ExpertTable:
    """Cost-to-go (actions, metres) to `goal` for every (viewpoint, heading index) state of a navigator's
    graph on the heading grid `heading_offset` + k * 30° (a state's `heading_offset`; 0 in discretised mode)."""

    def __init__(self, navigator: LowLevelNavigator, goal: str, heading_offset: float = 0.0):
        graph = navigator.graph
        if goal not in graph.index:
            raise KeyError(f"goal viewpoint {goal!r} is not in graph {graph.name!r}")
        self.navigator, self.goal, self.heading_offset = navigator, goal, heading_offset
        self._g = graph.index[goal]
        target, move_len, rev = _search_graph(navigator, heading_offset)
        self._target, self._move_len = target, move_len
        n_states = len(target)
        steps = [-1] * n_states
        metres = [math.inf] * n_states
        frontier = list(range(self._g * _H, self._g * _H + _H))
        for s in frontier:
            steps[s], metres[s] = 0, 0.0
        layer = 0
        # breadth-first by action count; within a layer keep the fewest metres (lexicographic cost)
        while frontier:
            layer += 1
            nxt: dict[int, float] = {}
            for s in frontier:
                base = s - s % _H
                m = metres[s]
                h = s % _H
                for p, d in ((base + (h + 1) % _H, m), (base + (h - 1) % _H, m)):  # Left / Right predecessors
                    if steps[p] < 0 and d < nxt.get(p, math.inf):
                        nxt[p] = d
                for p in rev[s]:  # Move predecessors
                    if steps[p] < 0:
                        d = m + move_len[p]
                        if d < nxt.get(p, math.inf):
                            nxt[p] = d
            for p, d in nxt.items():
                steps[p], metres[p] = layer, d
            frontier = list(nxt)
        self._steps, self._metres = steps, metres

    def covers(self, state: LowLevelState) -> bool:
        """Whether `state` is on this table's heading grid (an Adjust in continuous mode leaves it)."""
        return abs(state.heading_offset - self.heading_offset) < 1e-9

    def _sid(self, state: LowLevelState) -> int:
        if not self.covers(state):
            raise ValueError(f"{state} is not on the expert table's heading grid (offset {self.heading_offset:.6f}); "
                             "build an ExpertTable with heading_offset=state.heading_offset")
        return self.navigator.graph.index[state.viewpoint] * _H + state.heading_index % _H

    def reachable(self, state: LowLevelState) -> bool:
        return self._steps[self._sid(state)] >= 0

    def cost(self, state: LowLevelState) -> int:
        """Number of actions to reach the goal from `state`, including the final Stop."""
        if not self.reachable(state):
            raise GoalUnreachable(self._unreachable(state))
        return int(self._steps[self._sid(state)]) + 1

    def _unreachable(self, state: LowLevelState) -> str:
        return (f"graph {self.navigator.graph.name!r}: goal {self.goal!r} cannot be reached from {state} "
                "with Left/Right/Move")

    def action(self, state: LowLevelState) -> str:
        """The expert's action at `state`: Stop at the goal, else the first action of a shortest sequence."""
        s = self._sid(state)
        if s // _H == self._g:
            return STOP
        if self._steps[s] < 0:
            raise GoalUnreachable(self._unreachable(state))
        base, h = s - s % _H, s % _H
        options = []
        t = self._target[s]
        if t >= 0 and self._steps[t] >= 0:
            options.append((self._steps[t], self._move_len[s] + self._metres[t], MOVE))
        for a, p in ((LEFT, base + (h - 1) % _H), (RIGHT, base + (h + 1) % _H)):
            if self._steps[p] >= 0:
                options.append((self._steps[p], self._metres[p], a))
        best = min(options, key=lambda o: (o[0], o[1]))  # min keeps the first of equals: Move, Left, Right
        return best[2]

    def actions_from(self, state: LowLevelState) -> list[str]:
        """The whole expert action sequence from `state`, ending with Stop."""
        out: list[str] = []
        limit = self.cost(state)
        while True:
            a = self.action(state)
            out.append(a)
            if a == STOP:
                return out
            state = self.navigator.step(state, a)
            if len(out) > limit:  # cannot happen with a consistent table; guard against an endless loop
                raise RuntimeError(f"expert did not reach {self.goal!r} in {limit} actions")


def expert_actions(navigator: LowLevelNavigator, start: LowLevelState, goal: str) -> list[str]:
    """Shortest action list from `start` to any heading at `goal`, ending with "Stop"."""
    if start.viewpoint == goal:
        return [STOP]
    return ExpertTable(navigator, goal, start.heading_offset).actions_from(start)


def follows_with_move_to_nearest(navigator: LowLevelNavigator, path: list[str], heading_offset: float = 0.0) -> bool:
    """Whether every hop of `path` is the "Move" target at some heading of the grid `heading_offset` + k * 30°
    (so turning + Move can follow it); otherwise the teacher needs a detour."""
    move = navigator.move_table(heading_offset)
    idx = navigator.graph.index
    return all(bool((move[idx[a]] == idx[b]).any()) for a, b in zip(path[:-1], path[1:]))
