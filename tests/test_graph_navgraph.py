"""NavGraph: edges, all-pairs distances, shortest paths and the networkx export, on hand-made and real graphs."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from navtune.graph import NavGraph
from navtune.tasks.r2r import load_connectivity


def square() -> NavGraph:
    # a 3-4-5 right triangle plus a dangling node D and an isolated node Z
    ids = ["A", "B", "C", "D", "Z"]
    pos = [(0, 0, 0), (3, 0, 0), (3, 4, 0), (3, 4, 2), (50, 50, 0)]
    return NavGraph.from_edges(ids, pos, [("A", "B"), ("B", "C"), ("C", "D"), ("A", "C"), ("C", "A")], name="sq")


def test_edges_are_undirected_and_weighted_by_euclidean_length():
    g = square()
    assert g.num_edges == 4  # the duplicate A-C / C-A counts once
    assert sorted(g.neighbours("C")) == ["A", "B", "D"]
    assert g.adjacent("B", "A") and not g.adjacent("A", "D")
    assert g.edge_length("A", "C") == pytest.approx(5.0)
    assert g.distance("A", "D") == pytest.approx(7.0)  # A-C (5) + C-D (2), not A-B-C (7) + 2
    assert g.distance("A", "A") == 0.0
    assert math.isinf(g.distance("A", "Z"))


def test_shortest_path_and_unreachable():
    g = square()
    assert g.shortest_path("B", "D") == ["B", "C", "D"]
    assert g.shortest_path("A", "A") == ["A"]
    with pytest.raises(ValueError, match="not reachable"):
        g.shortest_path("A", "Z")


def test_unknown_edge_endpoint_is_named():
    with pytest.raises(ValueError, match="'Q'"):
        NavGraph.from_edges(["A"], [(0, 0, 0)], [("A", "Q")])


def test_networkx_export_matches_distances(r2r_data_dir):
    g = load_connectivity(r2r_data_dir, "zsNo4HB9uLZ")
    ng = g.to_networkx()
    assert ng.number_of_nodes() == len(g) and ng.number_of_edges() == g.num_edges
    src = g.ids[0]
    lengths = nx.single_source_dijkstra_path_length(ng, src, weight="weight")
    for vid in g.ids:
        expected = lengths.get(vid, math.inf)
        assert g.distance(src, vid) == pytest.approx(expected, abs=1e-9)
    # a shortest path's hop lengths add up to the distance
    far = max(lengths, key=lengths.get)
    p = g.shortest_path(src, far)
    assert sum(g.edge_length(a, b) for a, b in zip(p, p[1:])) == pytest.approx(g.distance(src, far))
    assert np.allclose(g.distances, g.distances.T)
