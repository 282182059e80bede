"""`navtune mine`: roll an agent out, keep its failure episodes with expert labels as a training dataset."""
from __future__ import annotations

from pathlib import Path

import typer

from navtune.cli import evaluate as ev


def register(app: typer.Typer) -> None:
    @app.command("mine")
    def mine(
        out: Path = typer.Option(..., "--out", help="Failure dataset folder (navtune episode format; rerun resumes)."),
        agent: str = ev.AGENT,
        backend: str = typer.Option("house-objectnav", "--backend", help="house-objectnav | graph | habitat-objectnav"),
        episodes: Path | None = ev.EPISODES,
        data_dir: Path | None = ev.DATA_DIR,
        split: str | None = ev.SPLIT,
        scenes_dir: Path | None = ev.SCENES_DIR,
        scene_dataset_config: str | None = ev.SCENE_CONFIG,
        renderer: str = ev.RENDERER,
        skybox_dir: Path | None = ev.SKYBOX_DIR,
        model: str | None = ev.MODEL,
        adapter: Path | None = ev.ADAPTER,
        prompt_format: str = typer.Option("chat", "--format", help="vlm: chat | r2r-lowlevel | objectnav-json."),
        mode: str | None = ev.MODE,
        decode: str = ev.DECODE,
        system_prompt: Path | None = ev.SYSTEM_PROMPT,
        seed: int = ev.SEED,
        num_envs: int = ev.NUM_ENVS,
        processes: bool = ev.PROCESSES,
        limit: int | None = ev.LIMIT,
        max_steps: int | None = ev.MAX_STEPS,
        n_forward: int = typer.Option(8, "--stuck-forward", help="stuck: window of forward moves ..."),
        min_progress: float = typer.Option(0.5, "--stuck-progress", help="... with less net displacement (m) than this."),
        oscillation: int = typer.Option(6, "--oscillation-window", help="oscillation: consecutive alternating turns."),
        min_collisions: int = typer.Option(3, "--min-collisions", help="collision: at least this many blocked moves."),
        keep_unsuccessful: bool = typer.Option(False, "--keep-unsuccessful", help="Also keep unsuccessful episodes without a failure mode."),
        no_depth: bool = typer.Option(False, "--no-depth", help="Do not store depth frames."),
        image_size: str = ev.IMAGE_SIZE,
        device: str = ev.DEVICE,
        dtype: str = ev.DTYPE,
        plugin: list[str] = ev.PLUGIN_OPTION,
    ) -> None:
        """Roll an agent out for real and keep its failure episodes (stuck / oscillation / collision) with the
        expert's action at every visited state, as a training dataset.

        Example: navtune mine --agent vlm --model runs/sft/final --format chat --episodes eps.jsonl --out data/failures"""
        from navtune.evaluation import build_policy, load_episodes
        from navtune.metrics.failures import FailureConfig
        from navtune.mining import mine_failures

        ev.import_plugin_modules(plugin)
        try:
            spec = ev.agent_spec(agent, model, adapter, prompt_format, mode, decode, system_prompt, seed, dtype,
                                 device, image_size)
            task = ev.eval_task(backend, data_dir, split, episodes, renderer, skybox_dir, max_steps, limit, scenes_dir,
                                scene_dataset_config, depth=not no_depth)
            policy = build_policy(spec, task.action_space)
            summary = mine_failures(policy, task, load_episodes(task), out, num_envs, processes,
                                    FailureConfig(n_forward, min_progress, oscillation, min_collisions),
                                    keep_unsuccessful, depth=not no_depth)
        except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        typer.echo(summary.line())
        return None
