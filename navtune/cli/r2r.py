"""`navtune r2r ...`: replay, score and expert over R2R-format data folders."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer

app = typer.Typer(help="Room-to-Room on navigation graphs: replay, score, expert.", no_args_is_help=True)

_PREDS = typer.Option(..., "--preds", help="R2R prediction file [{instr_id, trajectory}].")
_SPLIT = typer.Option("val_unseen", "--split", help="Split name: reads <data-dir>/R2R_<split>.json.")
_DATA = typer.Option(..., "--data-dir", help="Folder with connectivity/<scan>_connectivity.json and R2R_<split>.json.")
_PRESET = typer.Option(None, "--preset", help="Simulator setup: r2r (discretised views, the default) | seed1 "
                       "(seed 1's continuous headings, VFOV 105°); see docs/r2r.md.")
_HEADINGS = typer.Option(None, "--headings", help="discrete | continuous (overrides the preset's).")
_VFOV = typer.Option(None, "--vfov", help="Camera vertical fov in degrees (overrides the preset's; horizontal "
                     "fov = vfov x 4/3, MatterSim's navigability formula).")


from navtune.cli.errors import fail as _fail  # noqa: E402  (one line, exit 2)


def _setup(preset: str | None, headings: str | None, vfov: float | None):
    """The preset's R2RSetup with --headings / --vfov applied (one clear error for bad values)."""
    import dataclasses
    import math

    from navtune.tasks.r2r.setups import get_setup

    if vfov is not None and not 0.0 < vfov < 180.0:
        _fail(ValueError(f"--vfov must be in (0, 180) degrees (got {vfov:g})"))
    try:
        setup = get_setup(preset)
        nav = setup.navigator
        if headings is not None:
            nav = dataclasses.replace(nav, headings=headings)
        if vfov is not None:
            nav = dataclasses.replace(nav, camera=dataclasses.replace(nav.camera, vfov=math.radians(vfov)))
    except (KeyError, ValueError) as e:
        _fail(ValueError(str(e).strip('"')))
    return dataclasses.replace(setup, navigator=nav)


def _load(data_dir: Path, split: str):
    """The split's episodes and graphs; an empty split is an error (there is nothing to score or replay)."""
    from navtune.tasks.r2r import R2RDataError, load_graphs, load_r2r_split, split_path

    episodes = load_r2r_split(data_dir, split)
    if not episodes:
        raise R2RDataError(split_path(data_dir, split), "holds no episodes (an empty list)")
    return episodes, load_graphs(data_dir, {e.scan for e in episodes})


@app.command()
def replay(
    preds: Path = _PREDS,
    split: str = _SPLIT,
    data_dir: Path = _DATA,
    actions: Path | None = typer.Option(None, "--actions", help="The actions that produced PREDS ({path_id or "
                                        "instr_id: [action, ...]}): re-execute them and compare the states."),
    preset: str | None = _PRESET,
    headings: str | None = _HEADINGS,
    vfov: float | None = _VFOV,
    show: int = typer.Option(10, help="How many mismatches to list."),
    strict: bool = typer.Option(False, help="Exit with status 1 when there is any mismatch."),
) -> None:
    """Re-execute predicted trajectories with MatterSim's low-level navigation; count mismatches.

    Without --actions each step must be reachable by one simulator action from the previous one; with
    --actions the actions are executed from each episode's start and every recorded (viewpoint, heading)
    is compared with the simulator's (heading tolerance 1e-4 rad). The last line is `mismatches: N`."""
    from navtune.tasks.r2r import R2RDataError, load_predictions
    from navtune.tasks.r2r.predictions import actions_by_instr_id, load_actions, read_predictions
    from navtune.tasks.r2r.replay import replay_predictions

    setup = _setup(preset, headings, vfov)
    acts = None
    try:
        episodes, graphs = _load(data_dir, split)
        if actions is None:
            predictions = load_predictions(preds)
        else:
            entries = read_predictions(preds)
            predictions = load_predictions(preds, duplicates="last")
            if len(entries) != len(predictions):
                typer.echo(f"warning: {len(entries) - len(predictions)} repeated instr_ids in {preds}; the last entry "
                           "of each is replayed (an actions file keeps the last run)", err=True)
    except R2RDataError as e:
        _fail(e)
    by_id = {e.instr_id: e for e in episodes}
    extra = [i for i in predictions if i not in by_id]
    if extra:
        typer.echo(f"warning: ignoring {len(extra)} predictions not in split {split!r}", err=True)
    if len(extra) == len(predictions):
        _fail(R2RDataError(preds, f"none of its {len(predictions)} instr_ids is an episode of split {split!r}",
                           field="instr_id"))
    missing = sum(1 for i in by_id if i not in predictions)
    if actions is not None:
        try:
            acts = actions_by_instr_id(load_actions(actions), [i for i in predictions if i in by_id], actions)
        except R2RDataError as e:
            _fail(e)
    nav = setup.navigator
    typer.echo(f"setup: {nav.headings} headings, vfov {math.degrees(nav.camera.vfov):g}°, "
               f"hfov {math.degrees(nav.camera.hfov):g}° ({'re-executing actions' if acts else 'trajectories only'})")
    report = replay_predictions(predictions, by_id, graphs, progress=sys.stderr.isatty(), config=nav, actions=acts)
    for m in report.mismatches[:show]:
        typer.echo(f"  {m.instr_id} step {m.step}: {m.reason}")
    gap = f" ({missing} of the split's {len(by_id)} have no prediction)" if missing else ""
    typer.echo(f"episodes: {report.episodes}{gap}  steps: {report.steps}")
    typer.echo(f"mismatches: {report.num_mismatches}")
    if strict and report.num_mismatches:
        raise typer.Exit(1)


@app.command()
def score(
    preds: Path = _PREDS,
    split: str = _SPLIT,
    data_dir: Path = _DATA,
    out: Path | None = typer.Option(None, "--out", help="Write per-episode metrics (JSON list) here, atomically."),
    spl_reference: str = typer.Option(
        "shortest", "--spl-reference",
        help="SPL's reference length: 'shortest' (official: shortest-path distance) or 'path' (reference path length)."),
    success_radius: float = typer.Option(3.0, help="Success radius in metres."),
) -> None:
    """Official R2R metrics; the last line is one JSON object of averages (rates as fractions)."""
    from navtune.core.io import atomic_write_json
    from navtune.tasks.r2r import R2RDataError, load_predictions
    from navtune.tasks.r2r.score import score_predictions

    if spl_reference not in ("shortest", "path"):
        _fail(ValueError(f"--spl-reference must be 'shortest' or 'path', not {spl_reference!r}"))
    try:
        episodes, graphs = _load(data_dir, split)
        predictions = load_predictions(preds)
        result = score_predictions(predictions, episodes, graphs, spl_reference, success_radius, preds_file=preds,
                                   progress=sys.stderr.isatty())
    except R2RDataError as e:
        _fail(e)
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    if out is not None:
        atomic_write_json(out, result.per_episode)
    s = result.summary
    typer.echo("  ".join(f"{k}={s[k]:.4f}" for k in ("pl", "ne", "osr", "sr", "spl", "ndtw", "sdtw", "cls", "steps")))
    typer.echo(json.dumps(s))


@app.command()
def expert(
    split: str = _SPLIT,
    data_dir: Path = _DATA,
    out: Path | None = typer.Option(None, "--out", help="Write the expert trajectories as an R2R prediction file."),
    preset: str | None = _PRESET,
    headings: str | None = _HEADINGS,
    vfov: float | None = _VFOV,
) -> None:
    """Shortest low-level action sequences (Left/Right/Move/Stop) from each start to its goal: statistics.

    A path needs a detour when one of its hops is never the viewpoint closest to the view centre at any
    heading the agent can face there (Move cannot take it)."""
    from navtune.tasks.r2r import R2RDataError, write_predictions
    from navtune.tasks.r2r.expert import split_expert

    setup = _setup(preset, headings, vfov)
    try:
        episodes, graphs = _load(data_dir, split)
    except R2RDataError as e:
        _fail(e)
    stats, _, trajs = split_expert(episodes, graphs, progress=sys.stderr.isatty(), config=setup.navigator)
    s = stats.summary()
    pct = 100.0 * s["detours"] / s["paths"] if s["paths"] else 0.0
    typer.echo(f"setup: {setup.navigator.headings} headings, vfov {math.degrees(setup.camera.vfov):g}°")
    typer.echo(f"paths: {s['paths']}  goal reachable: {s['reachable']}  "
               f"followable with Move-to-nearest: {s['followable']}  need a detour: {s['detours']} ({pct:.1f}%)")
    typer.echo(f"optimal actions incl. Stop: mean {s['mean_actions']:.2f}  max {s['max_actions']}")
    if out is not None:
        write_predictions(trajs, out)
        typer.echo(f"wrote {len(trajs)} expert trajectories to {out}")
    typer.echo(json.dumps(s))
