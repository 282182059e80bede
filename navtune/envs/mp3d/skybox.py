"""Matterport3D skybox views for the R2R graph world: files, poses, a decoded-face LRU cache, a renderer.

Layout (the Matterport3D download, unzipped, as MatterSim expects it):
    <skybox_root>/<scan>/matterport_skybox_images/<viewpoint>_skybox<k>_sami.jpg    k = 0..5 (1024x1024)
or MatterSim's downsized file `<viewpoint>_skybox_small.jpg` (faces 0..5 side by side), which is used when
the six `_sami` faces are absent; optional depth `<viewpoint>_skybox_depth_small.png` (16-bit, 0.25 mm).
Poses come from `<connectivity>/<scan>_connectivity.json` (`pose`, row-major 4x4; see `cubemap.py`).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from navtune.core.errors import NavtuneError, is_finite_number
from navtune.core.io import read_json
from navtune.core.paths import safe_name
from navtune.envs.mp3d.cubemap import NUM_FACES, render_depth, render_view
from navtune.envs.mp3d.resize import lanczos4_resize
from navtune.graph.lowlevel import Camera

SKYBOX_SUBDIR = "matterport_skybox_images"
DEFAULT_FACE_SIZE = 512  # MatterSim's downsize_skybox.py size; enough for 320x240 at 60° vfov


class SkyboxError(NavtuneError):
    """Missing or malformed skybox / connectivity data; the message names the file (and field)."""


def skybox_dir(skybox_root: str | os.PathLike, scan: str) -> Path:
    """`<root>/<scan>/matterport_skybox_images` (a scan that is not a plain name is a `SkyboxError`)."""
    return Path(skybox_root) / safe_name(scan, skybox_root, "scan", SkyboxError) / SKYBOX_SUBDIR


def face_path(skybox_root: str | os.PathLike, scan: str, viewpoint: str, k: int) -> Path:
    return skybox_dir(skybox_root, scan) / f"{_viewpoint(viewpoint, skybox_root)}_skybox{k}_sami.jpg"


def small_path(skybox_root: str | os.PathLike, scan: str, viewpoint: str) -> Path:
    return skybox_dir(skybox_root, scan) / f"{_viewpoint(viewpoint, skybox_root)}_skybox_small.jpg"


def depth_path(skybox_root: str | os.PathLike, scan: str, viewpoint: str) -> Path:
    return skybox_dir(skybox_root, scan) / f"{_viewpoint(viewpoint, skybox_root)}_skybox_depth_small.png"


def _viewpoint(viewpoint: str, skybox_root: str | os.PathLike) -> str:
    return safe_name(viewpoint, skybox_root, "viewpoint", SkyboxError)


def _connectivity_file(connectivity: str | os.PathLike, scan: str) -> Path:
    """Accept either the `connectivity/` folder itself or a data folder that contains it."""
    safe_name(scan, connectivity, "scan", SkyboxError)
    base = Path(connectivity)
    if (base / "connectivity").is_dir() and not (base / f"{scan}_connectivity.json").is_file():
        base = base / "connectivity"
    return base / f"{scan}_connectivity.json"


def load_poses(connectivity: str | os.PathLike, scan: str) -> dict[str, np.ndarray]:
    """Viewpoint id -> 3x3 pose rotation (skybox-local -> world) of every entry in a connectivity file."""
    path = _connectivity_file(connectivity, scan)
    if not path.is_file():
        raise SkyboxError(f"{path}: connectivity file not found (scan {scan!r})")
    entries = read_json(path, SkyboxError, "connectivity file")
    if not isinstance(entries, list):
        raise SkyboxError(f"{path}: expected a JSON list of viewpoint entries")
    poses: dict[str, np.ndarray] = {}
    for i, e in enumerate(entries):
        vid = e.get("image_id") if isinstance(e, dict) else None
        if not isinstance(vid, str):
            raise SkyboxError(f"{path}: entry {i}: field 'image_id' missing or not a string")
        pose = e.get("pose")
        if not isinstance(pose, list) or len(pose) != 16 or not all(
            is_finite_number(v) for v in pose
        ):
            raise SkyboxError(f"{path}: viewpoint {vid}: field 'pose' must be 16 finite numbers (row-major 4x4)")
        rot = np.asarray(pose, dtype=np.float64).reshape(4, 4)[:3, :3]
        if abs(np.linalg.det(rot) - 1.0) > 0.05:
            raise SkyboxError(f"{path}: viewpoint {vid}: field 'pose' is not a rotation (det {np.linalg.det(rot):.3f})")
        poses[vid] = rot
    return poses


def _decode(path: Path, size: int) -> np.ndarray:
    """Decode a JPEG/PNG to (size, size, 3) uint8, letting libjpeg downscale by DCT (fast `draft`)."""
    with Image.open(path) as im:
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR if im.size[0] < size else Image.Resampling.BOX)
        return np.asarray(im, dtype=np.uint8)


def load_faces(skybox_root: str | os.PathLike, scan: str, viewpoint: str, face_size: int = DEFAULT_FACE_SIZE) -> np.ndarray:
    """(6, S, S, 3) uint8 faces of one viewpoint from the `_sami` faces, else MatterSim's `_skybox_small`."""
    paths = [face_path(skybox_root, scan, viewpoint, k) for k in range(NUM_FACES)]
    if all(p.is_file() for p in paths):
        try:
            return np.stack([_decode(p, face_size) for p in paths])
        except OSError as e:
            raise SkyboxError(f"{skybox_dir(skybox_root, scan)}: cannot decode a skybox face of {viewpoint}: {e}") from e
    small = small_path(skybox_root, scan, viewpoint)
    if small.is_file():
        with Image.open(small) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        h, w = arr.shape[:2]
        if w != NUM_FACES * h:
            raise SkyboxError(f"{small}: expected 6 square faces side by side, got {w}x{h}")
        faces = [arr[:, k * h:(k + 1) * h] for k in range(NUM_FACES)]
        if h != face_size:
            faces = [np.asarray(Image.fromarray(f).resize((face_size, face_size), Image.Resampling.BILINEAR)) for f in faces]
        return np.stack(faces)
    missing = [p.name for p in paths if not p.is_file()]
    raise SkyboxError(
        f"{skybox_dir(skybox_root, scan)}: no skybox for viewpoint {viewpoint} (missing {', '.join(missing)}"
        f" and {small.name}); expected <root>/<scan>/{SKYBOX_SUBDIR}/<viewpoint>_skybox<k>_sami.jpg"
    )


def load_depth_faces(skybox_root: str | os.PathLike, scan: str, viewpoint: str) -> np.ndarray:
    """(6, S, S) uint16 Euclidean range faces (0.25 mm units) from MatterSim's `_skybox_depth_small.png`."""
    path = depth_path(skybox_root, scan, viewpoint)
    if not path.is_file():
        raise SkyboxError(f"{path}: depth skybox not found (made by MatterSim's scripts/depth_to_skybox.py)")
    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.ndim != 2 or arr.shape[1] != NUM_FACES * arr.shape[0]:
        raise SkyboxError(f"{path}: expected a 16-bit image of 6 square faces side by side, got {arr.shape}")
    h = arr.shape[0]
    return np.stack([arr[:, k * h:(k + 1) * h] for k in range(NUM_FACES)]).astype(np.uint16)


class FaceCache:
    """Thread-safe LRU of decoded faces keyed by (scan, viewpoint, kind); shared across scans."""

    def __init__(self, max_items: int = 32):
        if max_items < 1:
            raise ValueError("cache size must be >= 1")
        self.max_items = max_items
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, load) -> np.ndarray:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = load()  # decode outside the lock
        with self._lock:
            self.misses += 1
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: MatterSim's camera (width, height, vfov, optional Lanczos output size): the graph world's `Camera`, one
#: type for the renderer and the navigability test.
CameraSpec = Camera


class SkyboxRenderer:
    """The graph world's `ViewRenderer` for one Matterport3D scan: render(viewpoint, heading, elevation)."""

    def __init__(
        self,
        skybox_root: str | os.PathLike,
        connectivity: str | os.PathLike,
        scan: str,
        camera: CameraSpec | None = None,
        face_size: int = DEFAULT_FACE_SIZE,
        depth: bool = False,
        cache: FaceCache | None = None,
    ):
        self.skybox_root = Path(skybox_root)
        self.scan = scan
        self.camera = camera or CameraSpec()
        self.face_size = face_size
        self.depth = depth
        self.cache = cache if cache is not None else FaceCache()
        self.poses = load_poses(connectivity, scan)
        if not skybox_dir(self.skybox_root, scan).is_dir():
            raise SkyboxError(f"{skybox_dir(self.skybox_root, scan)}: skybox folder of scan {scan!r} not found")

    def faces(self, viewpoint_id: str) -> np.ndarray:
        return self.cache.get(
            (self.scan, viewpoint_id, "rgb", self.face_size),
            lambda: load_faces(self.skybox_root, self.scan, viewpoint_id, self.face_size),
        )

    def rotation(self, viewpoint_id: str) -> np.ndarray:
        try:
            return self.poses[viewpoint_id]
        except KeyError:
            raise SkyboxError(f"scan {self.scan}: viewpoint {viewpoint_id!r} is not in the connectivity file") from None

    def render(self, viewpoint_id: str, heading: float, elevation: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        """(H, W, 3) uint8 RGB view and, when enabled, (H, W) float32 depth in metres, at any heading and
        elevation; rendered at the camera's width x height and, when it has an output size, resized to it
        (RGB with OpenCV's Lanczos-4, as seed 1's frames were; depth by nearest texel, so holes stay holes)."""
        rot = self.rotation(viewpoint_id)
        cam = self.camera
        rgb = render_view(self.faces(viewpoint_id), rot, heading, elevation, cam.width, cam.height, cam.vfov)
        if cam.output_size is not None:
            rgb = lanczos4_resize(rgb, cam.output_size)
        depth = None
        if self.depth:
            dfaces = self.cache.get(
                (self.scan, viewpoint_id, "depth", 0),
                lambda: load_depth_faces(self.skybox_root, self.scan, viewpoint_id),
            )
            depth = render_depth(dfaces, rot, heading, elevation, cam.width, cam.height, cam.vfov)
            if cam.output_size is not None:
                ow, oh = cam.output_size
                rows = ((2 * np.arange(oh) + 1) * cam.height) // (2 * oh)  # the texel under each output centre
                cols = ((2 * np.arange(ow) + 1) * cam.width) // (2 * ow)
                depth = depth[np.ix_(rows, cols)]
        return rgb, depth


class SkyboxViews:
    """Renderers for many scans sharing one face cache. `views.for_scan(scan)` is a graph-world
    `ViewRenderer`; give `views.for_scan` to `GraphNavEnv` (scan -> renderer). `views.render(scan, viewpoint,
    heading, elevation)` takes the scan first, like the data collectors' renderers."""

    def __init__(
        self,
        skybox_root: str | os.PathLike,
        connectivity: str | os.PathLike,
        camera: CameraSpec | None = None,
        face_size: int = DEFAULT_FACE_SIZE,
        depth: bool = False,
        cache_size: int = 32,
    ):
        self.skybox_root, self.connectivity = Path(skybox_root), Path(connectivity)
        if not self.skybox_root.is_dir():
            raise SkyboxError(f"{self.skybox_root}: skybox root folder not found (expected <root>/<scan>/{SKYBOX_SUBDIR}/)")
        self.camera, self.face_size, self.depth = camera or CameraSpec(), face_size, depth
        self.cache = FaceCache(cache_size)
        self._renderers: OrderedDict[str, SkyboxRenderer] = OrderedDict()  # the last 16 scans (poses per scan)

    def for_scan(self, scan: str) -> SkyboxRenderer:
        if scan in self._renderers:
            self._renderers.move_to_end(scan)
        else:
            self._renderers[scan] = SkyboxRenderer(
                self.skybox_root, self.connectivity, scan, self.camera, self.face_size, self.depth, self.cache
            )
            while len(self._renderers) > 16:
                self._renderers.popitem(last=False)
        return self._renderers[scan]


    def render(self, scan: str, viewpoint_id: str, heading: float, elevation: float = 0.0):
        return self.for_scan(scan).render(viewpoint_id, heading, elevation)
