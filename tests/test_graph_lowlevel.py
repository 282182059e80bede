"""MatterSim discretised-view navigation and the BFS expert, on a hand-made star graph and real R2R graphs."""
from __future__ import annotations

import math
import statistics
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from navtune.core.geometry import angle_diff
from navtune.graph import (
    Camera,
    ExpertTable,
    GoalUnreachable,
    LowLevelNavigator,
    LowLevelState,
    NavGraph,
    NavigatorConfig,
    expert_actions,
    follows_with_move_to_nearest,
    heading_index_of,
    navigable_neighbours,
)
from navtune.tasks.r2r import load_graphs, load_r2r_split
from navtune.tasks.r2r.expert import rollout
from navtune.tasks.r2r.replay import reexecute_trajectory, replay_trajectory


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


# ---- continuous headings (seed 1's MatterSim setup), the camera, Adjust ----------------------------------

SEED1 = NavigatorConfig("continuous", Camera(640, 480, math.radians(105)))


def test_camera_hfov_is_mattersims_formula():
    """MatterSim's navigability test uses vfov * W / H, not the pinhole 2 atan(tan(vfov / 2) W / H)."""
    assert Camera(640, 480, math.radians(60)).hfov == pytest.approx(math.radians(80), abs=1e-12)
    assert Camera(640, 480, math.radians(105)).hfov == pytest.approx(math.radians(140), abs=1e-12)
    assert Camera(640, 480, math.radians(105), output_size=(320, 240)).frame_size == (320, 240)
    with pytest.raises(ValueError, match="vfov"):
        Camera(640, 480, 0.0)
    with pytest.raises(ValueError, match="headings"):
        NavigatorConfig("snapped")


def test_continuous_start_and_turns_follow_mattersim():
    """No snapping; Left/Right add -/+30° to the heading and wrap to [0, 2pi) as MatterSim's
    setHeadingElevation does (fmod, then + 2pi when negative); moving keeps the heading."""
    nav = LowLevelNavigator(star(), config=NavigatorConfig("continuous"))
    s = nav.start_state("O", 0.053)
    assert s.heading == pytest.approx(0.053, abs=1e-15)
    left = nav.step(s, "Left")
    assert left.heading == pytest.approx(math.fmod(0.053 - math.pi / 6, 2 * math.pi) + 2 * math.pi, abs=1e-12)
    assert nav.step(left, "Right").heading == pytest.approx(0.053, abs=1e-12)
    twelve = s
    for _ in range(12):
        twelve = nav.step(twelve, "Right")
    assert twelve == s  # the start heading's grid is closed under turns
    moved = nav.step(s, "Move")
    assert moved.viewpoint == "N0" and moved.heading == s.heading
    # the discretised navigator snaps the same start
    assert LowLevelNavigator(star()).start_state("O", 0.053) == LowLevelState("O", 0)


def test_adjust_faces_the_location_closest_to_the_view_centre():
    """Adjust = MatterSim's makeAction(0, rel_heading of navigable location 1, 0): turn without moving."""
    nav = LowLevelNavigator(star(), config=NavigatorConfig("continuous", adjust=True))
    s = nav.start_state("O", math.radians(20))  # N35 is 15° right of centre, N0 20° left
    a = nav.step(s, "Adjust")
    assert a.viewpoint == "O" and math.degrees(a.heading) == pytest.approx(35.0, abs=1e-5)  # float32 geometry
    assert nav.navigable(a)[0] == "N35"
    assert nav.step(a, "Adjust").heading == pytest.approx(a.heading, abs=1e-6)  # already facing it
    assert nav.step(a, "Move") == LowLevelState("N35", a.heading_index, a.heading_offset)  # Move keeps the heading
    s10 = nav.start_state("O", math.radians(10))  # N0 (10° left) is closer to the centre than N35 (25° right)
    assert abs(angle_diff(nav.step(s10, "Adjust").heading, 0.0)) < 1e-6
    # UP is 20° left but 36.9° up: angular distance 42° puts it behind N35 even when N0 is out of view
    assert nav.navigable(nav.start_state("O", math.radians(-15)))[:2] == ["N0", "UP"]
    assert nav.allowed_actions(s) == ("Left", "Right", "Move", "Adjust", "Stop")
    east = nav.start_state("O", math.radians(90))
    assert nav.allowed_actions(east) == ("Left", "Right", "Stop")
    with pytest.raises(ValueError, match="nothing navigable"):
        nav.step(east, "Adjust")
    # discretised mode: MatterSim turns 30° in the sign of the relative heading
    disc = LowLevelNavigator(star(), config=NavigatorConfig("discrete", adjust=True))
    assert disc.step(LowLevelState("O", 1), "Adjust") == LowLevelState("O", 2)  # N35 is 5° right of 30°
    assert disc.step(LowLevelState("O", 11), "Adjust") == LowLevelState("O", 0)  # N0 is 30° right of 330°
    assert "Adjust" not in LowLevelNavigator(star()).allowed_actions(LowLevelState("O", 1))


def test_continuous_expert_searches_the_start_heading_grid():
    nav = LowLevelNavigator(star(), config=NavigatorConfig("continuous"))
    start = nav.start_state("O", math.radians(200))  # N180 is 20° left of the view
    assert expert_actions(nav, start, "N180") == ["Move", "Stop"]
    start = nav.start_state("O", math.radians(265))  # N180 is 85° left (out of ±40°): two Lefts bring it to 25°
    acts = expert_actions(nav, start, "LEAF")
    assert acts == ["Left", "Left", "Move", "Move", "Stop"] and len(acts) == _bfs_len(nav, start, "LEAF")
    table = ExpertTable(nav, "N180", start.heading_offset)
    assert table.covers(start) and not table.covers(nav.start_state("O", 0.0))
    with pytest.raises(ValueError, match="heading grid"):
        table.action(nav.start_state("O", 0.0))


@settings(max_examples=40, deadline=None)
@given(random_graphs(), st.floats(0.0, 2 * math.pi, exclude_max=True))
def test_continuous_expert_is_optimal_and_reexecutes(case, start_heading):
    """Continuous headings: the expert on the start heading's grid agrees with plain BFS, and executing its
    actions reproduces its trajectory (re-execution check, 1e-4 rad)."""
    g, _, goal = case
    nav = LowLevelNavigator(g, config=SEED1)
    start = nav.start_state("v0", start_heading)
    expected = _bfs_len(nav, start, goal)
    if expected < 0:
        with pytest.raises(GoalUnreachable):
            expert_actions(nav, start, goal)
        return
    acts = expert_actions(nav, start, goal)
    assert len(acts) == expected
    traj = rollout(nav, start, acts)
    assert traj[-1][0] == goal
    assert replay_trajectory(nav, "x", "v0", start_heading, traj)[1] == []
    assert reexecute_trajectory(nav, "x", "v0", start_heading, traj, acts)[1] == []


def test_move_table_equals_the_navigable_lists_on_real_scans(r2r_data_dir):
    """The all-nodes move table (one vectorised pass per heading) picks what the per-state list picks."""
    graphs = load_graphs(r2r_data_dir, {e.scan for e in load_r2r_split(r2r_data_dir, "val_seen")[:30]})
    for g in list(graphs.values())[:4]:
        for config, offset in ((NavigatorConfig(), 0.0), (SEED1, 0.3898)):
            nav = LowLevelNavigator(g, config=config)
            table = nav.move_table(offset)
            for i, vid in enumerate(g.ids):
                for h in range(12):
                    nav_list = nav.navigable(LowLevelState(vid, h, offset))
                    assert table[i, h] == (g.index[nav_list[0]] if nav_list else -1)
