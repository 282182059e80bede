"""objectnav-json training cost: per-step samples one by one vs batched, and what labelling the answer costs.

One real expert episode in a generated house (A* expert, T ~ 35 steps, 112x112 random frames at the
expert's poses, grounded answers), the tiny model: one training pass (forward + backward of the episode's
loss, `NavTrainModule.episode_loss`) with `chunk_batch` 1 (the seed's loop: one forward per step) and
batched (the episode's independent steps padded into one forward), and with the answer text labelled on
every step, on a quarter of them or on none (the action alone). Rows alternate and repeat in one run, so
load on a shared machine hits them alike; it prints ms per step (wall and CPU) and the loss, which must not
depend on the batching::

    .venv/bin/python bench/bench_objectnav_training.py --repeats 3
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_episode(root: Path, seed: int = 3) -> str:
    from navtune.data.format import DatasetWriter, EpisodeMeta, StepData
    from navtune.envs.house.episodes.objectnav import house_objectnav_episodes
    from navtune.envs.house.expert import ContinuousExpert, simulate
    from navtune.envs.house.layout import generate_house

    house = generate_house(seed)
    ep = house_objectnav_episodes(house, 1, np.random.default_rng([seed, 1]))[0]
    expert = ContinuousExpert(house.grid(), house.objects_of(ep.object_category), ep.success_distance)
    x, y, _ = ep.start_position
    actions = expert.plan(x, y, ep.start_heading)
    poses = simulate(expert, x, y, ep.start_heading, actions)
    rng = np.random.default_rng(0)
    w = DatasetWriter(root, {"task": "objectnav", "action_space": "continuous", "width": 112, "height": 112})
    b = w.builder(EpisodeMeta(ep.episode_id, "objectnav", "continuous", ep.scene_id, instruction=ep.instruction,
                              target=ep.object_category, goal={"success_distance": ep.success_distance}), fsync=False)
    for (px, py, h), a in zip(poses, actions):
        b.add(StepData(a, {"x": px, "y": py, "z": 0.0, "heading": h},
                       rgb=rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), geodesic_distance=1.0,
                       allowed_actions=("move_forward", "turn_left", "turn_right", "stop"), expert_action=a))
    px, py, h = poses[-1]
    w.commit(b.finish({"x": px, "y": py, "z": 0.0, "heading": h}, 0.0))
    w.finalize()
    return str(root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from navtune.agents.models.tiny import build_tiny_model
    from navtune.trainers.config import TrainConfig
    from navtune.trainers.module import NavTrainModule
    from navtune.trainers.sources import dataset_source

    tmp = Path(tempfile.mkdtemp(prefix="bench_objnav_"))
    data = write_episode(tmp / "data")
    model, proc = build_tiny_model(tmp / "model", init_std=0.02)
    model.train()
    rows = [("one by one, action only", 1, 0.0), ("batched, action only", 64, 0.0),
            ("one by one, 1/4 answers", 1, 0.25), ("batched, 1/4 answers", 64, 0.25),
            ("one by one, all answers", 1, 1.0), ("batched, all answers", 64, 1.0)]
    times: dict[str, list[tuple[float, float]]] = {r[0]: [] for r in rows}
    losses: dict[str, float] = {}
    T = 0
    for _ in range(args.repeats):
        for name, size, frac in rows:
            cfg = TrainConfig(model=str(tmp / "model"), format="objectnav-json", image_size=(112, 112),
                              answer="grounded", text_fraction=frac, chunk_batch=size, freeze_vision=False)
            ep = dataset_source(cfg, proc, data)[0]
            T = ep.num_actions
            module = NavTrainModule(model, cfg, total_steps=10)
            module.manual_backward = lambda loss: loss.backward()
            model.zero_grad()
            w0, c0 = time.perf_counter(), time.process_time()
            stats = module.episode_loss(ep, backward_scale=1.0)
            times[name].append((time.perf_counter() - w0, time.process_time() - c0))
            losses[name] = stats["loss"]
    print(f"one objectnav-json episode, T = {T} steps, tiny model, 112x112, {args.threads} thread(s), "
          f"median of {args.repeats}")
    print("| samples | ms / step (wall) | ms / step (CPU) | speed-up | loss |")
    print("|---|---|---|---|---|")
    for name, size, frac in rows:
        wall = float(np.median([t[0] for t in times[name]])) / T * 1000
        cpu = float(np.median([t[1] for t in times[name]])) / T * 1000
        ref = name.replace("batched", "one by one")
        speed = float(np.median([t[0] for t in times[ref]])) / T * 1000 / wall
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {speed:.2f}x | {losses[name]:.6f} |")


if __name__ == "__main__":
    main()
