"""`navtune demo --quick`: the whole loop completes, writes the report and the table, and resumes; with its
output not a terminal (pipes here, like `navtune demo > log`) it prints one plain line per stage start and
end on stdout instead of the live display."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from navtune.demo import AGENTS, STAGES
from navtune.demo.pipeline import STAGE_TITLES

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
        title = re.escape(f"navtune demo [{k}/{len(STAGES)}] {STAGE_TITLES[s]}")
        expected += [title + ": started", title + r": done in \d+\.\d s"]
    assert len(stage_lines) == len(expected), res.stdout[-3000:]
    for line, pattern in zip(stage_lines, expected):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert "\x1b[" not in res.stderr + res.stdout  # no terminal control codes
    lines = res.stdout.splitlines()
    report = Path(next(line for line in lines if line.startswith("report: ")).split(": ", 1)[1])
    assert report.is_file() and report.parent == (out / "report").resolve()
    # the headline table: one row per agent, SR and EPA columns
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].startswith("| run | SR % |") and "EPA %" in table[0]
    assert [row.split("|")[1].strip() for row in table[1:]] == list(AGENTS)
    for name in AGENTS:
        summary = json.loads((out / "runs" / name.replace("+", "_").lower() / "summary.json").read_text())
        assert summary["episodes"] == 6 and summary["epa"] is not None
    # every stage recorded; the data the loop made is real
    assert all((out / "stages" / f"{s}.json").is_file() for s in STAGES)
    mine = json.loads((out / "stages" / "mine.json").read_text())
    awr = json.loads((out / "stages" / "awr.json").read_text())
    assert awr["failure_episodes"] == mine["kept"]
    assert (out / "train" / "awr" / "final" / "adapter_config.json").is_file()
    html = report.read_text()
    assert html.count("<tr>") >= 1 + len(AGENTS) and "data:image/png;base64," in html
    # rerun: every stage is skipped, same table
    t0 = time.time()
    again = subprocess.run([NAVTUNE, "demo", "--quick", "--out", str(out)], capture_output=True, text=True, timeout=300,
                           env=ENV)
    assert again.returncode == 0
    assert sum(line.endswith(": done before, skipped") for line in again.stdout.splitlines()) == len(STAGES)
    assert [line for line in again.stdout.splitlines() if line.startswith("| ")] == table
    assert time.time() - t0 < 60
    # another configuration into the same folder is refused
    other = subprocess.run([NAVTUNE, "demo", "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "other settings" in other.stderr
