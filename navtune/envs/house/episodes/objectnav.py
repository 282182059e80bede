"""ObjectNav episodes over generated houses: a category present in the house, a start pose in the walkable
space from which an instance is reachable, and the geodesic distance to the success region."""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np

from navtune.envs.house.layout import HouseSpec, ObjectSpec, generate_house
from navtune.envs.house.occupancy import OccupancyGrid
from navtune.tasks.objectnav import DEFAULT_MAX_STEPS, DEFAULT_SUCCESS_DISTANCE, ObjectGoal, ObjectNavEpisode


def goal_objects(house: HouseSpec, episode: ObjectNavEpisode) -> list[ObjectSpec]:
    """The episode's goal instances as house objects (matched by object id when the house has them)."""
    by_id = {o.object_id: o for o in house.objects}
    out = []
    for g in episode.goals:
        o = by_id.get(g.object_id)
        if o is not None and o.category == episode.object_category:
            out.append(o)
        else:
            out.append(ObjectSpec(g.object_id or "goal", episode.object_category, None, g.position[0], g.position[1],
                                  g.radius, 0.5, 0.0, house.room_at(g.position[0], g.position[1]) or 0))
    return out


def house_objectnav_episodes(
    house: HouseSpec,
    count: int,
    rng: np.random.Generator,
    success_distance: float = DEFAULT_SUCCESS_DISTANCE,
    max_steps: int = DEFAULT_MAX_STEPS,
    min_geodesic: float = 2.0,
    grid: OccupancyGrid | None = None,
) -> list[ObjectNavEpisode]:
    """`count` episodes in one house. Start headings are multiples of 30 degrees."""
    grid = grid or house.grid()
    main = grid.largest_component_mask()
    categories = sorted({o.category for o in house.objects})
    gx, gy = grid.cell_centers()
    episodes: list[ObjectNavEpisode] = []
    tries = 0
    while len(episodes) < count and tries < 20 * count:
        tries += 1
        category = categories[int(rng.integers(len(categories)))]
        goals = house.objects_of(category)
        field = grid.distance_field(grid.goal_mask(goals, success_distance))
        ok = main & np.isfinite(field) & (field >= min_geodesic)
        cells = np.flatnonzero(ok)
        if len(cells) == 0:
            continue
        c = int(cells[int(rng.integers(len(cells)))])
        x, y = round(float(gx.ravel()[c]), 4), round(float(gy.ravel()[c]), 4)
        if grid.collides(x, y):  # a cell centre on the very edge of the free space, moved by rounding
            continue
        heading = int(rng.integers(12)) * math.pi / 6.0
        k = len(episodes)
        episodes.append(
            ObjectNavEpisode(
                episode_id=f"{house.scene_id}_objnav_{k:03d}",
                scene_id=house.scene_id,
                start_position=(x, y, 0.0),
                start_heading=heading,
                object_category=category,
                goals=[ObjectGoal((o.x, o.y, 0.0), o.radius, o.object_id) for o in goals],
                geodesic_distance=round(float(field.ravel()[c]), 4),
                success_distance=success_distance,
                max_steps=max_steps,
                info={"house_seed": house.seed, "start_room": house.room_name(house.room_at(x, y) or 0)},
            )
        )
    return episodes


def generate_objectnav_episodes(
    seeds: Iterable[int],
    per_house: int = 2,
    success_distance: float = DEFAULT_SUCCESS_DISTANCE,
    max_steps: int = DEFAULT_MAX_STEPS,
    min_geodesic: float = 2.0,
) -> Iterator[ObjectNavEpisode]:
    """Episodes for each house seed; deterministic per seed (the episode rng is seeded by the house seed)."""
    for seed in seeds:
        house = generate_house(seed)
        rng = np.random.default_rng([seed, 1])
        yield from house_objectnav_episodes(house, per_house, rng, success_distance, max_steps, min_geodesic)
