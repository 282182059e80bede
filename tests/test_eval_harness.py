"""Evaluation harness on the real R2R graphs with baseline policies: resume after kill -9, shards + merge,
batched slots equal to one at a time, EPA, exported trajectories scored by `navtune r2r score`."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from navtune.core.io import read_jsonl
from navtune.evaluation import AgentSpec, EvalConfig, EvalTask, build_policy, load_episodes, merge_shards, run_eval
from navtune.evaluation.results import RunFolderError

NAVTUNE = [str(Path(sys.executable).parent / "navtune")]


def _mini_split(r2r_data_dir: Path, dest: Path, n_paths: int, scan_rank: int = 0) -> Path:
    """An R2R-format folder with the first `n_paths` val_unseen paths of one scan (3 instructions each)."""
    raw = json.loads((r2r_data_dir / "R2R_val_unseen.json").read_text())
    scans = sorted({x["scan"] for x in raw})
    scan = scans[scan_rank]
    sub = [x for x in raw if x["scan"] == scan][:n_paths]
    (dest / "connectivity").mkdir(parents=True)
    shutil.copy(r2r_data_dir / "connectivity" / f"{scan}_connectivity.json", dest / "connectivity")
    (dest / "R2R_mini.json").write_text(json.dumps(sub))
    return dest


@pytest.fixture(scope="module")
def mini(r2r_data_dir, tmp_path_factory) -> Path:
    return _mini_split(r2r_data_dir, tmp_path_factory.mktemp("r2r"), 12)


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "wall_s"}


def test_oracle_and_baselines(mini, tmp_path):
    task = EvalTask(backend="graph", data_dir=str(mini), split="mini")
    s = run_eval(tmp_path / "oracle", AgentSpec("oracle"), task, EvalConfig(num_envs=4, progress=False))["summary"]
    assert s["episodes"] == 36 and s["missing"] == 0
    assert s["sr"] == 1.0 and s["spl"] > 0.9 and s["epa"] == 1.0 and s["ndtw"] > 0.9
    assert s["failure_rates"]["failed"] == 0.0
    f = run_eval(tmp_path / "fwd", AgentSpec("forward"), task, EvalConfig(num_envs=4, progress=False))["summary"]
    assert f["sr"] < 0.5 and 0.0 < f["epa"] < 1.0
    rows = read_jsonl(tmp_path / "fwd" / "episodes.jsonl")
    # forward-only never stops by itself: every episode runs the graph env's 50-step budget
    assert all(r["metrics"]["steps"] == 50 and "Stop" not in r["actions"] for r in rows)
    # EPA by hand from the stored expert pass
    r = rows[0]
    ex = r["expert"]
    assert ex["actions"][-1] == "Stop"
    assert r["metrics"]["epa"] == pytest.approx(sum(a == b for a, b in zip(ex["actions"], ex["policy_actions"])) / len(ex["actions"]))


def test_batched_slots_equal_sequential(mini, tmp_path):
    task = EvalTask(backend="graph", data_dir=str(mini), split="mini")
    eps = load_episodes(task)
    from navtune.evaluation import evaluate

    for agent in (AgentSpec("forward"), AgentSpec("random", seed=2)):
        for n in (1, 5):
            evaluate(build_policy(agent, "graph"), task, eps, tmp_path / f"{agent.kind}{n}.jsonl",
                     EvalConfig(num_envs=n, progress=False))
        a = sorted(read_jsonl(tmp_path / f"{agent.kind}1.jsonl"), key=lambda r: r["order"])
        b = sorted(read_jsonl(tmp_path / f"{agent.kind}5.jsonl"), key=lambda r: r["order"])
        assert [_strip(x) for x in a] == [_strip(x) for x in b], agent.kind


def test_shared_pool_uses_only_num_envs_slots(mini, tmp_path):
    """A pool reused across runs (as bench/bench_eval.py does) must not batch more slots than asked for."""
    from navtune.evaluation import evaluate
    from navtune.evaluation.pool import make_pool

    task = EvalTask(backend="graph", data_dir=str(mini), split="mini", limit=8)
    eps = load_episodes(task)
    policy = build_policy(AgentSpec("forward"), "graph")
    batch_sizes: list[int] = []
    act = policy.act
    policy.act = lambda obs: (batch_sizes.append(len(obs)), act(obs))[1]
    pool = make_pool(task, 4, False)
    try:
        for n in (1, 4):
            batch_sizes.clear()
            rows = evaluate(policy, task, eps, tmp_path / f"n{n}.jsonl", EvalConfig(num_envs=n, progress=False), pool=pool)
            assert len(rows) == 8 and max(batch_sizes) == n
    finally:
        pool.close()


def test_shards_merge_to_the_unsharded_run(mini, tmp_path):
    task = EvalTask(backend="graph", data_dir=str(mini), split="mini")
    cfg = EvalConfig(num_envs=3, progress=False)
    whole = run_eval(tmp_path / "whole", AgentSpec("forward"), task, cfg)["summary"]
    for i in range(3):
        out = run_eval(tmp_path / "sh", AgentSpec("forward"), task, cfg, num_shards=3, shard_id=i)
        assert out["summary"] is None
    ids = [e.episode_id for e in load_episodes(task)]
    merged = merge_shards(tmp_path / "sh", ids)
    for k in ("sr", "spl", "ndtw", "epa", "ne", "steps"):
        assert merged[k] == pytest.approx(whole[k])
    assert [r["episode_id"] for r in read_jsonl(tmp_path / "sh" / "episodes.jsonl")] == ids
    # a missing shard is an error naming what is missing
    for f in (tmp_path / "sh").glob("episodes.shard-002-*"):
        f.unlink()
    with pytest.raises(RunFolderError, match="no result"):
        merge_shards(tmp_path / "sh", ids)


def test_resume_refuses_another_agent(mini, tmp_path):
    task = EvalTask(backend="graph", data_dir=str(mini), split="mini", limit=2)
    run_eval(tmp_path / "r", AgentSpec("forward"), task, EvalConfig(progress=False))
    with pytest.raises(RunFolderError, match="another evaluation"):
        run_eval(tmp_path / "r", AgentSpec("oracle"), task, EvalConfig(progress=False))


def test_kill9_then_resume_gives_each_episode_once(r2r_data_dir, tmp_path):
    data = _mini_split(r2r_data_dir, tmp_path / "data", 40, scan_rank=4)
    cmd = NAVTUNE + ["eval", "--agent", "forward", "--data-dir", str(data), "--split", "mini",
                     "--num-envs", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed_dir = tmp_path / "killed"
    res_file = killed_dir / "episodes.jsonl"
    proc = subprocess.Popen(cmd + ["--out", str(killed_dir)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if res_file.exists() and res_file.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(read_jsonl(res_file))
    assert 5 <= n_before < 120
    subprocess.run(cmd + ["--out", str(killed_dir)], env=env, check=True, capture_output=True)
    subprocess.run(cmd + ["--out", str(tmp_path / "clean")], env=env, check=True, capture_output=True)
    killed = read_jsonl(res_file)
    clean = read_jsonl(tmp_path / "clean" / "episodes.jsonl")
    ids = [r["episode_id"] for r in killed]
    assert len(ids) == len(set(ids)) == 120
    by_id = {r["episode_id"]: _strip(r) for r in clean}
    assert {r["episode_id"]: _strip(r) for r in killed} == by_id
    s1 = json.loads((killed_dir / "summary.json").read_text())
    s2 = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert {k: s1[k] for k in ("sr", "spl", "ndtw", "epa", "ne")} == {k: s2[k] for k in ("sr", "spl", "ndtw", "epa", "ne")}


def test_exported_trajectories_score_the_same_with_r2r_score(mini, tmp_path):
    task = EvalTask(backend="graph", data_dir=str(mini), split="mini")
    s = run_eval(tmp_path / "rnd", AgentSpec("random", seed=3), task, EvalConfig(num_envs=4, progress=False))["summary"]
    out = subprocess.run(NAVTUNE + ["r2r", "score", "--preds", str(tmp_path / "rnd" / "predictions.json"),
                                    "--split", "mini", "--data-dir", str(mini)], check=True, capture_output=True, text=True)
    scored = json.loads(out.stdout.strip().splitlines()[-1])
    for k in ("sr", "spl", "ndtw", "ne", "osr", "cls", "pl"):
        assert scored[k] == pytest.approx(s[k], abs=1e-9), k


def test_house_vln_baseline_matches_r2r_score(tmp_path):
    """Generated house VLN episodes (R2R format): the harness's metrics equal `navtune r2r score` on the
    trajectories it exported."""
    from navtune.envs.house.episodes.vln import generate_vln_dataset

    generate_vln_dataset(range(300, 304), tmp_path / "vln", split="test", per_house=2)
    task = EvalTask(backend="graph", data_dir=str(tmp_path / "vln"), split="test")
    for agent in (AgentSpec("random", seed=1), AgentSpec("forward")):
        run = tmp_path / agent.kind
        s = run_eval(run, agent, task, EvalConfig(num_envs=4, progress=False))["summary"]
        out = subprocess.run(NAVTUNE + ["r2r", "score", "--preds", str(run / "predictions.json"), "--split", "test",
                                        "--data-dir", str(tmp_path / "vln")], check=True, capture_output=True, text=True)
        scored = json.loads(out.stdout.strip().splitlines()[-1])
        assert scored["episodes"] == s["episodes"] == 24
        for k in ("sr", "spl", "ndtw", "sdtw", "ne", "cls"):
            assert scored[k] == pytest.approx(s[k], abs=1e-12), (agent.kind, k)


def test_process_pool_gives_the_same_rows(mini, tmp_path):
    from navtune.evaluation import evaluate

    task = EvalTask(backend="graph", data_dir=str(mini), split="mini", limit=6)
    eps = load_episodes(task)
    for procs in (False, True):
        evaluate(build_policy(AgentSpec("oracle"), "graph"), task, eps, tmp_path / f"p{procs}.jsonl",
                 EvalConfig(num_envs=2, processes=procs, progress=False))
    a = sorted(read_jsonl(tmp_path / "pFalse.jsonl"), key=lambda r: r["order"])
    b = sorted(read_jsonl(tmp_path / "pTrue.jsonl"), key=lambda r: r["order"])
    assert [_strip(x) for x in a] == [_strip(x) for x in b] and len(a) == 6


def test_agent_spec_checks_the_adapter(tmp_path):
    with pytest.raises(ValueError, match="adapter_config.json"):
        AgentSpec("vlm", model="org/model", adapter=str(tmp_path))  # a folder without an adapter
    assert AgentSpec("vlm", model="org/model", adapter="org/adapter").adapter == "org/adapter"  # a hub id
