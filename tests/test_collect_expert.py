"""House expert collection (ObjectNav, RGB-D): loads as a Hugging Face dataset, every labelled token decodes
to its action, and kill -9 at a random point then resume gives the same dataset as an uninterrupted run."""
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

pytestmark = [pytest.mark.slow, pytest.mark.gl]

REPO = Path(__file__).resolve().parents[1]
W, H = 80, 60


@pytest.fixture(scope="module")
def house_episodes(tmp_path_factory) -> Path:
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes
    from navtune.tasks.objectnav import write_episodes

    path = tmp_path_factory.mktemp("eps") / "objectnav.jsonl"
    write_episodes(path, generate_objectnav_episodes(range(3), per_house=2))  # 6 episodes in 3 houses
    return path


@pytest.fixture(scope="module")
def reference(house_episodes, tmp_path_factory) -> Path:
    """An uninterrupted in-process run (its env is kept by the worker state and reused below)."""
    from navtune.data.collectors.expert import collect_expert, objectnav_source

    out = tmp_path_factory.mktemp("ref") / "ds"
    s = collect_expert(objectnav_source(house_episodes, W, H, True), out, progress=False)
    assert s.written == 6 and s.successes == 6
    return out


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_expert_dataset_loads_and_labels_decode(reference, tmp_path):
    import datasets

    from navtune.agents.models.tiny import build_tiny_processor
    from navtune.data.format import EpisodeDataset
    from navtune.data.hf import save_hf
    from navtune.data.training import EpisodeSamples, StepSamples

    ds = EpisodeDataset(reference)
    assert ds.verify() == 2 * ds.num_steps  # rgb + depth for every step
    for ep in ds:
        assert ep["success"] and ep["steps"][-1]["action"] == "stop" and ep["task"] == "objectnav"
        assert all(s["action"] == s["expert_action"] for s in ep["steps"])
        d = [s["geodesic_distance"] for s in ep["steps"]] + [ep["final"]["geodesic_distance"]]
        assert d[-1] == 0.0 and d[0] > 1.0
        np.testing.assert_allclose([s["reward"] for s in ep["steps"][:-1]],
                                   np.array(d[:-2]) - np.array(d[1:-1]) - 0.01, atol=1e-9)
    depth = ds.load_depth(ds[0], 0)
    assert depth.shape == (H, W) and depth.max() > 0.5

    save_hf(reference, tmp_path / "hf")
    hf = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(hf) == ds.num_steps
    row = hf[5]
    ep = ds.episode(row["episode_id"])
    assert row["action"] == ep["steps"][row["t"]]["action"]
    np.testing.assert_array_equal(np.asarray(row["rgb"]), ds.load_rgb(ep, row["t"]))

    proc = build_tiny_processor()
    tok = proc.tokenizer
    steps = StepSamples(reference, proc, "objectnav-json", image_size=(56, 42))
    for i in range(0, len(steps), 7):
        s = steps[i]
        e, t = steps.index[i]
        (a, b), = s["action_spans"]  # the action inside objectnav-json's whole answer, which is labelled too
        assert tok.decode(s["input_ids"][0, a:b]) == ds[e]["steps"][t]["action"] == tok.decode(s["labels"][a:b])
        answer = tok.decode(s["labels"][s["label_positions"]])
        assert answer.startswith("{") and f'"{ds[e]["steps"][t]["action"]}"' in answer
    chat = EpisodeSamples(reference, proc, "chat", image_size=(56, 42))
    for i in range(len(chat)):
        c = chat[i]["chunks"][0]
        acts = [s["action"] for s in ds[i]["steps"]]
        assert [tok.decode(c["labels"][a:b]) for a, b in c["action_spans"]] == acts
        lab = c["label_positions"]
        assert len(lab) == sum(b - a for a, b in c["action_spans"])
        assert int(c["mm_token_type_ids"].sum()) > 0 and c["image_grid_thw"].shape[0] == len(acts)


def test_kill9_during_collection_then_resume_equals_uninterrupted(house_episodes, reference, tmp_path):
    from navtune.data.collectors.expert import collect_expert, objectnav_source
    from navtune.data.format import EpisodeDataset

    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", "from navtune.cli import main; main()", "collect", "expert", "--task", "objectnav",
           "--episodes", str(house_episodes), "--out", str(out), "--width", str(W), "--height", str(H), "-q"]
    kill_after = random.Random().randint(1, 4)  # committed episodes before the SIGKILL, then a random delay
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYGLET_HEADLESS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "manifest.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if manifest.exists() and manifest.read_bytes().count(b"\n") >= kill_after:
                time.sleep(random.uniform(0.0, 0.4))  # land somewhere inside the next episode's frames
                break
            time.sleep(0.01)
        assert proc.poll() is None, "collection ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    partial = EpisodeDataset(out)
    assert kill_after <= len(partial) < 6
    s = collect_expert(objectnav_source(house_episodes, W, H, True), out, progress=False)
    assert s.skipped == len(partial) and s.written == 6 - len(partial)
    assert not [p for p in (out / "episodes").iterdir() if p.name.startswith(".tmp-")]
    assert _snapshot(out) == _snapshot(reference)


def test_house_vln_expert_graph_actions(tmp_path):
    """VLN on a house graph (Left/Right/Move/Stop) with house-rendered frames; r2r-lowlevel labels decode."""
    from navtune.agents.models.tiny import build_tiny_processor
    from navtune.data.collectors.expert import collect_expert, vln_source
    from navtune.data.format import EpisodeDataset
    from navtune.data.training import StepSamples
    from navtune.envs.graph import GraphNavEnv
    from navtune.envs.house.episodes.vln import generate_vln_dataset
    from navtune.tasks.r2r import load_r2r_split

    generate_vln_dataset([5], tmp_path / "vln", split="train", per_house=1)
    s = collect_expert(vln_source(tmp_path / "vln", "train", W, H, True), tmp_path / "ds", progress=False)
    assert s.written == 3 and s.successes == 3
    ds = EpisodeDataset(tmp_path / "ds")
    assert ds.info["task"] == "vln" and ds.verify() == 2 * ds.num_steps
    env = GraphNavEnv.for_r2r(tmp_path / "vln")
    for ep, rec in zip(load_r2r_split(tmp_path / "vln", "train"), ds):
        assert rec["episode_id"] == ep.instr_id and rec["action_space"] == "graph"
        obs = env.reset(ep)
        for st in rec["steps"]:
            assert st["info"]["viewpoint"] == obs.info["viewpoint"]
            res = env.step(st["action"])
            obs = res.observation
        assert res.info["success"]
    assert ds.load_rgb(ds[0], 0).std() > 0
    proc = build_tiny_processor()
    steps = StepSamples(ds, proc, "r2r-lowlevel", image_size=(56, 42))
    for i in range(len(steps)):
        smp = steps[i]
        e, t = steps.index[i]
        assert proc.tokenizer.decode(smp["labels"][smp["label_positions"]]) == ds[e]["steps"][t]["action"]


def test_bad_input_ends_with_one_line_naming_the_file(tmp_path):
    """A missing episode folder or dataset is one clear error line (exit 2), not a traceback."""
    base = [sys.executable, "-c", "from navtune.cli import main; main()", "collect"]
    for args, named in ((["expert", "--task", "vln", "--episodes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")],
                         "R2R_train.json"),
                        (["export-hf", str(tmp_path / "nodata"), "--out", str(tmp_path / "hf")], "dataset_info.json")):
        r = subprocess.run(base + args, cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and r.stderr.startswith("error: ") and named in r.stderr
