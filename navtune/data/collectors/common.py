"""What every collector shares: the env step loop that records an episode, and the parallel runner that
builds episodes in worker processes while the main process alone commits them (with a progress bar)."""
from __future__ import annotations

import functools
import multiprocessing as mp
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from navtune.data.format import DatasetWriter, EpisodeBuilder, PendingEpisode, StepData
from navtune.envs.protocol import NavEnv, Observation

#: Keys collectors read from `Observation.info` (what the env backends write).
GEODESIC_KEYS = ("geodesic_distance", "distance_to_goal")


def geodesic_of(obs: Observation) -> float | None:
    """The geodesic distance to the goal an env reports in `obs.info` (None when it does not)."""
    for k in GEODESIC_KEYS:
        v = obs.info.get(k)
        if v is not None:
            return float(v)
    return None


def observed_step(obs: Observation, action: str, collided: bool, expert_action: str | None, rgb: bool = True,
                  depth: bool = True) -> StepData:
    """The dataset record of acting `action` from observation `obs` (the state before the action), as every
    env-driven collector and the failure miner write it."""
    info: dict[str, Any] = {"distance_traveled": float(obs.distance_traveled)}
    for k in ("viewpoint", "heading_index"):
        if k in obs.info:
            info[k] = obs.info[k]
    return StepData(action=action, pose=obs.pose, rgb=obs.rgb if rgb else None, depth=obs.depth if depth else None,
                    geodesic_distance=geodesic_of(obs), collision=bool(collided),
                    allowed_actions=tuple(obs.allowed_actions), expert_action=expert_action, info=info)


Chooser = Callable[[Observation, str], str]  # (observation, expert action) -> action to execute


def record_env_episode(
    env: NavEnv,
    episode: Any,
    builder: EpisodeBuilder,
    choose: Chooser | None = None,
    max_steps: int = 500,
    rgb: bool = True,
    depth: bool = True,
    on_step: Callable[[int, Observation, str], None] | None = None,
) -> PendingEpisode:
    """Run one episode in `env`, recording each observation, the executed action and the expert's action
    at that state. `choose` picks the executed action (default: the expert's)."""
    obs = env.reset(episode)
    for t in range(max_steps):
        expert = env.expert_action()
        action = expert if choose is None else choose(obs, expert)
        res = env.step(action)
        builder.add(observed_step(obs, action, res.collided, expert, rgb, depth))
        if on_step is not None:
            on_step(t, obs, action)
        obs = res.observation
        if res.done:
            break
    return builder.finish(final_pose=obs.pose, final_geodesic_distance=geodesic_of(obs))


@dataclass
class SkippedEpisode:
    """An episode a worker could not collect (e.g. its goal is unreachable with the action space)."""

    episode_id: str
    reason: str


@dataclass
class CollectSummary:
    """What a collection run did (printed by the CLI)."""

    out: str
    total: int = 0  # episodes asked for
    skipped: int = 0  # already committed by an earlier (interrupted) run
    written: int = 0
    cleaned: list[str] = field(default_factory=list)  # stray temp / uncommitted folders removed
    successes: int = 0
    steps: int = 0
    failed: list[SkippedEpisode] = field(default_factory=list)  # not collectable (not written)

    def line(self) -> str:
        out = (f"{self.out}: {self.written} episodes written ({self.steps} steps, {self.successes} successes), "
               f"{self.skipped} already there, {len(self.cleaned)} interrupted leftovers removed")
        if self.failed:
            out += f"; {len(self.failed)} not collectable (e.g. {self.failed[0].episode_id}: {self.failed[0].reason})"
        return out


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ep", disable=not enabled, dynamic_ncols=True)


def plan(writer: DatasetWriter, ids: Sequence[str], summary: CollectSummary) -> set[str]:
    """The ids still to collect (not committed by an earlier run); counts totals into `summary`."""
    summary.total += len(ids)
    left = {i for i in ids if not writer.has(i)}
    summary.skipped += len(ids) - len(left)
    summary.cleaned = list(writer.cleaned)
    return left


def run_jobs(
    writer: DatasetWriter,
    jobs: Sequence[Any],
    work: Callable[[Any], Iterable[PendingEpisode]],
    summary: CollectSummary,
    workers: int = 1,
    init: Callable[..., None] | None = None,
    init_args: tuple = (),
    desc: str = "collect",
    progress: bool = True,
    commit_every: int = 1,
) -> CollectSummary:
    """Run `work(job)` for every job (each yields finished episodes), committing each episode as it
    arrives (in groups of up to `commit_every`, at least once a second), then sort the manifest.
    `work`/`init` must be picklable top-level functions when workers > 1 (processes are started with
    'spawn': forking after a GL simulator is loaded deadlocks); a worker returns a whole job at once."""
    todo = list(jobs)
    bar = _progress(summary.total, desc, progress)
    bar.update(summary.skipped)

    buffer: list[PendingEpisode] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if buffer:
            writer.commit_many(buffer)
            for p in buffer:
                summary.written += 1
                summary.steps += p.record["num_steps"]
                summary.successes += bool(p.record.get("success"))
            bar.update(len(buffer))
            buffer.clear()
        last_flush = time.monotonic()

    def commit(pendings: Iterable[PendingEpisode | SkippedEpisode]) -> None:
        for p in pendings:
            if isinstance(p, SkippedEpisode):
                summary.failed.append(p)
                bar.update(1)
                continue
            if writer.has(p.record["episode_id"]):  # defensive: never commit an id twice
                if p.tmp_dir:
                    shutil.rmtree(p.tmp_dir, ignore_errors=True)
                continue
            buffer.append(p)
            if len(buffer) >= commit_every or time.monotonic() - last_flush > 1.0:
                flush()
        flush()

    try:
        if workers <= 1 or len(todo) <= 1:
            if init is not None:
                init(*init_args)
            for job in todo:
                commit(work(job))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=init, initargs=init_args) as pool:
                for pendings in pool.imap_unordered(_ListWork(work), todo):
                    commit(pendings)
    finally:
        bar.close()
    writer.finalize()
    return summary


def factory_key(f: Any) -> Any:
    """Equality key of a (nested) functools.partial: same function and arguments = same env."""
    if isinstance(f, functools.partial):
        kw = tuple(sorted((k, factory_key(v)) for k, v in f.keywords.items()))
        return (f.func, tuple(factory_key(a) for a in f.args), kw)
    return f


class _ListWork:
    """Picklable wrapper that materialises a job's episodes inside the worker."""

    def __init__(self, fn: Callable[[Any], Iterable[PendingEpisode]]):
        self.fn = fn

    def __call__(self, job: Any) -> list[PendingEpisode]:
        return list(self.fn(job))

