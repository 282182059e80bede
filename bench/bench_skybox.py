"""Skybox renderer speed at the seed model's 320x240: views/s cold (decode 6 JPEG faces + render) and
cached (faces in the LRU), measured side by side in one run on a synthetic scan with real-size faces.

    .venv/bin/python bench/bench_skybox.py [--face-size 1024] [--viewpoints 6] [--views 60]
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time

from navtune.envs.mp3d import CameraSpec, SkyboxViews
from navtune.envs.mp3d.synthetic import write_synthetic_scan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--face-size", type=int, default=1024, help="size of the written _sami faces (real: 1024)")
    ap.add_argument("--render-face-size", type=int, default=512, help="faces decoded at this size (default 512)")
    ap.add_argument("--viewpoints", type=int, default=6)
    ap.add_argument("--views", type=int, default=60, help="cached renders to time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scan = write_synthetic_scan(tmp, num_viewpoints=args.viewpoints, face_size=args.face_size, kind="scene")
        cam = CameraSpec(320, 240)

        # cold: every render decodes its viewpoint's faces (cache cleared before each)
        views = SkyboxViews(scan.skybox_root, scan.connectivity_dir, cam, face_size=args.render_face_size)
        r = views.for_scan(scan.scan)
        t0 = time.perf_counter()
        for vp in scan.viewpoints:
            views.cache.clear()
            r.render(vp, 0.0, 0.0)
        cold = len(scan.viewpoints) / (time.perf_counter() - t0)

        # cached: faces decoded once, 12 headings x 3 elevations as in MatterSim's discretised mode
        for vp in scan.viewpoints:
            r.render(vp, 0.0, 0.0)
        t0 = time.perf_counter()
        for i in range(args.views):
            r.render(scan.viewpoints[i % len(scan.viewpoints)], math.radians(30 * (i % 12)),
                     math.radians(30 * ((i // 12) % 3 - 1)))
        cached = args.views / (time.perf_counter() - t0)

    print(f"skybox renderer, 320x240, faces {args.face_size}px on disk -> {args.render_face_size}px decoded")
    print(f"{'mode':<10}{'views/s':>10}{'ms/view':>10}")
    print(f"{'cold':<10}{cold:>10.1f}{1000 / cold:>10.1f}")
    print(f"{'cached':<10}{cached:>10.1f}{1000 / cached:>10.1f}")
    print(f"cached / cold speed-up: {cached / cold:.1f}x")


if __name__ == "__main__":
    main()
