"""`navtune demo`: the whole loop on a CPU, on the embedded simulator, resumable stage by stage.

Stages (each writes into its own folder under OUT and records `stages/<name>.json` when it is complete;
a rerun skips completed stages, and an interrupted stage resumes through its own resumable machinery —
the collectors, the trainers' checkpoints, the harness's JSONL). Optional stages (DAgger, mining + AWR)
run when their settings ask for them and are recorded as skipped otherwise:

1. houses   — VLN episodes (R2R format) on generated houses: training houses and held-out houses
2. expert   — the shortest-path expert's trajectories with rendered views (navtune.data collector)
3. model    — a tiny Qwen2.5-VL of the real architecture (random weights)
4. sft      — supervised fine-tuning on the expert data (chat format: one forward per episode)
5. dagger   — DAgger rounds: the agent drives, the expert labels every visited state, data aggregates
6. mine     — the current agent runs for real on training houses; its failures are kept with expert labels
7. awr      — an advantage-weighted regression round (LoRA) on expert + failure data
8. final    — the last trained agent, exported to OUT/final as one standalone, self-describing folder
9. eval     — random, forward-only, the untrained model and every trained stage's agent on held-out houses
10. report  — the HTML report, the headline table and OUT/summary.json

OUT/summary.json: {"final": name, "wall_s": seconds of all stages, "test_seeds": "A-B", "test_file":
"episodes/R2R_test.json", "agents": {name: {"stage": baseline | untrained | sft | offline | rl, "sr",
"sr_ci95", "spl", "spl_ci95", "ndtw", "ndtw_ci95", "epa", "epa_ci95", "episodes"}}} (rates as fractions,
95 % intervals: Wilson for SR, bootstrap over episodes otherwise).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from navtune.core.io import atomic_write_json
from navtune.demo.config import FULL, QUICK, DemoConfig
from navtune.demo.folders import DemoError, DemoFolders

TEST_SPLIT, TRAIN_SPLIT = "test", "train"
DEMO_SYSTEM_PROMPT = "You are a navigation agent in a house. Follow the route instruction; answer with one action."
SUMMARY_FILE = "summary.json"
SUCCESS_RADIUS = 3.0  # metres, R2R's
#: `stage` of an agent in summary.json, in ladder order
AGENT_STAGES = ("baseline", "untrained", "sft", "offline", "rl")
SUMMARY_KEYS = ("sr", "sr_ci95", "spl", "spl_ci95", "ndtw", "ndtw_ci95", "epa", "epa_ci95", "osr", "ne", "steps",
                "episodes")


@dataclass(frozen=True)
class TrainedAgent:
    """One trained stage's agent: its table name, its rung of the ladder and its folder (a navtune train
    output: full weights, or a LoRA adapter over the previous agent, described by its navtune_agent.json)."""

    name: str
    stage: str
    folder: Path


@dataclass
class Demo(DemoFolders):
    cfg: DemoConfig
    progress: Any = None  # rich Progress (or None)
    timings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers
    def eval_task(self, split: str, limit: int | None = None):
        from navtune.evaluation import EvalTask

        return EvalTask(backend="graph", data_dir=str(self.episodes_dir), split=split, renderer="house", width=self.cfg.width,
                        height=self.cfg.height, depth=False, max_steps=self.cfg.eval_max_steps, limit=limit)

    def _sub(self, desc: str, total: int | None):
        """A sub-progress bar in the demo's display; returns an `advance()` callable."""
        if self.progress is None:
            return lambda n=1: None
        task = self.progress.add_task(f"  {desc}", total=total)
        return lambda n=1: self.progress.advance(task, n)

    # ------------------------------------------------------------------ stages
    def _generate(self, seeds: Sequence[int], split: str, per_house: int) -> None:
        """R2R-format VLN episodes on the houses of `seeds` (the house task's path sampler and instruction
        generator), with the demo's path lengths; connectivity files beside them."""
        from navtune.envs.house.episodes.vln import generate_vln_dataset
        from navtune.evaluation.backends import write_episode_set_settings

        c = self.cfg
        advance = self._sub(f"{split} houses", len(seeds))
        generate_vln_dataset(seeds, self.episodes_dir, split, per_house, min_hops=c.min_hops, max_hops=c.max_hops,
                             min_distance=c.min_distance, on_house=lambda seed: advance(1))
        # the set carries its task settings: a bare `navtune eval` on it uses the demo's budget and radius
        write_episode_set_settings(self.episodes_dir, self.cfg.eval_max_steps, SUCCESS_RADIUS)

    def houses(self) -> dict:
        c = self.cfg
        self._generate(range(c.train_houses), TRAIN_SPLIT, c.paths_per_house)
        self._generate(c.test_seed_range, TEST_SPLIT, c.test_paths_per_house)
        from navtune.tasks.r2r import load_r2r_split

        n_train = len(load_r2r_split(self.episodes_dir, TRAIN_SPLIT, validate=False))
        n_test = len(load_r2r_split(self.episodes_dir, TEST_SPLIT, validate=False))
        return {"train_episodes": n_train, "test_episodes": n_test, "train_houses": c.train_houses,
                "test_seeds": c.test_seeds}

    def expert_data(self) -> dict:
        import functools

        from navtune.data.collectors.episodes import r2r_source
        from navtune.data.collectors.expert import collect_expert
        from navtune.data.collectors.renderers import HouseScenes

        c = self.cfg
        factory = functools.partial(HouseScenes, c.width, c.height, False)
        src = r2r_source(self.episodes_dir, TRAIN_SPLIT, factory, "house", max_steps=c.eval_max_steps)
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
        cfg.overwrite = resume is None  # the demo owns this folder: without a checkpoint, start it afresh
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

    def policy(self, model: str | Path):
        """The VLM policy of an agent folder (its navtune_agent.json gives format, frame size, base + adapter);
        the untrained base model has no card, so the demo's format and frame size are given for it."""
        from navtune.agents.models.card import read_card
        from navtune.evaluation import AgentSpec, build_policy

        if read_card(model) is not None:
            spec = AgentSpec("vlm", model=str(model))
        else:
            spec = AgentSpec("vlm", model=str(model), format=self.cfg.prompt_format,
                             image_size=(self.cfg.width, self.cfg.height))
        return spec, build_policy(spec, "graph")

    # ------------------------------------------------------------------ the ladder of trained agents
    def trained_agents(self) -> list[TrainedAgent]:
        """SFT, then each enabled later stage's agent (each starts from the one before), in ladder order."""
        c = self.cfg
        agents = [TrainedAgent("SFT", "sft", self.sft_dir / "final")]
        if c.dagger_rounds > 0:
            agents.append(TrainedAgent(agents[-1].name + "+DAgger", "offline", self.dagger_dir(c.dagger_rounds) / "final"))
        if c.awr_epochs > 0:
            agents.append(TrainedAgent(agents[-1].name + "+AWR", "offline", self.awr_dir / "final"))
        if c.rl_iterations > 0:
            agents.append(TrainedAgent(agents[-1].name + "+RL", "rl", self.rl_dir / "final"))
        return agents

    def agent_before(self, stage_folder: Path) -> Path:
        """The folder of the agent a stage starts from (the previous rung)."""
        agents = self.trained_agents()
        k = next(i for i, a in enumerate(agents) if a.folder == stage_folder)
        return agents[k - 1].folder

    def mine(self) -> dict:
        from navtune.evaluation import load_episodes
        from navtune.mining import mine_failures

        c = self.cfg
        task = self.eval_task(TRAIN_SPLIT)
        episodes = load_episodes(task)
        # every k-th training episode, spread over the houses
        step = max(1, len(episodes) // max(1, c.mine_episodes))
        chosen = episodes[::step][: c.mine_episodes]
        _, policy = self.policy(self.agent_before(self.awr_dir / "final"))
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
        start = self.agent_before(self.awr_dir / "final")
        cfg = AWRConfig(model=str(start), data=str(self.expert), format=c.prompt_format, out=str(self.awr_dir),
                        image_size=(c.width, c.height), epochs=c.awr_epochs, lr=c.awr_lr, beta=c.awr_beta,
                        target="expert", accumulate_episodes=c.accumulate, seed=c.seed, progress=False,
                        loggers=("csv",), baseline="dataset", lora_cfg=LoraConfig(r=c.lora_r, alpha=2 * c.lora_r))
        processor = load_processor(start)
        sources = []
        for d in (self.expert, self.failures):
            if not (d / "manifest.jsonl").exists() or len(EpisodeDataset(d)) == 0:
                continue
            check_dataset_format(d, c.prompt_format)
            sources.append(dataset_source(cfg, processor, str(d)))
        combined = ConcatEpisodes(sources)
        res = self._train(cfg, combined, total=len(combined) * c.awr_epochs)
        return {"final": str(res.final), "metrics": res.metrics, "episodes": len(combined),
                "failure_episodes": len(sources[1]) if len(sources) > 1 else 0}

    @property
    def rl_dir(self) -> Path:
        return self.out / "train" / "rl"

    def rl(self) -> dict:
        """Online RL (`navtune train rl`, GRPO by default) from the previous rung, rolling out on the training
        episodes; LoRA, KL to the starting agent. Resumes from its last iteration."""
        from navtune.rl import RLConfig, train_rl

        c = self.cfg
        start = self.agent_before(self.rl_dir / "final")
        last = self.rl_dir / "checkpoints" / "last.ckpt"
        # returns centred in each group, not divided by its std (Dr. GRPO): std scaling turns groups without a
        # success into "stop at once" with this sparse a reward (docs/training.md, row F)
        cfg = RLConfig(model=str(start), algo=c.rl_algo, task=self.eval_task(TRAIN_SPLIT), out=str(self.rl_dir),
                       group_scale="none",
                       max_iterations=c.rl_iterations, group_size=c.rl_group_size,
                       episodes_per_iteration=c.rl_episodes_per_iteration, num_envs=c.num_envs, lr=c.rl_lr,
                       seed=c.seed, progress=False, loggers=("csv",), resume="last" if last.exists() else None,
                       overwrite=not last.exists())
        res = train_rl(cfg)
        return {"final": str(res.final), "metrics": res.metrics}

    def final(self) -> dict:
        """The last trained agent as one standalone folder (adapters merged; navtune_agent.json beside the
        weights), so `navtune eval --agent vlm --model OUT/final` needs no other flag."""
        from navtune.agents.models.card import export_standalone

        last = self.trained_agents()[-1]
        export_standalone(last.folder, self.final_dir)
        return {"name": last.name, "stage": last.stage, "from": str(last.folder)}

    def agents(self) -> list[tuple[str, str, Any]]:
        """(table name, ladder stage, AgentSpec or agent folder) of every evaluated agent, in table order; the
        final agent is evaluated from OUT/final, exactly as a user reloads it."""
        from navtune.evaluation import AgentSpec

        trained = self.trained_agents()
        rows: list[tuple[str, str, Any]] = [("random", "baseline", AgentSpec("random", seed=self.cfg.seed)),
                                            ("forward-only", "baseline", AgentSpec("forward")),
                                            ("untrained", "untrained", self.base)]
        for a in trained[:-1]:
            rows.append((a.name, a.stage, a.folder))
        rows.append((trained[-1].name, trained[-1].stage, self.final_dir))
        return rows

    def evaluate(self) -> dict:
        from navtune.evaluation import EvalConfig, build_policy, load_episodes, run_eval

        c = self.cfg
        task = self.eval_task(TEST_SPLIT)
        n = len(load_episodes(task))
        cfgs = EvalConfig(num_envs=c.num_envs, save_frames=2, progress=False)
        out = {}
        for name, stage, agent in self.agents():
            if isinstance(agent, Path):
                spec, policy = self.policy(agent)
            else:
                spec, policy = agent, build_policy(agent, "graph")
            advance = self._sub(f"eval {name}", n)
            res = run_eval(self.run_dir(name), spec, task, cfgs, name=name, policy=policy,
                           on_row=lambda row: advance(1))
            out[name] = {"stage": stage, **{k: res["summary"].get(k) for k in SUMMARY_KEYS}}
        return out

    def report(self) -> dict:
        from navtune.viz import build_report, load_run, markdown_table
        from navtune.viz.report import paired_table

        names = [name for name, _, _ in self.agents()]
        dirs = [self.run_dir(n) for n in names]
        c = self.cfg
        stages = " -> ".join(a.name for a in self.trained_agents())
        intro = (f"navtune demo: a tiny Qwen2.5-VL trained on {c.train_houses} generated houses ({stages}), "
                 f"evaluated with the baselines on held-out houses {c.test_seeds} (VLN, low-level graph actions, "
                 f"step budget {c.eval_max_steps}); 95 % intervals: Wilson for SR, bootstrap over episodes "
                 "otherwise.")
        path = build_report(dirs, self.report_dir, names=names, episodes=2, title="navtune demo", intro=intro)
        runs = [load_run(d, n) for d, n in zip(dirs, names)]
        table = markdown_table(runs)
        # each rung against the one below it, on the same episodes: does the stage help?
        ladder = [r for r in runs if r.name in ("forward-only", "untrained")] + runs[3:]
        pairs = "\n\n".join(paired_table([a, b]) for a, b in zip(ladder, ladder[1:]))
        (self.report_dir / "table.md").write_text(table + "\n\n" + pairs + "\n")
        return {"report": str(path), "table": table, "paired": pairs}

    def write_summary(self, eval_info: dict) -> dict:
        """OUT/summary.json (shape in the module docstring); wall_s sums every stage's recorded seconds."""
        wall = 0.0
        for stage in STAGES:
            if self.done(stage.name):
                wall += float(json.loads(self.marker(stage.name).read_text()).get("seconds", 0.0))
        summary = {"final": self.trained_agents()[-1].name, "wall_s": round(wall, 1), "test_seeds": self.cfg.test_seeds,
                   "test_file": f"episodes/R2R_{TEST_SPLIT}.json", "agents": eval_info}
        atomic_write_json(self.out / SUMMARY_FILE, summary)
        return summary


@dataclass(frozen=True)
class Stage:
    """One resumable step of the demo: `run(demo)` returns what its marker records; `enabled(cfg)` False
    records it as skipped."""

    name: str
    title: str
    run: Callable[[Demo], dict]
    enabled: Callable[[DemoConfig], bool] = lambda cfg: True


STAGES: tuple[Stage, ...] = (
    Stage("houses", "generate houses and VLN episodes", Demo.houses),
    Stage("expert", "collect expert trajectories", Demo.expert_data),
    Stage("model", "build a tiny Qwen2.5-VL", Demo.model),
    Stage("sft", "supervised fine-tuning on the expert data", Demo.sft),
    Stage("dagger", "DAgger rounds (the agent drives, the expert labels)", Demo.dagger,
          lambda c: c.dagger_rounds > 0),
    Stage("mine", "mine the agent's failures", Demo.mine, lambda c: c.awr_epochs > 0 and c.mine_episodes > 0),
    Stage("awr", "AWR round on expert + failure data (LoRA)", Demo.awr, lambda c: c.awr_epochs > 0),
    Stage("rl", "online RL (GRPO roll-outs on the training houses)", Demo.rl, lambda c: c.rl_iterations > 0),
    Stage("final", "export the final agent to OUT/final", Demo.final),
    Stage("eval", "evaluate the agents on held-out houses", Demo.evaluate),
    Stage("report", "write the report", Demo.report),
)


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


def run_demo(out: str | os.PathLike, quick: bool = False, cfg: DemoConfig | None = None, show: bool = True,
             test_seeds: str | None = None) -> dict:
    """Run (or resume) the demo in `out` (`test_seeds` 'A-B' replaces the held-out houses); returns
    {"report": path, "table": markdown, "timings": {...}, "summary": OUT/summary.json path, ...}."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    os.environ.setdefault("PYGLET_HEADLESS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    cfg = cfg or (QUICK if quick else FULL)
    try:
        cfg = cfg.with_test_seeds(test_seeds)
    except ValueError as e:
        raise DemoError(str(e)) from None
    out = Path(out)
    DemoFolders(out).claim(cfg.to_dict())  # before any work: a folder of another recipe is refused
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
        for k, st in enumerate(STAGES, 1):
            stage = st.name
            title = f"[{k}/{len(STAGES)}] {st.title}"
            skip = None
            if demo.done(stage):
                skip = "done before, skipped"
            elif not st.enabled(cfg):
                demo.mark(stage, {"skipped": True, "seconds": 0.0})
                skip = "not in this recipe, skipped"
            if skip:
                results[stage] = json.loads(demo.marker(stage).read_text())
                if plain:
                    say(f"{title}: {skip}")
                if live:
                    progress.console.print(f"[dim]{title}: {skip}[/dim]")
                progress.advance(overall)
                continue
            task = progress.add_task(f"{title}", total=None)
            if plain:
                say(f"{title}: started")
            t0 = time.perf_counter()
            info = st.run(demo)
            timings[stage] = time.perf_counter() - t0
            demo.mark(stage, {**info, "seconds": round(timings[stage], 1)})
            results[stage] = info
            if plain:
                say(f"{title}: done in {timings[stage]:.1f} s")
            progress.update(task, total=1, completed=1, description=f"{title} [green]✓[/green] ({timings[stage]:.0f} s)")
            progress.advance(overall)
    total = time.perf_counter() - t_start
    rep = results["report"]
    eval_info = {k: v for k, v in results["eval"].items() if k not in ("stage", "seconds")}
    summary = demo.write_summary(eval_info)
    return {"report": rep["report"], "table": rep["table"], "paired": rep.get("paired", ""), "timings": timings,
            "seconds": total, "wall_s": summary["wall_s"], "eval": eval_info, "final": summary["final"],
            "summary": str(out / SUMMARY_FILE)}
