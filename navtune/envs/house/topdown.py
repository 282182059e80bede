"""Top-down map of a house as an RGB array (PIL drawing, no OpenGL): rooms coloured by type with their
names, doorways, objects with labels, and optionally a trajectory, an expert path, goals, graph nodes and
the agent. Used by the sample sheet and by reports."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from navtune.envs.house.layout import HouseSpec, ObjectSpec

if TYPE_CHECKING:
    from navtune.envs.protocol import Pose

ROOM_COLORS = {
    "hallway": (225, 225, 225),
    "kitchen": (250, 222, 170),
    "bedroom": (200, 220, 250),
    "bathroom": (190, 240, 235),
    "office": (230, 210, 240),
    "living room": (210, 240, 190),
    "dining room": (250, 205, 200),
    "laundry room": (235, 235, 190),
    "study": (215, 200, 185),
}
OBJECT_COLORS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 220), "purple": (120, 50, 180),
    "yellow": (230, 200, 20), "grey": (110, 110, 110),
}


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render_topdown(
    house: HouseSpec,
    size: int = 480,
    trajectory: Sequence[Sequence[float]] | None = None,
    expert_path: Sequence[Sequence[float]] | None = None,
    goals: Sequence[ObjectSpec] | None = None,
    agent: "Pose | None" = None,
    nodes: Sequence[Sequence[float]] | None = None,
    edges: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
    labels: bool = True,
    margin: float = 0.6,
) -> np.ndarray:
    """(H, W, 3) uint8 map; the longer side of the house spans `size` pixels. Positions are navtune (x, y)."""
    min_x, min_y, max_x, max_y = house.bounds
    min_x, min_y, max_x, max_y = min_x - margin, min_y - margin, max_x + margin, max_y + margin
    scale = size / max(max_x - min_x, max_y - min_y)
    w, h = int(round((max_x - min_x) * scale)), int(round((max_y - min_y) * scale))
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)

    def px(x: float, y: float) -> tuple[float, float]:
        return ((x - min_x) * scale, (max_y - y) * scale)  # +y up on the map

    font = _font(max(9, size // 45))
    for r in house.rooms:
        d.rectangle([px(r.x0, r.y1), px(r.x1, r.y0)], fill=ROOM_COLORS.get(r.room_type, (230, 230, 230)))
    lw = max(2, size // 160)
    for seg in house.wall_segments:
        d.line([px(*seg[0]), px(*seg[1])], fill=(40, 40, 40), width=lw)
    if edges is not None:
        for a, b in edges:
            d.line([px(a[0], a[1]), px(b[0], b[1])], fill=(150, 170, 200), width=1)
    if nodes is not None:
        for p in nodes:
            cx, cy = px(p[0], p[1])
            d.ellipse([cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5], fill=(90, 110, 160))
    goal_ids = {g.object_id for g in goals} if goals else set()
    for o in house.objects:
        cx, cy = px(o.x, o.y)
        rr = o.radius * scale
        col = OBJECT_COLORS.get(o.color or "", (150, 100, 60))
        outline = (0, 160, 0) if o.object_id in goal_ids else (60, 60, 60)
        d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=col, outline=outline, width=3 if o.object_id in goal_ids else 1)
        if labels:
            d.text((cx, cy + rr + 1), o.name, fill=(30, 30, 30), font=font, anchor="mt")
    if labels:
        for r in house.rooms:
            cx, cy = px(*r.center)
            d.text((cx, cy), r.room_type, fill=(90, 90, 90), font=_font(max(10, size // 32)), anchor="mm")
    if expert_path is not None and len(expert_path) > 1:
        d.line([px(p[0], p[1]) for p in expert_path], fill=(0, 170, 0), width=max(2, size // 200))
    if trajectory is not None and len(trajectory) > 1:
        d.line([px(p[0], p[1]) for p in trajectory], fill=(220, 30, 30), width=max(2, size // 200))
    if trajectory is not None and len(trajectory) > 0:
        sx, sy = px(trajectory[0][0], trajectory[0][1])
        d.rectangle([sx - 4, sy - 4, sx + 4, sy + 4], fill=(30, 30, 200))
    if agent is not None:
        cx, cy = px(agent.x, agent.y)
        r = 0.4 * scale
        hx, hy = math.sin(agent.heading), math.cos(agent.heading)
        tip = (cx + hx * r * 1.6, cy - hy * r * 1.6)
        left = (cx - hy * r * 0.8, cy - hx * r * 0.8)
        right = (cx + hy * r * 0.8, cy + hx * r * 0.8)
        d.polygon([tip, left, right], fill=(230, 120, 0), outline=(0, 0, 0))
    return np.asarray(img)
