"""`navtune demo --task objectnav --quick`: seed 2's loop end to end, summary.json in the VLN demo's shape (with
valid-action % and decoding per agent, Wilson intervals), a self-describing final agent, --test-seeds."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from navtune.demo.objectnav import AGENTS, QUICK, STAGES, _sr_change
from navtune.envs.house.seeds import parse_seeds

NAVTUNE = str(Path(sys.executable).parent / "navtune")


def test_seed_ranges_and_the_paired_sr_change():
    d = _sr_change([0, 1, 1, 0] * 25, [1, 1, 1, 0] * 25, seed=0)
    assert d["mean"] == pytest.approx(0.25) and d["ci95"][0] < 0.25 < d["ci95"][1] and d["episodes"] == 100
    assert parse_seeds("1000-1002,7", "--test-seeds") == [7, 1000, 1001, 1002]
    for bad in ("ten", "5-3", "", "-1"):
        with pytest.raises(ValueError, match="test-seeds"):
            parse_seeds(bad, "--test-seeds")


@pytest.mark.slow
@pytest.mark.gl
def test_objectnav_demo_quick(tmp_path):
    out = tmp_path / "demo"
    cmd = [NAVTUNE, "demo", "--task", "objectnav", "--quick", "--out", str(out), "--quiet", "--test-seeds", "2000-2001"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert all((out / "stages" / f"{s}.json").is_file() for s in STAGES)
    s = json.loads((out / "summary.json").read_text())
    assert s["final"] == "SFT+AWR" and s["test_seeds"] == "2000-2001" and s["wall_s"] > 0
    test_file = out / s["test_file"]
    eps = [json.loads(line) for line in test_file.read_text().splitlines()]
    assert {e["scene_id"] for e in eps} == {"house_2000", "house_2001"} and len(eps) == 2 * QUICK.test_per_house
    assert list(s["agents"]) == [name for name, _ in AGENTS]
    for name, stage in AGENTS:
        a = s["agents"][name]
        assert a["stage"] == stage and a["episodes"] == len(eps)
        lo, hi = a["sr_ci95"]
        assert 0.0 <= lo <= a["sr"] <= hi <= 1.0
        assert 0.0 <= a["valid_action_pct"] <= 100.0
        assert a["decode"] == ("generate" if stage != "baseline" else None)
        assert {"spl", "epa", "failure_rates"} <= set(a)
    assert s["agents"]["random"]["valid_action_pct"] == 100.0
    assert set(s["awr_sr_change"]) == {"mean", "ci95", "episodes"}
    # the final agent describes itself: format, frame size, decoding, its system prompt beside the weights
    final = out / "final"
    agent = json.loads((final / "navtune_agent.json").read_text())
    assert agent["format"] == "objectnav-json" and agent["image_size"] == [QUICK.width, QUICK.height]
    assert agent["adapter"] is False and agent["decode"] == "generate" and agent["max_new_tokens"] == QUICK.max_new_tokens
    from navtune.evaluation import AgentSpec

    spec = AgentSpec("vlm", model=str(final)).resolved()  # what a bare `navtune eval --model OUT/final` runs
    assert (spec.format, spec.decode, spec.max_new_tokens, spec.image_size, spec.sees_depth) == (
        "objectnav-json", "generate", QUICK.max_new_tokens, (QUICK.width, QUICK.height), QUICK.depth)
    assert (final / "system_prompt.txt").read_text().startswith("You are a robot looking for an object")
    assert "AWR round: SR change" in res.stdout and (final / "model.safetensors").is_file()
    # a rerun skips every stage; held-out seeds that overlap the training houses are refused
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads((out / "summary.json").read_text())["agents"] == s["agents"]
    bad = subprocess.run([NAVTUNE, "demo", "--task", "objectnav", "--quick", "--out", str(tmp_path / "b"), "--quiet",
                          "--test-seeds", "0-3"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "overlaps the training houses" in bad.stderr
