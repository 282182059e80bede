"""`train_rl(cfg) -> RunResult`: an online RL run end to end (what `navtune train rl` and the demo call).

Outputs under ``cfg.out``::

    navtune_train.json                    the run's config
    rl_history.jsonl                      one line per iteration: mean return, SR of the training roll-outs, KL to
                                          the reference, entropy, clip fraction, roll-out env-steps/s, update s, ...
    checkpoints/iteration=N.ckpt, last.ckpt   trained weights, optimizer, loop and iteration state (--resume)
    logs/csv/version_K/metrics.csv, logs/tb/version_K/   the same scalars per iteration (x axis: iteration)
    final/                                the agent: a peft adapter over the starting model (LoRA) or a full
                                          model (--full, or a merged --adapter), processor, system_prompt.txt,
                                          navtune_agent.json (navtune eval --agent vlm --model final needs
                                          nothing else), value_head.safetensors (PPO), navtune_train.json
"""
from __future__ import annotations

import copy
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from navtune.core.io import atomic_write_json
from navtune.evaluation.agents import AUTO, DEFAULT_IMAGE_SIZE
from navtune.rl.config import RLConfig
from navtune.rl.module import RLModule, StartingAgent
from navtune.trainers.freeze import TrainSetupError, apply_lora, freeze_vision, trainable_summary
from navtune.trainers.run import RunResult, check_model_dir, publish_agent_folder, staging_folder

DEFAULT_FORMAT = "chat"
LOAD_DTYPES = {"64-true": "float64", "bf16-true": "bfloat16"}


def resolve_start(cfg: RLConfig) -> StartingAgent:
    """The starting agent: the config's settings, else the model folder's navtune_agent.json, else defaults
    (chat, 320x240); an adapter folder given as --model becomes its base + that adapter."""
    from navtune.agents.models.card import CARD_FILE, read_card
    from navtune.agents.prompts import format_class, load_system_prompt

    card = read_card(cfg.model)
    model, adapter = cfg.model, cfg.adapter
    if card is not None and card.adapter:
        if cfg.adapter:
            raise TrainSetupError(f"--model {cfg.model} is a LoRA adapter over {card.base_model} "
                                  f"({Path(cfg.model) / CARD_FILE}); give it alone, without --adapter")
        model, adapter = card.base_model, cfg.model
    fmt = cfg.format or (card.format if card else DEFAULT_FORMAT)
    if cfg.image_size != AUTO:
        size = cfg.image_size
    else:
        size = card.image_size if card is not None else DEFAULT_IMAGE_SIZE
    if cfg.system_prompt:
        prompt = load_system_prompt(cfg.system_prompt)
    elif card is not None:
        prompt = card.system_prompt
    else:
        prompt = load_system_prompt(None, model_dir=cfg.model)
    space = cfg.task.action_space
    try:
        speaks = format_class(fmt).action_spaces
    except KeyError as e:
        raise TrainSetupError(str(e)) from None
    if space not in speaks:
        raise TrainSetupError(f"prompt format {fmt!r} speaks {' / '.join(speaks)} actions but the episodes "
                              f"({cfg.task.backend}) need {space}")
    if card is not None and card.action_space not in (None, space):
        raise TrainSetupError(f"{Path(cfg.model) / CARD_FILE}: field 'action_space' is {card.action_space!r} but the "
                              f"episodes need {space}")
    return StartingAgent(str(model), adapter, fmt, tuple(size) if size else None, prompt, space)


def load_policy_model(cfg: RLConfig, start: StartingAgent) -> tuple[Any, Any, torch.nn.Module | None]:
    """(model to train, processor, frozen reference copy or None). The starting adapter is merged; LoRA
    (default) adds a fresh adapter on the language model (the reference is the adapter switched off); --full
    trains the language model and keeps a frozen copy as the reference. The vision tower never trains."""
    from navtune.agents.models.loading import load_model

    check_model_dir(start.model)
    try:
        loaded = load_model(start.model, dtype=LOAD_DTYPES.get(cfg.precision, "float32"), device="cpu")
    except OSError as e:
        raise TrainSetupError(f"could not load model {start.model!r}: {e}") from None
    model = loaded.model
    if start.adapter:
        from peft import PeftModel

        from navtune.trainers.freeze import check_adapter_matches

        check_adapter_matches(start.adapter, model)
        model = PeftModel.from_pretrained(model, start.adapter).merge_and_unload()
    model.config.use_cache = False
    reference = None
    if cfg.lora:
        model = apply_lora(model, cfg.lora_cfg)
    else:
        freeze_vision(model)
        reference = copy.deepcopy(model).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
    return model, loaded.processor, reference


class _Iterations(torch.utils.data.Dataset):
    """The data module's items: iteration indices 0..n-1 (the loader's saved position is the iteration)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i

    def rewards(self, i: int) -> list[float]:  # EpisodeSource protocol (unused)
        return []


class IterationCheckpoint(pl.Callback):
    """checkpoints/iteration=N.ckpt every `every` iterations and after the last, last.ckpt always (written
    atomically: a copy then a rename)."""

    def __init__(self, folder: Path, every: int, total: int):
        self.folder, self.every, self.total = folder, every, total

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: RLModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        done = int(batch) + 1
        if done % self.every and done != self.total:
            return
        path = self.folder / f"iteration={done}.ckpt"
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            tmp = self.folder / "last.ckpt.tmp"
            shutil.copyfile(path, tmp)
            tmp.replace(self.folder / "last.ckpt")


class IterationLines(pl.Callback):
    """One plain line per iteration (logs, CI, pipes: no carriage-return bar when not on a terminal)."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: RLModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        s = pl_module.last_stats
        if not trainer.is_global_zero or not s:
            return
        print(f"iteration {int(batch) + 1}/{pl_module.cfg.max_iterations}  return {s['return']:+.3f}  "
              f"sr {s['sr']:.2f}  kl {s['kl']:.4f}  entropy {s['entropy']:.3f}  clip {s['clip_frac']:.2f}  "
              f"{s['env_steps_per_s']:.0f} env-steps/s  roll-out {s['rollout_s']:.1f}s  update {s['update_s']:.1f}s",
              file=sys.stderr, flush=True)


class ExportAgent(pl.Callback):
    def __init__(self, cfg: RLConfig, start: StartingAgent, processor: Any, out: Path):
        self.cfg, self.start, self.processor, self.out = cfg, start, processor, out

    def on_train_end(self, trainer: pl.Trainer, pl_module: RLModule) -> None:
        if trainer.is_global_zero:
            export_agent(pl_module, self.cfg, self.start, self.processor, self.out)


def export_agent(module: RLModule, cfg: RLConfig, start: StartingAgent, processor: Any, out: Path) -> Path:
    """Write the trained agent (adapter or full model) with navtune's card beside it."""
    from navtune.agents.models.card import make_card, write_card

    tmp = staging_folder(out)
    model = module.model
    as_adapter = cfg.lora and not start.adapter
    if cfg.lora and start.adapter:  # the starting adapter was merged: the agent is a full model
        merged = copy.deepcopy(model).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
    else:
        model.save_pretrained(tmp, safe_serialization=True)
    processor.save_pretrained(tmp)
    (tmp / "system_prompt.txt").write_text(start.system_prompt, encoding="utf-8")
    write_card(tmp, make_card(start.format, start.image_size, start.action_space, start.system_prompt, start.model,
                              adapter=as_adapter, trainer=f"rl-{cfg.algo}"))
    return publish_agent_folder(tmp, out, module.value_head, cfg.to_dict())


def train_rl(cfg: RLConfig, callbacks: list[pl.Callback] | None = None) -> RunResult:
    """Run online RL (see `RLModule`) into `cfg.out`, one run per folder as `navtune train sft` (locked while it
    trains; a non-empty folder needs --resume or --overwrite); returns its folders and last iteration's scalars."""
    from navtune.core.lock import FolderLock
    from navtune.rl.module import HISTORY_FILE
    from navtune.trainers.run import RUN_ENTRIES, prepare_run_folder

    out = Path(cfg.out)
    resume = str(out / "checkpoints" / "last.ckpt") if cfg.resume == "last" else cfg.resume
    with FolderLock(out, what="RL run"):
        prepare_run_folder(out, resume, cfg.overwrite, RUN_ENTRIES + (HISTORY_FILE,))
        return _train_rl(cfg, callbacks)


def _train_rl(cfg: RLConfig, callbacks: list[pl.Callback] | None) -> RunResult:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from navtune.evaluation.backends import load_episodes
    from navtune.trainers.datamodule import EpisodeDataModule

    out = Path(cfg.out)
    warnings.filterwarnings("ignore", message=".*`is_gradient_checkpointing` is deprecated.*")
    # Lightning's own deprecation of its pytree helper, and the frozen modules (vision) we keep in eval mode on purpose
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`val_dataloader` but have no `validation_step`.*")  # no val set
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    start = resolve_start(cfg)
    episodes = load_episodes(cfg.task)
    if not episodes:
        raise TrainSetupError(f"no episodes to roll out on in {cfg.task.data_dir or cfg.task.episodes}")
    model, processor, reference = load_policy_model(cfg, start)
    module = RLModule(model, processor, cfg, start, episodes, reference)
    dm = EpisodeDataModule(_Iterations(cfg.max_iterations), seed=cfg.seed, shuffle=False)
    loggers = []
    if "csv" in cfg.loggers:
        loggers.append(CSVLogger(out / "logs", name="csv"))
    if "tensorboard" in cfg.loggers:
        loggers.append(TensorBoardLogger(out / "logs", name="tb", default_hp_metric=False))
    bar = cfg.progress and sys.stderr.isatty()
    cbs = [IterationCheckpoint(out / "checkpoints", cfg.checkpoint_every, cfg.max_iterations),
           ExportAgent(cfg, start, processor, out / "final"), *(callbacks or [])]
    if cfg.progress and not bar:
        cbs.append(IterationLines())
    trainer = pl.Trainer(accelerator=cfg.accelerator, devices=1, precision=cfg.precision, max_epochs=1,
                         logger=loggers or False, callbacks=cbs, enable_checkpointing=False,
                         enable_progress_bar=bar, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, default_root_dir=str(out), use_distributed_sampler=False,
                         log_every_n_steps=1)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "navtune_train.json", cfg.to_dict())
    resume = cfg.resume
    if resume == "last":
        resume = str(out / "checkpoints" / "last.ckpt")
    if resume and not Path(resume).is_file():
        raise TrainSetupError(f"checkpoint to resume from not found: {resume}")
    trainer.fit(module, datamodule=dm, ckpt_path=resume)
    last = out / "checkpoints" / "last.ckpt"
    return RunResult(out, out / "final", last if last.exists() else None, dict(module.last_stats),
                     trainable_summary(model), trainer.is_global_zero)
