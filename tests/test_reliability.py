"""What navtune promises on hostile-but-fair input (issue 17, docs/reliability.md): nothing written or read
outside the folder it was given, nothing deleted that navtune did not write, one writer per folder, and one
clear `error: <file>: ... field ...` line (exit 2) for every bad input. Each test is named after the case
of the issue it reproduces; the crash and concurrency cases run real processes (kill -9, two writers)."""
from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from navtune.cli import app
from navtune.core.io import read_jsonl
from navtune.graph import NavGraph
from navtune.tasks.objectnav import ObjectGoal, ObjectNavEpisode, write_episodes
from navtune.tasks.r2r import R2REpisode, write_connectivity, write_r2r_split

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from navtune.cli import main; main()"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYGLET_HEADLESS": "1"}
runner = CliRunner()


def cli(*args) -> tuple[int, str, str]:
    """In-process `navtune ...`: (exit code, stdout, stderr); an escaped exception fails the test."""
    r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def one_error_line(err: str, *named: str) -> str:
    """The stderr of a refused command: its last line is `error: ...` naming each of `named`."""
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err
    assert "Traceback" not in err, err
    for n in named:
        assert str(n) in last, (n, last)
    return last


# ----------------------------------------------------------------------------------------------- data
def line_world(root: Path, distance=6.0, scan: str = "line") -> Path:
    """A-B-C-D-E along x (+ F off C): a hand-made R2R folder, split 'mini' with one path (2 instructions)."""
    g = NavGraph.from_edges(["A", "B", "C", "D", "E", "F"],
                            [(0, 0, 0), (2, 0, 0), (4, 0, 0), (6, 0, 0), (8, 0, 0), (4, 3, 0)],
                            [("A", "B"), ("B", "C"), ("C", "D"), ("D", "E"), ("C", "F")], name=scan)
    write_connectivity(g, root / "connectivity" / f"{scan}_connectivity.json")
    eps = [R2REpisode(f"1_{k}", 1, scan, ("A", "B", "C", "D"), 1.5708, "walk east", distance) for k in range(2)]
    write_r2r_split(eps, root / "R2R_mini.json")
    return root


def dataset(root: Path, n: int = 2, T: int = 3, size: tuple[int, int] = (16, 12), info: dict | None = None) -> Path:
    """A small continuous-action dataset with RGB-D frames."""
    from navtune.data.format import DatasetWriter, EpisodeMeta, StepData
    from navtune.envs.protocol import Pose

    rng = np.random.default_rng(0)
    w = DatasetWriter(root, {"task": "objectnav", "action_space": "continuous", **(info or {})})
    for e in range(n):
        b = w.builder(EpisodeMeta(f"ep{e}", "objectnav", "continuous", f"house_{e}", instruction="find a chair",
                                  target="chair", order=e, success_radius=1.0))
        for t in range(T):
            a = "stop" if t == T - 1 else "move_forward"
            b.add(StepData(a, Pose(0.0, 0.25 * t, 0.0, 0.0), rgb=rng.integers(0, 256, (size[1], size[0], 3), np.uint8),
                           depth=rng.uniform(0.5, 3, (size[1], size[0])).astype(np.float32),
                           geodesic_distance=2.0 - 0.25 * t, allowed_actions=("move_forward", "turn_left",
                                                                              "turn_right", "stop"), expert_action=a))
        w.commit(b.finish(Pose(0.0, 0.25 * (T - 1), 0.0, 0.0), 2.0 - 0.25 * (T - 1)))
    w.finalize()
    return root


def edit_manifest(root: Path, fn) -> None:
    rows = read_jsonl(root / "manifest.jsonl")
    fn(rows)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def fake_model(root: Path) -> Path:
    """Passes navtune's model-folder checks (the tiny config, a valid safetensors header, no tokenizer):
    enough for commands that must refuse their input before loading a model; should loading start anyway,
    it builds the tiny architecture (never a default-sized one) and fails on the missing tokenizer."""
    import torch
    from safetensors.torch import save_file

    from navtune.agents.models.tiny import tiny_config

    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(tiny_config("tiny").to_json_string())
    save_file({"w": torch.zeros(1)}, str(root / "model.safetensors"))
    return root


def objectnav_episode(eid: str) -> ObjectNavEpisode:
    return ObjectNavEpisode(eid, "house_3", (1.0, 2.0, 0.0), 0.5, "barrel", [ObjectGoal((3.0, 4.0, 0.0), 0.5, "o1")], 4.2)


def wait_for(pred, timeout: float = 120.0, proc=None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early (rc {proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.01)
    raise AssertionError("timed out")


def lock_pid(folder: Path, name: str = ".navtune.lock") -> int | None:
    try:
        text = (folder / name).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


# ============================================================================================ 1-3 paths
@pytest.mark.parametrize("bad", ["../../../PWNED", "/tmp/PWNED_navtune", "a/b"])
def test_case01_eval_save_frames_refuses_episode_ids_that_are_paths(tmp_path, bad):
    eps = tmp_path / "eps.jsonl"
    write_episodes(eps, [objectnav_episode("ok")])
    eps.write_text(eps.read_text() + json.dumps({**objectnav_episode("x").to_dict(), "episode_id": bad}) + "\n")
    out = tmp_path / "deep" / "er" / "run"
    code, _, err = cli("eval", "--backend", "house-objectnav", "--episodes", eps, "--agent", "forward",
                       "--save-frames", "2", "--no-epa", "--out", out)
    assert code == 2
    one_error_line(err, eps, "episode_id")
    assert not out.exists() and not list(tmp_path.rglob("PWNED*")) and not Path("/tmp/PWNED_navtune").exists()
    # the same rule where the id becomes a folder, whatever backend read it
    from navtune.core.errors import NavtuneError
    from navtune.evaluation.harness import safe_name

    with pytest.raises(NavtuneError, match="episode_id"):
        safe_name(bad, out / "episodes.jsonl", "episode_id")


@pytest.mark.parametrize("bad", ["../../../../etc/passwd", "/etc/passwd", "episodes/../../x.png"])
def test_case02_manifest_frame_paths_never_leave_the_dataset(tmp_path, bad):
    data = dataset(tmp_path / "ds")
    edit_manifest(data, lambda rows: rows[0]["steps"][1].update(rgb=bad))
    code, _, err = cli("collect", "export-hf", data, "--out", tmp_path / "hf")
    assert code == 2 and not (tmp_path / "hf").exists()
    one_error_line(err, data / "manifest.jsonl", "'rgb'")
    code, _, err = cli("collect", "verify", data)
    assert code == 1
    one_error_line(err, data / "manifest.jsonl", "'rgb'")
    code, _, err = cli("train", "sft", "--model", fake_model(tmp_path / "m"), "--data", data, "--out", tmp_path / "run")
    assert code == 2 and not (tmp_path / "run").exists()
    one_error_line(err, data / "manifest.jsonl", "'rgb'")


def test_case02_a_link_inside_the_dataset_is_not_followed_out(tmp_path):
    from navtune.data.format import EpisodeDataset, FrameError

    data = dataset(tmp_path / "ds")
    secret = tmp_path / "secret.png"
    (data / "episodes" / "ep0" / "rgb_0.png").rename(secret)
    (data / "episodes" / "ep0" / "rgb_0.png").symlink_to(secret)
    with pytest.raises(FrameError, match="outside"):
        EpisodeDataset(data).load_rgb("ep0", 0)


@pytest.mark.parametrize("bad", ["../../outside/connectivity/line", "ABS", "sub/line"])
def test_case03_scan_names_cannot_leave_the_data_dir(tmp_path, bad):
    outside = line_world(tmp_path / "outside")  # a valid graph where ../ or an absolute scan name would reach
    bad = str(outside / "connectivity" / "line") if bad == "ABS" else bad
    data = line_world(tmp_path / "data")
    sub = data / "connectivity" / "sub"  # what a scan with a separator would reach
    sub.mkdir()
    (sub / "line_connectivity.json").write_bytes((outside / "connectivity" / "line_connectivity.json").read_bytes())
    split = json.loads((data / "R2R_mini.json").read_text())
    split[0]["scan"] = bad
    (data / "R2R_mini.json").write_text(json.dumps(split))
    (tmp_path / "p.json").write_text(json.dumps([{"instr_id": f"1_{k}", "trajectory": [["A", 0, 0], ["B", 0, 0]]}
                                                 for k in range(2)]))
    code, _, err = cli("r2r", "score", "--preds", tmp_path / "p.json", "--split", "mini", "--data-dir", data)
    assert code == 2  # (before: the graph outside was loaded and scored)
    one_error_line(err, data / "R2R_mini.json", "'scan'")


# ============================================================================================ 4-7 data loss
def test_case04_collect_deletes_only_its_own_unfinished_work(tmp_path):
    from navtune.data.format import DatasetFormatError, DatasetWriter, EpisodeMeta, StepData

    data = dataset(tmp_path / "ds")
    mine = data / "episodes" / "my_notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("not navtune's")
    (data / "episodes" / "stray.txt").write_text("mine too")
    (data / "episodes" / "ep9").mkdir()  # not in the manifest, but not navtune's either
    (data / "episodes" / "ep9" / "photo.png").write_bytes(b"x")
    w = DatasetWriter(data, {"task": "objectnav", "action_space": "continuous"})
    assert w.cleaned == []
    assert (mine / "keep.txt").exists() and (data / "episodes" / "stray.txt").exists()
    # committing an episode whose folder exists but is not navtune's is refused, not overwritten
    b = w.builder(EpisodeMeta("ep9", "objectnav", "continuous", "house_9"))
    b.add(StepData("stop", {"x": 0.0, "y": 0.0, "z": 0.0, "heading": 0.0}, rgb=np.zeros((12, 16, 3), np.uint8)))
    with pytest.raises(DatasetFormatError, match="not written by navtune"):
        w.commit(b.finish())
    assert (data / "episodes" / "ep9" / "photo.png").read_bytes() == b"x"
    w.close()
    # the CLI: a folder someone put into a dataset's episodes/ survives a resumed collection
    r2r = line_world(tmp_path / "r2r")
    code, _, err = cli("collect", "r2r", "--split", "mini", "--data-dir", r2r, "--out", tmp_path / "r2r_ds")
    assert code == 0, err
    (tmp_path / "r2r_ds" / "episodes" / "keep").mkdir(parents=True)
    code, _, err = cli("collect", "r2r", "--split", "mini", "--data-dir", r2r, "--out", tmp_path / "r2r_ds")
    assert code == 0 and (tmp_path / "r2r_ds" / "episodes" / "keep").is_dir()


def test_case04_collect_never_follows_an_episodes_link(tmp_path):
    from navtune.data.format import DatasetFormatError, DatasetWriter

    victim = tmp_path / "victim"
    (victim / "precious").mkdir(parents=True)
    (victim / "precious" / "a.txt").write_text("x")
    data = dataset(tmp_path / "ds")
    import shutil

    shutil.rmtree(data / "episodes")
    (data / "episodes").symlink_to(victim)
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        DatasetWriter(data, {"task": "objectnav", "action_space": "continuous"})
    assert (victim / "precious" / "a.txt").exists()


def test_case05_export_hf_refuses_the_input_or_another_dataset(tmp_path):
    data = dataset(tmp_path / "ds")
    info = (data / "dataset_info.json").read_bytes()
    other = dataset(tmp_path / "other")
    for out in (data, data / "hf", other):
        code, _, err = cli("collect", "export-hf", data, "--out", out)
        assert code == 2, out
        one_error_line(err, out)
    assert (data / "dataset_info.json").read_bytes() == info and not (data / "hf").exists()
    code, _, err = cli("collect", "export-hf", data, "--out", tmp_path / "hf")
    assert code == 0, err
    code, _, err = cli("collect", "export-hf", data, "--out", tmp_path / "hf")  # re-export over an export: fine
    assert code == 0, err


def test_case06_train_refuses_a_non_empty_run_folder_without_resume(tmp_path):
    data = dataset(tmp_path / "ds")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "loss_history.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    (run / "notes.txt").write_text("mine")
    code, _, err = cli("train", "sft", "--model", fake_model(tmp_path / "m"), "--data", data, "--out", run)
    assert code == 2
    one_error_line(err, run, "--resume", "--overwrite")
    assert (run / "loss_history.jsonl").exists()
    # --overwrite deletes the run's own files (then fails on the fake model), and nothing else
    code, _, err = cli("train", "sft", "--model", tmp_path / "m", "--data", data, "--out", run, "--overwrite")
    assert code == 2
    one_error_line(err, tmp_path / "m")
    assert not (run / "loss_history.jsonl").exists() and not (run / "checkpoints").exists()
    assert (run / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_case07_and_case08_train_kill9_resume_trims_history_and_locks_the_run(tmp_path_factory, tmp_path):
    """kill -9 mid-run, then --resume last: one history line per step, no stray -v1 checkpoint; while the
    first process trains, a second `navtune train` into the folder is refused naming its pid."""
    from test_train_helpers import tiny_dir, write_dataset

    model = tiny_dir(tmp_path_factory)
    data = write_dataset(tmp_path / "data", n_episodes=6, T=2)
    run = tmp_path / "run"
    args = ["train", "sft", "--model", model, "--data", data, "--out", str(run), "--lora", "--lora-r", "2",
            "--image-size", "28x28", "--quiet", "--accelerator", "cpu", "--checkpoint-every", "2"]
    proc = subprocess.Popen(CLI + args, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    history = run / "loss_history.jsonl"
    try:
        wait_for(lambda: lock_pid(run) == proc.pid, proc=proc)
        code, _, err = cli(*args)  # a second writer, in this (another) process
        assert code == 2
        one_error_line(err, run / ".navtune.lock", f"pid {proc.pid}")
        wait_for(lambda: history.exists() and history.read_bytes().count(b"\n") >= 3, proc=proc)
        proc.send_signal(signal.SIGKILL)  # step 3 logged, the last checkpoint is step 2
    finally:
        proc.kill()
        proc.wait()
    before = [r["step"] for r in read_jsonl(history)]
    assert before[:3] == [1, 2, 3]
    r = subprocess.run(CLI + args + ["--resume", "last"], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    steps = [r["step"] for r in read_jsonl(history)]
    assert steps == list(range(1, 7))  # each step once
    assert not [p.name for p in (run / "checkpoints").iterdir() if "-v" in p.name]
    assert not (run / ".navtune.lock").exists()


# ============================================================================================ 8 concurrency
def test_case08_two_collects_into_one_folder(tmp_path):
    """A real `collect interactive` holds the folder (waiting for a key on a terminal); a second collect into
    the same --out is refused naming its pid, and the first one's dataset is untouched."""
    data = line_world(tmp_path / "r2r")
    out = tmp_path / "out"
    master, slave = os.openpty()
    proc = subprocess.Popen(CLI + ["collect", "interactive", "--task", "r2r", "--episodes", str(data), "--split", "mini",
                                   "--out", str(out), "--no-frame"], cwd=REPO, env=ENV, stdin=slave,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: lock_pid(out) == proc.pid, proc=proc)
        code, _, err = cli("collect", "expert", "--task", "r2r", "--episodes", data, "--split", "mini", "--out", out)
        assert code == 2
        one_error_line(err, out / ".navtune.lock", f"pid {proc.pid}")
        assert not (out / "manifest.jsonl").exists()
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
    # the holder died (kill -9): its lock goes with it
    code, _, err = cli("collect", "expert", "--task", "r2r", "--episodes", data, "--split", "mini", "--out",
                       tmp_path / "out2")
    assert code == 0, err


def test_case08_two_evals_into_one_run_and_shards_together(r2r_data_dir, tmp_path):
    out = tmp_path / "run"
    args = ["eval", "--agent", "random", "--no-epa", "--data-dir", str(r2r_data_dir), "--split", "val_unseen", "-q"]
    proc = subprocess.Popen(CLI + args + ["--out", str(out)], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: lock_pid(out, ".episodes.jsonl.lock") == proc.pid, proc=proc)
        code, _, err = cli(*args, "--out", out)
        assert code == 2
        one_error_line(err, ".episodes.jsonl.lock", f"pid {proc.pid}")
    finally:
        proc.kill()
        proc.wait()
    rows = read_jsonl(out / "episodes.jsonl")
    assert len({r["episode_id"] for r in rows}) == len(rows)
    # the shards of one run write their own files and run together
    data = line_world(tmp_path / "lw")
    shard = ["eval", "--agent", "forward", "--data-dir", str(data), "--split", "mini", "--num-shards", "2",
             "--out", str(tmp_path / "sharded")]
    procs = [subprocess.Popen(CLI + shard + ["--shard-id", str(i)], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    code, out_text, err = cli("eval-merge", tmp_path / "sharded")
    assert code == 0, err
    assert json.loads(out_text.strip().splitlines()[-1])["episodes"] == 2


# ============================================================================================ 9-13 silent
def test_case09_actions_outside_the_action_space_are_refused(tmp_path):
    data = dataset(tmp_path / "ds")
    edit_manifest(data, lambda rows: rows[1]["steps"][0].update(action="Jump"))
    code, _, err = cli("collect", "verify", data)
    assert code == 1
    one_error_line(err, data / "manifest.jsonl", "episode 'ep1': step 0", "'action'", "Jump")
    code, _, err = cli("train", "sft", "--model", fake_model(tmp_path / "m"), "--data", data, "--out", tmp_path / "r")
    assert code == 2
    one_error_line(err, "'action'", "Jump")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_case10_non_finite_connectivity_poses(tmp_path, value):
    data = line_world(tmp_path / "data")
    conn = data / "connectivity" / "line_connectivity.json"
    entries = json.loads(conn.read_text())
    entries[2]["pose"][3] = value
    conn.write_text(json.dumps(entries))  # json writes NaN / Infinity tokens
    (tmp_path / "p.json").write_text(json.dumps([{"instr_id": f"1_{k}", "trajectory": [["A", 0, 0], ["B", 0, 0]]}
                                                 for k in range(2)]))
    code, out, err = cli("r2r", "score", "--preds", tmp_path / "p.json", "--split", "mini", "--data-dir", data)
    assert code == 2 and "NaN" not in out
    one_error_line(err, conn, "'pose'")


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 1e400])
def test_case10_non_finite_or_negative_distances(tmp_path, value):
    data = line_world(tmp_path / "data")
    split = json.loads((data / "R2R_mini.json").read_text())
    split[0]["distance"] = value
    (data / "R2R_mini.json").write_text(json.dumps(split).replace("1e400", "1e400"))
    (tmp_path / "p.json").write_text(json.dumps([{"instr_id": "1_0", "trajectory": [["A", 0, 0]]}]))
    code, _, err = cli("r2r", "score", "--preds", tmp_path / "p.json", "--split", "mini", "--data-dir", data)
    assert code == 2
    one_error_line(err, data / "R2R_mini.json", "'distance'")


def _torn(data: Path) -> None:
    with open(data / "manifest.jsonl", "ab") as f:
        f.write(b'{"episode_id": "ep9", "ta')


def _num_steps(data: Path) -> None:
    edit_manifest(data, lambda rows: rows[0].update(num_steps=99))


def _big_frame(data: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(data / "episodes" / "ep1" / "rgb_1.png")


def _jpeg(data: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(data / "episodes" / "ep0" / "rgb_2.png", format="JPEG")


@pytest.mark.parametrize("damage,named", [(_torn, "line 3"), (_num_steps, "'num_steps'"), (_big_frame, "64x48"),
                                          (_jpeg, "not a PNG")])
def test_case11_verify_finds_what_it_used_to_pass(tmp_path, damage, named):
    data = dataset(tmp_path / "ds", info={"width": 16, "height": 12})
    code, out, _ = cli("collect", "verify", data)
    assert code == 0 and "12 frames ok" in out
    damage(data)
    code, _, err = cli("collect", "verify", data)
    assert code == 1
    one_error_line(err, named)


def test_case11_frames_of_another_size_without_a_declared_size(tmp_path):
    data = dataset(tmp_path / "ds")  # no width / height in dataset_info.json: the frames agree with each other
    _big_frame(data)
    code, _, err = cli("collect", "verify", data)
    assert code == 1
    one_error_line(err, "episode 'ep1': step 1", "64x48", "16x12")


def test_case12_replay_and_score_on_empty_or_partial_input(tmp_path):
    data = line_world(tmp_path / "data")
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps([{"instr_id": "1_0", "trajectory": [["A", 1.5708, 0], ["B", 1.5708, 0]]}]))
    code, out, _ = cli("r2r", "replay", "--preds", partial, "--split", "mini", "--data-dir", data, "--strict")
    assert code == 0
    assert "episodes: 1 (1 of the split's 2 have no prediction)" in out
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    for cmd in ("replay", "score"):
        code, _, err = cli("r2r", cmd, "--preds", empty, "--split", "mini", "--data-dir", data, "--strict"
                           if cmd == "replay" else "--success-radius", *([] if cmd == "replay" else ["3"]))
        assert code == 2
        one_error_line(err, empty, "no predictions")
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"instr_id": "9_0", "trajectory": [["A", 0, 0]]}]))
    code, _, err = cli("r2r", "replay", "--preds", other, "--split", "mini", "--data-dir", data)
    assert code == 2
    one_error_line(err, other, "none of its 1 instr_ids")
    (data / "R2R_empty.json").write_text("[]")
    code, out, err = cli("r2r", "score", "--preds", partial, "--split", "empty", "--data-dir", data)
    assert code == 2 and "nan" not in out.lower()
    one_error_line(err, data / "R2R_empty.json", "no episodes")


def test_case13_max_steps_above_any_cap_is_honoured(tmp_path):
    data = line_world(tmp_path / "data")
    code, _, err = cli("eval", "--agent", "forward", "--data-dir", data, "--split", "mini",  # never stops
                       "--max-steps", "2100", "--limit", "1", "--no-epa", "--out", tmp_path / "run", "-q")
    assert code == 0, err
    rows = read_jsonl(tmp_path / "run" / "episodes.jsonl")
    assert [len(r["actions"]) for r in rows] == [2100]  # above the 2000 cap the harness once had


# ============================================================================================ 14-18 one line
def _r2r_files(data: Path, preds: Path) -> dict[str, Path]:
    return {"split": data / "R2R_mini.json", "connectivity": data / "connectivity" / "line_connectivity.json",
            "predictions": preds}


@pytest.mark.parametrize("which", ["split", "connectivity", "predictions"])
@pytest.mark.parametrize("content", [b'[{"path_id": 1, "scan": "\xff\xfe"}]', b"[" + b"9" * 5_000_000 + b"]",
                                     b"[" * 100_000 + b"]" * 100_000], ids=["non-utf8", "huge-number", "deep"])
def test_case14_unreadable_r2r_files_end_with_one_line(tmp_path, which, content):
    data = line_world(tmp_path / "data")
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps([{"instr_id": f"1_{k}", "trajectory": [["A", 0, 0]]} for k in range(2)]))
    target = _r2r_files(data, preds)[which]
    target.write_bytes(content)
    for cmd in ("score", "replay"):
        code, _, err = cli("r2r", cmd, "--preds", preds, "--split", "mini", "--data-dir", data)
        assert code == 2, (cmd, err)
        one_error_line(err, target)


@pytest.mark.parametrize("damage", ["torn-middle", "non-utf8"])
def test_case15_damaged_manifest_lines(tmp_path, damage):
    data = dataset(tmp_path / "ds", n=3)
    lines = (data / "manifest.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1][:40] if damage == "torn-middle" else lines[1].replace(b"find a chair", b"find a \xff chair")
    (data / "manifest.jsonl").write_bytes(b"\n".join(lines))
    code, _, err = cli("collect", "verify", data)
    assert code == 1
    one_error_line(err, data / "manifest.jsonl", "line 2")
    code, _, err = cli("train", "sft", "--model", fake_model(tmp_path / "m"), "--data", data, "--out", tmp_path / "r")
    assert code == 2
    one_error_line(err, data / "manifest.jsonl", "line 2")


def test_case16_episode_without_steps(tmp_path):
    data = dataset(tmp_path / "ds")
    edit_manifest(data, lambda rows: rows[0].update(steps=[], num_steps=0))
    code, _, err = cli("train", "sft", "--model", fake_model(tmp_path / "m"), "--data", data, "--out", tmp_path / "r")
    assert code == 2
    one_error_line(err, data / "manifest.jsonl", "episode 'ep0'", "'steps'")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_case17_bad_weights(tmp_path, damage):
    model = fake_model(tmp_path / "m")
    w = model / "model.safetensors"
    w.write_bytes({"truncated": w.read_bytes()[:20], "garbage": os.urandom(300), "empty": b""}[damage])
    data, r2r = dataset(tmp_path / "ds"), line_world(tmp_path / "d")
    for args in (["model", "info", model],
                 ["eval", "--agent", "vlm", "--model", model, "--data-dir", r2r, "--split", "mini", "--out", tmp_path / "run"],
                 ["train", "sft", "--model", model, "--data", data, "--out", tmp_path / "r"]):
        code, _, err = cli(*args)
        assert code == 2, args
        one_error_line(err, w)
    assert not (tmp_path / "run").exists() and not (tmp_path / "r").exists()


def test_case17_garbage_config_and_tokenizer(tiny_model_dir, tmp_path):
    for name, content, named in (("config.json", b"{garbage", "config.json"),
                                 ("tokenizer.json", b"\x00\x01garbage", "tokenizer.json"),
                                 ("tokenizer.json", b'{"model": {"type": "nonsense"}}', "tokenizer.json")):
        model = tmp_path / "model"
        model.mkdir()
        for f in tiny_model_dir.iterdir():
            (model / f.name).symlink_to(f)
        (model / name).unlink()
        (model / name).write_bytes(content)
        code, _, err = cli("eval", "--agent", "vlm", "--model", model, "--data-dir", line_world(tmp_path / "d"),
                           "--split", "mini", "--out", tmp_path / "run")
        assert code == 2
        one_error_line(err, model / named)
        import shutil

        shutil.rmtree(model)
        shutil.rmtree(tmp_path / "d")


class NotAllowed:
    """Pickled into a checkpoint: weights_only loading refuses it."""


@pytest.mark.parametrize("damage", ["truncated", "pickled", "not-a-checkpoint"])
def test_case17_bad_checkpoint_on_resume(tmp_path, damage):
    import torch

    data = dataset(tmp_path / "ds")
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    if damage == "pickled":
        torch.save({"global_step": 2, "state_dict": {}, "extra": NotAllowed()}, ckpt)
    elif damage == "truncated":
        torch.save({"global_step": 2, "state_dict": {"w": torch.zeros(1000)}}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:2000])
    else:
        ckpt.write_bytes(pickle.dumps([1, 2, 3]))
    code, _, err = cli("train", "sft", "--model", fake_model(tmp_path / "m"), "--data", data, "--out", run,
                       "--resume", "last")
    assert code == 2
    one_error_line(err, ckpt)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_case18_non_finite_rewards_are_refused_when_read(tmp_path, value):
    data = dataset(tmp_path / "ds")
    edit_manifest(data, lambda rows: rows[0]["steps"][1].update(reward=value))
    code, _, err = cli("train", "awr", "--model", fake_model(tmp_path / "m"), "--data", data, "--out", tmp_path / "r")
    assert code == 2 and "loss" not in err.lower()
    one_error_line(err, data / "manifest.jsonl", "episode 'ep0': step 1", "'reward'")
