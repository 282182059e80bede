"""R2R metrics on a small hand-made graph; every expected number is worked out in the comments."""
from __future__ import annotations

import math

import pytest

from navtune.graph import NavGraph
from navtune.metrics import average, collapse_repeats, dtw, vln_episode_metrics

# A - B - C - D - E along x, 2 m apart; F sits 3 m off C (a dead end). Reference A B C D, goal D, d(A, D) = 6.
G = NavGraph.from_edges(
    ["A", "B", "C", "D", "E", "F"],
    [(0, 0, 0), (2, 0, 0), (4, 0, 0), (6, 0, 0), (8, 0, 0), (4, 3, 0)],
    [("A", "B"), ("B", "C"), ("C", "D"), ("D", "E"), ("C", "F")],
)
REF = ["A", "B", "C", "D"]


def m(traj, ref=REF, **kw):
    return vln_episode_metrics(traj, ref, G.distance, G.edge_length, **kw)


def test_reference_path_scores_one():
    r = m(REF)
    assert r == pytest.approx({"pl": 6, "ne": 0, "osr": 1, "sr": 1, "spl": 1, "ndtw": 1, "sdtw": 1, "cls": 1, "steps": 3})


def test_stop_at_start():
    r = m(["A"])
    # DTW matches A with every reference node: 0 + 2 + 4 + 6 = 12 -> exp(-12 / (3 * 4)) = e^-1
    # coverage = (1 + e^-2/3 + e^-4/3 + e^-2) / 4; expected = 6 * coverage; LS = expected / (2 * expected) = 0.5
    cov = (1 + math.exp(-2 / 3) + math.exp(-4 / 3) + math.exp(-2)) / 4
    assert r == pytest.approx({"pl": 0, "ne": 6, "osr": 0, "sr": 0, "spl": 0, "ndtw": math.exp(-1), "sdtw": 0,
                               "cls": cov * 0.5, "steps": 0})


def test_truncated_path():
    r = m(["A", "B"])
    # DTW: A-A 0, B-B 0, B-C 2, B-D 4 -> 6 -> exp(-0.5); coverage (2 + e^-2/3 + e^-4/3) / 4, pl 2
    cov = (2 + math.exp(-2 / 3) + math.exp(-4 / 3)) / 4
    ls = 6 * cov / (6 * cov + abs(6 * cov - 2))
    assert r == pytest.approx({"pl": 2, "ne": 4, "osr": 0, "sr": 0, "spl": 0, "ndtw": math.exp(-0.5), "sdtw": 0,
                               "cls": cov * ls, "steps": 1})
    # stopping 2 m short is a success (< 3 m), and a path shorter than d(start, goal) still gets SPL 1
    r = m(["A", "B", "C"])
    assert (r["sr"], r["spl"], r["ne"], r["pl"]) == (1.0, 1.0, 2.0, 4.0)


def test_overshoot():
    r = m(["A", "B", "C", "D", "E"])
    # ends 2 m past the goal: success; SPL 6/8; DTW 2 (E matched with D) -> exp(-2/12); LS 6 / (6 + 2)
    assert r == pytest.approx({"pl": 8, "ne": 2, "osr": 1, "sr": 1, "spl": 0.75, "ndtw": math.exp(-1 / 6),
                               "sdtw": math.exp(-1 / 6), "cls": 0.75, "steps": 4})
    # 4 m past: failure, but the oracle (nearest point on the way) succeeded
    far = G.distance
    r = vln_episode_metrics(["A", "B", "C", "D", "E"], ["A", "B", "C"], far, G.edge_length)
    assert (r["sr"], r["osr"], r["ne"], r["spl"], r["sdtw"]) == (0.0, 1.0, 4.0, 0.0, 0.0)


def test_detour():
    r = m(["A", "B", "C", "F", "C", "D"])
    # pl 2+2+3+3+2 = 12; SPL 6/12; DTW 3 (F matched with C) -> exp(-3/12); coverage 1, LS 6 / (6 + 6)
    assert r == pytest.approx({"pl": 12, "ne": 0, "osr": 1, "sr": 1, "spl": 0.5, "ndtw": math.exp(-0.25),
                               "sdtw": math.exp(-0.25), "cls": 0.5, "steps": 5})


def test_repeated_turns_in_place_add_nothing():
    traj = ["A", "A", "A", "B", "B", "C", "C", "C", "D", "D"]
    r = m(traj)
    assert r == pytest.approx({"pl": 6, "ne": 0, "osr": 1, "sr": 1, "spl": 1, "ndtw": 1, "sdtw": 1, "cls": 1,
                               "steps": 9})
    assert collapse_repeats(traj) == REF
    # without collapsing, DTW would be unchanged (0) but the raw list is what `steps` counts
    assert dtw(traj, REF, G.distance) == 0


def test_spl_reference_variants():
    # P(0,0) Q(3,4) R(6,0): reference P Q R is 10 m long, the shortest P->R is the 6 m edge
    tri = NavGraph.from_edges(["P", "Q", "R"], [(0, 0, 0), (3, 4, 0), (6, 0, 0)], [("P", "Q"), ("Q", "R"), ("P", "R")])
    ref = ["P", "Q", "R"]
    follow = vln_episode_metrics(ref, ref, tri.distance, tri.edge_length)
    assert follow["spl"] == pytest.approx(0.6)
    follow_p = vln_episode_metrics(ref, ref, tri.distance, tri.edge_length, spl_reference="path")
    assert follow_p["spl"] == pytest.approx(1.0)
    direct_p = vln_episode_metrics(["P", "R"], ref, tri.distance, tri.edge_length, spl_reference="path")
    assert direct_p["spl"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="spl_reference"):
        vln_episode_metrics(ref, ref, tri.distance, spl_reference="longest")


def test_bad_input_and_average():
    with pytest.raises(ValueError, match="empty trajectory"):
        m([])
    with pytest.raises(ValueError, match="empty reference"):
        m(["A"], ref=[])
    rows = [m(REF), m(["A"])]
    avg = average(rows, ["sr", "pl"])
    assert avg == {"sr": 0.5, "pl": 3.0, "episodes": 2}
