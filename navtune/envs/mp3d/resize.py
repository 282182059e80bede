"""OpenCV's `cv2.resize(img, (w, h), interpolation=cv2.INTER_LANCZOS4)` in numpy, to the bit for uint8.

Seed 1's frames were rendered at 640x480 and shrunk to 320x240 this way (its author's simulator server
and dataset script), so the model saw this filter's output; Pillow's LANCZOS (an antialiasing filter of
a different support) gives visibly different pixels. OpenCV itself is not a navtune dependency.

The transcription follows OpenCV's `resizeGeneric_`: source coordinate (d + 0.5) * scale - 0.5, eight taps
at floor(x) - 3 .. floor(x) + 4 weighted by `interpolateLanczos4` (normalised to sum 1), replicated
borders, horizontal pass first; uint8 works in fixed point (weights * 2048 rounded to int16, the two
passes' product rounded back by 22 bits).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS
_S45 = 0.70710678118654752440084436210485
_CS = ((1, 0), (-_S45, -_S45), (0, 1), (_S45, -_S45), (-1, 0), (_S45, _S45), (0, -1), (-_S45, _S45))


def _lanczos4_weights(fx: float) -> np.ndarray:
    """OpenCV's interpolateLanczos4: 8 float32 weights for fractional offset `fx` (sum 1)."""
    if fx < np.finfo(np.float32).eps:
        w = np.zeros(8, dtype=np.float32)
        w[3] = 1.0
        return w
    y0 = -(fx + 3) * math.pi * 0.25
    s0, c0 = math.sin(y0), math.cos(y0)
    w = np.empty(8, dtype=np.float32)
    total = np.float32(0.0)
    for i in range(8):
        y = -(fx + 3 - i) * math.pi * 0.25
        w[i] = np.float32((_CS[i][0] * s0 + _CS[i][1] * c0) / (y * y))
        total = np.float32(total + w[i])
    return (w * (np.float32(1.0) / total)).astype(np.float32)


@lru_cache(maxsize=32)
def _axis(src_len: int, dst_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(dst_len, 8) source indices (replicated at the borders) and float32 weights along one axis."""
    scale = src_len / dst_len
    idx = np.empty((dst_len, 8), dtype=np.int64)
    wts = np.empty((dst_len, 8), dtype=np.float32)
    for d in range(dst_len):
        fx = np.float32((d + 0.5) * scale - 0.5)
        sx = math.floor(fx)
        fx = float(np.float32(fx - sx))
        idx[d] = np.clip(np.arange(sx - 3, sx + 5), 0, src_len - 1)
        wts[d] = _lanczos4_weights(fx)
    idx.setflags(write=False)
    wts.setflags(write=False)
    return idx, wts


def lanczos4_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) or (H, W, C) image to `size` = (width, height) like cv2.INTER_LANCZOS4."""
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"target size must be positive (got {w}x{h})")
    img = np.asarray(image)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[:, :, None]
    src_h, src_w = img.shape[:2]
    if (src_w, src_h) == (w, h):
        return np.array(image, copy=True)
    xi, xw = _axis(src_w, w)
    yi, yw = _axis(src_h, h)
    if img.dtype == np.uint8:
        ax = np.rint(xw * _COEF_SCALE).astype(np.int64)  # saturate_cast<short>(w * 2048)
        ay = np.rint(yw * _COEF_SCALE).astype(np.int64)
        rows = np.einsum("hwkc,wk->hwc", img[:, xi, :].astype(np.int64), ax)  # horizontal pass (int)
        out = np.einsum("hkwc,hk->hwc", rows[yi], ay)  # vertical pass
        out = (out + (1 << (2 * _COEF_BITS - 1))) >> (2 * _COEF_BITS)
        out = np.clip(out, 0, 255).astype(np.uint8)
    else:
        src = img.astype(np.float32)
        rows = np.einsum("hwkc,wk->hwc", src[:, xi, :], xw)
        out = np.einsum("hkwc,hk->hwc", rows[yi], yw).astype(img.dtype)
    return out[:, :, 0] if squeeze else out
