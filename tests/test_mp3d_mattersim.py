"""The MatterSim adapter against a stand-in `MatterSim` module (the real one is built from source)."""
from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

from navtune.envs.mattersim_adapter import MatterSimConfig, MatterSimUnavailable, MatterSimViews, import_mattersim


class _State:
    def __init__(self, h, w):
        self.rgb = np.zeros((h, w, 3), np.uint8)
        self.rgb[..., 0] = 10  # B
        self.rgb[..., 2] = 200  # R
        self.depth = np.full((h, w, 1), 8000, np.uint16)


class FakeSimulator:
    """Records the calls navtune makes; the batched (v0.2+) MatterSim API."""

    instances: list["FakeSimulator"] = []

    def __init__(self):
        self.calls: list[tuple] = []
        FakeSimulator.instances.append(self)

    def __getattr__(self, name):
        if name.startswith("set") or name in ("initialize",):
            return lambda *a: self.calls.append((name, *a))
        raise AttributeError(name)

    def setBatchSize(self, n):
        self.calls.append(("setBatchSize", n))

    def setCameraResolution(self, w, h):
        self.calls.append(("setCameraResolution", w, h))
        self.size = (h, w)

    def newEpisode(self, scans, vps, headings, elevations):
        assert all(isinstance(x, list) for x in (scans, vps, headings, elevations))
        self.calls.append(("newEpisode", scans, vps, headings, elevations))

    def getState(self):
        return [_State(*self.size)]


@pytest.fixture()
def fake_mattersim(monkeypatch):
    mod = types.ModuleType("MatterSim")
    mod.Simulator = FakeSimulator
    monkeypatch.setitem(sys.modules, "MatterSim", mod)
    FakeSimulator.instances.clear()
    return mod


def test_renderer_configures_mattersim_like_r2r(fake_mattersim, tmp_path):
    cfg = MatterSimConfig(str(tmp_path), str(tmp_path), depth=True)
    views = MatterSimViews(cfg)
    r = views.for_scan("scanA")
    assert views.for_scan("scanA") is r
    from navtune.envs.graph import ViewRenderer

    assert isinstance(r, ViewRenderer)
    sim = FakeSimulator.instances[0]
    names = dict((c[0], c[1:]) for c in sim.calls)
    assert names["setCameraResolution"] == (320, 240)
    assert names["setCameraVFOV"] == (pytest.approx(math.radians(60)),)
    assert names["setDiscretizedViewingAngles"] == (True,)
    assert names["setDatasetPath"] == (str(tmp_path),)
    assert "initialize" in names
    rgb, depth = r.render("vp1", math.radians(90), 0.0)
    assert sim.calls[-1] == ("newEpisode", ["scanA"], ["vp1"], [pytest.approx(math.pi / 2)], [0.0])
    assert rgb.shape == (240, 320, 3) and tuple(rgb[0, 0]) == (200, 0, 10)  # BGR -> RGB
    assert depth.shape == (240, 320) and depth[0, 0] == pytest.approx(2.0)
    views.render("scanB", "vp9", 0.0, math.radians(30))
    assert sim.calls[-1] == ("newEpisode", ["scanB"], ["vp9"], [0.0], [pytest.approx(math.radians(30))])
    assert len(FakeSimulator.instances) == 1  # one simulator for every scan


def test_missing_mattersim_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "MatterSim", None)  # import raises ImportError
    with pytest.raises(MatterSimUnavailable, match="Matterport3DSimulator"):
        import_mattersim()
