"""Whole-episode `chat` training vs per-step teacher forcing, side by side in one run.

For one T-step episode (320x240 frames, the real chat format and navtune.data's tokenisation) it times
one training pass (forward + backward of the per-action-mean NLL) two ways:

* packed: one forward over the whole episode, logits only at the T labelled positions;
* per-step: T forwards, step t seeing the prompt up to its action (what the seed's per-step teacher
  forcing does), each back-propagated (gradient accumulation over the episode's steps).

Both give the same loss (printed as |diff|) and the same gradient. It also times the seed's own format
(`r2r-lowlevel`, one prompt per step showing every earlier frame) with each frame encoded once per
episode by the frozen vision tower (navtune's trainer) against re-encoding every step's frames. Run::

    .venv/bin/python bench/bench_training.py                # tiny and cpu-large (hidden 512, 8 layers)
    .venv/bin/python bench/bench_training.py --sizes tiny --steps 20 --repeats 3
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_episode(root: Path, T: int, size: tuple[int, int], seed: int = 0) -> str:
    from navtune.core.actions import GRAPH_ACTIONS
    from navtune.data.format import DatasetWriter, EpisodeMeta, StepData

    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, {"task": "vln", "collector": "bench"})
    b = w.builder(EpisodeMeta(episode_id="bench", task="vln", action_space="graph", scene="h0",
                              instruction="Walk past the sofa and stop at the kitchen door."), fsync=False)
    for t in range(T):
        a = "Stop" if t == T - 1 else str(rng.choice(GRAPH_ACTIONS[:3]))
        b.add(StepData(action=a, pose={"x": 0.0, "y": float(t)}, allowed_actions=GRAPH_ACTIONS,
                       rgb=rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8),
                       geodesic_distance=float(T - t), info={"distance_traveled": 0.25 * t}))
    w.commit(b.finish(final_geodesic_distance=0.0))
    return str(root)


def train_pass(model, batch, cache_images: bool = False) -> float:
    """Forward + backward of the episode's per-action mean NLL, chunk by chunk; returns the loss."""
    from navtune.trainers import losses as L
    from navtune.trainers.module import forward_chunk

    T = batch.num_actions
    total = 0.0
    image_cache = {} if cache_images else None
    for chunk in batch.chunks:
        o = forward_chunk(model, chunk, image_cache)
        loss = -L.per_action(o.token_logp, o.action_of_token, o.n_actions, "mean").sum() / T
        loss.backward()
        total += float(loss.detach())
    return total


def timed(fn, repeats: int) -> tuple[float, float]:
    best, value = float("inf"), 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def bench_size(size: str, steps: int, repeats: int, frame: tuple[int, int], data_dir: str) -> dict:
    from navtune.agents.models.tiny import build_tiny_model
    from navtune.data.training import EpisodeSamples
    from navtune.trainers.batch import unpack_episode
    from navtune.trainers.freeze import freeze_vision
    from navtune.trainers.sources import DatasetEpisodes

    model, proc = build_tiny_model(None, size=size, seed=0)
    freeze_vision(model)
    model.train()
    episodes = DatasetEpisodes(EpisodeSamples(data_dir, proc, "chat", image_size=frame))
    packed = episodes[0]
    image_id = proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    per_step = unpack_episode(packed, image_id)
    n_tokens = packed.chunks[0].inputs["input_ids"].shape[1]
    step_tokens = sum(c.inputs["input_ids"].shape[1] for c in per_step.chunks)

    def run(batch):
        model.zero_grad(set_to_none=True)
        return train_pass(model, batch)

    run(packed)  # warm-up
    t_packed, l_packed = timed(lambda: run(packed), repeats)
    g_packed = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None and "layers.0.mlp" in n}
    t_step, l_step = timed(lambda: run(per_step), max(1, repeats // 2))
    g_step = {n: p.grad for n, p in model.named_parameters() if n in g_packed}
    gdiff = max(float((g_packed[n] - g_step[n]).abs().max()) for n in g_packed)

    # the seed's format: every step's prompt shows all earlier frames
    seed_ep = DatasetEpisodes(EpisodeSamples(data_dir, proc, "r2r-lowlevel", image_size=frame))[0]

    def run_seed(cache: bool):
        model.zero_grad(set_to_none=True)
        return train_pass(model, seed_ep, cache_images=cache)

    t_reenc, l_reenc = timed(lambda: run_seed(False), max(1, repeats // 2))
    t_cached, l_cached = timed(lambda: run_seed(True), max(1, repeats // 2))
    return dict(size=size, T=steps, tokens=n_tokens, step_tokens=step_tokens, packed_s=t_packed, step_s=t_step,
                speedup=t_step / t_packed, loss_diff=abs(l_packed - l_step), grad_diff=gdiff,
                seed_reencode_s=t_reenc, seed_cached_s=t_cached, seed_loss_diff=abs(l_reenc - l_cached))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,cpu-large")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--frame", default="320x240")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frame = tuple(int(x) for x in args.frame.split("x"))
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_episode(Path(tmp) / "ep", args.steps, frame)
        for size in args.sizes.split(","):
            r = bench_size(size, args.steps, args.repeats, frame, data)
            rows.append(r)
            print(f"[{size}] T={r['T']} packed sequence {r['tokens']} tokens (per-step total {r['step_tokens']}): "
                  f"packed {r['packed_s']:.3f} s, per-step {r['step_s']:.3f} s -> {r['speedup']:.1f}x "
                  f"(|loss diff| {r['loss_diff']:.2e}, max |grad diff| {r['grad_diff']:.2e}); r2r-lowlevel per step: "
                  f"re-encoding every frame {r['seed_reencode_s']:.3f} s, each frame once {r['seed_cached_s']:.3f} s "
                  f"-> {r['seed_reencode_s'] / r['seed_cached_s']:.2f}x (|loss diff| {r['seed_loss_diff']:.2e})",
                  flush=True)
    print("\nsize       T   tokens  packed_s  per_step_s  speedup  loss_diff  r2r_reencode_s  r2r_cached_s  ratio")
    for r in rows:
        print(f"{r['size']:<10} {r['T']:<3} {r['tokens']:<7} {r['packed_s']:<9.3f} {r['step_s']:<11.3f} "
              f"{r['speedup']:<8.1f} {r['loss_diff']:.1e}    {r['seed_reencode_s']:<15.3f} {r['seed_cached_s']:<13.3f} "
              f"{r['seed_reencode_s'] / r['seed_cached_s']:.2f}x")
    print(f"goal: >= 5x for T={args.steps}")


if __name__ == "__main__":
    main()
