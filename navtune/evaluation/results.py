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

from navtune.core.errors import NavtuneError, is_finite_number
from navtune.core.io import atomic_write_json, read_json, write_jsonl
from navtune.evaluation.backends import BACKENDS
from navtune.evaluation.registry import task_metric_keys
from navtune.metrics.failures import FAILURE_MODES
from navtune.metrics.intervals import mean_interval

RUN_FILE = "run.json"
RESULTS_FILE = "episodes.jsonl"
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.json"
EXTRA_KEYS = ("epa", "valid_action_pct", "collisions", "stuck", "oscillation", "collision", "early_stop", "timeout")


class RunFolderError(NavtuneError):
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
    return BACKENDS.get(backend).task if isinstance(backend, str) and backend in BACKENDS else None


def summarize(rows: Sequence[dict], task: str | None = None) -> dict:
    """Mean of every metric over episodes (None values, e.g. EPA when it was not run, are skipped), its 95 %
    interval as `<key>_ci95` (Wilson for success rates, bootstrap over episodes otherwise;
    `navtune.metrics.intervals`) and the failure-mode rates; `episodes` is the count."""
    task = task or (rows[0]["task"] if rows else "vln")
    out: dict = {}
    for k in metric_keys(task, rows):
        vals = [r["metrics"].get(k) for r in rows]
        vals = [float(v) for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
        out[k] = sum(vals) / len(vals) if vals else None
        if k not in EXTRA_KEYS or k == "epa":
            ci = mean_interval(vals)
            out[f"{k}_ci95"] = list(ci) if ci is not None else None
    out["episodes"] = len(rows)
    out["failure_rates"] = {m: (sum(bool(r.get("failures", {}).get(m)) for r in rows) / len(rows) if rows else None)
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
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise RunFolderError(f"{path}: not found (not a navtune eval run folder)")
    info = read_json(path, RunFolderError)
    if not isinstance(info, dict):
        raise RunFolderError("must hold a JSON object", file=path)
    for key in ("agent", "task"):
        if not isinstance(info.get(key, {}), dict):
            raise RunFolderError("must be an object", file=path, field=key)
    return info


def check_row(row: object, file: str | os.PathLike, k: int) -> dict:
    """The k-th result row (1-based) as the summary, merge and report read it (episode_id, metrics,
    failures, order, frames), or a `RunFolderError` naming the file, the row and the field."""
    where = f"row {k}"
    if not isinstance(row, dict):
        raise RunFolderError("not a JSON object", file=file, where=where)
    if not isinstance(row.get("episode_id"), str):
        raise RunFolderError("missing or not a string", file=file, where=where, field="episode_id")
    for key in ("metrics", "failures"):
        if not isinstance(row.get(key, {}), dict):
            raise RunFolderError("must be an object", file=file, where=where, field=key)
    if "metrics" not in row:
        raise RunFolderError("missing", file=file, where=where, field="metrics")
    for k, v in row["metrics"].items():  # NaN is "not defined for this episode" (skipped); inf is not a value
        if v is not None and not (is_finite_number(v) or (isinstance(v, float) and math.isnan(v))):
            raise RunFolderError(f"must be a number or null (got {v!r})", file=file, where=where, field=f"metrics.{k}")
    order = row.get("order", 0)
    if isinstance(order, bool) or not isinstance(order, int):
        raise RunFolderError(f"must be an integer (got {order!r})", file=file, where=where, field="order")
    for key in ("task", "scene", "frames"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise RunFolderError("must be a string", file=file, where=where, field=key)
    for key in ("actions", "poses", "trajectory", "collided"):
        if row.get(key) is not None and not isinstance(row[key], list):
            raise RunFolderError("must be a list", file=file, where=where, field=key)
    return row


def load_rows(run_dir: str | os.PathLike) -> list[dict]:
    """The run's rows in episode order: the merged episodes.jsonl, else all shard files together."""
    run_dir = Path(run_dir)
    files = [run_dir / RESULTS_FILE] if (run_dir / RESULTS_FILE).exists() else sorted(run_dir.glob("episodes.shard-*.jsonl"))
    if not files:
        raise RunFolderError(f"{run_dir}: no {RESULTS_FILE} or shard result files")
    rows: dict[str, dict] = {}
    for f in files:
        for r in _read_rows(f):
            rows.setdefault(r["episode_id"], r)
    return sorted(rows.values(), key=lambda r: r.get("order", 0))


def _read_rows(file: Path) -> list[dict]:
    from navtune.core.io import iter_jsonl

    return [check_row(r, file, k) for k, r in enumerate(iter_jsonl(file, RunFolderError), start=1)]


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
    from navtune.core.lock import FolderLock

    run_dir = Path(run_dir)
    with FolderLock(run_dir, what=f"eval run ({RESULTS_FILE})", name=f".{RESULTS_FILE}.lock"):
        return _merge_shards(run_dir, expected)


def _merge_shards(run_dir: Path, expected: Sequence[str] | None) -> dict:
    shards = sorted(run_dir.glob("episodes.shard-*.jsonl"))
    if not shards:
        raise RunFolderError(f"{run_dir}: no shard files (episodes.shard-*-of-*.jsonl) to merge")
    counts = {s.name.split("-of-")[-1] for s in shards}
    if len(counts) != 1:
        raise RunFolderError(f"{run_dir}: shard files from different --num-shards values: {sorted(s.name for s in shards)}")
    rows: dict[str, dict] = {}
    for f in shards:
        for r in _read_rows(f):
            rows.setdefault(r["episode_id"], r)
    ordered = sorted(rows.values(), key=lambda r: r.get("order", 0))
    if expected is not None:
        missing = [e for e in expected if e not in rows]
        if missing:
            raise RunFolderError(f"{run_dir}: {len(missing)} episodes have no result yet (e.g. {missing[:5]}); "
                                 "run the missing shards first")
    write_jsonl(run_dir / RESULTS_FILE, ordered)
    return finalize_run(run_dir, ordered, expected)
