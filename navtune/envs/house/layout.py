"""Houses from an integer seed, as plain data (no OpenGL), in navtune's frame (metres, x/y plan, z up).

A house is a hallway along x with 4-7 rooms on its two sides (5-8 rooms in all), each with a room type and
its own wall/floor textures, connected to the hallway (or to a neighbour) by doorways; furniture and small
objects from MiniWorld's meshes (plus coloured boxes) stand along the walls, each with a category label.
Everything downstream (the MiniWorld world, occupancy grid, graphs, episodes, maps) is built from this
`HouseSpec`, so the same seed always gives the same house.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

AGENT_RADIUS = 0.4  # MiniWorld's agent radius (collision circle)
WALL_HEIGHT = 2.74

#: Room types (the hallway is always the corridor); one of each at most per house.
ROOM_TYPES = (
    "kitchen",
    "bedroom",
    "bathroom",
    "office",
    "living room",
    "dining room",
    "laundry room",
    "study",
)
#: Loadable MiniWorld textures (files with a ``_1`` suffix), split by use; each room gets distinct ones.
WALL_TEXTURES = (
    "drywall", "stucco", "brick_wall", "wood", "concrete", "cinder_blocks", "white", "marble", "wood_planks",
)
FLOOR_TEXTURES = (
    "floor_tiles_bw", "wood_planks", "marble", "concrete_tiles", "wood", "cardboard", "asphalt", "ceiling_tiles",
    "concrete",
)
CEIL_TEXTURE = "ceiling_tile_noborder"
COLORS = ("red", "green", "blue", "purple", "yellow", "grey")


@dataclass(frozen=True)
class ObjectKind:
    """A category of object: which MiniWorld mesh (or a coloured box), its height and whether it has a colour.
    `extent` is the mesh's (x, y, z) half-extent as MiniWorld's ObjMesh normalises it, so that the radius
    (MiniWorld's formula) is known without loading OpenGL; a GL test checks the table against ObjMesh."""

    category: str
    mesh: str | None  # None: a coloured miniworld Box
    height: float
    colored: bool = False
    extent: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def radius(self, size: float | None = None) -> float:
        if self.mesh is None:
            s = size if size is not None else self.height
            return math.sqrt(2.0) * s / 2.0
        sx, sy, sz = self.extent
        return math.sqrt(sx * sx + sz * sz) * self.height / sy

    def mesh_name(self, color: str | None) -> str | None:
        if self.mesh is None:
            return None
        return f"{self.mesh}_{color}" if self.colored else self.mesh


OBJECT_KINDS: dict[str, ObjectKind] = {
    k.category: k
    for k in (
        ObjectKind("desk", "office_desk", 0.9, extent=(33.45795, 63.6329, 16.45125)),
        ObjectKind("chair", "office_chair", 0.9, extent=(14.54435, 47.3146, 13.73)),
        ObjectKind("barrel", "barrel", 1.0, extent=(0.30539, 0.88229, 0.30539)),
        ObjectKind("cone", "cone", 0.7, extent=(10.0, 31.5229, 10.0)),
        ObjectKind("duck", "duckie", 0.45, extent=(0.83031, 1.51842, 0.58813)),
        ObjectKind("medkit", "medkit", 0.5, extent=(28.1319, 51.0648, 15.62425)),
        ObjectKind("potion", "potion", 0.6, extent=(0.64, 2.51378, 0.64)),
        ObjectKind("key", "key", 0.4, colored=True, extent=(0.40141, 2.0, 2.41874)),
        ObjectKind("ball", "ball", 0.6, colored=True, extent=(1.28456, 2.56437, 1.285)),
        ObjectKind("box", None, 0.7, colored=True),
    )
}
OBJECT_CATEGORIES = tuple(OBJECT_KINDS)

#: Which categories a room type tends to hold (weights); others can still appear.
_ROOM_FURNITURE: dict[str, tuple[str, ...]] = {
    "kitchen": ("barrel", "box", "potion", "chair"),
    "bedroom": ("desk", "chair", "ball", "duck"),
    "bathroom": ("medkit", "potion", "duck"),
    "office": ("desk", "chair", "box", "key"),
    "living room": ("chair", "ball", "box", "cone"),
    "dining room": ("chair", "desk", "barrel"),
    "laundry room": ("box", "barrel", "medkit", "key"),
    "study": ("desk", "chair", "key", "potion"),
    "hallway": ("cone", "barrel", "ball"),
}


@dataclass(frozen=True)
class RoomSpec:
    index: int
    room_type: str
    x0: float
    y0: float
    x1: float
    y1: float
    wall_tex: str
    floor_tex: str
    ceil_tex: str = CEIL_TEXTURE

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        return self.x0 + margin < x < self.x1 - margin and self.y0 + margin < y < self.y1 - margin


@dataclass(frozen=True)
class DoorSpec:
    """A doorway between rooms `a` and `b` on a shared wall. `vertical`: the wall is x = `line`
    (room a west of it), else y = `line` (room a south of it); the opening spans [lo, hi] along the wall."""

    a: int
    b: int
    vertical: bool
    line: float
    lo: float
    hi: float

    @property
    def center(self) -> tuple[float, float]:
        m = (self.lo + self.hi) / 2.0
        return (self.line, m) if self.vertical else (m, self.line)

    @property
    def width(self) -> float:
        return self.hi - self.lo

    @property
    def normal(self) -> tuple[float, float]:
        """Unit vector crossing the doorway from room a to room b."""
        return (1.0, 0.0) if self.vertical else (0.0, 1.0)


@dataclass(frozen=True)
class ObjectSpec:
    object_id: str
    category: str
    color: str | None
    x: float
    y: float
    radius: float
    height: float
    heading: float  # navtune convention; only turns the mesh
    room: int

    @property
    def name(self) -> str:
        """Human name used in instructions, e.g. 'red ball', 'barrel'."""
        return f"{self.color} {self.category}" if self.color else self.category

    @property
    def kind(self) -> ObjectKind:
        return OBJECT_KINDS[self.category]


@dataclass(frozen=True)
class HouseSpec:
    """A generated house: plain immutable data (`generate_house` caches and shares one per seed)."""

    seed: int
    rooms: tuple[RoomSpec, ...]
    doors: tuple[DoorSpec, ...]
    objects: tuple[ObjectSpec, ...] = ()

    def grid(self, agent_radius: float = AGENT_RADIUS):
        """The house's `OccupancyGrid` for an agent of `agent_radius`, built once per (house, radius) and
        kept outside the house, so asking for another radius never changes what the default one returns."""
        from navtune.envs.house.occupancy import OccupancyGrid

        key = (self, float(agent_radius))
        g = _GRIDS.get(key)
        if g is None:
            g = OccupancyGrid.build(self, agent_radius=agent_radius)
            _remember_grid(key, g)
        return g

    @property
    def scene_id(self) -> str:
        return scene_id_for_seed(self.seed)

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) of the floor plan."""
        return (
            min(r.x0 for r in self.rooms),
            min(r.y0 for r in self.rooms),
            max(r.x1 for r in self.rooms),
            max(r.y1 for r in self.rooms),
        )

    @cached_property
    def wall_segments(self) -> np.ndarray:
        """(N, 2, 2) collidable wall segments (each room's outline minus its doorways), like MiniWorld's."""
        segs: list[tuple[tuple[float, float], tuple[float, float]]] = []
        for r in self.rooms:
            # the four walls as (fixed coord, vertical?, lo, hi)
            for vertical, line, lo, hi in (
                (True, r.x1, r.y0, r.y1),
                (False, r.y1, r.x0, r.x1),
                (True, r.x0, r.y0, r.y1),
                (False, r.y0, r.x0, r.x1),
            ):
                gaps = sorted(
                    (d.lo, d.hi)
                    for d in self.doors
                    if d.vertical == vertical and abs(d.line - line) < 1e-9 and r.index in (d.a, d.b)
                )
                start = lo
                for glo, ghi in gaps + [(hi, hi)]:
                    if glo > start + 1e-9:
                        segs.append(((line, start), (line, glo)) if vertical else ((start, line), (glo, line)))
                    start = ghi
        return np.array(segs, dtype=float)

    def room_at(self, x: float, y: float) -> int | None:
        """Index of the room containing (x, y) (None outside; doorway lines belong to neither)."""
        for r in self.rooms:
            if r.contains(x, y):
                return r.index
        return None

    def room_name(self, index: int) -> str:
        return self.rooms[index].room_type

    def objects_of(self, category: str) -> list[ObjectSpec]:
        return [o for o in self.objects if o.category == category]

    def summary(self) -> dict:
        return {
            "seed": self.seed,
            "rooms": [r.room_type for r in self.rooms],
            "doors": len(self.doors),
            "objects": [o.name for o in self.objects],
        }


_GRIDS: OrderedDict[tuple[HouseSpec, float], object] = OrderedDict()
_MAX_GRIDS = 64


def _remember_grid(key: tuple[HouseSpec, float], grid: object) -> None:
    _GRIDS[key] = grid
    _GRIDS.move_to_end(key)
    while len(_GRIDS) > _MAX_GRIDS:
        _GRIDS.popitem(last=False)


def scene_id_for_seed(seed: int) -> str:
    return f"house_{int(seed)}"


def seed_from_scene_id(scene_id: str) -> int:
    """Parse 'house_<seed>' (the scene ids of generated houses)."""
    m = re.fullmatch(r"house_(\d+)", scene_id)
    if not m:
        raise ValueError(f"scene id {scene_id!r} is not a generated house (expected 'house_<seed>')")
    return int(m.group(1))


def _r(v: float) -> float:
    return round(float(v), 2)


@lru_cache(maxsize=32)
def generate_house(seed: int, agent_radius: float = AGENT_RADIUS) -> HouseSpec:
    """Build the house of `seed` (deterministic: numpy's PCG64 seeded with the integer only). Cached per
    process: envs switch houses often during evaluation, and a HouseSpec is never changed once built."""
    if seed < 0:
        raise ValueError(f"house seed must be >= 0 (got {seed})")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 8))  # rooms besides the hallway
    types = [ROOM_TYPES[i] for i in rng.permutation(len(ROOM_TYPES))[:n]]
    walls = [WALL_TEXTURES[i] for i in rng.permutation(len(WALL_TEXTURES))[: n + 1]]
    floors = [FLOOR_TEXTURES[i] for i in rng.permutation(len(FLOOR_TEXTURES))[: n + 1]]
    n_north = int(rng.integers(n // 2, n - n // 2 + 1)) if n % 2 else n // 2
    rows = {"north": n_north, "south": n - n_north}
    hall_w = _r(rng.uniform(1.7, 2.2))
    widths = {k: [_r(rng.uniform(3.0, 5.0)) for _ in range(c)] for k, c in rows.items()}
    depths = {k: [_r(rng.uniform(3.0, 4.6)) for _ in range(c)] for k, c in rows.items()}
    lengths = {k: sum(w) for k, w in widths.items()}
    hall_len = _r(max(lengths.values()))
    offsets = {k: _r(rng.uniform(0.0, hall_len - lengths[k])) if hall_len > lengths[k] else 0.0 for k in rows}

    rooms: list[RoomSpec] = [RoomSpec(0, "hallway", 0.0, 0.0, hall_len, hall_w, walls[0], floors[0])]
    row_rooms: dict[str, list[int]] = {"north": [], "south": []}
    t = 0
    for side in ("north", "south"):
        x = offsets[side]
        for w, d in zip(widths[side], depths[side]):
            x0, x1 = _r(x), _r(x + w)
            y0, y1 = (hall_w, _r(hall_w + d)) if side == "north" else (_r(-d), 0.0)
            idx = len(rooms)
            rooms.append(RoomSpec(idx, types[t], x0, y0, x1, y1, walls[t + 1], floors[t + 1]))
            row_rooms[side].append(idx)
            t += 1
            x += w

    doors: list[DoorSpec] = []
    margin = 0.45  # keep door jambs away from room corners

    def door_span(lo: float, hi: float) -> tuple[float, float] | None:
        width = _r(rng.uniform(1.1, 1.4))
        if hi - lo < width + 2 * margin:
            return None
        c = rng.uniform(lo + margin + width / 2, hi - margin - width / 2)
        return _r(c - width / 2), _r(c - width / 2 + width)

    linked = {0}
    hall_door = {}
    for side in ("north", "south"):
        for idx in row_rooms[side]:
            hall_door[idx] = bool(rng.random() < 0.8)
    # side doors between row neighbours
    side_door: dict[tuple[int, int], bool] = {}
    for side in ("north", "south"):
        ids = row_rooms[side]
        for a, b in zip(ids, ids[1:]):
            side_door[(a, b)] = bool(rng.random() < 0.35)
    # connectivity: a room without a hall door needs a side door to a linked neighbour; fix greedily
    for side in ("north", "south"):
        ids = row_rooms[side]
        for i, idx in enumerate(ids):
            if hall_door[idx]:
                continue
            left = ids[i - 1] if i > 0 else None
            if left is not None and side_door.get((left, idx)) and hall_door[left]:
                continue
            right = ids[i + 1] if i + 1 < len(ids) else None
            if right is not None and side_door.get((idx, right)) and hall_door[right]:
                continue
            hall_door[idx] = True
    for side in ("north", "south"):
        for idx in row_rooms[side]:
            if not hall_door[idx]:
                continue
            r = rooms[idx]
            span = door_span(r.x0, r.x1)
            assert span is not None
            line = r.y0 if side == "north" else r.y1
            a, b = (0, idx) if side == "north" else (idx, 0)
            doors.append(DoorSpec(a, b, False, line, *span))
            linked.add(idx)
        for (a, b), has in side_door.items():
            if not has or a not in row_rooms[side]:
                continue
            ra, rb = rooms[a], rooms[b]
            lo, hi = max(ra.y0, rb.y0), min(ra.y1, rb.y1)
            span = door_span(lo, hi)
            if span is None:
                continue
            doors.append(DoorSpec(a, b, True, ra.x1, *span))
    walls_only = HouseSpec(seed=seed, rooms=tuple(rooms), doors=tuple(doors))
    _check_connected(walls_only)
    objects, base, free = _place_objects(walls_only, rng, agent_radius)
    house = HouseSpec(seed=seed, rooms=walls_only.rooms, doors=walls_only.doors, objects=tuple(objects))
    # the object-free grid minus each object's disk is exactly OccupancyGrid.build(house): keep it
    _remember_grid((house, float(agent_radius)), OccupancyGrid(house, agent_radius, base.resolution, base.origin, free))
    return house


from navtune.envs.house.occupancy import OccupancyGrid  # noqa: E402  (occupancy imports only numpy/scipy)


def _check_connected(house: HouseSpec) -> None:
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(len(house.rooms)))
    g.add_edges_from((d.a, d.b) for d in house.doors)
    if not nx.is_connected(g):  # a generator bug, never user input
        raise RuntimeError(f"house {house.seed}: rooms are not connected: {house.doors}")


def _place_objects(house: HouseSpec, rng: np.random.Generator, agent_radius: float
                   ) -> tuple[list[ObjectSpec], "OccupancyGrid", np.ndarray]:
    """Objects stand against walls, away from doorways, and never cut the free space into pieces
    (checked on the occupancy grid; a placement that would is retried elsewhere)."""
    from navtune.envs.house.occupancy import OccupancyGrid

    objects: list[ObjectSpec] = []
    counter = 0
    base = OccupancyGrid.build(house, agent_radius=agent_radius)  # walls only: `house` has no objects yet
    free = base.free.copy()
    gx, gy = base.cell_centers()
    for room in house.rooms:
        pool = _ROOM_FURNITURE[room.room_type]
        n_obj = int(rng.integers(1, 3)) if room.room_type == "hallway" else int(rng.integers(2, 4))
        for _ in range(n_obj):
            category = pool[int(rng.integers(len(pool)))] if rng.random() < 0.8 else OBJECT_CATEGORIES[
                int(rng.integers(len(OBJECT_CATEGORIES)))
            ]
            kind = OBJECT_KINDS[category]
            color = COLORS[int(rng.integers(len(COLORS)))] if kind.colored else None
            radius = kind.radius()
            for _attempt in range(12):
                wall = int(rng.integers(4))
                gap = 0.06
                if wall in (0, 2):  # along the south / north wall
                    x = rng.uniform(room.x0 + radius + gap, room.x1 - radius - gap)
                    y = room.y0 + radius + gap if wall == 0 else room.y1 - radius - gap
                else:
                    y = rng.uniform(room.y0 + radius + gap, room.y1 - radius - gap)
                    x = room.x0 + radius + gap if wall == 1 else room.x1 - radius - gap
                x, y = _r(x), _r(y)
                if not room.contains(x, y, radius):
                    continue
                if any(math.hypot(x - d.center[0], y - d.center[1]) < radius + 1.3 for d in house.doors):
                    continue
                if any(math.hypot(x - o.x, y - o.y) < radius + o.radius + 0.05 for o in objects):
                    continue
                cand = ObjectSpec(
                    object_id=f"obj{counter:02d}",
                    category=category,
                    color=color,
                    x=x,
                    y=y,
                    radius=radius,
                    height=kind.height,
                    heading=_r(rng.uniform(0.0, 2 * math.pi)),
                    room=room.index,
                )
                trial = free & (np.hypot(gx - x, gy - y) >= agent_radius + radius)
                if not base.single_component(trial):
                    continue
                if not base.goal_mask([cand], 1.0, free=trial).any():
                    continue
                free = trial
                objects.append(cand)
                counter += 1
                break
    return objects, base, free
