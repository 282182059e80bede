""""It learns": a tiny Qwen2.5-VL trained by `navtune train sft` on house expert data, evaluated by expert-path
action accuracy (EPA) on houses from held-out seeds, against always predicting the most frequent action.

Every step is the ordinary command line (printed as it runs), so the numbers can be reproduced by hand::

    .venv/bin/python bench/sft_learns.py --work runs/learns                 # defaults below
    .venv/bin/python bench/sft_learns.py --work runs/learns --awr           # + AWR on expert + failure data

Default: VLN in generated houses (graph actions Left/Right/Move/Stop), 64x48 frames, chat format,
train houses 0-199, test houses 1000-1009 (about 45 min on 2 CPU cores). Steps already done (their output exists) are skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

NAVTUNE = str(Path(sys.executable).with_name("navtune"))


def sh(*args: str) -> None:
    print("$ navtune " + " ".join(args), flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYGLET_HEADLESS": "1", "OMP_NUM_THREADS": os.environ.get(
        "OMP_NUM_THREADS", "1")}
    subprocess.run([NAVTUNE, *args], check=True, env=env)


def evaluate(run_dir: Path, model: str, adapter: str | None, test_dir: Path, size: tuple[int, int], limit: int | None):
    """EPA (and SR) with the harness, frames rendered *and fed* at the training size (the VLM policy resizes
    to 320x240 by default, like the seed; a model trained on 64x48 frames must see 64x48 frames)."""
    from navtune.agents.policy import make_policy
    from navtune.evaluation import AgentSpec, EvalConfig, EvalTask, run_eval
    from navtune.evaluation.agents import load_vlm

    spec = AgentSpec(kind="vlm", model=model, adapter=adapter, format="chat")
    task = EvalTask(backend="graph", data_dir=str(test_dir), split="test", renderer="house", width=size[0],
                    height=size[1], limit=limit)
    m, proc = load_vlm(model, adapter)
    policy = make_policy("vlm", model=m, processor=proc, format="chat", action_space="graph", model_path=model,
                         image_size=size)
    res = run_eval(run_dir, spec, task, EvalConfig(epa=True), policy=policy)
    rows = [json.loads(line) for line in (Path(res["results"])).read_text().splitlines() if line.strip()]
    return res["summary"], rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/learns")
    ap.add_argument("--train-seeds", default="0-199")
    ap.add_argument("--test-seeds", default="1000-1009")
    ap.add_argument("--per-house", type=int, default=2)
    ap.add_argument("--size", default="64x48")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--awr", action="store_true", help="also train AWR (LoRA) from the SFT model on expert + failures")
    ap.add_argument("--failures", type=int, default=60, help="random-policy episodes (failure data) for AWR")
    ap.add_argument("--awr-steps", type=int, default=200)
    args = ap.parse_args()
    w = Path(args.work)
    w.mkdir(parents=True, exist_ok=True)
    width, height = (int(x) for x in args.size.split("x"))
    if not (w / "vln_train" / "R2R_train.json").exists():
        sh("house", "episodes", "--task", "vln", "--seeds", args.train_seeds, "--out", str(w / "vln_train"),
           "--split", "train", "--per-house", str(args.per_house))
    if not (w / "vln_test" / "R2R_test.json").exists():
        sh("house", "episodes", "--task", "vln", "--seeds", args.test_seeds, "--out", str(w / "vln_test"),
           "--split", "test", "--per-house", "1")
    sh("collect", "expert", "--task", "vln", "--episodes", str(w / "vln_train"), "--split", "train",
       "--out", str(w / "expert"), "--width", str(width), "--height", str(height), "--no-depth", "--quiet")
    if not (w / "tiny" / "config.json").exists():
        sh("model", "tiny", "--out", str(w / "tiny"))
    if not (w / "sft" / "final" / "config.json").exists():
        sh("train", "sft", "--model", str(w / "tiny"), "--data", str(w / "expert"), "--format", "chat",
           "--out", str(w / "sft"), "--epochs", str(args.epochs), "--lr", str(args.lr), "--image-size", args.size)

    from navtune.data.format import EpisodeDataset

    train_counts = Counter(s.action for ep in EpisodeDataset(w / "expert") for s in ep.steps)
    majority = train_counts.most_common(1)[0][0]
    summary, rows = evaluate(w / "eval_sft", str(w / "sft" / "final"), None, w / "vln_test", (width, height),
                             args.limit_test)
    expert = [a for r in rows for a in r["expert"]["actions"]]
    epa_major = sum(a == majority for a in expert) / len(expert)
    lines = [f"train actions: {dict(train_counts)} -> most frequent {majority!r}",
             f"test: {len(rows)} episodes, {len(expert)} expert steps",
             f"EPA always-{majority}: {100 * epa_major:.1f}",
             f"EPA tiny SFT (chat):   {100 * summary['epa']:.1f}   (SR {100 * summary['sr']:.1f})"]
    if args.awr:
        # failure data: a random policy's trajectories in the training houses, relabelled by the expert
        if not (w / "failures" / "manifest.jsonl").exists():
            sh("collect", "dagger", "--task", "vln", "--episodes", str(w / "vln_train"), "--split", "train",
               "--policy", "random", "--limit", str(args.failures), "--max-steps", "30", "--out", str(w / "failures"),
               "--width", str(width), "--height", str(height), "--no-depth", "--quiet")
        if not (w / "awr" / "final" / "adapter_config.json").exists():
            sh("train", "awr", "--model", str(w / "sft" / "final"), "--data", str(w / "expert"), "--data",
               str(w / "failures"), "--format", "chat", "--out", str(w / "awr"), "--max-steps", str(args.awr_steps),
               "--lr", "1e-4", "--image-size", args.size, "--beta", "1.0", "--baseline", "value")
        s2, _ = evaluate(w / "eval_awr", str(w / "sft" / "final"), str(w / "awr" / "final"), w / "vln_test",
                         (width, height), args.limit_test)
        lines.append(f"EPA SFT + AWR (LoRA, expert + random-policy failures): {100 * s2['epa']:.1f}   "
                     f"(SR {100 * s2['sr']:.1f})")
    print("\n".join(lines))
    (w / "learns.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
