"""R2R low-level labels: every val_unseen instruction labelled and replayable to the goal; frames from
a view renderer; kill -9 mid-collection then resume gives the same dataset as an uninterrupted run."""
from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from navtune.data.collectors.r2r import collect_r2r
from navtune.data.format import EpisodeDataset

REPO = Path(__file__).resolve().parents[1]


def test_val_unseen_labels_reach_goal(r2r_data_dir, tmp_path):
    from navtune.envs.graph import GraphNavEnv
    from navtune.tasks.r2r import load_r2r_split

    summary = collect_r2r(r2r_data_dir, "val_unseen", tmp_path / "vu", progress=False)
    assert summary.written == 2349
    episodes = {e.instr_id: e for e in load_r2r_split(r2r_data_dir, "val_unseen")}
    ds = EpisodeDataset(tmp_path / "vu")
    assert sorted(ds.episode_ids) == sorted(episodes) and len(ds) == 2349
    env = GraphNavEnv.for_r2r(r2r_data_dir, max_steps=100)
    for rec in ds:
        ep = episodes[rec["episode_id"]]
        # replay the stored labels in the graph world from the episode's own start (not the stored poses)
        obs = env.reset(ep)
        for s in rec["steps"]:
            assert s["info"]["viewpoint"] == obs.info["viewpoint"]
            assert s["info"]["heading_index"] == obs.info["heading_index"]
            assert s["action"] in obs.allowed_actions
            assert s["geodesic_distance"] == pytest.approx(obs.info["distance_to_goal"])
            res = env.step(s["action"])
            assert not res.collided
            obs = res.observation
        assert res.done and res.info["stopped"] and res.info["success"]
        assert obs.info["distance_to_goal"] < 3.0
        assert rec["success"] is True and rec["instruction"] == ep.instruction and rec["scene"] == ep.scan
        # expert returns: every step of an expert episode has a positive return
        assert all(s["return"] > 0 for s in rec["steps"])


def test_seed1_preset_labels_keep_the_start_heading_and_reexecute(r2r_data_dir, tmp_path):
    """`collect r2r --preset seed1`: continuous headings (no snapping), labels from the teacher on the start
    heading's grid; executing them in that setup reproduces the stored poses and reaches the goal."""
    import json
    import math

    from navtune.cli import app
    from navtune.graph import LowLevelNavigator
    from navtune.tasks.r2r import load_graphs, load_r2r_split
    from navtune.tasks.r2r.replay import reexecute_trajectory
    from navtune.tasks.r2r.setups import get_setup
    from typer.testing import CliRunner

    out = tmp_path / "s1"
    r = CliRunner().invoke(app, ["collect", "r2r", "--split", "val_seen", "--data-dir", str(r2r_data_dir), "--out",
                                 str(out), "--limit", "12", "--preset", "seed1", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "dataset_info.json").read_text())["preset"] == "seed1"
    episodes = {e.instr_id: e for e in load_r2r_split(r2r_data_dir, "val_seen")}
    graphs = load_graphs(r2r_data_dir, {episodes[i].scan for i in EpisodeDataset(out).episode_ids})
    config = get_setup("seed1").navigator
    for rec in EpisodeDataset(out):
        ep = episodes[rec["episode_id"]]
        steps = rec["steps"]
        assert steps[0]["pose"]["heading"] == pytest.approx(ep.heading, abs=1e-12)
        traj = [[s["info"]["viewpoint"], s["pose"]["heading"], 0.0] for s in steps]
        acts = [s["action"] for s in steps]
        nav = LowLevelNavigator(graphs[ep.scan], config=config)
        assert reexecute_trajectory(nav, ep.instr_id, ep.start, ep.heading, traj, acts)[1] == []
        assert acts[-1] == "Stop" and traj[-1][0] == ep.goal and len(acts) <= 32
        assert {round(math.degrees(h) % 30, 6) for _, h, _ in traj} == {round(math.degrees(ep.heading) % 30, 6)}


def test_test_split_without_goals_is_refused(r2r_data_dir, tmp_path):
    from navtune.tasks.r2r import R2RDataError

    with pytest.raises(R2RDataError, match="no goal"):
        collect_r2r(r2r_data_dir, "test", tmp_path / "t", limit=5, progress=False)


def test_unreachable_goals_are_reported_not_written(r2r_data_dir, tmp_path):
    # train path 2150 in scan cV4RVeZvu5T cannot be followed with Left/Right/Move (low-level semantics)
    s = collect_r2r(r2r_data_dir, "train", tmp_path / "cv", scans=["cV4RVeZvu5T"], progress=False)
    assert s.total == 255 and s.written == 252
    assert sorted(f.episode_id for f in s.failed) == ["2150_0", "2150_1", "2150_2"]
    assert "cannot be reached" in s.line()
    assert "2150_0" not in EpisodeDataset(tmp_path / "cv").episode_ids
    again = collect_r2r(r2r_data_dir, "train", tmp_path / "cv", scans=["cV4RVeZvu5T"], progress=False)
    assert again.skipped == 252 and again.written == 0 and len(again.failed) == 3


def _synthetic_r2r(root: Path, n_paths: int = 24, num_viewpoints: int = 6) -> Path:
    """A synthetic scan with skyboxes plus an R2R_train.json of paths along it."""
    from navtune.envs.mp3d.synthetic import write_synthetic_scan
    from navtune.tasks.r2r import write_r2r_split

    scan = write_synthetic_scan(root, "synth", num_viewpoints=num_viewpoints, face_size=64)
    rng = np.random.default_rng(0)
    items = []
    for pid in range(n_paths):
        a, b = sorted(rng.choice(num_viewpoints, 2, replace=False))
        if rng.random() < 0.5:
            a, b = b, a
        step = 1 if b > a else -1
        path = [scan.viewpoints[i] for i in range(a, b + step, step)]
        items.append({"distance": 2.0 * abs(b - a), "scan": "synth", "path_id": pid, "path": path,
                      "heading": float(rng.uniform(0, 2 * np.pi)), "instructions": [f"walk {pid}", f"go {pid}"]})
    write_r2r_split(items, root / "R2R_train.json")
    return root


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from navtune.cli import main; main()", "collect", *args]


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_renderer_frames_and_kill9_resume(tmp_path):
    data = _synthetic_r2r(tmp_path / "data")
    args = ["r2r", "--split", "train", "--data-dir", str(data), "--renderer", "mp3d",
            "--skybox-dir", str(data / "skyboxes"), "--width", "64", "--height", "48", "-q"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref = tmp_path / "ref"
    subprocess.run(_cli(*args, "--out", str(ref)), check=True, env=env, cwd=REPO, timeout=120)
    ds = EpisodeDataset(ref)
    assert len(ds) == 48 and ds.verify() == ds.num_steps  # one rgb frame per step
    rgb = ds.load_rgb(ds[0], 0)
    assert rgb.shape == (48, 64, 3) and rgb.std() > 0
    assert all(r["success"] for r in ds)

    out = tmp_path / "killed"
    rng = random.Random(os.getpid())
    kill_after = rng.randint(3, 40)  # committed episodes before the SIGKILL
    proc = subprocess.Popen(_cli(*args, "--out", str(out)), env=env, cwd=REPO)
    manifest = out / "manifest.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and manifest.read_bytes().count(b"\n") >= kill_after:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "collection finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = EpisodeDataset(out)
    assert kill_after <= len(partial) < 48
    subprocess.run(_cli(*args, "--out", str(out)), check=True, env=env, cwd=REPO, timeout=120)
    assert _snapshot(out) == _snapshot(ref)
