"""`navtune r2r score` / `replay` / `expert` on the real val_unseen files and on a hand-made R2R folder."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from navtune.cli import app
from navtune.graph import NavGraph
from navtune.tasks.r2r import R2RDataError, R2REpisode, load_predictions, write_connectivity, write_r2r_split
from navtune.tasks.r2r.score import score_predictions

KEYS = {"pl", "ne", "osr", "sr", "spl", "ndtw", "sdtw", "cls", "episodes"}
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_score_shortest_agent_cli(r2r_data_dir, tmp_path):
    preds = r2r_data_dir / "val_unseen_shortest_agent.json"
    out = tmp_path / "per_episode.json"
    r = invoke("r2r", "score", "--preds", preds, "--split", "val_unseen", "--data-dir", r2r_data_dir, "--out", out)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert KEYS <= set(summary)
    assert summary["episodes"] == 2349
    assert summary["sr"] == 1.0 and summary["spl"] == 1.0 and summary["osr"] == 1.0 and summary["ne"] == 0.0
    assert 0.99 < summary["ndtw"] <= 1.0 and 0.99 < summary["cls"] <= 1.0
    rows = json.loads(out.read_text())
    assert len(rows) == 2349 and {"instr_id", "scan", "spl", "steps"} <= set(rows[0])
    r = invoke("r2r", "score", "--preds", preds, "--data-dir", r2r_data_dir, "--spl-reference", "path")
    assert json.loads(r.stdout.strip().splitlines()[-1])["spl"] == 1.0


def test_replay_shortest_agent_has_no_mismatch(r2r_data_dir):
    r = invoke("r2r", "replay", "--preds", r2r_data_dir / "val_unseen_shortest_agent.json", "--split", "val_unseen",
               "--data-dir", r2r_data_dir)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1] == "mismatches: 0"
    assert "episodes: 2349" in r.stdout


@pytest.fixture()
def line_world(tmp_path):
    """A-B-C-D-E along x 2 m apart (+ F 3 m off C), two instructions of path A B C D starting facing +x."""
    g = NavGraph.from_edges(["A", "B", "C", "D", "E", "F"],
                            [(0, 0, 0), (2, 0, 0), (4, 0, 0), (6, 0, 0), (8, 0, 0), (4, 3, 0)],
                            [("A", "B"), ("B", "C"), ("C", "D"), ("D", "E"), ("C", "F")], name="line")
    write_connectivity(g, tmp_path / "connectivity" / "line_connectivity.json")
    eps = [R2REpisode(f"1_{k}", 1, "line", ("A", "B", "C", "D"), 1.5708, "walk east", 6.0) for k in range(2)]
    write_r2r_split(eps, tmp_path / "R2R_mini.json")
    return tmp_path


def _preds(path, rows):
    path.write_text(json.dumps([{"instr_id": i, "trajectory": [[v, h, 0.0] for v, h in t]} for i, t in rows]))
    return path


E = 1.5707963267948966  # facing +x


def test_score_hand_made_world(line_world):
    p = _preds(line_world / "p.json", [
        ("1_0", [("A", E), ("B", E), ("C", E), ("D", E)]),  # the reference itself
        ("1_1", [("A", E), ("A", E + 0.5236), ("A", E)]),  # turns in place then stops at the start
    ])
    r = invoke("r2r", "score", "--preds", p, "--split", "mini", "--data-dir", line_world)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["episodes"] == 2 and s["sr"] == 0.5 and s["spl"] == 0.5 and s["pl"] == 3.0 and s["ne"] == 3.0
    assert s["steps"] == 2.5


def test_missing_ids_are_an_error_listing_them(line_world):
    p = _preds(line_world / "p.json", [("1_0", [("A", E)])])
    r = invoke("r2r", "score", "--preds", p, "--split", "mini", "--data-dir", line_world)
    assert r.exit_code == 2
    assert "1 of 2 instr_ids have no prediction: 1_1" in r.stderr


def test_extra_ids_are_ignored_with_a_warning(line_world):
    p = _preds(line_world / "p.json", [("1_0", [("A", E)]), ("1_1", [("A", E)]), ("9_9", [("A", E)])])
    r = invoke("r2r", "score", "--preds", p, "--split", "mini", "--data-dir", line_world)
    assert r.exit_code == 0
    assert "warning" in r.stderr and "9_9" in r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["episodes"] == 2


@pytest.mark.parametrize(
    "traj, message",
    [
        ([("A", E), ("Q", E)], "instr_id 1_0: field 'trajectory[1]': unknown viewpoint 'Q'"),
        ([("A", E), ("C", E)], "instr_id 1_0: field 'trajectory[1]': jump between non-adjacent"),
        ([("B", E), ("C", E)], "instr_id 1_0: field 'trajectory[0]': trajectory starts at 'B'"),
    ],
)
def test_malformed_predictions(line_world, traj, message):
    p = _preds(line_world / "p.json", [("1_0", traj), ("1_1", [("A", E)])])
    r = invoke("r2r", "score", "--preds", p, "--split", "mini", "--data-dir", line_world)
    assert r.exit_code == 2 and message in r.stderr and "p.json" in r.stderr
    (line_world / "q.json").write_text('{"instr_id": "1_0"}')
    r = invoke("r2r", "score", "--preds", line_world / "q.json", "--split", "mini", "--data-dir", line_world)
    assert r.exit_code == 2 and "expected a JSON list" in r.stderr


def test_replay_reports_impossible_steps(line_world):
    # facing +x: Move reaches B; jumping from B to F (not in view, not adjacent) and turning 60° are mismatches
    p = _preds(line_world / "p.json", [
        ("1_0", [("A", E), ("B", E), ("B", E + 2 * 0.5235987755982988), ("C", E + 2 * 0.5235987755982988)]),
        ("1_1", [("A", E), ("B", E), ("C", E), ("C", 0.0), ("F", 0.0)]),
    ])
    r = invoke("r2r", "replay", "--preds", p, "--split", "mini", "--data-dir", line_world, "--strict")
    assert r.exit_code == 1
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "mismatches: 3"
    assert any("1_0 step 2: turned more than 30 degrees" in x for x in lines)
    assert any("1_0 step 3" in x and "not navigable" in x for x in lines)  # heading 150°: C (90°) is 60° off
    assert any("1_1 step 3: turned more than 30 degrees" in x for x in lines)


def test_expert_cli_writes_followable_predictions(line_world, r2r_data_dir, tmp_path):
    out = tmp_path / "expert.json"
    r = invoke("r2r", "expert", "--split", "mini", "--data-dir", line_world, "--out", out)
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    assert stats == {"paths": 1, "reachable": 1, "followable": 1, "detours": 0, "mean_actions": 4.0, "max_actions": 4}
    assert load_predictions(out)["1_1"] == [("A", E, 0.0), ("B", E, 0.0), ("C", E, 0.0), ("D", E, 0.0)]


def test_score_api_on_real_data_is_exact(r2r_data_dir):
    from navtune.tasks.r2r import load_graphs, load_r2r_split

    eps = load_r2r_split(r2r_data_dir, "val_unseen")[:30]
    graphs = load_graphs(r2r_data_dir, {e.scan for e in eps})
    preds = {e.instr_id: [(v, 0.0, 0.0) for v in e.path] for e in eps}
    res = score_predictions(preds, eps, graphs)
    assert all(r["ndtw"] == 1.0 and r["cls"] == pytest.approx(1.0) and r["spl"] == 1.0 for r in res.per_episode)
    with pytest.raises(R2RDataError, match="29 of 30"):
        score_predictions({eps[0].instr_id: preds[eps[0].instr_id]}, eps, graphs)


def test_replay_checks_the_start_and_the_heading_grid(line_world):
    from navtune.tasks.r2r import load_graphs, load_r2r_split
    from navtune.tasks.r2r.replay import replay_predictions

    eps = {e.instr_id: e for e in load_r2r_split(line_world, "mini")}
    graphs = load_graphs(line_world, {"line"})
    preds = {
        "1_0": [("A", 0.0, 0.0), ("B", 0.0, 0.0)],  # starts facing +y although the episode snaps to 90°
        "1_1": [("A", E, 0.0), ("A", E + 0.3, 0.0), ("A", E + 0.5236, 0.5236), ("B", E + 0.5236, 0.0)],
    }
    report = replay_predictions(preds, eps, graphs)
    reasons = [(m.instr_id, m.step, m.reason.split(" ")[0]) for m in report.mismatches]
    # 1_0: wrong start heading, then B (at 90°) is not in view from heading 0
    # 1_1: an off-grid heading; the look-up at step 2 is fine; B at 90° is 30° off heading 120°: navigable
    assert reasons == [("1_0", 0, "start"), ("1_0", 1, "'B'"), ("1_1", 1, "heading")]
    assert (report.episodes, report.steps) == (2, 4)
