"""A navigation graph: viewpoints with 3D positions and undirected edges weighted by Euclidean length.

The same class holds an R2R/Matterport3D connectivity graph and a graph built over a generated house, so
low-level navigation, the expert and the metrics work on either. All-pairs shortest-path distances are
computed once per graph (scipy's Dijkstra) on first use, which keeps scoring thousands of episodes cheap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np


@dataclass(eq=False)
class NavGraph:
    """Viewpoints `ids` at `positions` (N, 3) metres, z up; `adjacency[i]` lists neighbour indices."""

    ids: list[str]
    positions: np.ndarray
    adjacency: list[list[int]]
    name: str = ""
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(len(self.ids), 3)
        self.index = {vid: i for i, vid in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise ValueError(f"graph {self.name!r}: duplicate viewpoint ids")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edges(
        cls,
        ids: Sequence[str],
        positions: np.ndarray | Sequence[Sequence[float]],
        edges: Iterable[tuple[str, str]],
        name: str = "",
    ) -> "NavGraph":
        """Build from viewpoint ids, their positions and undirected edges given as id pairs."""
        ids = list(ids)
        index = {vid: i for i, vid in enumerate(ids)}
        nbrs: list[set[int]] = [set() for _ in ids]
        for a, b in edges:
            if a not in index or b not in index:
                missing = a if a not in index else b
                raise ValueError(f"graph {name!r}: edge ({a}, {b}) names unknown viewpoint {missing!r}")
            i, j = index[a], index[b]
            if i == j:
                continue
            nbrs[i].add(j)
            nbrs[j].add(i)
        return cls(ids=ids, positions=np.asarray(positions, dtype=np.float64), adjacency=[sorted(s) for s in nbrs],
                   name=name)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.index

    def position(self, node_id: str) -> np.ndarray:
        return self.positions[self.index[node_id]]

    def neighbours(self, node_id: str) -> list[str]:
        """Adjacent viewpoints (in graph-file order)."""
        return [self.ids[j] for j in self.adjacency[self.index[node_id]]]

    def adjacent(self, a: str, b: str) -> bool:
        return self.index[b] in self._adjacent_sets[self.index[a]]

    @cached_property
    def _adjacent_sets(self) -> list[frozenset[int]]:
        return [frozenset(nb) for nb in self.adjacency]

    def edge_length(self, a: str, b: str) -> float:
        """3D Euclidean distance between two viewpoints (the edge weight when they are adjacent)."""
        p, q = self._position_rows[self.index[a]], self._position_rows[self.index[b]]
        return math.dist(p, q)

    @cached_property
    def _position_rows(self) -> list[tuple[float, float, float]]:
        return [tuple(map(float, p)) for p in self.positions]

    @property
    def num_edges(self) -> int:
        return sum(len(a) for a in self.adjacency) // 2

    def edges(self) -> list[tuple[str, str]]:
        return [(self.ids[i], self.ids[j]) for i, nb in enumerate(self.adjacency) for j in nb if i < j]

    def _csr(self):
        from scipy.sparse import csr_matrix

        rows, cols, w = [], [], []
        for i, nb in enumerate(self.adjacency):
            for j in nb:
                rows.append(i)
                cols.append(j)
                # a zero-length edge would vanish from a sparse matrix; keep it as a tiny positive weight
                w.append(max(float(np.linalg.norm(self.positions[i] - self.positions[j])), 1e-12))
        n = len(self.ids)
        return csr_matrix((w, (rows, cols)), shape=(n, n))

    @cached_property
    def _all_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        from scipy.sparse.csgraph import shortest_path

        dist, pred = shortest_path(self._csr(), method="D", directed=False, return_predecessors=True)
        return dist, pred

    @property
    def distances(self) -> np.ndarray:
        """(N, N) shortest-path lengths in metres (inf between disconnected viewpoints), computed once."""
        return self._all_pairs[0]

    def distance(self, a: str, b: str) -> float:
        """Shortest-path length over the graph between two viewpoints (inf if disconnected)."""
        return self._all_pairs[0].item(self.index[a], self.index[b])

    def shortest_path(self, a: str, b: str) -> list[str]:
        """Viewpoints of a shortest path a..b inclusive; raises ValueError if b is unreachable from a."""
        dist, pred = self._all_pairs
        i, j = self.index[a], self.index[b]
        if not np.isfinite(dist[i, j]):
            raise ValueError(f"graph {self.name!r}: {b!r} is not reachable from {a!r}")
        path = [j]
        while path[-1] != i:
            path.append(int(pred[i, path[-1]]))
        return [self.ids[k] for k in reversed(path)]

    def to_networkx(self):
        """An `nx.Graph` with node attribute `position` and edge attribute `weight` (metres)."""
        import networkx as nx

        g = nx.Graph(name=self.name)
        for vid, pos in zip(self.ids, self.positions):
            g.add_node(vid, position=pos.copy())
        for a, b in self.edges():
            g.add_edge(a, b, weight=self.edge_length(a, b))
        return g
