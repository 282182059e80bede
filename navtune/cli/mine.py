"""`navtune mine`: roll an agent out, keep its failure episodes with expert labels as a training dataset."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("mine")
    def mine(
        out: Path = typer.Option(..., "--out", help="Failure dataset folder (navtune episode format; rerun resumes)."),
        agent: str = typer.Option("forward", "--agent", help="random | forward | vlm"),
        backend: str = typer.Option("house-objectnav", "--backend", help="house-objectnav | graph"),
        episodes: Path | None = typer.Option(None, "--episodes", help="house-objectnav: ObjectNav episode file."),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="graph: R2R-format folder."),
        split: str | None = typer.Option(None, "--split", help="graph: split name."),
        renderer: str = typer.Option("none", "--renderer", help="graph frames: none | house | mp3d."),
        model: str | None = typer.Option(None, "--model", help="vlm: model folder."),
        adapter: Path | None = typer.Option(None, "--adapter", help="vlm: peft adapter folder."),
        prompt_format: str = typer.Option("chat", "--format", help="vlm prompt format."),
        decode: str = typer.Option("score", "--decode", help="vlm: score | generate."),
        seed: int = typer.Option(0, "--seed", help="random agent's seed."),
        num_envs: int = typer.Option(1, "--num-envs"),
        processes: bool = typer.Option(False, "--processes/--inline", help="One env per spawned process."),
        limit: int | None = typer.Option(None, "--limit", help="Only the first N episodes."),
        n_forward: int = typer.Option(8, "--stuck-forward", help="stuck: window of forward moves ..."),
        min_progress: float = typer.Option(0.5, "--stuck-progress", help="... with less net displacement (m) than this."),
        oscillation: int = typer.Option(6, "--oscillation-window", help="oscillation: consecutive alternating turns."),
        min_collisions: int = typer.Option(3, "--min-collisions", help="collision: at least this many blocked moves."),
        keep_unsuccessful: bool = typer.Option(False, "--keep-unsuccessful", help="Also keep unsuccessful episodes without a failure mode."),
        no_depth: bool = typer.Option(False, "--no-depth", help="Do not store depth frames."),
        image_size: str = typer.Option("320x240", "--image-size", help="vlm: resize frames to WxH ('none': as rendered)."),
    ) -> None:
        """Roll an agent out for real and keep its failure episodes (stuck / oscillation / collision) with the
        expert's action at every visited state, as a training dataset.

        Example: navtune mine --agent vlm --model runs/sft/final --format chat --episodes eps.jsonl --out data/failures"""
        from navtune.cli.evaluate import _size
        from navtune.evaluation import AgentSpec, EvalTask, build_policy, load_episodes
        from navtune.metrics.failures import FailureConfig
        from navtune.mining import mine_failures

        try:
            spec = AgentSpec(kind=agent, model=model, adapter=str(adapter) if adapter else None, format=prompt_format,
                             decode=decode, seed=seed, image_size=_size(image_size))
            task = EvalTask(backend=backend, episodes=str(episodes) if episodes else None,
                            data_dir=str(data_dir) if data_dir else None, split=split, renderer=renderer, limit=limit,
                            depth=not no_depth)
            policy = build_policy(spec, task.action_space)
            summary = mine_failures(policy, task, load_episodes(task), out, num_envs, processes,
                                    FailureConfig(n_forward, min_progress, oscillation, min_collisions),
                                    keep_unsuccessful, depth=not no_depth)
        except (ValueError, KeyError, FileNotFoundError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        typer.echo(summary.line())
