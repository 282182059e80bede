"""Matterport3D skybox renderer: faces at each heading, upright and unmirrored, elevation, MatterSim's GL
pipeline replayed literally on real R2R poses, file layout, cache, depth, errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from navtune.envs.mp3d import CameraSpec, FaceCache, SkyboxError, SkyboxRenderer, SkyboxViews, lanczos4_resize, load_poses
from navtune.envs.mp3d.cubemap import face_coordinates, face_heading, render_view, view_directions_local, yaw_rotation
from navtune.envs.mp3d.synthetic import FACE_COLORS, MARKER_COLOR, MARKER_U, MARKER_V, marker_faces, write_synthetic_scan
from navtune.envs.mp3d.skybox import depth_path, face_path, small_path

W, H = 160, 120
VFOV = math.radians(60)
TY = math.tan(VFOV / 2)
TX = TY * W / H
SIDE_ORDER = [3, 4, 1, 2]  # faces met turning right from face 3, every 90°


def close(pixel, colour, tol=30) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.asarray(colour, int)) <= tol))


def pixel_of(right: float, up: float) -> tuple[int, int]:
    """Row/col of a camera-frame direction (right, up, forward=1) in a WxH view (row 0 at the top)."""
    return int((1 - up / TY) / 2 * H), int((right / TX + 1) / 2 * W)


MARKER_CENTRE = (sum(MARKER_U) / 2, sum(MARKER_V) / 2)  # (u right, v down) on the face


def check_marker(img: np.ndarray, face: int) -> None:
    """A face seen head-on: its top-left marker is top-left in the view, absent where a flip would put it."""
    u, v = MARKER_CENTRE
    r, c = pixel_of(u, -v)
    assert close(img[r, c], MARKER_COLOR), f"face {face}: marker missing at top-left ({r},{c}): {img[r, c]}"
    for name, (rr, cc) in {"mirrored": pixel_of(-u, -v), "upside-down": pixel_of(u, v), "rotated": pixel_of(-u, v)}.items():
        assert close(img[rr, cc], FACE_COLORS[face]), f"face {face}: {name} marker position shows {img[rr, cc]}"


@pytest.mark.parametrize("yaw_deg", [0.0, 17.0, 240.0])
def test_twelve_headings_show_the_expected_face(yaw_deg):
    faces = marker_faces(96)
    yaw = math.radians(yaw_deg)
    rot = yaw_rotation(yaw)
    assert face_heading(rot, 3) == pytest.approx(yaw % (2 * math.pi))
    for i in range(12):
        h = math.radians(30 * i)
        rel = math.degrees((h - yaw) % (2 * math.pi))
        if abs(rel % 90 - 45) < 3:
            continue  # on a face edge
        img = render_view(faces, rot, h, 0.0, W, H, VFOV)
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        expected = SIDE_ORDER[int(round(rel / 90)) % 4]
        assert close(img[H // 2, W // 2], FACE_COLORS[expected]), (i, rel, img[H // 2, W // 2])
        if yaw_deg == 0.0 and i % 3 == 0:
            check_marker(img, expected)


def test_view_turns_right_with_heading():
    """Turning right (heading +) moves scene content left in the image, as in MatterSim."""
    faces = marker_faces(96)
    rot = yaw_rotation(0.0)
    a = render_view(faces, rot, 0.0, 0.0, W, H)
    b = render_view(faces, rot, math.radians(10), 0.0, W, H)
    cols_a = np.nonzero(np.all(a[:, :, :] == 255, axis=2).any(axis=0))[0]
    cols_b = np.nonzero(np.all(b[:, :, :] == 255, axis=2).any(axis=0))[0]
    assert cols_b.mean() < cols_a.mean() - 10


def test_elevation_shows_top_and_bottom_faces():
    faces = marker_faces(96)
    yaw = math.radians(25)
    rot = yaw_rotation(yaw)
    up = render_view(faces, rot, yaw, math.radians(30), W, H)  # MatterSim's discrete "look up"
    assert close(up[0, W // 2], FACE_COLORS[0]) and close(up[-1, W // 2], FACE_COLORS[3])
    down = render_view(faces, rot, yaw, math.radians(-30), W, H)
    assert close(down[-1, W // 2], FACE_COLORS[5]) and close(down[0, W // 2], FACE_COLORS[3])
    # straight up / down while facing face 1: faces 0 and 5 are the natural photos of that camera
    back = yaw + math.pi
    top = render_view(faces, rot, back, math.pi / 2, W, H)
    check_marker(top, 0)
    bottom = render_view(faces, rot, back, -math.pi / 2, W, H)
    check_marker(bottom, 5)


# ---- MatterSim's OpenGL pipeline, transcribed literally (MatterSim.cpp renderScene + NavGraph.cpp) ----

def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# _skybox_small.jpg column k -> GL face: ypos=0, zpos=1, xpos=2, zneg=3, xneg=4, yneg=5
_GL_FACE = {(0, 1): 2, (0, -1): 4, (1, 1): 0, (1, -1): 5, (2, 1): 1, (2, -1): 3}


def mattersim_texel(pose_rot, heading, elevation, width, height, vfov, face_size):
    """(face, col, row, tie) per output pixel, row 0 at the top of the returned cv::Mat."""
    view = _rx(-math.pi / 2 + elevation) @ _rz(math.pi + heading)  # glm::rotate(m, a, axis) = m * R
    ty = math.tan(vfov / 2)
    tx = ty * width / height
    # glReadPixels fills memory bottom row first: output row i is window row i from the bottom
    ys = ((np.arange(height) + 0.5) * 2 / height - 1) * ty
    xs = ((np.arange(width) + 0.5) * 2 / width - 1) * tx
    gx, gy = np.meshgrid(xs, ys)
    cam = np.stack([gx, gy, -np.ones_like(gx)], -1).reshape(-1, 3)  # GL camera looks down -z
    model = cam @ np.linalg.inv(view).T @ pose_rot  # world = View^-1 cam; model = pose^-1 world
    a = np.abs(model)
    axis = a.argmax(1)
    srt = np.sort(a, 1)
    tie = srt[:, 2] - srt[:, 1] < 1e-3 * srt[:, 2]
    out = []
    for (rx, ry, rz), ax in zip(model, axis):
        sign = 1 if (rx, ry, rz)[ax] > 0 else -1
        ma = abs((rx, ry, rz)[ax])
        sc, tc = {  # OpenGL spec, cube map face selection table
            (0, 1): (-rz, -ry), (0, -1): (rz, -ry), (1, 1): (rx, rz), (1, -1): (rx, -rz),
            (2, 1): (rx, -ry), (2, -1): (-rx, -ry),
        }[(ax, sign)]
        s, t = (sc / ma + 1) / 2, (tc / ma + 1) / 2
        out.append((_GL_FACE[(ax, sign)], s * face_size - 0.5, t * face_size - 0.5))
    f, c, r = map(np.array, zip(*out))
    return f, c, r, tie


def test_matches_mattersim_gl_pipeline_on_real_poses(r2r_data_dir):
    poses = load_poses(r2r_data_dir / "connectivity", "17DRP5sb8fy")
    vids = sorted(poses)[:3]
    w, h, size = 40, 30, 512
    for vid in vids:
        rot = poses[vid]
        for hi in (0, 1, 5, 9):
            for elev in (-30, 0, 30):
                heading, e = math.radians(30 * hi), math.radians(elev)
                f_ref, c_ref, r_ref, tie = mattersim_texel(rot, heading, e, w, h, math.radians(60), size)
                f, c, r = face_coordinates(view_directions_local(rot, heading, e, w, h), size)
                ok = ~tie
                assert ok.sum() > 0.95 * len(ok)
                np.testing.assert_array_equal(f[ok], f_ref[ok])
                np.testing.assert_allclose(c[ok], c_ref[ok], atol=0.05)
                np.testing.assert_allclose(r[ok], r_ref[ok], atol=0.05)


def test_real_pose_faces_point_where_connectivity_says(r2r_data_dir):
    """Face 3 is where the pose 'camera' faces; each side face is 90° clockwise of the previous."""
    poses = load_poses(r2r_data_dir, "17DRP5sb8fy")  # the data folder is accepted too
    rot = next(iter(poses.values()))
    faces = marker_faces(64)
    h3 = face_heading(rot, 3)
    for k, face in enumerate(SIDE_ORDER):
        img = render_view(faces, rot, h3 + k * math.pi / 2, 0.0, W, H)
        assert close(img[H // 2, W // 2], FACE_COLORS[face])


# ---- files, cache, camera, depth, errors ----

@pytest.fixture()
def scan(tmp_path):
    return write_synthetic_scan(tmp_path, scan="synthMarkers", num_viewpoints=2, face_size=96, kind="marker",
                                yaws=[0.0, math.radians(90)])


def test_renderer_reads_real_layout_and_caches(scan):
    views = SkyboxViews(scan.skybox_root, scan.connectivity_dir, CameraSpec(W, H), face_size=96, cache_size=1)
    r = views.for_scan(scan.scan)
    assert views.for_scan(scan.scan) is r
    rgb, depth = r.render(scan.viewpoints[0], 0.0, 0.0)
    assert rgb.shape == (H, W, 3) and depth is None
    assert close(rgb[H // 2, W // 2], FACE_COLORS[3])
    check_marker(rgb, 3)
    # second viewpoint is yawed 90°: at heading 90 its face 3 is ahead
    rgb2, _ = r.render(scan.viewpoints[1], math.radians(90), 0.0)
    assert close(rgb2[H // 2, W // 2], FACE_COLORS[3])
    assert (views.cache.misses, views.cache.hits, len(views.cache)) == (2, 0, 1)  # LRU size 1 evicted vp0
    r.render(scan.viewpoints[1], 0.0, 0.0)
    assert views.cache.hits == 1


def test_any_image_size_and_fov(scan):
    r = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, CameraSpec(64, 100, math.radians(40)),
                       face_size=96)
    rgb, _ = r.render(scan.viewpoints[0], 0.0)
    assert rgb.shape == (100, 64, 3)
    assert close(rgb[50, 32], FACE_COLORS[3])


def test_seed1_camera_wide_vfov_rendered_large_then_lanczos(scan):
    """Seed 1's camera: 640x480 at a 105° vfov (pinhole hfov 120°: the faces left and right of face 3 show
    at the edges, which a 60° vfov never reaches), resized to 320x240 with OpenCV's Lanczos-4; depth too."""
    vp = scan.viewpoints[0]
    big = CameraSpec(64, 48, math.radians(105))
    raw, _ = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, big, face_size=96).render(vp, 0.0)
    assert close(raw[24, 32], FACE_COLORS[3]) and close(raw[24, 0], FACE_COLORS[2]) and close(raw[24, 63], FACE_COLORS[4])
    narrow, _ = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, CameraSpec(64, 48), face_size=96).render(vp, 0.0)
    assert close(narrow[24, 0], FACE_COLORS[3]) and close(narrow[24, 63], FACE_COLORS[3])
    Image.fromarray(np.full((32, 32 * 6), 8000, dtype=np.uint16)).save(depth_path(scan.skybox_root, scan.scan, vp))
    cam = CameraSpec(64, 48, math.radians(105), output_size=(32, 24))
    rgb, depth = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, cam, face_size=96, depth=True).render(vp, 0.0)
    assert rgb.shape == (24, 32, 3) and depth.shape == (24, 32)
    assert np.array_equal(rgb, lanczos4_resize(raw, (32, 24)))
    _, full = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, big, face_size=96, depth=True).render(vp, 0.0)
    assert np.array_equal(depth, full[1::2, 1::2])  # nearest texel: holes never blend


#: cv2.resize(IMG, size, interpolation=cv2.INTER_LANCZOS4) with OpenCV 5.0 (computed once; OpenCV is not a
#: navtune dependency), IMG = ((x*37 + y*91 + c*53 + x*y*7) % 256) as uint8, shape (12, 16, 3).
LANCZOS4_REF = {
    (8, 6): [39, 109, 210, 192, 146, 88, 62, 146, 142, 116, 112, 195, 169, 112, 59, 40, 139, 146, 197, 158, 79, 114,
             110, 105, 137, 89, 64, 55, 217, 168, 169, 135, 131, 136, 129, 95, 88, 47, 215, 208, 161, 130, 43, 115, 95,
             109, 207, 175, 145, 209, 62, 119, 107, 127, 145, 127, 117, 181, 133, 122, 47, 167, 202, 217, 46, 8, 97,
             203, 205, 198, 85, 83, 123, 110, 194, 43, 154, 139, 131, 125, 77, 222, 45, 163, 166, 180, 129, 52, 98,
             175, 208, 32, 69, 100, 207, 200, 70, 111, 73, 224, 70, 162, 129, 214, 83, 122, 88, 174, 144, 210, 51, 114,
             134, 233, 54, 111, 186, 147, 102, 47, 198, 87, 168, 149, 60, 110, 104, 189, 81, 20, 122, 206, 182, 41,
             139, 162, 123, 62, 189, 193, 143, 109, 103, 140],
    (7, 5): [68, 141, 248, 224, 62, 84, 85, 123, 153, 136, 220, 130, 49, 51, 169, 152, 197, 162, 158, 152, 80, 45, 122,
             151, 180, 238, 50, 44, 122, 176, 225, 126, 28, 71, 113, 169, 202, 251, 56, 105, 137, 187, 33, 110, 164,
             103, 151, 16, 114, 153, 90, 95, 221, 34, 60, 172, 100, 113, 26, 66, 203, 210, 80, 118, 42, 108, 252, 51,
             94, 149, 195, 9, 191, 235, 117, 97, 166, 234, 40, 140, 193, 179, 41, 111, 222, 68, 154, 191, 15, 64, 147,
             178, 20, 179, 139, 149, 169, 244, 109, 120, 204, 246, 101, 110, 185],
}


def test_lanczos4_resize_is_opencvs_to_the_bit():
    y, x, c = np.mgrid[0:12, 0:16, 0:3]
    img = ((x * 37 + y * 91 + c * 53 + x * y * 7) % 256).astype(np.uint8)
    for size, ref in LANCZOS4_REF.items():
        out = lanczos4_resize(img, size)
        assert out.shape == (size[1], size[0], 3) and out.reshape(-1).tolist() == ref
    pil = np.asarray(Image.fromarray(img).resize((8, 6), Image.Resampling.LANCZOS))
    assert pil.reshape(-1).tolist() != LANCZOS4_REF[(8, 6)]  # Pillow's Lanczos is another filter
    grey = lanczos4_resize(img[:, :, 0], (8, 6))
    assert grey.tolist() == np.asarray(LANCZOS4_REF[(8, 6)]).reshape(6, 8, 3)[:, :, 0].tolist()
    flat = np.full((12, 16), 0.25, dtype=np.float32)
    assert np.allclose(lanczos4_resize(flat, (8, 6)), 0.25, atol=4 * np.finfo(np.float32).eps)


def test_skybox_small_fallback_matches_sami_faces(scan, tmp_path):
    vp = scan.viewpoints[0]
    r = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, CameraSpec(W, H), face_size=96)
    ref, _ = r.render(vp, 0.4, 0.2)
    faces = [np.asarray(Image.open(face_path(scan.skybox_root, scan.scan, vp, k))) for k in range(6)]
    Image.fromarray(np.concatenate(faces, axis=1)).save(small_path(scan.skybox_root, scan.scan, vp), quality=98)
    for k in range(6):
        face_path(scan.skybox_root, scan.scan, vp, k).unlink()
    r2 = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, CameraSpec(W, H), face_size=96)
    got, _ = r2.render(vp, 0.4, 0.2)
    assert np.mean(np.abs(got.astype(int) - ref.astype(int))) < 3


def test_depth_is_planar_metres(scan):
    vp = scan.viewpoints[0]
    rng_units = 8000  # 2 m Euclidean range everywhere, 0.25 mm units
    Image.fromarray(np.full((32, 32 * 6), rng_units, dtype=np.uint16)).save(depth_path(scan.skybox_root, scan.scan, vp))
    r = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, CameraSpec(W, H), face_size=96, depth=True)
    _, depth = r.render(vp, 1.0, 0.0)
    assert depth.shape == (H, W) and depth.dtype == np.float32
    assert depth[H // 2, W // 2] == pytest.approx(2.0, abs=0.01)
    corner = 2.0 / math.sqrt(1 + TX**2 + TY**2)  # z-depth of a 2 m range at the image corner
    assert depth[0, 0] == pytest.approx(corner, abs=0.02)


def test_errors_name_the_file(scan, tmp_path):
    r = SkyboxRenderer(scan.skybox_root, scan.connectivity_dir, scan.scan, face_size=96)
    with pytest.raises(SkyboxError, match="not in the connectivity"):
        r.render("nope", 0.0)
    face_path(scan.skybox_root, scan.scan, scan.viewpoints[1], 4).unlink()
    with pytest.raises(SkyboxError, match=r"skybox4_sami\.jpg"):
        r.render(scan.viewpoints[1], 0.0)
    conn = scan.connectivity_dir / f"{scan.scan}_connectivity.json"
    entries = json.loads(conn.read_text())
    entries[0]["pose"] = entries[0]["pose"][:12]
    conn.write_text(json.dumps(entries))
    with pytest.raises(SkyboxError, match=r"connectivity\.json: viewpoint .*field 'pose'"):
        load_poses(scan.connectivity_dir, scan.scan)
    with pytest.raises(SkyboxError, match="connectivity file not found"):
        load_poses(scan.connectivity_dir, "otherScan")
    with pytest.raises(SkyboxError, match="skybox root"):
        SkyboxViews(tmp_path / "missing", scan.connectivity_dir)


def test_face_cache_is_lru():
    cache = FaceCache(2)
    loads = []
    for key in ["a", "b", "a", "c", "b"]:
        cache.get((key,), lambda k=key: loads.append(k) or np.zeros(1))
    assert loads == ["a", "b", "c", "b"]  # "b" was evicted by "c" since "a" was used more recently


@pytest.mark.parametrize("yaw_deg,heading_deg,elev_deg", [(0, 0, 0), (33, 100, 20), (250, 215, -35), (90, 300, 60)])
def test_rendered_view_equals_the_scene_along_each_pixel_ray(yaw_deg, heading_deg, elev_deg):
    """Faces made from a procedural world and rendered back agree with the world itself along every pixel's
    ray (navtune's camera: heading clockwise from +y, elevation up): across seams, any pose and angle."""
    from navtune.envs.mp3d.cubemap import camera_basis, camera_rays
    from navtune.envs.mp3d.synthetic import scene_colours, scene_faces

    rot = yaw_rotation(math.radians(yaw_deg))
    h, e = math.radians(heading_deg), math.radians(elev_deg)
    img = render_view(scene_faces(rot, 256, labels=False), rot, h, e, W, H)
    truth = scene_colours(camera_rays(W, H) @ camera_basis(h, e).T).reshape(H, W, 3)
    agree = np.all(np.abs(img.astype(int) - truth.astype(int)) <= 12, axis=-1)
    t = truth.astype(int)
    edge = np.zeros((H, W), bool)  # pixels next to a colour edge of the true view (bilinear blends there)
    edge[:, 1:] |= np.any(t[:, 1:] != t[:, :-1], -1)
    edge[:, :-1] |= np.any(t[:, 1:] != t[:, :-1], -1)
    edge[1:] |= np.any(t[1:] != t[:-1], -1)
    edge[:-1] |= np.any(t[1:] != t[:-1], -1)
    near_edge = edge.copy()
    near_edge[:, 1:] |= edge[:, :-1]
    near_edge[:, :-1] |= edge[:, 1:]
    near_edge[1:] |= edge[:-1]
    near_edge[:-1] |= edge[1:]
    assert agree.mean() > 0.9
    assert (~agree & ~near_edge).mean() < 0.002, "pixels away from colour edges differ from the scene"
