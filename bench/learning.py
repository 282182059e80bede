"""What limits learning in the demo's VLN task: an ablation driver whose rows are trained and evaluated the
same way, with 95 % intervals.

Every row is a recipe (the demo's `DemoConfig` plus optional DAgger / AWR rounds) evaluated on the same
held-out episodes: houses 1000-1059 with the demo's path settings (2-4 graph edges, start >= 4 m from the
goal, 3 instructions per path, 2 paths per house: 360 episodes), success radius 3 m, step budget 15 (1.5x
the expert's ~10 actions). ``--test-episodes N`` evaluates the first N of them (houses in order: 120 =
houses 1000-1019) for screening; a later run with a larger N reuses the episodes already evaluated.

Stages are cached by their settings under WORK/cache (training data, the model, SFT, each DAgger round,
...), so rows that share a prefix (e.g. the same SFT before different DAgger rounds) compute it once; a
row's reported times are the sums of its stages' own measured times, wherever they were computed. Each
finished row appends one line to WORK/results.jsonl (the table is printed from there), so a long
ablation survives interruptions; an interrupted stage resumes through the trainers' checkpoints and the
harness's JSONL.

    python bench/learning.py --work runs/learning --list
    python bench/learning.py --work runs/learning --row base --row init02 --test-episodes 120
    python bench/learning.py --work runs/learning --row init02 --set sft_epochs=10 --name init02-e10
    python bench/learning.py --work runs/learning --table

SR has a Wilson 95 % interval; SPL, nDTW and EPA (expert-path action accuracy: the expert drives, the
policy is asked at every state) have percentile-bootstrap 95 % intervals over episodes. "train s" is the
wall time of the row's training stages (SFT + DAgger/AWR rounds, their roll-outs included); "cpu s" the
CPU time of the same (all threads), which is less sensitive to a shared machine.

Vision use: every trained row is evaluated a second time on the same episodes with every frame replaced by
a uniform grey one (`navtune.agents.ablation.FrameAblation`; instruction, step, distance and the allowed
actions unchanged). "blank-frame SR / EPA" and the paired difference real - blank (bootstrap 95 % interval)
say how much the agent's success depends on what it sees: a row whose blank-frame SR equals its real SR is
blind (it navigates from the instruction, the step count and whether Move is allowed).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from navtune.demo.config import FULL, DemoConfig  # noqa: E402

TEST_SEEDS = range(1000, 1060)  # 60 held-out houses x 2 paths x 3 instructions = 360 episodes
TEST_PATHS_PER_HOUSE = 2


@dataclass(frozen=True)
class Recipe:
    """One row: the demo's settings (`demo`) and the rounds after SFT."""

    demo: DemoConfig = FULL
    sft: bool = True
    # DAgger rounds: the demo's dagger_rounds / dagger_beta / dagger_epochs / dagger_lr, plus
    dagger_episodes: int = 0  # roll-outs per round (0: every training episode, as Demo.dagger does)
    dagger_scratch: bool = False  # retrain from the initial model on the aggregate instead of fine-tuning
    awr: str = "none"  # none | mined (the demo's round: expert + SFT failures, expert labels) | own (own roll-outs)
    awr_episodes: int = 0  # own roll-outs for awr=own (0: every training episode)
    baseline: str | None = None  # "forward" | "random": no training, evaluate the baseline
    agent: str | None = None  # evaluate this already trained model folder (e.g. a demo's train/sft/final)
    adapter: str | None = None  # ... with this peft adapter (e.g. a demo's train/awr/final)
    vision_check: bool = True  # also evaluate with blank frames (the "vision use" columns)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def recipe(base: Recipe | None = None, **kw: Any) -> Recipe:
    """A recipe from `base` with fields replaced; DemoConfig fields go into `.demo`."""
    base = base or Recipe()
    demo_fields = {f.name for f in dataclasses.fields(DemoConfig)}
    demo_kw = {k: v for k, v in kw.items() if k in demo_fields}
    own = {k: v for k, v in kw.items() if k not in demo_fields}
    unknown = set(own) - {f.name for f in dataclasses.fields(Recipe)}
    if unknown:
        raise SystemExit(f"unknown setting(s) {sorted(unknown)}: DemoConfig or Recipe fields only")
    return dataclasses.replace(base, demo=dataclasses.replace(base.demo, **demo_kw), **own)


#: The named rows (add rows here; a row's name is what `--row` takes and what the table shows).
ROWS: dict[str, Recipe] = {
    "forward-only": recipe(baseline="forward", sft=False),
    "random": recipe(baseline="random", sft=False),
    "base": recipe(),  # today's demo SFT: 48 houses, 56x56, tiny, init std 0.3, 6 epochs, lr 5e-3
    "base-awr": recipe(awr="mined"),  # today's demo final agent (SFT + AWR on expert + mined failures)
    # today's demo as trained by `navtune demo --out /tmp/h14r/demo0` (same recipe as base / base-awr)
    "demo0-sft": recipe(agent="/tmp/h14r/demo0/train/sft/final"),
    "demo0-awr": recipe(agent="/tmp/h14r/demo0/train/sft/final", adapter="/tmp/h14r/demo0/train/awr/final"),
    "demo0-dagger1": recipe(agent="/tmp/h14r/demo0/train/sft/final", dagger_rounds=1),
    "vis": recipe(freeze_vision=False),
    "vis-fe": recipe(freeze_vision=False, freeze_embeddings=True),
    "px112": recipe(width=112, height=112),
    "px112-fe": recipe(width=112, height=112, freeze_embeddings=True),
    "h288e1": recipe(train_houses=288, sft_epochs=1),
    "h288e1-fe": recipe(train_houses=288, sft_epochs=1, freeze_embeddings=True),
    "small": recipe(model_size="small"),
    "e24": recipe(sft_epochs=24),  # 4x today's SFT compute on the same 48 houses
    "h192": recipe(train_houses=192),  # 4x today's SFT compute on 4x the houses (6 epochs)
    "lr1e-3": recipe(sft_lr=1e-3),
    "lr1e-3-h144e2": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2),  # same compute, 3x the houses
    "lr1e-3-dag1": recipe(sft_lr=1e-3, dagger_rounds=1),  # + 1 DAgger round (all 288 training episodes)
    "lr1e-3-h288e2": recipe(sft_lr=1e-3, train_houses=288, sft_epochs=2),  # 2x today's compute, 6x the houses
    "lr1e-3-h288e1": recipe(sft_lr=1e-3, train_houses=288, sft_epochs=1),  # today's compute, 6x the houses
    "lr1e-3-h144e2-dag1": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, dagger_rounds=1, dagger_episodes=288,
                                 dagger_epochs=1),  # + DAgger: 288 roll-outs, 1 epoch over expert + roll-outs
    "e18-fe": recipe(sft_epochs=18, freeze_embeddings=True),
    "init02-fe": recipe(init_std=0.02, freeze_embeddings=True),
    "base-fe": recipe(freeze_embeddings=True),
    "init02": recipe(init_std=0.02),
    # phase 2 (the agent does not use its frames): the best recipe with frozen embeddings, then the vision pathway
    "best-fe": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True),
    "best-fe-vis": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True, freeze_vision=False),
    "best-fe-vis07": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True, freeze_vision=False,
                            vision_init_std=0.07),
    "best-fe-vis02": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True, freeze_vision=False,
                            vision_init_std=0.02),
    "best-fe-odo": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True,
                          prompt_format="chat-odometry"),
    "best-fe-aux": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True,
                          aux_labels="path-bearing,exits"),
    "best-fe-vis07-aux": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True,
                                freeze_vision=False, vision_init_std=0.07, aux_labels="path-bearing,exits"),
    "best-fe-vis07-odo-aux": recipe(sft_lr=1e-3, train_houses=144, sft_epochs=2, freeze_embeddings=True,
                                    freeze_vision=False, vision_init_std=0.07, aux_labels="path-bearing,exits",
                                    prompt_format="chat-odometry"),
}


# ---------------------------------------------------------------------------------------------- stats
def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson score interval of a binomial rate k/n (navtune.metrics.intervals; (0, 1) with no episodes)."""
    from navtune.metrics.intervals import wilson as wilson_interval

    return wilson_interval(k, n) if n else (0.0, 1.0)


def bootstrap_ci(values: list[float]) -> tuple[float, float]:
    """Percentile-bootstrap 95 % interval of the mean (navtune.metrics.intervals; nan with no values)."""
    from navtune.metrics.intervals import bootstrap_mean

    vals = [x for x in values if x is not None]
    return bootstrap_mean(vals) if vals else (math.nan, math.nan)


# ---------------------------------------------------------------------------------------------- stages
def _key(kind: str, spec: dict) -> str:
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return f"{kind}-{hashlib.sha1(blob).hexdigest()[:10]}"


def _cpu() -> float:
    """CPU seconds of this process (all threads) and its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Stages:
    """Content-addressed stage cache: a stage's folder is named by a hash of what determines it; `done.json`
    marks it complete with its measured wall and CPU seconds and whatever it returned."""

    def __init__(self, work: Path, log=print):
        self.work = work
        self.cache = work / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.log = log

    def run(self, kind: str, spec: dict, fn) -> tuple[Path, dict]:
        from filelock import FileLock

        from navtune.core.io import atomic_write_json

        key = _key(kind, spec)
        d = self.cache / key
        done = d / "done.json"
        with FileLock(str(self.cache / f"{key}.lock")):
            if done.exists():
                return d, json.loads(done.read_text())
            d.mkdir(parents=True, exist_ok=True)
            atomic_write_json(d / "spec.json", spec)
            self.log(f"  [{kind}] {key} ...")
            t0, c0 = time.perf_counter(), _cpu()
            info = fn(d) or {}
            info = {**info, "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(_cpu() - c0, 1),
                    "load1": round(os.getloadavg()[0], 2)}
            atomic_write_json(done, info)
            self.log(f"  [{kind}] {key} done in {info['wall_s']} s (cpu {info['cpu_s']} s)")
            return d, info


@dataclass
class RowRun:
    """The stages of one row, in order: (stage name, folder, info)."""

    stages: list[tuple[str, Path, dict]] = field(default_factory=list)

    def add(self, name: str, d: Path, info: dict) -> None:
        self.stages.append((name, d, info))


def _demo(out: Path, cfg: DemoConfig, expert: Path | None = None):
    """The demo's stage functions on folders of this cache (`expert`: where its expert data goes)."""
    from navtune.demo.pipeline import Demo

    class BenchDemo(Demo):
        @property
        def expert(self) -> Path:
            return expert if expert is not None else Demo.expert.fget(self)

    return BenchDemo(out, cfg)


def train_data(st: Stages, c: DemoConfig, run: RowRun) -> Path:
    """Training episodes (house seeds 0..N-1) and their expert data at the row's frame size."""
    spec_h = {"train_houses": c.train_houses, "paths_per_house": c.paths_per_house, "min_hops": c.min_hops,
              "max_hops": c.max_hops, "min_distance": c.min_distance}

    def houses(d: Path) -> dict:
        demo = _demo(d, c)
        demo._generate(range(c.train_houses), "train", c.paths_per_house)
        return {}

    dh, info = st.run("houses", spec_h, houses)
    run.add("houses", dh, info)
    spec_e = {**spec_h, "width": c.width, "height": c.height, "max_steps": c.eval_max_steps}

    def expert(d: Path) -> dict:
        return _demo(dh, c, expert=d / "expert").expert_data()

    de, info = st.run("expert", spec_e, expert)
    run.add("expert", de, info)
    return dh


def test_data(st: Stages, c: DemoConfig) -> Path:
    spec = {"seeds": [TEST_SEEDS.start, TEST_SEEDS.stop], "paths_per_house": TEST_PATHS_PER_HOUSE,
            "min_hops": c.min_hops, "max_hops": c.max_hops, "min_distance": c.min_distance}

    def gen(d: Path) -> dict:
        _demo(d, c)._generate(TEST_SEEDS, "test", TEST_PATHS_PER_HOUSE)
        return {}

    d, _ = st.run("test", spec, gen)
    return d / "episodes"


def base_model(st: Stages, c: DemoConfig, run: RowRun) -> Path:
    spec = {"size": c.model_size, "init_std": c.init_std, "seed": c.seed, **_nondefault(c, "vision_init_std")}

    def build(d: Path) -> dict:
        from navtune.demo.pipeline import DEMO_SYSTEM_PROMPT
        from navtune.agents.models.tiny import build_tiny_model

        model, _ = build_tiny_model(d / "model", size=c.model_size, seed=c.seed, init_std=c.init_std,
                                    vision_init_std=c.vision_init_std)
        (d / "model" / "system_prompt.txt").write_text(DEMO_SYSTEM_PROMPT + "\n", encoding="utf-8")
        return {"parameters": int(sum(p.numel() for p in model.parameters()))}

    d, info = st.run("model", spec, build)
    run.add("model", d, info)
    return d / "model"


def _train(cfg) -> dict:
    from navtune.demo.pipeline import _quiet_libraries
    from navtune.trainers.run import read_history, train

    _quiet_libraries()
    if (Path(cfg.out) / "checkpoints" / "last.ckpt").exists():
        cfg.resume = "last"
    res = train(cfg)
    hist = read_history(cfg.out)
    last = [hist[k] for k in sorted(hist)[-20:]]
    return {"final": str(res.final), "steps": len(hist), "final_loss": sum(last) / max(1, len(last))}


def sft(st: Stages, c: DemoConfig, data: Path, model: Path, run: RowRun) -> Path:
    from navtune.trainers.config import TrainConfig

    spec = {"data": data.name, "width": c.width, "height": c.height, "model": model.parent.name,
            "epochs": c.sft_epochs, "lr": c.sft_lr, "accumulate": c.accumulate, "seed": c.seed, "warmup": 0.05}
    spec.update(_nondefault(c, "freeze_embeddings", "freeze_vision", "prompt_format", "aux_labels", "aux_coef"))
    expert = _expert_dir(st, c)

    def go(d: Path) -> dict:
        cfg = TrainConfig(model=str(model), data=str(expert), format=c.prompt_format, out=str(d / "run"),
                          image_size=(c.width, c.height), epochs=c.sft_epochs, lr=c.sft_lr, warmup_ratio=0.05,
                          accumulate_episodes=c.accumulate, seed=c.seed, progress=False, loggers=("csv",),
                          freeze_embeddings=c.freeze_embeddings, freeze_vision=c.freeze_vision,
                          aux_labels=c.aux_label_names, aux_coef=c.aux_coef)
        return _train(cfg)

    d, info = st.run("sft", spec, go)
    run.add("sft", d, info)
    return d / "run" / "final"


def _nondefault(c: DemoConfig, *names: str) -> dict:
    """Settings added after the first rows ran go into a stage's cache key only when not at their default
    (so earlier rows' stages keep their keys)."""
    return {n: getattr(c, n) for n in names if getattr(c, n) != getattr(FULL, n)}


def _expert_dir(st: Stages, c: DemoConfig) -> Path:
    spec_e = {"train_houses": c.train_houses, "paths_per_house": c.paths_per_house, "min_hops": c.min_hops,
              "max_hops": c.max_hops, "min_distance": c.min_distance, "width": c.width, "height": c.height,
              "max_steps": c.eval_max_steps}
    return st.cache / _key("expert", spec_e) / "expert"


def _policy(agent: Path, c: DemoConfig, adapter: Path | None = None):
    from navtune.evaluation import AgentSpec, build_policy

    spec = AgentSpec("vlm", model=str(agent), adapter=str(adapter) if adapter else None, format=c.prompt_format,
                     image_size=(c.width, c.height))
    return spec, build_policy(spec, "graph")


def _train_task(data: Path, c: DemoConfig):
    from navtune.evaluation import EvalTask

    return EvalTask(backend="graph", data_dir=str(data / "episodes"), split="train", renderer="house",
                    width=c.width, height=c.height, depth=False, max_steps=c.eval_max_steps)


def _pick(episodes: list, n: int, seed: int, round_: int) -> list:
    """n training episodes for a round (all when n is 0 or more than there are), a seeded sample."""
    import numpy as np

    if n <= 0 or n >= len(episodes):
        return list(episodes)
    idx = np.random.default_rng([seed, round_]).choice(len(episodes), size=n, replace=False)
    return [episodes[i] for i in sorted(idx)]


def dagger(st: Stages, r: Recipe, data: Path, model: Path, agent: Path, agent_key: str, run: RowRun) -> Path:
    """DAgger rounds from `agent`: roll-outs (beta**k mixture) on training episodes, expert labels, training
    on expert + every round's roll-outs (target = the expert's action)."""
    from navtune.evaluation import load_episodes
    from navtune.mining.dagger import dagger_rollouts
    from navtune.trainers.config import TrainConfig

    c = r.demo
    expert = _expert_dir(st, c)
    datasets: list[str] = []
    key = agent_key
    for k in range(1, c.dagger_rounds + 1):
        beta = c.dagger_beta ** k if c.dagger_beta > 0 else 0.0
        spec = {"from": key, "round": k, "episodes": r.dagger_episodes, "beta": beta, "seed": c.seed}

        def roll(d: Path, agent=agent, beta=beta, k=k) -> dict:
            task = _train_task(data, c)
            eps = _pick(load_episodes(task), r.dagger_episodes, c.seed, k)
            _, policy = _policy(agent, c)
            s = dagger_rollouts(policy, task, eps, d / "data", beta=beta, seed=c.seed, num_envs=c.num_envs)
            rows = [json.loads(x) for x in (d / "data" / "mine.jsonl").read_text().splitlines() if x.strip()]
            return {"episodes": len(eps), "kept": s.total_kept,
                    "sr": sum(bool(x["metrics"].get("sr")) for x in rows) / max(1, len(rows))}

        dr, info = st.run("rollouts", spec, roll)
        run.add(f"dagger{k}-rollouts", dr, info)
        datasets.append(str(dr / "data"))
        tspec = {"rollouts": dr.name, "datasets": [Path(x).parent.name for x in datasets],
                 "epochs": c.dagger_epochs, "lr": c.dagger_lr or c.sft_lr, "scratch": r.dagger_scratch,
                 "init": model.parent.name if r.dagger_scratch else key,
                 **_nondefault(c, "freeze_embeddings", "freeze_vision", "prompt_format", "aux_labels", "aux_coef")}

        def fit(d: Path, agent=agent, datasets=list(datasets)) -> dict:
            start = model if r.dagger_scratch else agent
            cfg = TrainConfig(model=str(start), data=",".join([str(expert)] + datasets), format=c.prompt_format,
                              out=str(d / "run"), image_size=(c.width, c.height), epochs=c.dagger_epochs,
                              lr=c.dagger_lr or c.sft_lr, warmup_ratio=0.05, accumulate_episodes=c.accumulate,
                              seed=c.seed + k, target="expert", progress=False, loggers=("csv",),
                              freeze_embeddings=c.freeze_embeddings, freeze_vision=c.freeze_vision,
                              aux_labels=c.aux_label_names, aux_coef=c.aux_coef)
            return _train(cfg)

        dt, info = st.run("dagger", tspec, fit)
        run.add(f"dagger{k}-train", dt, info)
        agent, key = dt / "run" / "final", dt.name
    return agent


def awr_round(st: Stages, r: Recipe, data: Path, agent: Path, agent_key: str, run: RowRun) -> tuple[Path, Path]:
    """An AWR round (LoRA) from `agent`: `mined` = the demo's (expert + the agent's failures, expert labels);
    `own` = expert data + the agent's own roll-outs with their real returns (labels: what was executed)."""
    from navtune.agents.models.loading import load_processor
    from navtune.evaluation import load_episodes
    from navtune.mining import mine_failures
    from navtune.mining.dagger import dagger_rollouts
    from navtune.trainers.config import AWRConfig, LoraConfig
    from navtune.trainers.run import check_dataset_format
    from navtune.trainers.sources import ConcatEpisodes, dataset_source

    c = r.demo
    expert = _expert_dir(st, c)
    spec = {"from": agent_key, "mode": r.awr, "episodes": r.awr_episodes if r.awr == "own" else c.mine_episodes,
            "seed": c.seed}

    def roll(d: Path) -> dict:
        task = _train_task(data, c)
        eps = load_episodes(task)
        _, policy = _policy(agent, c)
        if r.awr == "mined":  # the demo's choice: every k-th training episode
            step = max(1, len(eps) // max(1, c.mine_episodes))
            s = mine_failures(policy, task, eps[::step][: c.mine_episodes], d / "data", num_envs=c.num_envs,
                              keep_unsuccessful=True, depth=False, progress=False)
        else:
            s = dagger_rollouts(policy, task, _pick(eps, r.awr_episodes, c.seed, 100), d / "data",
                                num_envs=c.num_envs)
        return {"kept": s.total_kept}

    dr, info = st.run("awr-rollouts", spec, roll)
    run.add("awr-rollouts", dr, info)
    tspec = {"rollouts": dr.name, "epochs": c.awr_epochs, "lr": c.awr_lr, "beta": c.awr_beta, "r": c.lora_r}

    def fit(d: Path) -> dict:
        from navtune.demo.pipeline import _quiet_libraries
        from navtune.trainers.run import read_history, train

        _quiet_libraries()
        target = "expert" if r.awr == "mined" else "action"
        cfg = AWRConfig(model=str(agent), data=str(expert), format=c.prompt_format, out=str(d / "run"),
                        image_size=(c.width, c.height), epochs=c.awr_epochs, lr=c.awr_lr, beta=c.awr_beta,
                        target=target, accumulate_episodes=c.accumulate, seed=c.seed, progress=False,
                        loggers=("csv",), baseline="dataset", lora_cfg=LoraConfig(r=c.lora_r, alpha=2 * c.lora_r))
        processor = load_processor(agent)
        sources = []
        for ds in (expert, dr / "data"):
            from navtune.data.format import EpisodeDataset

            if len(EpisodeDataset(ds)) == 0:
                continue
            check_dataset_format(ds, c.prompt_format)
            sources.append(dataset_source(cfg, processor, str(ds)))
        if (Path(cfg.out) / "checkpoints" / "last.ckpt").exists():
            cfg.resume = "last"
        res = train(cfg, train_source=ConcatEpisodes(sources), processor=processor)
        hist = read_history(cfg.out)
        return {"final": str(res.final), "steps": len(hist)}

    dt, info = st.run("awr", tspec, fit)
    run.add("awr-train", dt, info)
    return agent, dt / "run" / "final"


def evaluate(st: Stages, r: Recipe, test: Path, agent: Path | None, adapter: Path | None, agent_key: str,
             n: int, epa: bool = True, frames: str = "real") -> tuple[list[dict], dict]:
    """The agent on the first n held-out episodes (resumes, and extends a smaller earlier n). `frames`:
    "real", or "blank" / "shuffle" to show the agent other frames than its own (`FrameAblation`)."""
    from navtune.core.io import read_jsonl
    from navtune.evaluation import AgentSpec, EvalConfig, EvalTask, build_policy, evaluate as harness, load_episodes

    c = r.demo
    task = EvalTask(backend="graph", data_dir=str(test), split="test", renderer="house", width=c.width,
                    height=c.height, depth=False, max_steps=c.eval_max_steps)
    spec = {"agent": agent_key, "task": task.to_dict(), "epa": epa}
    if frames != "real":  # (real-frame evaluations keep the keys they had before this setting existed)
        spec["frames"] = frames
    key = _key("eval", spec)
    d = st.cache / key
    d.mkdir(parents=True, exist_ok=True)
    results = d / "episodes.jsonl"
    episodes = load_episodes(task)[:n]
    have = {x["episode_id"] for x in read_jsonl(results)}
    t0, c0 = time.perf_counter(), _cpu()
    todo = [e for e in episodes if e.episode_id not in have]
    if todo:
        st.log(f"  [eval] {key}: {len(todo)} episodes ...")
        if r.baseline:
            policy = build_policy(AgentSpec(r.baseline, seed=c.seed), "graph")
        else:
            _, policy = _policy(agent, c, adapter)
        if frames != "real":
            from navtune.agents.ablation import FrameAblation

            policy = FrameAblation(policy, frames, seed=c.seed)
        harness(policy, task, todo, results, EvalConfig(num_envs=c.num_envs, epa=epa, progress=False))
        timing = {"episodes": len(todo), "wall_s": round(time.perf_counter() - t0, 1),
                  "cpu_s": round(_cpu() - c0, 1)}
        from navtune.core.io import append_jsonl

        append_jsonl(d / "timings.jsonl", timing)
    wanted = {e.episode_id for e in episodes}
    rows = sorted((x for x in read_jsonl(results) if x["episode_id"] in wanted), key=lambda x: x["order"])
    timings = list(read_jsonl(d / "timings.jsonl"))
    per_ep = sum(t["wall_s"] for t in timings) / max(1, sum(t["episodes"] for t in timings))
    return rows, {"dir": str(d), "wall_s_per_episode": round(per_ep, 3)}


def paired_diff_ci(a: list[dict], b: list[dict], metric: str) -> tuple[float, float]:
    """Paired bootstrap 95 % interval of mean(a - b) of `metric` over the episodes both runs have
    (navtune.metrics.intervals.paired_difference)."""
    from navtune.metrics.intervals import paired_difference

    bm = {x["episode_id"]: x["metrics"].get(metric) for x in b}
    pairs = [(float(x["metrics"][metric]), float(bm[x["episode_id"]])) for x in a
             if x["metrics"].get(metric) is not None and bm.get(x["episode_id"]) is not None]
    if not pairs:
        return (math.nan, math.nan)
    return paired_difference(metric, [q for _, q in pairs], [p for p, _ in pairs]).ci95


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    k = sum(bool(x["metrics"].get("sr")) for x in rows)
    out: dict[str, Any] = {"n": n, "sr": k / n if n else math.nan, "sr_ci95": list(wilson(k, n))}
    for m in ("spl", "ndtw", "epa", "osr", "ne"):
        vals = [x["metrics"].get(m) for x in rows]
        vals = [float(v) for v in vals if v is not None]
        out[m] = sum(vals) / len(vals) if vals else None
        if m in ("spl", "ndtw", "epa") and vals:
            out[f"{m}_ci95"] = list(bootstrap_ci(vals))
    stops = [x for x in rows if x["actions"] and x["actions"][-1] == "Stop"]
    out["stopped"] = len(stops) / n if n else None
    out["steps"] = sum(len(x["actions"]) for x in rows) / n if n else None
    return out


def run_row(work: Path, name: str, r: Recipe, n: int, log=print) -> dict:
    st = Stages(work, log)
    c = r.demo
    run = RowRun()
    test = test_data(st, c)
    agent: Path | None = None
    adapter: Path | None = None
    key = name
    if not r.baseline:
        data = train_data(st, c, run)
        model = base_model(st, c, run)
        agent, key = model, run.stages[-1][1].name
        if r.agent:  # an already trained model (its training times are not counted here)
            agent, adapter = Path(r.agent), Path(r.adapter) if r.adapter else None
            key = f"agent:{Path(r.agent).resolve()}:{r.adapter and Path(r.adapter).resolve()}"
        elif r.sft:
            agent = sft(st, c, data, model, run)
            key = run.stages[-1][1].name
        if c.dagger_rounds:
            agent = dagger(st, r, data, model, agent, key, run)
            key = run.stages[-1][1].name
        if r.awr != "none":
            agent, adapter = awr_round(st, r, data, agent, key, run)
            key = run.stages[-1][1].name
    else:
        key = f"baseline:{r.baseline}:{c.seed}"
    rows, ev = evaluate(st, r, test, agent, adapter, key, n)
    res = summarize(rows)
    if not r.baseline and r.vision_check:  # vision use: the same episodes with blank frames
        blank, _ = evaluate(st, r, test, agent, adapter, key, n, frames="blank")
        res["blank"] = {k: v for k, v in summarize(blank).items() if k in ("sr", "sr_ci95", "epa", "epa_ci95", "osr")}
        res["blank"]["sr_diff_ci95"] = list(paired_diff_ci(rows, blank, "sr"))
        res["blank"]["epa_diff_ci95"] = list(paired_diff_ci(rows, blank, "epa"))
    stages = {s: {"wall_s": i.get("wall_s"), "cpu_s": i.get("cpu_s")} for s, _, i in run.stages}
    train_names = [s for s in stages if s not in ("houses", "expert", "model")]
    res.update(
        row=name, recipe=r.to_dict(), stages=stages,
        train_wall_s=round(sum(stages[s]["wall_s"] or 0 for s in train_names), 1),
        train_cpu_s=round(sum(stages[s]["cpu_s"] or 0 for s in train_names), 1),
        data_wall_s=round(sum(stages[s]["wall_s"] or 0 for s in ("houses", "expert") if s in stages), 1),
        eval_wall_s_per_episode=ev["wall_s_per_episode"], eval_dir=ev["dir"],
        final_loss=next((i.get("final_loss") for s, _, i in reversed(run.stages) if "final_loss" in i), None),
        dagger_rollout_sr=[i.get("sr") for s, _, i in run.stages if s.endswith("-rollouts") and "sr" in i],
        time=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    from navtune.core.io import append_jsonl

    append_jsonl(work / "results.jsonl", res)
    return res


# ---------------------------------------------------------------------------------------------- table
def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _ci(ci: list | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def table(results: list[dict], names: list[str] | None = None) -> str:
    """The latest result of each (row, n), in first-run order (or `names`' order)."""
    latest: dict[tuple[str, int], dict] = {}
    for x in results:
        latest[(x["row"], x["n"])] = x
    keys = list(latest)
    if names:
        keys = [k for name in names for k in keys if k[0] == name]
    lines = ["| row | n | SR % [95% CI] | SPL % | nDTW % | EPA % [95% CI] | stops % | blank-frame SR % | "
             "blank-frame EPA % | SR real - blank [95% CI] | train s (cpu s) | data s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in keys:
        x = latest[k]
        b = x.get("blank") or {}
        diff = _ci(b.get("sr_diff_ci95")).strip()
        vision = (f"{_pct(b.get('sr'))} | {_pct(b.get('epa'))} | {100 * (x['sr'] - b['sr']):+.1f} {diff}" if b
                  else "- | - | -")
        lines.append(f"| {x['row']} | {x['n']} | {_pct(x['sr'])}{_ci(x['sr_ci95'])} | {_pct(x['spl'])} | "
                     f"{_pct(x['ndtw'])} | {_pct(x['epa'])}{_ci(x.get('epa_ci95'))} | {_pct(x.get('stopped'))} | "
                     f"{vision} | {x['train_wall_s']:.0f} ({x['train_cpu_s']:.0f}) | {x['data_wall_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/learning", help="cache, results.jsonl")
    ap.add_argument("--row", action="append", default=[], help="named row(s) to run (see --list)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting of the (single) --row; give the result a new --name")
    ap.add_argument("--name", default=None, help="name of the row run with --set")
    ap.add_argument("--seed", type=int, default=None, help="training seed (model init, data order)")
    ap.add_argument("--test-episodes", type=int, default=360, help="first N of the 360 held-out episodes")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--table", action="store_true", help="print the table of WORK/results.jsonl")
    args = ap.parse_args()
    work = Path(args.work)
    if args.list:
        for name, r in ROWS.items():
            diff = {k: v for k, v in r.to_dict().items() if k != "demo" and v != getattr(Recipe(), k)}
            diff.update({k: v for k, v in dataclasses.asdict(r.demo).items() if v != getattr(FULL, k)})
            print(f"{name:16s} {diff}")
        return
    if args.table:
        from navtune.core.io import read_jsonl

        print(table(list(read_jsonl(work / "results.jsonl")), args.row or None))
        return
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(args.threads)
    if args.set and len(args.row) != 1:
        raise SystemExit("--set needs exactly one --row to start from")
    todo = []
    for name in args.row:
        if name not in ROWS:
            raise SystemExit(f"unknown row {name!r}; known: {', '.join(ROWS)}")
        r = ROWS[name]
        if args.set:
            kw = {}
            for item in args.set:
                k, _, v = item.partition("=")
                kw[k] = json.loads(v) if v not in ("None", "none") else None
            r = recipe(r, **kw)
            name = args.name or f"{name}+" + ",".join(args.set)
        if args.seed is not None:
            r = recipe(r, seed=args.seed)
            name = f"{name}@s{args.seed}"
        todo.append((name, r))
    for name, r in todo:
        print(f"row {name}: {r.to_dict()}", flush=True)
        res = run_row(work, name, r, args.test_episodes, log=lambda s: print(s, flush=True))
        print(table([res]), flush=True)


if __name__ == "__main__":
    main()
