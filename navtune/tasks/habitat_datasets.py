"""Readers for Habitat's episode datasets -> navtune episodes (navtune frame: metres, z up, heading 0 along
+y, clockwise positive). No habitat-lab / habitat-sim needed: the files are gzipped JSON.

* ObjectNav (habitat-lab `ObjectNav-v1`: HM3D, MP3D): `<root>/<split>/<split>.json.gz` (category maps, often
  no episodes) and per scene `<root>/<split>/content/<scene>.json.gz` with `episodes` and
  `goals_by_category` keyed `"<basename(scene_id)>_<object_category>"`. -> `ObjectNavEpisode`.
* VLN-CE R2R (`R2R_VLNCE_v1-3_preprocessed`): `<root>/<split>/<split>.json.gz` with `episodes`
  ({episode_id, trajectory_id, scene_id, start_position, start_rotation, goals, instruction, reference_path,
  info}). -> `VLNCEEpisode`.

Habitat's frame (y up, agent looks along -z, rotations as [x, y, z, w]) maps to navtune's here, in the one
place (the habitat env in `navtune/envs/habitat` uses the same functions):
    navtune (x, y, z) = habitat (x, -z, y);   navtune heading = -(habitat yaw about +y).
Every problem raises `HabitatDataError` naming the file, the episode and the field.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from navtune.core.errors import NavtuneError, is_finite_number
from navtune.core.io import decode_json
from navtune.core.paths import check_relative, safe_name
from navtune.tasks.objectnav import DEFAULT_MAX_STEPS, DEFAULT_SUCCESS_DISTANCE, ObjectGoal, ObjectNavEpisode

VLNCE_SUCCESS_DISTANCE = 3.0
VLNCE_MAX_STEPS = 500


class HabitatDataError(NavtuneError):
    """A malformed habitat dataset file; the message names the file, the episode and the field."""

    def __init__(self, file: str | os.PathLike, message: str, episode: Any = None, field: str | None = None,
                 where: str | None = None):
        super().__init__(message, file=file, field=field,
                         where=where if episode is None else f"episode {episode}")

    @classmethod
    def at(cls, file, message, field=None, where=None) -> "HabitatDataError":
        return cls(file if file is not None else "<input>", message, field=field, where=where)


# ------------------------------------------------------------------------------------ frame mapping
def habitat_to_navtune_position(p: Sequence[float]) -> tuple[float, float, float]:
    """Habitat (x, y up, z back) -> navtune (x, y, z up)."""
    x, y, z = (float(v) for v in p)
    return (x, -z, y)


def navtune_to_habitat_position(p: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in p)
    return (x, z, -y)


def quaternion_coeffs(q: Any) -> tuple[float, float, float, float]:
    """[x, y, z, w] of a habitat rotation: a coefficient list (datasets), a numpy-quaternion (.w .x .y .z,
    what habitat-sim's AgentState holds) or a magnum Quaternion (.vector, .scalar)."""
    if hasattr(q, "scalar") and hasattr(q, "vector"):
        v = q.vector
        return (float(v[0]), float(v[1]), float(v[2]), float(q.scalar))
    if all(hasattr(q, a) for a in ("w", "x", "y", "z")):
        return (float(q.x), float(q.y), float(q.z), float(q.w))
    c = [float(v) for v in q]
    if len(c) != 4:
        raise ValueError(f"a rotation must be 4 quaternion coefficients [x, y, z, w] (got {q!r})")
    return (c[0], c[1], c[2], c[3])


def rotate_vector(q: Sequence[float], v: Sequence[float]) -> np.ndarray:
    """Rotate v by the unit quaternion q = [x, y, z, w]."""
    x, y, z, w = q
    u = np.array([x, y, z], dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


def heading_from_rotation(q: Any) -> float:
    """navtune heading of a habitat agent rotation (its forward, -z, projected on the floor)."""
    c = quaternion_coeffs(q)
    n = math.sqrt(sum(v * v for v in c))
    if not n > 0 or not math.isfinite(n):
        raise ValueError(f"rotation {c} is not a valid quaternion")
    f = rotate_vector([v / n for v in c], (0.0, 0.0, -1.0))
    dx, dy = f[0], -f[2]
    if math.hypot(dx, dy) < 1e-9:
        raise ValueError(f"rotation {c} looks straight up or down; it has no heading")
    return math.atan2(dx, dy) % (2.0 * math.pi)


def rotation_from_heading(heading: float) -> list[float]:
    """Habitat rotation [x, y, z, w] (a yaw about +y) of an agent at navtune heading `heading`."""
    yaw = -heading
    return [0.0, math.sin(yaw / 2.0), 0.0, math.cos(yaw / 2.0)]


# ------------------------------------------------------------------------------------ files
def read_json_gz(path: str | os.PathLike) -> Any:
    """Parse a `.json.gz` (or plain `.json`) file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise HabitatDataError(path, "file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise HabitatDataError(path, f"not a readable gzip file ({e})") from None
    return decode_json(data, path, error=HabitatDataError)


class _Fields:
    """Typed access to one episode's fields with errors naming file, episode and field."""

    def __init__(self, file: Path, d: Any, index: int):
        if not isinstance(d, dict):
            raise HabitatDataError(file, f"episode #{index} is not a JSON object")
        self.file, self.d = file, d
        self.eid = d.get("episode_id", f"#{index}")

    def fail(self, name: str, why: str) -> HabitatDataError:
        return HabitatDataError(self.file, why, episode=self.eid, field=name)

    def req(self, name: str) -> Any:
        if name not in self.d or self.d[name] is None:
            raise self.fail(name, "is missing")
        return self.d[name]

    def num(self, value: Any, name: str) -> float:
        if not is_finite_number(value):
            raise self.fail(name, f"must be a finite number (got {value!r})")
        return float(value)

    def vec3(self, value: Any, name: str) -> tuple[float, float, float]:
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise self.fail(name, f"must be [x, y, z] (got {value!r})")
        return habitat_to_navtune_position([self.num(v, name) for v in value])

    def heading(self, name: str = "start_rotation") -> float:
        value = self.req(name)
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise self.fail(name, f"must be a quaternion [x, y, z, w] (got {value!r})")
        try:
            return heading_from_rotation([self.num(v, name) for v in value])
        except ValueError as e:
            raise self.fail(name, str(e)) from None

    def text(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(name, f"must be a non-empty string (got {value!r})")
        return value

    def scene_id(self) -> str:
        """The scene path, relative to the scenes folder (no absolute path, no '..')."""
        scene = self.text(self.req("scene_id"), "scene_id")
        try:
            check_relative(scene, self.file, "scene_id")
        except NavtuneError as e:
            raise self.fail("scene_id", e.what) from None
        return scene

    def episode_id(self, eid: str) -> str:
        """navtune's id of the episode: it names folders (eval --save-frames, collect), so one plain name."""
        try:
            safe_name(eid, self.file, "episode_id")
        except NavtuneError as e:
            raise self.fail("episode_id", e.what) from None
        return eid


def _episode_list(file: Path, data: Any) -> list:
    eps = data.get("episodes") if isinstance(data, dict) else None
    if not isinstance(eps, list):
        raise HabitatDataError(file, "expected an object with an 'episodes' list", field="episodes")
    return eps


def scene_name(scene_id: str) -> str:
    """'hm3d/val/00800-TEEsavR23oF/TEEsavR23oF.basis.glb' -> 'TEEsavR23oF'."""
    return os.path.basename(scene_id).split(".")[0]


# ------------------------------------------------------------------------------------ ObjectNav
def _objectnav_goal(f: _Fields, g: Any, name: str) -> tuple[ObjectGoal, list[tuple[float, float, float]]]:
    if not isinstance(g, dict):
        raise f.fail(name, "must be an object with 'position'")
    pos = f.vec3(g.get("position"), f"{name}.position")
    radius = g.get("radius")
    radius = 0.0 if radius is None else f.num(radius, f"{name}.radius")
    if radius < 0:
        raise f.fail(f"{name}.radius", f"must be >= 0 (got {radius})")
    views = []
    if not isinstance(g.get("view_points") or [], list):
        raise f.fail(f"{name}.view_points", "must be a list")
    for j, vp in enumerate(g.get("view_points") or []):
        state = vp.get("agent_state") if isinstance(vp, dict) else None
        if not isinstance(state, dict):
            raise f.fail(f"{name}.view_points[{j}].agent_state", "is missing")
        views.append(f.vec3(state.get("position"), f"{name}.view_points[{j}].agent_state.position"))
    return ObjectGoal(pos, radius, str(g.get("object_id", ""))), views


def read_objectnav_file(
    path: str | os.PathLike,
    goals_by_category: dict | None = None,
    success_distance: float = DEFAULT_SUCCESS_DISTANCE,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> list[ObjectNavEpisode]:
    """ObjectNav episodes of one habitat file (a per-scene `content/*.json.gz`, or a split file that holds
    episodes). Goals come from the file's `goals_by_category` (or the one given) unless an episode lists
    its own. Ids become `<scene>:<episode_id>` (habitat's ids repeat across scenes)."""
    path = Path(path)
    data = read_json_gz(path)
    eps = _episode_list(path, data)
    gbc = data.get("goals_by_category") if isinstance(data, dict) else None
    if gbc is None:
        gbc = goals_by_category or {}
    if not isinstance(gbc, dict):
        raise HabitatDataError(path, "must map '<scene>_<category>' to goal lists", field="goals_by_category")
    out = []
    for i, raw in enumerate(eps):
        f = _Fields(path, raw, i)
        scene_id = f.scene_id()
        category = f.text(f.req("object_category"), "object_category")
        key = f"{os.path.basename(scene_id)}_{category}"
        raw_goals = raw.get("goals") or gbc.get(key)
        if not raw_goals:
            raise f.fail("goals", f"episode has no goals and goals_by_category has no key {key!r}")
        if not isinstance(raw_goals, list):
            raise f.fail("goals" if raw.get("goals") else f"goals_by_category[{key!r}]", "must be a list of goals")
        goals, views = [], []
        for j, g in enumerate(raw_goals):
            goal, v = _objectnav_goal(f, g, f"goals_by_category[{key!r}][{j}]" if not raw.get("goals") else f"goals[{j}]")
            goals.append(goal)
            views.extend(v)
        info_in = raw.get("info") or {}
        if not isinstance(info_in, dict):
            raise f.fail("info", "must be an object")
        if info_in.get("geodesic_distance") is None:
            raise f.fail("info.geodesic_distance", "is missing")
        geo = f.num(info_in["geodesic_distance"], "info.geodesic_distance")
        if geo < 0:
            raise f.fail("info.geodesic_distance", f"must be >= 0 (got {geo})")
        out.append(
            ObjectNavEpisode(
                episode_id=f.episode_id(f"{scene_name(scene_id)}:{f.eid}"),
                scene_id=scene_id,
                start_position=f.vec3(f.req("start_position"), "start_position"),
                start_heading=f.heading(),
                object_category=category,
                goals=goals,
                geodesic_distance=geo,
                success_distance=success_distance,
                max_steps=max_steps,
                info={
                    "source": "habitat-objectnav",
                    "habitat_episode_id": str(f.eid),
                    "scene_dataset_config": raw.get("scene_dataset_config"),
                    "view_points": [list(v) for v in views],
                    "euclidean_distance": info_in.get("euclidean_distance"),
                    "closest_goal_object_id": info_in.get("closest_goal_object_id"),
                },
            )
        )
    return out


def load_objectnav_split(
    root: str | os.PathLike,
    split: str,
    scenes: Iterable[str] | None = None,
    success_distance: float = DEFAULT_SUCCESS_DISTANCE,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> list[ObjectNavEpisode]:
    """All episodes of `<root>/<split>/<split>.json.gz` plus `<root>/<split>/content/*.json.gz` (sorted by
    scene), optionally only the named scenes (e.g. 'TEEsavR23oF')."""
    split_dir = Path(root) / split
    split_file = split_dir / f"{split}.json.gz"
    top = read_json_gz(split_file)
    if not isinstance(top, dict):
        raise HabitatDataError(split_file, "expected a JSON object")
    wanted = set(scenes) if scenes is not None else None
    episodes: list[ObjectNavEpisode] = []
    if top.get("episodes"):
        episodes += read_objectnav_file(split_file, None, success_distance, max_steps)
    content = split_dir / "content"
    files = sorted(content.glob("*.json.gz")) if content.is_dir() else []
    for path in files:
        name = path.name[: -len(".json.gz")]
        if wanted is not None and name not in wanted and name.split("-")[-1] not in wanted:
            continue
        episodes += read_objectnav_file(path, top.get("goals_by_category"), success_distance, max_steps)
    if wanted is not None:
        episodes = [e for e in episodes if scene_name(e.scene_id) in wanted or
                    os.path.basename(os.path.dirname(e.scene_id)) in wanted]
    if not episodes:
        raise HabitatDataError(split_file, f"no episodes in the split file or in {content}/*.json.gz"
                               + (f" for scenes {sorted(wanted)}" if wanted else ""))
    seen: set[str] = set()
    for e in episodes:
        if e.episode_id in seen:
            raise HabitatDataError(split_dir, "duplicated episode id", episode=e.episode_id, field="episode_id")
        seen.add(e.episode_id)
    return episodes


# ------------------------------------------------------------------------------------ VLN-CE
@dataclass(frozen=True)
class VLNCEEpisode:
    """A VLN-CE (R2R in continuous environments) episode in navtune's frame."""

    episode_id: str
    scene_id: str  # habitat scene path, e.g. 'mp3d/7y3sRwLe3Va/7y3sRwLe3Va.glb'
    start_position: tuple[float, float, float]
    start_heading: float
    instruction: str
    goal_position: tuple[float, float, float]
    success_distance: float = VLNCE_SUCCESS_DISTANCE  # the goal's radius (3 m in R2R)
    reference_path: tuple[tuple[float, float, float], ...] = ()
    geodesic_distance: float | None = None
    trajectory_id: int | None = None
    max_steps: int = VLNCE_MAX_STEPS
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def scan(self) -> str:
        return scene_name(self.scene_id)


def read_vlnce_file(path: str | os.PathLike, max_steps: int = VLNCE_MAX_STEPS) -> list[VLNCEEpisode]:
    """VLN-CE episodes of one `{split}.json.gz` file."""
    path = Path(path)
    eps = _episode_list(path, read_json_gz(path))
    out = []
    for i, raw in enumerate(eps):
        f = _Fields(path, raw, i)
        instr = f.req("instruction")
        text = instr.get("instruction_text") if isinstance(instr, dict) else instr
        goals = f.req("goals")
        if not isinstance(goals, list) or not goals or not isinstance(goals[0], dict):
            raise f.fail("goals", "must be a non-empty list of {position, radius}")
        radius = goals[0].get("radius")
        ref = raw.get("reference_path") or []
        if not isinstance(ref, list):
            raise f.fail("reference_path", "must be a list of [x, y, z]")
        info_in = raw.get("info") or {}
        geo = info_in.get("geodesic_distance") if isinstance(info_in, dict) else None
        if geo is not None and f.num(geo, "info.geodesic_distance") < 0:
            raise f.fail("info.geodesic_distance", f"must be >= 0 (got {geo})")
        if radius is not None and f.num(radius, "goals[0].radius") <= 0:
            raise f.fail("goals[0].radius", f"must be > 0 (got {radius})")
        traj = raw.get("trajectory_id")
        out.append(
            VLNCEEpisode(
                episode_id=f.episode_id(str(f.eid)),
                scene_id=f.scene_id(),
                start_position=f.vec3(f.req("start_position"), "start_position"),
                start_heading=f.heading(),
                instruction=f.text(text, "instruction.instruction_text"),
                goal_position=f.vec3(goals[0].get("position"), "goals[0].position"),
                success_distance=VLNCE_SUCCESS_DISTANCE if radius is None else f.num(radius, "goals[0].radius"),
                reference_path=tuple(f.vec3(p, f"reference_path[{k}]") for k, p in enumerate(ref)),
                geodesic_distance=None if geo is None else f.num(geo, "info.geodesic_distance"),
                trajectory_id=None if traj is None else int(f.num(traj, "trajectory_id")),
                max_steps=max_steps,
                info={"source": "habitat-vlnce"},
            )
        )
    ids = [e.episode_id for e in out]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise HabitatDataError(path, "duplicated episode id", episode=dup, field="episode_id")
    return out


def load_vlnce_split(root: str | os.PathLike, split: str, max_steps: int = VLNCE_MAX_STEPS) -> list[VLNCEEpisode]:
    """Episodes of `<root>/<split>/<split>.json.gz` (e.g. root = data/datasets/R2R_VLNCE_v1-3_preprocessed)."""
    return read_vlnce_file(Path(root) / split / f"{split}.json.gz", max_steps)
