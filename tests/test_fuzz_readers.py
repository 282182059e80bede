"""Property-based fuzzing of every reader of files a user hands navtune (issue 17): R2R splits, connectivity,
predictions and action files, ObjectNav / habitat ObjectNav / VLN-CE episode files, dataset manifests (and
resuming a writer on them), eval run folders, training run folders (checkpoint, loss history) and model
folders. Each input starts from a valid file and is mutated (fields replaced by arbitrary JSON, NaN / inf,
huge numbers, deep nesting, path-like strings, keys deleted, bytes truncated or made non-UTF-8).

The invariant: a valid result, or navtune's own error (`NavtuneError`) naming a file inside the given
folder; never another exception, and never an open for reading or writing outside the folder (watched
with an audit hook on every `open`). Examples are bounded and derandomized (reproducible, CI < 2 min)."""
from __future__ import annotations

import copy
import gzip
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from navtune.core.errors import NavtuneError

#: examples per reader: NAVTUNE_FUZZ_EXAMPLES scales them (e.g. 20 for a bug hunt; CI runs the default)
_SCALE = float(os.environ.get("NAVTUNE_FUZZ_EXAMPLES", "1"))


def fuzz(examples: int):
    return settings(max_examples=max(1, int(examples * _SCALE)), deadline=None, derandomize=_SCALE == 1,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


FUZZ, FUZZ_CHEAP = fuzz(60), fuzz(200)

# ------------------------------------------------------------------------------------------ the watcher
_WATCH: dict[str, Any] = {"root": None, "bad": []}
_ALLOWED = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                  Path(__file__).resolve().parents[1], "/usr/lib", "/usr/share",
                                                  "/etc/ld.so.cache", "/dev/null", "/proc", "/sys"})


def _audit(event: str, args: tuple) -> None:
    root = _WATCH["root"]
    if root is None or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    real = os.path.realpath(path)
    if _within(real, (root,)) or _within(path, (root,)) or _within(real, _ALLOWED):
        return
    _WATCH["bad"].append((path, args[1], args[2]))


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


sys.addaudithook(_audit)


def check(root: Path, fn: Callable[[], Any]) -> Any:
    """Run a reader on a fuzzed folder: its result, or None after a NavtuneError naming a file in `root`;
    any other exception, or an open outside `root`, fails the test."""
    _WATCH["root"], _WATCH["bad"] = str(root.resolve()), []
    try:
        return fn()
    except NavtuneError as e:
        assert e.file is not None or str(root) in str(e), f"error names no file: {e}"
        if e.file is not None:
            named = os.path.abspath(e.file.split(":")[0])
            assert _within(named, (str(root),)), f"error names a file outside: {e}"
        return None
    finally:
        _WATCH["root"] = None
        assert not _WATCH["bad"], f"opened outside the folder: {_WATCH['bad'][:3]}"


# ------------------------------------------------------------------------------------------ strategies
NASTY_STRINGS = st.sampled_from(["", ".", "..", "../x", "../../../../etc/passwd", "/etc/passwd", "a/b", "a\\b",
                                 "\x00", "\ud800", "é", "x" * 300, "Move", "Jump", "stop", "move_forward", "house_1",
                                 "episodes/ep0/rgb_0.png", "NaN"])
LEAF = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
        | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | NASTY_STRINGS
        | st.sampled_from([10 ** 400, -1, 0, 1e308]))
JSON = st.recursive(LEAF, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=6) | NASTY_STRINGS,
                                                                                 ch, max_size=4), max_leaves=8)


def _slots(doc: Any, out: list | None = None) -> list[tuple[Any, Any]]:
    """Every (container, key) of a JSON document."""
    out = [] if out is None else out
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in list(items):
        out.append((doc, k))
        _slots(v, out)
    return out


@st.composite
def mutated(draw, doc: Any) -> Any:
    """A valid document with 1-3 fields replaced by arbitrary JSON or deleted (or the whole document replaced)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(doc)
        if not slots:
            break
        parent, key = draw(st.sampled_from(slots))
        if draw(st.integers(0, 3)) == 0:
            del parent[key]
        else:
            parent[key] = draw(JSON)
    return doc


@st.composite
def encoded(draw, doc: Any) -> bytes:
    """JSON bytes of a mutated document, sometimes damaged: truncated, a non-UTF-8 byte, deep nesting."""
    data = json.dumps(draw(mutated(doc)), allow_nan=True).encode("utf-8", "surrogatepass")
    damage = draw(st.integers(0, 11))
    if damage == 0 and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == 1:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff\xfe" + data[at:]
    elif damage == 2:
        data = b"[" * 50_000 + b"]" * 50_000
    elif damage == 3:
        data = b"[" + b"7" * 20_000 + b"]"
    return data


# ------------------------------------------------------------------------------------------ R2R
def _r2r_folder(root: Path) -> Path:
    from navtune.graph import NavGraph
    from navtune.tasks.r2r import R2REpisode, write_connectivity, write_r2r_split

    g = NavGraph.from_edges(["A", "B", "C"], [(0, 0, 0), (2, 0, 0), (4, 0, 0)], [("A", "B"), ("B", "C")], name="s")
    write_connectivity(g, root / "connectivity" / "s_connectivity.json")
    write_r2r_split([R2REpisode("1_0", 1, "s", ("A", "B", "C"), 1.57, "go", 4.0)], root / "R2R_x.json")
    return root


VALID_SPLIT = [{"distance": 4.0, "scan": "s", "path_id": 1, "path": ["A", "B", "C"], "heading": 1.57,
                "instructions": ["go east", "walk"]}]
VALID_PREDS = [{"instr_id": "1_0", "trajectory": [["A", 1.57, 0.0], ["B", 1.57, 0.0]]}]


@FUZZ_CHEAP
@given(data=encoded(VALID_SPLIT))
def test_fuzz_r2r_split(data):
    from navtune.tasks.r2r import load_r2r_split

    with tempfile.TemporaryDirectory() as d:
        root = _r2r_folder(Path(d))
        (root / "R2R_x.json").write_bytes(data)
        eps = check(root, lambda: load_r2r_split(root, "x"))
        for e in eps or []:
            assert math.isfinite(e.heading) and (e.distance is None or math.isfinite(e.distance))


@FUZZ_CHEAP
@given(data=st.data())
def test_fuzz_connectivity(data):
    from navtune.tasks.r2r import load_connectivity

    with tempfile.TemporaryDirectory() as d:
        root = _r2r_folder(Path(d))
        conn = root / "connectivity" / "s_connectivity.json"
        conn.write_bytes(data.draw(encoded(json.loads(conn.read_text()))))
        g = check(root, lambda: load_connectivity(root, "s"))
        if g is not None:
            assert np.isfinite(g.positions).all()
        scan = data.draw(NASTY_STRINGS | st.text(max_size=10))
        check(root, lambda: load_connectivity(root, scan))


@FUZZ_CHEAP
@given(data=encoded(VALID_PREDS), actions=encoded({"1_0": ["Move", "Stop"], "1": ["Left"]}))
def test_fuzz_predictions_and_actions(data, actions):
    from navtune.tasks.r2r.predictions import load_actions, load_predictions

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "p.json").write_bytes(data)
        (root / "a.json").write_bytes(actions)
        preds = check(root, lambda: load_predictions(root / "p.json"))
        for traj in (preds or {}).values():
            assert all(math.isfinite(h) and math.isfinite(e) for _, h, e in traj)
        check(root, lambda: load_actions(root / "a.json"))


@FUZZ_CHEAP
@given(doc=mutated({"instr_id": "1_0", "scan": "s", "path": ["A", "B"], "heading": 0.5, "instructions": ["go"],
                    "distance": 2.0, "path_id": 1}))
def test_fuzz_r2r_episode_dicts(doc):
    """The graph env's dict episodes (`R2REpisode.from_dict`): ids and scans come back as plain names."""
    from navtune.core.paths import safe_name
    from navtune.tasks.r2r import R2REpisode

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        ep = check(root, lambda: R2REpisode.from_dict(doc, str(root / "episodes.json")))
        if ep is not None:
            assert ep.instr_id == "" or safe_name(ep.instr_id)
            assert ep.scan == "" or safe_name(ep.scan)
            assert math.isfinite(ep.heading) and isinstance(ep.instruction, str)


# ------------------------------------------------------------------------------------------ episode files
VALID_OBJECTNAV = {"episode_id": "ep0", "scene_id": "house_3", "start_position": [1.0, 2.0, 0.0],
                   "start_heading": 0.5, "object_category": "chair",
                   "goals": [{"position": [3.0, 4.0, 0.0], "radius": 0.5, "object_id": "o1"}],
                   "geodesic_distance": 4.2, "success_distance": 1.0, "max_steps": 500, "info": {}}


@FUZZ_CHEAP
@given(row=encoded(VALID_OBJECTNAV), suffix=st.sampled_from([".jsonl", ".json"]))
def test_fuzz_objectnav_episodes(row, suffix):
    from navtune.core.paths import safe_name
    from navtune.tasks.objectnav import read_episodes

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        path = root / f"eps{suffix}"
        ok = json.dumps(VALID_OBJECTNAV).encode()
        path.write_bytes(ok + b"\n" + row + b"\n" if suffix == ".jsonl" else b'{"episodes": [' + row + b"]}")
        for ep in check(root, lambda: read_episodes(path)) or []:
            safe_name(ep.episode_id)  # every id that comes back can name a folder
            assert all(math.isfinite(v) for v in ep.start_position) and math.isfinite(ep.geodesic_distance)


HABITAT_OBJECTNAV = {"episodes": [{"episode_id": "3", "scene_id": "hm3d/val/00800-A/A.basis.glb",
                                   "start_position": [1.0, 0.1, -2.0], "start_rotation": [0, 0.38, 0, 0.92],
                                   "object_category": "chair", "info": {"geodesic_distance": 3.5}}],
                     "goals_by_category": {"A.basis.glb_chair": [{"position": [2.0, 0.1, -3.0], "radius": 0.4,
                                                                  "object_id": 7, "view_points": []}]}}
VLNCE = {"episodes": [{"episode_id": 11, "trajectory_id": 4, "scene_id": "mp3d/S/S.glb",
                       "start_position": [-2.0, 0.0, -2.0], "start_rotation": [0, 0.7, 0, 0.7],
                       "instruction": {"instruction_text": "go"}, "goals": [{"position": [1.0, 0.0, 2.0], "radius": 3.0}],
                       "reference_path": [[-2.0, 0.0, -2.0], [1.0, 0.0, 2.0]], "info": {"geodesic_distance": 5.0}}]}


@FUZZ_CHEAP
@given(objectnav=encoded(HABITAT_OBJECTNAV), vlnce=encoded(VLNCE), gz=st.booleans())
def test_fuzz_habitat_episode_files(objectnav, vlnce, gz):
    from navtune.core.paths import check_relative, safe_name
    from navtune.tasks.habitat_datasets import read_objectnav_file, read_vlnce_file

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, data in (("o", objectnav), ("v", vlnce)):
            path = root / (f"{name}.json.gz" if gz else f"{name}.json")
            path.write_bytes(gzip.compress(data) if gz else data)
        suffix = ".json.gz" if gz else ".json"
        for ep in check(root, lambda: read_objectnav_file(root / f"o{suffix}")) or []:
            safe_name(ep.episode_id)
            check_relative(ep.scene_id)
        for ep in check(root, lambda: read_vlnce_file(root / f"v{suffix}")) or []:
            safe_name(ep.episode_id)
            assert all(math.isfinite(v) for v in ep.goal_position)
        (root / "bad.json.gz").write_bytes(objectnav[:40])  # not gzip at all
        check(root, lambda: read_objectnav_file(root / "bad.json.gz"))


# ------------------------------------------------------------------------------------------ datasets
def _dataset(root: Path) -> Path:
    from navtune.data.format import DatasetWriter, EpisodeMeta, StepData

    w = DatasetWriter(root, {"task": "objectnav", "action_space": "continuous", "width": 4, "height": 3})
    for e in range(2):
        b = w.builder(EpisodeMeta(f"ep{e}", "objectnav", "continuous", "house_1", instruction="find a chair",
                                  order=e, success_radius=1.0))
        for t in range(2):
            b.add(StepData("stop" if t else "move_forward", {"x": 0.0, "y": 0.25 * t, "z": 0.0, "heading": 0.0},
                           rgb=np.full((3, 4, 3), 40 * t, np.uint8), depth=np.ones((3, 4), np.float32),
                           geodesic_distance=1.5 - 0.25 * t, allowed_actions=("move_forward", "stop")))
        w.commit(b.finish({"x": 0.0, "y": 0.25, "z": 0.0, "heading": 0.0}, 1.25))
    w.finalize()
    return root


_TEMPLATE: dict[str, Any] = {}


def _template_rows() -> list[dict]:
    if "rows" not in _TEMPLATE:
        from navtune.core.io import read_jsonl

        with tempfile.TemporaryDirectory() as d:
            _TEMPLATE["rows"] = read_jsonl(_dataset(Path(d) / "ds") / "manifest.jsonl")
    return _TEMPLATE["rows"]


@FUZZ
@given(data=st.data())
def test_fuzz_manifest_readers_and_resume(data):
    from navtune.core.actions import ACTION_SPACES
    from navtune.core.paths import check_relative
    from navtune.data.format import DatasetWriter, EpisodeDataset
    from navtune.data.hf import TorchStepDataset, to_hf_dataset

    rows = _template_rows()
    line = data.draw(encoded(rows[1]))
    where = data.draw(st.sampled_from(["append", "replace", "middle"]))
    with tempfile.TemporaryDirectory() as d:
        outside = Path(d) / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("x")
        root = _dataset(Path(d) / "ds")
        first = json.dumps(rows[0]).encode()
        body = {"append": first + b"\n" + json.dumps(rows[1]).encode() + b"\n" + line,
                "replace": first + b"\n" + line + b"\n",
                "middle": line + b"\n" + first + b"\n"}[where]
        (root / "manifest.jsonl").write_bytes(body)
        if data.draw(st.booleans()):
            (root / "dataset_info.json").write_bytes(data.draw(encoded(json.loads((root / "dataset_info.json").read_text()))))
        ds = check(root, lambda: EpisodeDataset(root))
        if ds is not None:
            for ep in ds:  # what comes back is what the readers rely on
                space = ACTION_SPACES[ep.action_space]
                assert ep.num_steps == len(ep.steps) and [s.t for s in ep.steps] == list(range(len(ep.steps)))
                for s in ep.steps:
                    assert s.action in space and (s.expert_action is None or s.expert_action in space)
                    assert all(math.isfinite(v) for v in s.pose.values())
                    assert all(v is None or math.isfinite(v) for v in (s.reward, s.ret, s.geodesic_distance))
                    for rel in (s.rgb, s.depth):
                        assert rel is None or check_relative(rel)
            check(root, ds.verify)
            for ep in ds:
                for s in ep.steps:
                    check(root, lambda: ds.load_rgb(ep, s.t) if s.rgb else None)
            check(root, lambda: to_hf_dataset(ds, frames=False))
            steps = TorchStepDataset(ds, rgb=True, depth=True)
            check(root, lambda: [steps[i] for i in range(len(steps))])
        # resuming a writer on it deletes nothing but navtune's own unfinished work, and nothing outside
        check(root, lambda: DatasetWriter(root, {"task": "objectnav", "action_space": "continuous", "width": 4,
                                                 "height": 3}).close())
        assert (outside / "keep.txt").exists()
        assert sorted(p.name for p in (root / "episodes").iterdir()) == ["ep0", "ep1"]  # committed: never deleted


# ------------------------------------------------------------------------------------------ run folders
VALID_ROW = {"episode_id": "1_0", "order": 0, "scene": "s", "task": "vln", "policy": "forward", "instruction": "go",
             "metrics": {"sr": 1.0, "spl": 0.5, "ne": 0.0, "epa": None}, "failures": {"stuck": False},
             "actions": ["Move", "Stop"], "collided": [], "poses": [[0, 0, 0, 0]], "frames": "frames/1_0",
             "trajectory": [["A", 0.0, 0.0]]}
VALID_RUN = {"name": "forward", "agent": {"kind": "forward"}, "task": {"backend": "graph"}, "epa": False}


@FUZZ
@given(row=encoded(VALID_ROW), run=encoded(VALID_RUN), summary=encoded({"episodes": 1, "sr": 1.0}))
def test_fuzz_eval_run_folder(row, run, summary):
    from navtune.evaluation.results import finalize_run, load_rows, load_run_info
    from navtune.viz.report import episode_strip, load_run

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "run.json").write_bytes(run)
        (root / "summary.json").write_bytes(summary)
        (root / "episodes.jsonl").write_bytes(json.dumps(VALID_ROW).encode() + b"\n" + row + b"\n")
        (root / "frames" / "1_0").mkdir(parents=True)
        check(root, lambda: load_run_info(root))
        rows = check(root, lambda: load_rows(root))
        if rows is not None:
            check(root, lambda: finalize_run(root, rows))
        loaded = check(root, lambda: load_run(root))
        for r in (loaded.rows if loaded else []):
            check(root, lambda: episode_strip(loaded, r))


@FUZZ
@given(history=st.lists(encoded({"step": 1, "epoch": 0, "loss": 0.5, "lr": 1e-5}), max_size=4),
       ckpt=st.binary(max_size=64) | st.just(b""), cut=st.integers(0, 4000))
def test_fuzz_training_run_folder(history, ckpt, cut):
    import torch

    from navtune.trainers.run import check_checkpoint, prepare_run_folder, trim_history

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "loss_history.jsonl").write_bytes(b"\n".join(history))
        good = root / "checkpoints" / "last.ckpt"
        good.parent.mkdir()
        torch.save({"global_step": 3, "state_dict": {"w": torch.zeros(8)}}, good)
        damaged = root / "checkpoints" / "bad.ckpt"
        damaged.write_bytes(good.read_bytes()[:cut] + ckpt)
        step = check(root, lambda: check_checkpoint(damaged)["global_step"])
        check(root, lambda: trim_history(root, step if isinstance(step, int) else 3))
        check(root, lambda: prepare_run_folder(root, None, overwrite=False))


# ------------------------------------------------------------------------------------------ model folders
@FUZZ
@given(config=encoded({"model_type": "qwen2_5_vl", "vision_config": {"depth": 2}, "hidden_size": 8}),
       tokenizer=encoded({"model": {"type": "BPE"}, "added_tokens": []}),
       index=encoded({"weight_map": {"w": "model.safetensors"}}), cut=st.integers(0, 200),
       tail=st.binary(max_size=32))
def test_fuzz_model_folder(config, tokenizer, index, cut, tail):
    import torch
    from safetensors.torch import save_file

    from navtune.agents.models.loading import check_model_files
    from navtune.trainers.freeze import read_config_json

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "config.json").write_bytes(config)
        (root / "tokenizer.json").write_bytes(tokenizer)
        (root / "model.safetensors.index.json").write_bytes(index)
        save_file({"w": torch.zeros(4)}, str(root / "model.safetensors"))
        weights = (root / "model.safetensors").read_bytes()
        (root / "model.safetensors").write_bytes(weights[:cut] + tail if cut < len(weights) else weights)
        check(root, lambda: check_model_files(root))
        check(root, lambda: read_config_json(root / "config.json"))
        (root / "adapter_config.json").write_bytes(config)
        check(root, lambda: check_model_files(root, required="adapter_config.json"))


def test_the_watcher_sees_reads_outside():
    """The invariant is not vacuous: an open outside the folder is caught."""
    with tempfile.TemporaryDirectory() as d:
        with pytest.raises(AssertionError, match="opened outside"):
            check(Path(d), lambda: open(os.path.join(os.path.dirname(d), os.path.basename(d) + "-elsewhere"), "w"))
        os.remove(os.path.join(os.path.dirname(d), os.path.basename(d) + "-elsewhere"))
