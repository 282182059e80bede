"""`navtune eval` (evaluate an agent on an episode set, resumable and shardable) and `navtune eval-merge`."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from navtune.cli.config_options import PLUGIN_OPTION, import_plugin_modules

_HEADLINE = ("sr", "spl", "ndtw", "ne", "epa", "valid_action_pct", "steps", "soft_spl", "distance_to_goal")


def _fmt_summary(summary: dict) -> str:
    parts = []
    for k in _HEADLINE:
        v = summary.get(k)
        if v is not None:
            parts.append(f"{k}={v:.4f}")
    fr = summary.get("failure_rates") or {}
    parts += [f"{k}={v:.3f}" for k, v in fr.items() if v is not None]
    return f"episodes={summary.get('episodes')}  " + "  ".join(parts)


def _size(text: str) -> tuple[int, int] | None:
    if text.lower() == "none":
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected WxH (e.g. 320x240) or 'none', got {text!r}", param_hint="--image-size")
    return (w, h)


# Agent and episode-set options shared by `navtune eval` and `navtune mine` (declared once).
AGENT = typer.Option("forward", "--agent", help="random | forward | oracle | vlm")
DATA_DIR = typer.Option(None, "--data-dir", help="graph: R2R-format folder (connectivity/ + R2R_<split>.json).")
SPLIT = typer.Option(None, "--split", help="graph: split name (reads R2R_<split>.json).")
EPISODES = typer.Option(None, "--episodes", help="*-objectnav: ObjectNav episode file.")
SCENES_DIR = typer.Option(None, "--scenes-dir", help="habitat-objectnav: folder the episodes' scene_id paths are relative to.")
SCENE_CONFIG = typer.Option(None, "--scene-dataset-config", help="habitat-objectnav: scene dataset config (relative to --scenes-dir or absolute).")
RENDERER = typer.Option("none", "--renderer", help="graph frames: none | house | mp3d.")
SKYBOX_DIR = typer.Option(None, "--skybox-dir", help="mp3d renderer: Matterport3D skyboxes.")
MODEL = typer.Option(None, "--model", help="vlm: model folder or hub id.")
ADAPTER = typer.Option(None, "--adapter", help="vlm: peft LoRA adapter folder.")
MODE = typer.Option(None, "--mode", help="vlm: full | cached | kv (default: the format's best).")
DECODE = typer.Option("score", "--decode", help="vlm: score (constrained) | generate (free text; counts invalid actions).")
SYSTEM_PROMPT = typer.Option(None, "--system-prompt", help="vlm: system prompt file.")
SEED = typer.Option(0, "--seed", help="random agent's seed.")
NUM_ENVS = typer.Option(1, "--num-envs", help="Env slots stepped together (one batched policy call per step).")
PROCESSES = typer.Option(False, "--processes/--inline", help="One env per spawned process (house envs).")
LIMIT = typer.Option(None, "--limit", help="Only the first N episodes of the set.")
MAX_STEPS = typer.Option(None, "--max-steps", help="Step budget (default: the backend's).")
IMAGE_SIZE = typer.Option("320x240", "--image-size", help="vlm: resize frames to WxH before the model ('none': as rendered); use the size the model was trained with.")
DEVICE = typer.Option("cpu", "--device")
DTYPE = typer.Option("float32", "--dtype")
METRIC = typer.Option([], "--metric", help="Also compute this registered measure per episode (repeat for several).")


def agent_spec(agent: str, model: str | None, adapter: Path | None, prompt_format: str, mode: str | None, decode: str,
               system_prompt: Path | None, seed: int, dtype: str, device: str, image_size: str):
    from navtune.evaluation import AgentSpec

    return AgentSpec(kind=agent, model=model, adapter=str(adapter) if adapter else None, format=prompt_format,
                     mode=mode, decode=decode, system_prompt_file=str(system_prompt) if system_prompt else None,
                     seed=seed, dtype=dtype, device=device, image_size=_size(image_size))


def eval_task(backend: str, data_dir: Path | None, split: str | None, episodes: Path | None, renderer: str,
              skybox_dir: Path | None, max_steps: int | None, limit: int | None, scenes_dir: Path | None,
              scene_dataset_config: str | None, depth: bool = False, metrics: list[str] | None = None):
    from navtune.evaluation import EvalTask

    return EvalTask(backend=backend, data_dir=str(data_dir) if data_dir else None, split=split,
                    episodes=str(episodes) if episodes else None, renderer=renderer,
                    skybox_dir=str(skybox_dir) if skybox_dir else None, max_steps=max_steps, limit=limit,
                    scenes_dir=str(scenes_dir) if scenes_dir else None, scene_dataset_config=scene_dataset_config,
                    depth=depth, metrics=tuple(metrics or ()))


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        out: Path = typer.Option(..., "--out", help="Run folder (created; rerunning resumes and skips finished episodes)."),
        agent: str = AGENT,
        backend: str = typer.Option("graph", "--backend", help="graph (R2R-format folder: R2R or house VLN) | house-objectnav | habitat-objectnav | a plugin's"),
        data_dir: Path | None = DATA_DIR,
        split: str | None = SPLIT,
        episodes: Path | None = EPISODES,
        scenes_dir: Path | None = SCENES_DIR,
        scene_dataset_config: str | None = SCENE_CONFIG,
        renderer: str = RENDERER,
        skybox_dir: Path | None = SKYBOX_DIR,
        model: str | None = MODEL,
        adapter: Path | None = ADAPTER,
        prompt_format: str = typer.Option("r2r-lowlevel", "--format", help="vlm: r2r-lowlevel | objectnav-json | chat."),
        mode: str | None = MODE,
        decode: str = DECODE,
        system_prompt: Path | None = SYSTEM_PROMPT,
        seed: int = SEED,
        num_envs: int = NUM_ENVS,
        processes: bool = PROCESSES,
        epa: bool = typer.Option(True, "--epa/--no-epa", help="Run the expert-driven pass for expert-path action accuracy."),
        limit: int | None = LIMIT,
        max_steps: int | None = MAX_STEPS,
        num_shards: int = typer.Option(1, "--num-shards", help="Split the episodes into this many shards."),
        shard_id: int = typer.Option(0, "--shard-id", help="Which shard this process runs (0-based)."),
        save_frames: int = typer.Option(0, "--save-frames", help="Keep frame thumbnails of the first N episodes (reports)."),
        name: str | None = typer.Option(None, "--name", help="Run name shown in reports."),
        image_size: str = IMAGE_SIZE,
        device: str = DEVICE,
        dtype: str = DTYPE,
        metric: list[str] = METRIC,
        plugin: list[str] = PLUGIN_OPTION,
    ) -> None:
        """Evaluate an agent on an episode set (resumable, shardable, N envs with batched model calls).

        Per-episode rows go to OUT/episodes.jsonl as they finish, then summary.json (and predictions.json in
        the R2R format for VLN). Example:
        navtune eval --agent forward --data-dir ../shared/data/r2r --split val_unseen --out runs/forward"""
        from navtune.evaluation import EvalConfig, run_eval

        import_plugin_modules(plugin)
        try:
            spec = agent_spec(agent, model, adapter, prompt_format, mode, decode, system_prompt, seed, dtype, device,
                              image_size)
            task = eval_task(backend, data_dir, split, episodes, renderer, skybox_dir, max_steps, limit, scenes_dir,
                             scene_dataset_config, metrics=metric)
            cfg = EvalConfig(num_envs=num_envs, processes=processes, epa=epa, save_frames=save_frames)
            result = run_eval(out, spec, task, cfg, num_shards, shard_id, name)
        except (ValueError, KeyError, FileNotFoundError, ImportError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
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
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        typer.echo(_fmt_summary(summary))
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "agent"}))
