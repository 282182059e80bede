"""What an agent in a generated house can see, from the simulator's own knowledge, and short truthful text
about it: the grounded Observation / Reasoning of an ObjectNav answer.

`view_facts` lists the room, the objects and the doorways inside the horizontal field of view with no wall in
between (MiniWorld draws walls opaque and objects are never hidden by a wall we do not know about; objects
hiding each other are ignored), the nearest visible goal instance and the bearing of the shortest walkable
path to the goal region. `describe_view` and `reason_about` turn them into the few words an answer holds
("kitchen; barrel on the left, red box ahead; door on the right", "no chair in view: explore through the door
on the right: turn right"). Plain geometry over a `HouseSpec` (no OpenGL), so training samples can be given
grounded text for any stored pose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from navtune.core.actions import MOVE_FORWARD, STOP_CONT, TURN_LEFT, TURN_RIGHT
from navtune.core.geometry import angle_diff, heading_to
from navtune.envs.house.layout import HouseSpec, ObjectSpec, generate_house
from navtune.envs.house.occupancy import _closest_on_circle, _segments_cross

#: Bearings within this of the view centre are "ahead" (radians).
AHEAD = math.radians(12.0)
#: Objects farther than this are not named (metres): at 112 px wide a barrel 7 m away is a few pixels.
MAX_RANGE = 7.0
#: At most this many non-goal objects are named (answers stay short: every token costs a 151k-row softmax).
MAX_OBJECTS = 2

VERB = {MOVE_FORWARD: "move forward", TURN_LEFT: "turn left", TURN_RIGHT: "turn right", STOP_CONT: "stop"}


@dataclass(frozen=True)
class Seen:
    """Something in view: its name, bearing (radians, positive to the right of the view centre) and distance."""

    name: str
    bearing: float
    distance: float


@dataclass(frozen=True)
class ViewFacts:
    """What the simulator knows about one view of an ObjectNav episode."""

    room: str
    objects: tuple[Seen, ...]  # nearest first
    doors: tuple[Seen, ...]  # doorways in view, nearest first (name: the room behind it)
    target: str  # the goal category as said in the task ("ball")
    goal: Seen | None  # nearest goal instance in view
    goal_reached: bool  # within the success distance of an instance with no wall between
    path_bearing: float | None  # bearing of the shortest walkable path to the goal region (None: here)


def direction(bearing: float) -> str:
    """'ahead', 'on the left', 'on the right' (in view) or 'behind' (beyond 120 degrees)."""
    if abs(bearing) <= AHEAD:
        return "ahead"
    if abs(bearing) > math.radians(120):
        return "behind"
    return "on the left" if bearing < 0 else "on the right"


def _visible(house: HouseSpec, x: float, y: float, px: float, py: float) -> bool:
    p0 = np.array([[x, y]])
    return not bool(_segments_cross(p0, np.array([[px, py]]), house.wall_segments)[0])


def _in_view(bearing: float, distance: float, radius: float, half_fov: float) -> bool:
    margin = math.asin(min(1.0, radius / max(distance, 1e-6))) if radius > 0 else 0.0
    return abs(bearing) <= half_fov + 0.5 * margin


@lru_cache(maxsize=64)
def _goal_field(seed: int, category: str, success_distance: float) -> np.ndarray:
    house = generate_house(seed)
    grid = house.grid()
    return grid.distance_field(grid.goal_mask(house.objects_of(category), success_distance))


def path_bearing(house: HouseSpec, category: str, success_distance: float, x: float, y: float, heading: float,
                 lookahead: float = 1.5) -> float | None:
    """Bearing (relative to `heading`) of a point `lookahead` metres down the goal's geodesic distance field
    (greedy descent over the grid); None inside the goal region or where the goal is unreachable."""
    grid = house.grid()
    field_ = _goal_field(house.seed, category, float(success_distance))
    i, j = grid.nearest_free_cell(*grid.cell_of(x, y))
    if not math.isfinite(field_[i, j]) or field_[i, j] <= 0.0:
        return None
    h, w = field_.shape
    for _ in range(int(round(lookahead / grid.resolution))):
        best, nxt = field_[i, j], None
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                a, b = i + di, j + dj
                if (di or dj) and 0 <= a < h and 0 <= b < w and grid.free[a, b] and field_[a, b] < best:
                    best, nxt = field_[a, b], (a, b)
        if nxt is None:
            break
        i, j = nxt
    tx, ty = grid.cell_center(i, j)
    if math.hypot(tx - x, ty - y) < 1e-6:
        return None
    return angle_diff(heading_to(tx - x, ty - y), heading)


def view_facts(house: HouseSpec, x: float, y: float, heading: float, hfov: float, target: str,
               success_distance: float = 1.0) -> ViewFacts:
    """The facts of the view from (x, y, heading) with horizontal field of view `hfov` (radians) when looking
    for category `target`."""
    half = hfov / 2.0
    seen: list[tuple[Seen, ObjectSpec]] = []
    for o in house.objects:
        d_centre = math.hypot(o.x - x, o.y - y)
        dist = max(0.0, d_centre - o.radius)
        if dist > MAX_RANGE or d_centre < 1e-6:
            continue
        bearing = angle_diff(heading_to(o.x - x, o.y - y), heading)
        if not _in_view(bearing, d_centre, o.radius, half):
            continue
        cx, cy = _closest_on_circle(np.array([[x, y]]), o.x, o.y, o.radius)[0]
        if not _visible(house, x, y, cx, cy):
            continue
        seen.append((Seen(o.name, bearing, dist), o))
    seen.sort(key=lambda s: s[0].distance)
    goals = [s for s, o in seen if o.category == target]
    goal = goals[0] if goals else None
    reached = False
    p = np.array([[x, y]])
    for o in house.objects_of(target):
        if max(0.0, math.hypot(o.x - x, o.y - y) - o.radius) <= success_distance:
            q = _closest_on_circle(p, o.x, o.y, o.radius)
            if not _segments_cross(p, q, house.wall_segments)[0]:
                reached = True
                break
    doors: list[Seen] = []
    here = house.room_at(x, y)
    for d in house.doors:
        cx, cy = d.center
        dist = math.hypot(cx - x, cy - y)
        if dist < 0.3 or dist > MAX_RANGE:
            continue
        bearing = angle_diff(heading_to(cx - x, cy - y), heading)
        if abs(bearing) > half or not _visible_door(house, x, y, d):
            continue
        other = d.b if d.a == here else d.a if d.b == here else None
        name = house.room_name(other) if other is not None else "another room"
        doors.append(Seen(name, bearing, dist))
    doors.sort(key=lambda s: s.distance)
    room = house.room_name(here) if here is not None else "doorway"
    return ViewFacts(room, tuple(s for s, _ in seen), tuple(doors), target, goal, reached,
                     path_bearing(house, target, success_distance, x, y, heading))


def _visible_door(house: HouseSpec, x: float, y: float, door) -> bool:  # noqa: ANN001
    """A doorway is in view when the line to a point just before its opening crosses no wall (the opening
    itself is a gap in the walls, so a point on it is never hidden by its own jambs)."""
    cx, cy = door.center
    nx, ny = door.normal
    side = 1.0 if (x - cx) * nx + (y - cy) * ny > 0 else -1.0
    return _visible(house, x, y, cx + side * 0.05 * nx, cy + side * 0.05 * ny)


def _metres(d: float) -> str:
    return "near" if d < 1.5 else f"{int(round(d))} m"


def describe_view(f: ViewFacts) -> str:
    """The Observation: room; up to MAX_OBJECTS objects (the goal first); the nearest doorway in view."""
    named = ([f.goal] if f.goal is not None else []) + [s for s in f.objects if s is not f.goal and
                                                          s.name != (f.goal.name if f.goal else None)]
    parts = [f.room]
    objs = [f"{s.name} {direction(s.bearing)}" for s in named[: MAX_OBJECTS + (f.goal is not None)]]
    parts.append(", ".join(objs) if objs else "no objects")
    if f.doors:
        parts.append(f"door {direction(f.doors[0].bearing)}")
    return "; ".join(parts)


def reason_about(f: ViewFacts, action: str) -> str:
    """The Reasoning behind `action` in this view: where the goal is (or that it is not in view and which
    way the walkable path goes), then the action in words."""
    verb = VERB.get(action, action.replace("_", " "))
    target = f.target.replace("_", " ")
    if f.goal_reached and action == STOP_CONT:
        return f"the {target} is within reach: {verb}"
    if f.goal is not None:
        return f"the {target} is {direction(f.goal.bearing)}, {_metres(f.goal.distance)}: {verb}"
    if f.path_bearing is None:
        return f"no {target} in view: {verb}"
    way = direction(f.path_bearing)
    door = next((d for d in f.doors if abs(angle_diff(d.bearing, f.path_bearing)) < math.radians(25)), None)
    if door is not None:
        return f"no {target} in view: explore through the door {way}: {verb}"
    return f"no {target} in view: explore {way}: {verb}"
