"""Habitat dataset readers on small generated files in habitat's formats (ObjectNav-v1 split + content files,
VLN-CE R2R), the frame conversion they apply, their errors, and `navtune habitat convert-objectnav`."""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from navtune.cli import app
from navtune.tasks.habitat_datasets import (
    HabitatDataError,
    load_objectnav_split,
    load_vlnce_split,
    read_objectnav_file,
)
from navtune.tasks.objectnav import read_episodes

SQ = math.sqrt(0.5)


def gz(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(obj, f)
    return path


def objectnav_episode(eid, scene_id, category="chair", **over):
    ep = {"episode_id": eid, "scene_id": scene_id, "scene_dataset_config": "hm3d.scene_dataset_config.json",
          "start_position": [1.0, 0.1, -2.0], "start_rotation": [0.0, SQ, 0.0, SQ],  # +90° yaw: turned left
          "object_category": category, "info": {"geodesic_distance": 4.5, "euclidean_distance": 3.9,
                                                "closest_goal_object_id": 12},
          "goals": [], "shortest_paths": None}
    ep.update(over)
    return ep


def goal(obj_id, pos, views, radius=None):
    return {"object_id": obj_id, "object_name": f"chair_{obj_id}", "object_category": "chair", "position": pos,
            "radius": radius, "view_points": [{"agent_state": {"position": v, "rotation": [0, 0, 0, 1]}, "iou": 0.3}
                                              for v in views]}


@pytest.fixture()
def objectnav_root(tmp_path):
    root = tmp_path / "objectnav_hm3d_v1"
    gz(root / "val" / "val.json.gz", {"episodes": [], "category_to_task_category_id": {"chair": 0, "bed": 1}})
    for scene in ("00800-TEEsavR23oF", "00802-wcojb4TFT35"):
        name = scene.split("-")[1]
        sid = f"hm3d/val/{scene}/{name}.basis.glb"
        gz(root / "val" / "content" / f"{scene}.json.gz", {
            "episodes": [objectnav_episode("0", sid), objectnav_episode("1", sid, "bed")],
            "goals_by_category": {
                f"{name}.basis.glb_chair": [goal(12, [3.0, 0.5, -4.0], [[3.0, 0.1, -3.5], [2.5, 0.1, -4.0]])],
                f"{name}.basis.glb_bed": [goal(20, [-1.0, 0.4, 2.0], [[-1.0, 0.1, 1.0]], radius=0.8),
                                          goal(21, [5.0, 0.4, 0.0], [])],
            },
        })
    return root


def test_objectnav_split_reads_content_files_in_navtune_frame(objectnav_root):
    eps = load_objectnav_split(objectnav_root, "val", success_distance=0.5, max_steps=300)
    assert [e.episode_id for e in eps] == ["TEEsavR23oF:0", "TEEsavR23oF:1", "wcojb4TFT35:0", "wcojb4TFT35:1"]
    e = eps[0]
    assert e.scene_id == "hm3d/val/00800-TEEsavR23oF/TEEsavR23oF.basis.glb"
    assert e.start_position == pytest.approx((1.0, 2.0, 0.1))  # habitat (x, y, z) -> navtune (x, -z, y)
    assert e.start_heading == pytest.approx(math.radians(270))  # habitat's +90° yaw = a left turn = west
    assert e.object_category == "chair" and e.instruction == "find a chair"
    assert e.goals[0].position == pytest.approx((3.0, 4.0, 0.5)) and e.goals[0].object_id == "12"
    assert e.info["view_points"] == [pytest.approx([3.0, 3.5, 0.1]), pytest.approx([2.5, 4.0, 0.1])]
    assert e.geodesic_distance == 4.5 and e.success_distance == 0.5 and e.max_steps == 300
    assert e.info["habitat_episode_id"] == "0" and e.info["scene_dataset_config"] == "hm3d.scene_dataset_config.json"
    bed = eps[1]
    assert [g.radius for g in bed.goals] == [0.8, 0.0] and len(bed.info["view_points"]) == 1
    assert [e.episode_id for e in load_objectnav_split(objectnav_root, "val", scenes=["wcojb4TFT35"])] == \
        ["wcojb4TFT35:0", "wcojb4TFT35:1"]


def test_objectnav_errors_name_file_episode_and_field(objectnav_root, tmp_path):
    content = objectnav_root / "val" / "content" / "00800-TEEsavR23oF.json.gz"
    sid = "hm3d/val/00800-TEEsavR23oF/TEEsavR23oF.basis.glb"
    bad = objectnav_episode("3", sid)
    del bad["start_position"]
    gz(content, {"episodes": [bad], "goals_by_category": {"TEEsavR23oF.basis.glb_chair": [goal(1, [0, 0, 0], [])]}})
    with pytest.raises(HabitatDataError, match=r"00800-TEEsavR23oF\.json\.gz: episode 3: field 'start_position'"):
        load_objectnav_split(objectnav_root, "val")
    gz(content, {"episodes": [objectnav_episode("4", sid, "sofa")], "goals_by_category": {}})
    with pytest.raises(HabitatDataError, match=r"episode 4: field 'goals'.*TEEsavR23oF\.basis\.glb_sofa"):
        read_objectnav_file(content)
    gz(content, {"episodes": [objectnav_episode("5", sid, start_rotation=[0, 0, 1])],
                 "goals_by_category": {"TEEsavR23oF.basis.glb_chair": [goal(1, [0, 0, 0], [])]}})
    with pytest.raises(HabitatDataError, match=r"episode 5: field 'start_rotation'"):
        read_objectnav_file(content)
    ep = objectnav_episode("6", sid)
    ep["info"] = {}
    gz(content, {"episodes": [ep], "goals_by_category": {"TEEsavR23oF.basis.glb_chair": [goal(1, [0, 0, 0], [])]}})
    with pytest.raises(HabitatDataError, match=r"field 'info\.geodesic_distance'"):
        read_objectnav_file(content)
    content.write_bytes(b"not gzip")
    with pytest.raises(HabitatDataError, match=r"00800-TEEsavR23oF\.json\.gz: not a readable gzip"):
        read_objectnav_file(content)
    with pytest.raises(HabitatDataError, match=r"train\.json\.gz: file not found"):
        load_objectnav_split(objectnav_root, "train")


def test_vlnce_split(tmp_path):
    root = tmp_path / "R2R_VLNCE_v1-3_preprocessed"
    ep = {"episode_id": 7, "trajectory_id": 4, "scene_id": "mp3d/7y3sRwLe3Va/7y3sRwLe3Va.glb",
          "start_position": [0.5, 0.2, 1.0], "start_rotation": [0.0, 1.0, 0.0, 0.0],
          "info": {"geodesic_distance": 9.9}, "goals": [{"position": [4.0, 0.2, -3.0], "radius": 3.0}],
          "instruction": {"instruction_text": "Go up the stairs.", "instruction_tokens": [5, 9]},
          "reference_path": [[0.5, 0.2, 1.0], [2.0, 0.2, -1.0], [4.0, 0.2, -3.0]]}
    gz(root / "val_seen" / "val_seen.json.gz", {"episodes": [ep], "instruction_vocab": {"word_list": []}})
    (e,) = load_vlnce_split(root, "val_seen")
    assert e.episode_id == "7" and e.trajectory_id == 4 and e.scan == "7y3sRwLe3Va"
    assert e.start_position == pytest.approx((0.5, -1.0, 0.2))
    assert e.start_heading == pytest.approx(math.pi)  # 180° about y: faces habitat +z = navtune -y
    assert e.goal_position == pytest.approx((4.0, 3.0, 0.2)) and e.success_distance == 3.0
    assert e.reference_path[1] == pytest.approx((2.0, 1.0, 0.2)) and e.geodesic_distance == 9.9
    assert e.instruction == "Go up the stairs."
    del ep["instruction"]
    gz(root / "val_seen" / "val_seen.json.gz", {"episodes": [ep]})
    with pytest.raises(HabitatDataError, match=r"val_seen\.json\.gz: episode 7: field 'instruction'"):
        load_vlnce_split(root, "val_seen")


def test_cli_converts_objectnav_to_navtune_episodes(objectnav_root, tmp_path):
    out = tmp_path / "val.jsonl"
    res = CliRunner().invoke(app, ["habitat", "convert-objectnav", "--data-root", str(objectnav_root), "--split", "val",
                                   "--out", str(out), "--success-distance", "0.1", "--limit", "3"])
    assert res.exit_code == 0, res.output
    assert "wrote 3 episodes from 2 scenes" in res.output
    eps = read_episodes(out)
    assert eps == load_objectnav_split(objectnav_root, "val", success_distance=0.1)[:3]
    res = CliRunner().invoke(app, ["habitat", "convert-objectnav", "--data-root", str(tmp_path / "nope"),
                                   "--out", str(out)])
    assert res.exit_code == 2 and "val.json.gz: file not found" in res.output
