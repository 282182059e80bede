"""N environments behind one call: `call_many({slot: (method, args)}) -> {slot: result}` on `EnvRunner`s.

`InlinePool` keeps the runners in this process (fast for graph envs without frames). `ProcessPool` gives
each runner its own process, started with *spawn*: forking after a GL simulator was imported deadlocks,
and MiniWorld keeps its static geometry per process, so one env per process renders correctly. Commands
to all slots are sent first and answers collected after, so the workers step in parallel while the main
process waits once.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from typing import Any

from navtune.core.registry import import_plugins
from navtune.evaluation.backends import EnvRunner, EvalTask


class EnvWorkerError(RuntimeError):
    """An env worker raised; the message carries the worker's traceback."""


class InlinePool:
    def __init__(self, task: EvalTask, n: int):
        self.runners = [EnvRunner(task) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.runners)

    def call_many(self, calls: dict[int, tuple[str, tuple]]) -> dict[int, Any]:
        return {i: getattr(self.runners[i], m)(*a) for i, (m, a) in calls.items()}

    def close(self) -> None:
        for r in self.runners:
            r.close()


def _serve(conn, task: dict, plugins: tuple = ()) -> None:
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    try:
        import_plugins(plugins)  # a plugin's backend / measures must exist in this process too
        runner = EnvRunner(task)
        conn.send(("ok", None))
    except BaseException:
        conn.send(("err", traceback.format_exc()))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            break
        if msg is None:
            break
        method, args = msg
        try:
            conn.send(("ok", getattr(runner, method)(*args)))
        except BaseException:
            conn.send(("err", traceback.format_exc()))
    runner.close()


class ProcessPool:
    def __init__(self, task: EvalTask, n: int):
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(child, task.to_dict(), import_plugins()), daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        for i in range(n):  # wait for every env to be built (clear error when one cannot start)
            self._answer(i)

    def __len__(self) -> int:
        return len(self.conns)

    def _answer(self, i: int) -> Any:
        try:
            status, value = self.conns[i].recv()
        except EOFError:
            raise EnvWorkerError(f"env worker {i} died (exit code {self.procs[i].exitcode})") from None
        if status != "ok":
            raise EnvWorkerError(f"env worker {i} failed:\n{value}")
        return value

    def call_many(self, calls: dict[int, tuple[str, tuple]]) -> dict[int, Any]:
        for i, msg in calls.items():
            self.conns[i].send(msg)
        return {i: self._answer(i) for i in calls}

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(None)
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
        for c in self.conns:
            c.close()


def make_pool(task: EvalTask, num_envs: int, processes: bool) -> InlinePool | ProcessPool:
    return ProcessPool(task, num_envs) if processes else InlinePool(task, num_envs)
