"""Episode sources for the env-driven collectors (expert, interactive, DAgger): each is a list of
(env episode payload, `EpisodeMeta`) plus a picklable env factory, so workers build their own env."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Callable

from navtune.data.format import EpisodeMeta


@dataclass
class EpisodeSource:
    """What to collect and in which env: `episodes` [(payload for env.reset, meta)], `env_factory()`,
    and the dataset_info fields describing it."""

    episodes: list[tuple[Any, EpisodeMeta]]
    env_factory: Callable[[], Any]
    info: dict[str, Any]


def _graph_env(data_dir: str, renderer_factory: Callable[[], Any] | None, max_steps: int, success_radius: float):
    from navtune.data.collectors.renderers import per_scan
    from navtune.envs.graph import GraphNavEnv

    renderer = None if renderer_factory is None else per_scan(renderer_factory())
    return GraphNavEnv.for_r2r(data_dir, renderer, max_steps=max_steps, success_radius=success_radius)


def r2r_source(
    data_dir: str | os.PathLike,
    split: str,
    renderer_factory: Callable[[], Any] | None = None,
    renderer_name: str | None = None,
    limit: int | None = None,
    max_steps: int = 50,
) -> EpisodeSource:
    """R2R-format episodes (real R2R or house VLN data) in the graph world (Left/Right/Move/Stop)."""
    from navtune.data.collectors.r2r import R2R_SUCCESS_RADIUS, r2r_meta
    from navtune.tasks.r2r import load_connectivity, load_r2r_split

    eps = load_r2r_split(data_dir, split)
    if limit is not None:
        eps = eps[:limit]
    out = [(e, r2r_meta(load_connectivity(data_dir, e.scan), e, i)) for i, e in enumerate(eps)]
    factory = functools.partial(_graph_env, str(data_dir), renderer_factory, max_steps, R2R_SUCCESS_RADIUS)
    info = {"task": "r2r", "action_space": "graph", "split": split, "data_dir": str(os.path.abspath(data_dir)),
            "renderer": renderer_name if renderer_factory is not None else None, "limit": limit,
            "max_steps": max_steps}
    return EpisodeSource(out, factory, info)
