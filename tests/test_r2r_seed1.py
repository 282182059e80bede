"""Seed 1's MatterSim setup (`--preset seed1`): its real val_seen runs re-execute with 0 mismatches, the
re-execution rules on a hand-made graph, the continuous-heading teacher, the env, and `navtune eval
--preset seed1` end to end with the skybox renderer on synthetic skyboxes and a tiny model."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from navtune.cli import app
from navtune.core.geometry import angle_diff, wrap_heading
from navtune.envs.graph import GraphNavEnv
from navtune.graph import Camera, LowLevelNavigator, NavGraph, NavigatorConfig
from navtune.tasks.r2r import R2RDataError, load_graphs, load_r2r_split
from navtune.tasks.r2r.predictions import actions_by_instr_id
from navtune.tasks.r2r.replay import HEADING_TOL, reexecute_trajectory
from navtune.tasks.r2r.setups import SETUPS, get_setup

RUNS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "seed1-mattersim-runs"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def seed_runs() -> Path:
    if not (RUNS / "actions_val_seen_inst_0.json").is_file():
        pytest.skip(f"seed-1 MatterSim runs not found at {RUNS}")
    return RUNS


def test_seed1_preset_is_the_authors_setup():
    s = get_setup("seed1")
    assert s.navigator.headings == "continuous" and not s.navigator.adjust and s.max_steps == 32
    assert (s.camera.width, s.camera.height, s.camera.output_size) == (640, 480, (320, 240))
    assert math.degrees(s.camera.vfov) == pytest.approx(105) and math.degrees(s.camera.hfov) == pytest.approx(140)
    r2r = get_setup(None)
    assert r2r.name == "r2r" and r2r.navigator.headings == "discrete" and math.degrees(r2r.camera.hfov) == pytest.approx(80)
    assert {"r2r", "seed1"} <= set(SETUPS.keys())
    with pytest.raises(KeyError, match="known: "):
        get_setup("seed2")


# ---- the seed model's real MatterSim runs ------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 1, 2])
def test_seed_runs_reexecute_with_no_mismatch(seed_runs, r2r_data_dir, k):
    r = invoke("r2r", "replay", "--preds", seed_runs / f"trajectories_val_seen_inst_{k}.json",
               "--actions", seed_runs / f"actions_val_seen_inst_{k}.json", "--split", "val_seen",
               "--data-dir", r2r_data_dir, "--headings", "continuous", "--vfov", "105", "--strict")
    lines = r.stdout.strip().splitlines()
    assert r.exit_code == 0, r.output
    assert lines[-2].startswith("episodes: 340") and lines[-1] == "mismatches: 0"


def test_seed_runs_do_not_reexecute_in_another_setup(seed_runs, r2r_data_dir):
    """The check is not vacuous: a narrower camera or the discretised mode disagree with the runs."""
    base = ["r2r", "replay", "--preds", seed_runs / "trajectories_val_seen_inst_0.json", "--actions",
            seed_runs / "actions_val_seen_inst_0.json", "--split", "val_seen", "--data-dir", r2r_data_dir]
    narrow = invoke(*base, "--headings", "continuous", "--vfov", "60").stdout.strip().splitlines()[-1]
    assert int(narrow.split(": ")[1]) > 50
    discrete = invoke(*base).stdout.strip().splitlines()
    assert "start heading" in discrete[1] and int(discrete[-1].split(": ")[1]) > 1000
    # without --actions (one-action reachability) the seed1 preset accepts the runs too
    r = invoke("r2r", "replay", "--preds", seed_runs / "trajectories_val_seen_inst_0.json", "--split", "val_seen",
               "--data-dir", r2r_data_dir, "--preset", "seed1")
    assert r.stdout.strip().splitlines()[-1] == "mismatches: 0"


# ---- re-execution rules on a hand-made graph -----------------------------------------------------------------

def _at(deg: float, r: float = 2.0) -> tuple[float, float, float]:
    return (r * math.sin(math.radians(deg)), r * math.cos(math.radians(deg)), 0.0)


FORK = NavGraph.from_edges(["O", "A", "B", "C"], [(0, 0, 0), _at(0), _at(35), _at(200)],
                           [("O", "A"), ("O", "B"), ("O", "C")], name="fork")


def _reexec(traj, actions, heading=math.radians(20), adjust=True):
    nav = LowLevelNavigator(FORK, config=NavigatorConfig("continuous", adjust=adjust))
    return reexecute_trajectory(nav, "1_0", "O", heading, traj, actions)[1]


def test_reexecution_follows_the_authors_recorder():
    h20, h35 = math.radians(20), math.radians(35)
    # entry k is the state in which action k was chosen; Adjust turns to B (15° right), Move keeps heading
    traj = [["O", h20, 0.0], ["O", h35, 0.0], ["B", h35, 0.0]]
    assert _reexec(traj, ["Adjust", "Move", "Stop"]) == []
    assert _reexec(traj, ["Automatically Turn Towards Node", "Move", "Stop"]) == []  # the prompt's name
    # a Move with nothing in view (B sees only O, behind it): MatterSim raised, the episode ended there
    assert _reexec(traj, ["Adjust", "Move", "Move"]) == []
    assert _reexec(traj + [["B", h35, 0.0]], ["Adjust", "Move", "Move"]) == []  # a recorder of the final state
    # the 32-step cap: no Stop, the state after the last action is not recorded
    turns = ["Right"] * 32
    capped = [["O", wrap_heading(h20 + k * math.pi / 6), 0.0] for k in range(32)]
    assert _reexec(capped, turns) == []
    # what counts as a mismatch
    off = h35 + 10 * HEADING_TOL
    wrong_heading = [["O", h20, 0.0], ["O", off, 0.0], ["B", off, 0.0]]  # replay goes on from the recorded state
    assert [m.step for m in _reexec(wrong_heading, ["Adjust", "Move", "Stop"])] == [1]
    assert [m.step for m in _reexec(traj, ["Right", "Move", "Stop"])] == [1]  # resyncs: counted once
    assert len(_reexec(traj + [["B", h35, 0.0]], ["Adjust", "Move", "Stop"])) == 1  # an entry after Stop
    assert "actions after Stop" in _reexec(traj, ["Adjust", "Move", "Stop", "Left"])[0].reason
    assert "unknown action" in _reexec(traj, ["Adjust", "Jump", "Stop"])[0].reason
    assert "start heading" in _reexec(traj, ["Adjust", "Move", "Stop"], heading=math.radians(21))[0].reason
    # heading wrap: 0.053 - 30° is recorded as 5.8126 (MatterSim wraps to [0, 2pi))
    left = [["O", 0.053, 0.0], ["O", 0.053 - math.pi / 6 + 2 * math.pi, 0.0]]
    assert _reexec(left, ["Left", "Stop"], heading=0.053) == []


def test_actions_files_keyed_by_path_or_instruction(tmp_path):
    assert actions_by_instr_id({"12": ["Stop"]}, ["12_2"]) == {"12_2": ["Stop"]}
    assert actions_by_instr_id({"12_2": ["Left"], "12": ["Stop"]}, ["12_2"]) == {"12_2": ["Left"]}
    with pytest.raises(R2RDataError, match="no actions for 1"):
        actions_by_instr_id({"12": ["Stop"]}, ["13_0"], tmp_path / "a.json")
    with pytest.raises(R2RDataError, match="several instructions"):
        actions_by_instr_id({"12": ["Stop"]}, ["12_0", "12_1"], tmp_path / "a.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"12": "Move"}))
    r = runner.invoke(app, ["r2r", "replay", "--preds", str(bad), "--actions", str(bad), "--split", "x",
                            "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "error:" in r.output


# ---- the continuous-heading teacher and the env ------------------------------------------------------------

def test_expert_in_seed1_setup_reports_detours(r2r_data_dir):
    """BFS over (viewpoint, start heading + k * 30°): every val_seen goal is reachable; about one path in ten
    has a hop Move-to-nearest never takes at those headings (a detour)."""
    r = invoke("r2r", "expert", "--split", "val_seen", "--data-dir", r2r_data_dir, "--preset", "seed1")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["paths"] == 340 and s["reachable"] == 340 and s["detours"] == 340 - s["followable"]
    assert 0.05 < s["detours"] / s["paths"] < 0.15
    assert "need a detour" in r.stdout


def test_env_in_seed1_setup_keeps_the_start_heading_and_reexecutes(r2r_data_dir):
    episodes = [e for e in load_r2r_split(r2r_data_dir, "val_seen") if e.instr_id.endswith("_0")][:8]
    graphs = load_graphs(r2r_data_dir, {e.scan for e in episodes})
    setup = get_setup("seed1")
    env = GraphNavEnv(graphs, navigator=setup.navigator, max_steps=setup.max_steps)
    for ep in episodes:
        obs = env.reset(ep)
        assert abs(angle_diff(obs.pose.heading, ep.heading)) < 1e-12  # not snapped to 30°
        while True:
            res = env.step(env.expert_action())
            if res.done:
                break
        assert res.info["success"] and res.info["stopped"] and env.steps <= 32
        assert env.trajectory[-1][0] == ep.goal
        nav = LowLevelNavigator(graphs[ep.scan], config=setup.navigator)
        assert reexecute_trajectory(nav, ep.instr_id, ep.start, ep.heading, env.trajectory, env.actions)[1] == []
        headings = {round(math.degrees(h) % 30, 6) for _, h, _ in env.trajectory}
        assert headings == {round(math.degrees(ep.heading) % 30, 6)}  # on the start heading's grid


def test_env_adjust_action_and_expert_after_it():
    env = GraphNavEnv(FORK, navigator=NavigatorConfig("continuous", adjust=True))
    obs = env.reset({"scan": "fork", "path": ["O", "C"], "heading": math.radians(20)})
    assert "Adjust" in obs.allowed_actions and "Adjust" in env.action_space
    res = env.step("Adjust")
    assert math.degrees(res.observation.pose.heading) == pytest.approx(35, abs=1e-5)
    assert env.expert_action() in ("Left", "Right")  # a table for the new heading grid
    plain = GraphNavEnv(FORK)  # the default setup has no Adjust
    plain.reset({"scan": "fork", "path": ["O", "C"], "heading": 0.0})
    with pytest.raises(ValueError, match="unknown action"):
        plain.step("Adjust")


# ---- navtune eval --preset seed1, skybox renderer, tiny model -------------------------------------------------

def _synthetic_r2r(root: Path) -> Path:
    from navtune.envs.mp3d.synthetic import write_synthetic_scan
    from navtune.tasks.r2r import write_r2r_split

    scan = write_synthetic_scan(root, "synth", num_viewpoints=4, face_size=128)
    vps = scan.viewpoints  # on a line along +x, 2 m apart: heading 90° looks down the line
    write_r2r_split([
        {"distance": 4.0, "scan": "synth", "path_id": 7, "path": vps[0:3], "heading": math.radians(97.3),
         "instructions": ["walk down the line"]},
        {"distance": 2.0, "scan": "synth", "path_id": 8, "path": [vps[3], vps[2]], "heading": math.radians(250.0),
         "instructions": ["step back"]},
    ], root / "R2R_mini.json")
    return root


def test_eval_with_seed1_preset_end_to_end(tmp_path, tiny_model_dir):
    from navtune.envs.mp3d import SkyboxRenderer, lanczos4_resize
    from navtune.evaluation import EvalTask
    from navtune.evaluation.backends import make_env

    data = _synthetic_r2r(tmp_path / "data")
    task = EvalTask(data_dir=str(data), split="mini", renderer="mp3d", skybox_dir=str(data / "skyboxes"), preset="seed1")
    env = make_env(task)
    obs = env.reset(load_r2r_split(data, "mini")[0])
    # frames: rendered at 640x480 with a 105° vfov, resized to 320x240 with Lanczos-4
    assert obs.rgb.shape == (240, 320, 3) and env.max_steps == 32
    cam = Camera(640, 480, math.radians(105))
    raw, _ = SkyboxRenderer(data / "skyboxes", data / "connectivity", "synth", cam).render("synth_vp00", math.radians(97.3))
    assert np.array_equal(obs.rgb, lanczos4_resize(raw, (320, 240)))

    out = tmp_path / "run"
    r = invoke("eval", "--agent", "vlm", "--model", tiny_model_dir, "--data-dir", data, "--split", "mini",
               "--renderer", "mp3d", "--skybox-dir", data / "skyboxes", "--preset", "seed1", "--max-steps", "3",
               "--no-epa", "--out", out)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["task"]["preset"] == "seed1"
    preds = json.loads((out / "predictions.json").read_text())
    assert [p["instr_id"] for p in preds] == ["7_0", "8_0"]
    assert preds[0]["trajectory"][0][1] == pytest.approx(math.radians(97.3))  # the episode's own heading
    ok = invoke("r2r", "replay", "--preds", out / "predictions.json", "--split", "mini", "--data-dir", data,
                "--preset", "seed1")
    assert ok.stdout.strip().splitlines()[-1] == "mismatches: 0"
    snapped = invoke("r2r", "replay", "--preds", out / "predictions.json", "--split", "mini", "--data-dir", data)
    assert snapped.stdout.strip().splitlines()[-1] != "mismatches: 0"
