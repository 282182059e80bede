"""Run folders: what `navtune eval` writes and `navtune eval-merge` / `navtune report` read.

Layout of a run folder::

    run.json                              what was evaluated: agent spec, task, config (checked on resume)
    episodes.jsonl                        one result row per episode (unsharded run, or after merge)
    episodes.shard-<i>-of-<k>.jsonl       one file per shard when --num-shards k > 1
    summary.json                          averages over episodes (+ failure-mode rates), written at the end
    predictions.json                      VLN: trajectories in the R2R prediction format (navtune r2r score)
    frames/<episode_id>/<t>.png           thumbnails of the policy pass for the first --save-frames episodes
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from navtune.core.io import atomic_write_json, read_jsonl, write_jsonl
from navtune.evaluation.backends import BACKENDS
from navtune.evaluation.registry import task_metric_keys
from navtune.metrics.failures import FAILURE_MODES

RUN_FILE = "run.json"
RESULTS_FILE = "episodes.jsonl"
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.json"
EXTRA_KEYS = ("epa", "valid_action_pct", "collisions", "stuck", "oscillation", "collision", "early_stop", "timeout")


class RunFolderError(ValueError):
    """A run folder that cannot be resumed, merged or reported; the message names the file."""


def results_file(run_dir: str | os.PathLike, num_shards: int = 1, shard_id: int = 0) -> Path:
    run_dir = Path(run_dir)
    if num_shards == 1:
        return run_dir / RESULTS_FILE
    return run_dir / f"episodes.shard-{shard_id:03d}-of-{num_shards:03d}.jsonl"


def metric_keys(task: str, rows: Sequence[dict] = ()) -> tuple[str, ...]:
    """The summary keys: the task's measures' keys, any other metric the rows hold (a `--metric` measure),
    then the harness's own (EPA, valid-action %, failure modes)."""
    keys = list(task_metric_keys(task))
    for r in rows:
        keys += [k for k in r["metrics"] if k not in keys and k not in EXTRA_KEYS]
    return tuple(keys) + EXTRA_KEYS


def task_of_run(info: dict) -> str | None:
    """The task name of a run folder's run.json (None when its backend is not registered here)."""
    backend = info.get("task", {}).get("backend", "graph")
    return BACKENDS.get(backend).task if backend in BACKENDS else None


def summarize(rows: Sequence[dict], task: str | None = None) -> dict:
    """Mean of every metric over episodes (None values, e.g. EPA when it was not run, are skipped) and the
    failure-mode rates; `episodes` is the count."""
    task = task or (rows[0]["task"] if rows else "vln")
    out: dict = {}
    for k in metric_keys(task, rows):
        vals = [r["metrics"].get(k) for r in rows]
        vals = [float(v) for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
        out[k] = sum(vals) / len(vals) if vals else None
    out["episodes"] = len(rows)
    out["failure_rates"] = {m: (sum(bool(r["failures"].get(m)) for r in rows) / len(rows) if rows else None)
                            for m in FAILURE_MODES + ("failed",)}
    return out


def write_run_info(run_dir: str | os.PathLike, info: dict) -> None:
    """Write run.json, or check that an existing one describes the same evaluation (resume)."""
    import json

    path = Path(run_dir) / RUN_FILE
    info = json.loads(json.dumps(info))  # tuples -> lists, as the file holds them
    if path.exists():
        old = load_run_info(run_dir)
        keys = ("agent", "task", "epa")
        diff = [k for k in keys if old.get(k) != info.get(k)]
        if diff:
            raise RunFolderError(f"{path}: this run folder holds another evaluation (fields {diff} differ); "
                                 "resume with the same settings or pass a new --out folder")
        return
    atomic_write_json(path, info)


def load_run_info(run_dir: str | os.PathLike) -> dict:
    import json

    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise RunFolderError(f"{path}: not found (not a navtune eval run folder)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}: not valid JSON ({e})") from None


def load_rows(run_dir: str | os.PathLike) -> list[dict]:
    """The run's rows in episode order: the merged episodes.jsonl, else all shard files together."""
    run_dir = Path(run_dir)
    files = [run_dir / RESULTS_FILE] if (run_dir / RESULTS_FILE).exists() else sorted(run_dir.glob("episodes.shard-*.jsonl"))
    if not files:
        raise RunFolderError(f"{run_dir}: no {RESULTS_FILE} or shard result files")
    rows: dict[str, dict] = {}
    for f in files:
        for k, r in enumerate(read_jsonl(f)):
            if "episode_id" not in r or "metrics" not in r:
                raise RunFolderError(f"{f}: line {k + 1} lacks field 'episode_id' or 'metrics'")
            rows.setdefault(r["episode_id"], r)
    return sorted(rows.values(), key=lambda r: r.get("order", 0))


def write_predictions(run_dir: str | os.PathLike, rows: Iterable[dict]) -> Path | None:
    """VLN rows -> predictions.json in the R2R format ([{instr_id, trajectory}]); None for ObjectNav."""
    from navtune.tasks.r2r import write_predictions as write_r2r

    preds = {r["episode_id"]: r["trajectory"] for r in rows if r.get("trajectory")}
    if not preds:
        return None
    path = Path(run_dir) / PREDICTIONS_FILE
    write_r2r(preds, path)
    return path


def finalize_run(run_dir: str | os.PathLike, rows: Sequence[dict] | None = None, expected: Sequence[str] | None = None) -> dict:
    """Write summary.json (+ predictions.json for VLN) from the rows; returns the summary. When
    `expected` episode ids are given, the summary records how many are still missing."""
    run_dir = Path(run_dir)
    rows = load_rows(run_dir) if rows is None else list(rows)
    info = load_run_info(run_dir) if (run_dir / RUN_FILE).exists() else {}
    summary = summarize(rows, rows[0]["task"] if rows else task_of_run(info))
    summary["name"] = info.get("name") or run_dir.name
    summary["agent"] = info.get("agent", {})
    if expected is not None:
        have = {r["episode_id"] for r in rows}
        summary["missing"] = len([e for e in expected if e not in have])
    atomic_write_json(run_dir / SUMMARY_FILE, summary)
    write_predictions(run_dir, rows)
    return summary


def merge_shards(run_dir: str | os.PathLike, expected: Sequence[str] | None = None) -> dict:
    """Combine the shard files of a run into episodes.jsonl (episode order, each episode once), then
    write the summary and predictions. Errors list missing episodes when `expected` is given."""
    run_dir = Path(run_dir)
    shards = sorted(run_dir.glob("episodes.shard-*.jsonl"))
    if not shards:
        raise RunFolderError(f"{run_dir}: no shard files (episodes.shard-*-of-*.jsonl) to merge")
    counts = {s.name.split("-of-")[-1] for s in shards}
    if len(counts) != 1:
        raise RunFolderError(f"{run_dir}: shard files from different --num-shards values: {sorted(s.name for s in shards)}")
    rows: dict[str, dict] = {}
    for f in shards:
        for r in read_jsonl(f):
            rows.setdefault(r["episode_id"], r)
    ordered = sorted(rows.values(), key=lambda r: r.get("order", 0))
    if expected is not None:
        missing = [e for e in expected if e not in rows]
        if missing:
            raise RunFolderError(f"{run_dir}: {len(missing)} episodes have no result yet (e.g. {missing[:5]}); "
                                 "run the missing shards first")
    write_jsonl(run_dir / RESULTS_FILE, ordered)
    return finalize_run(run_dir, ordered, expected)
