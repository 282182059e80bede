"""ObjectNav metrics (habitat definitions) on hand-made trajectories."""
from __future__ import annotations

import math

import pytest

from navtune.metrics import objectnav_episode_metrics, walked_length

LINE = [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 0, 0)]
GEO = [4.5, 3.5, 2.5, 1.5, 0.5]


def test_straight_success():
    r = objectnav_episode_metrics(LINE, GEO, stop_called=True, success_distance=1.0)
    # walked 4 m, start geodesic 4.5: SPL = 4.5 / max(4.5, 4) = 1; soft = (1 - 0.5/4.5) * 1
    assert r == pytest.approx({"sr": 1, "spl": 1, "soft_spl": 1 - 0.5 / 4.5, "distance_to_goal": 0.5,
                               "path_length": 4, "steps": 4})


def test_no_stop_is_no_success_but_soft_spl_counts():
    r = objectnav_episode_metrics(LINE, GEO, stop_called=False)
    assert (r["sr"], r["spl"]) == (0.0, 0.0)
    assert r["soft_spl"] == pytest.approx(1 - 0.5 / 4.5)


def test_detour_and_far_stop():
    # out 3 m and back, then to the goal: 3 + 3 + 4 = 10 m walked, start geodesic 4 -> SPL 0.4
    pos = [(0, 0, 0), (0, 3, 0), (0, 0, 0), (4, 0, 0)]
    r = objectnav_episode_metrics(pos, [4.0, 5.0, 4.0, 0.2], stop_called=True)
    assert r["spl"] == pytest.approx(0.4) and r["soft_spl"] == pytest.approx(0.95 * 0.4)
    # stopping beyond the success distance, further than at the start: soft success clips at 0
    r = objectnav_episode_metrics(pos, [4.0, 5.0, 4.0, 6.0], stop_called=True)
    assert r == pytest.approx({"sr": 0, "spl": 0, "soft_spl": 0, "distance_to_goal": 6, "path_length": 10,
                               "steps": 3})


def test_turning_in_place_and_validation():
    assert walked_length([(1, 1, 0)] * 5) == 0.0
    r = objectnav_episode_metrics([(1, 1, 0)] * 3, [0.3] * 3, stop_called=True)
    assert (r["sr"], r["spl"], r["path_length"]) == (1.0, 1.0, 0.0)
    r = objectnav_episode_metrics([(0, 0, 0)], [math.inf], stop_called=True)
    assert (r["sr"], r["spl"], r["soft_spl"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="geodesic"):
        objectnav_episode_metrics(LINE, GEO[:2], stop_called=True)
