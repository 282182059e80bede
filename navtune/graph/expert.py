"""Low-level expert: the shortest Left/Right/Move action sequence to a goal viewpoint, then Stop.

One backward breadth-first search from the goal over all (viewpoint, heading index) states gives a
cost-to-go table; the expert's action anywhere is then a table look-up, so an environment can ask for
the oracle action at every step for free. Cost is the number of actions; ties are broken by metres
walked and then by the fixed order Move, Left, Right, so the teacher is deterministic and prefers the
geometrically shorter of equally short action sequences.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from navtune.core.actions import LEFT, MOVE, RIGHT, STOP
from navtune.graph.lowlevel import NUM_HEADINGS, LowLevelNavigator, LowLevelState

_H = NUM_HEADINGS


class GoalUnreachable(ValueError):
    """No action sequence reaches the goal from the start state."""


_SEARCH_CACHE: "weakref.WeakKeyDictionary[LowLevelNavigator, tuple]" = weakref.WeakKeyDictionary()


def _search_graph(navigator: LowLevelNavigator) -> tuple[list[int], list[float], list[list[int]]]:
    """Per navigator, once: Move target and length per state id (v * 12 + h), and reverse Move edges."""
    cached = _SEARCH_CACHE.get(navigator)
    if cached is None:
        move = navigator.move_table()
        pos = navigator.graph.positions
        n = len(pos)
        safe = np.where(move >= 0, move, np.arange(n)[:, None])
        length = np.linalg.norm(pos[safe] - pos[:, None, :], axis=-1)
        target = [int(t) * _H + h if t >= 0 else -1 for v in range(n) for h, t in enumerate(move[v])]
        rev: list[list[int]] = [[] for _ in range(n * _H)]
        for s, t in enumerate(target):
            if t >= 0:
                rev[t].append(s)
        cached = (target, length.reshape(-1).tolist(), rev)
        _SEARCH_CACHE[navigator] = cached
    return cached


class ExpertTable:
    """Cost-to-go (actions, metres) to `goal` for every (viewpoint, heading) state of a navigator's graph."""

    def __init__(self, navigator: LowLevelNavigator, goal: str):
        graph = navigator.graph
        if goal not in graph.index:
            raise KeyError(f"goal viewpoint {goal!r} is not in graph {graph.name!r}")
        self.navigator, self.goal = navigator, goal
        self._g = graph.index[goal]
        target, move_len, rev = _search_graph(navigator)
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

    def _sid(self, state: LowLevelState) -> int:
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
    return ExpertTable(navigator, goal).actions_from(start)


def follows_with_move_to_nearest(navigator: LowLevelNavigator, path: list[str]) -> bool:
    """Whether every hop of `path` is some heading's "Move" target (so turning + Move can follow it)."""
    move = navigator.move_table()
    idx = navigator.graph.index
    return all(bool((move[idx[a]] == idx[b]).any()) for a, b in zip(path[:-1], path[1:]))
