"""R2R-style navigation graph over a house: viewpoints in every doorway, just inside each room before each
door, and spread through rooms and along the hallway about 2 m apart; edges join viewpoints at most 3 m
apart whose straight line is walkable. Only positions are decided here — navigable neighbours, Move/Left/
Right and the expert are the foundation's (`navtune.graph`), and views come from `HouseViewRenderer`."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np

from navtune.envs.house.layout import HouseSpec
from navtune.envs.house.occupancy import OccupancyGrid
from navtune.graph.navgraph import NavGraph

CAMERA_HEIGHT = 1.5
MAX_EDGE = 3.0
SPACING = 2.0


def viewpoint_id(seed: int, k: int) -> str:
    return f"h{seed}v{k:03d}"


def _room_points(r, grid: OccupancyGrid, spacing: float) -> list[tuple[float, float]]:
    """Interior points on a lattice ~`spacing` apart (centred in the room), kept only where free."""
    pts = []
    nx_ = max(1, int(round((r.x1 - r.x0 - 0.8) / spacing)) + 1)
    ny = max(1, int(round((r.y1 - r.y0 - 0.8) / spacing)) + 1)
    xs = np.linspace(r.x0 + 0.8, r.x1 - 0.8, nx_) if nx_ > 1 else [r.center[0]]
    ys = np.linspace(r.y0 + 0.8, r.y1 - 0.8, ny) if ny > 1 else [r.center[1]]
    for x in xs:
        for y in ys:
            pts.append((round(float(x), 3), round(float(y), 3)))
    return pts


def build_house_graph(house: HouseSpec, grid: OccupancyGrid | None = None, spacing: float = SPACING,
                      max_edge: float = MAX_EDGE) -> tuple[NavGraph, dict[str, int]]:
    """The house's NavGraph (positions at camera height, z up) and each viewpoint's room index (-1 for
    viewpoints standing in a doorway)."""
    grid = grid or house.grid()
    pts: list[tuple[float, float]] = []
    rooms: list[int] = []

    def add(x: float, y: float, room: int) -> None:
        if grid.collides(x, y):
            # nudge to the nearest free cell centre within 0.5 m
            i, j = grid.nearest_free_cell(*grid.cell_of(x, y))
            fx, fy = grid.cell_center(i, j)
            if math.hypot(fx - x, fy - y) > 0.5 or grid.collides(fx, fy):
                return
            x, y = fx, fy
        if any(math.hypot(x - px, y - py) < 0.9 for px, py in pts):
            return
        pts.append((round(x, 3), round(y, 3)))
        rooms.append(room)

    inside = 0.9  # "just inside each room before each door"
    for d in house.doors:
        cx, cy = d.center
        ux, uy = d.normal
        add(cx, cy, -1)
        add(cx - ux * inside, cy - uy * inside, d.a)
        add(cx + ux * inside, cy + uy * inside, d.b)
    for r in house.rooms:
        if r.room_type == "hallway":
            n = max(1, int(math.ceil((r.x1 - r.x0 - 1.0) / spacing)))
            for x in np.linspace(r.x0 + 0.5, r.x1 - 0.5, n + 1):
                add(float(x), r.center[1], r.index)
        else:
            for x, y in _room_points(r, grid, spacing):
                add(x, y, r.index)
    pairs = [
        (i, j)
        for i in range(len(pts))
        for j in range(i + 1, len(pts))
        if math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]) <= max_edge and grid.line_walkable(pts[i], pts[j])
    ]
    # keep the largest connected piece (a viewpoint boxed in by furniture would be unreachable)
    g = nx.Graph()
    g.add_nodes_from(range(len(pts)))
    g.add_edges_from(pairs)
    keep = sorted(max(nx.connected_components(g), key=len))
    new = {old: k for k, old in enumerate(keep)}
    pts = [pts[i] for i in keep]
    rooms = [rooms[i] for i in keep]
    ids = [viewpoint_id(house.seed, k) for k in range(len(pts))]
    edges = [(ids[new[i]], ids[new[j]]) for i, j in pairs if i in new and j in new]
    positions = np.array([[x, y, CAMERA_HEIGHT] for x, y in pts])
    graph = NavGraph.from_edges(ids, positions, edges, name=house.scene_id)
    return graph, dict(zip(ids, rooms))
