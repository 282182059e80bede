"""The shortest-path expert on generated house episodes, RGB-D, in parallel worker processes.

* ObjectNav (continuous actions: move_forward / turn_left / turn_right / stop) in `HouseNavEnv`, from an
  ObjectNav episode file (or a folder of them).
* VLN (graph actions: Left / Right / Move / Stop) in the graph world over a house's navigation graph, from
  an R2R-format folder (``R2R_<split>.json`` + ``connectivity/``) with frames from the house renderer.

Each worker process builds one env and keeps it (MiniWorld leaks per env and a GL context cannot cross
processes); jobs are grouped by house so a worker loads each house once. The main process commits.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from navtune.data.collectors.common import (
    CollectSummary,
    SkippedEpisode,
    factory_key,
    plan,
    record_env_episode,
    run_jobs,
)
from navtune.data.collectors.episodes import EpisodeSource
from navtune.data.format import EpisodeMeta, PendingEpisode
from navtune.data.rewards import RewardConfig

#: HouseNavEnv reports the geodesic distance to the *success region* (0 exactly on success), so success is
#: "stop with distance below this" (the episode's success_distance is already inside the region).
REGION_SUCCESS_RADIUS = 1e-3

_WORKER: dict[str, Any] = {}


# ------------------------------------------------------------------------------------------ sources
def _house_env(width: int, height: int, depth: bool):
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv

    return HouseNavEnv(HouseEnvConfig(width=width, height=height, rgb=True, depth=depth))


def _objectnav_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and p.name != "dataset_info.json")
        if not files:
            raise FileNotFoundError(f"{path}: no ObjectNav episode files (*.json, *.jsonl)")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such episode file or folder")
    return [path]


def objectnav_meta(ep: Any, order: int) -> EpisodeMeta:
    return EpisodeMeta(
        episode_id=ep.episode_id,
        task="objectnav",
        action_space="continuous",
        scene=ep.scene_id,
        instruction=ep.instruction,
        target=ep.object_category,
        start={"x": ep.start_position[0], "y": ep.start_position[1], "z": ep.start_position[2],
               "heading": ep.start_heading},
        goal={"category": ep.object_category, "success_distance": ep.success_distance,
              "geodesic_distance": ep.geodesic_distance,
              "instances": [{"position": list(g.position), "radius": g.radius, "object_id": g.object_id}
                            for g in ep.goals]},
        success_radius=REGION_SUCCESS_RADIUS,
        order=order,
    )


def objectnav_source(path: str | os.PathLike, width: int = 320, height: int = 240, depth: bool = True,
                     limit: int | None = None) -> EpisodeSource:
    """ObjectNav episodes of a file or folder in the house env (continuous actions)."""
    from navtune.tasks.objectnav import read_episodes

    path = Path(path)
    eps = [e for f in _objectnav_files(path) for e in read_episodes(f)]
    seen: dict[str, int] = {}
    for e in eps:
        seen[e.episode_id] = seen.get(e.episode_id, 0) + 1
    dup = [k for k, v in seen.items() if v > 1]
    if dup:
        raise ValueError(f"{path}: episode ids repeat across files, e.g. {dup[0]!r}")
    if limit is not None:
        eps = eps[:limit]
    max_steps = max((e.max_steps for e in eps), default=500)
    info = {"task": "objectnav", "action_space": "continuous", "episodes": str(path.resolve()), "limit": limit,
            "width": width, "height": height, "depth": depth, "max_steps": max_steps}
    return EpisodeSource([(e, objectnav_meta(e, i)) for i, e in enumerate(eps)],
                         functools.partial(_house_env, width, height, depth), info)


def vln_source(data_dir: str | os.PathLike, split: str, width: int = 320, height: int = 240, depth: bool = True,
               limit: int | None = None, max_steps: int = 50, renderer: str = "house") -> EpisodeSource:
    """R2R-format VLN episodes (house graphs) in the graph world with frames from the house renderer."""
    from navtune.data.collectors.episodes import r2r_source
    from navtune.data.collectors.renderers import renderer_factory

    factory = renderer_factory(renderer, data_dir=data_dir, width=width, height=height, depth=depth)
    src = r2r_source(data_dir, split, factory, renderer, limit=limit, max_steps=max_steps)
    for _, meta in src.episodes:
        meta.task = "vln"
        meta.source = "expert"
    src.info.update(task="vln", width=width, height=height, depth=depth and factory is not None)
    return src


# ------------------------------------------------------------------------------------------ workers
def _init_worker(root: str, env_factory: Callable[[], Any], reward: dict, max_steps: int, depth: bool) -> None:
    """Build (or keep) this process's env: an env is reused by later runs in the same process with the same
    factory (building a MiniWorld env costs seconds and leaks memory)."""
    key = factory_key(env_factory)
    if _WORKER.get("env_key") != key:
        old = _WORKER.pop("env", None)
        if old is not None:
            old.close()
        _WORKER["env"] = env_factory()
        _WORKER["env_key"] = key
    _WORKER.update(root=root, reward=RewardConfig.from_dict(reward), max_steps=max_steps, depth=depth)


def _scene_job(job: tuple[str, list[tuple[Any, EpisodeMeta]]]) -> Iterator[PendingEpisode | SkippedEpisode]:
    from navtune.data.format import EpisodeBuilder
    from navtune.graph.expert import GoalUnreachable

    _, items = job
    env = _WORKER["env"]
    for payload, meta in items:
        b = EpisodeBuilder(_WORKER["root"], meta, _WORKER["reward"])
        try:
            limit = min(_WORKER["max_steps"], getattr(payload, "max_steps", None) or _WORKER["max_steps"])
            pending = record_env_episode(env, payload, b, max_steps=limit, depth=_WORKER["depth"])
        except GoalUnreachable as e:  # graph worlds: a goal Left/Right/Move cannot reach
            b.abort()
            yield SkippedEpisode(meta.episode_id, str(e))
            continue
        except BaseException:
            b.abort()
            raise
        yield pending


def collect_expert(
    source: EpisodeSource,
    out: str | os.PathLike,
    workers: int = 1,
    reward: RewardConfig = RewardConfig(),
    max_steps: int | None = None,
    depth: bool = True,
    progress: bool = True,
) -> CollectSummary:
    """Run the env's expert on every episode of `source` and write the dataset (resumable)."""
    from navtune.data.format import DatasetWriter

    max_steps = max_steps or int(source.info.get("max_steps") or 500)
    info = {**source.info, "source": "expert", "reward": reward.to_dict(), "max_steps": max_steps}
    writer = DatasetWriter(out, info)
    summary = CollectSummary(out=str(out))
    left = plan(writer, [m.episode_id for _, m in source.episodes], summary)
    by_scene: dict[str, list[tuple[Any, EpisodeMeta]]] = {}
    for payload, meta in source.episodes:
        if meta.episode_id in left:
            by_scene.setdefault(meta.scene, []).append((payload, meta))
    jobs: Sequence = list(by_scene.items())
    return run_jobs(
        writer, jobs, work=_scene_job, summary=summary, workers=workers, init=_init_worker,
        init_args=(str(writer.root), source.env_factory, reward.to_dict(), max_steps, depth),
        desc=f"expert {info['task']}", progress=progress,
    )
