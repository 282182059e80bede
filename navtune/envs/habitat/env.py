"""`HabitatNavEnv`: navtune's NavEnv protocol on Habitat-Sim (optional extra, imported lazily).

Continuous actions move_forward (0.25 m) / turn_left / turn_right (30°) / stop, RGB-D camera, geodesic
distance to the goal from habitat's pathfinder (`MultiGoalShortestPath` over the goal view points for
ObjectNav, or the goal position for VLN-CE), collisions from `Simulator.previous_step_collided`. Poses and
episodes are in navtune's frame (z up, heading 0 along +y); `coords.py` holds the one mapping.
Episodes: `ObjectNavEpisode` (e.g. from `navtune.tasks.habitat_datasets.load_objectnav_split`) or
`VLNCEEpisode`; their `scene_id` is habitat's scene path relative to `HabitatConfig.scenes_dir`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import numpy as np

from navtune.core.actions import CONTINUOUS_ACTIONS, MOVE_FORWARD, STOP_CONT, TURN_LEFT, TURN_RIGHT
from navtune.core.geometry import angle_diff, heading_to
from navtune.envs.habitat.coords import habitat_to_navtune, navtune_to_habitat_position, rotation_from_heading
from navtune.envs.protocol import Observation, Pose, StepResult, check_expert, check_step

INSTALL_HINT = (
    "habitat-sim is not installed. Install it with conda (it is not on PyPI): "
    "`conda install habitat-sim headless -c conda-forge -c aihabitat` "
    "(https://github.com/facebookresearch/habitat-sim#installation), then run navtune from that environment."
)


class HabitatSimUnavailable(ImportError):
    """`habitat_sim` cannot be imported."""


def import_habitat_sim() -> ModuleType:
    """The `habitat_sim` module, or a clear error saying how to install it."""
    try:
        import habitat_sim  # type: ignore[import-not-found]
    except ImportError as e:
        raise HabitatSimUnavailable(f"{INSTALL_HINT} ({e})") from e
    return habitat_sim


@dataclass
class HabitatConfig:
    """Sensors and agent body; defaults are habitat-lab's HM3D ObjectNav challenge settings, with
    navtune's 30° turns. For VLN-CE use width=height=224, hfov=90, sensor_height=1.25, agent_radius=0.1."""

    scenes_dir: str = "data/scene_datasets"  # folder that the episodes' scene_id paths are relative to
    scene_dataset_config: str | None = None  # e.g. hm3d/hm3d_annotated_basis.scene_dataset_config.json
    width: int = 640
    height: int = 480
    hfov: float = 79.0  # degrees
    sensor_height: float = 0.88
    agent_height: float = 0.88
    agent_radius: float = 0.18
    forward_step: float = 0.25
    turn_angle: float = 30.0  # degrees
    rgb: bool = True
    depth: bool = True
    gpu_device_id: int = 0
    max_steps: int | None = None  # None: the episode's own budget
    success_distance: float | None = None  # None: the episode's own
    allow_sliding: bool = True


def _planar(a: Sequence[float], b: Sequence[float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


class HabitatNavEnv:
    """NavEnv over Habitat-Sim. One simulator, reconfigured when an episode's scene changes."""

    action_space: tuple[str, ...] = CONTINUOUS_ACTIONS

    def __init__(self, config: HabitatConfig | None = None, habitat_sim: ModuleType | None = None):
        self.config = config or HabitatConfig()
        self.hs = habitat_sim if habitat_sim is not None else import_habitat_sim()
        self.sim: Any = None
        self._scene: str | None = None
        self.episode: Any = None

    # ------------------------------------------------------------------ simulator setup
    def scene_path(self, scene_id: str) -> str:
        p = Path(scene_id)
        if not p.is_absolute():
            p = Path(self.config.scenes_dir) / p
        if not p.is_file():
            raise FileNotFoundError(f"{p}: scene file not found (episode scene_id {scene_id!r}, "
                                    f"scenes_dir {self.config.scenes_dir!r})")
        return os.fspath(p)

    def _sensor(self, uuid: str, kind: Any) -> Any:
        hs, c = self.hs, self.config
        spec = hs.CameraSensorSpec()
        spec.uuid = uuid
        spec.sensor_type = kind
        spec.sensor_subtype = hs.SensorSubType.PINHOLE
        spec.resolution = [c.height, c.width]
        spec.position = [0.0, c.sensor_height, 0.0]
        try:
            spec.hfov = float(c.hfov)
        except TypeError:  # builds that want magnum.Deg
            import magnum as mn  # type: ignore[import-not-found]

            spec.hfov = mn.Deg(float(c.hfov))
        return spec

    def _configuration(self, scene: str) -> Any:
        hs, c = self.hs, self.config
        sim_cfg = hs.SimulatorConfiguration()
        sim_cfg.scene_id = scene
        if c.scene_dataset_config:
            cfg_path = Path(c.scene_dataset_config)
            if not cfg_path.is_absolute():
                cfg_path = Path(c.scenes_dir) / cfg_path
            sim_cfg.scene_dataset_config_file = os.fspath(cfg_path)
        sim_cfg.gpu_device_id = c.gpu_device_id
        sim_cfg.enable_physics = False
        sim_cfg.allow_sliding = c.allow_sliding
        sensors = []
        if c.rgb:
            sensors.append(self._sensor("rgb", hs.SensorType.COLOR))
        if c.depth:
            sensors.append(self._sensor("depth", hs.SensorType.DEPTH))
        agent = hs.agent.AgentConfiguration()
        agent.height = c.agent_height
        agent.radius = c.agent_radius
        agent.sensor_specifications = sensors
        act, spec = hs.agent.ActionSpec, hs.agent.ActuationSpec
        agent.action_space = {
            MOVE_FORWARD: act("move_forward", spec(amount=c.forward_step)),
            TURN_LEFT: act("turn_left", spec(amount=c.turn_angle)),
            TURN_RIGHT: act("turn_right", spec(amount=c.turn_angle)),
        }
        return hs.Configuration(sim_cfg, [agent])

    def _ensure_scene(self, scene: str) -> None:
        if self.sim is not None and scene == self._scene:
            return
        cfg = self._configuration(scene)
        if self.sim is None:
            self.sim = self.hs.Simulator(cfg)
        else:
            self.sim.reconfigure(cfg)
        self._scene = scene
        self.agent = self.sim.initialize_agent(0)

    # ------------------------------------------------------------------ geometry
    def _agent_pose(self) -> tuple[Pose, np.ndarray]:
        state = self.agent.get_state()
        pos = np.asarray(state.position, dtype=np.float64)
        return habitat_to_navtune(pos, state.rotation), pos

    def _goal_setup(self, episode: Any) -> tuple[list[tuple[tuple[float, float, float], float]], float]:
        """Goal points (habitat frame) with the radius to subtract, and the success distance."""
        success = self.config.success_distance
        if hasattr(episode, "goal_position"):  # VLNCEEpisode: success within the goal radius (3 m)
            goals = [(navtune_to_habitat_position(episode.goal_position), 0.0)]
            return goals, success if success is not None else float(episode.success_distance)
        views = (getattr(episode, "info", None) or {}).get("view_points") or []
        if views:  # habitat ObjectNav: distance to the nearest view point
            goals = [(navtune_to_habitat_position(v), 0.0) for v in views]
        else:
            goals = [(navtune_to_habitat_position(g.position), float(g.radius)) for g in episode.goals]
        return goals, success if success is not None else float(episode.success_distance)

    def _path(self, start: np.ndarray, ends: list[Sequence[float]]) -> Any:
        path = self.hs.MultiGoalShortestPath()
        path.requested_start = np.asarray(start, dtype=np.float32)
        path.requested_ends = [np.asarray(e, dtype=np.float32) for e in ends]
        found = self.sim.pathfinder.find_path(path)
        return path if found else None

    def distance_to_goal(self, position: np.ndarray | None = None) -> float:
        """Geodesic distance (metres) from the agent (or a habitat-frame position) to the nearest goal."""
        pos = self._agent_pose()[1] if position is None else np.asarray(position)
        if all(r == 0.0 for _, r in self._goals):
            path = self._path(pos, [g for g, _ in self._goals])
            return float(path.geodesic_distance) if path is not None else math.inf
        best = math.inf
        for g, r in self._goals:
            path = self._path(pos, [g])
            if path is not None:
                best = min(best, max(0.0, float(path.geodesic_distance) - r))
        return best

    # ------------------------------------------------------------------ NavEnv
    def reset(self, episode: Any) -> Observation:
        self._ensure_scene(self.scene_path(episode.scene_id))
        self.episode = episode
        self._goals, self.success_distance = self._goal_setup(episode)
        state = self.hs.AgentState()
        state.position = np.asarray(navtune_to_habitat_position(episode.start_position), dtype=np.float32)
        state.rotation = np.asarray(rotation_from_heading(episode.start_heading), dtype=np.float32)
        self.agent.set_state(state)
        self.max_steps = self.config.max_steps or int(getattr(episode, "max_steps", 500))
        self.steps = 0
        self.distance_traveled = 0.0
        self.done = False
        self._obs = self.sim.get_sensor_observations()
        return self._observe()

    def _observe(self) -> Observation:
        pose, _ = self._agent_pose()
        rgb = depth = None
        if "rgb" in self._obs:
            rgb = np.ascontiguousarray(np.asarray(self._obs["rgb"])[..., :3], dtype=np.uint8)
        if "depth" in self._obs:
            d = np.asarray(self._obs["depth"], dtype=np.float32)
            depth = d[..., 0] if d.ndim == 3 else d
        dist = self.distance_to_goal()
        ep = self.episode
        return Observation(
            rgb=rgb,
            depth=depth,
            pose=pose,
            allowed_actions=CONTINUOUS_ACTIONS,
            instruction=ep.instruction,
            step=self.steps,
            distance_traveled=self.distance_traveled,
            info={"episode_id": ep.episode_id, "scene_id": ep.scene_id, "geodesic_distance": dist,
                  "distance_to_goal": dist},
        )

    def step(self, action: str) -> StepResult:
        check_step(self, action, CONTINUOUS_ACTIONS)
        self.steps += 1
        collided = False
        if action != STOP_CONT:
            before = self._agent_pose()[0]
            self._obs = self.sim.step(action)
            collided = bool(getattr(self.sim, "previous_step_collided", False))
            after = self._agent_pose()[0]
            self.distance_traveled += _planar(before.position(), after.position())
        stopped = action == STOP_CONT
        self.done = stopped or self.steps >= self.max_steps
        obs = self._observe()
        info: dict[str, Any] = {"stopped": stopped, "distance_to_goal": obs.info["distance_to_goal"]}
        if self.done:
            info["success"] = stopped and obs.info["distance_to_goal"] < self.success_distance
        return StepResult(obs, self.done, collided, info)

    def expert_action(self) -> str:
        """Follow habitat's shortest path: stop inside the success distance, else turn toward the next path
        point when it is more than half a turn away, else move forward."""
        check_expert(self)
        pose, pos = self._agent_pose()
        if self.distance_to_goal(pos) < self.success_distance:
            return STOP_CONT
        path = self._path(pos, [g for g, _ in self._goals])
        if path is None or not len(path.points):
            return STOP_CONT  # unreachable: nothing better to do
        here = pose.position()
        target = None
        for p in path.points:
            q = habitat_to_navtune(p).position()
            if _planar(q, here) > 0.1:
                target = q
                break
        if target is None:
            return MOVE_FORWARD
        diff = angle_diff(heading_to(target[0] - here[0], target[1] - here[1]), pose.heading)
        half_turn = math.radians(self.config.turn_angle) / 2.0
        if abs(diff) > half_turn + 1e-6:
            return TURN_RIGHT if diff > 0 else TURN_LEFT
        return MOVE_FORWARD

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()
            self.sim = None
            self._scene = None


def make_habitat_env(**kwargs: Any) -> HabitatNavEnv:
    """`HabitatNavEnv(HabitatConfig(**kwargs))` (the evaluation harness's factory hook)."""
    return HabitatNavEnv(HabitatConfig(**kwargs))
