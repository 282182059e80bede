"""`navtune demo --quick`: the whole loop completes, writes the report, the table and OUT/summary.json, exports
a self-describing final agent that a bare `navtune eval` reproduces, and resumes; with its output not a
terminal (pipes here, like `navtune demo > log`) it prints one plain line per stage start and end on stdout
instead of the live display."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from navtune.demo import QUICK, STAGES

AGENTS = ["random", "forward-only", "untrained", "SFT", "SFT+AWR"]  # the quick recipe's ladder

NAVTUNE = str(Path(sys.executable).parent / "navtune")
# rich treats these as "a terminal" even on a pipe
ENV = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}


@pytest.mark.slow
@pytest.mark.gl
def test_demo_quick_completes_and_resumes(tmp_path):
    out = tmp_path / "demo"
    res = subprocess.run([NAVTUNE, "demo", "--quick", "--out", str(out)], capture_output=True, text=True, timeout=900,
                         env=ENV)
    assert res.returncode == 0, res.stderr[-3000:]
    # stdout is a pipe: one plain line per stage start and end on it (no live display), in stage order
    stage_lines = [line for line in res.stdout.splitlines() if line.startswith("navtune demo [")]
    expected = []
    for k, s in enumerate(STAGES, 1):
        title = re.escape(f"navtune demo [{k}/{len(STAGES)}] {s.title}")
        if s.enabled(QUICK):
            expected += [title + ": started", title + r": done in \d+\.\d s"]
        else:
            expected += [title + ": not in this recipe, skipped"]
    assert len(stage_lines) == len(expected), res.stdout[-3000:]
    for line, pattern in zip(stage_lines, expected):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert "\x1b[" not in res.stderr + res.stdout  # no terminal control codes
    lines = res.stdout.splitlines()
    report = Path(next(line for line in lines if line.startswith("report: ")).split(": ", 1)[1])
    assert report.is_file() and report.parent == (out / "report").resolve()
    # the headline table: one row per agent, SR (with its interval) and EPA columns, then paired differences
    table = [line for line in lines if line.startswith("| ") and "|---" not in line]
    head = table.index(next(t for t in table if t.startswith("| run | SR % |")))
    rows = table[head + 1: head + 1 + len(AGENTS)]
    assert "EPA %" in table[head] and [row.split("|")[1].strip() for row in rows] == AGENTS
    assert "Paired differences against untrained" in res.stdout and "Paired differences against SFT" in res.stdout
    for name in AGENTS:
        summary = json.loads((out / "runs" / name.replace("+", "_").lower() / "summary.json").read_text())
        assert summary["episodes"] == 6 and summary["epa"] is not None
    # OUT/summary.json in the shape
    demo_summary = json.loads((out / "summary.json").read_text())
    assert demo_summary["final"] == "SFT+AWR" and demo_summary["test_seeds"] == "1000-1001"
    assert (out / demo_summary["test_file"]).is_file() and demo_summary["wall_s"] > 0
    assert list(demo_summary["agents"]) == AGENTS
    stages = {n: a["stage"] for n, a in demo_summary["agents"].items()}
    assert stages == {"random": "baseline", "forward-only": "baseline", "untrained": "untrained", "SFT": "sft",
                      "SFT+AWR": "offline"}
    for a in demo_summary["agents"].values():
        lo, hi = a["sr_ci95"]
        assert 0.0 <= lo <= a["sr"] <= hi <= 1.0 and a["episodes"] == 6
    # the final agent is one standalone, self-describing folder that a bare `navtune eval` reproduces
    card = json.loads((out / "final" / "navtune_agent.json").read_text())
    assert card["adapter"] is False and card["format"] == "chat" and card["image_size"] == [56, 56]
    again_eval = subprocess.run([NAVTUNE, "eval", "--agent", "vlm", "--model", str(out / "final"), "--data-dir",
                                 str(out / "episodes"), "--split", "test", "--renderer", "house", "--num-envs", "3",
                                 "--out", str(tmp_path / "reeval"), "--quiet"], capture_output=True, text=True,
                                timeout=600, env=ENV)
    assert again_eval.returncode == 0, again_eval.stderr[-2000:]
    re_rows = {r["episode_id"]: r for r in map(json.loads, (tmp_path / "reeval" / "episodes.jsonl").read_text().splitlines())}
    demo_rows = {r["episode_id"]: r for r in map(json.loads, (out / "runs" / "sft_awr" / "episodes.jsonl").read_text().splitlines())}
    assert {k: r["actions"] for k, r in re_rows.items()} == {k: r["actions"] for k, r in demo_rows.items()}
    assert json.loads((tmp_path / "reeval" / "summary.json").read_text())["sr"] == demo_summary["agents"]["SFT+AWR"]["sr"]
    # every stage recorded; the data the loop made is real
    assert all((out / "stages" / f"{s.name}.json").is_file() for s in STAGES)
    mine = json.loads((out / "stages" / "mine.json").read_text())
    awr = json.loads((out / "stages" / "awr.json").read_text())
    assert awr["failure_episodes"] == mine["kept"]
    assert (out / "train" / "awr" / "final" / "adapter_config.json").is_file()
    html = report.read_text()
    assert html.count("<tr>") >= 1 + len(AGENTS) and "data:image/png;base64," in html
    table = table[head: head + 1 + len(AGENTS)]
    # rerun: every stage is skipped, same table
    t0 = time.time()
    again = subprocess.run([NAVTUNE, "demo", "--quick", "--out", str(out)], capture_output=True, text=True, timeout=300,
                           env=ENV)
    assert again.returncode == 0
    assert sum(line.endswith(": done before, skipped") for line in again.stdout.splitlines()) == len(STAGES)
    again_table = [line for line in again.stdout.splitlines() if line.startswith("| ") and "|---" not in line]
    assert again_table[: len(table)] == table
    assert time.time() - t0 < 60
    # another configuration into the same folder is refused
    other = subprocess.run([NAVTUNE, "demo", "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "other settings" in other.stderr


@pytest.mark.slow
@pytest.mark.gl
def test_demo_ladder_with_an_online_rl_rung(tmp_path):
    """rl_iterations > 0 adds an "+RL" rung (stage "rl") trained by `navtune train rl` from the rung below it; the
    final agent is that rung's, exported standalone; a recipe without AWR skips mine and awr."""
    from dataclasses import replace

    from navtune.demo import run_demo

    cfg = replace(QUICK, awr_epochs=0, rl_iterations=1, rl_group_size=2, rl_episodes_per_iteration=2)
    res = run_demo(tmp_path / "demo", cfg=cfg, show=False)
    summary = json.loads(Path(res["summary"]).read_text())
    assert summary["final"] == "SFT+RL"
    assert {n: a["stage"] for n, a in summary["agents"].items()} == {
        "random": "baseline", "forward-only": "baseline", "untrained": "untrained", "SFT": "sft", "SFT+RL": "rl"}
    rl = json.loads((tmp_path / "demo" / "stages" / "rl.json").read_text())
    assert "sr" in rl["metrics"] and Path(rl["final"]).is_dir()
    card = json.loads((tmp_path / "demo" / "final" / "navtune_agent.json").read_text())
    assert card["adapter"] is False and card["format"] == "chat"
    assert not (tmp_path / "demo" / "train" / "awr").exists()
