"""`navtune mp3d ...` (Matterport3D skybox views) and `navtune habitat ...` (habitat datasets / backend check).

Heavy imports stay inside the commands; nothing here imports habitat_sim or MatterSim unless asked to.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

mp3d_app = typer.Typer(help="Matterport3D skybox views for the R2R graph world.", no_args_is_help=True)
habitat_app = typer.Typer(help="Habitat-Sim backend: dataset conversion and installation check.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(mp3d_app, name="mp3d")
    app.add_typer(habitat_app, name="habitat")


def _fail(msg: str) -> None:
    from navtune.cli.errors import fail

    fail(msg)


def _sheet_image(views: list, headings_deg: list[float], columns: int, title: str):
    """Grid of views, each labelled with its heading."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    h, w = views[0].shape[:2]
    label_h = max(14, h // 12)
    rows = math.ceil(len(views) / columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + label_h) + label_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, label_h - 4))
    draw.text((4, 1), title, fill=(0, 0, 0), font=font)
    for i, (img, deg) in enumerate(zip(views, headings_deg)):
        x, y = (i % columns) * w, label_h + (i // columns) * (h + label_h)
        draw.text((x + 4, y + 1), f"heading {deg:.0f}°", fill=(0, 0, 0), font=font)
        sheet.paste(Image.fromarray(np.asarray(img, dtype=np.uint8)), (x, y + label_h))
    return sheet


@mp3d_app.command("sheet")
def sheet(
    out: Path = typer.Option(..., "--out", help="PNG file to write"),
    skybox_dir: Optional[Path] = typer.Option(None, "--skybox-dir", help="folder of <scan>/matterport_skybox_images"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="R2R folder with connectivity/ (or the connectivity folder)"),
    scan: Optional[str] = typer.Option(None, "--scan"),
    viewpoint: Optional[str] = typer.Option(None, "--viewpoint", help="viewpoint (image) id; default: the scan's first"),
    synthetic: bool = typer.Option(False, "--synthetic", help="generate a synthetic scan in the real layout and render it"),
    workdir: Optional[Path] = typer.Option(None, "--workdir", help="where --synthetic writes its scan (default: temp)"),
    width: int = typer.Option(320, "--width"),
    height: int = typer.Option(240, "--height"),
    vfov: float = typer.Option(60.0, "--vfov", help="vertical field of view, degrees (MatterSim R2R: 60)"),
    elevation: float = typer.Option(0.0, "--elevation", help="camera elevation, degrees (up positive)"),
    face_size: int = typer.Option(512, "--face-size", help="decode faces at this size"),
    columns: int = typer.Option(6, "--columns"),
) -> None:
    """Render the 12 headings (30° apart, MatterSim's discretised views) at one viewpoint into a PNG sheet.
    Example: navtune mp3d sheet --synthetic --out sheet.png"""
    import io
    import tempfile

    from navtune.core.io import atomic_write_bytes
    from navtune.envs.mp3d import CameraSpec, SkyboxError, SkyboxViews

    tmp = None
    if synthetic:
        from navtune.envs.mp3d.synthetic import write_synthetic_scan

        root = workdir
        if root is None:
            tmp = tempfile.TemporaryDirectory(prefix="navtune-mp3d-")
            root = Path(tmp.name)
        syn = write_synthetic_scan(root, scan=scan or "synthetic0", face_size=face_size)
        skybox_dir, data_dir, scan = syn.skybox_root, syn.connectivity_dir, syn.scan
        viewpoint = viewpoint or syn.viewpoints[0]
    elif skybox_dir is None or data_dir is None or scan is None:
        _fail("give --skybox-dir, --data-dir and --scan (or --synthetic)")
    try:
        views = SkyboxViews(skybox_dir, data_dir, CameraSpec(width, height, math.radians(vfov)), face_size=face_size)
        renderer = views.for_scan(scan)
        vp = viewpoint or next(iter(renderer.poses))
        headings = [30.0 * i for i in range(12)]
        imgs = [renderer.render(vp, math.radians(h), math.radians(elevation))[0] for h in headings]
    except SkyboxError as e:
        _fail(str(e))
    finally:
        if tmp is not None:
            tmp.cleanup()
    title = f"{scan} / {vp}  ({width}x{height}, vfov {vfov:g}°, elevation {elevation:g}°)"
    buf = io.BytesIO()
    _sheet_image(imgs, headings, columns, title).save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    typer.echo(f"wrote {out} (12 views of {scan}/{vp})")


@mp3d_app.command("check")
def check(
    skybox_dir: Path = typer.Option(..., "--skybox-dir", help="folder of <scan>/matterport_skybox_images"),
    data_dir: Path = typer.Option(..., "--data-dir", help="R2R folder with connectivity/"),
    scans: Optional[list[str]] = typer.Option(None, "--scan", help="scan(s) to check; default: all in connectivity/"),
) -> None:
    """Check that every included viewpoint of the scans has its skybox faces (before a long evaluation)."""
    import json

    from rich.console import Console
    from rich.table import Table

    from navtune.envs.mp3d.skybox import face_path, small_path

    conn = data_dir / "connectivity" if (data_dir / "connectivity").is_dir() else data_dir
    names = scans or sorted(p.name[: -len("_connectivity.json")] for p in conn.glob("*_connectivity.json"))
    if not names:
        _fail(f"{conn}: no <scan>_connectivity.json files")
    table = Table("scan", "viewpoints", "with skybox", "missing (first)")
    total_missing = 0
    for s in names:
        path = conn / f"{s}_connectivity.json"
        if not path.is_file():
            _fail(f"{path}: connectivity file not found")
        vps = [e["image_id"] for e in json.loads(path.read_text()) if e.get("included", True)]
        missing = [v for v in vps if not (all(face_path(skybox_dir, s, v, k).is_file() for k in range(6))
                                          or small_path(skybox_dir, s, v).is_file())]
        total_missing += len(missing)
        table.add_row(s, str(len(vps)), str(len(vps) - len(missing)), missing[0] if missing else "")
    Console().print(table)
    if total_missing:  # a check that found gaps (exit 1), not bad input (exit 2)
        typer.secho(f"error: {total_missing} viewpoint(s) without skybox images under {skybox_dir}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo("all viewpoints have skybox images")


@habitat_app.command("info")
def info() -> None:
    """Say whether the optional simulators (habitat-sim, MatterSim) can be imported here."""
    from navtune.envs.habitat import HabitatSimUnavailable, import_habitat_sim
    from navtune.envs.mattersim_adapter import MatterSimUnavailable, import_mattersim

    try:
        hs = import_habitat_sim()
        typer.echo(f"habitat-sim {getattr(hs, '__version__', '?')}: available")
    except HabitatSimUnavailable as e:
        typer.echo(f"habitat-sim: not available — {e}")
    try:
        import_mattersim()
        typer.echo("MatterSim: available")
    except MatterSimUnavailable as e:
        typer.echo(f"MatterSim: not available — {e}")


@habitat_app.command("convert-objectnav")
def convert_objectnav(
    data_root: Path = typer.Option(..., "--data-root", help="e.g. data/datasets/objectnav/hm3d/v1"),
    split: str = typer.Option("val", "--split"),
    out: Path = typer.Option(..., "--out", help="navtune ObjectNav episode file (.jsonl or .json)"),
    scenes: Optional[list[str]] = typer.Option(None, "--scene", help="only these scenes (e.g. TEEsavR23oF)"),
    success_distance: float = typer.Option(1.0, "--success-distance", help="metres to the nearest view point (habitat challenge: 0.1)"),
    max_steps: int = typer.Option(500, "--max-steps"),
    limit: Optional[int] = typer.Option(None, "--limit", help="keep the first N episodes"),
) -> None:
    """Habitat ObjectNav `{split}.json.gz` + `content/*.json.gz` -> navtune ObjectNav episodes (navtune frame).
    Example: navtune habitat convert-objectnav --data-root data/datasets/objectnav/hm3d/v1 --split val --out val.jsonl"""
    from collections import Counter

    from navtune.tasks.habitat_datasets import HabitatDataError, load_objectnav_split
    from navtune.tasks.objectnav import write_episodes

    try:
        eps = load_objectnav_split(data_root, split, scenes, success_distance, max_steps)
    except HabitatDataError as e:
        _fail(str(e))
    if limit is not None:
        eps = eps[:limit]
    write_episodes(out, eps)
    cats = Counter(e.object_category for e in eps)
    typer.echo(f"wrote {len(eps)} episodes from {len({e.scene_id for e in eps})} scenes to {out}; "
               + ", ".join(f"{c} {n}" for c, n in cats.most_common()))
