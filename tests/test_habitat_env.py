"""The Habitat-Sim adapter's contract, against a small stand-in `habitat_sim` module (the real one is a conda
package that cannot be installed here): configuration sent, frame mapping, actions, collisions, geodesic
distance from the pathfinder, the expert, episode end; and that nothing imports the adapters by default."""
from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from navtune.core.actions import CONTINUOUS_ACTIONS
from navtune.envs.habitat import HabitatConfig, HabitatNavEnv, HabitatSimUnavailable, import_habitat_sim
from navtune.envs.habitat.coords import habitat_to_navtune, navtune_to_habitat
from navtune.envs.protocol import NavEnv, Pose
from navtune.tasks.habitat_datasets import load_objectnav_split, load_vlnce_split
from navtune.tasks.objectnav import ObjectGoal, ObjectNavEpisode

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ the stand-in habitat_sim
# A 10 m x 10 m room (habitat x, z in [-5, 5], floor y = 0) split by a wall on x = 0 for z < 1.
WALL_Z = 1.0


def _crosses_wall(a, b) -> bool:
    (ax, az), (bx, bz) = (a[0], a[2]), (b[0], b[2])
    if (ax < 0) == (bx < 0) or ax == bx:
        return False
    t = -ax / (bx - ax)
    return az + t * (bz - az) < WALL_Z


def _inside(p) -> bool:
    return -5 <= p[0] <= 5 and -5 <= p[2] <= 5


@dataclass
class FakeQuat:  # what numpy-quaternion offers: .w .x .y .z
    w: float
    x: float
    y: float
    z: float


def _yaw_of(q) -> float:
    return 2 * math.atan2(q[1], q[3])


@dataclass
class AgentState:
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation: object = field(default_factory=lambda: [0.0, 0.0, 0.0, 1.0])


class Agent:
    def __init__(self, cfg):
        self.cfg = cfg
        self.pos = np.zeros(3)
        self.yaw = 0.0

    def set_state(self, state):
        rot = state.rotation
        assert isinstance(rot, (list, np.ndarray)) and len(rot) == 4  # habitat converts via quat_from_coeffs
        self.pos = np.asarray(state.position, dtype=np.float64).copy()
        self.yaw = _yaw_of(rot)

    def get_state(self):
        return AgentState(self.pos.copy(), FakeQuat(math.cos(self.yaw / 2), 0.0, math.sin(self.yaw / 2), 0.0))

    def forward(self):
        return np.array([-math.sin(self.yaw), 0.0, -math.cos(self.yaw)])  # R_y(yaw) (0, 0, -1)


class ShortestPath:
    def __init__(self):
        self.requested_start = None
        self.requested_end = None
        self.points = []
        self.geodesic_distance = math.inf


class MultiGoalShortestPath:
    def __init__(self):
        self.requested_start = None
        self.requested_ends = []
        self.points = []
        self.geodesic_distance = math.inf
        self.closest_end_point_index = -1


class PathFinder:
    calls = 0

    def _route(self, s, e):
        if not (_inside(s) and _inside(e)):
            return math.inf, []
        if _crosses_wall(s, e):
            c = np.array([0.0, 0.0, WALL_Z + 0.2])
            return float(np.linalg.norm(c - s) + np.linalg.norm(e - c)), [s, c, e]
        return float(np.linalg.norm(e - s)), [s, e]

    def find_path(self, path) -> bool:
        PathFinder.calls += 1
        s = np.asarray(path.requested_start, dtype=np.float64)
        ends = path.requested_ends if hasattr(path, "requested_ends") else [path.requested_end]
        best = (math.inf, [], -1)
        for i, e in enumerate(ends):
            d, pts = self._route(s, np.asarray(e, dtype=np.float64))
            if d < best[0]:
                best = (d, pts, i)
        path.geodesic_distance, path.points = best[0], [p.astype(np.float32) for p in best[1]]
        if hasattr(path, "closest_end_point_index"):
            path.closest_end_point_index = best[2]
        return best[2] >= 0


class Simulator:
    instances: list["Simulator"] = []

    def __init__(self, cfg):
        self.reconfigure(cfg)
        self.pathfinder = PathFinder()
        self.previous_step_collided = False
        self.closed = False
        Simulator.instances.append(self)

    def reconfigure(self, cfg):
        self.cfg = cfg
        self.scenes = getattr(self, "scenes", []) + [cfg.sim_cfg.scene_id]

    def initialize_agent(self, agent_id, initial_state=None):
        assert agent_id == 0
        self.agent = Agent(self.cfg.agents[0])
        return self.agent

    def get_sensor_observations(self):
        out = {}
        for spec in self.cfg.agents[0].sensor_specifications:
            h, w = spec.resolution
            if spec.sensor_type == SensorType.COLOR:
                img = np.zeros((h, w, 4), np.uint8)
                img[..., 0] = int(math.degrees(self.agent.yaw) % 360) // 2
                img[..., 3] = 255
                out[spec.uuid] = img
            else:  # depth: free distance straight ahead (to the wall or the room's edge)
                d = 0.0
                while d < 10 and _inside(self.agent.pos + (d + 0.05) * self.agent.forward()) and not _crosses_wall(
                    self.agent.pos, self.agent.pos + (d + 0.05) * self.agent.forward()):
                    d += 0.05
                out[spec.uuid] = np.full((h, w), d, np.float32)
        return out

    def step(self, action):
        spec = self.cfg.agents[0].action_space[action]
        a = self.agent
        self.previous_step_collided = False
        if spec.name == "move_forward":
            new = a.pos + spec.actuation.amount * a.forward()
            if _inside(new) and not _crosses_wall(a.pos, new):
                a.pos = new
            else:
                self.previous_step_collided = True
        elif spec.name in ("turn_left", "turn_right"):
            a.yaw += math.radians(spec.actuation.amount) * (1 if spec.name == "turn_left" else -1)
        return self.get_sensor_observations()

    def close(self):
        self.closed = True


class SensorType:
    COLOR = "COLOR"
    DEPTH = "DEPTH"


class SensorSubType:
    PINHOLE = "PINHOLE"


class _Attrs:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class CameraSensorSpec(_Attrs):
    pass


class SimulatorConfiguration(_Attrs):
    pass


class AgentConfiguration(_Attrs):
    pass


@dataclass
class ActuationSpec:
    amount: float


@dataclass
class ActionSpec:
    name: str
    actuation: ActuationSpec


@dataclass
class Configuration:
    sim_cfg: SimulatorConfiguration
    agents: list


@pytest.fixture()
def fake_habitat(monkeypatch):
    hs = types.ModuleType("habitat_sim")
    agent_mod = types.ModuleType("habitat_sim.agent")
    agent_mod.AgentConfiguration, agent_mod.ActionSpec, agent_mod.ActuationSpec = AgentConfiguration, ActionSpec, ActuationSpec
    agent_mod.AgentState = AgentState
    for name, obj in dict(Simulator=Simulator, Configuration=Configuration, SimulatorConfiguration=SimulatorConfiguration,
                          CameraSensorSpec=CameraSensorSpec, SensorType=SensorType, SensorSubType=SensorSubType,
                          AgentState=AgentState, ShortestPath=ShortestPath,
                          MultiGoalShortestPath=MultiGoalShortestPath, agent=agent_mod).items():
        setattr(hs, name, obj)
    monkeypatch.setitem(sys.modules, "habitat_sim", hs)
    monkeypatch.setitem(sys.modules, "habitat_sim.agent", agent_mod)
    Simulator.instances.clear()
    return hs


@pytest.fixture()
def scenes(tmp_path):
    for name in ("sceneA", "sceneB"):
        p = tmp_path / "scene_datasets" / "hm3d" / "val" / f"00001-{name}" / f"{name}.basis.glb"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"glb")
    return tmp_path / "scene_datasets"


def objectnav_episode(start=(2.0, 2.0, 0.0), heading=0.0, goal=(3.0, 3.0, 0.0), scene="sceneA", **kw) -> ObjectNavEpisode:
    return ObjectNavEpisode(
        episode_id=kw.pop("episode_id", "ep0"), scene_id=f"hm3d/val/00001-{scene}/{scene}.basis.glb",
        start_position=start, start_heading=heading, object_category="chair",
        goals=[ObjectGoal(goal, kw.pop("radius", 0.0), "7")], geodesic_distance=1.0, **kw,
    )


def make_env(scenes, **kw) -> HabitatNavEnv:
    return HabitatNavEnv(HabitatConfig(scenes_dir=str(scenes), width=32, height=24, **kw))


# ------------------------------------------------------------------ tests
def test_missing_habitat_sim_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "habitat_sim", None)
    with pytest.raises(HabitatSimUnavailable, match="conda install habitat-sim"):
        import_habitat_sim()
    with pytest.raises(HabitatSimUnavailable):
        HabitatNavEnv(HabitatConfig())


def test_configuration_sent_to_habitat(fake_habitat, scenes):
    env = make_env(scenes, hfov=90.0, sensor_height=1.25)
    assert isinstance(env, NavEnv)
    env.reset(objectnav_episode())
    sim = Simulator.instances[0]
    cfg = sim.cfg
    assert cfg.sim_cfg.scene_id == str(scenes / "hm3d/val/00001-sceneA/sceneA.basis.glb")
    specs = {s.uuid: s for s in cfg.agents[0].sensor_specifications}
    assert specs["rgb"].sensor_type == SensorType.COLOR and specs["depth"].sensor_type == SensorType.DEPTH
    assert specs["rgb"].resolution == [24, 32] and specs["rgb"].hfov == 90.0
    assert specs["depth"].position == [0.0, 1.25, 0.0]
    space = cfg.agents[0].action_space
    assert set(space) == {"move_forward", "turn_left", "turn_right"}
    assert space["move_forward"].actuation.amount == 0.25 and space["turn_left"].actuation.amount == 30.0
    env.reset(objectnav_episode(scene="sceneA"))
    assert len(Simulator.instances) == 1 and sim.scenes == [cfg.sim_cfg.scene_id]  # same scene: no reload
    env.reset(objectnav_episode(scene="sceneB"))
    assert len(Simulator.instances) == 1 and len(sim.scenes) == 2  # another scene: reconfigure
    with pytest.raises(FileNotFoundError, match="scene file not found"):
        env.reset(objectnav_episode(scene="nowhere"))
    env.close()
    assert sim.closed


def test_reset_maps_frames_and_observes_rgbd(fake_habitat, scenes):
    env = make_env(scenes)
    obs = env.reset(objectnav_episode(start=(1.0, 2.0, 0.0), heading=math.radians(90), goal=(4.0, 2.0, 0.0)))
    agent = Simulator.instances[0].agent
    np.testing.assert_allclose(agent.pos, [1.0, 0.0, -2.0])  # habitat (x, y up, z) = (x, z, -y)
    np.testing.assert_allclose(agent.forward(), [1.0, 0.0, 0.0], atol=1e-9)  # heading 90° = navtune +x
    assert (obs.pose.x, obs.pose.y, obs.pose.z) == pytest.approx((1.0, 2.0, 0.0))
    assert obs.pose.heading == pytest.approx(math.radians(90))
    assert obs.rgb.shape == (24, 32, 3) and obs.rgb.dtype == np.uint8
    assert obs.depth.shape == (24, 32) and obs.depth.dtype == np.float32
    assert obs.depth[0, 0] == pytest.approx(4.0, abs=0.06)  # free space ahead to the room's edge (x = 5)
    assert obs.allowed_actions == CONTINUOUS_ACTIONS and obs.instruction == "find a chair"
    assert obs.info["geodesic_distance"] == pytest.approx(3.0, abs=1e-5)


def test_actions_move_and_turn_in_navtune_frame(fake_habitat, scenes):
    env = make_env(scenes)
    env.reset(objectnav_episode(start=(2.0, 2.0, 0.0), heading=0.0))
    r = env.step("move_forward")
    assert (r.observation.pose.x, r.observation.pose.y) == pytest.approx((2.0, 2.25))  # heading 0 = +y
    assert not r.collided and not r.done and r.observation.distance_traveled == pytest.approx(0.25)
    r = env.step("turn_right")
    assert r.observation.pose.heading == pytest.approx(math.radians(30))  # clockwise positive
    r = env.step("turn_left")
    r = env.step("turn_left")
    assert r.observation.pose.heading == pytest.approx(math.radians(330))
    with pytest.raises(ValueError, match="unknown action"):
        env.step("Move")


def test_wall_collision_and_geodesic_distance(fake_habitat, scenes):
    env = make_env(scenes)
    # west of the wall (habitat x < 0, z < 1 <=> navtune y > -1), goal east: the path goes round the wall end
    obs = env.reset(objectnav_episode(start=(-0.1, 3.0, 0.0), heading=math.radians(90), goal=(2.0, 3.0, 0.0)))
    straight = 2.1
    assert obs.info["geodesic_distance"] > straight + 1.0
    r = env.step("move_forward")  # into the wall
    assert r.collided and r.observation.pose.x == pytest.approx(-0.1)
    assert r.observation.distance_traveled == 0.0
    # ObjectNav goal circles: distance to the circle's edge
    obs = env.reset(objectnav_episode(start=(2.0, 2.0, 0.0), goal=(2.0, 4.0, 0.0), radius=0.5))
    assert obs.info["distance_to_goal"] == pytest.approx(1.5, abs=1e-5)


def test_expert_walks_round_the_wall_and_stops_inside_success_distance(fake_habitat, scenes):
    env = make_env(scenes)
    ep = objectnav_episode(start=(-1.0, 3.0, 0.0), heading=math.radians(200), goal=(1.5, 3.0, 0.0),
                           success_distance=0.5)
    obs = env.reset(ep)
    lowest_y = obs.pose.y
    for _ in range(200):
        a = env.expert_action()
        r = env.step(a)
        lowest_y = min(lowest_y, r.observation.pose.y)
        assert not r.collided
        if r.done:
            break
    assert a == "stop" and r.done and r.info["success"]
    assert r.observation.info["distance_to_goal"] < 0.5
    assert lowest_y < -WALL_Z  # went round the wall's end (navtune y = -habitat z)


def test_episode_ends_at_max_steps_without_success(fake_habitat, scenes):
    env = make_env(scenes, max_steps=3)
    env.reset(objectnav_episode())
    results = [env.step("turn_left") for _ in range(3)]
    assert [r.done for r in results] == [False, False, True] and results[-1].info["success"] is False
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step("turn_left")


def _gz(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(obj, f)


def test_habitat_files_to_env_end_to_end(fake_habitat, scenes, tmp_path):
    """Episodes read from habitat-format files run in the env: ObjectNav (view points) and VLN-CE."""
    scene_id = "hm3d/val/00001-sceneA/sceneA.basis.glb"
    _gz(tmp_path / "objectnav" / "val" / "val.json.gz", {"episodes": [], "category_to_task_category_id": {"chair": 0}})
    _gz(tmp_path / "objectnav" / "val" / "content" / "00001-sceneA.json.gz", {
        "episodes": [{"episode_id": "0", "scene_id": scene_id, "start_position": [2.0, 0.0, -2.0],
                      "start_rotation": [0, 0, 0, 1], "object_category": "chair", "info": {"geodesic_distance": 2.0}}],
        "goals_by_category": {"sceneA.basis.glb_chair": [{"object_id": 7, "position": [2.0, 0.5, -4.5], "view_points": [
            {"agent_state": {"position": [2.0, 0.0, -4.0], "rotation": [0, 0, 0, 1]}, "iou": 0.5}]}]},
    })
    (ep,) = load_objectnav_split(tmp_path / "objectnav", "val", success_distance=0.2)
    env = make_env(scenes)
    obs = env.reset(ep)
    assert obs.info["distance_to_goal"] == pytest.approx(2.0, abs=1e-5)  # to the view point, not the object
    for _ in range(20):
        r = env.step(env.expert_action())
        if r.done:
            break
    assert r.info["success"] and r.observation.pose.y == pytest.approx(4.0, abs=0.2)

    _gz(tmp_path / "vlnce" / "val_seen" / "val_seen.json.gz", {"episodes": [{
        "episode_id": 11, "trajectory_id": 4, "scene_id": scene_id, "start_position": [-2.0, 0.0, -2.0],
        "start_rotation": [0, 1, 0, 0], "info": {"geodesic_distance": 9.0},
        "goals": [{"position": [2.0, 0.0, -2.0], "radius": 3.0}],
        "instruction": {"instruction_text": "walk around the wall", "instruction_tokens": [1, 2]},
        "reference_path": [[-2.0, 0.0, -2.0], [0.0, 0.0, 1.2], [2.0, 0.0, -2.0]]}]})
    (vep,) = load_vlnce_split(tmp_path / "vlnce", "val_seen")
    obs = env.reset(vep)
    assert obs.instruction == "walk around the wall" and obs.info["distance_to_goal"] > 4.0 + 1.0
    for _ in range(100):
        r = env.step(env.expert_action())
        if r.done:
            break
    assert r.info["success"] and r.observation.info["distance_to_goal"] < 3.0


@settings(max_examples=60, deadline=None)
@given(st.tuples(*[st.floats(-50, 50)] * 3), st.floats(0, 2 * math.pi - 1e-6))
def test_frame_mapping_round_trip(p, heading):
    pos, rot = navtune_to_habitat(Pose(*p, heading))
    back = habitat_to_navtune(pos, rot)
    assert (back.x, back.y, back.z) == pytest.approx(p)
    assert math.cos(back.heading - heading) == pytest.approx(1.0)


def test_frame_mapping_fixed_points():
    assert habitat_to_navtune([1, 2, 3], [0, 0, 0, 1]) == Pose(1.0, -3.0, 2.0, 0.0)  # identity looks along -z = +y
    left = [0, math.sin(math.pi / 4), 0, math.cos(math.pi / 4)]  # +90° about y: habitat's turn_left
    assert habitat_to_navtune([0, 0, 0], left).heading == pytest.approx(math.radians(270))
    assert habitat_to_navtune([0, 0, 0], FakeQuat(math.cos(math.pi / 4), 0, -math.sin(math.pi / 4), 0)).heading == \
        pytest.approx(math.radians(90))


def test_default_path_never_imports_the_adapters():
    """`navtune --help`, the graph env, the skybox renderer and the habitat readers work without
    habitat_sim / MatterSim, and importing them does not pull either in."""
    code = (
        "import sys\n"
        "import navtune.cli, navtune.envs.graph, navtune.envs.mp3d, navtune.envs.habitat\n"
        "import navtune.tasks.habitat_datasets, navtune.envs.mattersim_adapter\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(navtune.cli.app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'mp3d' in r.output and 'habitat' in r.output, r.output\n"
        "bad = [m for m in ('habitat_sim', 'MatterSim', 'magnum', 'quaternion') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_navtune_eval_oracle_on_habitat_objectnav(fake_habitat, scenes, tmp_path):
    """`navtune eval --backend habitat-objectnav` runs the oracle on Habitat-Sim (the stand-in) to SR 1."""
    from typer.testing import CliRunner

    import navtune.cli
    from navtune.tasks.objectnav import write_episodes

    eps = [objectnav_episode(episode_id="a", start=(2.0, 2.0, 0.0), goal=(3.0, 4.0, 0.0), success_distance=0.5),
           objectnav_episode(episode_id="b", scene="sceneB", start=(-1.0, 3.0, 0.0), heading=math.radians(200),
                             goal=(1.5, 3.0, 0.0), success_distance=0.5)]
    episodes = write_episodes(tmp_path / "eps.jsonl", eps)
    out = tmp_path / "run"
    runner = CliRunner()
    args = ["eval", "--agent", "oracle", "--backend", "habitat-objectnav", "--episodes", str(episodes),
            "--out", str(out)]
    r = runner.invoke(navtune.cli.app, args)  # no --scenes-dir: a clear error
    assert r.exit_code == 2 and "--scenes-dir" in r.output, r.output
    r = runner.invoke(navtune.cli.app, args + ["--scenes-dir", str(scenes)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines() if line.strip()]
    assert sorted(row["episode_id"] for row in rows) == ["a", "b"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["sr"] == 1.0
    task = json.loads((out / "run.json").read_text())["task"]
    assert task["backend"] == "habitat-objectnav" and task["scenes_dir"] == str(scenes)
    assert len(Simulator.instances) == 1 and len(Simulator.instances[0].scenes) == 2  # one sim, reconfigured
