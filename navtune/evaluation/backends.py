"""Episode sets and environments the harness can evaluate on, described by one picklable `EvalTask`.

Backends:
- ``graph``: R2R-format folders (the real R2R data, or a generated house's VLN episodes with its
  connectivity files) on `GraphNavEnv`, MatterSim low-level actions; frames from an optional view
  renderer (``none`` | ``house`` | ``mp3d``). Metrics: navtune.metrics.vln (the R2R scorer's functions).
- ``house-objectnav``: ObjectNav episode files on the house simulator's continuous env. Metrics:
  navtune.metrics.objectnav.
- ``habitat-objectnav``: ObjectNav episodes (a navtune episode file from `navtune habitat convert-objectnav`, or
  a habitat ``.json.gz`` file holding episodes) on Habitat-Sim (`navtune.envs.habitat.make_habitat_env`,
  imported only when the env is built). Metrics: navtune.metrics.objectnav.

`EnvRunner` is what lives next to one env (in the main process or in a worker process): reset / step /
expert action / the task's episode metrics. Everything crossing a process boundary is plain data.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from navtune.data.collectors.renderers import RENDERERS
from navtune.envs.protocol import NavEnv, Observation, StepResult

BACKENDS = ("graph", "house-objectnav", "habitat-objectnav")


@dataclass(frozen=True)
class EvalTask:
    """Which episodes, on which backend, with which env settings (saved in run.json; must match on resume)."""

    backend: str = "graph"
    data_dir: str | None = None  # graph: R2R-format folder (connectivity/ + R2R_<split>.json)
    split: str | None = None  # graph: split name
    episodes: str | None = None  # *-objectnav: episode file (JSON / JSONL; habitat-objectnav also .json.gz)
    renderer: str = "none"  # graph: none | house | mp3d
    skybox_dir: str | None = None  # graph + mp3d renderer
    width: int = 320
    height: int = 240
    depth: bool = False  # render depth too (the VLM policies use RGB only)
    max_steps: int | None = None  # None: the backend's own budget (graph 50, ObjectNav per episode)
    success_radius: float | None = None  # None: the task's (VLN 3 m, ObjectNav per episode)
    limit: int | None = None  # first N episodes of the set (in file order)
    scenes_dir: str | None = None  # habitat-objectnav: folder the episodes' scene_id paths are relative to
    scene_dataset_config: str | None = None  # habitat-objectnav: scene dataset config (relative to scenes_dir)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        if self.renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {self.renderer!r}; known: {', '.join(RENDERERS)}")
        if self.backend == "graph" and (not self.data_dir or not self.split):
            raise ValueError("backend 'graph' needs --data-dir (an R2R-format folder) and --split")
        if self.backend == "house-objectnav" and not self.episodes:
            raise ValueError("backend 'house-objectnav' needs --episodes (an ObjectNav episode file)")
        if self.backend == "habitat-objectnav" and (not self.episodes or not self.scenes_dir):
            raise ValueError("backend 'habitat-objectnav' needs --episodes (an ObjectNav episode file, e.g. from "
                             "`navtune habitat convert-objectnav`, or a habitat .json.gz episode file) and "
                             "--scenes-dir (the folder the episodes' scene_id paths are relative to)")
        if self.renderer == "mp3d" and not self.skybox_dir:
            raise ValueError("renderer 'mp3d' needs --skybox-dir (Matterport3D skybox images)")

    @property
    def task(self) -> str:
        return "vln" if self.backend == "graph" else "objectnav"

    @property
    def action_space(self) -> str:
        return "graph" if self.backend == "graph" else "continuous"

    @property
    def has_frames(self) -> bool:
        return self.backend != "graph" or self.renderer != "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EvalTask":
        return cls(**d)


@dataclass(frozen=True)
class EvalEpisode:
    """One episode of a set: stable id, scene (house / scan), its position in the set, and what the env's
    reset takes (an R2REpisode or an ObjectNavEpisode)."""

    episode_id: str
    scene: str
    order: int
    payload: Any
    instruction: str | None = None
    reference: tuple = field(default=())  # VLN reference path (viewpoint ids)
    target: str | None = None  # ObjectNav category
    goals: tuple = field(default=())  # ObjectNav goal instances: ((x, y, z), radius, object_id)


def load_episodes(task: EvalTask) -> list[EvalEpisode]:
    """The task's episodes in file order (the first `limit`); ids must be unique."""
    if task.backend == "graph":
        from navtune.tasks.r2r import load_r2r_split

        eps = load_r2r_split(task.data_dir, task.split)
        out = [EvalEpisode(e.instr_id, e.scan, k, e, e.instruction, tuple(e.path)) for k, e in enumerate(eps)]
    else:
        if task.backend == "habitat-objectnav" and str(task.episodes).endswith(".json.gz"):
            from navtune.tasks.habitat_datasets import read_objectnav_file

            eps = read_objectnav_file(task.episodes)  # habitat's own file (episodes + goals_by_category)
        else:
            from navtune.tasks.objectnav import read_episodes

            eps = read_episodes(task.episodes)
        out = [EvalEpisode(e.episode_id, e.scene_id, k, e, e.instruction, target=e.object_category,
                           goals=tuple((tuple(g.position), g.radius, g.object_id) for g in e.goals))
               for k, e in enumerate(eps)]
    if task.limit is not None:
        out = out[: task.limit]
    ids = [e.episode_id for e in out]
    if len(set(ids)) != len(ids):
        src = task.episodes or f"{task.data_dir}/R2R_{task.split}.json"
        raise ValueError(f"{src}: episode ids are not unique")
    return out


def shard(episodes: Sequence[EvalEpisode], num_shards: int, shard_id: int) -> list[EvalEpisode]:
    """Episodes of shard `shard_id` of `num_shards`: every num_shards-th of the set, by position (stable)."""
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_id < num_shards (got {shard_id} of {num_shards})")
    return [e for e in episodes if e.order % num_shards == shard_id]


# ------------------------------------------------------------------------------------------------ envs
def _graph_renderer(task: EvalTask):
    """scan -> view renderer for the task's `renderer` (None: a frameless graph world)."""
    if task.renderer == "none":
        return None
    from navtune.data.collectors.renderers import per_scan, renderer_factory

    os.environ.setdefault("PYGLET_HEADLESS", "1")
    return per_scan(renderer_factory(task.renderer, data_dir=task.data_dir, skybox_dir=task.skybox_dir,
                                     width=task.width, height=task.height, depth=task.depth)())


def make_env(task: EvalTask) -> NavEnv:
    """Build the task's env (call inside the process that will step it: GL contexts do not cross processes)."""
    if task.backend == "graph":
        from navtune.envs.graph import DEFAULT_MAX_STEPS, GraphNavEnv
        from navtune.tasks.r2r import load_connectivity

        graphs: dict[str, Any] = {}

        def graph_for(scan: str):
            if scan not in graphs:
                graphs[scan] = load_connectivity(task.data_dir, scan)
            return graphs[scan]

        kwargs: dict[str, Any] = {"max_steps": task.max_steps or DEFAULT_MAX_STEPS}
        if task.success_radius is not None:
            kwargs["success_radius"] = task.success_radius
        return GraphNavEnv(graph_for, _graph_renderer(task), **kwargs)
    if task.backend == "habitat-objectnav":  # lazy: habitat_sim is an optional (conda) extra
        from navtune.envs.habitat import make_habitat_env

        return make_habitat_env(scenes_dir=task.scenes_dir, scene_dataset_config=task.scene_dataset_config,
                                width=task.width, height=task.height, depth=True, max_steps=task.max_steps,
                                success_distance=task.success_radius)
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv

    return HouseNavEnv(HouseEnvConfig(width=task.width, height=task.height, depth=task.depth))


class EnvRunner:
    """One env and the task's bookkeeping: what a harness slot (inline or in a worker process) calls."""

    def __init__(self, task: EvalTask | dict):
        self.task = task if isinstance(task, EvalTask) else EvalTask.from_dict(task)
        self.env = make_env(self.task)
        self.episode: Any = None
        self.steps = 0

    def _expert(self, want: bool) -> str | None:
        return self.env.expert_action() if want else None

    def reset(self, payload: Any, want_expert: bool) -> tuple[Observation, str | None]:
        self.episode = payload
        self.steps = 0
        obs = self.env.reset(payload)
        return obs, self._expert(want_expert)

    def step(self, action: str, want_expert: bool) -> tuple[StepResult, str | None]:
        res = self.env.step(action)
        self.steps += 1
        limit = self.task.max_steps
        if not res.done and limit is not None and self.steps >= limit:
            res.done = True
            res.info = {**res.info, "truncated": True}
        return res, (None if res.done else self._expert(want_expert))

    def metrics(self, viewpoints: Sequence[str], positions: Sequence[Sequence[float]],
                geodesics: Sequence[float | None], stopped: bool, steps: int) -> dict[str, float]:
        """The task's metrics of the episode just run: the env's own (`env.metrics()`, computed with
        navtune.metrics) when it has them, else from the recorded trajectory (VLN: the R2R scorer's functions)."""
        own = getattr(self.env, "metrics", None)
        if own is not None:
            return dict(own())
        if self.task.backend == "graph":
            from navtune.metrics.vln import vln_episode_metrics

            graph = self.env.graph
            radius = self.env.success_radius
            return vln_episode_metrics(list(viewpoints), list(self.episode.path), graph.distance, graph.edge_length,
                                       radius, "shortest", steps=steps)
        from navtune.metrics.objectnav import objectnav_episode_metrics

        ep = self.episode
        radius = self.task.success_radius or ep.success_distance
        geo = [math.inf if g is None else g for g in geodesics]
        return objectnav_episode_metrics(positions, geo, stopped, radius, steps=steps)

    def close(self) -> None:
        self.env.close()
