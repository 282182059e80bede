"""The evaluation loop: any `Policy` on any episode set, N envs stepped together, one batched `act` per step.

Each env slot runs one episode at a time, in up to two passes:

1. **EPA pass** (expert-path action accuracy, optional): the expert drives; at every state of the
   expert's path the policy is asked for its action (its history is told the executed expert action).
2. **Policy pass**: the policy drives until it stops or the step budget ends; the env reports collisions.

When both passes of an episode are done its result row (task metrics from `navtune.metrics`, EPA,
valid-action %, failure modes, the trajectory) is appended to the results JSONL with
`navtune.core.io.append_jsonl` (one fsynced line). Rows already in the file are skipped, so a run killed
at any point (even kill -9) resumes where it was, and no episode is ever written twice. Episodes are
independent of which slot or batch they ran in, so a resumed run equals an uninterrupted one for a
deterministic policy (all VLM scoring policies and the forward/oracle baselines).

Optional `Recorder`s see every policy-pass step (the failure miner writes datasets through one).
"""
from __future__ import annotations

import io
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from navtune.agents.policy import Policy, act_with_expert
from navtune.core.config import option
from navtune.core.actions import STOP_ACTIONS
from navtune.core.io import append_jsonl, atomic_write_bytes, read_jsonl
from navtune.core.paths import safe_name
from navtune.envs.protocol import Observation, StepResult
from navtune.data.collectors.common import geodesic_of
from navtune.evaluation.backends import EvalEpisode, EvalTask
from navtune.evaluation.registry import EpisodeTrace
from navtune.metrics.failures import FAILURE_MODES, FailureConfig, failure_modes


@dataclass
class EvalConfig:
    """How to run (not what): parallelism, which passes, what to keep."""

    num_envs: int = option(1, help="Env slots stepped together (one batched policy call per step).")
    processes: bool = option(False, flag="--processes/--inline", help="One env per spawned process (house envs).")
    epa: bool = option(True, flag="--epa/--no-epa", help="Run the expert-driven pass for expert-path action "
                       "accuracy.")
    expert_labels: bool = option(False, cli=False, help="also query the expert at every state the policy visits")
    save_frames: int = option(0, help="Keep frame thumbnails of the first N episodes (reports).")
    frame_size: tuple[int, int] = option((128, 96), cli=False, help="thumbnail size")
    failure: FailureConfig = option(default_factory=FailureConfig, nested=True)
    progress: bool = option(True, flag=("--quiet", "-q"), cli_type=bool, cli_default=False, to_field=lambda q: not q,
                            help="No progress bar.")


class Recorder(Protocol):
    """Hooks on the policy pass: `start` returns a handle per episode, `step` sees each transition,
    `finish` gets the result row (and may keep or drop what it recorded)."""

    def start(self, episode: EvalEpisode) -> Any: ...

    def step(self, handle: Any, obs: Observation, action: str, expert: str | None, result: StepResult) -> None: ...

    def finish(self, handle: Any, episode: EvalEpisode, final_obs: Observation, row: dict) -> None: ...


@dataclass
class _Run:
    """One slot's episode in progress."""

    ep: EvalEpisode
    phase: str  # "epa" | "policy"
    obs: Observation | None = None
    expert: str | None = None
    epa_expert: list[str] = field(default_factory=list)
    epa_policy: list[str] = field(default_factory=list)
    epa_poses: list[list[float]] = field(default_factory=list)
    epa_valid: list[bool] = field(default_factory=list)  # the policy's answers on the expert's path parsed?
    actions: list[str] = field(default_factory=list)
    expert_actions: list[str | None] = field(default_factory=list)
    poses: list[list[float]] = field(default_factory=list)
    viewpoints: list[str] = field(default_factory=list)
    geodesics: list[float | None] = field(default_factory=list)
    collided: list[bool] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    invalid_texts: list[str] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    handles: list[Any] = field(default_factory=list)
    trajectory: list | None = None
    stopped: bool = False
    t0: float = field(default_factory=time.perf_counter)


def _pose(obs: Observation) -> list[float]:
    p = obs.pose
    return [float(p.x), float(p.y), float(p.z), float(p.heading)]


def _thumb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))


def _save_frames(frames_dir: Path, frames: Sequence[np.ndarray]) -> None:
    from PIL import Image

    for t, f in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="PNG")
        atomic_write_bytes(frames_dir / f"{t:04d}.png", buf.getvalue())


def finished_ids(results_path: str | Path) -> set[str]:
    from navtune.evaluation.results import RunFolderError, check_row

    return {check_row(r, results_path, k)["episode_id"]
            for k, r in enumerate(read_jsonl(results_path, RunFolderError), start=1)}


def build_row(run: _Run, task: EvalTask, metrics: dict, cfg: EvalConfig, policy_name: str,
              frames_rel: str | None) -> dict:
    """The result row of one finished episode (plain JSON)."""
    success = metrics.get("sr")
    fails = failure_modes(run.actions, [p[:3] for p in run.poses], run.collided, cfg.failure, task.action_space,
                          success=None if success is None else bool(success))
    m = dict(metrics)
    n_epa = len(run.epa_expert)
    m["epa"] = (sum(a == b for a, b in zip(run.epa_expert, run.epa_policy)) / n_epa) if n_epa else None
    answers = run.valid + run.epa_valid  # every answer the policy gave: driving and on the expert's path
    m["valid_action_pct"] = 100.0 * sum(answers) / len(answers) if answers else 100.0
    m["collisions"] = float(fails["collisions"])
    for k in FAILURE_MODES:
        m[k] = float(fails[k])
    row = {
        "episode_id": run.ep.episode_id,
        "order": run.ep.order,
        "scene": run.ep.scene,
        "task": task.task,
        "policy": policy_name,
        "instruction": run.ep.instruction,
        "metrics": m,
        "failures": fails,
        "actions": run.actions,
        "collided": [t for t, c in enumerate(run.collided) if c],
        "poses": run.poses,
        "invalid_texts": run.invalid_texts[:5],
        "expert": {"actions": run.epa_expert, "policy_actions": run.epa_policy, "poses": run.epa_poses},
        "frames": frames_rel,
    }
    if run.ep.target is not None:
        row["target"] = run.ep.target
        row["goals"] = [{"position": list(p), "radius": r, "object_id": oid} for p, r, oid in run.ep.goals]
    if run.trajectory is not None:
        row["trajectory"] = run.trajectory
        row["reference"] = list(run.ep.reference)
    if cfg.expert_labels:
        row["expert_labels"] = run.expert_actions
    return row


def evaluate(
    policy: Policy,
    task: EvalTask,
    episodes: Sequence[EvalEpisode],
    results_path: str | Path,
    cfg: EvalConfig = EvalConfig(),
    recorders: Iterable[Recorder] = (),
    pool: Any = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run `policy` on the episodes not yet in `results_path`; append one row per finished episode.
    Returns the rows written by this call. `pool` (from `make_pool`) may be passed to reuse envs; only its
    first `cfg.num_envs` envs are used."""
    from navtune.evaluation.pool import make_pool

    results_path = Path(results_path)
    done = finished_ids(results_path)
    todo = deque(e for e in episodes if e.episode_id not in done)
    if not todo:
        return []
    own_pool = pool is None
    if own_pool:
        pool = make_pool(task, max(1, min(cfg.num_envs, len(todo))), cfg.processes)
    loop = _EvalLoop(policy, task, todo, results_path, cfg, list(recorders), pool, on_row)
    try:
        loop.run()
    finally:
        loop.bar.close()
        if own_pool:
            pool.close()
    return loop.written


class _EvalLoop:
    """The harness loop's state and its phases, one method each (`run` shows the loop)."""

    def __init__(self, policy: Policy, task: EvalTask, todo: deque, results_path: Path, cfg: EvalConfig,
                 recorders: list[Recorder], pool: Any, on_row: Callable[[dict], None] | None):
        self.policy, self.task, self.todo, self.cfg = policy, task, todo, cfg
        self.results_path, self.frames_root = results_path, results_path.parent / "frames"
        self.recorders, self.pool, self.on_row = recorders, pool, on_row
        self.n_slots = min(len(pool), max(1, cfg.num_envs))
        self.want_labels = policy.needs_expert or cfg.expert_labels
        self.runs: dict[int, _Run] = {}  # slots stepping
        self.to_reset: dict[int, _Run] = {}  # slots whose episode (or pass) starts at the next reset
        self.last_scene: dict[int, str] = {}
        self.written: list[dict] = []
        self.bar = _progress(len(todo), f"eval {policy.name}", cfg.progress)

    def run(self) -> None:
        for s in range(self.n_slots):
            self.assign(s)
        while self.to_reset or self.runs:
            # ---- 1. (re)start episodes and passes
            if self.to_reset:
                self.reset_envs()
            # ---- 2. one batched policy call over every running slot
            chosen = act_with_expert(self.policy, {s: r.obs for s, r in self.runs.items()},
                                     {s: r.expert for s, r in self.runs.items()})
            # ---- 3. step every env with its executed action
            finished = self.step_envs(chosen)
            # ---- 4. measure and write the finished episodes, give their slots new ones
            if finished:
                self.finish(finished)

    def want_expert(self, run: _Run) -> bool:
        return run.phase == "epa" or self.want_labels

    def assign(self, slot: int) -> None:
        """Give the slot the next episode, preferring one in the scene its env has loaded, else one in a
        scene no other env holds (a scene load costs tens of ms); results do not depend on the assignment."""
        todo = self.todo
        if not todo:
            return
        window = range(min(len(todo), 4 * self.n_slots))
        scene = self.last_scene.get(slot)
        held = {sc for s, sc in self.last_scene.items() if s != slot}
        pick = next((k for k in window if todo[k].scene == scene), None)
        if pick is None:
            pick = next((k for k in window if todo[k].scene not in held), 0)
        ep = todo[pick]
        del todo[pick]
        self.last_scene[slot] = ep.scene
        self.to_reset[slot] = _Run(ep, "epa" if self.cfg.epa else "policy")

    def reset_envs(self) -> None:
        calls = {s: ("reset", (r.ep, self.want_expert(r))) for s, r in self.to_reset.items()}
        for s, (obs, expert) in self.pool.call_many(calls).items():
            r = self.to_reset[s]
            r.obs, r.expert = obs, expert
            self.policy.reset(s, episode_id=r.ep.episode_id)
            if r.phase == "epa":
                r.epa_poses.append(_pose(obs))
            else:
                r.poses.append(_pose(obs))
                r.viewpoints.append(obs.info.get("viewpoint"))
                r.geodesics.append(geodesic_of(obs))
                r.handles = [rec.start(r.ep) for rec in self.recorders]
            self.runs[s] = r
        self.to_reset.clear()

    def step_envs(self, chosen: dict[int, str]) -> list[int]:
        """Step every running env (the expert's action in the EPA pass, the policy's otherwise); returns the
        slots whose episode ended. A finished EPA pass restarts the episode for the policy pass."""
        calls = {}
        for s, r in self.runs.items():
            a = chosen[s]
            out = self.policy.last_outputs.get(s)
            valid = True if out is None else bool(out.valid)
            if not valid and out is not None and out.text is not None:
                r.invalid_texts.append(out.text)
            if r.phase == "epa":
                r.epa_valid.append(valid)
                r.epa_policy.append(a)
                r.epa_expert.append(r.expert)
                self.policy.set_executed_action(s, r.expert)
                a = r.expert
            else:
                r.valid.append(valid)
                r.actions.append(a)
                r.expert_actions.append(r.expert)
            calls[s] = ("step", (a, self.want_expert(r)))
        finished: list[int] = []
        for s, (res, expert) in self.pool.call_many(calls).items():
            r = self.runs[s]
            obs = res.observation
            if r.phase == "epa":
                r.epa_poses.append(_pose(obs))
                if res.done:  # the expert's path is done: now the policy drives the same episode
                    self.policy.reset(s, episode_id=r.ep.episode_id)
                    del self.runs[s]
                    self.to_reset[s] = r
                    r.phase = "policy"
                    continue
            else:
                a = r.actions[-1]
                for rec, h in zip(self.recorders, r.handles):
                    rec.step(h, r.obs, a, r.expert, res)
                if self.cfg.save_frames and r.ep.order < self.cfg.save_frames and r.obs.rgb is not None:
                    r.frames.append(_thumb(r.obs.rgb, self.cfg.frame_size))
                r.collided.append(bool(res.collided))
                r.poses.append(_pose(obs))
                r.viewpoints.append(obs.info.get("viewpoint"))
                r.geodesics.append(geodesic_of(obs))
                r.stopped = a in STOP_ACTIONS
                if res.done:
                    if "trajectory" in obs.info:
                        r.trajectory = [[str(t[0]), float(t[1]), float(t[2]) if len(t) > 2 else 0.0]
                                        for t in obs.info["trajectory"]]
                    r.obs = obs
                    finished.append(s)
                    continue
            r.obs, r.expert = obs, expert
        return finished

    def finish(self, finished: list[int]) -> None:
        calls = {s: ("metrics", (_trace(self.runs[s]),)) for s in finished}
        metrics = self.pool.call_many(calls)
        for s in finished:
            r = self.runs.pop(s)
            frames_rel = None
            if r.frames:
                if r.obs.rgb is not None:  # the final view, after the last action
                    r.frames.append(_thumb(r.obs.rgb, self.cfg.frame_size))
                # the id was checked when the episodes were loaded; checked again where it becomes a folder
                _save_frames(self.frames_root / safe_name(r.ep.episode_id, self.results_path, "episode_id"), r.frames)
                frames_rel = f"frames/{r.ep.episode_id}"
            row = build_row(r, self.task, metrics[s], self.cfg, self.policy.name, frames_rel)
            row["wall_s"] = round(time.perf_counter() - r.t0, 3)
            for rec, h in zip(self.recorders, r.handles):
                rec.finish(h, r.ep, r.obs, row)
            append_jsonl(self.results_path, row)
            self.written.append(row)
            if self.on_row is not None:
                self.on_row(row)
            self.bar.update(1)
            self.policy.release(s)
            self.assign(s)


def _trace(run: _Run) -> EpisodeTrace:
    return EpisodeTrace(tuple(run.actions), tuple(run.collided), tuple(tuple(p[:3]) for p in run.poses),
                        tuple(run.viewpoints), tuple(run.geodesics), run.stopped)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ep", disable=not enabled, dynamic_ncols=True, leave=False)
