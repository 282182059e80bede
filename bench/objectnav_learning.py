"""What limits the ObjectNav demo's agent: SFT rows trained and evaluated the same way, side by side.

Each row is the demo's config (`navtune.demo.objectnav.ObjectNavDemoConfig`) with some fields overridden;
rows that share the data-deciding fields share the episodes and the expert data. A row runs the demo's
stages houses -> expert -> model -> sft, then evaluates the SFT model (free generation unless the row sets
`decode`) on the first `--test-episodes` held-out episodes, and prints SR with its Wilson 95 % interval,
valid-action %, SPL, mean steps, and the CPU seconds of training and evaluation (process time: the machine
is shared, so wall time says little).

    .venv/bin/python bench/objectnav_learning.py --work runs/objlearn --test-episodes 100 \\
        --row base: --row "act-only:answer=action-only" --row "px56:width=56,height=56"

Add `--dagger` to also run the demo's mine + AWR stages for a row and evaluate SFT+AWR.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

DATA_FIELDS = ("train_houses", "episodes_per_house", "mine_per_house", "test_seeds", "test_per_house",
               "min_geodesic", "success_distance", "max_steps", "width", "height", "depth")


def parse_row(text: str, base):
    from navtune.demo.objectnav import ObjectNavDemoConfig

    name, _, spec = text.partition(":")
    fields = {f.name: f for f in dataclasses.fields(ObjectNavDemoConfig)}
    kw = {}
    for item in filter(None, spec.split(",")):
        k, v = item.split("=", 1)
        if k not in fields:
            raise SystemExit(f"unknown field {k!r}; known: {', '.join(fields)}")
        t = type(getattr(base, k))
        kw[k] = (v.lower() in ("1", "true", "yes")) if t is bool else t(v)
    return name, dataclasses.replace(base, **kw)


def run_row(work: Path, name: str, cfg, test_episodes: int, dagger: bool) -> dict:
    import shutil

    from navtune.demo.objectnav import TEST_FILE, ObjectNavDemo, wilson
    from navtune.evaluation import EvalConfig, run_eval

    data_key = "_".join(str(getattr(cfg, f)) for f in DATA_FIELDS).replace("/", "-")
    shared = work / "data" / data_key
    row_dir = work / "rows" / name
    demo = ObjectNavDemo(row_dir, cfg, log=lambda line: print(f"[{name}] {line}", flush=True))
    # the row's episodes and expert data are the shared folder's (collected once per data setting)
    data = ObjectNavDemo(shared, cfg, log=demo.log)
    for stage, fn in (("houses", ObjectNavDemo.houses), ("expert", ObjectNavDemo.expert_data)):
        if not data.done(stage):
            t0 = time.process_time()
            info = fn(data)
            data.marker(stage).parent.mkdir(parents=True, exist_ok=True)
            data.marker(stage).write_text(json.dumps({**info, "cpu_s": time.process_time() - t0}))
    (row_dir / "data").mkdir(parents=True, exist_ok=True)
    for sub in ("episodes", "data/expert"):  # the row's own mined data stays in the row's folder
        link = row_dir / sub
        if not link.exists():
            link.symlink_to((shared / sub).resolve())
    out: dict = {"row": name, "config": {k: v for k, v in cfg.to_dict().items()}}
    for stage in (("model", "sft", "mine", "awr") if dagger else ("model", "sft")):
        if not demo.done(stage):
            t0 = time.process_time()
            info = getattr(demo, {"model": "model", "sft": "sft", "mine": "mine", "awr": "awr"}[stage])()
            info["cpu_s"] = round(time.process_time() - t0, 1)
            demo.marker(stage).parent.mkdir(parents=True, exist_ok=True)
            demo.marker(stage).write_text(json.dumps(info))
        out[f"{stage}_cpu_s"] = json.loads(demo.marker(stage).read_text()).get("cpu_s")
    agents = [("SFT", demo.sft_dir / "final")] + ([("SFT+AWR", demo.final_dir)] if dagger else [])
    for agent, model in agents:
        run = row_dir / "eval" / agent.replace("+", "_")
        t0 = time.process_time()
        res = run_eval(run, demo.agent(model), demo.task(TEST_FILE, limit=test_episodes),
                       EvalConfig(num_envs=cfg.num_envs, epa=False, progress=False), name=f"{name}:{agent}")
        s = res["summary"]
        k = round(s["sr"] * s["episodes"])
        out[agent] = {"sr": s["sr"], "sr_ci95": wilson(k, s["episodes"]), "valid": s["valid_action_pct"],
                      "spl": s["spl"], "steps": s["steps"], "episodes": s["episodes"],
                      "failure_rates": s["failure_rates"], "eval_cpu_s": round(time.process_time() - t0, 1)}
    if not dagger:
        shutil.rmtree(row_dir / "train" / "sft" / "checkpoints", ignore_errors=True)
    return out


def main() -> None:
    import torch

    from navtune.demo.objectnav import FULL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--row", action="append", required=True, help="NAME:field=value,field=value")
    ap.add_argument("--test-episodes", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dagger", action="store_true", help="also mine + AWR, evaluate SFT+AWR")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from navtune.demo.pipeline import _quiet_libraries

    _quiet_libraries()
    results = []
    for text in args.row:
        name, cfg = parse_row(text, FULL)
        res = run_row(args.work, name, cfg, args.test_episodes, args.dagger)
        results.append(res)
        with open(args.work / "results.jsonl", "a") as f:
            f.write(json.dumps(res) + "\n")
        print(json.dumps(res), flush=True)
    print("| row | agent | SR % (95 % CI) | valid % | SPL % | steps | SFT cpu s | eval cpu s | n |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for agent in ("SFT", "SFT+AWR"):
            if agent in r:
                a = r[agent]
                lo, hi = a["sr_ci95"]
                print(f"| {r['row']} | {agent} | {100 * a['sr']:.1f} ({100 * lo:.1f}-{100 * hi:.1f}) | {a['valid']:.1f} | "
                      f"{100 * a['spl']:.1f} | {a['steps']:.1f} | {r.get('sft_cpu_s')} | {a['eval_cpu_s']} | "
                      f"{a['episodes']} |")


if __name__ == "__main__":
    main()
