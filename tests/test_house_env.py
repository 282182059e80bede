"""The MiniWorld house simulator (headless EGL): frames, depth, conventions, collisions, experts, wrappers."""
from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.gl

W, H = 96, 72

_HASH_SCRIPT = """
import hashlib, json, sys
from navtune.envs.house.world import HouseWorld
w = HouseWorld(seed=int(sys.argv[1]), width=%d, height=%d)
out = []
for k, r in enumerate(w.house.rooms[:3]):
    rgb, depth = w.render_at(r.center[0], r.center[1], k * 1.1)
    out.append(hashlib.sha1(rgb.tobytes()).hexdigest())
print(json.dumps(out))
""" % (W, H)


def _hashes(world) -> list[str]:
    out = []
    for k, r in enumerate(world.house.rooms[:3]):
        rgb, _ = world.render_at(r.center[0], r.center[1], k * 1.1)
        out.append(hashlib.sha1(rgb.tobytes()).hexdigest())
    return out


@pytest.fixture(scope="module")
def world():
    from navtune.envs.house.world import HouseWorld

    w = HouseWorld(seed=3, width=W, height=H)
    yield w
    w.close()


@pytest.fixture(scope="module")
def env():
    from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv

    e = HouseNavEnv(HouseEnvConfig(width=W, height=H))
    yield e
    e.close()


def test_frames_deterministic_across_processes_and_with_two_envs(world):
    """Same seed -> same frames: in this process, after another env rendered another house in between
    (MiniWorld's shared display list would draw the wrong rooms), and in a fresh process."""
    from navtune.envs.house.world import HouseWorld

    world.load(3)
    first = _hashes(world)
    assert len(set(first)) == 3
    other = HouseWorld(seed=8, width=W, height=H)
    try:
        other_h = _hashes(other)
        assert _hashes(world) == first
        assert other_h != first
        assert _hashes(other) == other_h
    finally:
        other.close()
    world.load(5)
    world.load(3)
    assert _hashes(world) == first
    proc = subprocess.run([sys.executable, "-c", _HASH_SCRIPT, "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == first


def test_mesh_radii_table_matches_miniworld(world):
    from miniworld.objmesh import ObjMesh

    from navtune.envs.house.layout import OBJECT_KINDS

    for kind in OBJECT_KINDS.values():
        if kind.mesh is None:
            continue
        mesh = ObjMesh.get(kind.mesh_name("red"))
        assert np.allclose(mesh.max_coords, kind.extent, rtol=1e-5), kind.category
    ents = [e for e in world.entities if e is not world.agent]
    assert [round(float(e.radius), 4) for e in ents] == [round(o.radius, 4) for o in world.house.objects]


def test_depth_is_metric_and_rgb_any_size(world):
    world.load(3)
    house = world.house
    hall = house.rooms[0]
    doors = [(d.lo, d.hi) for d in house.doors if not d.vertical and abs(d.line - hall.y1) < 1e-9]
    x = next(v for v in np.arange(hall.x0 + 1.0, hall.x1 - 1.0, 0.1) if all(not (lo - 0.5 < v < hi + 0.5) for lo, hi in doors))
    y = hall.y0 + 0.5
    rgb, depth = world.render_at(float(x), y, 0.0)  # facing +y: the hallway's north wall
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert depth.shape == (H, W) and depth.dtype == np.float32
    assert depth[H // 2, W // 2] == pytest.approx(hall.y1 - y, abs=0.01)
    assert np.isfinite(depth).all() and depth.min() > 0.04


def test_heading_convention_steps_and_collisions(env):
    from navtune.envs.house.layout import generate_house
    from navtune.tasks.objectnav import ObjectGoal, ObjectNavEpisode

    house = generate_house(3)
    hall = house.rooms[0]
    obj = house.objects[0]
    x, y = hall.x0 + 1.2, (hall.y0 + hall.y1) / 2
    ep = ObjectNavEpisode("t", house.scene_id, (x, y, 0.0), math.pi / 2, obj.category,
                          [ObjectGoal((obj.x, obj.y, 0.0), obj.radius, obj.object_id)], 5.0)
    from navtune.envs.protocol import NavEnv

    assert isinstance(env, NavEnv)
    obs = env.reset(ep)
    assert obs.rgb.shape == (H, W, 3) and obs.depth.shape == (H, W)
    assert obs.pose.heading == pytest.approx(math.pi / 2) and obs.allowed_actions == env.action_space
    r = env.step("move_forward")  # heading pi/2 looks along +x
    assert (r.observation.pose.x, r.observation.pose.y) == (pytest.approx(x + 0.25), pytest.approx(y))
    assert not r.collided
    r = env.step("turn_right")  # clockwise: heading grows by 30 degrees
    assert r.observation.pose.heading == pytest.approx(math.pi / 2 + math.pi / 6)
    for _ in range(4):
        r = env.step("turn_left")  # heading 0: +y, towards the hallway north wall
    assert r.observation.pose.heading == pytest.approx(0.0, abs=1e-9)
    before = r.observation.pose
    collided = []
    for _ in range(8):
        r = env.step("move_forward")
        collided.append(r.collided)
    assert collided[-1] and r.info["stopped"] is False
    p = r.observation.pose
    assert p.y < hall.y1 - 0.4 and p.y > before.y  # moved until the wall blocked, never through it
    n_moves = collided.index(True)
    assert p.y == pytest.approx(before.y + 0.25 * n_moves)
    assert r.observation.info["collisions"] == collided.count(True)


def test_expert_succeeds_in_the_simulator():
    """ObjectNav expert through the real MiniWorld steps (physics only), scored by navtune.metrics."""
    from navtune.envs.house.env import HouseEnvConfig
    from navtune.envs.house.parallel import run_expert
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

    eps = list(generate_objectnav_episodes(range(10), per_house=2))
    rows = run_expert(eps, workers=1, config=HouseEnvConfig(rgb=False, depth=False))
    assert np.mean([r["metrics"]["sr"] for r in rows]) >= 0.99
    assert all(r["metrics"]["collisions"] == 0 for r in rows)
    assert all(r["actions"][-1] == "stop" for r in rows)


def test_expert_action_replans_after_detours(env):
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

    ep = list(generate_objectnav_episodes([6], per_house=1))[0]
    env.reset(ep)
    for a in ["turn_left", "move_forward", "turn_left", "move_forward"]:  # off the plan
        env.step(a)
    for _ in range(ep.max_steps):
        r = env.step(env.expert_action())
        if r.done:
            break
    assert r.info["success"] and env.metrics()["sr"] == 1.0
    m = env.render_topdown(size=200)
    assert m.ndim == 3 and m.dtype == np.uint8 and m.shape[2] == 3


def test_gym_wrapper_reset_seed_and_step():
    import gymnasium as gym

    from navtune.envs.house.env import HouseEnvConfig
    from navtune.envs.house.gym_env import HouseGymEnv

    g = HouseGymEnv(HouseEnvConfig(width=64, height=48))
    try:
        assert isinstance(g, gym.Env)
        o1, info = g.reset(seed=4)
        assert g.observation_space.contains(o1)
        h1 = hashlib.sha1(o1["rgb"].tobytes()).hexdigest()
        o, reward, term, trunc, info = g.step(g.expert_action())
        assert g.observation_space.contains(o) and isinstance(reward, float) and not term
        o2, _ = g.reset(seed=4)
        assert hashlib.sha1(o2["rgb"].tobytes()).hexdigest() == h1
        total, done = 0.0, False
        while not done:
            o, reward, term, trunc, info = g.step(g.expert_action())
            total += reward
            done = term or trunc
        assert term and info["success"] and total > 2.5
    finally:
        g.close()


def test_house_graph_env_renders_views(tmp_path, world):
    """GraphNavEnv (the foundation's) + HouseViewRenderer on a generated VLN episode."""
    from navtune.envs.graph import GraphNavEnv
    from navtune.envs.house.renderer import HouseViewRenderer, house_graph
    from navtune.envs.house.episodes.vln import generate_vln_dataset
    from navtune.tasks.r2r import load_r2r_split

    generate_vln_dataset([3], tmp_path, "val", per_house=1)
    ep = load_r2r_split(tmp_path, "val")[0]
    renderer = HouseViewRenderer(ep.scan, world=world)
    from navtune.envs.graph import ViewRenderer

    assert isinstance(renderer, ViewRenderer)
    env = GraphNavEnv.for_r2r(tmp_path, renderer=renderer)
    obs = env.reset(ep)
    assert obs.rgb.shape == (H, W, 3) and obs.depth.shape == (H, W)
    rgb, _ = world.render_at(*house_graph(ep.scan).position(ep.path[0])[:2], obs.pose.heading)
    assert np.array_equal(rgb, obs.rgb)
    frames = {hashlib.sha1(obs.rgb.tobytes()).hexdigest()}
    while True:
        r = env.step(env.expert_action())
        frames.add(hashlib.sha1(r.observation.rgb.tobytes()).hexdigest())
        if r.done:
            break
    assert r.info["success"] and len(frames) > 3


@pytest.mark.slow
def test_parallel_rollouts_match_in_process():
    from navtune.envs.house.env import HouseEnvConfig
    from navtune.envs.house.parallel import HouseWorkerPool, run_expert
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

    eps = list(generate_objectnav_episodes([1, 2], per_house=2))
    cfg = HouseEnvConfig(width=32, height=24)
    with pytest.raises(ValueError, match="fork"):
        HouseWorkerPool(2, cfg, start_method="fork")
    par = run_expert(eps, workers=2, config=cfg)
    seq = run_expert(eps, workers=1, config=cfg)
    assert [r["actions"] for r in par] == [r["actions"] for r in seq]
    assert all(r["success"] for r in par)
