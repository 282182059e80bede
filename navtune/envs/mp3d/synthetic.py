"""Synthetic Matterport3D-format scans: skybox faces with known colours and markers, plus connectivity.

Used by the renderer tests, the benchmark and `navtune mp3d sheet --synthetic`; written in exactly the
layout of the real data (`<root>/<scan>/matterport_skybox_images/<vp>_skybox<k>_sami.jpg`,
`<conn>/<scan>_connectivity.json`) so the same loader reads both.
"""
from __future__ import annotations

import colorsys
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from navtune.core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from navtune.envs.mp3d.cubemap import NUM_FACES, face_pixel_directions, yaw_rotation
from navtune.envs.mp3d.skybox import face_path

#: Distinct, JPEG-robust face colours (RGB) for faces 0..5.
FACE_COLORS = np.array(
    [[230, 230, 40], [220, 40, 40], [40, 190, 40], [40, 80, 230], [230, 130, 20], [150, 40, 200]], dtype=np.uint8
)
MARKER_COLOR = np.array([255, 255, 255], dtype=np.uint8)
#: Marker rectangle in face coordinates (u right, v down, both in [-1, 1]): top-left, so flips show.
MARKER_U = (-0.6, -0.25)
MARKER_V = (-0.55, -0.25)


def marker_faces(size: int = 128, labels: bool = False) -> np.ndarray:
    """(6, S, S, 3) faces: face k solid FACE_COLORS[k] with a white rectangle in its top-left quadrant."""
    t = (np.arange(size) + 0.5) * 2.0 / size - 1.0
    in_u = (t >= MARKER_U[0]) & (t <= MARKER_U[1])
    in_v = (t >= MARKER_V[0]) & (t <= MARKER_V[1])
    faces = np.empty((NUM_FACES, size, size, 3), dtype=np.uint8)
    for k in range(NUM_FACES):
        faces[k] = FACE_COLORS[k]
        faces[k][np.ix_(in_v, in_u)] = MARKER_COLOR
    return _draw_labels(faces) if labels else faces


def _draw_labels(faces: np.ndarray) -> np.ndarray:
    """Write 'face k' in the middle of each face (text is asymmetric: mirrors and flips are obvious)."""
    size = faces.shape[1]
    font = ImageFont.load_default(size=max(10, size // 6))
    out = []
    for k, face in enumerate(faces):
        im = Image.fromarray(face)
        draw = ImageDraw.Draw(im)
        draw.text((size / 2, size * 0.62), f"face {k}", fill=(0, 0, 0), font=font, anchor="mm")
        out.append(np.asarray(im))
    return np.stack(out)


def scene_colours(directions: np.ndarray) -> np.ndarray:
    """Colour (uint8 RGB) of a procedural box room along world directions (..., 3), seen from its middle:
    walls in 12 coloured sectors (one per 30° of world heading, hue = heading), a checkered floor 1.5 m
    below, a pale ceiling 1.5 m above, a dark post at heading 0 (asymmetric, so mirroring shows)."""
    d = np.asarray(directions, dtype=np.float64)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    heading = np.mod(np.arctan2(d[..., 0], d[..., 1]), 2 * math.pi)
    elev = np.arcsin(np.clip(d[..., 2], -1, 1))
    sector = np.floor(heading / math.radians(30)).astype(int) % 12
    wall = np.array([colorsys.hsv_to_rgb(s / 12.0, 0.75, 0.9) for s in range(12)]) * 255
    img = wall[sector]
    # an 8 m x 8 m box: its straight edges must stay straight in every rendered view (a pinhole check)
    with np.errstate(divide="ignore", invalid="ignore"):
        hx = 1.5 * d[..., 0] / np.abs(d[..., 2])
        hy = 1.5 * d[..., 1] / np.abs(d[..., 2])
    inside = (np.abs(hx) <= 4.0) & (np.abs(hy) <= 4.0)
    below = (d[..., 2] < 0) & inside
    checker = (np.floor(hx) + np.floor(hy)) % 2 == 0
    img[below] = np.where(checker[below, None], 200.0, 90.0)
    img[(d[..., 2] > 0) & inside] = (235.0, 235.0, 225.0)
    north = (np.abs(np.angle(np.exp(1j * heading))) < math.radians(4)) & (np.abs(elev) < math.radians(20))
    img[north] = (20.0, 20.0, 20.0)
    return img.astype(np.uint8)


def scene_faces(rotation: np.ndarray, size: int = 256, labels: bool = True) -> np.ndarray:
    """The six faces of `scene_colours` for a viewpoint with pose `rotation` (optionally labelled)."""
    rot = np.asarray(rotation, dtype=np.float64)
    faces = np.stack([scene_colours(face_pixel_directions(k, size) @ rot.T) for k in range(NUM_FACES)])
    return _draw_labels(faces) if labels else faces


def encode_jpeg(face: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_faces(skybox_root: str | os.PathLike, scan: str, viewpoint: str, faces: np.ndarray) -> None:
    """Write six faces as `<vp>_skybox<k>_sami.jpg` (atomically)."""
    for k in range(NUM_FACES):
        atomic_write_bytes(face_path(skybox_root, scan, viewpoint, k), encode_jpeg(faces[k]))


@dataclass
class SyntheticScan:
    skybox_root: Path
    connectivity_dir: Path
    scan: str
    viewpoints: list[str]
    face3_headings: list[float]  # world heading (radians) each viewpoint's face 3 looks at


def write_synthetic_scan(
    root: str | os.PathLike,
    scan: str = "synthetic0",
    num_viewpoints: int = 3,
    face_size: int = 256,
    kind: str = "scene",
    seed: int = 0,
    yaws: list[float] | None = None,
) -> SyntheticScan:
    """A small scan in the real layout under `root` (`root/skyboxes`, `root/connectivity`): viewpoints on
    a line 2 m apart, each with a random yaw; faces from `scene_faces` ("scene") or `marker_faces` ("marker")."""
    if kind not in ("scene", "marker"):
        raise ValueError(f"kind must be 'scene' or 'marker' (got {kind!r})")
    rng = np.random.default_rng(seed)
    root = Path(root)
    sky, conn = root / "skyboxes", root / "connectivity"
    ids = [f"{scan}_vp{i:02d}" for i in range(num_viewpoints)]
    if yaws is None:
        yaws = [float(rng.uniform(0, 2 * math.pi)) for _ in ids]
    if len(yaws) != num_viewpoints:
        raise ValueError("need one yaw per viewpoint")
    entries = []
    for i, (vid, yaw) in enumerate(zip(ids, yaws)):
        rot = yaw_rotation(yaw)
        pose = np.eye(4)
        pose[:3, :3] = rot
        pose[:3, 3] = (2.0 * i, 0.0, 1.5)
        faces = scene_faces(rot, face_size) if kind == "scene" else marker_faces(face_size, labels=False)
        write_faces(sky, scan, vid, faces)
        adj = [abs(i - j) == 1 for j in range(num_viewpoints)]
        entries.append(
            {"image_id": vid, "pose": pose.reshape(-1).tolist(), "included": True, "visible": adj,
             "unobstructed": adj, "height": 1.5}
        )
    atomic_write_json(conn / f"{scan}_connectivity.json", entries)
    atomic_write_text(conn / "scans.txt", scan + "\n")
    return SyntheticScan(sky, conn, scan, ids, list(yaws))
