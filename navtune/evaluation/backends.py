"""Episode sets and environments the harness can evaluate on, described by one picklable `EvalTask`.

Backends (registered below with `navtune.evaluation.registry.register_backend`; a plugin adds its own the
same way):
- ``graph``: R2R-format folders (the real R2R data, or a generated house's VLN episodes with its
  connectivity files) on `GraphNavEnv`, MatterSim low-level actions in the simulator setup `preset`
  (`navtune.tasks.r2r.setups`: ``r2r`` discretised views, ``seed1`` seed 1's continuous headings and
  camera); frames from an optional view renderer (``none`` | ``house`` | ``mp3d``, which uses the setup's
  camera). Task ``vln``, measure ``vln`` (the R2R scorer's functions), the setup's step budget (50; seed1 32).
- ``house-objectnav``: ObjectNav episode files on the house simulator's continuous env. Task ``objectnav``,
  measure ``objectnav-region``, each episode's own step budget.
- ``habitat-objectnav``: ObjectNav episodes (a navtune episode file from `navtune habitat convert-objectnav`, or
  a habitat ``.json.gz`` file holding episodes) on Habitat-Sim (`navtune.envs.habitat.make_habitat_env`,
  imported only when the env is built). Task ``objectnav``, measure ``objectnav``.

`make_env` builds a backend's env inside a `TimeLimit` (the one place the step budget is applied).
`EnvRunner` is what lives next to one env (in the main process or in a worker process): reset / step /
expert action / the episode's measures. Everything crossing a process boundary is plain data.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Generic, Sequence, TypeVar

from navtune.core.config import option
from navtune.data.collectors.renderers import RENDERERS
from navtune.envs.protocol import NavEnv, Observation, StepResult
from navtune.envs.wrappers import TimeLimit
from navtune.evaluation import measures as _measures  # noqa: F401  (registers the built-in measures)
from navtune.evaluation.registry import (  # noqa: F401  (BACKENDS: the backend registry, re-exported)
    BACKENDS,
    MEASURES,
    EpisodeTrace,
    MeasureContext,
    backend_spec,
    register_backend,
    register_task,
)

E = TypeVar("E")
DEFAULT_FRAME_SIZE = (320, 240)
#: Optional file beside an R2R-format folder's splits: the episode set's own task settings ({"max_steps": N,
#: "success_radius": metres}), the defaults `navtune eval` uses for it when no flag sets them (a generated
#: house set carries the step budget it was made for, so a bare `navtune eval` reproduces the demo).
EPISODE_SET_FILE = "navtune_episodes.json"


@dataclass(frozen=True)
class EvalTask:
    """Which episodes, on which backend, with which env settings (saved in run.json; must match on resume)."""

    backend: str = option("graph", help="graph (R2R-format folder: R2R or house VLN) | house-objectnav | "
                          "habitat-objectnav | a --plugin's.")
    data_dir: str | None = option(None, help="graph: R2R-format folder (connectivity/ + R2R_<split>.json).")
    split: str | None = option(None, help="graph: split name (reads R2R_<split>.json).")
    episodes: str | None = option(None, help="*-objectnav: ObjectNav episode file (JSON / JSONL; "
                                  "habitat-objectnav also .json.gz).")
    renderer: str = option("none", help="graph frames: none | house | mp3d.")
    skybox_dir: str | None = option(None, help="mp3d renderer: Matterport3D skyboxes.")
    width: int | None = option(None, help="rendered frame width (default: the agent's trained frame size from its "
                               "navtune_agent.json, else 320)")
    height: int | None = option(None, help="rendered frame height (default: the agent's, else 240)")
    depth: bool = option(False, flag="--depth/--no-depth", help="render depth too (the VLM policies use RGB only).")
    max_steps: int | None = option(None, help="Step budget (default: the backend's: graph 50, ObjectNav the "
                                   "episode's).")
    success_radius: float | None = option(None, help="success radius in metres (default: the task's: VLN 3, "
                                          "ObjectNav the episode's).")
    limit: int | None = option(None, help="Only the first N episodes of the set (in file order).")
    scenes_dir: str | None = option(None, help="habitat-objectnav: folder the episodes' scene_id paths are "
                                    "relative to.")
    scene_dataset_config: str | None = option(None, help="habitat-objectnav: scene dataset config (relative to "
                                              "--scenes-dir or absolute).")
    preset: str | None = option(None, help="graph: simulator setup, r2r (discretised views; default) | seed1 (seed "
                                "1's: continuous headings, VFOV 105°, 640x480->320x240 Lanczos, 32 steps). "
                                "docs/r2r.md.")
    metrics: tuple[str, ...] = option((), flag="--metric", cli_type=list[str], cli_default=[], to_field=tuple,
                                      help="Also compute this registered measure per episode (repeat for several).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        spec = backend_spec(self.backend)
        if self.renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {self.renderer!r}; known: {', '.join(RENDERERS)}")
        if spec.validate is not None:
            spec.validate(self)
        if self.renderer == "mp3d" and not self.skybox_dir:
            raise ValueError("renderer 'mp3d' needs --skybox-dir (Matterport3D skybox images)")
        for m in self.metrics:
            if m not in MEASURES:
                raise ValueError(f"unknown metric {m!r}; known: {', '.join(MEASURES.keys())} "
                                 "(a plugin's metric needs --plugin MODULE)")

    @property
    def task(self) -> str:
        return backend_spec(self.backend).task

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) the envs render at: as set, else 320x240 (see `for_agent`)."""
        return (self.width or DEFAULT_FRAME_SIZE[0], self.height or DEFAULT_FRAME_SIZE[1])

    def for_agent(self, image_size: tuple[int, int] | None) -> "EvalTask":
        """This task with an unset frame size taken from the agent's (the size it was trained on, so that
        `navtune eval --model DIR` sees frames rendered as in training), else 320x240."""
        if self.width is not None and self.height is not None:
            return self
        w, h = image_size if image_size else DEFAULT_FRAME_SIZE
        return replace(self, width=self.width or int(w), height=self.height or int(h))

    @property
    def action_space(self) -> str:
        return backend_spec(self.backend).action_space

    @property
    def has_frames(self) -> bool:
        return backend_spec(self.backend).has_frames(self)

    @property
    def measures(self) -> tuple[str, ...]:
        """The measures of an episode: the backend's, then the extra `metrics` asked for."""
        own = backend_spec(self.backend).metrics
        return own + tuple(m for m in self.metrics if m not in own)

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["metrics"]:  # run folders written before extra metrics existed resume unchanged
            del d["metrics"]
        if d["preset"] is None:  # run folders written before presets existed resume unchanged
            del d["preset"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvalTask":
        return cls(**{k: (tuple(v) if k == "metrics" else v) for k, v in d.items()})


@dataclass(frozen=True)
class EvalEpisode(Generic[E]):
    """One episode of a set: stable id, scene (house / scan), its position in the set, and `payload`, the
    task's own episode (an `R2REpisode`, an `ObjectNavEpisode`, ...) that the env's reset takes."""

    episode_id: str
    scene: str
    order: int
    payload: E
    instruction: str | None = None
    reference: tuple = field(default=())  # VLN reference path (viewpoint ids)
    target: str | None = None  # ObjectNav category
    goals: tuple = field(default=())  # ObjectNav goal instances: ((x, y, z), radius, object_id)


def load_episodes(task: EvalTask) -> list[EvalEpisode]:
    """The task's episodes in file order (the first `limit`); ids must be unique plain names (they name the
    episode's frame folder in a run and its folder in a dataset: `navtune.core.paths.safe_name`), whatever
    backend (or plugin) read them."""
    from navtune.core.errors import NavtuneError
    from navtune.core.paths import safe_name

    out = backend_spec(task.backend).load_episodes(task)
    if task.limit is not None:
        out = out[: task.limit]
    ids = [e.episode_id for e in out]
    src = task.episodes or f"{task.data_dir}/R2R_{task.split}.json"
    for eid in ids:
        safe_name(eid, src, "episode_id")
    if len(set(ids)) != len(ids):
        raise NavtuneError("episode ids are not unique", file=src, field="episode_id")
    return out


def shard(episodes: Sequence[EvalEpisode], num_shards: int, shard_id: int) -> list[EvalEpisode]:
    """Episodes of shard `shard_id` of `num_shards`: every num_shards-th of the set, by position (stable)."""
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_id < num_shards (got {shard_id} of {num_shards})")
    return [e for e in episodes if e.order % num_shards == shard_id]


# ------------------------------------------------------------------------------------------------ envs
def make_env(task: EvalTask) -> NavEnv:
    """Build the task's env inside its step budget (`TimeLimit`); call inside the process that will step it:
    GL contexts do not cross processes."""
    spec = backend_spec(task.backend)
    return TimeLimit(spec.make_env(task), spec.budget(task))


def _make_env_with_plugins(plugins: tuple, task: EvalTask) -> NavEnv:
    from navtune.core.registry import import_plugins

    import_plugins(plugins)  # a spawned collector worker needs the plugin's backend too
    return make_env(task)


def dataset_meta(task: EvalTask, ep: EvalEpisode, source: str = "expert"):
    """How a roll-out of `ep` is described in a navtune dataset: the backend's `dataset_meta`, else an
    `EpisodeMeta` from the EvalEpisode's own fields."""
    from navtune.data.format import EpisodeMeta

    spec = backend_spec(task.backend)
    if spec.dataset_meta is not None:
        return spec.dataset_meta(task, ep, source)
    return EpisodeMeta(episode_id=ep.episode_id, task=task.task, action_space=task.action_space, scene=ep.scene,
                       instruction=ep.instruction, target=ep.target, order=ep.order, source=source)


def backend_source(task: EvalTask):
    """A registered backend's episodes as a collector `EpisodeSource` (expert / interactive / DAgger
    collection with `navtune collect ... --backend`): env episodes, dataset metadata, a picklable env factory."""
    import functools

    from navtune.core.registry import import_plugins
    from navtune.data.collectors.episodes import EpisodeSource

    spec = backend_spec(task.backend)
    items = [(e.payload, dataset_meta(task, e)) for e in load_episodes(task)]
    budget = task.max_steps if task.max_steps is not None else spec.max_episode_steps
    info = {"task": spec.task, "action_space": spec.action_space, "backend": task.backend,
            "eval_task": task.to_dict(), "max_steps": budget if isinstance(budget, int) else None}
    return EpisodeSource(items, functools.partial(_make_env_with_plugins, import_plugins(), task), info)


class EnvRunner:
    """One env and the task's bookkeeping: what a harness slot (inline or in a worker process) calls."""

    def __init__(self, task: EvalTask | dict):
        self.task = task if isinstance(task, EvalTask) else EvalTask.from_dict(task)
        self.env = make_env(self.task)
        self.measures = [MEASURES.get(m) for m in self.task.measures]
        self.episode: EvalEpisode | None = None

    def _expert(self, want: bool) -> str | None:
        return self.env.expert_action() if want else None

    def reset(self, episode: EvalEpisode, want_expert: bool) -> tuple[Observation, str | None]:
        self.episode = episode
        obs = self.env.reset(episode.payload)
        return obs, self._expert(want_expert)

    def step(self, action: str, want_expert: bool) -> tuple[StepResult, str | None]:
        res = self.env.step(action)
        return res, (None if res.done else self._expert(want_expert))

    def metrics(self, trace: EpisodeTrace) -> dict[str, float]:
        """The measures of the episode just run (the backend's, then the task's extra ones)."""
        ctx = MeasureContext(self.env.unwrapped, self.task, self.episode, trace)
        out: dict[str, float] = {}
        for m in self.measures:
            out.update(m.compute(ctx))
        return out

    def close(self) -> None:
        self.env.close()


# ------------------------------------------------------------------------------------------------ built-ins
register_task("vln", title="Vision-and-language navigation", headline=("sr", "spl", "epa", "ndtw"), columns=(
    ("SR %", "sr", 100), ("SPL %", "spl", 100), ("nDTW %", "ndtw", 100), ("SDTW %", "sdtw", 100),
    ("CLS %", "cls", 100), ("OSR %", "osr", 100), ("NE m", "ne", 1), ("PL m", "pl", 1), ("EPA %", "epa", 100),
    ("valid %", "valid_action_pct", 1), ("steps", "steps", 1)))
register_task("objectnav", title="Object navigation", headline=("sr", "spl", "epa", "soft_spl"), columns=(
    ("SR %", "sr", 100), ("SPL %", "spl", 100), ("SoftSPL %", "soft_spl", 100),
    ("dist. to goal m", "distance_to_goal", 1), ("EPA %", "epa", 100), ("valid %", "valid_action_pct", 1),
    ("steps", "steps", 1)))


def _r2r_episodes(task: EvalTask) -> list[EvalEpisode]:
    from navtune.tasks.r2r import load_r2r_split

    eps = load_r2r_split(task.data_dir, task.split)
    return [EvalEpisode(e.instr_id, e.scan, k, e, e.instruction, tuple(e.path)) for k, e in enumerate(eps)]


def _graph_renderer(task: EvalTask):
    """scan -> view renderer for the task's `renderer` (None: a frameless graph world)."""
    if task.renderer == "none":
        return None
    from navtune.data.collectors.renderers import per_scan, renderer_factory

    os.environ.setdefault("PYGLET_HEADLESS", "1")
    from navtune.tasks.r2r.setups import get_setup

    camera = get_setup(task.preset).camera if task.preset else None  # else width x height
    return per_scan(renderer_factory(task.renderer, data_dir=task.data_dir, skybox_dir=task.skybox_dir,
                                     width=task.frame_size[0], height=task.frame_size[1], depth=task.depth,
                                     camera=camera)())


def _graph_env(task: EvalTask) -> NavEnv:
    from navtune.envs.graph import GraphNavEnv
    from navtune.tasks.r2r import load_connectivity
    from navtune.tasks.r2r.setups import get_setup

    def graph_for(scan: str):  # load_connectivity keeps a bounded per-process cache of graphs
        return load_connectivity(task.data_dir, scan)

    radius = task.success_radius if task.success_radius is not None else \
        episode_set_settings(task.data_dir).get("success_radius")
    kwargs: dict[str, Any] = {} if radius is None else {"success_radius": radius}
    return GraphNavEnv(graph_for, _graph_renderer(task), max_steps=None, navigator=get_setup(task.preset).navigator,
                       **kwargs)


def _r2r_dataset_meta(task: EvalTask, ep: EvalEpisode, source: str):
    from navtune.data.collectors.r2r import r2r_meta
    from navtune.tasks.r2r import load_connectivity

    p = ep.payload
    meta = r2r_meta(load_connectivity(task.data_dir, p.scan), p, ep.order, source=source)
    meta.task = "vln" if p.scan.startswith("house_") else "r2r"  # the collectors' names for the two datasets
    return meta


def _needs_r2r_folder(task: EvalTask) -> None:
    if not task.data_dir or not task.split:
        raise ValueError("backend 'graph' needs --data-dir (an R2R-format folder) and --split")
    if task.preset is not None:
        from navtune.tasks.r2r.setups import SETUPS

        if task.preset not in SETUPS:
            raise ValueError(f"unknown --preset {task.preset!r}; known: {', '.join(SETUPS.keys())}")


def episode_set_settings(data_dir: str | None) -> dict[str, float]:
    """The R2R-format folder's own task settings (EPISODE_SET_FILE; {} when it has none)."""
    from navtune.core.errors import NavtuneError, is_finite_number
    from navtune.core.io import read_json

    if not data_dir:
        return {}
    path = os.path.join(data_dir, EPISODE_SET_FILE)
    if not os.path.isfile(path):
        return {}
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise NavtuneError("expected a JSON object", file=path)
    out: dict[str, float] = {}
    for key, kind in (("max_steps", int), ("success_radius", float)):
        if key in raw:
            v = raw[key]
            if not is_finite_number(v) or v <= 0 or (kind is int and int(v) != v):
                raise NavtuneError(f"must be a positive {kind.__name__} (got {v!r})", file=path, field=key)
            out[key] = kind(v)
    return out


def write_episode_set_settings(data_dir: str | os.PathLike, max_steps: int, success_radius: float) -> None:
    from navtune.core.io import atomic_write_json

    atomic_write_json(os.path.join(data_dir, EPISODE_SET_FILE), {"max_steps": int(max_steps),
                                                                 "success_radius": float(success_radius)})


def _preset_budget(task: EvalTask) -> int | None:
    """The default budget of a graph task: its preset's, else the episode set's own, else None (50)."""
    from navtune.tasks.r2r.setups import get_setup

    if task.preset:
        return get_setup(task.preset).max_steps
    own = episode_set_settings(task.data_dir).get("max_steps")
    return int(own) if own is not None else None


register_backend("graph", entry_point=_graph_env, episodes=_r2r_episodes, task="vln", action_space="graph",
                 metrics=("vln",), max_episode_steps=50, validate=_needs_r2r_folder,
                 frames=lambda task: task.renderer != "none", dataset_meta=_r2r_dataset_meta,
                 task_budget=_preset_budget, description="R2R-format folder (R2R or house VLN) on the graph world")


def _objectnav_eval_episodes(eps: Sequence[Any]) -> list[EvalEpisode]:
    return [EvalEpisode(e.episode_id, e.scene_id, k, e, e.instruction, target=e.object_category,
                        goals=tuple((tuple(g.position), g.radius, g.object_id) for g in e.goals))
            for k, e in enumerate(eps)]


def _objectnav_episodes(task: EvalTask) -> list[EvalEpisode]:
    from navtune.tasks.objectnav import read_episodes

    return _objectnav_eval_episodes(read_episodes(task.episodes))


def _habitat_episodes(task: EvalTask) -> list[EvalEpisode]:
    if not str(task.episodes).endswith(".json.gz"):
        return _objectnav_episodes(task)
    from navtune.tasks.habitat_datasets import read_objectnav_file

    return _objectnav_eval_episodes(read_objectnav_file(task.episodes))  # habitat's own file (+ goals_by_category)


def _objectnav_dataset_meta(task: EvalTask, ep: EvalEpisode, source: str):
    from navtune.data.collectors.expert import objectnav_meta

    meta = objectnav_meta(ep.payload, ep.order)
    meta.source = source
    return meta


def _episode_budget(episode: Any) -> int:
    return int(episode.max_steps)


def _house_env(task: EvalTask) -> NavEnv:
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv

    return HouseNavEnv(HouseEnvConfig(width=task.frame_size[0], height=task.frame_size[1], depth=task.depth))


def _needs_objectnav_file(task: EvalTask) -> None:
    if not task.episodes:
        raise ValueError("backend 'house-objectnav' needs --episodes (an ObjectNav episode file)")


register_backend("house-objectnav", entry_point=_house_env, episodes=_objectnav_episodes, task="objectnav",
                 action_space="continuous", metrics=("objectnav-region",), max_episode_steps=_episode_budget,
                 validate=_needs_objectnav_file, dataset_meta=_objectnav_dataset_meta,
                 description="ObjectNav episode file on the house simulator")


def _habitat_env(task: EvalTask) -> NavEnv:  # lazy: habitat_sim is an optional (conda) extra
    from navtune.envs.habitat import make_habitat_env

    return make_habitat_env(scenes_dir=task.scenes_dir, scene_dataset_config=task.scene_dataset_config,
                            width=task.frame_size[0], height=task.frame_size[1], depth=True, max_steps=task.max_steps,
                            success_distance=task.success_radius)


def _needs_habitat_files(task: EvalTask) -> None:
    if not task.episodes or not task.scenes_dir:
        raise ValueError("backend 'habitat-objectnav' needs --episodes (an ObjectNav episode file, e.g. from "
                         "`navtune habitat convert-objectnav`, or a habitat .json.gz episode file) and "
                         "--scenes-dir (the folder the episodes' scene_id paths are relative to)")


register_backend("habitat-objectnav", entry_point=_habitat_env, episodes=_habitat_episodes, task="objectnav",
                 action_space="continuous", metrics=("objectnav",), max_episode_steps=_episode_budget,
                 validate=_needs_habitat_files, dataset_meta=_objectnav_dataset_meta,
                 description="ObjectNav episodes on Habitat-Sim")
