"""A `gymnasium.Env` over `HouseNavEnv` (ObjectNav in generated houses).

``reset(seed=s)`` plays an episode generated from seed s (house s, the generator's first episode), or
``options={"episode": ObjectNavEpisode | dict}`` plays a given one. Actions are indices into
`navtune.core.actions.CONTINUOUS_ACTIONS`; the reward is Habitat's ObjectNav shaping (decrease in
geodesic distance to the success region, +2.5 on success, -0.01 per step).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from navtune.core.actions import CONTINUOUS_ACTIONS
from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv
from navtune.envs.protocol import Observation

ENV_ID = "navtune/HouseObjectNav-v0"
SUCCESS_REWARD = 2.5
SLACK_REWARD = -0.01


class HouseGymEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: HouseEnvConfig | None = None, render_mode: str | None = None, episodes_per_house: int = 1):
        self.config = config or HouseEnvConfig()
        c = self.config
        self.render_mode = render_mode
        self.episodes_per_house = episodes_per_house
        self.action_space = spaces.Discrete(len(CONTINUOUS_ACTIONS))
        obs: dict[str, spaces.Space] = {"pose": spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)}
        if c.rgb:
            obs["rgb"] = spaces.Box(0, 255, shape=(c.height, c.width, 3), dtype=np.uint8)
        if c.depth:
            obs["depth"] = spaces.Box(0.0, np.inf, shape=(c.height, c.width), dtype=np.float32)
        self.observation_space = spaces.Dict(obs)
        self._env: HouseNavEnv | None = None  # built on first reset: GL starts in the process that steps
        self._last: Observation | None = None

    @property
    def nav_env(self) -> HouseNavEnv:
        if self._env is None:
            self._env = HouseNavEnv(self.config)
        return self._env

    def _obs(self, o: Observation) -> dict[str, np.ndarray]:
        out = {"pose": np.array([o.pose.x, o.pose.y, o.pose.z, o.pose.heading], dtype=np.float32)}
        if self.config.rgb:
            out["rgb"] = o.rgb
        if self.config.depth:
            out["depth"] = o.depth
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        episode = (options or {}).get("episode")
        if episode is None:
            from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

            s = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
            episode = next(iter(generate_objectnav_episodes([s], per_house=self.episodes_per_house)))
        o = self.nav_env.reset(episode)
        self._last = o
        return self._obs(o), dict(o.info, instruction=o.instruction)

    def step(self, action):
        name = CONTINUOUS_ACTIONS[int(action)]
        before = self._last.info["distance_to_goal"] if self._last is not None else 0.0
        r = self.nav_env.step(name)
        o = r.observation
        self._last = o
        reward = float(before - o.info["distance_to_goal"]) + SLACK_REWARD
        if r.info["success"]:
            reward += SUCCESS_REWARD
        info = dict(o.info, **r.info)
        terminated = bool(r.info["stopped"])
        truncated = bool(r.info["truncated"])
        return self._obs(o), reward, terminated, truncated, info

    def expert_action(self) -> int:
        return CONTINUOUS_ACTIONS.index(self.nav_env.expert_action())

    def render(self):
        if self._last is None:
            return None
        if self.render_mode == "rgb_array":
            return self._last.rgb
        return None

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="navtune.envs.house.gym_env:HouseGymEnv")
