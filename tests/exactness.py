"""Helpers of the exactness tests (no tests here): two computation paths of the same maths, run in float64.

In float32 two such paths differ by rounding, and by how much depends on the kernels PyTorch picks for the
CPU (GEMM blocking, vectorised reductions), so a tolerance tuned on one machine fails on another. In
float64 the rounding of a tiny model's few thousand operations stays many orders of magnitude below
``REL`` (~4.5e6 float64 ulps), while a real difference between the paths (a wrong position, mask or
cache entry) is of the order of the values themselves. Tests using these carry ``@pytest.mark.exact``;
CI runs them a second time under ``ATEN_CPU_CAPABILITY=default`` (PyTorch's portable kernels).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

EPS64 = torch.finfo(torch.float64).eps
#: relative tolerance of float64 path comparisons: ~4.5e6 ulps, far above float64 rounding, far below any bug
REL = 1e-9


def _flat(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().reshape(-1).to(torch.float64)
    if isinstance(x, Sequence) and x and not isinstance(x[0], (int, float)):
        return torch.cat([_flat(v) for v in x])
    return torch.as_tensor(x, dtype=torch.float64).reshape(-1)


def rel_diff(a, b) -> float:
    """max |a - b| relative to the larger magnitude of a and b (tensors, floats, or lists of either)."""
    fa, fb = _flat(a), _flat(b)
    if fa.shape != fb.shape:
        raise AssertionError(f"shapes differ: {tuple(fa.shape)} vs {tuple(fb.shape)}")
    if fa.numel() == 0:
        return 0.0
    scale = float(torch.maximum(fa.abs().max(), fb.abs().max()))
    diff = float((fa - fb).abs().max())
    return diff / scale if scale > 0 else diff


def assert_close(a, b, rel: float = REL, what: str = "") -> None:
    """a equals b up to float64 rounding: max |a - b| <= rel * max(|a|, |b|)."""
    d = rel_diff(a, b)
    assert d <= rel, f"{what + ': ' if what else ''}relative difference {d:.3e} > {rel:.1e}"
