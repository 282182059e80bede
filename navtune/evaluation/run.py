"""One evaluation run end to end: run folder, resume, shards, summary (what `navtune eval` calls)."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from navtune.evaluation.agents import AgentSpec, build_policy
from navtune.evaluation.backends import EvalTask, load_episodes, shard
from navtune.evaluation.harness import EvalConfig, evaluate
from navtune.evaluation.results import finalize_run, load_rows, results_file, write_run_info


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
    run_dir.mkdir(parents=True, exist_ok=True)
    agent = agent.resolved()  # run.json records what ran (a trained folder's card filled in)
    write_run_info(run_dir, {
        "name": name or agent.label(),
        "agent": agent.to_dict(),
        "task": task.to_dict(),
        "epa": cfg.epa,
        "failure": asdict(cfg.failure),
        "num_shards": num_shards,
    })
    episodes = load_episodes(task)
    mine = shard(episodes, num_shards, shard_id)
    if policy is None:
        policy = build_policy(agent, task.action_space, loaded)
    out = results_file(run_dir, num_shards, shard_id)
    written = evaluate(policy, task, mine, out, cfg, on_row=on_row)
    summary = None
    if num_shards == 1:
        rows = load_rows(run_dir)
        summary = finalize_run(run_dir, rows, [e.episode_id for e in episodes])
    return {"summary": summary, "written": len(written), "results": str(out)}
