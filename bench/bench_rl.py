"""Where an RL iteration's time goes (`navtune train rl`): roll-out env-steps/s with 1 vs N envs (one batched
forward per step), with and without the house frame cache, update samples/s (one forward + backward per
roll-out), and the share of an iteration spent rolling out vs updating. Measured side by side in one run, on
a tiny Qwen2.5-VL and generated houses (VLN, graph actions, chat format)::

    .venv/bin/python bench/bench_rl.py                       # tiny model, 56x56 frames, 8 houses
    .venv/bin/python bench/bench_rl.py --model runs/sft/final --size 56x56 --data-dir demo/episodes --split train

Ratios are what matter on a shared machine (absolute times move with the load); run with OMP_NUM_THREADS=1
(or --threads) on small CPUs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYGLET_HEADLESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_episodes(out: Path, houses: int) -> None:
    from navtune.envs.house.episodes.vln import generate_vln_dataset

    generate_vln_dataset(range(houses), out, "train", per_house=2, min_hops=2, max_hops=4, min_distance=4.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: a fresh tiny model)")
    ap.add_argument("--size", default="56x56")
    ap.add_argument("--data-dir", default=None, help="R2R-format folder (default: generated houses)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--houses", type=int, default=8)
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from navtune.envs.house import renderer as house_renderer
    from navtune.evaluation import EvalTask, load_episodes
    from navtune.rl.config import RLConfig
    from navtune.rl.module import RLModule, advantages, draw_jobs
    from navtune.rl.rollout import RolloutCollector
    from navtune.rl.run import load_policy_model, resolve_start
    from navtune.rl.sequences import encode_rollout

    tmp = Path(tempfile.mkdtemp(prefix="bench_rl_"))
    model = args.model
    if model is None:
        from navtune.agents.models.tiny import build_tiny_model

        model = str(tmp / "tiny")
        build_tiny_model(model)
    data = args.data_dir
    if data is None:
        data = str(tmp / "episodes")
        make_episodes(Path(data), args.houses)
    w, h = (int(v) for v in args.size.split("x"))
    task = EvalTask(backend="graph", data_dir=data, split=args.split, renderer="house", width=w, height=h,
                    max_steps=args.max_steps)
    cfg = RLConfig(model=model, format="chat", image_size=(w, h), task=task, out=str(tmp / "rl"),
                   episodes_per_iteration=args.starts, group_size=args.group_size, num_envs=args.envs)
    start = resolve_start(cfg)
    net, proc, ref = load_policy_model(cfg, start)
    episodes = load_episodes(task)
    module = RLModule(net, proc, cfg, start, episodes, ref)
    module.policy = module.make_policy()
    jobs = draw_jobs(episodes, cfg, 0)
    net.eval()

    def rollout(n_envs: int, cache: bool) -> tuple[float, int, list]:
        house_renderer.FRAME_CACHE.clear()
        house_renderer.FRAME_CACHE.max_bytes = (256 << 20) if cache else 0
        col = RolloutCollector(module.policy, task, n_envs)
        try:
            with torch.no_grad():
                col.collect(draw_jobs(episodes, cfg, 1)[: n_envs])  # load the GL worlds, warm the allocator
                house_renderer.FRAME_CACHE.clear()
                t = time.perf_counter()
                batch = col.collect(jobs)
                return time.perf_counter() - t, batch.env_steps, batch.rollouts
        finally:
            col.close()

    rows = []
    for n_envs, cache in ((1, False), (args.envs, False), (1, True), (args.envs, True)):
        secs, steps, rollouts = rollout(n_envs, cache)
        rows.append((n_envs, cache, secs, steps))
        print(f"roll-out  envs {n_envs:2d}  frame cache {'on ' if cache else 'off'}  {steps} env-steps in {secs:6.2f} s"
              f"  = {steps / secs:6.1f} env-steps/s", flush=True)
    base = {(n, c): s / secs for n, c, secs, s in rows}
    print(f"speed-up of {args.envs} envs over 1: {base[(args.envs, False)] / base[(1, False)]:.2f}x (cache off), "
          f"{base[(args.envs, True)] / base[(1, True)]:.2f}x (cache on); frame cache at {args.envs} envs: "
          f"{base[(args.envs, True)] / base[(args.envs, False)]:.2f}x")

    # update: encode, reference pass, then cfg.update_epochs x cfg.minibatches optimizer steps (as in training)
    module.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    module.optimizers = lambda: opt  # outside a Trainer: the bare optimizer
    module.manual_backward = lambda loss: loss.backward()
    module.clip_gradients = lambda *a, **k: torch.nn.utils.clip_grad_norm_(
        [p for p in net.parameters() if p.requires_grad], cfg.grad_clip)
    t = time.perf_counter()
    seqs = [encode_rollout(r, module.policy) for r in rollouts]
    adv, targets = advantages(rollouts, cfg)
    t_enc = time.perf_counter() - t
    t = time.perf_counter()
    ref_lp = module.reference_logps(seqs)
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    module.update(0, rollouts, seqs, adv, targets, ref_lp)
    t_upd = time.perf_counter() - t
    passes = cfg.update_epochs * len(rollouts)
    actions = sum(r.num_steps for r in rollouts)
    print(f"update    {len(rollouts)} roll-outs ({actions} actions, {sum(len(c.ids) for s in seqs for c in s.chunks)} "
          f"tokens): encode {t_enc:.2f} s, reference pass {t_ref:.2f} s, {cfg.update_epochs} epochs x "
          f"{cfg.minibatches} minibatches {t_upd:.2f} s = {passes / t_upd:.1f} roll-out samples/s "
          f"({cfg.update_epochs * actions / t_upd:.0f} actions/s)")
    roll_s = rows[-1][2]
    total = roll_s + t_enc + t_ref + t_upd
    print(f"iteration ({args.starts} starts x G {args.group_size}, {args.envs} envs, cache on): roll-out "
          f"{roll_s:.2f} s ({100 * roll_s / total:.0f} %), encode {100 * t_enc / total:.0f} %, reference "
          f"{100 * t_ref / total:.0f} %, update {100 * t_upd / total:.0f} %")


if __name__ == "__main__":
    main()
