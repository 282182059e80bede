"""`navtune demo`: the whole loop on a CPU, on the embedded simulator, resumable stage by stage.

Stages (each writes into its own folder under OUT and records `stages/<name>.json` when it is complete;
a rerun skips completed stages, and an interrupted stage resumes through its own resumable machinery —
the collectors, the trainers' checkpoints, the harness's JSONL):

1. houses   — VLN episodes (R2R format) on generated houses: training houses and held-out houses
2. expert   — the shortest-path expert's trajectories with rendered views (navtune.data collector)
3. model    — a tiny Qwen2.5-VL of the real architecture (random weights)
4. sft      — supervised fine-tuning on the expert data (chat format: one forward per episode)
5. mine     — the SFT policy runs for real on training houses; its failures are kept with expert labels
6. awr      — an advantage-weighted regression round (LoRA) on expert + failure data, from the SFT model
7. eval     — random, forward-only, the untrained model, SFT and AWR on the held-out houses
8. report   — the HTML report and the headline table
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from navtune.core.io import atomic_write_json
from navtune.demo.config import FULL, QUICK, DemoConfig

STAGES = ("houses", "expert", "model", "sft", "mine", "awr", "eval", "report")
STAGE_TITLES = {
    "houses": "generate houses and VLN episodes",
    "expert": "collect expert trajectories",
    "model": "build a tiny Qwen2.5-VL",
    "sft": "supervised fine-tuning (chat format)",
    "mine": "mine the SFT policy's failures",
    "awr": "AWR round on expert + failure data (LoRA)",
    "eval": "evaluate 5 agents on held-out houses",
    "report": "write the report",
}
#: The evaluated agents, in table order: (run name, what it is)
AGENTS = ("random", "forward-only", "untrained", "SFT", "SFT+AWR")
TEST_SPLIT, TRAIN_SPLIT = "test", "train"
TEST_SEED0 = 1000
DEMO_SYSTEM_PROMPT = "You are a navigation agent in a house. Follow the route instruction; answer with one action."


class DemoError(RuntimeError):
    pass


@dataclass
class Demo:
    out: Path
    cfg: DemoConfig
    progress: Any = None  # rich Progress (or None)
    timings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ paths
    @property
    def vln(self) -> Path:
        return self.out / "episodes"

    @property
    def expert(self) -> Path:
        return self.out / "data" / "expert"

    @property
    def failures(self) -> Path:
        return self.out / "data" / "failures"

    @property
    def base(self) -> Path:
        return self.out / "models" / "tiny"

    @property
    def sft_dir(self) -> Path:
        return self.out / "train" / "sft"

    @property
    def awr_dir(self) -> Path:
        return self.out / "train" / "awr"

    def run_dir(self, name: str) -> Path:
        return self.out / "runs" / name.replace("+", "_").lower()

    @property
    def report_dir(self) -> Path:
        return self.out / "report"

    def marker(self, stage: str) -> Path:
        return self.out / "stages" / f"{stage}.json"

    def done(self, stage: str) -> bool:
        return self.marker(stage).exists()

    def mark(self, stage: str, info: dict) -> None:
        atomic_write_json(self.marker(stage), {"stage": stage, **info})

    # ------------------------------------------------------------------ helpers
    def eval_task(self, split: str, limit: int | None = None):
        from navtune.evaluation import EvalTask

        return EvalTask(backend="graph", data_dir=str(self.vln), split=split, renderer="house", width=self.cfg.width,
                        height=self.cfg.height, depth=False, max_steps=self.cfg.eval_max_steps, limit=limit)

    def _sub(self, desc: str, total: int | None):
        """A sub-progress bar in the demo's display; returns an `advance()` callable."""
        if self.progress is None:
            return lambda n=1: None
        task = self.progress.add_task(f"  {desc}", total=total)
        return lambda n=1: self.progress.advance(task, n)

    # ------------------------------------------------------------------ stages
    def _generate(self, seeds: range, split: str, per_house: int) -> None:
        """R2R-format VLN episodes on the houses of `seeds` (the house task's path sampler and instruction
        generator), with the demo's path lengths; connectivity files beside them."""
        import numpy as np

        from navtune.envs.house.layout import generate_house
        from navtune.envs.house.navgraph import build_house_graph
        from navtune.envs.house.episodes.vln import house_vln_paths
        from navtune.tasks.r2r.data import connectivity_path, split_path, write_connectivity, write_r2r_split

        c = self.cfg
        items = []
        advance = self._sub(f"{split} houses", len(seeds))
        for seed in seeds:
            house = generate_house(seed)
            graph, rooms = build_house_graph(house)
            write_connectivity(graph, connectivity_path(self.vln, house.scene_id))
            rng = np.random.default_rng([seed, 2])
            for p in house_vln_paths(house, per_house, rng, path_id_start=seed * 1000, min_hops=c.min_hops,
                                     max_hops=c.max_hops, min_distance=c.min_distance, graph_rooms=(graph, rooms)):
                items.append(p.to_r2r())
            advance(1)
        write_r2r_split(items, split_path(self.vln, split))

    def houses(self) -> dict:
        c = self.cfg
        self._generate(range(c.train_houses), TRAIN_SPLIT, c.paths_per_house)
        self._generate(range(TEST_SEED0, TEST_SEED0 + c.test_houses), TEST_SPLIT, c.test_paths_per_house)
        from navtune.tasks.r2r import load_r2r_split

        n_train = len(load_r2r_split(self.vln, TRAIN_SPLIT, validate=False))
        n_test = len(load_r2r_split(self.vln, TEST_SPLIT, validate=False))
        return {"train_episodes": n_train, "test_episodes": n_test, "train_houses": c.train_houses,
                "test_houses": c.test_houses}

    def expert_data(self) -> dict:
        import functools

        from navtune.data.collectors.episodes import r2r_source
        from navtune.data.collectors.expert import collect_expert
        from navtune.data.collectors.renderers import HouseScenes

        c = self.cfg
        factory = functools.partial(HouseScenes, c.width, c.height, False)
        src = r2r_source(self.vln, TRAIN_SPLIT, factory, "house", max_steps=c.eval_max_steps)
        for _, meta in src.episodes:
            meta.task, meta.source = "vln", "expert"
        src.info.update(task="vln", width=c.width, height=c.height, depth=False)
        s = collect_expert(src, self.expert, workers=1, depth=False, progress=False)
        return {"episodes": s.written + s.skipped, "steps": s.steps, "successes": s.successes}

    def model(self) -> dict:
        from navtune.agents.models.tiny import build_tiny_model

        model, _ = build_tiny_model(self.base, size=self.cfg.model_size, seed=self.cfg.seed,
                                    init_std=self.cfg.init_std, vision_init_std=self.cfg.vision_init_std)
        # a one-line system prompt: every step of every episode carries it, and a tiny model learns nothing from
        # the long default text
        (self.base / "system_prompt.txt").write_text(DEMO_SYSTEM_PROMPT + "\n", encoding="utf-8")
        return {"parameters": int(sum(p.numel() for p in model.parameters()))}

    def _train(self, cfg, train_source=None, total: int | None = None) -> Any:
        import lightning.pytorch as pl

        from navtune.trainers.run import train

        advance = self._sub("training episodes", total)

        class Tick(pl.Callback):
            def on_train_batch_end(self, *args, **kwargs) -> None:  # noqa: ANN002
                advance(1)

        resume = "last" if (Path(cfg.out) / "checkpoints" / "last.ckpt").exists() else None
        cfg.resume = resume
        if train_source is None:
            return train(cfg, callbacks=[Tick()])
        from navtune.agents.models.loading import load_processor

        return train(cfg, train_source=train_source, processor=load_processor(cfg.model), callbacks=[Tick()])

    def sft(self) -> dict:
        from navtune.data.format import EpisodeDataset
        from navtune.trainers.config import TrainConfig

        c = self.cfg
        n = len(EpisodeDataset(self.expert))
        cfg = TrainConfig(model=str(self.base), data=str(self.expert), format=c.prompt_format, out=str(self.sft_dir),
                          image_size=(c.width, c.height), epochs=c.sft_epochs, lr=c.sft_lr, warmup_ratio=0.05,
                          accumulate_episodes=c.accumulate, seed=c.seed, progress=False, loggers=("csv",),
                          freeze_embeddings=c.freeze_embeddings, freeze_vision=c.freeze_vision,
                          aux_labels=c.aux_label_names, aux_coef=c.aux_coef)
        res = self._train(cfg, total=n * c.sft_epochs)
        return {"final": str(res.final), "metrics": res.metrics, "episodes": n}

    def policy(self, model: str | Path, adapter: str | Path | None = None):
        from navtune.evaluation import AgentSpec, build_policy

        spec = AgentSpec("vlm", model=str(model), adapter=str(adapter) if adapter else None,
                         format=self.cfg.prompt_format,
                         image_size=(self.cfg.width, self.cfg.height))  # the size the model was trained with
        return spec, build_policy(spec, "graph")

    def mine(self) -> dict:
        from navtune.evaluation import load_episodes
        from navtune.mining import mine_failures

        c = self.cfg
        task = self.eval_task(TRAIN_SPLIT)
        episodes = load_episodes(task)
        # every k-th training episode, spread over the houses
        step = max(1, len(episodes) // max(1, c.mine_episodes))
        chosen = episodes[::step][: c.mine_episodes]
        _, policy = self.policy(self.sft_dir / "final")
        advance = self._sub("roll-outs", len(chosen))
        s = mine_failures(policy, task, chosen, self.failures, num_envs=c.num_envs, keep_unsuccessful=True,
                          depth=False, progress=False, on_row=lambda row: advance(1))
        return {"episodes": len(chosen), "kept": s.total_kept, "modes": s.modes}

    def dagger_dir(self, k: int) -> Path:
        return self.out / "train" / f"dagger{k}"

    def dagger(self) -> dict:
        """DAgger rounds after SFT (`dagger_rounds`; 0: none): the current agent drives on every training
        episode (the expert's action executed with probability beta**k), the expert labels each visited state,
        and the agent is fine-tuned on the expert data + every round's roll-outs (labels: the expert's actions).
        Roll-outs and training resume like the other stages. Returns the final agent's folder."""
        from navtune.data.format import EpisodeDataset
        from navtune.evaluation import load_episodes
        from navtune.mining.dagger import dagger_rollouts
        from navtune.trainers.config import TrainConfig

        c = self.cfg
        task = self.eval_task(TRAIN_SPLIT)
        episodes = load_episodes(task)
        agent = self.sft_dir / "final"
        datasets, rounds = [str(self.expert)], []
        for k in range(1, c.dagger_rounds + 1):
            data = self.out / "data" / f"dagger{k}"
            _, policy = self.policy(agent)
            advance = self._sub(f"DAgger round {k} roll-outs", len(episodes))
            s = dagger_rollouts(policy, task, episodes, data, beta=c.dagger_beta ** k if c.dagger_beta > 0 else 0.0,
                                seed=c.seed, num_envs=c.num_envs, on_row=lambda row: advance(1))
            datasets.append(str(data))
            cfg = TrainConfig(model=str(agent), data=",".join(datasets), format=c.prompt_format,
                              out=str(self.dagger_dir(k)),
                              image_size=(c.width, c.height), epochs=c.dagger_epochs, lr=c.dagger_lr or c.sft_lr,
                              warmup_ratio=0.05, accumulate_episodes=c.accumulate, seed=c.seed + k, target="expert",
                              progress=False, loggers=("csv",), freeze_embeddings=c.freeze_embeddings,
                              freeze_vision=c.freeze_vision, aux_labels=c.aux_label_names, aux_coef=c.aux_coef)
            n = sum(len(EpisodeDataset(d)) for d in datasets)
            res = self._train(cfg, total=n * c.dagger_epochs)
            agent = Path(res.final)
            rounds.append({"round": k, "rollouts": s.total_kept, "final": str(agent)})
        return {"final": str(agent), "rounds": rounds}

    def awr(self) -> dict:
        from navtune.agents.models.loading import load_processor
        from navtune.data.format import EpisodeDataset
        from navtune.trainers.config import AWRConfig, LoraConfig
        from navtune.trainers.run import check_dataset_format
        from navtune.trainers.sources import ConcatEpisodes, dataset_source

        c = self.cfg
        sft_final = self.sft_dir / "final"
        cfg = AWRConfig(model=str(sft_final), data=str(self.expert), format=c.prompt_format, out=str(self.awr_dir),
                        image_size=(c.width, c.height), epochs=c.awr_epochs, lr=c.awr_lr, beta=c.awr_beta,
                        target="expert", accumulate_episodes=c.accumulate, seed=c.seed, progress=False,
                        loggers=("csv",), baseline="dataset", lora_cfg=LoraConfig(r=c.lora_r, alpha=2 * c.lora_r))
        processor = load_processor(sft_final)
        sources = []
        for d in (self.expert, self.failures):
            if len(EpisodeDataset(d)) == 0:
                continue
            check_dataset_format(d, c.prompt_format)
            sources.append(dataset_source(cfg, processor, str(d)))
        combined = ConcatEpisodes(sources)
        res = self._train(cfg, combined, total=len(combined) * c.awr_epochs)
        return {"final": str(res.final), "metrics": res.metrics, "episodes": len(combined),
                "failure_episodes": len(sources[1]) if len(sources) > 1 else 0}

    def evaluate(self) -> dict:
        from navtune.agents.models.loading import load_processor  # noqa: F401  (fail early when missing)
        from navtune.evaluation import AgentSpec, EvalConfig, build_policy, load_episodes, run_eval

        c = self.cfg
        task = self.eval_task(TEST_SPLIT)
        n = len(load_episodes(task))
        cfgs = EvalConfig(num_envs=c.num_envs, save_frames=2, progress=False)
        out = {}
        for name in AGENTS:
            if name == "random":
                spec, policy = AgentSpec("random", seed=c.seed), None
            elif name == "forward-only":
                spec, policy = AgentSpec("forward"), None
            elif name == "untrained":
                spec, policy = self.policy(self.base)
            elif name == "SFT":
                spec, policy = self.policy(self.sft_dir / "final")
            else:
                spec, policy = self.policy(self.sft_dir / "final", self.awr_dir / "final")
            if policy is None:
                policy = build_policy(spec, "graph")
            advance = self._sub(f"eval {name}", n)
            res = run_eval(self.run_dir(name), spec, task, cfgs, name=name, policy=policy,
                           on_row=lambda row: advance(1))
            out[name] = {k: res["summary"].get(k) for k in ("sr", "spl", "ndtw", "epa", "ne", "steps")}
        return out

    def report(self) -> dict:
        from navtune.viz import build_report, load_run, markdown_table

        dirs = [self.run_dir(n) for n in AGENTS]
        intro = (f"navtune demo: a tiny Qwen2.5-VL trained on {self.cfg.train_houses} generated houses (expert SFT, "
                 f"then AWR on expert + mined failure data), evaluated with the baselines on "
                 f"{self.cfg.test_houses} held-out houses (VLN, low-level graph actions).")
        path = build_report(dirs, self.report_dir, names=list(AGENTS), episodes=2, title="navtune demo", intro=intro)
        table = markdown_table([load_run(d, n) for d, n in zip(dirs, AGENTS)])
        (self.report_dir / "table.md").write_text(table + "\n")
        return {"report": str(path), "table": table}


STAGE_FUNCS = {"houses": Demo.houses, "expert": Demo.expert_data, "model": Demo.model, "sft": Demo.sft,
               "mine": Demo.mine, "awr": Demo.awr, "eval": Demo.evaluate, "report": Demo.report}


def _quiet_libraries() -> None:
    """Keep the demo's own progress display readable: no per-call bars or banners from the libraries."""
    import logging
    import warnings

    import lightning.pytorch  # noqa: F401  (it sets its loggers' levels on import: override after)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def run_demo(out: str | os.PathLike, quick: bool = False, cfg: DemoConfig | None = None, show: bool = True) -> dict:
    """Run (or resume) the demo in `out`; returns {"report": path, "table": markdown, "timings": {...}}."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    os.environ.setdefault("PYGLET_HEADLESS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    cfg = cfg or (QUICK if quick else FULL)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "demo.json"
    if cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        if old != cfg.to_dict():
            raise DemoError(f"{cfg_file}: this folder holds a demo run with other settings "
                            f"({'--quick' if old == QUICK.to_dict() else 'full'}); use another --out")
    else:
        atomic_write_json(cfg_file, cfg.to_dict())
    console = Console(stderr=True, quiet=not show)
    # the live display needs a terminal (on stderr); a log file, CI or nohup gets one plain line per stage
    # start and end instead: on stdout when it is redirected (`navtune demo > log`), else on stderr
    live = show and console.is_terminal
    plain_stream = None
    if show and not sys.stdout.isatty():
        plain_stream = sys.stdout
    elif show and not live:
        plain_stream = sys.stderr
    plain = plain_stream is not None

    def say(line: str) -> None:
        print(f"navtune demo {line}", file=plain_stream, flush=True)

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    results: dict[str, Any] = {}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False, disable=not live) as progress:
        demo = Demo(out, cfg, progress if live else None)
        overall = progress.add_task("[bold]navtune demo", total=len(STAGES))
        for k, stage in enumerate(STAGES, 1):
            title = f"[{k}/{len(STAGES)}] {STAGE_TITLES[stage]}"
            if demo.done(stage):
                results[stage] = json.loads(demo.marker(stage).read_text())
                if plain:
                    say(f"{title}: done before, skipped")
                if live:
                    progress.console.print(f"[dim]{title}: done before, skipped[/dim]")
                progress.advance(overall)
                continue
            task = progress.add_task(f"{title}", total=None)
            if plain:
                say(f"{title}: started")
            t0 = time.perf_counter()
            info = STAGE_FUNCS[stage](demo)
            timings[stage] = time.perf_counter() - t0
            demo.mark(stage, {**info, "seconds": round(timings[stage], 1)})
            results[stage] = info
            if plain:
                say(f"{title}: done in {timings[stage]:.1f} s")
            progress.update(task, total=1, completed=1, description=f"{title} [green]✓[/green] ({timings[stage]:.0f} s)")
            progress.advance(overall)
    total = time.perf_counter() - t_start
    rep = results["report"]
    return {"report": rep["report"], "table": rep["table"], "timings": timings, "seconds": total,
            "eval": results.get("eval")}
