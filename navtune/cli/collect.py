"""`navtune collect ...`: write navtune episode datasets (see docs/data.md).

A run into an existing --out folder resumes: committed episodes are skipped and whatever an interrupted
run left half-written is discarded; the same settings are required (dataset_info.json is compared)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from navtune.cli.config_options import PLUGIN_OPTION, import_plugin_modules
from navtune.cli.errors import user_errors

app = typer.Typer(help="Collect trajectories into navtune episode datasets.", no_args_is_help=True)


def _reward(gamma: float | None, success_bonus: float | None, collision: float | None, slack: float | None):
    from dataclasses import replace

    from navtune.data.rewards import RewardConfig

    cfg = RewardConfig()
    changes = {k: v for k, v in dict(gamma=gamma, success_bonus=success_bonus, collision=collision,
                                     slack=slack).items() if v is not None}
    return replace(cfg, **changes)


@contextlib.contextmanager
def _user_errors():
    """Bad input (a missing folder, a malformed episode file, settings that differ from the dataset being
    resumed) ends with one line naming the file and field, not a traceback."""
    with user_errors(ValueError, KeyError, FileNotFoundError):
        yield


def _done(summary) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[green]done[/green] {summary.line()}")


_GAMMA = typer.Option(None, "--gamma", help="discount of returns (default 0.99)")
_BONUS = typer.Option(None, "--success-bonus", help="reward for stopping inside the success radius (default 2.5)")
_COLL = typer.Option(None, "--collision-penalty", help="penalty per blocked move (default 0.1)")
_SLACK = typer.Option(None, "--slack-penalty", help="penalty per step (default 0.01)")
_WORKERS = typer.Option(1, "--workers", "-j", min=1, help="parallel worker processes")
_QUIET = typer.Option(False, "--quiet", "-q", help="no progress bar")
_OUT = typer.Option(..., "--out", help="dataset folder to write (resumes when it exists)")
_SPLIT = typer.Option("train", "--split", help="vln / r2r: which R2R_<split>.json")
_WIDTH = typer.Option(320, "--width")
_HEIGHT = typer.Option(240, "--height")
_DEPTH = typer.Option(True, "--depth/--no-depth", help="write depth frames (16-bit PNG, mm)")
_LIMIT = typer.Option(None, "--limit", help="only the first N episodes")
_MAX_STEPS = typer.Option(None, "--max-steps", help="cap on actions per episode")
_RENDERER = typer.Option("none", "--renderer", help="r2r task only: none | mp3d")
_SKYBOX = typer.Option(None, "--skybox-dir", help="r2r task with --renderer mp3d: Matterport3D skyboxes")


_TASK = typer.Option(None, "--task", help="objectnav (house env, continuous actions), vln (house R2R-format "
                    "folder, graph actions) or r2r (R2R folder, graph world); or give --backend")
_BACKEND = typer.Option(None, "--backend", help="instead of --task: a registered evaluation backend (e.g. a "
                        "--plugin's); --episodes is its episode file, or its R2R-format folder with --split")
_EPISODES = typer.Option(..., "--episodes", help="objectnav: episode file or folder; vln / r2r: R2R-format folder "
                         "(R2R_<split>.json + connectivity/)")


def _backend_source(backend: str, episodes: Path, split: str, width: int, height: int, depth: bool,
                    limit: int | None, max_steps: int | None, renderer: str, skybox_dir: Path | None):
    from navtune.evaluation.backends import EvalTask, backend_source

    folder = episodes.is_dir()
    task = EvalTask(backend=backend, data_dir=str(episodes) if folder else None, split=split if folder else None,
                    episodes=None if folder else str(episodes), renderer=renderer,
                    skybox_dir=str(skybox_dir) if skybox_dir else None, width=width, height=height, depth=depth,
                    max_steps=max_steps, limit=limit)
    return backend_source(task)


def _source(task: str | None, episodes: Path, split: str, width: int, height: int, depth: bool, limit: int | None,
            max_steps: int | None, renderer: str, skybox_dir: Path | None, backend: str | None = None):
    from navtune.data.collectors.episodes import r2r_source
    from navtune.data.collectors.expert import objectnav_source, vln_source
    from navtune.data.collectors.renderers import renderer_factory

    if (task is None) == (backend is None):
        raise typer.BadParameter("give either --task or --backend", param_hint="--task")
    if backend is not None:
        return _backend_source(backend, episodes, split, width, height, depth, limit, max_steps, renderer, skybox_dir)
    if task == "objectnav":
        return objectnav_source(episodes, width, height, depth, limit)
    if task == "vln":
        return vln_source(episodes, split, width, height, depth, limit, max_steps or 50)
    if task == "r2r":
        factory = renderer_factory(renderer, data_dir=episodes, skybox_dir=skybox_dir, width=width, height=height,
                                   depth=depth)
        return r2r_source(episodes, split, factory, None if factory is None else renderer, limit, max_steps or 50)
    raise typer.BadParameter(f"unknown task {task!r}; expected objectnav, vln or r2r", param_hint="--task")


@app.command("expert")
def expert(
    task: str | None = _TASK,
    backend: str | None = _BACKEND,
    episodes: Path = _EPISODES,
    out: Path = _OUT,
    split: str = _SPLIT,
    workers: int = _WORKERS,
    width: int = _WIDTH,
    height: int = _HEIGHT,
    depth: bool = _DEPTH,
    limit: int | None = _LIMIT,
    max_steps: int | None = _MAX_STEPS,
    renderer: str = _RENDERER,
    skybox_dir: Path | None = _SKYBOX,
    hf_out: Path | None = typer.Option(None, "--hf-out", help="also save a Hugging Face dataset here "
                                       "(datasets.load_from_disk)"),
    gamma: float | None = _GAMMA,
    success_bonus: float | None = _BONUS,
    collision_penalty: float | None = _COLL,
    slack_penalty: float | None = _SLACK,
    quiet: bool = _QUIET,
    plugin: list[str] = PLUGIN_OPTION,
) -> None:
    """Shortest-path expert trajectories (RGB-D) on house ObjectNav / VLN episodes or R2R."""
    from navtune.data.collectors.expert import collect_expert

    import_plugin_modules(plugin)
    with _user_errors():
        src = _source(task, episodes, split, width, height, depth, limit, max_steps, renderer, skybox_dir, backend)
        summary = collect_expert(src, out, workers=workers, reward=_reward(gamma, success_bonus, collision_penalty,
                                 slack_penalty), max_steps=max_steps, depth=depth, progress=not quiet)
    _done(summary)
    if hf_out is not None:
        from navtune.data.hf import save_hf

        with _user_errors():
            save_hf(out, hf_out)
        typer.echo(f"saved {hf_out} (load with datasets.load_from_disk)")


@app.command("interactive")
def interactive(
    task: str | None = _TASK,
    backend: str | None = _BACKEND,
    episodes: Path = _EPISODES,
    out: Path = _OUT,
    split: str = _SPLIT,
    width: int = _WIDTH,
    height: int = _HEIGHT,
    depth: bool = _DEPTH,
    limit: int | None = _LIMIT,
    max_steps: int | None = _MAX_STEPS,
    renderer: str = _RENDERER,
    skybox_dir: Path | None = _SKYBOX,
    keys: str | None = typer.Option(None, "--keys", help="script the keys instead of reading the terminal "
                                    "(e.g. 'wwadwws')"),
    no_frame: bool = typer.Option(False, "--no-frame", help="do not draw the view in the terminal"),
    plugin: list[str] = PLUGIN_OPTION,
) -> None:
    """Drive episodes with the keyboard: W forward, A left, D right, S stop, H hint, Q quit."""
    from navtune.data.collectors.interactive import collect_interactive

    import_plugin_modules(plugin)
    with _user_errors():
        src = _source(task, episodes, split, width, height, depth, limit, max_steps, renderer, skybox_dir, backend)
        summary = collect_interactive(src.env_factory, src.episodes, out, src.info, keys=keys,
                                      max_steps=max_steps or int(src.info.get("max_steps") or 500),
                                      show_frame=not no_frame, depth=depth)
    _done(summary)


@app.command("dagger")
def dagger(
    task: str | None = _TASK,
    backend: str | None = _BACKEND,
    episodes: Path = _EPISODES,
    out: Path = _OUT,
    policy: str = typer.Option("vlm", "--policy", help="vlm | random | forward"),
    model: Path | None = typer.Option(None, "--model", help="model folder (policy vlm)"),
    format: str = typer.Option("r2r-lowlevel", "--format", help="prompt format of the vlm policy"),
    device: str = typer.Option("cpu", "--device"),
    beta: float = typer.Option(0.0, "--beta", min=0.0, max=1.0, help="probability of executing the expert's action"),
    seed: int = typer.Option(0, "--seed"),
    split: str = _SPLIT,
    width: int = _WIDTH,
    height: int = _HEIGHT,
    depth: bool = _DEPTH,
    limit: int | None = _LIMIT,
    max_steps: int | None = _MAX_STEPS,
    renderer: str = _RENDERER,
    skybox_dir: Path | None = _SKYBOX,
    quiet: bool = _QUIET,
    plugin: list[str] = PLUGIN_OPTION,
) -> None:
    """Run a policy and store the expert's action at every visited state (DAgger relabelling)."""
    from navtune.agents.policy import make_policy
    from navtune.data.collectors.dagger import collect_policy

    import_plugin_modules(plugin)
    with _user_errors():
        src = _source(task, episodes, split, width, height, depth, limit, max_steps, renderer, skybox_dir, backend)
    space = src.info["action_space"]
    if policy == "vlm":
        from navtune.agents.prompts import format_class

        if model is None:
            raise typer.BadParameter("policy vlm needs --model", param_hint="--model")
        with _user_errors():
            speaks = format_class(format).action_spaces
        if space not in speaks:
            raise typer.BadParameter(f"policy speaks {' / '.join(speaks)} actions but task {task or backend} uses {space}")
        pol = make_policy("vlm", model_path=str(model), format=format, device=device, action_space=space)
    elif policy == "random":
        pol = make_policy("random", action_space=space, seed=seed, include_stop=False)
    else:
        pol = make_policy(policy, action_space=space)
    if pol.action_space != space:
        raise typer.BadParameter(f"policy speaks {pol.action_space} actions but task {task or backend} uses {space}")
    with _user_errors():
        summary = collect_policy(src.env_factory, src.episodes, pol, out, src.info, beta=beta, seed=seed,
                                 max_steps=max_steps or int(src.info.get("max_steps") or 500), depth=depth,
                                 progress=not quiet)
    _done(summary)


@app.command("r2r")
def r2r(
    split: str = typer.Option(..., "--split", help="R2R split: train, val_seen, val_unseen (test has no goals)"),
    data_dir: Path = typer.Option(..., "--data-dir", help="folder with R2R_<split>.json and connectivity/"),
    out: Path = _OUT,
    renderer: str = typer.Option("none", "--renderer",
                                 help="view renderer for frames: none (labels only), house (house graphs), "
                                      "mp3d (needs Matterport3D skyboxes)"),
    skybox_dir: Path | None = typer.Option(None, "--skybox-dir", help="Matterport3D skyboxes (renderer mp3d)"),
    width: int = _WIDTH,
    height: int = _HEIGHT,
    depth: bool = typer.Option(False, "--depth/--no-depth", help="also write depth frames (needs depth skyboxes)"),
    limit: int | None = typer.Option(None, "--limit", help="only the first N instructions"),
    preset: str | None = typer.Option(None, "--preset", help="simulator setup: r2r (discretised views; default) | "
                                      "seed1 (seed 1's continuous headings and camera; replaces --width/--height)"),
    workers: int = _WORKERS,
    gamma: float | None = _GAMMA,
    success_bonus: float | None = _BONUS,
    collision_penalty: float | None = _COLL,
    slack_penalty: float | None = _SLACK,
    quiet: bool = _QUIET,
) -> None:
    """Low-level BFS expert labels (Left/Right/Move/Stop) for every instruction of an R2R split."""
    from navtune.data.collectors.r2r import collect_r2r
    from navtune.data.collectors.renderers import renderer_factory

    from navtune.tasks.r2r.setups import get_setup

    with _user_errors():
        camera = get_setup(preset).camera if preset is not None else None
        factory = renderer_factory(renderer, data_dir=data_dir, skybox_dir=skybox_dir, width=width, height=height,
                                   depth=depth, camera=camera)
        summary = collect_r2r(
            data_dir, split, out, renderer_factory=factory, renderer_name=None if factory is None else renderer,
            workers=workers, limit=limit, depth=depth, preset=preset,
            reward=_reward(gamma, success_bonus, collision_penalty, slack_penalty), progress=not quiet,
        )
    _done(summary)


@app.command("export-hf")
def export_hf(
    dataset: Path = typer.Argument(..., help="navtune dataset folder"),
    out: Path = typer.Option(..., "--out", help="where to save_to_disk the Hugging Face dataset"),
    level: str = typer.Option("step", "--level", help="step (one row per step) or episode"),
) -> None:
    """Save a dataset folder as a self-contained Hugging Face dataset (frames embedded)."""
    from navtune.data.hf import save_hf

    with _user_errors():
        path = save_hf(dataset, out, level=level)
    typer.echo(f"saved {path} (load with datasets.load_from_disk)")


@app.command("verify")
def verify(dataset: Path = typer.Argument(..., help="navtune dataset folder")) -> None:
    """Check a dataset: every manifest line (a torn last line too) and every frame (decodes as a PNG of the
    dataset's one size); exits 1 naming the first problem."""
    from navtune.core.errors import one_line
    from navtune.data.format import DatasetFormatError, EpisodeDataset

    try:
        ds = EpisodeDataset(dataset)
        n = ds.verify()
    except DatasetFormatError as e:  # the check's verdict (exit 1), not a usage error (exit 2)
        typer.echo(f"error: {one_line(e)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{dataset}: {len(ds)} episodes, {ds.num_steps} steps, {n} frames ok")
