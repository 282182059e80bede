"""Evaluation harness: any `Policy` on any episode set through the NavEnv protocol, N envs stepped together
with one batched policy call, per-episode JSONL results (resumable, shardable), EPA, valid-action %,
failure modes, R2R-format trajectory export. See docs/evaluation.md."""
from navtune.evaluation.agents import AgentSpec, build_policy, load_vlm
from navtune.evaluation.backends import EvalEpisode, EvalTask, EnvRunner, load_episodes, make_env, shard
from navtune.evaluation.harness import EvalConfig, Recorder, evaluate
from navtune.evaluation.registry import (
    EpisodeTrace,
    MeasureContext,
    backend_spec,
    register_backend,
    register_measure,
    register_task,
)
from navtune.evaluation.results import (
    RunFolderError,
    finalize_run,
    load_rows,
    load_run_info,
    merge_shards,
    results_file,
    summarize,
)
from navtune.evaluation.run import run_eval

__all__ = [
    "AgentSpec", "EnvRunner", "EpisodeTrace", "EvalConfig", "EvalEpisode", "EvalTask", "MeasureContext", "Recorder",
    "RunFolderError", "backend_spec", "build_policy", "evaluate", "finalize_run", "load_episodes", "load_rows",
    "load_run_info", "load_vlm", "make_env", "merge_shards", "register_backend", "register_measure", "register_task",
    "results_file", "run_eval", "shard", "summarize",
]
