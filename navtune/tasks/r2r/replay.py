"""Re-execute R2R prediction trajectories with MatterSim's discretised-view semantics.

A step is a mismatch when its (viewpoint, heading) cannot be reached from the previous recorded state by
one simulator action: stay (Stop, or a look up/down, which changes only the elevation), Left, Right, or a
move to any index of the navigable list (MatterSim agents call `makeAction(k, 0, 0)` with any k). The
episode starts at the reference start with the heading snapped to the nearest 30°, as MatterSim does.
After a mismatch replay continues from the recorded state, so one bad step counts once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from navtune.core.geometry import angle_diff
from navtune.graph.lowlevel import NUM_HEADINGS, LowLevelNavigator, LowLevelState, heading_index_of, heading_of
from navtune.graph.navgraph import NavGraph

_HEADING_TOL = 1e-3


@dataclass
class Mismatch:
    instr_id: str
    step: int  # index into the trajectory (0 = the start entry)
    reason: str


@dataclass
class ReplayReport:
    episodes: int = 0
    steps: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def num_mismatches(self) -> int:
        return len(self.mismatches)


def _on_grid(heading: float) -> bool:
    return abs(angle_diff(heading, heading_of(heading_index_of(heading)))) < _HEADING_TOL


def replay_trajectory(
    navigator: LowLevelNavigator,
    instr_id: str,
    start: str,
    start_heading: float,
    trajectory: Sequence[Sequence],
) -> tuple[int, list[Mismatch]]:
    """(number of steps checked, mismatches) for one trajectory against its episode start."""
    out: list[Mismatch] = []
    graph = navigator.graph
    vp0, h0 = trajectory[0][0], float(trajectory[0][1])
    state = LowLevelState.from_heading(start, start_heading)
    if vp0 != start:
        out.append(Mismatch(instr_id, 0, f"starts at {vp0!r}, episode starts at {start!r}"))
    elif not _on_grid(h0) or heading_index_of(h0) != state.heading_index:
        out.append(Mismatch(instr_id, 0, f"start heading {h0:.4f} is not the snapped start heading {state.heading:.4f}"))
    state = LowLevelState(vp0, heading_index_of(h0)) if vp0 in graph.index else state
    for k in range(1, len(trajectory)):
        vp, h = trajectory[k][0], float(trajectory[k][1])
        if vp not in graph.index:
            out.append(Mismatch(instr_id, k, f"unknown viewpoint {vp!r}"))
            continue
        hi = heading_index_of(h)
        if not _on_grid(h):
            out.append(Mismatch(instr_id, k, f"heading {h:.4f} is not a multiple of 30 degrees"))
            state = LowLevelState(vp, hi)
            continue
        if vp == state.viewpoint:
            ok = (hi - state.heading_index) % NUM_HEADINGS in (0, 1, NUM_HEADINGS - 1)
            reason = "turned more than 30 degrees in one step"
        else:
            ok = hi == state.heading_index and vp in navigator.navigable(state)
            reason = (
                "heading changed while moving" if vp in navigator.navigable(state)
                else f"{vp!r} is not navigable from {state.viewpoint!r} at heading {math.degrees(state.heading):.0f}°"
            )
        if not ok:
            out.append(Mismatch(instr_id, k, reason))
        state = LowLevelState(vp, hi)
    return len(trajectory) - 1, out


def replay_predictions(
    predictions: Mapping[str, Sequence[Sequence]],
    episodes: Mapping[str, "object"],
    graphs: Mapping[str, NavGraph],
    hfov: float | None = None,
    progress: bool = False,
) -> ReplayReport:
    """Replay every prediction whose instr_id is in `episodes` (R2REpisode-like: scan, start, heading)."""
    navs: dict[str, LowLevelNavigator] = {}
    report = ReplayReport()
    items = [(i, t) for i, t in predictions.items() if i in episodes]
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="replay", unit="ep")
    for iid, traj in items:
        ep = episodes[iid]
        nav = navs.get(ep.scan)
        if nav is None:
            nav = navs[ep.scan] = (LowLevelNavigator(graphs[ep.scan]) if hfov is None
                                  else LowLevelNavigator(graphs[ep.scan], hfov))
        n, mm = replay_trajectory(nav, iid, ep.start, ep.heading, traj)
        report.episodes += 1
        report.steps += n
        report.mismatches.extend(mm)
    return report
