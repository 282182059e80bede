"""Roll-outs for online RL through the evaluation harness's env pool: N envs, one batched forward per step
(the `SamplingVLMPolicy`'s KV cache), each roll-out recorded with its sampled actions, their behaviour
log-probs, the frames' vision features and navtune's step rewards (`navtune.data.rewards`, the reward the
offline data carries: geodesic progress, success bonus on a stop inside the radius, collision, slack).

A roll-out depends only on its job (episode, group member, iteration: the sampling generator is seeded by
them), never on which env slot or batch ran it; the jobs' order decides the batches, so a rerun of an
iteration (a resumed run) replays it exactly.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from navtune.agents.vlm import ImageFeature
from navtune.core.actions import STOP_ACTIONS
from navtune.core.errors import NavtuneError
from navtune.data.collectors.common import geodesic_of
from navtune.data.rewards import RewardConfig, discounted_returns, step_rewards
from navtune.envs.protocol import Observation
from navtune.evaluation.backends import EvalEpisode, EvalTask, dataset_meta
from navtune.evaluation.pool import make_pool
from navtune.evaluation.registry import EpisodeTrace
from navtune.rl.policy import SampledStep, SamplingVLMPolicy


class RolloutError(NavtuneError):
    """A backend that cannot be trained on with RL (e.g. no distance to the goal for the reward)."""


@dataclass(frozen=True)
class RolloutJob:
    """One roll-out to run: `index` is its place in the iteration (the output order), `group` the episode start
    it belongs to, `key` the id that seeds its action sampling."""

    index: int
    episode: EvalEpisode
    group: int
    member: int
    key: str


@dataclass
class Rollout:
    """One finished roll-out."""

    job: RolloutJob
    steps: list[SampledStep]
    features: list[ImageFeature]  # one per step, the frame the step saw
    distances: list[float]  # T + 1 geodesic distances to the goal (before each action, after the last)
    collided: list[bool]
    rewards: np.ndarray  # (T,) navtune.data.rewards.step_rewards
    stopped: bool
    metrics: dict[str, float]  # the task's measures (e.g. sr, spl), as the evaluation computes them

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def success(self) -> bool:
        return bool(self.metrics.get("sr", 0.0))

    def returns(self, gamma: float) -> np.ndarray:
        """G_t, discounted return-to-go of each step."""
        return discounted_returns(self.rewards, gamma)


@dataclass
class RolloutBatch:
    """An iteration's roll-outs (in job order) and how long they took."""

    rollouts: list[Rollout]
    seconds: float
    env_steps: int = field(init=False)

    def __post_init__(self) -> None:
        self.env_steps = sum(r.num_steps for r in self.rollouts)


@dataclass
class _Running:
    job: RolloutJob
    obs: Observation
    distances: list[float] = field(default_factory=list)
    collided: list[bool] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    positions: list[tuple[float, float, float]] = field(default_factory=list)
    viewpoints: list[str | None] = field(default_factory=list)

    def see(self, obs: Observation) -> None:
        d = geodesic_of(obs)
        if d is None or not np.isfinite(d):
            raise RolloutError(f"episode {self.job.episode.episode_id}: the env reports no finite distance to the goal "
                               "(obs.info['distance_to_goal']); RL rewards need it")
        self.obs = obs
        self.distances.append(float(d))
        p = obs.pose
        self.positions.append((float(p.x), float(p.y), float(p.z)))
        self.viewpoints.append(obs.info.get("viewpoint"))


class RolloutCollector:
    """Runs roll-out jobs on `num_envs` envs of `task` with the sampling policy (see the module docstring)."""

    def __init__(self, policy: SamplingVLMPolicy, task: EvalTask, num_envs: int, processes: bool = False,
                 reward: RewardConfig = RewardConfig()):
        self.policy, self.task, self.reward = policy, task, reward
        self.pool = make_pool(task, max(1, num_envs), processes)
        self._radius: dict[str, float] = {}

    def close(self) -> None:
        self.pool.close()

    def success_radius(self, ep: EvalEpisode) -> float:
        """The radius of the reward's success bonus: the task's setting, else what the offline data of this
        episode would carry (its `EpisodeMeta`)."""
        if self.task.success_radius is not None:
            return float(self.task.success_radius)
        r = self._radius.get(ep.episode_id)
        if r is None:
            r = self._radius[ep.episode_id] = float(dataset_meta(self.task, ep).success_radius)
        return r

    def collect(self, jobs: list[RolloutJob]) -> RolloutBatch:
        t0 = time.perf_counter()
        todo = deque(jobs)
        n_slots = min(len(self.pool), len(jobs))
        running: dict[int, _Running] = {}
        scene: dict[int, str] = {}
        done: dict[int, Rollout] = {}

        def assign(slots: list[int]) -> None:
            """Next jobs for free slots, preferring one in the scene the slot's env holds (a scene load costs
            tens of ms; the outcome does not depend on the slot)."""
            calls = {}
            for s in slots:
                if not todo:
                    continue
                window = range(min(len(todo), 4 * n_slots))
                k = next((i for i in window if todo[i].episode.scene == scene.get(s)), 0)
                job = todo[k]
                del todo[k]
                scene[s] = job.episode.scene
                calls[s] = ("reset", (job.episode, False))
                running[s] = _Running(job, None)  # type: ignore[arg-type]
            for s, (obs, _) in self.pool.call_many(calls).items():
                running[s].see(obs)
                self.policy.reset(s, episode_id=running[s].job.key)

        assign(list(range(n_slots)))
        while running:
            chosen = self.policy.act({s: r.obs for s, r in running.items()})
            calls = {s: ("step", (chosen[s], False)) for s in running}
            finished = []
            for s, (res, _) in self.pool.call_many(calls).items():
                r = running[s]
                r.actions.append(chosen[s])
                r.collided.append(bool(res.collided))
                r.see(res.observation)
                if res.done:
                    finished.append(s)
            if finished:
                traces = {s: ("metrics", (self._trace(running[s]),)) for s in finished}
                for s, metrics in self.pool.call_many(traces).items():
                    r = running.pop(s)
                    done[r.job.index] = self._finish(s, r, metrics)
                    self.policy.release(s)
                assign(finished)
        return RolloutBatch([done[j.index] for j in jobs], time.perf_counter() - t0)

    @staticmethod
    def _trace(r: _Running) -> EpisodeTrace:
        return EpisodeTrace(tuple(r.actions), tuple(r.collided), tuple(r.positions), tuple(r.viewpoints),
                            tuple(r.distances), bool(r.actions) and r.actions[-1] in STOP_ACTIONS)

    def _finish(self, slot: int, r: _Running, metrics: dict[str, float]) -> Rollout:
        steps = list(self.policy.steps[slot])
        features = self.policy.features(slot)
        if len(steps) != len(r.actions) or len(features) != len(steps):
            raise RuntimeError(f"slot {slot}: {len(steps)} sampled steps, {len(features)} frames for "
                               f"{len(r.actions)} env steps")
        rewards = step_rewards(r.distances, r.actions, r.collided, self.success_radius(r.job.episode), self.reward)
        stopped = bool(r.actions) and r.actions[-1] in STOP_ACTIONS
        return Rollout(r.job, steps, features, r.distances, r.collided, rewards, stopped,
                       {k: float(v) for k, v in metrics.items() if v is not None})
