"""Generated houses without OpenGL: plans, occupancy, the continuous expert, ObjectNav / VLN episode files."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from navtune.envs.house.expert import ContinuousExpert, simulate
from navtune.envs.house.gl import HouseGLError, explain_gl_error
from navtune.envs.house.layout import OBJECT_CATEGORIES, generate_house, seed_from_scene_id
from navtune.envs.house.occupancy import OccupancyGrid, object_goal_distance
from navtune.envs.house.navgraph import build_house_graph
from navtune.metrics.objectnav import objectnav_episode_metrics
from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes, goal_objects
from navtune.tasks.objectnav import ObjectGoal, ObjectNavDataError, ObjectNavEpisode, read_episodes, write_episodes


# ---------------------------------------------------------------------------------------------- episodes file
def _episode(eid="e1") -> ObjectNavEpisode:
    return ObjectNavEpisode(eid, "house_3", (1.0, 2.0, 0.0), math.pi / 6, "barrel",
                            [ObjectGoal((3.0, 4.0, 0.0), 0.49, "obj01")], 4.2, info={"k": 1})


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_objectnav_episode_roundtrip(tmp_path, suffix):
    eps = [_episode("a"), _episode("b")]
    path = write_episodes(tmp_path / f"eps{suffix}", eps)
    assert read_episodes(path) == eps
    assert eps[0].instruction == "find a barrel"
    assert eps[0].distance_to_goal_euclidean(3.0, 2.0) == pytest.approx(2.0 - 0.49)


@pytest.mark.parametrize("field,value,msg", [
    ("goals", [], "'goals'"),
    ("start_position", [1, 2], "'start_position'"),
    ("start_heading", 7.0, "'start_heading'"),
    ("max_steps", 0, "'max_steps'"),
    ("success_distance", -1, "'success_distance'"),
])
def test_objectnav_validation_names_file_episode_field(tmp_path, field, value, msg):
    row = _episode("bad_one").to_dict()
    row[field] = value
    path = tmp_path / "eps.jsonl"
    path.write_text(json.dumps(_episode("ok").to_dict()) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ObjectNavDataError) as e:
        read_episodes(path)
    assert str(path) in str(e.value) and "'bad_one'" in str(e.value) and msg in str(e.value)


def test_objectnav_duplicate_ids_rejected(tmp_path):
    with pytest.raises(ObjectNavDataError, match="duplicated"):
        write_episodes(tmp_path / "x.jsonl", [_episode("a"), _episode("a")])


# ---------------------------------------------------------------------------------------------- houses
def test_house_is_deterministic_and_well_formed():
    for seed in range(12):
        a, b = generate_house(seed), generate_house(seed)
        assert a.summary() == b.summary() and a.doors == b.doors and a.objects == b.objects
        assert 5 <= len(a.rooms) <= 8
        types = [r.room_type for r in a.rooms]
        assert types[0] == "hallway" and len(set(types)) == len(types)
        assert len({r.wall_tex for r in a.rooms}) == len(a.rooms)  # distinct textures per room
        assert len({r.floor_tex for r in a.rooms}) == len(a.rooms)
        assert a.objects and all(o.category in OBJECT_CATEGORIES for o in a.objects)
        assert seed_from_scene_id(a.scene_id) == seed
    assert generate_house(1).summary() != generate_house(2).summary()


def test_occupancy_matches_exact_collision_and_is_connected():
    house = generate_house(4)
    grid = OccupancyGrid.build(house)
    assert np.array_equal(grid.free, house.grid().free)  # the grid kept from generation is the same
    rng = np.random.default_rng(0)
    gx, gy = grid.cell_centers()
    idx = rng.choice(gx.size, 1500, replace=False)
    for k in idx:
        x, y = float(gx.ravel()[k]), float(gy.ravel()[k])
        if house.room_at(x, y) is None:
            continue  # outside every room: unreachable anyway
        assert grid.free.ravel()[k] == (not grid.collides(x, y)), (x, y)
    assert grid.single_component()
    # every object can be reached (its success region is in the walkable space)
    for o in house.objects:
        assert (grid.goal_mask([o], 1.0) & grid.free).any(), o


def test_cached_house_is_immutable_and_other_radius_grids_leave_it_alone():
    """`generate_house` shares one HouseSpec per seed: a grid for another agent radius must neither change
    that house nor what its default grid is (the grid used to be written into the shared spec)."""
    import dataclasses

    house = generate_house(6)
    default = house.grid()
    small = house.grid(agent_radius=0.2)
    assert small.agent_radius == 0.2 and small.free.sum() > default.free.sum()
    assert house.grid() is default and generate_house(6).grid() is default
    assert house.grid(agent_radius=0.2) is small
    with pytest.raises(dataclasses.FrozenInstanceError):
        house.objects = ()  # type: ignore[misc]


def test_success_region_stops_at_walls():
    """A point just across the wall behind an object is within 1 m in a straight line but not a success."""
    checked = 0
    for seed in range(6):
        house = generate_house(seed)
        for o in house.objects:
            room = house.rooms[o.room]
            if room.x0 + 1.0 < o.x < room.x1 - 1.0 and o.y - o.radius - room.y0 < 0.2:
                assert object_goal_distance(house, o.x, room.y0 - 0.45, [o]) == math.inf
                assert object_goal_distance(house, o.x, o.y - o.radius - 0.05, [o]) < 0.1
                checked += 1
    assert checked >= 3


def test_gl_error_names_library_and_package():
    err = explain_gl_error(ImportError('Library "EGL" not found.'))
    assert isinstance(err, HouseGLError) and '"EGL"' in str(err) and "libegl1" in str(err)
    assert "libglu1-mesa" in str(explain_gl_error(ImportError('Library "GLU" not found.')))


# ---------------------------------------------------------------------------------------------- experts
def test_continuous_expert_success_on_200_objectnav_episodes():
    """The A* expert under MiniWorld's step model, scored by navtune.metrics.objectnav (the GL test replays
    a subset through the real simulator)."""
    episodes = list(generate_objectnav_episodes(range(50), per_house=4))
    assert len(episodes) == 200
    grids: dict[str, tuple] = {}
    rows = []
    for e in episodes:
        if e.scene_id not in grids:
            h = generate_house(seed_from_scene_id(e.scene_id))
            grids[e.scene_id] = (h, h.grid())
        house, grid = grids[e.scene_id]
        goals = goal_objects(house, e)
        expert = ContinuousExpert(grid, goals)
        x, y, _ = e.start_position
        plan = expert.plan(x, y, e.start_heading) or ["stop"]
        poses = simulate(expert, x, y, e.start_heading, plan)
        assert all(not expert.collides(px, py) for px, py, _ in poses)
        region = grid.distance_field(grid.goal_mask(goals, e.success_distance))
        geo = [0.0 if object_goal_distance(house, px, py, goals) <= e.success_distance
               else max(grid.lookup(region, px, py), 0.01) for px, py, _ in poses]
        rows.append(objectnav_episode_metrics([(p[0], p[1], 0.0) for p in poses], geo, plan[-1] == "stop", 1e-6))
        assert geo[0] == pytest.approx(e.geodesic_distance, abs=0.15)
    sr = np.mean([r["sr"] for r in rows])
    assert sr >= 0.99, sr
    assert np.mean([r["spl"] for r in rows]) > 0.7


def test_vln_dataset_in_r2r_format_and_expert_success(tmp_path):
    """200 VLN paths over 50 houses, read back by the foundation's loader and solved by its BFS expert."""
    from navtune.envs.graph import GraphNavEnv
    from navtune.envs.house.episodes.vln import generate_vln_dataset
    from navtune.tasks.r2r import load_r2r_split

    path = generate_vln_dataset(range(50), tmp_path, "train", per_house=4)
    assert path == tmp_path / "R2R_train.json"
    assert (tmp_path / "connectivity" / "house_7_connectivity.json").is_file()
    episodes = load_r2r_split(tmp_path, "train")
    assert len(episodes) == 600  # 3 instructions per path
    first = [e for e in episodes if e.instr_id.endswith("_0")]
    assert len(first) == 200
    env = GraphNavEnv.for_r2r(tmp_path)
    rows = []
    for e in first:
        env.reset(e)
        while not env.step(env.expert_action()).done:
            pass
        rows.append(env.metrics())
    assert np.mean([r["sr"] for r in rows]) >= 0.99
    # instructions talk about the rooms on the path and a landmark / room at the goal
    e = first[0]
    house = generate_house(seed_from_scene_id(e.scan))
    graph, rooms = build_house_graph(house)
    names = {house.room_name(rooms[v]) for v in e.path if rooms[v] >= 0}
    text = e.instruction.lower()
    assert any(n in text for n in names)
    assert text.replace(", then ", " and ").split(" and ")[-1].startswith(("stop", "wait"))


def test_house_graph_is_connected_and_r2r_like():
    import networkx as nx

    house = generate_house(5)
    graph, rooms = build_house_graph(house)
    assert nx.is_connected(graph.to_networkx())
    assert 20 <= len(graph) <= 120
    lengths = [graph.edge_length(a, b) for a, b in graph.edges()]
    assert max(lengths) <= 3.0
    grid = OccupancyGrid.build(house)
    assert all(grid.line_walkable(graph.position(a), graph.position(b)) for a, b in graph.edges())
    # a viewpoint in every doorway
    for d in house.doors:
        assert min(math.hypot(p[0] - d.center[0], p[1] - d.center[1]) for p in graph.positions) < 0.3


def test_cli_episodes_and_seed_ranges(tmp_path):
    from typer.testing import CliRunner

    from navtune.cli import app
    from navtune.cli.house import parse_seeds

    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    r = CliRunner().invoke(app, ["house", "episodes", "--task", "objectnav", "--seeds", "0-2", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    eps = read_episodes(tmp_path / "objectnav_train.jsonl")
    assert len(eps) == 6 and {e.scene_id for e in eps} == {"house_0", "house_1", "house_2"}
    r = CliRunner().invoke(app, ["house", "episodes", "--task", "vln", "--seeds", "0-1", "--out", str(tmp_path / "v")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "v" / "R2R_train.json").is_file()
    r = CliRunner().invoke(app, ["house", "episodes", "--task", "nope", "--out", str(tmp_path)])
    assert r.exit_code != 0


def test_missing_gl_library_gives_clear_error():
    """In a fresh process whose loader cannot find libEGL, starting the simulator raises HouseGLError naming
    the library and the Debian package."""
    import subprocess
    import sys

    script = """
import pyglet.lib
real = pyglet.lib.load_library
def fake(*names, **kw):
    if "EGL" in names:
        raise ImportError('Library "EGL" not found.')
    return real(*names, **kw)
pyglet.lib.load_library = pyglet.lib.loader.load_library = fake
from navtune.envs.house.gl import HouseGLError, import_miniworld
try:
    import_miniworld()
except HouseGLError as e:
    print("HouseGLError:", e)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "HouseGLError:" in out.stdout, out.stderr[-1500:]
    assert '"EGL"' in out.stdout and "libegl1" in out.stdout
