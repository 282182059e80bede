"""DAgger roll-outs through the evaluation harness: the learner drives (with probability beta the expert's
action is executed instead: the DAgger mixture), the expert labels every visited state, and every
roll-out is kept as a navtune episode dataset (``expert_action`` per step, ``action`` = what was executed).

Training on ``target="expert"`` over the aggregate of the expert data and these roll-outs is the standard
cure for compounding errors (Ross et al. 2011): the learner is taught what to do in the states *it*
reaches, not only on the expert's path. Unlike `navtune collect dagger` (one env, one policy call per
step), the harness steps N envs with one batched policy call.
"""
from __future__ import annotations

import os
import zlib
from typing import Any, Sequence

import numpy as np

from navtune.agents.policy import ActionOutput, BasePolicy, Policy, Slot, act_with_expert
from navtune.envs.protocol import Observation
from navtune.evaluation.backends import EvalEpisode, EvalTask
from navtune.mining.miner import MineSummary, mine_failures


class ExpertMixture(BasePolicy):
    """Executes the wrapped policy's action, or with probability `beta` the expert's (the harness passes the
    expert actions to `act` because `needs_expert` is True); the wrapped policy's history is told what was
    executed. Each draw is a function of (seed, instruction, step), so a resumed collection draws the same
    mixture."""

    needs_expert = True

    def __init__(self, policy: Policy, beta: float, seed: int = 0):
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1] (got {beta})")
        self.policy, self.beta, self.seed = policy, float(beta), int(seed)
        self.action_space = policy.action_space
        self.name = f"dagger(beta={self.beta:g}):{policy.name}"

    def reset(self, slots, episode_id: str | None = None) -> None:  # noqa: ANN001
        super().reset(slots, episode_id)
        self.policy.reset(slots, episode_id)

    def release(self, slots) -> None:  # noqa: ANN001
        super().release(slots)
        self.policy.release(slots)

    def set_executed_action(self, slot: Slot, action: str) -> None:
        self.policy.set_executed_action(slot, action)

    def _draw(self, obs: Observation) -> float:
        key = zlib.crc32((obs.instruction or "").encode())
        return float(np.random.default_rng([self.seed, key, int(obs.step or 0)]).random())

    def _act(self, observations: dict[Slot, Observation], expert_actions: dict[Slot, str]) -> dict[Slot, ActionOutput]:
        chosen = act_with_expert(self.policy, observations, expert_actions)
        outs = {}
        for s, obs in observations.items():
            a = chosen[s]
            expert = expert_actions.get(s)
            if expert is not None and expert != a and self._draw(obs) < self.beta:
                self.policy.set_executed_action(s, expert)
                a = expert
            inner = self.policy.last_outputs.get(s)
            outs[s] = ActionOutput(a, True if inner is None else inner.valid, None if inner is None else inner.text)
        return outs


def dagger_rollouts(
    policy: Policy,
    task: EvalTask,
    episodes: Sequence[EvalEpisode],
    out: str | os.PathLike,
    beta: float = 0.0,
    seed: int = 0,
    num_envs: int = 8,
    depth: bool = False,
    progress: bool = False,
    on_row: Any = None,
) -> MineSummary:
    """Roll `policy` (mixed with the expert at `beta`) out on `episodes`; keep every roll-out with the
    expert's label at each visited state in the dataset `out` (resumable: decided episodes are skipped)."""
    driver = ExpertMixture(policy, beta, seed) if beta > 0 else policy
    return mine_failures(driver, task, episodes, out, num_envs=num_envs, keep_unsuccessful=True, keep_all=True,
                         depth=depth, progress=progress, on_row=on_row)
