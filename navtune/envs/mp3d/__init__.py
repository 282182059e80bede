"""Matterport3D skybox views for the R2R graph world (numpy + Pillow only; no simulator needed).

`SkyboxViews(skybox_root, connectivity, camera).for_scan(scan)` is a graph-world `ViewRenderer`:
`render(viewpoint_id, heading, elevation) -> (rgb uint8 HxWx3, depth float32 HxW | None)` at any heading,
elevation and vertical fov; a camera with an output size is rendered at its width x height and resized with
OpenCV's Lanczos-4 (`lanczos4_resize`), as seed 1's frames were.
"""
from navtune.envs.mp3d.cubemap import DEFAULT_VFOV, render_depth, render_view, sample_faces
from navtune.envs.mp3d.resize import lanczos4_resize
from navtune.envs.mp3d.skybox import (
    CameraSpec,
    FaceCache,
    SkyboxError,
    SkyboxRenderer,
    SkyboxViews,
    load_faces,
    load_poses,
)

__all__ = [
    "DEFAULT_VFOV",
    "CameraSpec",
    "FaceCache",
    "SkyboxError",
    "SkyboxRenderer",
    "SkyboxViews",
    "load_faces",
    "lanczos4_resize",
    "load_poses",
    "render_depth",
    "render_view",
    "sample_faces",
]
