"""Embedded house simulator speed and memory, measured side by side in one run.

1. RSS over 500 resets, each in a house never seen before (so every per-process cache - houses, occupancy
   grids, experts, graphs, navigators, view renderers - fills up and must evict): (a) the ObjectNav env
   (`HouseNavEnv`), (b) the graph world over houses (`GraphNavEnv` + `HouseRenderers`, the house VLN path).
   Goal: the RSS plateaus: growth from reset 100 to reset 500 <= 10 MiB (the script exits 1 otherwise);
   `--tracemalloc` lists where Python memory grew in that interval. Also RSS per world created + closed.
2. RGB-D steps/s at 320x240 on one core (llvmpipe limited to one raster thread), same house and actions:
   - raw MiniWorld: stock observation path (float multisampled framebuffer) + `render_depth()` (second pass);
   - navtune world: the same MiniWorld env with navtune's 8-bit framebuffer, depth read from the same render;
   - navtune env: `HouseNavEnv.step` (world step + Observation, pose, geodesic distance, collision flag).
   Goals: >= 200 steps/s per core; wrapper overhead (navtune env vs navtune world) <= 20 %.
3. Throughput with 2 worker processes vs 1 (spawn, one env per process). Goal: >= 1.7x (needs 2 idle cores).

    .venv/bin/python bench/bench_house.py [--steps 600] [--resets 500] [--skip-parallel] [--memory-only]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("LP_NUM_THREADS", "1")  # per-core numbers; set before OpenGL starts

ACTIONS = ("move_forward", "move_forward", "turn_left", "move_forward", "turn_right", "move_forward")


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _episode(seed: int = 0):
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

    return next(iter(generate_objectnav_episodes([seed], per_house=1)))


def bench_single(steps: int) -> dict[str, float]:
    from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv
    from navtune.envs.house.world import HouseWorld

    ep = _episode(0)
    x, y, _ = ep.start_position
    raw = HouseWorld(seed=0, fast_render=False)
    core = HouseWorld(seed=0)
    env = HouseNavEnv(HouseEnvConfig())
    mw_act = {a: raw.actions[a] for a in ACTIONS}

    def run_raw() -> None:
        raw.set_pose(x, y, ep.start_heading)
        for k in range(steps):
            raw.step(mw_act[ACTIONS[k % len(ACTIONS)]])
            raw.render_depth()

    def run_core() -> None:
        core.set_pose(x, y, ep.start_heading)
        for k in range(steps):
            core.step(mw_act[ACTIONS[k % len(ACTIONS)]])
            assert core.last_depth is not None

    def run_env() -> None:
        env.reset(ep)
        for k in range(steps):
            r = env.step(ACTIONS[k % len(ACTIONS)])
            assert r.observation.rgb is not None and r.observation.depth is not None
            if r.done:
                env.reset(ep)

    rates: dict[str, list[float]] = {"raw": [], "core": [], "env": []}
    for _ in range(5):  # interleaved rounds: load changes on a shared machine hit all three alike
        for name, fn in (("raw", run_raw), ("core", run_core), ("env", run_env)):
            t = time.perf_counter()
            fn()
            rates[name].append(steps / (time.perf_counter() - t))
    for w in (raw, core):
        w.close()
    env.close()
    out = {k: max(v) for k, v in rates.items()}
    # per-round ratio, median: robust to load changes between rounds on a shared machine
    out["overhead"] = float(sorted(1 - e / c for e, c in zip(rates["env"], rates["core"]))[2])
    return out


def _render_steps(env, n: int) -> float:
    """Worker job: n RGB-D steps in the worker's env; returns its busy seconds."""
    env.reset(_episode(0))
    t = time.perf_counter()
    for k in range(n):
        r = env.step(ACTIONS[k % len(ACTIONS)])
        if r.done:
            env.reset(_episode(0))
    return time.perf_counter() - t


def bench_parallel(steps: int, jobs: int = 4) -> dict[str, float]:
    import functools

    from navtune.envs.house.parallel import HouseWorkerPool

    out = {}
    for workers in (1, 2):
        with HouseWorkerPool(workers) as pool:
            t = time.perf_counter()
            pool.wait_ready()
            startup = time.perf_counter() - t
            pool.map(functools.partial(_call_render, n=20), range(workers))  # warm-up
            t = time.perf_counter()
            pool.map(functools.partial(_call_render, n=steps), range(jobs))
            wall = time.perf_counter() - t
        out[f"{workers}w_steps_per_s"] = jobs * steps / wall
        out[f"{workers}w_startup_s"] = startup
    out["speedup"] = out["2w_steps_per_s"] / out["1w_steps_per_s"]
    return out


def _call_render(env, _item, n: int) -> float:
    return _render_steps(env, n)


#: the bound on RSS growth from reset 100 to the last reset (MiB)
MAX_GROWTH_MIB = 10.0


def _marks(resets: int, reset, trace: bool = False) -> list[tuple[int, float]]:
    """RSS after reset 1, 100, 200, ...; with `trace`, the top Python allocation growth from reset 100 on."""
    import gc
    import tracemalloc

    marks, snap = [], None
    t = time.perf_counter()
    for k in range(resets):
        reset(k)
        if k == 0 or (k + 1) % 100 == 0:
            gc.collect()
            marks.append((k + 1, rss_mib()))
            if trace and k + 1 == 100:
                tracemalloc.start(10)
                snap = tracemalloc.take_snapshot()
    dt = time.perf_counter() - t
    print(f"  {resets} resets (each in a new house) in {dt:.1f} s, {1000 * dt / resets:.0f} ms each")
    if snap is not None:
        top = tracemalloc.take_snapshot().compare_to(snap, "traceback")[:5]
        tracemalloc.stop()
        for stat in top:
            print(f"    python heap {stat.size_diff / 2**20:+.2f} MiB  {stat.traceback.format()[-1].strip()}")
    return marks


def bench_resets(resets: int, trace: bool = False) -> list[tuple[int, float]]:
    """(a) the ObjectNav env, a new house every reset."""
    from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

    env = HouseNavEnv(HouseEnvConfig())

    def reset(k: int) -> None:
        env.reset(next(iter(generate_objectnav_episodes([k], per_house=1))))
        env.step("move_forward")

    try:
        return _marks(resets, reset, trace)
    finally:
        env.close()


def bench_graph_resets(resets: int, trace: bool = False) -> list[tuple[int, float]]:
    """(b) the graph world over houses (house VLN): graph, navigator, renderer and expert per new house."""
    from navtune.envs.house.renderer import house_graph, house_graph_env
    from navtune.tasks.r2r.data import R2REpisode

    env = house_graph_env(renderer=True, max_steps=None)

    def reset(k: int) -> None:
        scan = f"house_{k}"
        ids = house_graph(scan).ids
        env.reset(R2REpisode(f"{k}_0", k, scan, (ids[0], ids[-1]), 0.0, "go"))
        env.step(env.expert_action())

    try:
        return _marks(resets, reset, trace)
    finally:
        env._renderer.close()


def report_growth(name: str, marks: list[tuple[int, float]]) -> bool:
    for k, m in marks:
        print(f"  after {k:4d} resets: RSS {m:7.1f} MiB")
    if len(marks) < 3:
        return True
    growth = marks[-1][1] - marks[1][1]
    ok = growth <= MAX_GROWTH_MIB
    print(f"  {name}: growth from reset {marks[1][0]} to {marks[-1][0]}: {growth:+.1f} MiB   goal <= "
          f"{MAX_GROWTH_MIB:g} MiB  {'ok' if ok else 'FAIL'}")
    return ok


def bench_create_close(n: int = 5) -> tuple[float, float]:
    """RSS growth per world created and closed (navtune frees its GL objects and context; stock MiniWorld
    leaks ~37 MiB per env)."""
    import gc

    from navtune.envs.house.world import HouseWorld

    HouseWorld(seed=0).close()  # first one loads textures and meshes into the process caches
    gc.collect()
    before = rss_mib()
    for k in range(n):
        HouseWorld(seed=k).close()
    gc.collect()
    return before, (rss_mib() - before) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--resets", type=int, default=500)
    ap.add_argument("--skip-parallel", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--tracemalloc", action="store_true", help="show where Python memory grew after reset 100")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other work slows every number)")
    print(f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS')}")

    flat = True
    if not args.skip_memory:
        # the first ~100 houses still load textures and meshes into the per-process caches: the check starts there
        print(f"1a. RSS over {args.resets} ObjectNav env resets, each in a new house (run first, in a fresh process):")
        flat &= report_growth("ObjectNav env", bench_resets(args.resets, args.tracemalloc))
        print(f"1b. RSS over {args.resets} graph-world resets (house VLN: graph, navigator, renderer), new houses:")
        flat &= report_growth("graph world", bench_graph_resets(args.resets, args.tracemalloc))
        base, per_env = bench_create_close()
        print(f"  create + close a world (5 times): {per_env:+.1f} MiB RSS each")
    if args.memory_only:
        raise SystemExit(0 if flat else 1)

    print("2. RGB-D steps/s at 320x240, one core (best of 5 interleaved rounds):")
    r = bench_single(args.steps)
    print(f"  raw MiniWorld (stock framebuffer + render_depth): {r['raw']:7.1f} steps/s")
    print(f"  navtune world (one render, depth from its buffer): {r['core']:7.1f} steps/s")
    print(f"  navtune env (HouseNavEnv.step, full Observation):  {r['env']:7.1f} steps/s   goal >= 200")
    print(f"  navtune env vs raw MiniWorld: {r['env'] / r['raw']:.2f}x")
    print(f"  wrapper overhead (env vs world, median of per-round ratios): {100 * r['overhead']:.1f} %   goal <= 20 %")

    if not args.skip_parallel:
        print("3. parallel rollouts (spawn, one env per process, 4 jobs x", args.steps, "RGB-D steps):")
        p = bench_parallel(args.steps)
        print(f"  1 worker : {p['1w_steps_per_s']:7.1f} steps/s (start-up {p['1w_startup_s']:.1f} s)")
        print(f"  2 workers: {p['2w_steps_per_s']:7.1f} steps/s (start-up {p['2w_startup_s']:.1f} s)")
        print(f"  speed-up: {p['speedup']:.2f}x   goal >= 1.7x")
    if not flat:
        print("FAIL: RSS kept growing after reset 100 (see 1a / 1b)")
        raise SystemExit(1)


if __name__ == "__main__":
    main()

