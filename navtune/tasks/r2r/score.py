"""Score R2R predictions against a split with the official metrics (navtune.metrics.vln).

Graph distances are all-pairs per scan, computed once; each episode then costs a few look-ups.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from navtune.graph.navgraph import NavGraph
from navtune.metrics.vln import METRIC_KEYS, average, vln_episode_metrics
from navtune.tasks.r2r.data import R2RDataError, R2REpisode

SUMMARY_KEYS = METRIC_KEYS  # pl, ne, osr, sr, spl, ndtw, sdtw, cls, steps (+ "episodes" in the summary)


@dataclass
class ScoreResult:
    per_episode: list[dict]
    summary: dict
    warnings: list[str] = field(default_factory=list)


def _list_ids(ids: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def score_predictions(
    predictions: Mapping[str, Sequence[Sequence]],
    episodes: Sequence[R2REpisode],
    graphs: Mapping[str, NavGraph],
    spl_reference: str = "shortest",
    success_radius: float = 3.0,
    preds_file: str | os.PathLike = "<predictions>",
    progress: bool = False,
) -> ScoreResult:
    """Per-episode metrics and their averages. Every episode needs a prediction (missing instr_ids raise
    an error listing them); predictions for unknown instr_ids are ignored with a warning."""
    by_id = {e.instr_id: e for e in episodes}
    missing = [e.instr_id for e in episodes if e.instr_id not in predictions]
    if missing:
        raise R2RDataError(preds_file, f"{len(missing)} of {len(episodes)} instr_ids have no prediction: "
                                       f"{_list_ids(missing)}", field="instr_id")
    warnings = []
    extra = [i for i in predictions if i not in by_id]
    if extra:
        warnings.append(f"{preds_file}: ignoring {len(extra)} predictions for instr_ids not in the split: "
                        f"{_list_ids(extra)}")
    items = list(episodes)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="score", unit="ep")
    rows = []
    for ep in items:
        graph = graphs[ep.scan]
        traj = [s[0] for s in predictions[ep.instr_id]]
        for k, vid in enumerate(traj):
            if vid not in graph.index:
                raise R2RDataError(preds_file, f"unknown viewpoint {vid!r} in scan {ep.scan!r}",
                                   episode=f"instr_id {ep.instr_id}", field=f"trajectory[{k}]")
            if k and vid != traj[k - 1] and not graph.adjacent(traj[k - 1], vid):
                raise R2RDataError(preds_file, f"jump between non-adjacent viewpoints {traj[k - 1]!r} -> {vid!r}",
                                   episode=f"instr_id {ep.instr_id}", field=f"trajectory[{k}]")
        if traj[0] != ep.start:
            raise R2RDataError(preds_file, f"trajectory starts at {traj[0]!r}, the episode at {ep.start!r}",
                               episode=f"instr_id {ep.instr_id}", field="trajectory[0]")
        m = vln_episode_metrics(traj, list(ep.path), graph.distance, graph.edge_length, success_radius,
                                spl_reference)
        rows.append({"instr_id": ep.instr_id, "scan": ep.scan, **m})
    summary = average(rows, SUMMARY_KEYS)
    return ScoreResult(rows, summary, warnings)

