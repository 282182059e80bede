"""Depth as a picture a VLM can take: metres -> a colour map (near: yellow, far: dark blue).

A Qwen2.5-VL vision tower takes RGB images, so a model that should see depth is shown a second image, the
depth frame through matplotlib's ``viridis`` map over [0, `max_depth`] metres (farther is clipped). Training
(`navtune.data.training`, from the stored depth PNGs) and the VLM policy (from `Observation.depth`) both
call this one function, so the model sees the same pixels in both."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

MAX_DEPTH = 5.0


@lru_cache(maxsize=1)
def _lut() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["viridis_r"](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)


def depth_image(depth: np.ndarray, max_depth: float = MAX_DEPTH) -> np.ndarray:
    """(H, W) float metres -> (H, W, 3) uint8 colour image (NaN / inf / <= 0 read as `max_depth`)."""
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"expected an (H, W) depth frame, got shape {d.shape}")
    d = np.where(np.isfinite(d) & (d > 0), d, max_depth)
    idx = np.clip(np.rint(d / max_depth * 255.0), 0, 255).astype(np.intp)
    return _lut()[idx]
