"""MatterSim discretised-view navigation and the BFS expert, on a hand-made star graph and real R2R graphs."""
from __future__ import annotations

import math
import statistics
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from navtune.graph import (
    ExpertTable,
    GoalUnreachable,
    LowLevelNavigator,
    LowLevelState,
    NavGraph,
    expert_actions,
    follows_with_move_to_nearest,
    heading_index_of,
    navigable_neighbours,
)
from navtune.tasks.r2r import load_graphs, load_r2r_split
from navtune.tasks.r2r.expert import rollout
from navtune.tasks.r2r.replay import replay_trajectory


def _at(deg: float, r: float = 2.0, z: float = 0.0) -> tuple[float, float, float]:
    h = math.radians(deg)
    return (r * math.sin(h), r * math.cos(h), z)  # navtune heading: 0 along +y, clockwise positive


def star() -> NavGraph:
    """O in the middle; N0 straight ahead (0°), N35 at 35°, N45 at 45°, N180 behind, UP at -20° but 1.5 m
    higher (elevation 36.9°, so its angular distance sqrt(20² + 36.9²) = 42° sorts it after N35);
    LEAF hangs off N180 only."""
    ids = ["O", "N0", "N35", "N45", "N180", "UP", "LEAF"]
    pos = [(0, 0, 0), _at(0), _at(35), _at(45), _at(180), _at(-20, z=1.5), _at(180, r=4.0)]
    edges = [("O", v) for v in ids[1:6]] + [("N180", "LEAF")]
    return NavGraph.from_edges(ids, pos, edges, name="star")


def test_navigable_uses_40_degree_half_fov_and_mattersim_order():
    g = star()
    assert navigable_neighbours(g, "O", 0.0) == ["N0", "N35", "UP"]  # N45 is outside ±40°
    assert navigable_neighbours(g, "O", math.radians(30)) == ["N35", "N45", "N0"]
    assert navigable_neighbours(g, "O", math.radians(90)) == []
    # a wider field of view sees N45 too
    assert "N45" in navigable_neighbours(g, "O", 0.0, hfov=math.radians(100))


def test_actions_turn_move_and_stop():
    nav = LowLevelNavigator(star())
    s = LowLevelState("O", 0)
    assert nav.step(s, "Left") == LowLevelState("O", 11)
    assert nav.step(LowLevelState("O", 11), "Right") == s
    assert nav.step(s, "Move") == LowLevelState("N0", 0)  # moving keeps the heading
    assert nav.move_to(s, 2) == LowLevelState("UP", 0)
    assert nav.step(s, "Stop") == s
    with pytest.raises(ValueError):
        nav.move_to(s, 3)
    east = LowLevelState("O", 3)
    assert not nav.move_possible(east)
    assert nav.allowed_actions(east) == ("Left", "Right", "Stop")
    assert nav.allowed_actions(s) == ("Left", "Right", "Move", "Stop")
    with pytest.raises(ValueError, match="unknown"):
        nav.step(s, "Forward")


def test_heading_snaps_to_nearest_30_degrees():
    assert heading_index_of(math.radians(14.9)) == 0
    assert heading_index_of(math.radians(15.1)) == 1
    assert heading_index_of(math.radians(350)) == 0
    assert heading_index_of(-math.radians(30)) == 11
    assert LowLevelState.from_heading("O", 4.055).heading == pytest.approx(math.radians(240))


def test_expert_on_hand_graph():
    nav = LowLevelNavigator(star())
    # N180 is behind: five turns bring it within 30° of the view (Left wins the tie with Right), then Move
    assert expert_actions(nav, LowLevelState("O", 0), "N180") == ["Left"] * 5 + ["Move", "Stop"]
    assert expert_actions(nav, LowLevelState("O", 0), "LEAF") == ["Left"] * 5 + ["Move", "Move", "Stop"]
    assert expert_actions(nav, LowLevelState("O", 0), "O") == ["Stop"]
    table = ExpertTable(nav, "N0")
    assert table.action(LowLevelState("O", 0)) == "Move"
    assert table.cost(LowLevelState("O", 0)) == 2
    isolated = NavGraph.from_edges(["A", "B"], [(0, 0, 0), (0, 5, 0)], [])
    with pytest.raises(GoalUnreachable):
        expert_actions(LowLevelNavigator(isolated), LowLevelState("A", 0), "B")


def _bfs_len(nav: LowLevelNavigator, start: LowLevelState, goal: str) -> int:
    """Independent forward BFS over (viewpoint, heading) states: action count incl. Stop."""
    seen, q = {start}, deque([(start, 0)])
    while q:
        s, n = q.popleft()
        if s.viewpoint == goal:
            return n + 1
        for a in ("Left", "Right", "Move"):
            if a == "Move" and not nav.move_possible(s):
                continue
            t = nav.step(s, a)
            if t not in seen:
                seen.add(t)
                q.append((t, n + 1))
    return -1


def test_expert_table_matches_plain_bfs_on_a_real_scan(r2r_data_dir):
    episodes = [e for e in load_r2r_split(r2r_data_dir, "val_unseen") if e.instr_id.endswith("_0")]
    graphs = load_graphs(r2r_data_dir, {e.scan for e in episodes[:12]})
    for ep in episodes[:12]:
        nav = LowLevelNavigator(graphs[ep.scan])
        start = LowLevelState.from_heading(ep.start, ep.heading)
        acts = expert_actions(nav, start, ep.goal)
        assert len(acts) == _bfs_len(nav, start, ep.goal)
        s = start
        for a in acts[:-1]:
            assert a in nav.allowed_actions(s)
            s = nav.step(s, a)
        assert s.viewpoint == ep.goal and acts[-1] == "Stop"


def test_expert_facts_on_val_unseen(r2r_data_dir):
    """All 783 goals reachable; 699 reference paths followable with Move-to-nearest; mean 12.0, max 24."""
    episodes = load_r2r_split(r2r_data_dir, "val_unseen")
    paths = {e.path_id: e for e in episodes}
    graphs = load_graphs(r2r_data_dir, {e.scan for e in episodes})
    navs = {s: LowLevelNavigator(g) for s, g in graphs.items()}
    lengths, followable = [], 0
    for ep in paths.values():
        nav = navs[ep.scan]
        lengths.append(len(expert_actions(nav, LowLevelState.from_heading(ep.start, ep.heading), ep.goal)))
        followable += follows_with_move_to_nearest(nav, list(ep.path))
    assert len(lengths) == 783
    assert followable == 699
    assert statistics.fmean(lengths) == pytest.approx(12.02, abs=0.01)
    assert max(lengths) == 24


@st.composite
def random_graphs(draw):
    n = draw(st.integers(2, 9))
    pts = draw(st.lists(st.tuples(st.integers(-6, 6), st.integers(-6, 6)), min_size=n, max_size=n, unique=True))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=len(pairs), unique=True)) if pairs else []
    ids = [f"v{i}" for i in range(n)]
    g = NavGraph.from_edges(ids, [(x, y, 0.0) for x, y in pts], [(ids[i], ids[j]) for i, j in chosen])
    return g, draw(st.integers(0, 11)), draw(st.sampled_from(ids))


@settings(max_examples=40, deadline=None)
@given(random_graphs())
def test_expert_is_optimal_and_replayable_on_random_graphs(case):
    """On random graphs the expert table agrees with plain BFS, and its rollout replays with no mismatch."""
    g, h, goal = case
    nav = LowLevelNavigator(g)
    start = LowLevelState("v0", h)
    expected = _bfs_len(nav, start, goal)
    if expected < 0:
        with pytest.raises(GoalUnreachable):
            expert_actions(nav, start, goal)
        return
    acts = expert_actions(nav, start, goal)
    assert len(acts) == expected
    traj = rollout(nav, start, acts)
    assert traj[-1][0] == goal
    _, mismatches = replay_trajectory(nav, "x", "v0", start.heading, traj)
    assert mismatches == []
