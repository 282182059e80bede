"""Parallel rollouts over generated houses: a process pool where each worker owns one `HouseNavEnv` (and so
its own GL context) for its whole life and only calls `reset(episode)` — MiniWorld's display lists are per
process and its `close()` leaks, so envs are neither shared nor recreated.

Workers start with ``spawn`` (default) or ``forkserver``: ``fork`` deadlocks once the parent has started
OpenGL. Each worker limits Mesa llvmpipe to `gl_threads` raster threads so that N workers use N cores.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import asdict
from typing import Any, Callable, Iterable, Sequence

from navtune.envs.house.env import HouseEnvConfig

_ENV = None  # the worker's env


def _init_worker(config: dict, gl_threads: int) -> None:
    global _ENV
    if gl_threads > 0:
        os.environ["LP_NUM_THREADS"] = str(gl_threads)
    from navtune.envs.house.env import HouseNavEnv

    _ENV = HouseNavEnv(HouseEnvConfig(**config))


def _call(job: tuple[Callable, Any]) -> Any:
    fn, item = job
    return fn(_ENV, item)


def _ready(_: Any) -> int:
    return os.getpid()


class HouseWorkerPool:
    """`map(fn, items)` runs ``fn(env, item)`` in worker processes (fn must be a module-level function)."""

    def __init__(self, workers: int = 2, config: HouseEnvConfig | None = None, start_method: str = "spawn",
                 gl_threads: int = 1):
        if start_method == "fork":
            raise ValueError("start_method 'fork' deadlocks once OpenGL is initialised; use 'spawn' or 'forkserver'")
        self.workers = workers
        ctx = mp.get_context(start_method)
        self._pool = ctx.Pool(workers, initializer=_init_worker,
                              initargs=(asdict(config or HouseEnvConfig()), gl_threads))

    def wait_ready(self) -> list[int]:
        """Block until every worker has built its env (for timing without start-up); returns worker pids."""
        return sorted(set(self._pool.map(_ready, range(self.workers * 4), chunksize=1)))

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable[Any], progress: bool = False,
            desc: str = "rollouts") -> list[Any]:
        jobs = [(fn, it) for it in items]
        results = self._pool.imap(_call, jobs, chunksize=1)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), desc=desc)
        return list(results)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> "HouseWorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def expert_rollout(env, episode) -> dict:
    """Run the A* expert on one episode; returns actions, poses, success and ObjectNav metrics."""
    obs = env.reset(episode)
    actions: list[str] = []
    while True:
        a = env.expert_action()
        r = env.step(a)
        actions.append(a)
        if r.done:
            break
    return {
        "episode_id": obs.info["episode_id"],
        "actions": actions,
        "success": bool(r.info["success"]),
        "metrics": env.metrics(),
        "positions": [list(p) for p in env.positions],
    }


def run_expert(episodes: Sequence, workers: int = 2, config: HouseEnvConfig | None = None,
               progress: bool = False) -> list[dict]:
    """Expert rollouts of `episodes` across `workers` processes (in-process when workers <= 1)."""
    if workers <= 1:
        from navtune.envs.house.env import HouseNavEnv

        env = HouseNavEnv(config or HouseEnvConfig())
        try:
            return [expert_rollout(env, e) for e in episodes]
        finally:
            env.close()
    with HouseWorkerPool(workers, config) as pool:
        return pool.map(expert_rollout, episodes, progress=progress, desc="expert rollouts")
