"""Policy roll-outs with expert relabelling (DAgger): run any `Policy`, store at every visited state the
action executed *and* the expert's action there. The failure miner and later training rounds train on the
expert's labels over the policy's own state distribution (`training.py`, ``target="expert"``).

With ``beta > 0`` the expert's action is executed instead of the policy's with probability beta (the
DAgger mixture); the policy is then told what was executed so its history matches the env's.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from navtune.agents.policy import Policy, act_with_expert
from navtune.data.collectors.common import CollectSummary, plan, record_env_episode
from navtune.data.format import DatasetWriter, EpisodeMeta
from navtune.data.rewards import RewardConfig
from navtune.envs.protocol import NavEnv, Observation

SLOT = 0


class PolicyChooser:
    """The `Chooser` of `record_env_episode` that asks a policy (and mixes in the expert with prob. beta)."""

    def __init__(self, policy: Policy, beta: float = 0.0, seed: int = 0):
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1] (got {beta})")
        self.policy, self.beta = policy, beta
        self.rng = np.random.default_rng(seed)
        self.last: dict[str, Any] = {}

    def __call__(self, obs: Observation, expert: str) -> str:
        chosen = act_with_expert(self.policy, {SLOT: obs}, {SLOT: expert})[SLOT]
        out = self.policy.last_outputs.get(SLOT)
        executed = chosen
        if self.beta > 0 and self.rng.random() < self.beta:
            executed = expert
            if executed != chosen:
                self.policy.set_executed_action(SLOT, executed)
        self.last = {"policy_action": chosen, "valid": None if out is None else bool(out.valid)}
        return executed


def collect_policy(
    env_factory: Callable[[], NavEnv],
    episodes: Sequence[tuple[Any, EpisodeMeta]],
    policy: Policy,
    out: str | os.PathLike,
    info: dict[str, Any],
    beta: float = 0.0,
    seed: int = 0,
    max_steps: int = 500,
    reward: RewardConfig = RewardConfig(),
    rgb: bool = True,
    depth: bool = True,
    progress: bool = True,
) -> CollectSummary:
    """Roll `policy` out on each (env episode, meta) and write the dataset with expert relabels.
    Single process: the policy (a VLM) is the expensive part and keeps its own batching."""
    from tqdm.auto import tqdm

    writer = DatasetWriter(out, {**info, "source": "dagger", "beta": beta, "seed": seed, "policy": policy.name,
                                 "reward": reward.to_dict()})
    summary = CollectSummary(out=str(out))
    left = plan(writer, [m.episode_id for _, m in episodes], summary)
    env = env_factory()
    chooser = PolicyChooser(policy, beta, seed)
    bar = tqdm(total=summary.total, initial=summary.skipped, desc=f"dagger {policy.name}", unit="ep",
               disable=not progress, dynamic_ncols=True)
    try:
        for payload, meta in episodes:
            if meta.episode_id not in left:
                continue
            meta.source = "dagger"
            # a per-episode seed keeps a resumed run's mixture draws identical to an uninterrupted run's
            chooser.rng = np.random.default_rng([seed, meta.order])
            b = writer.builder(meta)
            policy.reset(SLOT, episode_id=meta.episode_id)
            extra: list[dict] = []

            def on_step(t: int, obs: Observation, action: str) -> None:
                extra.append(dict(chooser.last))

            try:
                pending = record_env_episode(env, payload, b, chooser, max_steps=max_steps, rgb=rgb, depth=depth,
                                             on_step=on_step)
            except BaseException:
                b.abort()
                raise
            finally:
                policy.release(SLOT)
            for s, x in zip(pending.record["steps"], extra):
                s["info"].update(x)
            writer.commit(pending)
            summary.written += 1
            summary.steps += pending.record["num_steps"]
            summary.successes += bool(pending.record.get("success"))
            bar.update(1)
    finally:
        bar.close()
        env.close()
    writer.finalize()
    return summary
