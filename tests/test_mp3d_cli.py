"""`navtune mp3d sheet` (synthetic and real layout) and `navtune mp3d check`, plus the skybox renderer in the
R2R graph world (GraphNavEnv frames follow Left/Right)."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from navtune.cli import app
from navtune.envs.mp3d import CameraSpec, SkyboxViews
from navtune.envs.mp3d.skybox import face_path
from navtune.envs.mp3d.synthetic import FACE_COLORS, write_synthetic_scan

runner = CliRunner()


def test_sheet_synthetic_writes_twelve_views(tmp_path):
    out = tmp_path / "sheet.png"
    res = runner.invoke(app, ["mp3d", "sheet", "--synthetic", "--out", str(out), "--width", "64", "--height", "48",
                              "--face-size", "64", "--workdir", str(tmp_path / "scan")])
    assert res.exit_code == 0, res.output
    im = np.asarray(Image.open(out))
    assert im.shape[1] == 6 * 64 and im.shape[0] > 2 * 48
    assert (tmp_path / "scan" / "skyboxes" / "synthetic0" / "matterport_skybox_images").is_dir()


def test_sheet_real_layout_shows_the_faces_in_turn(tmp_path):
    scan = write_synthetic_scan(tmp_path, scan="s1", num_viewpoints=1, face_size=64, kind="marker", yaws=[0.0])
    out = tmp_path / "s.png"
    res = runner.invoke(app, ["mp3d", "sheet", "--skybox-dir", str(scan.skybox_root), "--data-dir", str(tmp_path),
                              "--scan", "s1", "--out", str(out), "--width", "60", "--height", "40",
                              "--face-size", "64", "--columns", "12"])
    assert res.exit_code == 0, res.output
    im = np.asarray(Image.open(out).convert("RGB")).astype(int)
    top = im.shape[0] - 40  # the single row of views sits at the bottom
    for i, face in zip((0, 3, 6, 9), (3, 4, 1, 2)):  # headings 0, 90, 180, 270
        centre = im[top + 20, i * 60 + 30]
        assert np.abs(centre - FACE_COLORS[face]).max() < 30, (i, centre)


def test_sheet_errors_are_clear(tmp_path):
    res = runner.invoke(app, ["mp3d", "sheet", "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "--synthetic" in res.output
    res = runner.invoke(app, ["mp3d", "sheet", "--skybox-dir", str(tmp_path), "--data-dir", str(tmp_path),
                              "--scan", "nope", "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "nope_connectivity.json" in res.output


def test_check_reports_missing_faces(tmp_path):
    scan = write_synthetic_scan(tmp_path, scan="s2", num_viewpoints=2, face_size=32, kind="marker")
    ok = runner.invoke(app, ["mp3d", "check", "--skybox-dir", str(scan.skybox_root), "--data-dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    face_path(scan.skybox_root, "s2", scan.viewpoints[1], 5).unlink()
    bad = runner.invoke(app, ["mp3d", "check", "--skybox-dir", str(scan.skybox_root), "--data-dir", str(tmp_path)])
    assert bad.exit_code == 1 and scan.viewpoints[1] in bad.output and "1 viewpoint" in bad.output


def test_graph_env_frames_come_from_skyboxes(tmp_path):
    from navtune.envs.graph import GraphNavEnv, ViewRenderer

    scan = write_synthetic_scan(tmp_path, scan="g1", num_viewpoints=3, face_size=64, kind="marker",
                                yaws=[0.0, 0.0, 0.0])
    views = SkyboxViews(scan.skybox_root, tmp_path, CameraSpec(80, 60), face_size=64)
    assert isinstance(views.for_scan("g1"), ViewRenderer)
    env = GraphNavEnv.for_r2r(tmp_path, renderer=views.for_scan)
    # viewpoints lie along +x, 2 m apart: heading 90° looks at the next one
    obs = env.reset({"scan": "g1", "path": scan.viewpoints, "heading": math.radians(90), "instr_id": "e0"})
    assert obs.rgb.shape == (60, 80, 3)
    assert np.abs(obs.rgb[30, 40].astype(int) - FACE_COLORS[4]).max() < 30  # face 4 is 90° right of face 3
    r = env.step("Right")
    assert np.abs(r.observation.rgb[30, 40].astype(int) - FACE_COLORS[4]).max() < 30  # 120°: still face 4
    r = env.step("Right")
    assert np.abs(r.observation.rgb[30, 40].astype(int) - FACE_COLORS[1]).max() < 30  # 150°: face 1 (behind 3)
    r = env.step("Left")
    r = env.step("Left")
    r = env.step("Move")
    assert r.observation.info["viewpoint"] == scan.viewpoints[1]
    assert np.abs(r.observation.rgb[30, 40].astype(int) - FACE_COLORS[4]).max() < 30


def test_eval_runs_on_skybox_frames(tmp_path):
    """`navtune eval --renderer mp3d` on a synthetic scan in the real layout: the oracle succeeds, frames saved."""
    from navtune.tasks.r2r.data import write_r2r_split

    scan = write_synthetic_scan(tmp_path, scan="syn1", num_viewpoints=3, face_size=48, kind="scene")
    write_r2r_split([{"distance": 4.0, "scan": "syn1", "path_id": 1, "path": scan.viewpoints, "heading": 0.0,
                      "instructions": ["walk east to the end"]}], tmp_path / "R2R_synth.json")
    out = tmp_path / "run"
    res = runner.invoke(app, ["eval", "--agent", "oracle", "--backend", "graph", "--data-dir", str(tmp_path),
                              "--split", "synth", "--renderer", "mp3d", "--skybox-dir", str(scan.skybox_root),
                              "--out", str(out), "--save-frames", "1", "--no-epa"])
    assert res.exit_code == 0, res.output
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["sr"] == 1.0 and summary["episodes"] == 1
    assert any((out / "frames").rglob("*.png"))
