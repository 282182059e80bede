"""`navtune report`: a self-contained HTML page that headless Chromium renders, with the runs' table,
failure breakdown, maps and PNGs."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from navtune.evaluation import AgentSpec, EvalConfig, EvalTask, run_eval
from navtune.viz import build_report, load_run, markdown_table

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def runs(r2r_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    raw = json.loads((r2r_data_dir / "R2R_val_unseen.json").read_text())
    scan = raw[0]["scan"]
    (root / "data" / "connectivity").mkdir(parents=True)
    shutil.copy(r2r_data_dir / "connectivity" / f"{scan}_connectivity.json", root / "data" / "connectivity")
    (root / "data" / "R2R_mini.json").write_text(json.dumps([x for x in raw if x["scan"] == scan][:3]))
    task = EvalTask(backend="graph", data_dir=str(root / "data"), split="mini")
    dirs = []
    for kind in ("oracle", "forward", "random"):
        run_eval(root / kind, AgentSpec(kind), task, EvalConfig(num_envs=3, progress=False))
        dirs.append(root / kind)
    return root, dirs


def test_report_is_self_contained_and_complete(runs):
    root, dirs = runs
    html_path = build_report(dirs, root / "report", names=["Oracle", "Forward-only", "Random"], episodes=2)
    page = html_path.read_text()
    # every image is inlined; nothing is fetched from elsewhere
    assert not re.search(r'src="(?!data:image/png;base64,)', page)
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 2 + 2 * 3  # metric bars, failure bars, 2 episodes x 3 runs maps
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    pngs = sorted(p.name for p in (root / "report").glob("*.png"))
    assert "metrics_vln.png" in pngs and "failures_vln.png" in pngs and len(pngs) == 8
    # the table shows each run's numbers as the summaries hold them
    for name, d in zip(["Oracle", "Forward-only", "Random"], dirs):
        s = json.loads((d / "summary.json").read_text())
        assert f">{name}</th>" in page
        lo, hi = s["sr_ci95"]  # every rate carries its Wilson interval
        assert lo <= s["sr"] <= hi
        assert re.search(rf'<td( class="best")?>{100 * s["sr"]:.1f}<br><span class="ci">\[{100 * lo:.1f}, '
                         rf'{100 * hi:.1f}\]</span></td>', page)
    md = markdown_table([load_run(d) for d in dirs])
    assert md.count("\n") == 4 and "| oracle | 100.0 [" in md and md.splitlines()[2].endswith("| 9 |")
    assert "Paired differences against Oracle" in page


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    root, dirs = runs
    html_path = build_report(dirs, tmp_path / "rep", episodes=1)
    shot = tmp_path / "shot.png"
    base = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(base + ["--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=120)
    assert '<table class="metrics"' in dom.stdout and "forward" in dom.stdout
    subprocess.run(base + ["--window-size=1200,1600", f"--screenshot={shot}", html_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (1600, 1200)
    assert img.std() > 10 and (img < 128).mean() > 0.005  # text, table lines and plots drawn, not a blank page


def test_report_cli(runs, tmp_path):
    root, dirs = runs
    exe = Path(sys.executable).parent / "navtune"
    out = subprocess.run([str(exe), "report", *map(str, dirs), "--out", str(tmp_path / "r"), "--episodes", "1"],
                         capture_output=True, text=True, check=True)
    assert "report: " in out.stdout and (tmp_path / "r" / "report.html").exists()
    # the paired comparison: forward and random against the oracle, episode by episode
    assert "Paired differences against oracle" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("| random | sr |"))
    assert "| 100.0 | 0.0 | -100.0 [-100.0, -100.0] * | 9 |" in line
    bad = subprocess.run([str(exe), "report", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "run.json" in bad.stderr
