"""`navtune eval` (evaluate an agent on an episode set, resumable and shardable) and `navtune eval-merge`."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from navtune.cli.config_options import PLUGIN_OPTION, import_plugin_modules
from navtune.cli.errors import fail

_HEADLINE = ("sr", "spl", "ndtw", "ne", "epa", "valid_action_pct", "steps", "soft_spl", "distance_to_goal")


def _fmt_summary(summary: dict) -> str:
    parts = []
    for k in _HEADLINE:
        v = summary.get(k)
        if v is not None:
            ci = summary.get(f"{k}_ci95")
            parts.append(f"{k}={v:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and k in ("sr", "spl", "ndtw", "epa") else ""))
    fr = summary.get("failure_rates") or {}
    parts += [f"{k}={v:.3f}" for k, v in fr.items() if v is not None]
    return f"episodes={summary.get('episodes')}  " + "  ".join(parts)


def _configs() -> tuple[type, type, type]:
    from navtune.evaluation import AgentSpec, EvalConfig, EvalTask

    return AgentSpec, EvalTask, EvalConfig


def register(app: typer.Typer) -> None:
    from navtune.cli.config_options import build_config, with_config_options

    @app.command("eval")
    @with_config_options(*_configs(), exclude=("failure",))
    def eval_cmd(
        out: Path = typer.Option(..., "--out", help="Run folder (created; rerunning resumes and skips finished episodes)."),
        num_shards: int = typer.Option(1, "--num-shards", help="Split the episodes into this many shards."),
        shard_id: int = typer.Option(0, "--shard-id", help="Which shard this process runs (0-based)."),
        name: str | None = typer.Option(None, "--name", help="Run name shown in reports."),
        plugin: list[str] = PLUGIN_OPTION,
        **values,
    ) -> None:
        """Evaluate an agent on an episode set (resumable, shardable, N envs with batched model calls).

        Per-episode rows go to OUT/episodes.jsonl as they finish, then summary.json (and predictions.json in
        the R2R format for VLN). The options are the fields of AgentSpec, EvalTask and EvalConfig. Example:
        navtune eval --agent forward --data-dir ../shared/data/r2r --split val_unseen --out runs/forward"""
        from navtune.evaluation import run_eval

        agent_cls, task_cls, cfg_cls = _configs()
        import_plugin_modules(plugin)
        try:
            spec, task = build_config(agent_cls, values), build_config(task_cls, values)
            cfg = build_config(cfg_cls, values)
            result = run_eval(out, spec, task, cfg, num_shards, shard_id, name)
        except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
            fail(e)
        typer.echo(f"{result['written']} episodes evaluated -> {result['results']}")
        if result["summary"] is not None:
            typer.echo(_fmt_summary(result["summary"]))
            typer.echo(json.dumps({k: v for k, v in result["summary"].items() if k != "agent"}))
        else:
            typer.echo(f"shard {shard_id} of {num_shards} done; combine with: navtune eval-merge {out}")

    @app.command("eval-merge")
    def eval_merge(
        run_dir: Path = typer.Argument(..., help="Run folder holding episodes.shard-*-of-*.jsonl files."),
        allow_missing: bool = typer.Option(False, "--allow-missing", help="Merge even when some episodes have no result."),
        plugin: list[str] = PLUGIN_OPTION,
    ) -> None:
        """Combine the shards of a run into episodes.jsonl (each episode once), summary.json, predictions.json."""
        from navtune.evaluation import EvalTask, load_episodes, load_run_info, merge_shards
        from navtune.evaluation.results import RunFolderError

        import_plugin_modules(plugin)
        try:
            info = load_run_info(run_dir)
            expected = None if allow_missing else [e.episode_id for e in load_episodes(EvalTask.from_dict(info["task"]))]
            summary = merge_shards(run_dir, expected)
        except (RunFolderError, ValueError) as e:
            fail(e)
        typer.echo(_fmt_summary(summary))
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "agent"}))
