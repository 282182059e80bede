"""Evaluation throughput: 8 environments stepped together with one batched model call per step, against
one environment and one model call at a time (the seed's loop), on the same episodes in one run.

Setup: house VLN episodes (graph actions, views rendered by the house simulator), the tiny Qwen2.5-VL
in the `chat` format with the KV cache (constrained scoring), EPA pass on (so every episode has the
expert's length of policy calls). Both runs use the same harness, each with its envs warmed up by one
untimed pass: the sequential run keeps its one env in this process (the seed's loop), the batched run
gives each of its envs a process of its own (`--inline` keeps them here). Steps count both passes.
Prints episodes/s of each and the ratio (goal >= 3x), and checks that both runs chose the same actions
in every episode.

    .venv/bin/python bench/bench_eval.py [--episodes 24] [--size tiny] [--width 112 --height 84]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYGLET_HEADLESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--size", default="tiny", help="tiny model size (tiny | cpu-large)")
    ap.add_argument("--width", type=int, default=112)
    ap.add_argument("--height", type=int, default=84)
    ap.add_argument("--max-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--inline", action="store_true",
                    help="keep the envs in this process (default: one spawned process per env, as `navtune eval "
                         "--processes` runs them)")
    args = ap.parse_args()

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from navtune.agents.models.tiny import build_tiny_model
    from navtune.core.io import read_jsonl
    from navtune.envs.house.layout import generate_house
    from navtune.envs.house.navgraph import build_house_graph
    from navtune.evaluation import AgentSpec, EvalConfig, EvalTask, build_policy, evaluate, load_episodes
    from navtune.evaluation.pool import make_pool
    from navtune.envs.house.episodes.vln import house_vln_paths
    from navtune.tasks.r2r.data import connectivity_path, split_path, write_connectivity, write_r2r_split

    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    items, seed = [], 500
    while len(items) * 3 < args.episodes:
        house = generate_house(seed)
        graph, rooms = build_house_graph(house)
        write_connectivity(graph, connectivity_path(tmp / "vln", house.scene_id))
        for p in house_vln_paths(house, 2, np.random.default_rng([seed, 2]), path_id_start=seed * 1000,
                                 min_hops=2, max_hops=4, min_distance=4.0, graph_rooms=(graph, rooms)):
            items.append(p.to_r2r())
        seed += 1
    write_r2r_split(items, split_path(tmp / "vln", "bench"))
    task = EvalTask(backend="graph", data_dir=str(tmp / "vln"), split="bench", renderer="house", width=args.width,
                    height=args.height, max_steps=args.max_steps, limit=args.episodes)
    episodes = load_episodes(task)
    model, processor = build_tiny_model(tmp / "model", size=args.size, seed=0)
    spec = AgentSpec("vlm", model=str(tmp / "model"), format="chat", image_size=(args.width, args.height))
    policy = build_policy(spec, "graph", loaded=(model, processor))
    # the EPA pass (expert driving, the policy asked at every state) makes every episode at least the
    # expert's length, whatever the untrained model does
    cfg = dict(epa=True, progress=False)

    # The sequential run is the seed's loop: one env in this process, one forward per step. The batched run
    # steps `--envs` envs (in their own processes unless --inline) and makes one batched forward per step.
    # Each pool first runs every episode once untimed (GL contexts, houses, meshes, first forwards).
    runs = (("sequential (1 env in-process, 1 forward/step)", 1, False),
            (f"batched ({args.envs} envs{' in-process' if args.inline else ' in processes'}, 1 batched forward/step)",
             args.envs, not args.inline))
    results = {}
    for name, n, procs in runs:
        pool = make_pool(task, n, procs)
        try:
            evaluate(policy, task, episodes, tmp / f"warm_{n}.jsonl", EvalConfig(num_envs=n, **cfg), pool=pool)
            out = tmp / f"run_{n}.jsonl"
            t0 = time.perf_counter()
            evaluate(policy, task, episodes, out, EvalConfig(num_envs=n, **cfg), pool=pool)
            dt = time.perf_counter() - t0
        finally:
            pool.close()
        rows = read_jsonl(out)
        steps = sum(len(r["actions"]) + len(r["expert"]["actions"]) for r in rows)
        results[n] = (dt, rows)
        print(f"{name:60s} {len(rows)} episodes, {steps} steps in {dt:6.1f} s: "
              f"{len(rows) / dt:6.2f} episodes/s, {steps / dt:6.1f} steps/s")
    (t1, r1), (tn, rn) = results[1], results[args.envs]
    same = ({r["episode_id"]: (r["actions"], r["expert"]["policy_actions"]) for r in r1}
            == {r["episode_id"]: (r["actions"], r["expert"]["policy_actions"]) for r in rn})
    print(f"speed-up batched / sequential: {t1 / tn:.2f}x (goal >= 3x); same actions in every episode: {same}")


if __name__ == "__main__":
    main()
