"""Re-execute R2R prediction trajectories with MatterSim's low-level semantics (either heading mode).

Two checks, in the mode of the navigator given (`navtune.graph.NavigatorConfig`: discretised or continuous
headings, camera):

* `replay_trajectory` (trajectory only): a step is a mismatch when its (viewpoint, heading) cannot be
  reached from the previous recorded state by one simulator action: stay (Stop, or a look up/down, which
  changes only the elevation), Left, Right, Adjust, or a move to any index of the navigable list (MatterSim
  agents call `makeAction(k, 0, 0)` with any k). The episode starts at the reference start, with the heading
  snapped to the nearest 30° in discretised mode and as given in continuous mode.
* `reexecute_trajectory` (trajectory + the actions that produced it): the actions are executed from the
  episode's start and every recorded state is compared with the simulated one (same viewpoint, heading
  within `HEADING_TOL`). Entry k of the trajectory is the state in which action k was chosen (the seed-1
  author's recorder; for an episode ending in Stop this is also "the start, then one entry per action
  that was not Stop"); one more entry, the state after the last action, is accepted when the episode did
  not end with Stop. A Move or Adjust with nothing navigable leaves the state unchanged (MatterSim raises
  there; the author's loop ended the episode after that decision).

After a mismatch the replay continues from the recorded state, so one bad step counts once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from navtune.core.actions import LEFT, MOVE, RIGHT, STOP
from navtune.core.geometry import angle_diff
from navtune.graph.lowlevel import ADJUST, LowLevelNavigator, LowLevelState, NavigatorConfig
from navtune.graph.navgraph import NavGraph

#: Heading tolerance (radians): MatterSim's heading is a double, but an Adjust turns by a relative heading
#: computed from float32 geometry (and recorders may round), so 1e-4 rad (0.006°) separates "same" from
#: "one 30° turn or another Adjust" with room on both sides.
HEADING_TOL = 1e-4

#: Other names the seed-1 author's files and prompts use for the low-level actions.
ACTION_ALIASES: dict[str, str] = {
    "Automatically Turn Towards Node": ADJUST,
    "Turn Left": LEFT,
    "Turn Right": RIGHT,
    "Move Forward": MOVE,
    "Stop Navigation": STOP,
}


def canonical_action(name: str) -> str | None:
    """The navtune name of a low-level action (Left/Right/Move/Adjust/Stop or an alias), None if unknown."""
    if name in (LEFT, RIGHT, MOVE, ADJUST, STOP):
        return name
    return ACTION_ALIASES.get(name)


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


def _same(state: LowLevelState, viewpoint: str, heading: float) -> bool:
    return state.viewpoint == viewpoint and abs(angle_diff(state.heading, heading)) <= HEADING_TOL


def _successors(navigator: LowLevelNavigator, state: LowLevelState) -> list[LowLevelState]:
    """Every state one simulator action reaches: stay, Left, Right, Adjust, a move to any navigable index."""
    out = [state, state.turned(-1), state.turned(1)]
    nav = navigator.navigable(state)
    if nav:
        out.append(navigator.adjust(state))
        out.extend(navigator.move_to(state, k) for k in range(len(nav)))
    return out


def _start_check(navigator: LowLevelNavigator, instr_id: str, start: str, start_heading: float,
                 first: Sequence) -> tuple[LowLevelState, list[Mismatch]]:
    """The episode's start state compared with the recorded first entry; the state to continue from."""
    graph = navigator.graph
    vp0, h0 = first[0], float(first[1])
    state = navigator.start_state(start, start_heading)
    out = []
    if vp0 != start:
        out.append(Mismatch(instr_id, 0, f"starts at {vp0!r}, episode starts at {start!r}"))
    elif not _same(state, vp0, h0):
        out.append(Mismatch(instr_id, 0, f"start heading {h0:.4f} is not the simulator's start heading {state.heading:.4f}"))
    return (navigator.state_at(vp0, h0) if vp0 in graph.index else state), out


def replay_trajectory(
    navigator: LowLevelNavigator,
    instr_id: str,
    start: str,
    start_heading: float,
    trajectory: Sequence[Sequence],
) -> tuple[int, list[Mismatch]]:
    """(number of steps checked, mismatches) for one trajectory against its episode start."""
    graph = navigator.graph
    state, out = _start_check(navigator, instr_id, start, start_heading, trajectory[0])
    for k in range(1, len(trajectory)):
        vp, h = trajectory[k][0], float(trajectory[k][1])
        if vp not in graph.index:
            out.append(Mismatch(instr_id, k, f"unknown viewpoint {vp!r}"))
            continue
        recorded = navigator.state_at(vp, h)
        if not _same(recorded, vp, h):  # discretised mode: off the 12 headings
            out.append(Mismatch(instr_id, k, f"heading {h:.4f} is not a multiple of 30 degrees"))
        elif not any(_same(s, vp, h) for s in _successors(navigator, state)):
            if vp == state.viewpoint:
                reason = "turned more than 30 degrees in one step (and not an Adjust)"
            elif vp in navigator.navigable(state):
                reason = "heading changed while moving"
            else:
                reason = f"{vp!r} is not navigable from {state.viewpoint!r} at heading {math.degrees(state.heading):.1f}°"
            out.append(Mismatch(instr_id, k, reason))
        state = recorded
    return len(trajectory) - 1, out


def reexecute_trajectory(
    navigator: LowLevelNavigator,
    instr_id: str,
    start: str,
    start_heading: float,
    trajectory: Sequence[Sequence],
    actions: Sequence[str],
) -> tuple[int, list[Mismatch]]:
    """(number of actions, mismatches): execute `actions` from the episode's start and compare each
    recorded state with the simulated one (see the module docstring for the recording convention)."""
    graph = navigator.graph
    state, out = _start_check(navigator, instr_id, start, start_heading, trajectory[0])
    n = len(trajectory)
    stopped = False
    for k, name in enumerate(actions):
        action = canonical_action(name)
        if action is None:
            out.append(Mismatch(instr_id, k, f"unknown action {name!r}"))
            break
        if action == STOP:
            stopped = True
            if k + 1 < len(actions):
                out.append(Mismatch(instr_id, k, f"{len(actions) - k - 1} actions after Stop"))
            break
        try:
            state = navigator.step(state, action)
        except ValueError:  # Move / Adjust with nothing navigable: MatterSim raises, the state is unchanged
            pass
        if k + 1 >= n:
            continue
        vp, h = trajectory[k + 1][0], float(trajectory[k + 1][1])
        if not _same(state, vp, h):
            what = ("viewpoint " + repr(vp) + " but the simulator is at " + repr(state.viewpoint)) if vp != state.viewpoint \
                else f"heading {h:.6f} but the simulator's is {state.heading:.6f}"
            out.append(Mismatch(instr_id, k + 1, f"after {name} (action {k}): recorded {what}"))
            if vp in graph.index:
                state = navigator.state_at(vp, h)
    expected = {len(actions)} if stopped or not actions else {len(actions), len(actions) + 1}
    if n not in expected:
        want = " or ".join(str(e) for e in sorted(expected))
        out.append(Mismatch(instr_id, min(n, len(actions)),
                            f"trajectory has {n} entries; {len(actions)} actions give {want}"))
    return len(actions), out


def _navigators(graphs: Mapping[str, NavGraph], hfov: float | None, config: NavigatorConfig | None):
    navs: dict[str, LowLevelNavigator] = {}

    def nav_for(scan: str) -> LowLevelNavigator:
        if scan not in navs:
            navs[scan] = LowLevelNavigator(graphs[scan], hfov, config)
        return navs[scan]

    return nav_for


def replay_predictions(
    predictions: Mapping[str, Sequence[Sequence]],
    episodes: Mapping[str, "object"],
    graphs: Mapping[str, NavGraph],
    hfov: float | None = None,
    progress: bool = False,
    config: NavigatorConfig | None = None,
    actions: Mapping[str, Sequence[str]] | None = None,
) -> ReplayReport:
    """Replay every prediction whose instr_id is in `episodes` (R2REpisode-like: scan, start, heading) in the
    mode of `config` (default: discretised views). With `actions` (instr_id -> action list) the actions are
    re-executed and compared with the trajectory; otherwise each step is checked for one-action reachability."""
    nav_for = _navigators(graphs, hfov, config)
    report = ReplayReport()
    items = [(i, t) for i, t in predictions.items() if i in episodes]
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="replay", unit="ep")
    for iid, traj in items:
        ep = episodes[iid]
        nav = nav_for(ep.scan)
        if actions is None:
            n, mm = replay_trajectory(nav, iid, ep.start, ep.heading, traj)
        else:
            n, mm = reexecute_trajectory(nav, iid, ep.start, ep.heading, traj, actions[iid])
        report.episodes += 1
        report.steps += n
        report.mismatches.extend(mm)
    return report
