"""The episode dataset format: atomic commits, resume after a crash, frame errors, HF/torch loading."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from navtune.core.io import read_jsonl
from navtune.data.format import (
    DatasetFormatError,
    DatasetWriter,
    EpisodeDataset,
    EpisodeMeta,
    FrameError,
    StepData,
    depth_to_mm,
    split_by_scene,
)
from navtune.data.rewards import RewardConfig
from navtune.envs.protocol import Pose

INFO = {"task": "objectnav", "action_space": "continuous", "reward": RewardConfig(gamma=0.9).to_dict()}


def _episode(writer: DatasetWriter, eid: str, scene: str, n: int = 3, seed: int = 0, order: int = 0):
    rng = np.random.default_rng(seed)
    b = writer.builder(
        EpisodeMeta(eid, "objectnav", "continuous", scene, instruction="find a chair", target="chair",
                    start={"x": 0, "y": 0, "z": 0, "heading": 0}, success_radius=1.0, order=order)
    )
    for t in range(n):
        action = "stop" if t == n - 1 else "move_forward"
        b.add(StepData(action=action, pose=Pose(0.0, 0.25 * t, 0.0, 0.0),
                       rgb=rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
                       depth=rng.uniform(0.1, 5.0, (12, 16)).astype(np.float32),
                       geodesic_distance=1.2 - 0.25 * t, allowed_actions=("move_forward", "turn_left", "turn_right", "stop"),
                       expert_action=action))
    return b.finish(final_pose=Pose(0.0, 0.25 * (n - 1), 0.0, 0.0), final_geodesic_distance=1.2 - 0.25 * (n - 1))


def test_write_read_roundtrip(tmp_path):
    w = DatasetWriter(tmp_path / "ds", INFO)
    rng = np.random.default_rng(0)
    w.commit(_episode(w, "ep0", "house_1"))
    w.commit(_episode(w, "ep1", "house_2", n=4, seed=1, order=1))
    ds = EpisodeDataset(tmp_path / "ds")
    assert ds.episode_ids == ["ep0", "ep1"] and ds.num_steps == 7
    ep = ds.episode("ep1")
    assert ep["success"] is True and ep["stopped"] and ep["num_steps"] == 4
    # rewards: progress 0.25 per move minus slack; the stop at 0.45 m < 1 m gets the bonus
    cfg = RewardConfig(gamma=0.9)
    r = [s["reward"] for s in ep["steps"]]
    np.testing.assert_allclose(r, [0.25 - cfg.slack] * 3 + [cfg.success_bonus - cfg.slack])
    g = [s["return"] for s in ep["steps"]]
    np.testing.assert_allclose(g[2], r[2] + 0.9 * r[3])
    # frames come back exactly (rgb) / to the millimetre (depth)
    rng = np.random.default_rng(1)
    rgb0 = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    depth0 = rng.uniform(0.1, 5.0, (12, 16)).astype(np.float32)
    np.testing.assert_array_equal(ds.load_rgb("ep1", 0), rgb0)
    np.testing.assert_allclose(ds.load_depth("ep1", 0), depth0, atol=0.0006)
    assert (tmp_path / "ds" / "episodes" / "ep1" / "depth_3.png").exists()
    assert ds.verify() == 14


def test_depth_encoding_edge_cases():
    d = np.array([[0.0, -1.0, np.nan, np.inf], [0.0015, 1.0, 65.535, 100.0]], dtype=np.float32)
    mm = depth_to_mm(d)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[0, 0, 0, 0], [2, 1000, 65535, 65535]]


def test_resume_discards_half_written_and_uncommitted(tmp_path):
    root = tmp_path / "ds"
    w = DatasetWriter(root, INFO)
    w.commit(_episode(w, "ep0", "h"))
    # crash while ep1's frames were being written: a temp folder stays behind
    half = _episode(w, "ep1", "h", seed=1)
    # crash between rename and manifest append: an episode folder without a manifest line
    orphan = _episode(w, "ep2", "h", seed=2)
    os.replace(orphan.tmp_dir, root / "episodes" / "ep2")
    # crash in the middle of a manifest append: a torn last line
    with open(root / "manifest.jsonl", "ab") as f:
        f.write(b'{"episode_id": "ep3", "tas')
    w2 = DatasetWriter(root, INFO)
    assert w2.committed == {"ep0"}
    assert sorted(w2.cleaned) == sorted([os.path.basename(half.tmp_dir), "ep2"])
    assert sorted(p.name for p in (root / "episodes").iterdir()) == ["ep0"]
    for eid, seed in [("ep1", 1), ("ep2", 2), ("ep3", 3)]:
        assert not w2.has(eid)
        w2.commit(_episode(w2, eid, "h", seed=seed))
    ds = EpisodeDataset(root)
    assert ds.episode_ids == ["ep0", "ep1", "ep2", "ep3"]
    ds.verify()
    with pytest.raises(DatasetFormatError, match="already committed"):
        w2.commit(_episode(w2, "ep0", "h"))


def test_finalize_sorts_by_source_order(tmp_path):
    w = DatasetWriter(tmp_path, INFO)
    for eid, order in [("b", 2), ("a", 1), ("c", 0)]:
        w.commit(_episode(w, eid, "h", order=order))
    assert w.finalize() == 3
    assert [r["episode_id"] for r in read_jsonl(tmp_path / "manifest.jsonl")] == ["c", "a", "b"]


def test_resume_with_other_settings_is_refused(tmp_path):
    DatasetWriter(tmp_path, INFO)
    with pytest.raises(DatasetFormatError, match="other settings.*reward"):
        DatasetWriter(tmp_path, {**INFO, "reward": RewardConfig(gamma=0.5).to_dict()})


def test_missing_and_corrupt_frames_name_episode_and_step(tmp_path):
    w = DatasetWriter(tmp_path, INFO)
    w.commit(_episode(w, "ep7", "h", n=4))
    (tmp_path / "episodes" / "ep7" / "rgb_2.png").unlink()
    (tmp_path / "episodes" / "ep7" / "depth_1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = EpisodeDataset(tmp_path)
    with pytest.raises(FrameError, match=r"episode 'ep7' step 2: rgb frame rgb_2.png is missing"):
        ds.load_rgb("ep7", 2)
    with pytest.raises(FrameError, match=r"episode 'ep7' step 1: depth frame depth_1.png is corrupt"):
        ds.load_depth("ep7", 1)
    with pytest.raises(FrameError, match="step 1"):
        ds.verify()
    with pytest.raises(FrameError, match="has no step 9"):
        ds.load_rgb("ep7", 9)


def test_bad_manifest_and_ids_are_clear_errors(tmp_path):
    with pytest.raises(DatasetFormatError, match="no dataset_info.json"):
        EpisodeDataset(tmp_path)
    w = DatasetWriter(tmp_path, INFO)
    w.commit(_episode(w, "ep0", "h"))
    rows = read_jsonl(tmp_path / "manifest.jsonl")
    del rows[0]["steps"][1]["action"]
    (tmp_path / "manifest.jsonl").write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(DatasetFormatError, match=r"episode 'ep0': step 1: field 'action': missing"):
        EpisodeDataset(tmp_path)
    with pytest.raises(DatasetFormatError, match="folder name"):
        EpisodeMeta("../x", "vln", "graph", "s")
    with pytest.raises(DatasetFormatError, match="action_space"):
        EpisodeMeta("x", "vln", "teleport", "s")


def test_frameless_episodes(tmp_path):
    w = DatasetWriter(tmp_path, {"task": "r2r", "action_space": "graph"})
    b = w.builder(EpisodeMeta("123_0", "r2r", "graph", "scanA", instruction="go"))
    b.add(StepData("Move", {"x": 0, "y": 0, "z": 0, "heading": 0}, geodesic_distance=2.0))
    b.add(StepData("Stop", {"x": 0, "y": 2, "z": 0, "heading": 0}, geodesic_distance=0.0))
    p = b.finish({"x": 0, "y": 2, "z": 0, "heading": 0}, 0.0)
    assert p.tmp_dir is None
    w.commit(p)
    ds = EpisodeDataset(tmp_path)
    assert ds[0]["success"] and ds[0]["path_length"] == pytest.approx(2.0)
    assert not (tmp_path / "episodes").exists()
    with pytest.raises(FrameError, match="no rgb frame was recorded"):
        ds.load_rgb("123_0", 0)


def test_split_by_scene_never_shares_a_scene():
    eps = [{"episode_id": f"e{i}", "scene": f"house_{i % 7}"} for i in range(70)]
    split = split_by_scene(eps, seed=3)
    scene_of = {e["episode_id"]: e["scene"] for e in eps}
    scenes = {k: {scene_of[i] for i in v} for k, v in split.items()}
    assert all(scenes.values())
    assert not (scenes["train"] & scenes["val"]) and not (scenes["train"] & scenes["test"])
    assert not (scenes["val"] & scenes["test"])
    assert sorted(sum(split.values(), [])) == sorted(scene_of)
    assert len(split["train"]) >= 40
    assert split == split_by_scene(eps, seed=3)


def test_hf_roundtrip_and_torch(tmp_path):
    import datasets
    import torch

    from navtune.data.hf import TorchStepDataset, save_hf, to_hf_dataset

    w = DatasetWriter(tmp_path / "ds", INFO)
    w.commit(_episode(w, "ep0", "h1"))
    w.commit(_episode(w, "ep1", "h2", n=2, seed=1))
    save_hf(tmp_path / "ds", tmp_path / "hf")
    shutil.rmtree(tmp_path / "ds" / "episodes")  # the saved HF copy embeds the frames
    hf = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(hf) == 5
    row = hf[3]
    assert row["episode_id"] == "ep1" and row["t"] == 0 and row["action"] == "move_forward"
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(np.asarray(row["rgb"]), rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    assert np.asarray(row["depth"]).dtype in (np.uint16, np.int32)
    assert hf[4]["done"] and hf[4]["reward"] == pytest.approx(RewardConfig().success_bonus - RewardConfig().slack)

    w = DatasetWriter(tmp_path / "ds2", INFO)
    w.commit(_episode(w, "ep0", "h1"))
    eps = to_hf_dataset(tmp_path / "ds2", level="episode")
    assert eps[0]["actions"] == ["move_forward", "move_forward", "stop"] and len(eps[0]["rgb"]) == 3
    tds = TorchStepDataset(tmp_path / "ds2")
    batch = torch.utils.data.default_collate([tds[0], tds[1]])
    assert batch["rgb"].shape == (2, 3, 12, 16) and batch["rgb"].dtype == torch.uint8
    assert batch["depth"].shape == (2, 1, 12, 16)
    assert batch["action"].tolist() == [0, 0]
