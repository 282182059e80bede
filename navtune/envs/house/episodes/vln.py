"""R2R-format VLN episodes over generated houses: a reference path on the house's navigation graph and
English route instructions generated from it (turns, rooms passed, the landmark at the goal), e.g.
"Leave the kitchen, turn left into the hallway and stop next to the red barrel."

Written as an R2R data folder (`<dir>/connectivity/<scan>_connectivity.json` + `<dir>/R2R_<split>.json`),
so the foundation's loaders, GraphNavEnv, expert and scorer work on it unchanged.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from navtune.core.geometry import angle_diff, heading_to
from navtune.envs.house.layout import HouseSpec, ObjectSpec, generate_house
from navtune.envs.house.navgraph import build_house_graph
from navtune.graph.navgraph import NavGraph

INSTRUCTIONS_PER_PATH = 3


@dataclass(frozen=True)
class HouseVLNPath:
    path_id: int
    scan: str
    path: tuple[str, ...]
    heading: float
    distance: float
    instructions: tuple[str, ...]

    def to_r2r(self) -> dict:
        return {"distance": round(self.distance, 3), "scan": self.scan, "path_id": self.path_id,
                "path": list(self.path), "heading": self.heading, "instructions": list(self.instructions)}


def _turn_word(diff: float) -> str:
    """'left' / 'right' / 'around' / 'straight' for a heading change (navtune: clockwise positive)."""
    a = math.degrees(diff)
    if abs(a) > 135:
        return "around"
    if a > 40:
        return "right"
    if a < -40:
        return "left"
    return "straight"


def _landmark(house: HouseSpec, x: float, y: float, room: int | None) -> ObjectSpec | None:
    best, best_d = None, 2.5
    for o in house.objects:
        if room is not None and o.room != room:
            continue
        d = math.hypot(o.x - x, o.y - y) - o.radius
        if d < best_d:
            best, best_d = o, d
    return best


def _the(room: str) -> str:
    return f"the {room}"


def describe_path(house: HouseSpec, graph: NavGraph, rooms: dict[str, int], path: Sequence[str], heading: float,
                  rng: np.random.Generator) -> str:
    """One English instruction for `path` starting at `heading` (wording varies with `rng`)."""
    pos = [graph.position(v)[:2] for v in path]
    seg_h = [heading_to(b[0] - a[0], b[1] - a[1]) for a, b in zip(pos, pos[1:])]
    names = [house.room_name(rooms[v]) if rooms[v] >= 0 else None for v in path]
    clauses: list[str] = []
    first_turn = _turn_word(angle_diff(seg_h[0], heading))
    start_room = next(n for n in names if n is not None)
    if first_turn == "around":
        clauses.append(rng.choice(["turn around", "turn to face the other way"]))
    elif first_turn in ("left", "right"):
        clauses.append(f"turn {first_turn}")
    # room transitions: the room sequence without repeats, with the turn taken where it changes
    current = start_room
    last_turn_idx = 0
    entered: list[tuple[str, str]] = []
    for k in range(1, len(path)):
        n = names[k]
        if n is None or n == current:
            continue
        # the biggest turn between the previous transition and this one
        turns = [angle_diff(seg_h[i], seg_h[i - 1]) for i in range(max(1, last_turn_idx), k)]
        t = max(turns, key=abs) if turns else 0.0
        entered.append((n, _turn_word(t)))
        current = n
        last_turn_idx = k
    if entered:
        leave = rng.choice(["leave", "exit", "walk out of"]) if start_room != "hallway" else "walk along"
        clauses.append(f"{leave} {_the(start_room)}")
        for n, t in entered:
            if n == "hallway":
                verb = {"left": "turn left into", "right": "turn right into", "straight": "go straight into",
                        "around": "turn around into"}[t]
            else:
                verb = {"left": "turn left and enter", "right": "turn right and enter",
                        "straight": rng.choice(["go straight into", "enter", "walk into"]),
                        "around": "turn around and enter"}[t]
            clauses.append(f"{verb} {_the(n)}")
    else:
        clauses.append(rng.choice(["walk across", "go through", "cross"]) + f" {_the(start_room)}")
    # final turn before the goal
    if len(seg_h) >= 2:
        t = _turn_word(angle_diff(seg_h[-1], seg_h[-2]))
        if t in ("left", "right") and (not entered or last_turn_idx < len(path) - 2):
            clauses.append(f"turn {t}")
    gx, gy = pos[-1]
    goal_room = rooms[path[-1]]
    lm = _landmark(house, gx, gy, goal_room if goal_room >= 0 else None)
    if lm is not None:
        stop = rng.choice([f"stop next to the {lm.name}", f"wait by the {lm.name}", f"stop near the {lm.name}"])
    elif goal_room >= 0:
        stop = rng.choice([f"stop in the middle of {_the(house.room_name(goal_room))}",
                           f"wait inside {_the(house.room_name(goal_room))}"])
    else:
        stop = "stop in the doorway"
    clauses.append(stop)
    last_join = ", then " if len(clauses) > 1 and " and " in clauses[-2] else " and "
    text = ", ".join(clauses[:-1]) + (last_join if len(clauses) > 1 else "") + clauses[-1]
    return text[0].upper() + text[1:] + "."


def house_vln_paths(
    house: HouseSpec,
    count: int,
    rng: np.random.Generator,
    path_id_start: int = 0,
    min_hops: int = 4,
    max_hops: int = 7,
    min_distance: float = 5.0,
    graph_rooms: tuple[NavGraph, dict[str, int]] | None = None,
) -> list[HouseVLNPath]:
    """`count` reference paths (shortest paths of `min_hops`..`max_hops` edges, >= `min_distance` m) with
    three instructions each; start headings are multiples of 30 degrees."""
    graph, rooms = graph_rooms or build_house_graph(house)
    ids = graph.ids
    out: list[HouseVLNPath] = []
    tries = 0
    while len(out) < count and tries < 200 * count:
        tries += 1
        a, b = ids[int(rng.integers(len(ids)))], ids[int(rng.integers(len(ids)))]
        if a == b or rooms[b] < 0 or rooms[a] < 0:
            continue
        d = graph.distance(a, b)
        if not math.isfinite(d) or d < min_distance:
            continue
        path = graph.shortest_path(a, b)
        if not (min_hops <= len(path) - 1 <= max_hops):
            continue
        heading = int(rng.integers(12)) * math.pi / 6
        instr = tuple(describe_path(house, graph, rooms, path, heading, rng) for _ in range(INSTRUCTIONS_PER_PATH))
        out.append(HouseVLNPath(path_id_start + len(out), house.scene_id, tuple(path), heading, d, instr))
    return out


def generate_vln_dataset(
    seeds: Iterable[int], out_dir: str | os.PathLike, split: str = "train", per_house: int = 2,
    progress: bool = False, min_hops: int = 4, max_hops: int = 7, min_distance: float = 5.0,
    on_house: Callable[[int], None] | None = None,
) -> Path:
    """Write an R2R-format data folder for the house seeds: connectivity files and R2R_<split>.json.
    path_id = seed * 1000 + k, so ids stay unique when splits are built from disjoint seed ranges; the path
    options are `house_vln_paths`'; `on_house(seed)` is called after each house (a caller's progress)."""
    from navtune.tasks.r2r.data import connectivity_path, split_path, write_connectivity, write_r2r_split

    out = Path(out_dir)
    items: list[dict] = []
    seeds = list(seeds)
    it = seeds
    if progress:
        from tqdm import tqdm

        it = tqdm(seeds, desc=f"VLN houses ({split})")
    for seed in it:
        house = generate_house(seed)
        graph, rooms = build_house_graph(house)
        write_connectivity(graph, connectivity_path(out, house.scene_id))
        rng = np.random.default_rng([seed, 2])
        for p in house_vln_paths(house, per_house, rng, path_id_start=seed * 1000, min_hops=min_hops,
                                 max_hops=max_hops, min_distance=min_distance, graph_rooms=(graph, rooms)):
            items.append(p.to_r2r())
        if on_house is not None:
            on_house(seed)
    path = split_path(out, split)
    write_r2r_split(items, path)
    return path
