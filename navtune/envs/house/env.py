"""`HouseNavEnv`: the NavEnv protocol over a generated house with Habitat-style continuous actions.

move_forward (0.25 m), turn_left / turn_right (30 degrees), stop; steps are deterministic and a blocked move
leaves the pose unchanged and is reported as a collision (MiniWorld's own step and collision test). One env
owns one MiniWorld world (one GL context): switching houses reuses it (`reset` with another scene), which
keeps memory flat — creating and closing envs leaks in MiniWorld.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from navtune.core.actions import CONTINUOUS_ACTIONS, MOVE_FORWARD, STOP_CONT, TURN_LEFT, TURN_RIGHT
from navtune.envs.house.expert import ContinuousExpert
from navtune.envs.house.layout import HouseSpec, seed_from_scene_id
from navtune.envs.house.occupancy import OccupancyGrid, object_goal_distance
from navtune.envs.protocol import Observation, Pose, StepResult, check_expert, check_step
from navtune.tasks.objectnav import ObjectNavEpisode


@dataclass(frozen=True)
class HouseEnvConfig:
    """Sensor and action settings. RGB 320x240 like the seed models; any size works."""

    width: int = 320
    height: int = 240
    vfov_deg: float = 60.0  # vertical; 75.2 degrees horizontal at 4:3
    forward_step: float = 0.25
    turn_deg: float = 30.0
    camera_height: float = 0.9  # Habitat ObjectNav's; small objects stay in view up close
    rgb: bool = True
    depth: bool = True

    @property
    def hfov(self) -> float:
        from navtune.core.geometry import horizontal_fov

        return horizontal_fov(math.radians(self.vfov_deg), self.width / self.height)


_MW_ACTION = {MOVE_FORWARD: "move_forward", TURN_LEFT: "turn_left", TURN_RIGHT: "turn_right"}


class HouseNavEnv:
    """ObjectNav in generated houses. `reset(episode)` takes an `ObjectNavEpisode` (or its dict form)."""

    action_space: tuple[str, ...] = CONTINUOUS_ACTIONS

    def __init__(self, config: HouseEnvConfig | None = None, seed: int = 0):
        from navtune.envs.house.world import HouseWorld

        self.config = config or HouseEnvConfig()
        c = self.config
        self.world = HouseWorld(
            seed=seed, width=c.width, height=c.height, vfov_deg=c.vfov_deg, forward_step=c.forward_step,
            turn_deg=c.turn_deg, cam_height=c.camera_height, depth=c.depth,
        )
        self.world.render_enabled = c.rgb or c.depth
        self._grids: dict[int, OccupancyGrid] = {}
        self._experts: dict[tuple, ContinuousExpert] = {}
        self.episode: ObjectNavEpisode | None = None

    # ------------------------------------------------------------------ house
    @property
    def house(self) -> HouseSpec:
        return self.world.house

    @property
    def grid(self) -> OccupancyGrid:
        seed = self.house.seed
        if seed not in self._grids:
            # keep the last two houses' grids and experts: bounded memory, cheap alternation between two
            for old in list(self._grids)[:-1]:
                del self._grids[old]
            self._experts = {k: v for k, v in self._experts.items() if k[0] in self._grids}
            self._grids[seed] = self.house.grid()
        return self._grids[seed]

    def load_house(self, seed: int) -> HouseSpec:
        return self.world.load(seed)

    # ------------------------------------------------------------------ NavEnv
    def reset(self, episode: ObjectNavEpisode | Mapping[str, Any]) -> Observation:
        if not isinstance(episode, ObjectNavEpisode):
            episode = ObjectNavEpisode.from_dict(dict(episode), source="reset(episode)")
        self.load_house(seed_from_scene_id(episode.scene_id))
        self.episode = episode
        from navtune.envs.house.episodes.objectnav import goal_objects

        self.goals = goal_objects(self.house, episode)
        key = (self.house.seed, episode.object_category, tuple(g.object_id for g in self.goals), episode.success_distance)
        if key not in self._experts:
            expert = ContinuousExpert(
                self.grid, self.goals, episode.success_distance, self.config.forward_step,
                math.radians(self.config.turn_deg),
            )
            region = self.grid.distance_field(self.grid.goal_mask(self.goals, episode.success_distance))
            self._experts[key] = (expert, region)
        self.expert, self._region_field = self._experts[key]
        x, y, _ = episode.start_position
        if self.grid.collides(x, y):
            raise ValueError(f"episode {episode.episode_id}: start position ({x}, {y}) collides in {episode.scene_id}")
        self.world.set_pose(x, y, episode.start_heading)
        self.steps = 0
        self.distance_traveled = 0.0
        self.done = False
        self.collisions = 0
        self.actions: list[str] = []
        self.positions: list[tuple[float, float, float]] = [(x, y, 0.0)]
        self.geodesics: list[float] = []
        self.poses: list[Pose] = []
        self._plan: list[str] = []
        self._plan_pose: tuple[float, float, float] | None = None
        rgb = self.world.render_obs() if self.world.render_enabled else None
        obs = self._observe(rgb)
        return obs

    def _observe(self, rgb: np.ndarray | None) -> Observation:
        x, y, z, h = self.world.pose()
        pose = Pose(x, y, z, h)
        euclid = object_goal_distance(self.house, x, y, self.goals)
        geo = self.grid.lookup(self._region_field, x, y)
        # geodesic distance to the success region: 0 exactly when the success test passes
        geo = 0.0 if euclid <= self.episode.success_distance else max(geo, 0.01)
        self.geodesics.append(geo)
        self.poses.append(pose)
        room = self.house.room_at(x, y)
        return Observation(
            rgb=rgb if self.config.rgb else None,
            depth=self.world.last_depth if self.config.depth else None,
            pose=pose,
            allowed_actions=CONTINUOUS_ACTIONS,
            instruction=self.episode.instruction,
            step=self.steps,
            distance_traveled=self.distance_traveled,
            info={
                "episode_id": self.episode.episode_id,
                "scene_id": self.episode.scene_id,
                "distance_to_goal": geo,
                "euclidean_to_goal": euclid,
                "room": self.house.room_name(room) if room is not None else "doorway",
                "collisions": self.collisions,
            },
        )

    def step(self, action: str) -> StepResult:
        check_step(self, action, CONTINUOUS_ACTIONS)
        self.steps += 1
        self.actions.append(action)
        collided = False
        rgb = None
        if action == STOP_CONT:
            if self.world.render_enabled:
                rgb = self.world.render_obs()
        else:
            before = self.world.agent.pos.copy()
            rgb, _, _, _, _ = self.world.step(self.world.actions[_MW_ACTION[action]])
            if action == MOVE_FORWARD:
                moved = float(np.linalg.norm(self.world.agent.pos - before))
                collided = moved < 1e-9
                self.collisions += int(collided)
                self.distance_traveled += moved
        x, y, _, _ = self.world.pose()
        self.positions.append((x, y, 0.0))
        stopped = action == STOP_CONT
        self.done = stopped or self.steps >= self.episode.max_steps
        obs = self._observe(rgb)
        obs.info["collided"] = collided
        success = stopped and obs.info["euclidean_to_goal"] <= self.episode.success_distance
        info = {"stopped": stopped, "truncated": self.done and not stopped, "success": bool(success)}
        if self.done:
            info["metrics"] = self.metrics()
        return StepResult(obs, self.done, collided, info)

    def expert_action(self) -> str:
        """The A* expert's action from the current state (its plan is reused while the agent follows it)."""
        check_expert(self)
        x, y, _, h = self.world.pose()
        if not (self._plan and self._plan_pose is not None and _close(self._plan_pose, (x, y, h))):
            plan = self.expert.plan(x, y, h)
            self._plan = plan if plan else [STOP_CONT]
        action = self._plan.pop(0)
        self._plan_pose = _predict(self.expert, (x, y, h), action)
        return action

    def metrics(self) -> dict[str, float]:
        """ObjectNav metrics of the episode so far (navtune.metrics.objectnav). Distances are geodesic to the
        success region (the positions within `success_distance` of a goal instance, no wall between; like
        Habitat's view points), so success is "stopped with distance 0" and SPL divides by the episode's
        `geodesic_distance`."""
        from navtune.metrics.objectnav import objectnav_episode_metrics

        stopped = bool(self.actions) and self.actions[-1] == STOP_CONT
        m = objectnav_episode_metrics(self.positions, self.geodesics, stopped, 1e-6, steps=self.steps)
        m["collisions"] = float(self.collisions)
        return m

    def render_topdown(self, size: int = 480, **kwargs) -> np.ndarray:
        """Top-down map of the current house with this episode's trajectory and goals."""
        from navtune.envs.house.topdown import render_topdown

        return render_topdown(
            self.house, size=size, trajectory=[(p[0], p[1]) for p in self.positions],
            agent=self.poses[-1] if self.poses else None, goals=getattr(self, "goals", None), **kwargs
        )

    def close(self) -> None:
        if getattr(self, "world", None) is not None:
            self.world.close()
            self.world = None  # type: ignore[assignment]


def _close(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    return abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6 and abs(math.remainder(a[2] - b[2], 2 * math.pi)) < 1e-6


def _predict(expert: ContinuousExpert, pose: tuple[float, float, float], action: str) -> tuple[float, float, float]:
    from navtune.envs.house.expert import simulate

    x, y, h = simulate(expert, pose[0], pose[1], pose[2], [action])[-1]
    return (x, y, h)
