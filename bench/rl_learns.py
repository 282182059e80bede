"""Does online RL raise the success rate of a trained agent on held-out houses? (issue 15's acceptance)

From a starting agent (e.g. the demo's SFT model, ``OUT/train/sft/final``), on VLN episodes of generated houses
(graph low-level actions, reference paths of 2-4 edges, start >= 4 m from the goal, 3 instructions per path,
the demo's generator): evaluate the start on held-out houses, run ``navtune train rl`` on training houses,
evaluate the result on the same held-out episodes, and print both success rates with Wilson 95 % intervals
(and their difference). Every step is the ordinary command line, printed as it runs::

    .venv/bin/python bench/rl_learns.py --start /tmp/demo/train/sft/final --size 56x56 --work runs/rl_learns \\
        -- --max-iterations 40 --group-size 4 --episodes-per-iteration 8 --lr 2e-3

Arguments after ``--`` go to ``navtune train rl``. Steps whose output exists are skipped (rerun to resume).
Writes WORK/summary.json and WORK/learning_curve.png (return and SR of the training roll-outs per iteration).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

NAVTUNE = str(Path(sys.executable).with_name("navtune"))


def sh(*args: str) -> float:
    print("$ navtune " + " ".join(args), flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYGLET_HEADLESS": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t = time.perf_counter()
    subprocess.run([NAVTUNE, *args], check=True, env=env)
    return time.perf_counter() - t


def seeds(text: str) -> range:
    a, b = (int(v) for v in text.split("-"))
    return range(a, b + 1)


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of a rate k / n (navtune.metrics.intervals; (0, 1) with no episodes)."""
    from navtune.metrics.intervals import wilson as wilson_interval

    return wilson_interval(k, n) if n else (0.0, 1.0)


def generate(out: Path, split: str, house_seeds: range, per_house: int) -> None:
    """R2R-format VLN episodes on generated houses with the demo's path settings (2-4 edges, >= 4 m)."""
    from navtune.envs.house.episodes.vln import generate_vln_dataset
    from navtune.tasks.r2r.data import split_path

    if split_path(out, split).is_file():
        return
    generate_vln_dataset(house_seeds, out, split, per_house, min_hops=2, max_hops=4, min_distance=4.0)


def evaluate(run: Path, model: str, data: Path, size: str, max_steps: int, fmt: str | None) -> dict:
    if not (run / "summary.json").is_file():
        extra = ["--format", fmt, "--image-size", size] if fmt else []
        sh("eval", "--agent", "vlm", "--model", model, *extra, "--data-dir", str(data), "--split", "test",
           "--renderer", "house", "--width", size.split("x")[0], "--height", size.split("x")[1], "--max-steps",
           str(max_steps), "--num-envs", "8", "--no-epa", "--quiet", "--out", str(run))
    rows = [json.loads(x) for x in (run / "episodes.jsonl").read_text().splitlines() if x.strip()]
    k = sum(int(r["metrics"]["sr"] > 0) for r in rows)
    lo, hi = wilson(k, len(rows))
    return {"sr": k / len(rows), "sr_ci95": [lo, hi], "episodes": len(rows),
            "spl": sum(r["metrics"]["spl"] for r in rows) / len(rows)}


def plot_curve(history: Path, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = [json.loads(x) for x in history.read_text().splitlines() if x.strip()]
    by_it = {int(h["iteration"]): h for h in hist}
    its = sorted(by_it)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    for a, key, label in ((ax[0], "return", "mean return (training roll-outs)"), (ax[1], "sr", "SR (training roll-outs)")):
        y = [by_it[i][key] for i in its]
        a.plot([i + 1 for i in its], y, color="#9ab", lw=1)
        w = 5
        if len(y) >= w:
            smooth = [sum(y[j - w + 1:j + 1]) / w for j in range(w - 1, len(y))]
            a.plot([i + 1 for i in its[w - 1:]], smooth, color="#248", lw=2, label=f"mean of {w}")
            a.legend(fontsize=7)
        a.set_xlabel("iteration")
        a.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    argv = sys.argv[1:]
    rl_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", required=True, help="starting agent folder (e.g. the demo's OUT/train/sft/final)")
    ap.add_argument("--format", default=None, help="its prompt format when the folder has no navtune_agent.json")
    ap.add_argument("--size", default="56x56", help="frame size (rendered and fed)")
    ap.add_argument("--work", default="runs/rl_learns")
    ap.add_argument("--train-data", default=None, help="R2R-format folder with a 'train' split (default: generated "
                    "on --train-seeds)")
    ap.add_argument("--train-seeds", default="0-47")
    ap.add_argument("--train-per-house", type=int, default=2)
    ap.add_argument("--test-seeds", default="1000-1059")
    ap.add_argument("--test-per-house", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=15)
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    test_dir = work / "test_episodes"
    generate(test_dir, "test", seeds(args.test_seeds), args.test_per_house)
    train_dir = Path(args.train_data) if args.train_data else work / "train_episodes"
    if not args.train_data:
        generate(train_dir, "train", seeds(args.train_seeds), args.train_per_house)
    fmt = args.format or (None if (Path(args.start) / "navtune_agent.json").is_file() else "chat")
    before = evaluate(work / "eval_start", args.start, test_dir, args.size, args.max_steps, fmt)
    print(f"start: SR {before['sr']:.3f} {before['sr_ci95']} on {before['episodes']} episodes", flush=True)
    rl_out = work / "rl"
    rl_s = None
    if not (rl_out / "final" / "navtune_agent.json").is_file():
        w, h = args.size.split("x")
        extra = ["--format", fmt, "--image-size", args.size] if fmt else []
        rl_s = sh("train", "rl", "--model", args.start, *extra, "--data-dir", str(train_dir), "--split", "train",
                  "--renderer", "house", "--width", w, "--height", h, "--max-steps", str(args.max_steps),
                  "--out", str(rl_out), *rl_args)
    after = evaluate(work / "eval_rl", str(rl_out / "final"), test_dir, args.size, args.max_steps, None)
    print(f"RL:    SR {after['sr']:.3f} {after['sr_ci95']} on {after['episodes']} episodes", flush=True)
    summary = {"start": before, "rl": after, "rl_wall_s": rl_s, "gain_sr": after["sr"] - before["sr"],
               "intervals_overlap": not (after["sr_ci95"][0] > before["sr_ci95"][1]), "rl_args": rl_args,
               "test_seeds": args.test_seeds, "train_data": str(train_dir)}
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    plot_curve(rl_out / "rl_history.jsonl", work / "learning_curve.png",
               f"navtune train rl {' '.join(rl_args)}")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
