"""Cube-map geometry of Matterport3D skyboxes and a vectorised perspective renderer (numpy only).

Conventions (checked against Matterport3DSimulator's renderer, `src/lib/MatterSim.cpp` + `NavGraph.cpp`:
its `_skybox_small.jpg` puts faces 0..5 side by side and binds them as GL +Y=0, +Z=1, +X=2, -Z=3, -X=4,
-Y=5, draws the cube with `ModelView = RotX(elev - pi/2) * RotZ(pi + heading) * pose`, and reads the frame
back bottom row first; `tests/test_mp3d_renderer.py` replays that chain literally):

* The connectivity `pose` (row-major 4x4) rotates the skybox's *local* frame into the world (z up). The
  local frame is a camera that looks at face 3 with x to the right and y down (OpenCV style), so:
  face 3 looks along local +z, 4 along +x, 1 along -z, 2 along -x (1 -> 2 -> 3 -> 4 turns right, clockwise
  seen from above), 0 looks up (local -y) and 5 down (local +y).
* Every face is a natural 90° pinhole photo (not mirrored): the four side faces are upright; faces 0 and 5
  are the views up and down from a camera facing face 1 (their top edge borders face 3 / face 1).
* navtune heading: 0 along world +y, clockwise positive; elevation positive looks up. Views use MatterSim's
  pinhole camera: vertical fov `vfov`, horizontal fov from the aspect ratio (glm::perspective), texels
  sampled bilinearly with clamp-to-edge (GL_LINEAR, GL_CLAMP_TO_EDGE).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

NUM_FACES = 6
DEFAULT_VFOV = math.radians(60.0)

#: Per face k: unit vectors (forward, right, down) in the skybox-local frame.
FACE_FORWARD = np.array([[0, -1, 0], [0, 0, -1], [-1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
FACE_RIGHT = np.array([[-1, 0, 0], [-1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, -1], [-1, 0, 0]], dtype=np.float64)
FACE_DOWN = np.array([[0, 0, -1], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
#: Face seen along the dominant local axis: _FACE_OF_AXIS[axis, positive?]
_FACE_OF_AXIS = np.array([[2, 4], [0, 5], [1, 3]], dtype=np.int64)


def camera_basis(heading: float, elevation: float) -> np.ndarray:
    """World (z up) columns (right, up, forward) of a camera at navtune heading/elevation (radians)."""
    sh, ch = math.sin(heading), math.cos(heading)
    se, ce = math.sin(elevation), math.cos(elevation)
    right = (ch, -sh, 0.0)
    up = (-sh * se, -ch * se, ce)
    forward = (sh * ce, ch * ce, se)
    return np.array([right, up, forward], dtype=np.float64).T


@lru_cache(maxsize=16)
def camera_rays(width: int, height: int, vfov: float = DEFAULT_VFOV) -> np.ndarray:
    """(H*W, 3) float32 rays (right, up, forward=1) through the pixel centres, row 0 at the top."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive (got {width}x{height})")
    if not 0.0 < vfov < math.pi:
        raise ValueError(f"vfov must be in (0, pi) radians (got {vfov})")
    ty = math.tan(vfov / 2.0)
    tx = ty * width / height
    xs = ((np.arange(width) + 0.5) * 2.0 / width - 1.0) * tx
    ys = (1.0 - (np.arange(height) + 0.5) * 2.0 / height) * ty
    gx, gy = np.meshgrid(xs, ys)
    rays = np.stack([gx, gy, np.ones_like(gx)], axis=-1).reshape(-1, 3).astype(np.float32)
    rays.setflags(write=False)
    return rays


def view_directions_local(
    rotation: np.ndarray, heading: float, elevation: float, width: int, height: int, vfov: float = DEFAULT_VFOV
) -> np.ndarray:
    """(H*W, 3) pixel ray directions in the skybox-local frame of a viewpoint with pose `rotation`."""
    m = (np.asarray(rotation, dtype=np.float64).T @ camera_basis(heading, elevation)).astype(np.float32)
    rays = camera_rays(width, height, vfov)  # camera -> local by broadcasting (a BLAS call on k=3 is slower)
    return rays[:, 0:1] * m[:, 0] + rays[:, 1:2] * m[:, 1] + m[:, 2]


def face_coordinates(directions: np.ndarray, face_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face index and continuous texel coordinates (col, row; texel centres at integers) per direction.

    Written out per axis (equal to projecting on FACE_RIGHT / FACE_DOWN of the selected face) for speed."""
    d = np.asarray(directions, dtype=np.float32)
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    is_x = (ax >= ay) & (ax >= az)
    is_y = ~is_x & (ay >= az)
    axis = np.where(is_x, 0, np.where(is_y, 1, 2))
    major = np.where(is_x, x, np.where(is_y, y, z))
    pos = major > 0
    face = _FACE_OF_AXIS.reshape(-1)[axis * 2 + pos]
    u = np.where(is_x, np.where(pos, -z, z), np.where(is_y | ~pos, -x, x))
    v = np.where(is_y, np.where(pos, z, -z), y)
    half = face_size / 2.0
    scale = half / np.abs(major)
    col = u * scale + (half - 0.5)
    row = v * scale + (half - 0.5)
    return face, col, row


def _gather(flat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows of a (M, C) array at idx, gathered as single C-byte items (much faster than 2-D fancy indexing)."""
    c = flat.shape[1]
    items = np.ascontiguousarray(flat).view(np.dtype((np.void, c * flat.itemsize)))[:, 0]
    return items[idx].view(flat.dtype).reshape(len(idx), c)


def sample_faces(faces: np.ndarray, directions: np.ndarray, bilinear: bool = True) -> np.ndarray:
    """Colours (N, C) of a (6, S, S, C) cube map along (N, 3) local directions (clamp to face edges)."""
    if faces.ndim != 4 or faces.shape[0] != NUM_FACES or faces.shape[1] != faces.shape[2]:
        raise ValueError(f"faces must be (6, S, S, C); got {faces.shape}")
    size = faces.shape[1]
    face, col, row = face_coordinates(directions, size)
    flat = faces.reshape(-1, faces.shape[3])
    base = face * (size * size)
    hi = size - 1
    if not bilinear or size == 1:
        c = np.clip(np.rint(col), 0, hi).astype(np.int64)
        r = np.clip(np.rint(row), 0, hi).astype(np.int64)
        return _gather(flat, base + r * size + c)
    np.clip(col, 0.0, hi, out=col)
    np.clip(row, 0.0, hi, out=row)
    c0 = np.minimum(col.astype(np.int64), hi - 1)
    r0 = np.minimum(row.astype(np.int64), hi - 1)
    wc = (col - c0).astype(np.float32)[:, None]
    wr = (row - r0).astype(np.float32)[:, None]
    i00 = base + r0 * size + c0
    i10 = i00 + size
    p00, p01 = _gather(flat, i00).astype(np.float32), _gather(flat, i00 + 1).astype(np.float32)
    p10, p11 = _gather(flat, i10).astype(np.float32), _gather(flat, i10 + 1).astype(np.float32)
    top = p00 + (p01 - p00) * wc
    bottom = p10 + (p11 - p10) * wc
    out = top + (bottom - top) * wr
    if np.issubdtype(faces.dtype, np.integer):
        info = np.iinfo(faces.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(faces.dtype)
    return out.astype(faces.dtype)


def render_view(
    faces: np.ndarray,
    rotation: np.ndarray,
    heading: float,
    elevation: float = 0.0,
    width: int = 320,
    height: int = 240,
    vfov: float = DEFAULT_VFOV,
) -> np.ndarray:
    """Perspective (H, W, C) view of a cube map at a navtune heading/elevation (MatterSim's camera)."""
    d = view_directions_local(rotation, heading, elevation, width, height, vfov)
    return sample_faces(faces, d).reshape(height, width, faces.shape[3])


def render_depth(
    depth_faces: np.ndarray,
    rotation: np.ndarray,
    heading: float,
    elevation: float = 0.0,
    width: int = 320,
    height: int = 240,
    vfov: float = DEFAULT_VFOV,
    units_per_metre: float = 4000.0,
) -> np.ndarray:
    """(H, W) float32 depth in metres along the optical axis, from (6, S, S) Euclidean-range faces.

    MatterSim's depth skyboxes store the distance from the camera centre (0.25 mm units); its shader scales
    by the cosine to the view axis, as done here. Nearest-texel sampling so holes (0) never blend."""
    d = view_directions_local(rotation, heading, elevation, width, height, vfov)
    rng = sample_faces(depth_faces[..., None], d, bilinear=False)[:, 0].astype(np.float32)
    cos = 1.0 / np.linalg.norm(camera_rays(width, height, vfov), axis=1)  # forward component is 1
    return (rng * cos / units_per_metre).reshape(height, width).astype(np.float32)


def face_pixel_directions(face: int, face_size: int) -> np.ndarray:
    """(S, S, 3) local directions through the texel centres of one face (inverse of `face_coordinates`)."""
    t = (np.arange(face_size) + 0.5) * 2.0 / face_size - 1.0
    u, v = np.meshgrid(t, t)  # u along columns (right), v along rows (down)
    return FACE_FORWARD[face] + u[..., None] * FACE_RIGHT[face] + v[..., None] * FACE_DOWN[face]


def face_heading(rotation: np.ndarray, face: int) -> float:
    """navtune heading (radians) of the centre of side face `face` (1..4) for a pose rotation."""
    f = np.asarray(rotation, dtype=np.float64) @ FACE_FORWARD[face]
    return math.atan2(f[0], f[1]) % (2.0 * math.pi)


def yaw_rotation(face3_heading: float) -> np.ndarray:
    """A level pose rotation whose face 3 looks at `face3_heading` (for synthetic scenes)."""
    right = camera_basis(face3_heading, 0.0)[:, 0]
    forward = camera_basis(face3_heading, 0.0)[:, 2]
    down = np.array([0.0, 0.0, -1.0])
    return np.stack([right, down, forward], axis=1)  # local x, y, z -> world
