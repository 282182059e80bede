"""Generic ObjectNav episodes (any backend) and their JSON / JSONL files.

An episode says where the agent starts (navtune convention: metres, z up, heading 0 along +y, clockwise
positive) and which object category to find; each goal instance is a bounding circle (centre + radius),
so "within `success_distance` of an instance" means within that distance of the circle's edge. Files are
validated on read: a bad row raises `ObjectNavDataError` naming the file, the episode and the field.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from navtune.core.errors import NavtuneError, is_finite_number
from navtune.core.io import atomic_write_json, decode_json, read_json, write_jsonl
from navtune.core.paths import safe_name

DEFAULT_SUCCESS_DISTANCE = 1.0
DEFAULT_MAX_STEPS = 500


class ObjectNavDataError(NavtuneError):
    """A malformed ObjectNav episode file; the message names file, episode and field."""


@dataclass(frozen=True)
class ObjectGoal:
    """One instance of the target category: its centre (x, y, z) and bounding-circle radius (metres)."""

    position: tuple[float, float, float]
    radius: float = 0.0
    object_id: str = ""

    def distance_from(self, x: float, y: float) -> float:
        """Planar Euclidean distance from (x, y) to the edge of the instance's bounding circle."""
        return max(0.0, math.hypot(x - self.position[0], y - self.position[1]) - self.radius)


@dataclass
class ObjectNavEpisode:
    """One ObjectNav episode. `geodesic_distance` is the shortest walkable distance from the start to
    any goal circle's edge (what SPL divides by); `scene_id` names the scene (houses: ``house_<seed>``)."""

    episode_id: str
    scene_id: str
    start_position: tuple[float, float, float]
    start_heading: float
    object_category: str
    goals: list[ObjectGoal]
    geodesic_distance: float
    success_distance: float = DEFAULT_SUCCESS_DISTANCE
    max_steps: int = DEFAULT_MAX_STEPS
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def instruction(self) -> str:
        """The goal phrase shown to agents."""
        return f"find a {self.object_category.replace('_', ' ')}"

    def distance_to_goal_euclidean(self, x: float, y: float) -> float:
        """Straight-line distance from (x, y) to the nearest goal circle's edge."""
        return min(g.distance_from(x, y) for g in self.goals)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start_position"] = list(self.start_position)
        d["goals"] = [
            {"position": list(g.position), "radius": g.radius, "object_id": g.object_id} for g in self.goals
        ]
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<dict>") -> "ObjectNavEpisode":
        """Build and validate an episode; errors name `source`, the episode id and the field."""
        if not isinstance(d, dict):
            raise ObjectNavDataError(f"episode is not a JSON object (got {type(d).__name__})", file=source)
        eid = d.get("episode_id", "?")

        def fail(fieldname: str, why: str) -> ObjectNavDataError:
            return ObjectNavDataError(why, file=source, where=f"episode {eid!r}", field=fieldname)

        def req(fieldname: str) -> Any:
            if fieldname not in d:
                raise fail(fieldname, "is missing")
            return d[fieldname]

        def num(value: Any, fieldname: str) -> float:
            if not is_finite_number(value):
                raise fail(fieldname, f"must be a finite number (got {value!r})")
            return float(value)

        def vec3(value: Any, fieldname: str) -> tuple[float, float, float]:
            if not isinstance(value, (list, tuple)) or len(value) != 3:
                raise fail(fieldname, f"must be [x, y, z] (got {value!r})")
            return (num(value[0], fieldname), num(value[1], fieldname), num(value[2], fieldname))

        episode_id = req("episode_id")
        if not isinstance(episode_id, str) or not episode_id:
            raise fail("episode_id", "must be a non-empty string")
        # the id names the episode's folders (eval --save-frames, collect, mine): one plain name, no '/' or '..'
        safe_name(episode_id, source, "episode_id", ObjectNavDataError)
        scene_id = req("scene_id")
        if not isinstance(scene_id, str) or not scene_id:
            raise fail("scene_id", "must be a non-empty string")
        category = req("object_category")
        if not isinstance(category, str) or not category:
            raise fail("object_category", "must be a non-empty string")
        heading = num(req("start_heading"), "start_heading")
        if not 0.0 <= heading < 2 * math.pi + 1e-9:
            raise fail("start_heading", f"must be radians in [0, 2*pi) (got {heading})")
        raw_goals = req("goals")
        if not isinstance(raw_goals, list) or not raw_goals:
            raise fail("goals", "must be a non-empty list")
        goals = []
        for i, g in enumerate(raw_goals):
            if not isinstance(g, dict):
                raise fail(f"goals[{i}]", "must be an object with 'position' and 'radius'")
            radius = num(g.get("radius", 0.0), f"goals[{i}].radius")
            if radius < 0:
                raise fail(f"goals[{i}].radius", f"must be >= 0 (got {radius})")
            goals.append(
                ObjectGoal(vec3(g.get("position"), f"goals[{i}].position"), radius, str(g.get("object_id", "")))
            )
        geo = num(req("geodesic_distance"), "geodesic_distance")
        if geo < 0:
            raise fail("geodesic_distance", f"must be >= 0 (got {geo})")
        success = num(d.get("success_distance", DEFAULT_SUCCESS_DISTANCE), "success_distance")
        if success <= 0:
            raise fail("success_distance", f"must be > 0 (got {success})")
        max_steps = d.get("max_steps", DEFAULT_MAX_STEPS)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps <= 0:
            raise fail("max_steps", f"must be a positive integer (got {max_steps!r})")
        info = d.get("info", {})
        if not isinstance(info, dict):
            raise fail("info", "must be an object")
        return cls(
            episode_id=episode_id,
            scene_id=scene_id,
            start_position=vec3(req("start_position"), "start_position"),
            start_heading=heading,
            object_category=category,
            goals=goals,
            geodesic_distance=geo,
            success_distance=success,
            max_steps=max_steps,
            info=dict(info),
        )


def _check_unique(episodes: Sequence[ObjectNavEpisode], source: str) -> None:
    seen: set[str] = set()
    for ep in episodes:
        if ep.episode_id in seen:
            raise ObjectNavDataError(f"{source}: episode {ep.episode_id!r}: field 'episode_id' is duplicated")
        seen.add(ep.episode_id)


def write_episodes(path: str | os.PathLike, episodes: Iterable[ObjectNavEpisode]) -> Path:
    """Write episodes atomically: ``.jsonl`` = one episode per line, otherwise ``{"episodes": [...]}``."""
    path = Path(path)
    eps = list(episodes)
    _check_unique(eps, str(path))
    if path.suffix == ".jsonl":
        write_jsonl(path, (e.to_dict() for e in eps))
    else:
        atomic_write_json(path, {"episodes": [e.to_dict() for e in eps]})
    return path


def read_episodes(path: str | os.PathLike) -> list[ObjectNavEpisode]:
    """Read and validate an episode file written by `write_episodes` (``.jsonl`` or ``.json``)."""
    path = Path(path)
    if not path.is_file():
        raise ObjectNavDataError(f"{path}: no such ObjectNav episode file")
    rows: list[tuple[str, Any]] = []
    if path.suffix == ".jsonl":
        for i, line in enumerate(path.read_bytes().split(b"\n")):
            if line.strip():
                rows.append((f"{path}:{i + 1}", decode_json(line, path, f"line {i + 1}", ObjectNavDataError)))
    else:
        data = read_json(path, ObjectNavDataError, "ObjectNav episode file")
        items = data.get("episodes") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ObjectNavDataError(f"{path}: expected a list of episodes or {{'episodes': [...]}}")
        rows = [(f"{path}[{i}]", r) for i, r in enumerate(items)]
    episodes = [ObjectNavEpisode.from_dict(r, src) for src, r in rows]
    _check_unique(episodes, str(path))
    return episodes
