"""navtune's on-disk episode dataset: frames + one JSONL manifest, written so that nothing is ever half.

Layout of a dataset folder (see docs/data.md)::

    dataset_info.json                 what was collected and how (task, action space, reward coefficients)
    manifest.jsonl                    one line per *committed* episode: metadata + per-step records
    episodes/<episode_id>/rgb_<t>.png     RGB observation before action t (uint8)
    episodes/<episode_id>/depth_<t>.png   depth before action t, 16-bit PNG in millimetres (0 = invalid)

Commit protocol (why a crash at any point leaves no duplicate and no half episode): an episode's frames
are written into ``episodes/.tmp-<id>-<pid>-<rand>/`` (marked as navtune's unfinished work by a
``.navtune-partial`` file); the folder is renamed to ``episodes/<id>`` (atomic), then the manifest line
is appended and fsynced (`navtune.core.io.append_jsonl`; a torn last line is ignored on read and repaired
on the next append), then the mark is removed. An episode exists iff its manifest line does.
Opening a writer on an existing folder (resume) skips committed ids and deletes only what navtune marked
as its own unfinished work: temp folders and marked episode folders without a manifest line. Anything
else in the folder is left alone, symbolic links are never followed, and one process writes a folder at
a time (`navtune.core.lock.FolderLock`; a second writer gets an error naming the holder's pid).
"""
from __future__ import annotations

import math
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from navtune.core.actions import ACTION_SPACES, STOP_ACTIONS
from navtune.core.errors import NavtuneError, is_finite_number
from navtune.core.paths import check_relative, resolve_inside, safe_name
from navtune.core.io import append_jsonl, append_jsonl_rows, atomic_write_json, read_json, read_jsonl, write_jsonl
from navtune.data.rewards import RewardConfig, discounted_returns, step_rewards
from navtune.envs.protocol import Pose

FORMAT_NAME = "navtune-episodes"
FORMAT_VERSION = 1
INFO_FILE = "dataset_info.json"
MANIFEST_FILE = "manifest.jsonl"
EPISODES_DIR = "episodes"
TMP_PREFIX = ".tmp-"
PARTIAL_MARK = ".navtune-partial"  # inside a frame folder navtune has not committed yet
DEPTH_SCALE = 1000.0  # depth PNG units per metre (millimetres)
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class DatasetFormatError(NavtuneError):
    """A malformed dataset folder or manifest; the message names the file, episode and field."""


class FrameError(DatasetFormatError):
    """A missing or corrupt frame; the message names the episode and the step."""


# --------------------------------------------------------------------------------------------- frames
def depth_to_mm(depth: np.ndarray) -> np.ndarray:
    """Metres (float) -> uint16 millimetres; non-finite or negative -> 0 (invalid), clipped at 65.535 m."""
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim == 3 and d.shape[-1] == 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise ValueError(f"depth must be (H, W) metres, got shape {d.shape}")
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)
    return np.clip(np.rint(d * DEPTH_SCALE), 0, 65535).astype(np.uint16)


def mm_to_depth(mm: np.ndarray) -> np.ndarray:
    """uint16 millimetres -> float32 metres."""
    return (np.asarray(mm).astype(np.float32) / DEPTH_SCALE).astype(np.float32)


def _write_png(path: Path, array: np.ndarray, compress_level: int, fsync: bool) -> None:
    from PIL import Image

    img = Image.fromarray(array)
    with open(path, "wb") as f:
        img.save(f, format="PNG", compress_level=compress_level)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_episode_id(episode_id: str, file: str | os.PathLike | None = None) -> str:
    """Episode ids become folder names: letters, digits, `_`, `.`, `-`, not starting with a dot
    (`navtune.core.paths.safe_name`, narrowed to a portable character set)."""
    safe_name(episode_id, file, "episode_id", DatasetFormatError)
    if not _ID_RE.match(episode_id):
        raise DatasetFormatError(f"episode id {episode_id[:80]!r} cannot be a folder name (use letters, digits, "
                                 "'_', '.', '-')", file=file, field="episode_id")
    return episode_id


def _pose_dict(pose: Pose | Mapping[str, float] | None) -> dict[str, float] | None:
    if pose is None:
        return None
    if isinstance(pose, Pose):
        return {k: float(v) for k, v in pose.to_dict().items()}
    return {k: float(pose[k]) for k in ("x", "y", "z", "heading") if k in pose}


# --------------------------------------------------------------------------------------------- writing
@dataclass
class EpisodeMeta:
    """What an episode is, independent of what happened in it."""

    episode_id: str
    task: str  # "objectnav" | "vln" | "r2r"
    action_space: str  # "graph" | "continuous"
    scene: str  # house id or R2R scan: the unit of train/val/test splits
    instruction: str | None = None  # route instruction or the ObjectNav goal phrase
    target: str | None = None  # ObjectNav object category
    start: dict[str, float] | None = None  # pose dict
    goal: dict[str, Any] = field(default_factory=dict)  # task-specific (viewpoint, positions, ...)
    success_radius: float = 3.0
    source: str = "expert"  # expert | r2r-bfs | interactive | dagger | policy
    order: int = 0  # position in the source episode list (fixes manifest order after parallel collection)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_episode_id(self.episode_id)
        if self.action_space not in ACTION_SPACES:
            raise DatasetFormatError(
                f"episode {self.episode_id!r}: field 'action_space' must be one of {sorted(ACTION_SPACES)} "
                f"(got {self.action_space!r})"
            )
        self.start = _pose_dict(self.start)


@dataclass
class StepData:
    """One step as a collector sees it: the observation *before* the action, the action and its outcome."""

    action: str
    pose: Pose | Mapping[str, float]
    rgb: np.ndarray | None = None  # (H, W, 3) uint8
    depth: np.ndarray | None = None  # (H, W) float32 metres
    geodesic_distance: float | None = None  # to the goal, before the action
    collision: bool = False  # the action was blocked
    allowed_actions: Sequence[str] = ()
    expert_action: str | None = None  # the expert's action at this state (DAgger relabelling)
    info: dict[str, Any] = field(default_factory=dict)  # e.g. viewpoint, distance_traveled


@dataclass
class PendingEpisode:
    """A finished, not yet committed episode: its manifest record and the temp folder holding its frames.
    Picklable, so parallel workers build these and the main process commits them."""

    record: dict[str, Any]
    tmp_dir: str | None


class EpisodeBuilder:
    """Collects one episode's steps, writing frames into a private temp folder as they come."""

    def __init__(
        self,
        root: str | os.PathLike,
        meta: EpisodeMeta,
        reward: RewardConfig = RewardConfig(),
        png_compress_level: int = 1,
        fsync: bool = True,
    ):
        self.root = Path(root)
        self.meta = meta
        self.reward = reward
        self.png_compress_level = png_compress_level
        self.fsync = fsync
        self.steps: list[dict[str, Any]] = []
        self._tmp: Path | None = None

    @property
    def episode_id(self) -> str:
        return self.meta.episode_id

    def _tmp_dir(self) -> Path:
        if self._tmp is None:
            name = f"{TMP_PREFIX}{self.episode_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp = self.root / EPISODES_DIR / name
            tmp.mkdir(parents=True)
            (tmp / PARTIAL_MARK).touch()  # navtune's own unfinished work: a resume may delete it
            self._tmp = tmp
        return self._tmp

    def add(self, step: StepData) -> None:
        t = len(self.steps)
        rel = f"{EPISODES_DIR}/{self.episode_id}"
        rgb_path = depth_path = None
        if step.rgb is not None:
            rgb = np.asarray(step.rgb)
            if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
                raise ValueError(
                    f"episode {self.episode_id!r} step {t}: rgb must be (H, W, 3) uint8, got {rgb.dtype} {rgb.shape}"
                )
            _write_png(self._tmp_dir() / f"rgb_{t}.png", rgb, self.png_compress_level, self.fsync)
            rgb_path = f"{rel}/rgb_{t}.png"
        if step.depth is not None:
            _write_png(self._tmp_dir() / f"depth_{t}.png", depth_to_mm(step.depth), self.png_compress_level, self.fsync)
            depth_path = f"{rel}/depth_{t}.png"
        gd = step.geodesic_distance
        self.steps.append(
            {
                "t": t,
                "action": str(step.action),
                "expert_action": None if step.expert_action is None else str(step.expert_action),
                "allowed_actions": [str(a) for a in step.allowed_actions],
                "pose": _pose_dict(step.pose),
                "geodesic_distance": None if gd is None or not math.isfinite(gd) else float(gd),
                "collision": bool(step.collision),
                "reward": None,
                "return": None,
                "rgb": rgb_path,
                "depth": depth_path,
                "info": dict(step.info),
            }
        )

    def finish(
        self,
        final_pose: Pose | Mapping[str, float] | None = None,
        final_geodesic_distance: float | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> PendingEpisode:
        """Compute rewards/returns (when every distance is known) and return the episode to commit."""
        steps = self.steps
        dists = [s["geodesic_distance"] for s in steps] + [final_geodesic_distance]
        known = all(d is not None and math.isfinite(d) for d in dists)
        stopped = bool(steps) and steps[-1]["action"] in STOP_ACTIONS
        if known and steps:
            r = step_rewards(
                dists, [s["action"] for s in steps], [s["collision"] for s in steps], self.meta.success_radius, self.reward
            )
            g = discounted_returns(r, self.reward.gamma)
            for s, ri, gi in zip(steps, r, g):
                s["reward"], s["return"] = float(ri), float(gi)
        fp = _pose_dict(final_pose)
        path_length = 0.0
        poses = [s["pose"] for s in steps] + ([fp] if fp else [])
        for a, b in zip(poses, poses[1:]):
            path_length += math.dist((a["x"], a["y"], a.get("z", 0.0)), (b["x"], b["y"], b.get("z", 0.0)))
        record = asdict(self.meta)
        if info:
            record["info"] = {**record["info"], **dict(info)}
        fd = final_geodesic_distance
        fd = None if fd is None or not math.isfinite(fd) else float(fd)
        record.update(
            {
                "num_steps": len(steps),
                "stopped": stopped,
                "success": (stopped and fd < self.meta.success_radius) if fd is not None else None,
                "path_length": path_length,
                "final": {"pose": fp, "geodesic_distance": fd},
                "steps": steps,
            }
        )
        return PendingEpisode(record=record, tmp_dir=None if self._tmp is None else str(self._tmp))

    def abort(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class DatasetWriter:
    """Owns a dataset folder: creates or resumes it, commits episodes atomically, sorts the manifest.

    Only one process commits (the collector's main process); workers only build `PendingEpisode`s."""

    def __init__(self, root: str | os.PathLike, info: Mapping[str, Any]):
        from navtune.core.lock import FolderLock

        self.root = Path(root)
        for name in (INFO_FILE, MANIFEST_FILE, EPISODES_DIR):
            if (self.root / name).is_symlink():
                raise DatasetFormatError("is a symbolic link; navtune writes datasets only into real files and "
                                         "folders", file=self.root / name)
        self._lock = FolderLock(self.root, what="dataset").acquire()  # one writer per folder
        self.info = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **dict(info)}
        self.reward = RewardConfig.from_dict(self.info.get("reward", RewardConfig().to_dict()))
        self.info["reward"] = self.reward.to_dict()
        info_path = self.root / INFO_FILE
        if info_path.exists():
            old = _read_info(self.root)
            if _normalise(old) != _normalise(self.info):
                diff = sorted(k for k in set(old) | set(self.info) if old.get(k) != self.info.get(k))
                raise DatasetFormatError(
                    f"{info_path}: the existing dataset was collected with other settings (fields {diff}); "
                    "resume with the same settings or write to a new --out folder"
                )
        else:
            if (self.root / MANIFEST_FILE).exists():
                raise DatasetFormatError(f"{self.root}: has a {MANIFEST_FILE} but no {INFO_FILE}")
            atomic_write_json(info_path, self.info)
        self.manifest_path = self.root / MANIFEST_FILE
        self.committed: set[str] = set()
        for k, row in enumerate(read_jsonl(self.manifest_path, DatasetFormatError)):
            eid = row.get("episode_id") if isinstance(row, dict) else None
            if not isinstance(eid, str):
                raise DatasetFormatError("missing or not a string", file=self.manifest_path,
                                         where=f"episode #{k}", field="episode_id")
            if eid in self.committed:
                raise DatasetFormatError(f"{self.manifest_path}: episode {eid!r} is listed twice")
            self.committed.add(eid)
        self.cleaned = self._clean()

    def _clean(self) -> list[str]:
        """Delete what a crash left behind, and only what navtune marked as its own unfinished work: temp
        folders (``.tmp-<id>-...`` holding the partial mark) and marked episode folders without a manifest
        line. Committed folders lose a leftover mark; symbolic links and anything unmarked stay."""
        removed = []
        ep_dir = self.root / EPISODES_DIR
        if ep_dir.is_dir() and not ep_dir.is_symlink():
            for p in sorted(ep_dir.iterdir()):
                if p.is_symlink() or not p.is_dir() or not _is_partial(p):
                    continue
                if p.name.startswith(TMP_PREFIX) or p.name not in self.committed:
                    shutil.rmtree(p)
                    removed.append(p.name)
                else:  # committed, but the crash came before the mark was removed
                    (p / PARTIAL_MARK).unlink()
        return removed

    def has(self, episode_id: str) -> bool:
        return episode_id in self.committed

    def builder(self, meta: EpisodeMeta, **kwargs: Any) -> EpisodeBuilder:
        return EpisodeBuilder(self.root, meta, self.reward, **kwargs)

    def commit(self, pending: PendingEpisode) -> None:
        self.commit_many([pending])

    def commit_many(self, pendings: Sequence[PendingEpisode]) -> None:
        """Commit episodes: rename each frame folder into place, then append their manifest lines with
        one write + fsync (a group commit: thousands of frameless R2R episodes would otherwise cost one
        fsync each). A crash before the fsync loses only these episodes, never half of one."""
        batch: set[str] = set()
        for p in pendings:
            eid = p.record["episode_id"]
            if eid in self.committed or eid in batch:
                for q in pendings:
                    if q.tmp_dir and Path(q.tmp_dir).exists():
                        shutil.rmtree(q.tmp_dir, ignore_errors=True)
                raise DatasetFormatError(f"{self.manifest_path}: episode {eid!r} is already committed")
            batch.add(eid)
        self._lock.acquire()  # again, if `finalize` released it
        moved = []
        for p in pendings:
            if p.tmp_dir:
                final = self.root / EPISODES_DIR / p.record["episode_id"]
                if final.is_symlink() or (final.exists() and not _is_partial(final)):
                    raise DatasetFormatError("exists and was not written by navtune (no partial mark); move it "
                                             "away or write to another --out folder", file=final)
                if final.exists():  # navtune's, left by a crash between rename and manifest append
                    shutil.rmtree(final)
                os.replace(p.tmp_dir, final)
                moved.append(final)
        if moved:
            _fsync_dir(self.root / EPISODES_DIR)
        if len(pendings) == 1:
            append_jsonl(self.manifest_path, pendings[0].record)
        elif pendings:
            append_jsonl_rows(self.manifest_path, [p.record for p in pendings])
        self.committed |= batch
        for final in moved:  # committed: no longer navtune's to delete
            (final / PARTIAL_MARK).unlink(missing_ok=True)

    def finalize(self) -> int:
        """Rewrite the manifest (atomically) in source order, so that parallel and resumed collections
        give byte-identical manifests. Returns the episode count."""
        rows = read_jsonl(self.manifest_path, DatasetFormatError)
        rows.sort(key=lambda r: (r.get("order", 0), r["episode_id"]))
        write_jsonl(self.manifest_path, rows)
        self.close()
        return len(rows)

    def close(self) -> None:
        """Release the folder's lock (`finalize` does; a later commit takes it again)."""
        self._lock.release()


def _is_partial(folder: Path) -> bool:
    """Whether `folder` holds navtune's partial mark (a regular file, not a link)."""
    try:
        return (folder / PARTIAL_MARK).lstat().st_mode & 0o170000 == 0o100000
    except OSError:
        return False


def _normalise(info: Mapping[str, Any]) -> Any:
    import json

    return json.loads(json.dumps(info, sort_keys=True))


def _read_info(root: Path) -> dict[str, Any]:
    path = root / INFO_FILE
    if not path.exists():
        raise DatasetFormatError(f"not a navtune dataset (no {INFO_FILE})", file=root)
    info = read_json(path, DatasetFormatError)
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise DatasetFormatError(f"must be {FORMAT_NAME!r}", file=path, field="format")
    if info.get("version") != FORMAT_VERSION:
        raise DatasetFormatError(f"is {info.get('version')!r}, this navtune reads {FORMAT_VERSION}", file=path,
                                 field="version")
    space = info.get("action_space")
    if space is not None and (not isinstance(space, str) or space not in ACTION_SPACES):
        raise DatasetFormatError(f"must be one of {sorted(ACTION_SPACES)} (got {space!r})", file=path,
                                 field="action_space")
    return info


# --------------------------------------------------------------------------------------------- reading
_EPISODE_FIELDS = ("episode_id", "task", "action_space", "scene", "steps")
_STEP_FIELDS = ("t", "action", "pose")


class _ManifestFields:
    """Dict-style read access to the manifest line a record was built from (``ep["steps"]``), for code
    written against the plain dicts; navtune itself reads the typed attributes."""

    _raw: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self._raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._raw.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def keys(self):
        return self._raw.keys()


@dataclass(frozen=True, eq=False)
class StepRecord(_ManifestFields):
    """One committed step, read back: what `StepData` recorded (frames as paths relative to the dataset
    folder) plus the step index and the reward / return computed at commit (None when unknown)."""

    t: int
    action: str
    pose: Mapping[str, float]
    expert_action: str | None = None
    allowed_actions: tuple[str, ...] = ()
    geodesic_distance: float | None = None
    collision: bool = False
    reward: float | None = None
    ret: float | None = None  # the manifest's "return"
    rgb: str | None = None
    depth: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    _raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_manifest(cls, s: Mapping[str, Any]) -> "StepRecord":
        return cls(t=int(s["t"]), action=str(s["action"]), pose=MappingProxyType(dict(s["pose"])),
                   expert_action=s.get("expert_action"), allowed_actions=tuple(s.get("allowed_actions") or ()),
                   geodesic_distance=s.get("geodesic_distance"), collision=bool(s.get("collision", False)),
                   reward=s.get("reward"), ret=s.get("return"), rgb=s.get("rgb"), depth=s.get("depth"),
                   info=MappingProxyType(dict(s.get("info") or {})), _raw=MappingProxyType(s))

    def frame(self, kind: str) -> str | None:
        """Path of the step's "rgb" or "depth" frame relative to the dataset folder (None: not recorded)."""
        if kind not in ("rgb", "depth"):
            raise ValueError(f"frame kind must be 'rgb' or 'depth' (got {kind!r})")
        return self.rgb if kind == "rgb" else self.depth


@dataclass(frozen=True, eq=False)
class EpisodeRecord(_ManifestFields):
    """One committed episode, read back from its manifest line: the `EpisodeMeta` it was written with, what
    happened (steps, stop, success, path length, final pose / distance). Read-only."""

    episode_id: str
    task: str
    action_space: str
    scene: str
    steps: tuple[StepRecord, ...]
    instruction: str | None = None
    target: str | None = None
    start: Mapping[str, float] | None = None
    goal: Mapping[str, Any] = field(default_factory=dict)
    success_radius: float = 3.0
    source: str = "expert"
    order: int = 0
    info: Mapping[str, Any] = field(default_factory=dict)
    num_steps: int = 0
    stopped: bool = False
    success: bool | None = None
    path_length: float = 0.0
    final: Mapping[str, Any] = field(default_factory=dict)
    _raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_manifest(cls, ep: Mapping[str, Any]) -> "EpisodeRecord":
        steps = tuple(StepRecord.from_manifest(s) for s in ep["steps"])
        start = ep.get("start")
        return cls(episode_id=ep["episode_id"], task=ep["task"], action_space=ep["action_space"], scene=str(ep["scene"]),
                   steps=steps, instruction=ep.get("instruction"), target=ep.get("target"),
                   start=None if start is None else MappingProxyType(dict(start)),
                   goal=MappingProxyType(dict(ep.get("goal") or {})), success_radius=ep.get("success_radius", 3.0),
                   source=ep.get("source", "expert"), order=ep.get("order", 0),
                   info=MappingProxyType(dict(ep.get("info") or {})), num_steps=ep.get("num_steps", len(steps)),
                   stopped=bool(ep.get("stopped", False)), success=ep.get("success"),
                   path_length=ep.get("path_length", 0.0), final=MappingProxyType(dict(ep.get("final") or {})),
                   _raw=MappingProxyType(ep))

    @property
    def actions(self) -> list[str]:
        return [s.action for s in self.steps]


def _check_pose(pose: Any, bad: Any, field: str, where: str | None) -> None:
    if not isinstance(pose, dict) or "x" not in pose or "y" not in pose:
        raise bad("must be an object {x, y, z, heading}", field, where)
    for k, v in pose.items():
        if not is_finite_number(v):
            raise bad(f"{k} must be a finite number (got {v!r})", field, where)


def _check_distance(value: Any, bad: Any, field: str, where: str | None, nonnegative: bool = True) -> None:
    """null (unknown) or a finite number (>= 0 for distances): NaN / inf rewards or distances are refused
    when read, before a trainer turns them into a NaN loss."""
    if value is None:
        return
    if not is_finite_number(value) or (nonnegative and value < 0):
        want = "a finite number >= 0" if nonnegative else "a finite number"
        raise bad(f"must be null or {want} (got {value!r})", field, where)


class EpisodeDataset:
    """Read access to a dataset folder: episodes from the manifest as typed read-only `EpisodeRecord`s,
    frames decoded on demand."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.info = _read_info(self.root)
        self.manifest_path = self.root / MANIFEST_FILE
        self.episodes: list[EpisodeRecord] = []
        self._index: dict[str, int] = {}
        for i, row in enumerate(read_jsonl(self.manifest_path, DatasetFormatError)):
            self._validate(row, i)
            ep = EpisodeRecord.from_manifest(row)
            self._index[ep.episode_id] = len(self.episodes)
            self.episodes.append(ep)

    def _validate(self, ep: Any, i: int) -> None:
        """Every field a reader relies on, so that a bad manifest line is one error naming the manifest, the
        episode and the field, and nothing wrong is trained on: actions in the episode's action space, finite
        numbers (poses, distances, rewards), step indices, num_steps, frame paths inside the folder."""
        file = self.manifest_path

        def bad(what: str, field: str | None = None, where: str | None = None) -> DatasetFormatError:
            return DatasetFormatError(what, file=file, where=where or f"episode {eid!r}", field=field)

        if not isinstance(ep, dict):
            raise DatasetFormatError("not a JSON object", file=file, where=f"episode #{i}")
        eid = ep.get("episode_id")
        if not isinstance(eid, str):
            raise DatasetFormatError("missing or not a string", file=file, where=f"episode #{i}", field="episode_id")
        check_episode_id(eid, file)
        for f in _EPISODE_FIELDS:
            if f not in ep:
                raise bad("missing", f)
        if eid in self._index:
            raise bad("listed twice", "episode_id")
        if not isinstance(ep["task"], str) or not isinstance(ep["scene"], (str, int)) or isinstance(ep["scene"], bool):
            raise bad("must be a string", "task" if not isinstance(ep["task"], str) else "scene")
        space = ep["action_space"]
        if not isinstance(space, str) or space not in ACTION_SPACES:
            raise bad(f"must be one of {sorted(ACTION_SPACES)} (got {space!r})", "action_space")
        declared = self.info.get("action_space")
        if declared is not None and space != declared:
            raise bad(f"is {space!r} but {INFO_FILE} declares {declared!r}", "action_space")
        actions = ACTION_SPACES[space]
        steps = ep["steps"]
        if not isinstance(steps, list):
            raise bad("must be a list", "steps")
        n = ep.get("num_steps", len(steps))
        if n != len(steps) or isinstance(n, bool):
            raise bad(f"is {n!r} but the episode lists {len(steps)} steps (a torn or edited manifest)", "num_steps")
        for key in ("success_radius", "path_length"):
            if key in ep and not is_finite_number(ep[key]):
                raise bad(f"must be a finite number (got {ep[key]!r})", key)
        for key in ("instruction", "target"):
            if ep.get(key) is not None and not isinstance(ep[key], str):
                raise bad("must be a string", key)
        for key in ("goal", "info", "final"):
            if ep.get(key) is not None and not isinstance(ep[key], dict):
                raise bad("must be an object", key)
        if ep.get("start") is not None:
            _check_pose(ep["start"], bad, "start", None)
        final = ep.get("final") or {}
        if final.get("pose") is not None:
            _check_pose(final["pose"], bad, "final.pose", None)
        _check_distance(final.get("geodesic_distance"), bad, "final.geodesic_distance", None)
        for t, s in enumerate(steps):
            where = f"episode {eid!r}: step {t}"
            if not isinstance(s, dict):
                raise bad("not a JSON object", None, where)
            for f in _STEP_FIELDS:
                if f not in s:
                    raise bad("missing", f, where)
            if s["t"] != t or isinstance(s["t"], bool):
                raise bad(f"is {s['t']!r}, expected {t}", "t", where)
            if s["action"] not in actions:
                raise bad(f"{s['action']!r} is not an action of the {space!r} space ({', '.join(actions)})",
                          "action", where)
            if s.get("expert_action") is not None and s["expert_action"] not in actions:
                raise bad(f"{s['expert_action']!r} is not an action of the {space!r} space ({', '.join(actions)})",
                          "expert_action", where)
            allowed = s.get("allowed_actions") or []
            if not isinstance(allowed, list) or any(a not in actions for a in allowed):
                raise bad(f"must list actions of the {space!r} space ({', '.join(actions)})", "allowed_actions", where)
            _check_pose(s["pose"], bad, "pose", where)
            for key in ("geodesic_distance", "reward", "return"):
                _check_distance(s.get(key), bad, key, where, nonnegative=key == "geodesic_distance")
            if not isinstance(s.get("collision", False), bool):
                raise bad("must be true or false", "collision", where)
            if s.get("info") is not None and not isinstance(s["info"], dict):
                raise bad("must be an object", "info", where)
            for kind in ("rgb", "depth"):
                if s.get(kind) is not None:
                    try:
                        check_relative(s[kind], file, kind)
                    except NavtuneError as e:
                        raise bad(e.what, kind, where) from None

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> EpisodeRecord:
        return self.episodes[i]

    def __iter__(self) -> Iterator[EpisodeRecord]:
        return iter(self.episodes)

    def episode(self, episode_id: str) -> EpisodeRecord:
        try:
            return self.episodes[self._index[episode_id]]
        except KeyError:
            raise KeyError(f"{self.manifest_path}: no episode {episode_id!r}") from None

    def _record(self, episode: str | EpisodeRecord | Mapping[str, Any]) -> EpisodeRecord:
        if isinstance(episode, str):
            return self.episode(episode)
        return episode if isinstance(episode, EpisodeRecord) else EpisodeRecord.from_manifest(episode)

    @property
    def episode_ids(self) -> list[str]:
        return [e.episode_id for e in self.episodes]

    @property
    def num_steps(self) -> int:
        return sum(len(e.steps) for e in self.episodes)

    def iter_steps(self) -> Iterator[tuple[EpisodeRecord, StepRecord]]:
        for ep in self.episodes:
            for s in ep.steps:
                yield ep, s

    def frame_path(self, episode: str | EpisodeRecord, t: int, kind: str = "rgb") -> Path:
        ep = self._record(episode)
        if not 0 <= t < len(ep.steps):
            raise FrameError(f"{self.root}: episode {ep.episode_id!r} has no step {t} ({len(ep.steps)} steps)")
        rel = ep.steps[t].frame(kind)
        if rel is None:
            raise FrameError(f"{self.root}: episode {ep.episode_id!r} step {t}: no {kind} frame was recorded")
        try:  # a frame path from the manifest never leads outside the dataset folder (.., absolute, links)
            return resolve_inside(self.root, rel, self.manifest_path, kind)
        except NavtuneError as e:
            raise FrameError(e.what, file=self.manifest_path, where=f"episode {ep.episode_id!r}: step {t}",
                             field=kind) from None

    def _load(self, episode: str | EpisodeRecord, t: int, kind: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        ep = self._record(episode)
        path = self.frame_path(ep, t, kind)
        where = f"{self.root}: episode {ep.episode_id!r} step {t}: {kind} frame {path.name}"
        try:
            with Image.open(path) as img:
                if img.get_format_mimetype() != "image/png":  # e.g. a JPEG renamed .png: not what was recorded
                    raise FrameError(f"{where} is not a PNG (it is {img.format or 'unknown'})")
                img.load()
                arr = np.array(img)
        except FileNotFoundError:
            raise FrameError(f"{where} is missing") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            if isinstance(e, FrameError):
                raise
            raise FrameError(f"{where} is corrupt: {e}") from e
        if kind == "rgb" and (arr.ndim != 3 or arr.shape[-1] < 3 or arr.dtype != np.uint8):
            raise FrameError(f"{where} is not an 8-bit RGB image ({arr.dtype} {arr.shape})")
        if kind == "depth" and (arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32)):
            raise FrameError(f"{where} is not a 16-bit depth image ({arr.dtype} {arr.shape})")
        return arr[..., :3] if kind == "rgb" else arr

    def load_rgb(self, episode: str | EpisodeRecord, t: int) -> np.ndarray:
        """(H, W, 3) uint8."""
        return self._load(episode, t, "rgb")

    def load_depth(self, episode: str | EpisodeRecord, t: int) -> np.ndarray:
        """(H, W) float32 metres (0 = invalid)."""
        return mm_to_depth(self._load(episode, t, "depth"))

    def load_image(self, episode: str | EpisodeRecord, t: int):
        """The RGB frame as a PIL image (what processors take)."""
        from PIL import Image

        return Image.fromarray(self.load_rgb(episode, t))

    def verify(self) -> int:
        """Check the whole folder; raise on the first problem, return the number of frames checked: the
        manifest's last line is complete (not torn by a crash), every frame decodes as a PNG of the expected
        kind, and all frames have one size, the one `dataset_info.json` declares (width x height) if any."""
        from navtune.core.io import iter_jsonl

        for _ in iter_jsonl(self.manifest_path, DatasetFormatError, torn_tail="error"):
            pass
        w, h = self.info.get("width"), self.info.get("height")
        size = (w, h) if is_finite_number(w) and is_finite_number(h) else None
        size_from = f"{INFO_FILE} (width x height)"
        n = 0
        for ep, s in self.iter_steps():
            for kind in ("rgb", "depth"):
                if s.frame(kind) is None:
                    continue
                arr = self._load(ep, s.t, kind)
                got = (arr.shape[1], arr.shape[0])
                if size is None:
                    size, size_from = got, f"episode {ep.episode_id!r} step {s.t} {kind}"
                elif got != size:
                    raise FrameError(f"is {got[0]}x{got[1]} but {size_from} is {size[0]}x{size[1]}",
                                     file=self.manifest_path, where=f"episode {ep.episode_id!r}: step {s.t}",
                                     field=kind)
                n += 1
        return n


# --------------------------------------------------------------------------------------------- splits
def split_by_scene(
    episodes: Iterable[EpisodeRecord | Mapping[str, Any]],
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Split episode ids into train/val/test by *scene* (house or scan), never by step or episode, so that
    no validation house was seen in training. Scenes are shuffled with `seed` and assigned greedily so
    each split's share of episodes approaches its fraction; every split with a positive fraction gets at
    least one scene when there are enough scenes."""
    fractions = dict(fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
    if any(f < 0 for f in fractions.values()) or sum(fractions.values()) <= 0:
        raise ValueError(f"split fractions must be >= 0 with a positive sum (got {fractions})")
    by_scene: dict[str, list[str]] = {}
    for ep in episodes:
        scene, eid = (ep.scene, ep.episode_id) if isinstance(ep, EpisodeRecord) else (ep["scene"], ep["episode_id"])
        by_scene.setdefault(str(scene), []).append(eid)
    scenes = sorted(by_scene)
    rng = np.random.default_rng(seed)
    scenes = [scenes[i] for i in rng.permutation(len(scenes))]
    total = sum(fractions.values())
    names = list(fractions)
    out: dict[str, list[str]] = {n: [] for n in names}
    counts = {n: 0 for n in names}
    positive = [n for n in names if fractions[n] > 0]
    n_all = sum(len(v) for v in by_scene.values())
    for i, sc in enumerate(scenes):
        empty = [n for n in positive if counts[n] == 0]
        if empty and len(scenes) - i <= len(empty):  # just enough scenes left: one each
            name = empty[0]
        else:  # the split furthest below its target share
            name = min(positive, key=lambda n: (counts[n] - fractions[n] / total * n_all) / max(fractions[n], 1e-9))
        out[name].extend(by_scene[sc])
        counts[name] += len(by_scene[sc])
    return out
