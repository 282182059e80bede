"""`navtune house ...`: the embedded simulator — episodes, expert checks, maps and the sample sheet."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(help="Generated houses rendered by MiniWorld: episodes, expert, maps, sample sheet.",
                  no_args_is_help=True)

_SEEDS = typer.Option("0-9", "--seeds", help="House seeds: '0-99', '3,5,8' or '0-9,20-29'.")
_TASK = typer.Option("objectnav", "--task", help="objectnav or vln.")


def parse_seeds(text: str) -> list[int]:
    """--seeds as house seeds (navtune.envs.house.seeds), a bad value as typer's usage error."""
    from navtune.envs.house.seeds import parse_seeds as parse

    try:
        return parse(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _check_task(task: str) -> None:
    if task not in ("objectnav", "vln"):
        raise typer.BadParameter(f"--task must be 'objectnav' or 'vln', not {task!r}")


@app.command()
def episodes(
    task: str = _TASK,
    seeds: str = _SEEDS,
    out: Path = typer.Option(..., "--out", help="Output folder."),
    split: str = typer.Option("train", help="Split name (file names)."),
    per_house: int = typer.Option(2, "--per-house", help="Episodes (ObjectNav) or paths (VLN) per house."),
    success_distance: float = typer.Option(1.0, help="ObjectNav success distance (m)."),
    max_steps: int = typer.Option(500, help="ObjectNav step budget."),
) -> None:
    """Generate episodes: ObjectNav -> <out>/objectnav_<split>.jsonl; VLN -> an R2R data folder at <out>
    (connectivity/<scan>_connectivity.json + R2R_<split>.json)."""
    _check_task(task)
    seed_list = parse_seeds(seeds)
    if task == "objectnav":
        from tqdm import tqdm

        from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes
        from navtune.tasks.objectnav import write_episodes

        eps = list(tqdm(generate_objectnav_episodes(seed_list, per_house, success_distance, max_steps),
                        total=len(seed_list) * per_house, desc="ObjectNav episodes", disable=not sys.stderr.isatty()))
        path = write_episodes(out / f"objectnav_{split}.jsonl", eps)
        typer.echo(f"wrote {len(eps)} ObjectNav episodes over {len(seed_list)} houses to {path}")
    else:
        from navtune.envs.house.episodes.vln import generate_vln_dataset

        path = generate_vln_dataset(seed_list, out, split, per_house, progress=sys.stderr.isatty())
        n = len(json.loads(path.read_text()))
        typer.echo(f"wrote {n} VLN paths (3 instructions each) over {len(seed_list)} houses to {path}")


@app.command()
def expert(
    task: str = _TASK,
    seeds: str = _SEEDS,
    per_house: int = typer.Option(2, "--per-house"),
    workers: int = typer.Option(1, help="Processes (ObjectNav rollouts; each owns its GL context)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the averaged metrics here."),
) -> None:
    """Generate episodes for the seeds and run the expert on them, scored by navtune.metrics."""
    _check_task(task)
    seed_list = parse_seeds(seeds)
    if task == "objectnav":
        from navtune.envs.house.env import HouseEnvConfig
        from navtune.envs.house.parallel import run_expert
        from navtune.metrics.vln import average
        from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

        eps = list(generate_objectnav_episodes(seed_list, per_house))
        # physics only: the expert does not look, so frames are not rendered
        rows = run_expert(eps, workers, HouseEnvConfig(rgb=False, depth=False), progress=sys.stderr.isatty())
        metrics = average([r["metrics"] for r in rows])
        failed = [r["episode_id"] for r in rows if not r["success"]]
    else:
        import tempfile

        from navtune.envs.graph.env import GraphNavEnv
        from navtune.metrics.vln import average
        from navtune.envs.house.episodes.vln import generate_vln_dataset
        from navtune.tasks.r2r.data import load_r2r_split

        with tempfile.TemporaryDirectory() as tmp:
            generate_vln_dataset(seed_list, tmp, "check", per_house, progress=sys.stderr.isatty())
            eps = [e for e in load_r2r_split(tmp, "check") if e.instr_id.endswith("_0")]
            env = GraphNavEnv.for_r2r(tmp)
            rows, failed = [], []
            for e in eps:
                env.reset(e)
                while not env.step(env.expert_action()).done:
                    pass
                m = env.metrics()
                rows.append(m)
                if not m["sr"]:
                    failed.append(e.instr_id)
        metrics = average(rows)
    typer.echo(f"{task}: {len(rows)} episodes, expert " + "  ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    if failed:
        typer.echo(f"failed: {', '.join(failed[:20])}")
    if json_out:
        from navtune.core.io import atomic_write_json

        atomic_write_json(json_out, {"task": task, "episodes": len(rows), "metrics": metrics, "failed": failed})


@app.command()
def sheet(
    seed: int = typer.Option(1, "--seed"),
    out: Path = typer.Option(Path("docs/images/house_sample_sheet.png"), "--out"),
    width: int = typer.Option(320),
    height: int = typer.Option(240),
) -> None:
    """Sample sheet: six egocentric frames along an expert episode and the top-down map with its path."""
    from navtune.core.io import atomic_write_bytes
    from navtune.envs.house.sheet import sample_sheet

    import io

    img = sample_sheet(seed, width, height)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(out, buf.getvalue())
    out.chmod(0o644)  # a picture for the docs: readable by all (temp files are created 0600)
    typer.echo(f"wrote {out} ({img.width}x{img.height})")


@app.command("map")
def map_(
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out"),
    size: int = typer.Option(640),
    graph: bool = typer.Option(True, help="Draw the R2R-style navigation graph."),
) -> None:
    """Top-down map of a house (rooms, doors, objects and, optionally, its navigation graph)."""
    import io

    from PIL import Image

    from navtune.core.io import atomic_write_bytes
    from navtune.envs.house.layout import generate_house
    from navtune.envs.house.navgraph import build_house_graph
    from navtune.envs.house.topdown import render_topdown

    house = generate_house(seed)
    kw = {}
    if graph:
        g, _ = build_house_graph(house)
        kw = dict(nodes=g.positions, edges=[(g.position(a), g.position(b)) for a, b in g.edges()])
    buf = io.BytesIO()
    Image.fromarray(render_topdown(house, size, **kw)).save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    typer.echo(f"wrote {out}")


@app.command()
def info(seed: int = typer.Option(0, "--seed")) -> None:
    """Print a house's rooms, doors and objects as JSON."""
    from navtune.envs.house.layout import generate_house

    h = generate_house(seed)
    typer.echo(json.dumps({
        "scene_id": h.scene_id,
        "rooms": [{"type": r.room_type, "bounds": [r.x0, r.y0, r.x1, r.y1], "wall": r.wall_tex, "floor": r.floor_tex}
                  for r in h.rooms],
        "doors": [{"rooms": [h.rooms[d.a].room_type, h.rooms[d.b].room_type], "center": d.center,
                   "width": round(d.width, 2)} for d in h.doors],
        "objects": [{"id": o.object_id, "name": o.name, "category": o.category, "position": [o.x, o.y],
                     "radius": round(o.radius, 3), "room": h.rooms[o.room].room_type} for o in h.objects],
    }, indent=2))
