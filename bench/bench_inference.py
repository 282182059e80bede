"""Inference speed of the VLM agent paths, measured side by side in one run.

For each model config (random weights, real Qwen2.5-VL architecture) and one 30-step episode of 320x240
frames it times:

* the seed's loop (`r2r-lowlevel`, mode `full`): every step re-tokenizes and re-encodes every frame;
* `chat` + KV cache (mode `kv`): each step feeds only its new tokens (goal >= 10x faster);
* `r2r-lowlevel` + cached image features (mode `cached`): frames encoded once (goal >= 2x faster);

with the max logit difference of each fast path against its full recompute (chat: the full recompute of
the same chat prompt at a few steps; r2r: the seed loop itself), and batched vs sequential chat+KV for 8
episodes. With `--flops` it also counts each path's FLOPs: the speed-up a path would have at equal FLOP/s,
the part no hardware changes. `--config 3b` runs a 3B-shaped model in bf16 on CUDA and prints the per-step latency at step 30.

    .venv/bin/python bench/bench_inference.py                 # tiny + cpu-large on CPU
    .venv/bin/python bench/bench_inference.py --config 3b     # GPU
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from navtune.agents.models.tiny import build_tiny_model  # noqa: E402
from navtune.agents.vlm import VLMPolicy  # noqa: E402
from navtune.envs.protocol import Observation, Pose  # noqa: E402

GRAPH = ("Left", "Right", "Move", "Stop")


def stream(n: int, seed: int, size=(320, 240)) -> list[Observation]:
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        # smooth-ish random frames (like renders, unlike white noise) at the seed's resolution
        base = rng.random((size[1] // 8, size[0] // 8, 3))
        img = (np.kron(base, np.ones((8, 8, 1))) * 255).astype(np.uint8)
        allowed = GRAPH if t % 4 != 3 else ("Left", "Right", "Stop")
        out.append(Observation(img, None, Pose(0.0, 0.0), allowed, instruction="Walk down the hallway, turn left at "
                               "the kitchen and stop next to the fridge.", step=t, distance_traveled=0.7 * t))
    return out


def count_flops(pol: VLMPolicy, obs: list[Observation]) -> float:
    """FLOPs of one episode on this path (torch's FlopCounterMode: matmuls, convs, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    pol.reset(0)
    with FlopCounterMode(display=False) as counter:
        for o in obs:
            pol.act({0: o})
    return float(counter.get_total_flops())


def _register_cpu_attention_flops() -> None:
    """FlopCounterMode knows the CUDA attention kernels, not the CPU flash kernel that sdpa uses here."""
    from torch.utils.flop_counter import register_flop_formula, sdpa_flop_count

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None:
        return

    @register_flop_formula(op)
    def _cpu_flash(query, key, value, dropout_p=0.0, is_causal=False, *args, out_shape=None, **kwargs) -> int:
        flops = sdpa_flop_count(query, key, value)
        return flops // 2 if is_causal else flops  # the causal kernel skips the blocks above the diagonal


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_episode(pol: VLMPolicy, obs: list[Observation], device: str, slot=0, reference_at=()):
    """Run one episode, timing each step; at steps in `reference_at`, also (untimed) recompute the slot's
    full prompt through the model's own forward (every frame re-encoded) for the logit check."""
    pol.reset(slot)
    acts, logits, step_times, refs = [], [], [], {}
    for t, o in enumerate(obs):
        sync(device)
        t0 = time.perf_counter()
        acts.append(pol.act({slot: o})[slot])
        sync(device)
        step_times.append(time.perf_counter() - t0)
        logits.append(pol.last_logits[slot])
        if t in reference_at:
            refs[t] = pol.runner.forward_full(pol.slots[slot].history, pol.image_size).last_logits.cpu()
    return acts, logits, step_times, refs


def bench_config(name: str, device: str, dtype: str, n_steps: int, n_batch: int, quick: bool, flops: bool) -> None:
    t0 = time.perf_counter()
    model, proc = build_tiny_model(None, size=name, dtype=dtype, device=device)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    t = model.config.get_text_config()
    print(f"\n== config {name}: hidden {t.hidden_size}, layers {t.num_hidden_layers}, vision depth "
          f"{model.config.vision_config.depth}, {n_params:.0f}M params, {dtype} on {device} "
          f"(built in {time.perf_counter() - t0:.1f}s)")
    obs = stream(n_steps, seed=0)
    mk = lambda **kw: VLMPolicy(model, proc, system_prompt="You are a navigation agent.", image_size=(320, 240),  # noqa: E731
                                keep_logits=True, **kw)
    n_img = int(proc.image_processor(images=[obs[0].rgb], return_tensors="pt")["image_grid_thw"].prod()) // 4
    print(f"   320x240 frame -> {n_img} image tokens")

    # warm-up (allocator, kernels)
    run_episode(mk(format="chat", mode="kv"), obs[:2], device)

    rows = []
    seed_pol = mk(format="r2r-lowlevel", mode="full")
    seed_acts, seed_logits, seed_t, _ = run_episode(seed_pol, obs, device)
    rows.append(("seed loop (r2r-lowlevel, re-encode all)", sum(seed_t), seed_t[-1], None, None))

    cached_pol = mk(format="r2r-lowlevel", mode="cached")
    c_acts, c_logits, c_t, _ = run_episode(cached_pol, obs, device)
    c_diff = max(float((a - b).abs().max()) for a, b in zip(c_logits, seed_logits))
    rows.append(("r2r-lowlevel + cached image features", sum(c_t), c_t[-1], c_diff, c_acts == seed_acts))

    kv_pol = mk(format="chat", mode="kv")
    check = [n_steps - 1] if quick else [0, n_steps // 2, n_steps - 1]
    kv_acts, kv_logits, kv_t, ref = run_episode(kv_pol, obs, device, reference_at=check)
    kv_diff = max(float((kv_logits[s] - ref[s]).abs().max()) for s in check)
    same = all(bool(kv_logits[s][ids].argmax() == ref[s][ids].argmax()) for s in check
               for ids in [torch.tensor([kv_pol.runner.tokenize_text(a)[0] for a in GRAPH])])
    rows.append(("chat + KV cache", sum(kv_t), kv_t[-1], kv_diff, same))

    flop_counts = [None] * 3
    if flops:  # the speed-up each path would have if every path ran at the same FLOP/s
        flop_counts = [count_flops(p, obs) for p in (seed_pol, cached_pol, kv_pol)]
    base = rows[0][1]
    print(f"   {'path':44s} {'episode s':>10s} {f'step-{n_steps} ms':>11s} {'speed-up':>9s} {'max |dlogit|':>13s} same action"
          + ("   GFLOP  FLOP ratio" if flops else ""))
    for (label, total, last, diff, same), fl in zip(rows, flop_counts):
        d = "-" if diff is None else f"{diff:.2e}"
        s = "-" if same is None else str(same)
        f = f"  {fl / 1e9:7.0f} {flop_counts[0] / fl:9.1f}x" if fl else ""
        print(f"   {label:44s} {total:10.2f} {last * 1000:11.1f} {base / total:8.1f}x {d:>13s} {s:11s}{f}")
    print(f"   goals: chat+KV >= 10x -> {'MET' if base / rows[2][1] >= 10 else 'NOT met'}; "
          f"cached features >= 2x -> {'MET' if base / rows[1][1] >= 2 else 'NOT met'}")

    # batched vs sequential: n_batch chat+KV episodes
    streams = [stream(n_steps, seed=100 + i) for i in range(n_batch)]
    seq_pol = mk(format="chat", mode="kv")
    sync(device)
    t0 = time.perf_counter()
    seq_acts = [run_episode(seq_pol, s, device)[0] for s in streams]
    sync(device)
    t_seq = time.perf_counter() - t0
    bat = mk(format="chat", mode="kv")
    bat.reset(range(n_batch))
    b_acts = [[] for _ in range(n_batch)]
    sync(device)
    t0 = time.perf_counter()
    for t in range(n_steps):
        out = bat.act({i: streams[i][t] for i in range(n_batch)})
        for i in range(n_batch):
            b_acts[i].append(out[i])
    sync(device)
    t_bat = time.perf_counter() - t0
    print(f"   batched vs sequential, {n_batch} chat+KV episodes x {n_steps} steps: sequential {t_seq:.2f}s, "
          f"batched {t_bat:.2f}s ({t_seq / t_bat:.1f}x), same actions: {b_acts == seq_acts}")
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", choices=["tiny", "cpu-large", "3b"],
                    help="model config(s) to run (default: tiny and cpu-large)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default=None, help="default: cuda for 3b, else cpu")
    ap.add_argument("--quick", action="store_true", help="fewer reference recomputes")
    ap.add_argument("--flops", action="store_true",
                    help="also count each path's FLOPs (torch's FlopCounterMode; one more untimed episode per path)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 avoids thread-pool thrash on a loaded shared machine)")
    args = ap.parse_args()
    configs = args.config or ["tiny", "cpu-large"]
    if args.flops:
        _register_cpu_attention_flops()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"bench_inference: {args.steps}-step episodes, 320x240 frames, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for name in configs:
        device = args.device or ("cuda" if name == "3b" else "cpu")
        dtype = "bfloat16" if name == "3b" else "float32"
        with torch.inference_mode():
            bench_config(name, device, dtype, args.steps, args.batch, args.quick, args.flops)


if __name__ == "__main__":
    main()
