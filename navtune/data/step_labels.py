"""Dense per-step labels from the simulator's knowledge, for auxiliary losses at training time only.

A policy is tested on its own observations; at training time the simulator also knows the scene's
navigation graph, so each recorded step can carry targets the action label does not spell out: where the
next node of the route lies relative to the agent's heading, in which directions the agent could move on
from its viewpoint. An auxiliary head on the model's decision state predicts them (`TrainConfig.aux_labels`;
`navtune.trainers.module`) and is thrown away after training.

Each label registers itself in `STEP_LABELS` with its size and kind ("class": one of `size` classes per
step; "multi": `size` independent yes/no targets per step) and computes an episode's targets from the
episode record and the scene's `NavGraph`. Graph episodes need each step's ``info["viewpoint"]`` (the
graph env's collectors record it); scenes are looked up by `scene_graph` (generated houses here).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from navtune.core.geometry import angle_diff, heading_to
from navtune.core.registry import Registry
from navtune.data.format import EpisodeRecord
from navtune.graph.navgraph import NavGraph

#: 30-degree bins of a relative bearing (the graph action space's turn): bin k covers k*30 +- 15 degrees,
#: clockwise (right) positive, k in 0..11
BEARING_BINS = 12


@dataclass(frozen=True)
class StepLabel:
    """One kind of per-step label: its name, how many classes / targets, and how to compute an episode's."""

    name: str
    size: int
    kind: str  # "class" (targets: (T,) int64 in [0, size)) | "multi" ((T, size) float 0/1)
    compute: Callable[[EpisodeRecord, NavGraph], np.ndarray]
    doc: str = ""

    def __call__(self, episode: EpisodeRecord) -> np.ndarray:
        graph = scene_graph(episode.scene)
        out = self.compute(episode, graph)
        want = (len(episode.steps),) if self.kind == "class" else (len(episode.steps), self.size)
        if out.shape != want:  # pragma: no cover - a label's own bug
            raise ValueError(f"step label {self.name!r}: shape {out.shape} for episode {episode.episode_id!r}, "
                             f"expected {want}")
        return out


STEP_LABELS: Registry = Registry("step label")


@functools.lru_cache(maxsize=64)
def scene_graph(scene: str) -> NavGraph:
    """The navigation graph of a scene the simulator can rebuild from its id (generated houses)."""
    from navtune.envs.house.layout import generate_house, seed_from_scene_id
    from navtune.envs.house.navgraph import build_house_graph

    try:
        seed = seed_from_scene_id(scene)
    except ValueError:
        raise ValueError(f"step labels need the scene's navigation graph; scene {scene!r} is not a generated "
                         "house (house_<seed>)") from None
    return build_house_graph(generate_house(seed))[0]


def bearing_bin(from_xy: np.ndarray, to_xy: np.ndarray, heading: float) -> int:
    """The 30-degree bin (0 ahead, 3 right, 6 behind, 9 left) of `to_xy` seen from `from_xy` facing `heading`."""
    rel = angle_diff(heading_to(float(to_xy[0] - from_xy[0]), float(to_xy[1] - from_xy[1])), heading)
    return int(round(math.degrees(rel) / 30.0)) % BEARING_BINS


def _viewpoints(episode: EpisodeRecord, graph: NavGraph) -> list[str]:
    out = []
    for s in episode.steps:
        v = s.info.get("viewpoint")
        if v is None or v not in graph.index:
            raise ValueError(f"episode {episode.episode_id!r} step {s.t}: step info has no viewpoint of graph "
                             f"{graph.name!r} (step labels need graph episodes recorded with their viewpoints)")
        out.append(str(v))
    return out


def _path_bearing(episode: EpisodeRecord, graph: NavGraph) -> np.ndarray:
    goal = episode.goal.get("viewpoint")
    if goal is None:
        raise ValueError(f"episode {episode.episode_id!r}: goal has no viewpoint")
    ref = list(episode.goal.get("path") or [])
    out = np.zeros(len(episode.steps), dtype=np.int64)
    for i, (s, v) in enumerate(zip(episode.steps, _viewpoints(episode, graph))):
        if v == goal:
            out[i] = BEARING_BINS  # at the goal: stop
            continue
        k = ref.index(v) if v in ref else -1
        nxt = ref[k + 1] if 0 <= k < len(ref) - 1 else graph.shortest_path(v, goal)[1]
        out[i] = bearing_bin(graph.position(v)[:2], graph.position(nxt)[:2], float(s.pose["heading"]))
    return out


def _exits(episode: EpisodeRecord, graph: NavGraph) -> np.ndarray:
    out = np.zeros((len(episode.steps), BEARING_BINS), dtype=np.float32)
    for i, (s, v) in enumerate(zip(episode.steps, _viewpoints(episode, graph))):
        p = graph.position(v)[:2]
        for n in graph.neighbours(v):
            out[i, bearing_bin(p, graph.position(n)[:2], float(s.pose["heading"]))] = 1.0
    return out


STEP_LABELS.add("path-bearing", StepLabel(
    "path-bearing", BEARING_BINS + 1, "class", _path_bearing,
    "bearing of the route's next viewpoint relative to the heading (12 bins of 30 degrees), or 12 at the goal"))
STEP_LABELS.add("exits", StepLabel(
    "exits", BEARING_BINS, "multi", _exits,
    "the bearings (12 bins of 30 degrees) of every viewpoint one Move away from the agent's viewpoint"))


def step_label(name: str) -> StepLabel:
    return STEP_LABELS.get(name)
