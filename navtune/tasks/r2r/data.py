"""R2R files: connectivity graphs and episode splits, read with validation and written in the same format.

Layout of a data folder (the real R2R data and the embedded house simulator's graphs alike):
    <dir>/connectivity/<scan>_connectivity.json     one entry per viewpoint (image_id, pose, included, ...)
    <dir>/R2R_<split>.json                          [{distance, scan, path_id, path, heading, instructions}]
Every problem raises `R2RDataError` naming the file, the episode and the field.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from navtune.core.errors import NavtuneError, is_finite_number
from navtune.core.io import atomic_write_json, atomic_write_text, read_json
from navtune.core.paths import safe_name
from navtune.graph.navgraph import NavGraph


class R2RDataError(NavtuneError):
    """A malformed or inconsistent R2R file; the message names the file, the episode and the field."""

    def __init__(self, file: str | os.PathLike, message: str, episode: str | None = None, field: str | None = None):
        # `episode` already says what it is: "path_id 12", "instr_id 12_0", "viewpoint entry 3"
        super().__init__(message, file=file, where=episode, field=field)
        self.episode = episode

    @classmethod
    def at(cls, file, message, field=None, where=None) -> "R2RDataError":
        return cls(file if file is not None else "<input>", message, episode=where, field=field)


@dataclass(frozen=True)
class R2REpisode:
    """One instruction of an R2R path (R2R files hold three instructions per path)."""

    instr_id: str  # f"{path_id}_{k}"
    path_id: int
    scan: str
    path: tuple[str, ...]  # reference viewpoints, start..goal (only the start on the test split)
    heading: float  # start heading, radians, navtune/R2R convention
    instruction: str
    distance: float | None = None

    @property
    def start(self) -> str:
        return self.path[0]

    @property
    def goal(self) -> str:
        return self.path[-1]

    @property
    def episode_id(self) -> str:
        return self.instr_id

    @property
    def scene(self) -> str:
        return self.scan

    @classmethod
    def from_dict(cls, d: Any, source: str = "<dict>") -> "R2REpisode":
        """One episode from a dict in R2R form: {scan, path | start+goal, heading, instruction | instructions
        (the first), instr_id | episode_id, path_id, distance}; errors name `source` and the field."""
        if not isinstance(d, dict):
            raise R2RDataError(source, f"episode is not a JSON object (got {type(d).__name__})")
        instr_id = d.get("instr_id") or d.get("episode_id") or d.get("path_id") or ""
        where = f"instr_id {instr_id}" if instr_id != "" else None
        if instr_id != "":  # it names the episode's frame folder (eval --save-frames, collect)
            if isinstance(instr_id, bool) or not isinstance(instr_id, (str, int)):
                raise R2RDataError(source, "must be a string", episode=where, field="instr_id")
            safe_name(str(instr_id), source, "instr_id", R2RDataError)
        scan = d.get("scan") or ""  # may be absent when the env holds a single graph
        if not isinstance(scan, str):
            raise R2RDataError(source, "not a string", episode=where, field="scan")
        if scan:
            safe_name(scan, source, "scan", R2RDataError)
        path = d.get("path")
        if path is None:
            if d.get("start") is None or d.get("goal") is None:
                raise R2RDataError(source, "episode needs 'path' or both 'start' and 'goal' viewpoints",
                                   episode=where, field="path")
            path = (d["start"], d["goal"])
        if not isinstance(path, (list, tuple)) or not path or not all(isinstance(v, str) for v in path):
            raise R2RDataError(source, "expected a non-empty list of viewpoint ids", episode=where, field="path")
        heading = d.get("heading", 0.0) or 0.0
        if not is_finite_number(heading):
            raise R2RDataError(source, "not a finite number", episode=where, field="heading")
        instruction = d.get("instruction")
        if instruction is None and d.get("instructions"):
            instrs = d["instructions"]
            if not isinstance(instrs, list) or not all(isinstance(t, str) for t in instrs):
                raise R2RDataError(source, "expected a list of strings", episode=where, field="instructions")
            instruction = instrs[0]
        if instruction is not None and not isinstance(instruction, str):
            raise R2RDataError(source, "must be a string", episode=where, field="instruction")
        path_id = d.get("path_id")
        if path_id is None:
            head = str(instr_id).split("_")[0]
            path_id = int(head) if head.isdigit() and len(head) < 19 else -1
        elif isinstance(path_id, bool) or not isinstance(path_id, int):
            raise R2RDataError(source, "must be an integer", episode=where, field="path_id")
        distance = d.get("distance")
        if distance is not None and (not is_finite_number(distance) or distance < 0):
            raise R2RDataError(source, f"must be a finite number >= 0 (got {distance!r})", episode=where,
                               field="distance")
        return cls(str(instr_id), int(path_id), scan, tuple(path), float(heading),
                   "" if instruction is None else str(instruction), None if distance is None else float(distance))


_CONN_SUFFIX = "_connectivity.json"


def connectivity_path(data_dir: str | os.PathLike, scan: str, file: str | os.PathLike | None = None) -> Path:
    """`<data_dir>/connectivity/<scan>_connectivity.json`; a scan that is not a plain name (``../x``, an
    absolute path) is an `R2RDataError` naming `file` (where the scan came from) and field 'scan'."""
    safe_name(scan, file if file is not None else Path(data_dir) / "connectivity", "scan", R2RDataError)
    return Path(data_dir) / "connectivity" / f"{scan}{_CONN_SUFFIX}"


def split_path(data_dir: str | os.PathLike, split: str) -> Path:
    return Path(data_dir) / f"R2R_{split}.json"


def _read_json(path: Path, what: str) -> Any:
    return read_json(path, R2RDataError, f"{what} file")


def parse_connectivity(entries: Any, file: str | os.PathLike, scan: str = "") -> NavGraph:
    """A NavGraph from parsed connectivity JSON: nodes = included viewpoints; edge i-j when either entry
    marks the other unobstructed and both are included; positions = pose translation (indices 3, 7, 11)."""
    if not isinstance(entries, list) or not entries:
        raise R2RDataError(file, "expected a non-empty JSON list of viewpoint entries")
    n = len(entries)
    ids, pos, included, unob = [], [], [], []
    for k, e in enumerate(entries):
        loc = f"viewpoint entry {k}"
        if not isinstance(e, dict):
            raise R2RDataError(file, "expected an object", episode=loc)
        vid = e.get("image_id")
        if not isinstance(vid, str) or not vid:
            raise R2RDataError(file, "missing or not a string", episode=loc, field="image_id")
        loc = f"viewpoint {vid}"
        pose = e.get("pose")
        if not isinstance(pose, list) or len(pose) != 16 or not all(is_finite_number(v) for v in pose):
            raise R2RDataError(file, "expected 16 finite numbers (row-major 4x4)", episode=loc, field="pose")
        inc = e.get("included", True)
        if not isinstance(inc, bool):
            raise R2RDataError(file, "expected true/false", episode=loc, field="included")
        u = e.get("unobstructed")
        if not isinstance(u, list) or len(u) != n or not all(isinstance(v, bool) for v in u):
            raise R2RDataError(file, f"expected {n} booleans (one per viewpoint)", episode=loc, field="unobstructed")
        ids.append(vid)
        pos.append((pose[3], pose[7], pose[11]))
        included.append(inc)
        unob.append(u)
    if len(set(ids)) != n:
        dup = sorted({v for v in ids if ids.count(v) > 1})
        raise R2RDataError(file, f"duplicate viewpoint ids {dup[:5]}", field="image_id")
    keep = [i for i in range(n) if included[i]]
    edges = [(ids[i], ids[j]) for i in keep for j in keep if i < j and (unob[i][j] or unob[j][i])]
    return NavGraph.from_edges([ids[i] for i in keep], np.asarray([pos[i] for i in keep], dtype=np.float64), edges,
                               name=scan)


#: Graphs kept per process (least recently used evicted): all of R2R's 90 scans fit, thousands of generated
#: houses do not grow memory without bound.
GRAPH_CACHE_SIZE = 128
_GRAPH_CACHE: "OrderedDict[tuple[str, str, float], NavGraph]" = OrderedDict()


def load_connectivity(data_dir: str | os.PathLike, scan: str) -> NavGraph:
    """The navigation graph of one scan (cached per file and modification time)."""
    path = connectivity_path(data_dir, scan)
    if not path.is_file():
        raise R2RDataError(path, f"connectivity file for scan {scan!r} not found")
    key = (str(path.resolve()), scan, path.stat().st_mtime)
    g = _GRAPH_CACHE.get(key)
    if g is None:
        g = parse_connectivity(_read_json(path, "connectivity"), path, scan)
        _GRAPH_CACHE[key] = g
        while len(_GRAPH_CACHE) > GRAPH_CACHE_SIZE:
            _GRAPH_CACHE.popitem(last=False)
    else:
        _GRAPH_CACHE.move_to_end(key)
    return g


def _check_path(graph: NavGraph, path: Sequence[str], file: Path, episode: str, field: str,
                check_edges: bool = True) -> None:
    for k, vid in enumerate(path):
        if vid not in graph.index:
            raise R2RDataError(file, f"unknown viewpoint {vid!r} in scan {graph.name!r}", episode=episode,
                               field=f"{field}[{k}]")
        if check_edges and k and vid != path[k - 1] and not graph.adjacent(path[k - 1], vid):
            raise R2RDataError(file, f"jump between non-adjacent viewpoints {path[k - 1]!r} -> {vid!r}",
                               episode=episode, field=f"{field}[{k}]")


def load_r2r_split(data_dir: str | os.PathLike, split: str, validate: bool = True) -> list[R2REpisode]:
    """Episodes of `R2R_<split>.json`, one per instruction (`instr_id = f"{path_id}_{k}"`), in file order.

    With `validate`, every scan's graph must exist, every viewpoint must be in it and consecutive path
    viewpoints must be adjacent."""
    file = split_path(data_dir, split)
    raw = _read_json(file, f"R2R split {split!r}")
    if not isinstance(raw, list):
        raise R2RDataError(file, "expected a JSON list of paths")
    episodes: list[R2REpisode] = []
    for k, item in enumerate(raw):
        loc = f"entry #{k}"
        if not isinstance(item, dict):
            raise R2RDataError(file, "expected an object", episode=loc)
        pid = item.get("path_id")
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise R2RDataError(file, "missing or not an integer", episode=loc, field="path_id")
        loc = f"path_id {pid}"
        scan = item.get("scan")
        if not isinstance(scan, str) or not scan:
            raise R2RDataError(file, "missing or not a string", episode=loc, field="scan")
        path = item.get("path")
        if not isinstance(path, list) or not path or not all(isinstance(v, str) for v in path):
            raise R2RDataError(file, "expected a non-empty list of viewpoint ids", episode=loc, field="path")
        heading = item.get("heading")
        if not is_finite_number(heading):
            raise R2RDataError(file, "missing or not a finite number", episode=loc, field="heading")
        instrs = item.get("instructions")
        if not isinstance(instrs, list) or not instrs or not all(isinstance(s, str) for s in instrs):
            raise R2RDataError(file, "expected a non-empty list of strings", episode=loc, field="instructions")
        dist = item.get("distance")
        if dist is not None and (not is_finite_number(dist) or dist < 0):
            raise R2RDataError(file, f"must be a finite number >= 0 (got {dist!r})", episode=loc, field="distance")
        safe_name(scan, file, "scan", R2RDataError)
        if validate:
            try:
                graph = load_connectivity(data_dir, scan)
            except R2RDataError as e:
                raise R2RDataError(file, f"scan {scan!r}: {e}", episode=loc, field="scan") from None
            _check_path(graph, path, file, loc, "path")
        for j, text in enumerate(instrs):
            episodes.append(R2REpisode(f"{pid}_{j}", pid, scan, tuple(path), float(heading), text,
                                       None if dist is None else float(dist)))
    ids = [e.instr_id for e in episodes]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise R2RDataError(file, f"duplicate path_id values give repeated instr_ids {dup[:5]}", field="path_id")
    return episodes


def load_graphs(data_dir: str | os.PathLike, scans: Iterable[str]) -> dict[str, NavGraph]:
    return {s: load_connectivity(data_dir, s) for s in sorted(set(scans))}


# ---------------------------------------------------------------------------------------------- writing
def write_connectivity(graph: NavGraph, path: str | os.PathLike, height: float = 1.5) -> None:
    """Write a NavGraph as a `<scan>_connectivity.json` that `load_connectivity` (and MatterSim) accept:
    identity rotation in `pose`, all viewpoints included, `unobstructed` from the edges, `visible` equal to it."""
    n = len(graph.ids)
    entries = []
    for i, vid in enumerate(graph.ids):
        x, y, z = (float(v) for v in graph.positions[i])
        row = [False] * n
        for j in graph.adjacency[i]:
            row[j] = True
        entries.append({
            "image_id": vid,
            "pose": [1.0, 0.0, 0.0, x, 0.0, 1.0, 0.0, y, 0.0, 0.0, 1.0, z, 0.0, 0.0, 0.0, 1.0],
            "included": True,
            "visible": list(row),
            "unobstructed": row,
            "height": float(height),
        })
    atomic_write_json(path, entries, indent=None)
    write_scans_txt(Path(path).parent)


def write_scans_txt(connectivity_dir: str | os.PathLike) -> list[str]:
    """(Re)write `scans.txt` (one scan per line, as MatterSim's navGraphPath expects) from the folder's
    `<scan>_connectivity.json` files; returns the scans."""
    folder = Path(connectivity_dir)
    scans = sorted(p.name[: -len(_CONN_SUFFIX)] for p in folder.glob(f"*{_CONN_SUFFIX}"))
    atomic_write_text(folder / "scans.txt", "".join(s + "\n" for s in scans))
    return scans


def write_r2r_split(episodes: Sequence[R2REpisode | dict], path: str | os.PathLike) -> None:
    """Write episodes as an `R2R_<split>.json`: instructions of the same path_id are grouped in order
    (instr_id suffix k -> instructions[k]). Plain dicts already in R2R form are written as given."""
    paths: dict[int, dict] = {}
    for e in episodes:
        if isinstance(e, dict):
            paths[int(e["path_id"])] = dict(e)
            continue
        item = paths.setdefault(e.path_id, {
            "distance": e.distance, "scan": e.scan, "path_id": e.path_id, "path": list(e.path),
            "heading": e.heading, "instructions": [],
        })
        if item["scan"] != e.scan or tuple(item["path"]) != e.path:
            raise ValueError(f"episodes {e.instr_id}: same path_id {e.path_id} with a different scan or path")
        item["instructions"].append(e.instruction)
    atomic_write_json(path, list(paths.values()), indent=None)
