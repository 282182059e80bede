"""Low-level expert over a whole R2R split: action labels and trajectories in the R2R prediction format.

In continuous-heading mode (seed 1's setup) each path's headings are its start heading + k * 30°, so the
expert searches that grid; a path needs a *detour* when one of its hops is never the viewpoint closest to
the view centre at any of those 12 headings (Move cannot take it, the teacher walks around)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from navtune.core.actions import STOP
from navtune.graph.expert import ExpertTable, GoalUnreachable, follows_with_move_to_nearest
from navtune.graph.lowlevel import LowLevelNavigator, LowLevelState, NavigatorConfig
from navtune.graph.navgraph import NavGraph
from navtune.tasks.r2r.data import R2REpisode


@dataclass
class ExpertStats:
    paths: int = 0
    reachable: int = 0
    followable: int = 0  # reference paths that turning + Move-to-nearest can follow exactly
    lengths: list[int] = field(default_factory=list)  # optimal action counts incl. Stop (reachable paths)

    @property
    def detours(self) -> int:
        """Reference paths with a hop Move-to-nearest never takes (the teacher must go another way)."""
        return self.paths - self.followable

    def summary(self) -> dict:
        return {
            "paths": self.paths,
            "reachable": self.reachable,
            "followable": self.followable,
            "detours": self.detours,
            "mean_actions": statistics.fmean(self.lengths) if self.lengths else float("nan"),
            "max_actions": max(self.lengths) if self.lengths else 0,
        }


def rollout(navigator: LowLevelNavigator, start: LowLevelState, actions: Sequence[str]) -> list[list]:
    """R2R trajectory [[viewpoint, heading, 0.0], ...] of an action list (start first; Stop adds nothing)."""
    traj = [[start.viewpoint, start.heading, 0.0]]
    s = start
    for a in actions:
        if a == STOP:
            break
        s = navigator.step(s, a)
        traj.append([s.viewpoint, s.heading, 0.0])
    return traj


def split_expert(
    episodes: Sequence[R2REpisode], graphs: Mapping[str, NavGraph], progress: bool = False,
    config: NavigatorConfig | None = None,
) -> tuple[ExpertStats, dict[str, list[str]], dict[str, list[list]]]:
    """(stats per reference path, instr_id -> expert actions, instr_id -> expert trajectory) in the
    navigation mode of `config` (default: discretised views)."""
    navs: dict[str, LowLevelNavigator] = {}
    by_path: dict[int, list[R2REpisode]] = {}
    for e in episodes:
        by_path.setdefault(e.path_id, []).append(e)
    stats = ExpertStats()
    actions: dict[str, list[str]] = {}
    trajs: dict[str, list[list]] = {}
    items = list(by_path.values())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="expert", unit="path")
    for group in items:
        ep = group[0]
        nav = navs.get(ep.scan) or navs.setdefault(ep.scan, LowLevelNavigator(graphs[ep.scan], config=config))
        start = nav.start_state(ep.start, ep.heading)
        stats.paths += 1
        stats.followable += follows_with_move_to_nearest(nav, list(ep.path), start.heading_offset)
        try:
            acts = ExpertTable(nav, ep.goal, start.heading_offset).actions_from(start) if ep.start != ep.goal else [STOP]
        except GoalUnreachable:
            continue
        stats.reachable += 1
        stats.lengths.append(len(acts))
        traj = rollout(nav, start, acts)
        for e in group:
            actions[e.instr_id] = list(acts)
            trajs[e.instr_id] = traj
    return stats, actions, trajs
