"""R2R loading and validation: real files, and every kind of broken file naming file, episode and field."""
from __future__ import annotations

import json
import shutil

import pytest

from navtune.graph import NavGraph
from navtune.tasks.r2r import (
    R2RDataError,
    R2REpisode,
    load_connectivity,
    load_predictions,
    load_r2r_split,
    write_connectivity,
    write_r2r_split,
)

SCAN = "zsNo4HB9uLZ"


def test_real_split_counts_and_graph_facts(r2r_data_dir):
    eps = load_r2r_split(r2r_data_dir, "val_unseen")
    assert len(eps) == 2349 and len({e.path_id for e in eps}) == 783
    assert eps[0].instr_id == f"{eps[0].path_id}_0" and eps[2].instr_id == f"{eps[0].path_id}_2"
    g = load_connectivity(r2r_data_dir, eps[0].scan)
    # each hop of each reference path is an edge, and the file's `distance` is close to the path's length
    for e in eps[::3][:50]:
        g = load_connectivity(r2r_data_dir, e.scan)
        length = sum(g.edge_length(a, b) for a, b in zip(e.path, e.path[1:]))
        assert length == pytest.approx(e.distance, abs=0.05)
    raw = json.loads((r2r_data_dir / "connectivity" / f"{SCAN}_connectivity.json").read_text())
    g = load_connectivity(r2r_data_dir, SCAN)
    assert len(g) == sum(v["included"] for v in raw)
    first = next(v for v in raw if v["included"])
    assert tuple(g.position(first["image_id"])) == (first["pose"][3], first["pose"][7], first["pose"][11])


def _folder(tmp_path, r2r_data_dir, items):
    (tmp_path / "connectivity").mkdir()
    shutil.copy(r2r_data_dir / "connectivity" / f"{SCAN}_connectivity.json", tmp_path / "connectivity")
    (tmp_path / "R2R_mini.json").write_text(json.dumps(items))
    return tmp_path


def _good(r2r_data_dir):
    eps = [e for e in load_r2r_split(r2r_data_dir, "val_unseen", validate=False) if e.scan == SCAN]
    e = eps[0]
    return {"distance": e.distance, "scan": SCAN, "path_id": e.path_id, "path": list(e.path), "heading": e.heading,
            "instructions": ["go", "walk", "move"]}


@pytest.mark.parametrize(
    "mutate, field, message",
    [
        (lambda d: d.update(scan="NOPE"), "scan", "connectivity file for scan 'NOPE' not found"),
        (lambda d: d["path"].__setitem__(1, "deadbeef"), "path[1]", "unknown viewpoint 'deadbeef'"),
        (lambda d: d["path"].pop(1), "path[1]", "non-adjacent"),
        (lambda d: d.update(heading="north"), "heading", "finite number"),
        (lambda d: d.pop("instructions"), "instructions", "list of strings"),
        (lambda d: d.update(path=[]), "path", "non-empty"),
    ],
)
def test_broken_episode_names_file_episode_and_field(tmp_path, r2r_data_dir, mutate, field, message):
    item = _good(r2r_data_dir)
    if field == "path[1]" and message == "non-adjacent":
        g = load_connectivity(r2r_data_dir, SCAN)
        assert not g.adjacent(item["path"][0], item["path"][2])
    mutate(item)
    d = _folder(tmp_path, r2r_data_dir, [_good(r2r_data_dir) | {"path_id": 1}, item])
    with pytest.raises(R2RDataError) as ei:
        load_r2r_split(d, "mini")
    text = str(ei.value)
    assert "R2R_mini.json" in text and f"path_id {item['path_id']}" in text and f"'{field}'" in text
    assert message in text


def test_malformed_json_and_missing_files(tmp_path, r2r_data_dir):
    d = _folder(tmp_path, r2r_data_dir, [])
    (d / "R2R_bad.json").write_text('[{"scan": "x",')
    with pytest.raises(R2RDataError, match=r"R2R_bad.json: not valid JSON \(line 1"):
        load_r2r_split(d, "bad")
    with pytest.raises(R2RDataError, match="R2R_nope.json: R2R split 'nope' file not found"):
        load_r2r_split(d, "nope")
    (d / "connectivity" / "broken_connectivity.json").write_text("[{}]")
    with pytest.raises(R2RDataError, match="broken_connectivity.json: viewpoint entry 0: field 'image_id'"):
        load_connectivity(d, "broken")
    (d / "preds.json").write_text('[{"instr_id": "1_0", "trajectory": [["a", "east", 0]]}]')
    with pytest.raises(R2RDataError, match=r"preds.json: instr_id 1_0: field 'trajectory\[0\]'"):
        load_predictions(d / "preds.json")
    (d / "preds.json").write_text('[{"instr_id": "1_0", "trajectory": [["a", 0, 0]]}, {"instr_id": "1_0", "trajectory": [["a", 0, 0]]}]')
    with pytest.raises(R2RDataError, match="duplicate instr_id"):
        load_predictions(d / "preds.json")


def test_write_connectivity_and_split_round_trip(tmp_path):
    g = NavGraph.from_edges(["a", "b", "c"], [(0, 0, 1.5), (2, 0, 1.5), (2, 3, 1.5)], [("a", "b"), ("b", "c")],
                            name="house_0")
    write_connectivity(g, tmp_path / "connectivity" / "house_0_connectivity.json")
    eps = [R2REpisode(f"7_{k}", 7, "house_0", ("a", "b", "c"), 1.0, f"instruction {k}", 5.0) for k in range(2)]
    write_r2r_split(eps, tmp_path / "R2R_train.json")
    g2 = load_connectivity(tmp_path, "house_0")
    assert g2.ids == g.ids and g2.edges() == g.edges() and (g2.positions == g.positions).all()
    raw = json.loads((tmp_path / "connectivity" / "house_0_connectivity.json").read_text())
    assert raw[0]["pose"][:4] == [1.0, 0.0, 0.0, 0.0] and raw[0]["included"] and raw[0]["height"] == 1.5
    assert load_r2r_split(tmp_path, "train") == eps
    # MatterSim's navGraphPath lists its scans in scans.txt, like the real connectivity folder
    write_connectivity(g, tmp_path / "connectivity" / "house_10_connectivity.json")
    assert (tmp_path / "connectivity" / "scans.txt").read_text() == "house_0\nhouse_10\n"
