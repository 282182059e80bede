"""`navtune mine`: roll an agent out, keep its failure episodes with expert labels as a training dataset."""
from __future__ import annotations

from pathlib import Path

import typer

from navtune.cli import evaluate as ev


def register(app: typer.Typer) -> None:
    from navtune.cli.config_options import build_config, with_config_options

    from navtune.cli.collect import _BONUS, _COLL, _GAMMA, _SLACK, _reward

    @app.command("mine")
    @with_config_options(*ev._configs(), defaults={"backend": "house-objectnav", "format": "chat", "depth": True},
                         exclude=("epa", "save_frames"))
    def mine(
        out: Path = typer.Option(..., "--out", help="Failure dataset folder (navtune episode format; rerun resumes)."),
        keep_unsuccessful: bool = typer.Option(False, "--keep-unsuccessful", help="Also keep unsuccessful episodes without a failure mode."),
        gamma: float | None = _GAMMA,
        success_bonus: float | None = _BONUS,
        collision_penalty: float | None = _COLL,
        slack_penalty: float | None = _SLACK,
        plugin: list[str] = ev.PLUGIN_OPTION,
        **values,
    ) -> None:
        """Roll an agent out for real and keep its failure episodes (stuck / oscillation / collision / early stop
        / timeout) with the expert's action at every visited state, as a training dataset (options: AgentSpec,
        EvalTask and EvalConfig fields; --width/--height set the stored frame size, --no-depth stores no depth
        frames; --gamma / --success-bonus / --collision-penalty / --slack-penalty decide the stored rewards and
        returns, as for `navtune collect`).

        Example: navtune mine --agent vlm --model runs/sft/final --format chat --episodes eps.jsonl --out data/failures"""
        from navtune.evaluation import build_policy, load_episodes
        from navtune.mining import mine_failures

        agent_cls, task_cls, cfg_cls = ev._configs()
        ev.import_plugin_modules(plugin)
        try:
            spec, task = build_config(agent_cls, values).resolved(), build_config(task_cls, values)
            task = task.for_agent(spec.image_size if spec.kind == "vlm" else None)  # frames rendered as in training
            cfg = build_config(cfg_cls, values)
            reward = _reward(gamma, success_bonus, collision_penalty, slack_penalty)
            policy = build_policy(spec, task.action_space)
            summary = mine_failures(policy, task, load_episodes(task), out, cfg.num_envs, cfg.processes, cfg.failure,
                                    keep_unsuccessful, depth=task.depth, reward=reward.to_dict(),
                                    progress=cfg.progress)
        except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
            ev.fail(e)
        typer.echo(summary.line())
        return None
