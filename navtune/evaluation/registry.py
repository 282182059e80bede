"""What can be evaluated, by name: tasks, backends and measures (gymnasium's `register` / `make`, habitat's
Measures). Adding one is one file that calls `register_*` (imported with `--plugin MODULE`); nothing else
in navtune branches on its name.

* A **task** (``vln``, ``objectnav``) says how results are shown: its title and report columns.
* A **backend** (``graph``, ``house-objectnav``, ``habitat-objectnav``) is a gymnasium-style entry:
  its episode loader, its env entry point, the task it runs, the action space, its measures and the
  default step budget (applied once, by the `TimeLimit` wrapper `make_env` puts around the env).
* A **measure** is a named unit computing some metrics of a finished episode (with the plain functions
  of `navtune.metrics`) from a `MeasureContext`: the env it ran in, the task settings, the episode and
  the trace the harness recorded.

Entry points may be callables or ``"module:attr"`` strings (imported when first used, so a backend's
simulator loads only when an env is built).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from navtune.core.registry import Registry

if TYPE_CHECKING:
    from navtune.envs.protocol import NavEnv
    from navtune.evaluation.backends import EvalEpisode, EvalTask


def load_entry_point(ref: Any) -> Any:
    """A callable given as itself or as ``"package.module:attribute"``."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    if not attr:
        raise ValueError(f"entry point {ref!r} must look like 'package.module:attribute'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


# ------------------------------------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class TaskSpec:
    """How a task's results are shown: report title, table columns (label, summary key, scale: 100 shows a
    fraction as a percentage) and the headline keys of its bar chart."""

    name: str
    title: str
    columns: tuple[tuple[str, str, float], ...]
    headline: tuple[str, ...] = ("sr", "spl", "epa")


TASKS: Registry[TaskSpec] = Registry("task")


def register_task(name: str, *, title: str, columns: Sequence[tuple[str, str, float]],
                  headline: Sequence[str] = ("sr", "spl", "epa")) -> TaskSpec:
    return TASKS.add(name, TaskSpec(name, title, tuple(tuple(c) for c in columns), tuple(headline)))  # type: ignore[misc]


def task_spec(name: str) -> TaskSpec:
    """The registered task, or a plain one (columns from its metric keys) for a task registered elsewhere."""
    if name in TASKS:
        return TASKS.get(name)
    return TaskSpec(name, name, tuple((k, k, 1.0) for k in task_metric_keys(name)))


# ------------------------------------------------------------------------------------------------ measures
@dataclass(frozen=True)
class EpisodeTrace:
    """What the harness recorded of one policy-pass episode (plain data: it crosses process boundaries)."""

    actions: tuple[str, ...]
    collided: tuple[bool, ...]
    positions: tuple[tuple[float, float, float], ...]  # start + after each action
    viewpoints: tuple[str | None, ...]  # graph worlds: the viewpoint of each position
    geodesics: tuple[float | None, ...]  # distance to the goal the env reported at each position
    stopped: bool

    @property
    def steps(self) -> int:
        return len(self.actions)


@dataclass(frozen=True)
class MeasureContext:
    """A finished episode as a measure sees it: the env (unwrapped: its own state, e.g. the graph), the task
    settings, the episode and the harness's trace."""

    env: Any
    task: "EvalTask"
    episode: "EvalEpisode"
    trace: EpisodeTrace


@dataclass(frozen=True)
class Measure:
    """A named metric unit: `compute(ctx)` returns some metrics of an episode; `keys` are the ones summaries
    average (in order; a measure may return more, e.g. counts another column already shows)."""

    name: str
    keys: tuple[str, ...]
    compute: Callable[[MeasureContext], dict[str, float]]


MEASURES: Registry[Measure] = Registry("measure")


def register_measure(name: str, keys: Sequence[str]) -> Callable[[Callable[[MeasureContext], dict[str, float]]], Measure]:
    """Decorator: `@register_measure("turns", keys=("turns",))` over `def turns(ctx) -> {"turns": ...}`."""

    def deco(fn: Callable[[MeasureContext], dict[str, float]]) -> Measure:
        return MEASURES.add(name, Measure(name, tuple(keys), fn))

    return deco


# ------------------------------------------------------------------------------------------------ backends
@dataclass(frozen=True)
class BackendSpec:
    """One evaluable episode set + env (gymnasium's EnvSpec): see `register_backend`."""

    id: str
    task: str
    action_space: str
    entry_point: Any  # (EvalTask) -> NavEnv, or "module:attr"; builds the env without a step budget
    episodes: Any  # (EvalTask) -> list[EvalEpisode], or "module:attr"; in file order
    max_episode_steps: int | Callable[[Any], int]  # the default budget: a number, or one per episode payload
    metrics: tuple[str, ...] = ()  # measure names
    validate: Callable[["EvalTask"], None] | None = None  # raise ValueError naming the missing option
    frames: bool | Callable[["EvalTask"], bool] = True  # whether observations carry rgb frames
    dataset_meta: Any = None  # (EvalTask, EvalEpisode, source) -> EpisodeMeta of a recorded roll-out (miner)
    description: str = ""
    task_budget: Callable[["EvalTask"], int | None] | None = None  # a default budget the task's settings decide


    def make_env(self, task: "EvalTask") -> "NavEnv":
        return load_entry_point(self.entry_point)(task)

    def load_episodes(self, task: "EvalTask") -> list["EvalEpisode"]:
        return list(load_entry_point(self.episodes)(task))

    def has_frames(self, task: "EvalTask") -> bool:
        return bool(self.frames(task)) if callable(self.frames) else bool(self.frames)

    def budget(self, task: "EvalTask") -> Callable[[Any], int]:
        """Step budget per episode payload: `task.max_steps` when set, else the backend's default."""
        if task.max_steps is not None:
            limit = int(task.max_steps)
            return lambda payload: limit
        own = self.task_budget(task) if self.task_budget is not None else None
        if own is not None:
            return lambda payload: int(own)
        m = self.max_episode_steps
        return m if callable(m) else (lambda payload: int(m))


BACKENDS: Registry[BackendSpec] = Registry("backend")


def register_backend(id: str, *, entry_point: Any, episodes: Any, task: str, action_space: str,
                     max_episode_steps: int | Callable[[Any], int], metrics: Sequence[str] = (),
                     validate: Callable[["EvalTask"], None] | None = None,
                     frames: bool | Callable[["EvalTask"], bool] = True, dataset_meta: Any = None,
                     description: str = "", task_budget: Callable[["EvalTask"], int | None] | None = None
                     ) -> BackendSpec:
    """Register a backend (gymnasium's `register(id, entry_point=...)`): `episodes(task)` loads its episode set
    as `EvalEpisode`s, `entry_point(task)` builds its env (no budget of its own needed), `task` names how
    results are shown, `metrics` the measures computed per episode, `max_episode_steps` the default budget,
    `dataset_meta` how the failure miner describes a roll-out in a dataset (default: from the EvalEpisode),
    `task_budget(task)` a default budget set by the task's own settings (e.g. a simulator preset) or None."""
    from navtune.core.actions import ACTION_SPACES

    if action_space not in ACTION_SPACES:
        raise ValueError(f"backend {id!r}: unknown action space {action_space!r}; known: {sorted(ACTION_SPACES)}")
    return BACKENDS.add(id, BackendSpec(id, task, action_space, entry_point, episodes, max_episode_steps,
                                        tuple(metrics), validate, frames, dataset_meta, description, task_budget))


def backend_spec(id: str) -> BackendSpec:
    """The registered backend `id` (a ValueError listing the known ones otherwise)."""
    try:
        return BACKENDS.get(id)
    except KeyError:
        raise ValueError(f"unknown backend {id!r}; known: {', '.join(BACKENDS.keys())} "
                         "(a plugin's backend needs --plugin MODULE)") from None


def task_metric_keys(task: str) -> tuple[str, ...]:
    """The summary keys of a task: its backends' measures' keys, in order (empty for an unknown task)."""
    keys: list[str] = []
    for spec in BACKENDS.values():
        if spec.task != task:
            continue
        for m in spec.metrics:
            if m in MEASURES:
                keys += [k for k in MEASURES.get(m).keys if k not in keys]
        break
    return tuple(keys)
