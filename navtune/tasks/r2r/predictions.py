"""R2R prediction files: `[{"instr_id": "<path_id>_<k>", "trajectory": [[viewpoint, heading, elevation], ...]}]`,
and the action files that go with them (`{path_id or instr_id: [action, ...]}`, as seed 1's author saved
the model's MatterSim runs).

Read with validation (errors name the file, the instr_id and the field) and written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from navtune.core.errors import is_finite_number
from navtune.core.io import atomic_write_json, read_json
from navtune.tasks.r2r.data import R2RDataError

#: One trajectory step as R2R records it: (viewpoint id, heading rad, elevation rad).
Step = tuple[str, float, float]


def _step(raw, file: Path, instr_id: str, k: int) -> Step:
    field = f"trajectory[{k}]"
    if isinstance(raw, str):  # a bare viewpoint id: tolerated, heading/elevation unknown (0)
        return (raw, 0.0, 0.0)
    if not isinstance(raw, (list, tuple)) or not raw or not isinstance(raw[0], str) or not raw[0]:
        raise R2RDataError(file, "expected [viewpoint, heading, elevation]", episode=f"instr_id {instr_id}", field=field)
    vals = list(raw[1:3]) + [0.0] * (3 - len(raw[:3]))
    for v in vals:
        if not is_finite_number(v):
            raise R2RDataError(file, "heading and elevation must be finite numbers", episode=f"instr_id {instr_id}", field=field)
    return (raw[0], float(vals[0]), float(vals[1]))


def load_predictions(path: str | os.PathLike, duplicates: str = "error") -> dict[str, list[Step]]:
    """instr_id -> trajectory, in file order. Empty trajectories are errors; so are duplicate instr_ids, unless
    `duplicates="last"` (the last entry wins: a run file where some episodes were run again)."""
    out: dict[str, list[Step]] = {}
    for iid, traj in read_predictions(path):
        if iid in out and duplicates != "last":
            raise R2RDataError(Path(path), "duplicate instr_id", episode=f"instr_id {iid}", field="instr_id")
        out.pop(iid, None)
        out[iid] = traj
    return out


def read_predictions(path: str | os.PathLike) -> list[tuple[str, list[Step]]]:
    """Every (instr_id, trajectory) entry of a prediction file, in file order (duplicates kept)."""
    file = Path(path)
    raw = read_json(file, R2RDataError, "predictions file")
    if not isinstance(raw, list):
        raise R2RDataError(file, "expected a JSON list of {instr_id, trajectory} objects")
    if not raw:
        raise R2RDataError(file, "holds no predictions (an empty list)")
    out: list[tuple[str, list[Step]]] = []
    for k, item in enumerate(raw):
        if not isinstance(item, dict):
            raise R2RDataError(file, "expected an object", episode=f"entry #{k}")
        iid = item.get("instr_id")
        if isinstance(iid, bool) or not isinstance(iid, (str, int)):
            raise R2RDataError(file, "missing or not a string", episode=f"entry #{k}", field="instr_id")
        iid = str(iid)
        traj = item.get("trajectory")
        if not isinstance(traj, list) or not traj:
            raise R2RDataError(file, "expected a non-empty list of steps", episode=f"instr_id {iid}", field="trajectory")
        out.append((iid, [_step(s, file, iid, j) for j, s in enumerate(traj)]))
    return out


def load_actions(path: str | os.PathLike) -> dict[str, list[str]]:
    """`{path_id or instr_id: [action name, ...]}` (a JSON object of string lists), keys as strings."""
    file = Path(path)
    raw = read_json(file, R2RDataError, "actions file")
    if not isinstance(raw, dict):
        raise R2RDataError(file, "expected a JSON object {path_id: [action, ...]}")
    out: dict[str, list[str]] = {}
    for key, acts in raw.items():
        if not isinstance(acts, list) or not all(isinstance(a, str) for a in acts):
            raise R2RDataError(file, "expected a list of action names", episode=f"key {key}", field=str(key))
        out[str(key)] = list(acts)
    return out


def actions_by_instr_id(actions: Mapping[str, Sequence[str]], instr_ids: Sequence[str],
                        file: str | os.PathLike = "<actions>") -> dict[str, list[str]]:
    """instr_id -> actions for every instr_id, from a file keyed by instr_id or by path_id (one file per
    instruction index, as seed 1's author wrote them). Missing ones are one error listing them."""
    out: dict[str, list[str]] = {}
    missing = []
    paths: dict[str, list[str]] = {}
    for iid in instr_ids:
        path_id = iid.rsplit("_", 1)[0]
        acts = actions.get(iid)
        if acts is None:
            acts = actions.get(path_id)
            paths.setdefault(path_id, []).append(iid)
        if acts is None:
            missing.append(iid)
        else:
            out[iid] = list(acts)
    if missing:
        raise R2RDataError(Path(file), f"no actions for {len(missing)} predicted episodes "
                           f"(e.g. {', '.join(missing[:5])}); keys are path_ids or instr_ids")
    shared = {p: ids for p, ids in paths.items() if len(ids) > 1}
    if shared:
        p, ids = next(iter(shared.items()))
        raise R2RDataError(Path(file), f"keyed by path_id, but the predictions hold several instructions of "
                           f"{len(shared)} paths (e.g. path {p}: {', '.join(ids)}); use one file per instruction index")
    return out


def write_predictions(predictions: Mapping[str, Sequence[Sequence]], path: str | os.PathLike) -> None:
    """Write instr_id -> [(viewpoint, heading, elevation), ...] in the R2R prediction format, atomically."""
    rows = [
        {"instr_id": iid, "trajectory": [[s[0], float(s[1]), float(s[2]) if len(s) > 2 else 0.0] for s in traj]}
        for iid, traj in predictions.items()
    ]
    atomic_write_json(path, rows, indent=None)
