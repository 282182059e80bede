"""Failure miner: run a policy for real (the simulator steps), keep the episodes where it fails, with the
expert's corrective action at every state it visited, as a navtune episode dataset (DAgger relabelling).

The roll-outs go through the evaluation harness (N envs, one batched policy call per step, the expert
queried at every visited state); a `DatasetRecorder` streams each episode's frames into the data issue's
`EpisodeBuilder` (temp folder) and commits it with `DatasetWriter` only when the episode shows a failure
mode (stuck / oscillation / collision / early_stop / timeout, `navtune.metrics.failures`) or, optionally,
did not succeed. The
episode's result row is appended to `<out>/mine.jsonl` after the commit, so a rerun skips every episode
that was decided, and an episode committed just before a crash is not written twice.

Collisions come from the env's own report of each step (a blocked move leaves the pose unchanged), so a
policy that moves freely is never flagged — unlike the seed-2 reference, whose simulator never stepped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from navtune.agents.policy import Policy
from navtune.data.format import DatasetWriter, EpisodeBuilder, EpisodeMeta
from navtune.envs.protocol import Observation, StepResult
from navtune.data.collectors.common import geodesic_of, observed_step  # the collectors' own step record
from navtune.evaluation.backends import EvalEpisode, EvalTask, dataset_meta
from navtune.evaluation.harness import EvalConfig, evaluate
from navtune.metrics.failures import FAILURE_MODES, FailureConfig

MINE_LOG = "mine.jsonl"


def episode_meta(task: EvalTask, ep: EvalEpisode, source: str = "dagger") -> EpisodeMeta:
    """Dataset metadata of an evaluation episode, as the data collectors write it."""
    return dataset_meta(task, ep, source)


@dataclass
class _Handle:
    builder: EpisodeBuilder
    last_obs: Observation | None = None


class DatasetRecorder:
    """Harness recorder writing the policy's roll-outs with expert labels; keeps only failed episodes."""

    def __init__(self, writer: DatasetWriter, task: EvalTask, keep_unsuccessful: bool = False,
                 rgb: bool = True, depth: bool = True, keep_all: bool = False):
        self.writer, self.task = writer, task
        self.keep_unsuccessful = keep_unsuccessful
        self.keep_all = keep_all  # DAgger: every roll-out is data, successes too
        self.rgb, self.depth = rgb, depth
        self.kept: list[str] = []

    def start(self, episode: EvalEpisode) -> _Handle | None:
        if self.writer.has(episode.episode_id):
            return None
        return _Handle(self.writer.builder(episode_meta(self.task, episode)))

    def step(self, handle: _Handle | None, obs: Observation, action: str, expert: str | None, result: StepResult) -> None:
        if handle is None:
            return
        handle.builder.add(observed_step(obs, action, result.collided, expert, self.rgb, self.depth))
        handle.last_obs = result.observation

    def finish(self, handle: _Handle | None, episode: EvalEpisode, final_obs: Observation, row: dict) -> None:
        if handle is None:
            return
        failed = bool(row["failures"]["failed"]) or (self.keep_unsuccessful and not row["metrics"].get("sr"))
        row["mined"] = failed or self.keep_all
        if not row["mined"]:
            handle.builder.abort()
            return
        modes = [m for m in FAILURE_MODES if row["failures"].get(m)]
        pending = handle.builder.finish(final_pose=final_obs.pose, final_geodesic_distance=geodesic_of(final_obs),
                                        info={"failure_modes": modes, "failures": row["failures"],
                                              "policy": row["policy"], "sr": row["metrics"].get("sr")})
        self.writer.commit(pending)
        self.kept.append(episode.episode_id)


@dataclass
class MineSummary:
    out: str
    episodes: int = 0  # decided in this call
    skipped: int = 0  # decided by an earlier call
    kept: int = 0  # failure episodes written in this call
    total_kept: int = 0  # failure episodes in the dataset
    modes: dict[str, int] = field(default_factory=dict)  # this call's episodes per failure mode

    def line(self) -> str:
        modes = ", ".join(f"{k} {v}" for k, v in self.modes.items())
        return (f"{self.out}: {self.episodes} episodes run ({self.skipped} done before), {self.kept} failures kept "
                f"({modes}); dataset holds {self.total_kept} failure episodes")


def mine_failures(
    policy: Policy,
    task: EvalTask,
    episodes: Sequence[EvalEpisode],
    out: str | os.PathLike,
    num_envs: int = 1,
    processes: bool = False,
    failure: FailureConfig = FailureConfig(),
    keep_unsuccessful: bool = False,
    depth: bool = True,
    reward: dict | None = None,
    progress: bool = True,
    on_row: Any = None,
    keep_all: bool = False,
) -> MineSummary:
    """Roll `policy` out on `episodes` and write its failures (with expert labels) to the dataset `out`
    (`keep_all`: every roll-out, as DAgger aggregates)."""
    from navtune.core.io import read_jsonl

    out = Path(out)
    info = {"task": task.task, "action_space": task.action_space, "source": "dagger", "miner": True,
            "policy": policy.name, "eval_task": task.to_dict(),
            "failure": failure.to_dict(), "keep_unsuccessful": keep_unsuccessful, "keep_all": keep_all}
    if reward is not None:
        info["reward"] = reward
    writer = DatasetWriter(out, info)
    log = out / MINE_LOG
    done = {r["episode_id"] for r in read_jsonl(log)}
    summary = MineSummary(out=str(out), skipped=sum(e.episode_id in done for e in episodes))
    recorder = DatasetRecorder(writer, task, keep_unsuccessful, depth=depth, keep_all=keep_all)
    cfg = EvalConfig(num_envs=num_envs, processes=processes, epa=False, expert_labels=True, failure=failure,
                     progress=progress)
    rows = evaluate(policy, task, episodes, log, cfg, recorders=[recorder], on_row=on_row)
    summary.episodes = len(rows)
    summary.kept = len(recorder.kept)
    summary.modes = {m: sum(bool(r["failures"].get(m)) for r in rows) for m in FAILURE_MODES}
    summary.total_kept = writer.finalize()
    return summary
