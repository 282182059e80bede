"""`navtune demo --task objectnav`: seed 2's loop on the embedded house simulator, on a CPU, resumable.

Stages (each writes into its own folder under OUT and records `stages/<name>.json` when complete; a rerun
skips completed stages, an interrupted one resumes through its own machinery):

1. houses   — ObjectNav episodes on generated houses: training houses (SFT and mining episodes) and the
              held-out houses of `--test-seeds`
2. expert   — the A* expert's trajectories with rendered RGB (and depth when the model sees it)
3. model    — a tiny Qwen2.5-VL of the real architecture (random weights)
4. sft      — supervised fine-tuning on the whole JSON answer (objectnav-json; grounded Observation /
              Reasoning written from the simulator's knowledge of each view)
5. mine     — the SFT policy drives on training houses (free generation); its failed episodes are kept with
              the expert's action at every state it visited
6. awr      — an offline-RL round (LoRA, AWR) on expert + mined data: the expert's labels are optimal, so
              each has advantage 0 under the expert's value and weight 1 (DAgger's aggregation), never the
              failed trajectory's return
7. eval     — random, forward-only, the untrained model, SFT and SFT+AWR on the held-out houses, the models
              decoding freely (generated JSON parsed; invalid answers counted)
8. report   — OUT/final (the final agent, merged, with its navtune metadata), OUT/summary.json (rates with
              Wilson 95 % intervals, the AWR round's paired SR change), the HTML report, the table
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from navtune.core.io import atomic_write_json
from navtune.demo.folders import DemoError, DemoFolders
from navtune.envs.house.seeds import parse_seeds
from navtune.metrics.intervals import paired_difference, wilson

STAGES = ("houses", "expert", "model", "sft", "mine", "awr", "eval", "report")
STAGE_TITLES = {
    "houses": "generate houses and ObjectNav episodes",
    "expert": "collect expert RGB trajectories",
    "model": "build a tiny Qwen2.5-VL",
    "sft": "SFT on the whole JSON answer (objectnav-json)",
    "mine": "mine the SFT policy's failures (expert-labelled)",
    "awr": "AWR round on expert + mined data (LoRA)",
    "eval": "evaluate 5 agents on held-out houses",
    "report": "final agent, summary.json, report",
}
#: (run name, stage of the ladder) in table order
AGENTS = (("random", "baseline"), ("forward-only", "baseline"), ("untrained", "untrained"), ("SFT", "sft"),
          ("SFT+AWR", "offline"))
FINAL = "SFT+AWR"
FORMAT = "objectnav-json"
TRAIN_FILE, MINE_FILE, TEST_FILE = "objectnav_train.jsonl", "objectnav_mine.jsonl", "objectnav_test.jsonl"


@dataclass(frozen=True)
class ObjectNavDemoConfig:
    """Everything that decides what the ObjectNav demo computes (saved as demo.json; a rerun with other
    settings into the same folder is refused, a rerun with the same ones resumes)."""

    train_houses: int = 120  # house seeds 0..N-1: SFT episodes and (other) mining episodes
    episodes_per_house: int = 3
    mine_per_house: int = 1  # mining episodes per training house (other starts and goals)
    test_seeds: str = "1000-1049"  # held-out houses (never trained on)
    test_per_house: int = 4  # 50 houses x 4 = 200 held-out episodes
    min_geodesic: float = 2.0  # episodes start >= 2 m (walkable) from the success region
    success_distance: float = 1.0
    max_steps: int = 80  # step budget (the expert needs ~35 actions)
    width: int = 112
    height: int = 112
    depth: bool = False  # the model also sees a depth colour map (second image)
    model_size: str = "tiny"
    init_std: float = 0.02
    answer: str = "grounded"  # answer text around the action: grounded | action-only
    text_fraction: float = 0.25  # share of steps whose answer text is labelled (the action always is)
    sft_epochs: int = 3
    sft_lr: float = 3e-3
    freeze_embeddings: bool = False
    freeze_vision: bool = False
    chunk_batch: int = 64
    accumulate: int = 2
    awr_epochs: int = 1
    awr_lr: float = 1e-3
    awr_beta: float = 1.0
    lora_r: int = 16
    decode: str = "generate"  # the models' decoding in mining and evaluation
    max_new_tokens: int = 48
    num_envs: int = 16
    epa: bool = False  # the expert-path pass (doubles the evaluation's model calls)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def test_seed_list(self) -> list[int]:
        return parse_seeds(self.test_seeds, "--test-seeds")


QUICK = ObjectNavDemoConfig(train_houses=4, episodes_per_house=2, mine_per_house=1, test_seeds="1000-1001",
                            test_per_house=2, sft_epochs=1, max_steps=30, num_envs=4, max_new_tokens=24)
FULL = ObjectNavDemoConfig()


def _sr_change(before: list[float], after: list[float], seed: int) -> dict:
    """summary.json's paired SR change: {mean, ci95, episodes} (navtune.metrics.intervals)."""
    d = paired_difference("sr", before, after, seed=seed)
    return {"mean": d.diff, "ci95": list(d.ci95), "episodes": d.episodes}


@dataclass
class ObjectNavDemo(DemoFolders):
    cfg: ObjectNavDemoConfig
    log: Any = print  # one line per event (plain text: the demo also runs with stderr not a terminal)
    timings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers
    def task(self, file: str, limit: int | None = None):
        from navtune.evaluation import EvalTask

        c = self.cfg
        return EvalTask(backend="house-objectnav", episodes=str(self.episodes_dir / file), width=c.width,
                        height=c.height, depth=c.depth, limit=limit)

    def agent(self, model: Path, adapter: Path | None = None):
        from navtune.evaluation import AgentSpec

        c = self.cfg
        return AgentSpec("vlm", model=str(model), adapter=str(adapter) if adapter else None, format=FORMAT,
                         decode=c.decode, image_size=(c.width, c.height), max_new_tokens=c.max_new_tokens,
                         sees_depth=c.depth, seed=c.seed)

    def _train(self, cfg, sources: list[Path]):
        from navtune.agents.models.loading import load_processor
        from navtune.trainers.run import check_dataset_format, train
        from navtune.trainers.sources import ConcatEpisodes, dataset_source

        cfg.resume = "last" if (Path(cfg.out) / "checkpoints" / "last.ckpt").exists() else None
        processor = load_processor(cfg.model)
        parts = []
        for d in sources:
            check_dataset_format(d, FORMAT)
            parts.append(dataset_source(cfg, processor, str(d)))
        source = parts[0] if len(parts) == 1 else ConcatEpisodes(parts)
        return train(cfg, train_source=source, processor=processor), len(source)

    # ------------------------------------------------------------------ stages
    def houses(self) -> dict:
        import numpy as np

        from navtune.envs.house.episodes.objectnav import house_objectnav_episodes
        from navtune.envs.house.layout import generate_house
        from navtune.tasks.objectnav import write_episodes

        c = self.cfg
        sets: dict[str, list] = {TRAIN_FILE: [], MINE_FILE: [], TEST_FILE: []}
        plan = [(TRAIN_FILE, range(c.train_houses), c.episodes_per_house, 1),
                (MINE_FILE, range(c.train_houses), c.mine_per_house, 3),
                (TEST_FILE, c.test_seed_list, c.test_per_house, 1)]
        for file, seeds, per_house, stream in plan:
            for seed in seeds:
                house = generate_house(seed)
                rng = np.random.default_rng([seed, stream])
                eps = house_objectnav_episodes(house, per_house, rng, c.success_distance, c.max_steps,
                                               c.min_geodesic)
                if file == MINE_FILE:  # other ids than the SFT episodes of the same house
                    eps = [replace(e, episode_id=e.episode_id.replace("_objnav_", "_mine_")) for e in eps]
                sets[file] += eps
        for file, eps in sets.items():
            write_episodes(self.episodes_dir / file, eps)
        return {"train_episodes": len(sets[TRAIN_FILE]), "mine_episodes": len(sets[MINE_FILE]),
                "test_episodes": len(sets[TEST_FILE]), "test_seeds": c.test_seeds}

    def expert_data(self) -> dict:
        from navtune.data.collectors.expert import collect_expert, objectnav_source

        c = self.cfg
        src = objectnav_source(self.episodes_dir / TRAIN_FILE, c.width, c.height, depth=c.depth)
        s = collect_expert(src, self.expert, workers=1, depth=c.depth, progress=False)
        return {"episodes": s.written + s.skipped, "steps": s.steps, "successes": s.successes}

    def model(self) -> dict:
        from navtune.agents.models.tiny import build_tiny_model

        model, _ = build_tiny_model(self.base, size=self.cfg.model_size, seed=self.cfg.seed,
                                    init_std=self.cfg.init_std)
        return {"parameters": int(sum(p.numel() for p in model.parameters()))}

    def sft(self) -> dict:
        from navtune.trainers.config import TrainConfig

        c = self.cfg
        cfg = TrainConfig(model=str(self.base), data=str(self.expert), format=FORMAT, out=str(self.sft_dir),
                          image_size=(c.width, c.height), answer=c.answer, text_fraction=c.text_fraction,
                          depth=c.depth, epochs=c.sft_epochs, lr=c.sft_lr, warmup_ratio=0.05,
                          accumulate_episodes=c.accumulate, chunk_batch=c.chunk_batch, seed=c.seed,
                          freeze_embeddings=c.freeze_embeddings, freeze_vision=c.freeze_vision,
                          progress=False, loggers=("csv",))
        res, n = self._train(cfg, [self.expert])
        return {"final": str(res.final), "loss": res.metrics.get("train/loss_epoch"), "episodes": n}

    def mine(self) -> dict:
        from navtune.evaluation import build_policy, load_episodes
        from navtune.mining import mine_failures

        c = self.cfg
        task = self.task(MINE_FILE)
        episodes = load_episodes(task)
        policy = build_policy(self.agent(self.sft_dir / "final"), task.action_space)
        s = mine_failures(policy, task, episodes, self.failures, num_envs=c.num_envs, keep_unsuccessful=True,
                          depth=c.depth, progress=False)
        return {"episodes": len(episodes), "kept": s.total_kept, "modes": s.modes}

    def awr(self) -> dict:
        from navtune.data.format import EpisodeDataset
        from navtune.trainers.config import AWRConfig, LoraConfig

        c = self.cfg
        sources = [self.expert] + ([self.failures] if len(EpisodeDataset(self.failures)) else [])
        cfg = AWRConfig(model=str(self.sft_dir / "final"), data=",".join(map(str, sources)), format=FORMAT,
                        out=str(self.awr_dir), image_size=(c.width, c.height), answer=c.answer,
                        text_fraction=c.text_fraction, depth=c.depth, epochs=c.awr_epochs, lr=c.awr_lr,
                        beta=c.awr_beta, target="expert", relabelled="dagger", baseline="dataset",
                        accumulate_episodes=c.accumulate, chunk_batch=c.chunk_batch, seed=c.seed,
                        lora_cfg=LoraConfig(r=c.lora_r, alpha=2 * c.lora_r), progress=False, loggers=("csv",))
        res, n = self._train(cfg, sources)
        self._export_final()
        return {"final": str(res.final), "episodes": n,
                "failure_episodes": len(EpisodeDataset(self.failures)) if len(sources) > 1 else 0}

    def _export_final(self) -> None:
        """OUT/final: the SFT model with the AWR adapter merged, standalone (navtune.agents.models.card), its card
        also naming the decoding the demo evaluates with: everything `navtune eval` needs."""
        from navtune.agents.models.card import export_standalone

        export_standalone(self.awr_dir / "final", self.final_dir, decode=self.cfg.decode,
                          max_new_tokens=self.cfg.max_new_tokens)

    def evaluate(self) -> dict:
        from navtune.evaluation import AgentSpec, EvalConfig, run_eval

        c = self.cfg
        task = self.task(TEST_FILE)
        out = {}
        for name, _ in AGENTS:
            if name == "random":
                spec = AgentSpec("random", seed=c.seed)
            elif name == "forward-only":
                spec = AgentSpec("forward")
            elif name == "untrained":
                spec = self.agent(self.base)
            elif name == "SFT":
                spec = self.agent(self.sft_dir / "final")
            else:
                spec = self.agent(self.final_dir)
            t0 = time.perf_counter()
            res = run_eval(self.run_dir(name), spec, task, EvalConfig(num_envs=c.num_envs, epa=c.epa and
                                                                        spec.kind == "vlm", save_frames=2,
                                                                        progress=False), name=name)
            out[name] = {k: res["summary"].get(k) for k in ("sr", "spl", "soft_spl", "epa", "valid_action_pct",
                                                            "steps", "episodes")}
            out[name]["seconds"] = round(time.perf_counter() - t0, 1)
            self.log(f"  {name}: SR {100 * out[name]['sr']:.1f} % valid {out[name]['valid_action_pct']:.1f} % "
                     f"({out[name]['seconds']:.0f} s)")
        return out

    def summary(self) -> dict:
        """summary.json: per agent its stage, rates with Wilson 95 % intervals, decoding; the AWR round's
        paired SR change with a bootstrap interval; wall time = the sum of the stages' times."""
        from navtune.evaluation import load_rows, load_run_info

        agents, success = {}, {}
        for name, stage in AGENTS:
            d = self.run_dir(name)
            rows = load_rows(d)
            info = load_run_info(d)
            summ = json.loads((d / "summary.json").read_text())
            k = sum(int(bool(r["metrics"].get("sr"))) for r in rows)
            success[name] = {r["episode_id"]: float(bool(r["metrics"].get("sr"))) for r in rows}
            agent = info.get("agent", {})
            agents[name] = {
                "stage": stage, "sr": summ.get("sr"), "sr_ci95": wilson(k, len(rows)) if rows else None, "spl": summ.get("spl"),
                "soft_spl": summ.get("soft_spl"), "epa": summ.get("epa"),
                "valid_action_pct": summ.get("valid_action_pct"), "steps": summ.get("steps"),
                "distance_to_goal": summ.get("distance_to_goal"), "episodes": len(rows),
                "decode": agent.get("decode") if agent.get("kind") == "vlm" else None,
                "failure_rates": summ.get("failure_rates"),
            }
        ids = sorted(success["SFT"])
        stages = {}
        for stage in STAGES:
            if self.marker(stage).exists():
                stages[stage] = json.loads(self.marker(stage).read_text()).get("seconds")
        return {
            "final": FINAL, "wall_s": round(sum(v for v in stages.values() if v), 1), "stage_s": stages,
            "task": "objectnav", "test_seeds": self.cfg.test_seeds, "test_file": f"episodes/{TEST_FILE}",
            "agents": agents,
            "awr_sr_change": _sr_change([success["SFT"][i] for i in ids], [success[FINAL].get(i, 0.0) for i in ids],
                                        self.cfg.seed),
            "config": self.cfg.to_dict(),
        }

    def report(self) -> dict:
        from navtune.viz import build_report, load_run, markdown_table

        names = [n for n, _ in AGENTS]
        dirs = [self.run_dir(n) for n in names]
        c = self.cfg
        intro = (f"navtune demo --task objectnav: a tiny Qwen2.5-VL answering seed 2's JSON, trained on "
                 f"{c.train_houses} generated houses (SFT on the whole answer, then AWR on expert + mined failures),"
                 f" evaluated with the baselines on held-out houses {c.test_seeds} (free-text decoding).")
        path = build_report(dirs, self.report_dir, names=names, episodes=2, title="navtune objectnav demo",
                            intro=intro)
        table = markdown_table([load_run(d, n) for d, n in zip(dirs, names)])
        (self.report_dir / "table.md").write_text(table + "\n")
        return {"report": str(path), "table": table}


STAGE_FUNCS = {"houses": ObjectNavDemo.houses, "expert": ObjectNavDemo.expert_data, "model": ObjectNavDemo.model,
               "sft": ObjectNavDemo.sft, "mine": ObjectNavDemo.mine, "awr": ObjectNavDemo.awr,
               "eval": ObjectNavDemo.evaluate, "report": ObjectNavDemo.report}


def run_objectnav_demo(out: str | os.PathLike, quick: bool = False, cfg: ObjectNavDemoConfig | None = None,
                       show: bool = True, test_seeds: str | None = None, stop_after: str | None = None) -> dict:
    """Run (or resume) the ObjectNav demo in `out`; returns {"report", "table", "summary", "timings", "seconds"}."""
    import sys

    from navtune.demo.pipeline import _quiet_libraries

    os.environ.setdefault("PYGLET_HEADLESS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    cfg = cfg or (QUICK if quick else FULL)
    if test_seeds is not None:
        cfg = replace(cfg, test_seeds=test_seeds)
    cfg.test_seed_list  # noqa: B018  (a bad --test-seeds fails before any work)
    if set(cfg.test_seed_list) & set(range(cfg.train_houses)):
        raise DemoError(f"--test-seeds {cfg.test_seeds} overlaps the training houses 0-{cfg.train_houses - 1}")
    out = Path(out)
    DemoFolders(out).claim(cfg.to_dict())  # before any work: a folder of another recipe is refused

    def log(line: str) -> None:
        if show:
            print(line, file=sys.stderr, flush=True)

    demo = ObjectNavDemo(out, cfg, log)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    for k, stage in enumerate(STAGES, 1):
        title = f"[{k}/{len(STAGES)}] {STAGE_TITLES[stage]}"
        if demo.done(stage):
            log(f"{title}: done before, skipped")
        else:
            log(f"{title} ...")
            t0 = time.perf_counter()
            info = STAGE_FUNCS[stage](demo)
            timings[stage] = time.perf_counter() - t0
            demo.mark(stage, {**info, "seconds": round(timings[stage], 1)})
            log(f"{title}: done ({timings[stage]:.0f} s)")
        if stage == stop_after:
            return {"timings": timings, "seconds": time.perf_counter() - t_start}
    summary = demo.summary()
    atomic_write_json(out / "summary.json", summary)
    rep = json.loads(demo.marker("report").read_text())
    return {"report": rep["report"], "table": rep["table"], "summary": summary, "timings": timings,
            "seconds": time.perf_counter() - t_start}
