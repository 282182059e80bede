"""One evaluation run end to end: run folder, resume, shards, summary (what `navtune eval` calls)."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from navtune.core.lock import FolderLock
from navtune.evaluation.agents import AgentSpec, build_policy
from navtune.evaluation.backends import EvalTask, load_episodes, shard
from navtune.evaluation.harness import EvalConfig, evaluate
from navtune.evaluation.results import RUN_FILE, finalize_run, load_rows, results_file, write_run_info


def run_eval(
    run_dir: str | os.PathLike,
    agent: AgentSpec,
    task: EvalTask,
    cfg: EvalConfig = EvalConfig(),
    num_shards: int = 1,
    shard_id: int = 0,
    name: str | None = None,
    policy: Any = None,
    loaded: tuple[Any, Any] | None = None,
    on_row: Any = None,
) -> dict:
    """Evaluate `agent` on `task` into `run_dir` (resuming what is there). Unsharded runs end with
    summary.json (+ predictions.json for VLN); sharded ones leave that to `merge_shards`.
    Returns {"summary": ..., "written": n, "results": path}."""
    run_dir = Path(run_dir)
    agent = agent.resolved()  # run.json records what ran (a trained folder's card filled in)
    task = task.for_agent(agent.image_size if agent.kind == "vlm" else None)  # frames rendered as in training
    episodes = load_episodes(task)  # bad episode files fail before the run folder is written
    out = results_file(run_dir, num_shards, shard_id)
    # one writer per results file: a second `navtune eval` into this run (and shard) fails naming this one's
    # pid; the shards of one run write their own files and may run together
    with FolderLock(run_dir, what=f"eval run ({out.name})", name=f".{out.name}.lock"):
        return _run(run_dir, out, episodes, agent, task, cfg, num_shards, shard_id, name, policy, loaded, on_row)


def _run(run_dir: Path, out: Path, episodes: list, agent: AgentSpec, task: EvalTask, cfg: EvalConfig,
         num_shards: int, shard_id: int, name: str | None, policy: Any, loaded: Any, on_row: Any) -> dict:
    info = {
        "name": name or agent.label(),
        "agent": agent.to_dict(),
        "task": task.to_dict(),
        "epa": cfg.epa,
        "failure": asdict(cfg.failure),
        "num_shards": num_shards,
    }
    if (run_dir / RUN_FILE).exists():  # resuming: another evaluation's folder is refused before loading a model
        write_run_info(run_dir, info)
    mine = shard(episodes, num_shards, shard_id)
    if policy is None:  # a model that cannot be loaded leaves no run folder behind
        policy = build_policy(agent, task.action_space, loaded)
    write_run_info(run_dir, info)
    written = evaluate(policy, task, mine, out, cfg, on_row=on_row)
    summary = None
    if num_shards == 1:
        rows = load_rows(run_dir)
        summary = finalize_run(run_dir, rows, [e.episode_id for e in episodes])
    return {"summary": summary, "written": len(written), "results": str(out)}
