"""Time `navtune r2r score` work on all 2,349 val_unseen shortest-agent predictions (goal: well under 30 s),
side by side with the official evaluator's approach (networkx all-pairs Dijkstra per scan, dict look-ups),
checking that both give the same numbers.

    .venv/bin/python bench/bench_r2r_score.py [--data-dir ../shared/data/r2r]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import networkx as nx

from navtune.metrics.vln import average, vln_episode_metrics
from navtune.tasks.r2r import load_graphs, load_predictions, load_r2r_split
from navtune.tasks.r2r.replay import replay_predictions
from navtune.tasks.r2r.score import SUMMARY_KEYS, score_predictions

ROOT = Path(__file__).resolve().parents[1]


def official_style(preds, episodes, graphs) -> dict:
    """The reference evaluator's approach: networkx all-pairs Dijkstra per scan into nested dicts, then the
    same metric formulas with dict look-ups as the distance."""
    rows = []
    for scan, g in graphs.items():
        nxg = g.to_networkx()
        d = dict(nx.all_pairs_dijkstra_path_length(nxg, weight="weight"))
        dist = lambda a, b, d=d: d[a][b]  # noqa: E731
        for ep in episodes:
            if ep.scan == scan:
                rows.append(vln_episode_metrics([s[0] for s in preds[ep.instr_id]], list(ep.path), dist, dist))
    return average(rows, SUMMARY_KEYS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "r2r")
    args = ap.parse_args()
    d = args.data_dir

    t0 = time.perf_counter()
    episodes = load_r2r_split(d, "val_unseen")
    graphs = load_graphs(d, {e.scan for e in episodes})
    preds = load_predictions(d / "val_unseen_shortest_agent.json")
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = score_predictions(preds, episodes, graphs)
    t_score = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = replay_predictions(preds, {e.instr_id: e for e in episodes}, graphs)
    t_replay = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = official_style(preds, episodes, graphs)
    t_ref = time.perf_counter() - t0

    for k in SUMMARY_KEYS:
        assert abs(ref[k] - result.summary[k]) < 1e-9, (k, ref[k], result.summary[k])
    print(f"episodes: {result.summary['episodes']}  scans: {len(graphs)}  mismatches: {report.num_mismatches}")
    print(f"load (validated split + graphs + predictions): {t_load:.2f} s")
    print(f"navtune score (scipy all-pairs once per scan, numpy look-ups): {t_score:.2f} s  "
          f"({t_score / 30.0:.1%} of the 30 s budget)")
    print(f"official-style (networkx all-pairs per scan, dict look-ups):  {t_ref:.2f} s  (same numbers)")
    print(f"ratio navtune / official-style: {t_score / t_ref:.2f}x")
    print(f"replay of all trajectories: {t_replay:.2f} s")
    print(json.dumps({"load_s": t_load, "score_s": t_score, "official_style_s": t_ref, "replay_s": t_replay,
                      "ratio": t_score / t_ref, **{k: result.summary[k] for k in ("sr", "spl", "episodes")}}))


if __name__ == "__main__":
    main()
