"""Assemble and run a training job: model + LoRA/freezing, data, Lightning Trainer, checkpoints, export.

Outputs under ``cfg.out``::

    navtune_train.json            the config of the run
    checkpoints/step=N.ckpt, last.ckpt   Lightning checkpoints (trained weights + optimizer, scheduler,
                                  loop and data-loader state): ``--resume`` continues exactly
    logs/csv/version_K/metrics.csv, logs/tb/version_K/   CSV and TensorBoard logs
    final/                        the trained model: a full HF folder (safetensors) or a peft adapter
                                  (adapter_model.safetensors + adapter_config.json), with the processor,
                                  system_prompt.txt, value_head.safetensors (AWR) and navtune_train.json
    loss_history.jsonl            one line per optimizer step (trimmed to the checkpoint's step on resume)

One run per folder: a non-empty ``out`` is refused unless ``--resume`` (continue it) or ``--overwrite``
(delete the previous run's files, only those), and the folder is locked while training
(`navtune.core.lock.FolderLock`), so a second ``navtune train`` into it fails naming the first one's pid.
"""
from __future__ import annotations

import dataclasses

import math
import warnings
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from navtune.core.errors import one_line
from navtune.core.hub import is_hub_id
from navtune.core.io import atomic_write_json
from navtune.trainers.config import AWRConfig, TrainConfig
from navtune.trainers.freeze import (TrainSetupError, apply_lora, freeze_embeddings, freeze_vision, read_config_json,
                                     trainable_summary)

VL_MODEL_TYPES = ("qwen2_5_vl", "qwen2_vl")


def check_model_dir(path: str | Path) -> None:
    """A clear error for a folder that is not a Qwen2(.5)-VL checkpoint (before transformers' own)."""
    p = Path(path)
    if is_hub_id(path):
        return  # the hub (or its cache) decides
    if not p.exists():
        raise TrainSetupError(f"model folder not found: {p}")
    cfg_file = p / "config.json"
    if not cfg_file.is_file():
        raise TrainSetupError(f"{p}: not a model folder (no config.json)")
    cfg = read_config_json(cfg_file)
    mt = cfg.get("model_type")
    if mt not in VL_MODEL_TYPES or "vision_config" not in cfg:
        raise TrainSetupError(f"{cfg_file}: field 'model_type' is {mt!r}; navtune trains vision-language models "
                              f"({' / '.join(VL_MODEL_TYPES)}) with a 'vision_config'")
    if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
        raise TrainSetupError(f"{p}: no weights (*.safetensors) in the model folder")
    from navtune.agents.models.loading import check_model_files

    check_model_files(p)  # truncated weights, garbage tokenizer / processor files: one error naming the file


def check_dataset_format(data_dir: str | Path, fmt: str) -> None:
    """A clear error when a dataset's action space does not match what the prompt format speaks."""
    from navtune.agents.prompts import PROMPT_FORMATS, format_class
    from navtune.data.format import EpisodeDataset

    try:
        want = format_class(fmt).action_spaces
    except KeyError:
        raise TrainSetupError(f"unknown prompt format {fmt!r}; known: {PROMPT_FORMATS.keys()}") from None
    ds = EpisodeDataset(data_dir)
    if "format" in ds.info.get("prompt", {}) and ds.info["prompt"]["format"] != fmt:
        raise TrainSetupError(f"{ds.root}/dataset_info.json: field 'prompt.format' is "
                              f"{ds.info['prompt']['format']!r} but training uses --format {fmt}")
    for ep in ds.episodes:
        if ep.action_space not in want:
            raise TrainSetupError(
                f"{ds.manifest_path}: episode {ep.episode_id!r} field 'action_space' is {ep.action_space!r} "
                f"but prompt format {fmt!r} speaks {' / '.join(want)} actions: dataset and format do not match")
        if not ep.steps:
            raise TrainSetupError("is empty: an episode without steps has nothing to train on",
                                  file=ds.manifest_path, where=f"episode {ep.episode_id!r}", field="steps")
    if len(ds) == 0:
        raise TrainSetupError(f"{ds.manifest_path}: the dataset has no episodes")


#: What a training run writes into its folder (what --overwrite deletes; nothing else is touched).
RUN_ENTRIES = ("checkpoints", "logs", "final", "final.tmp", "loss_history.jsonl", "navtune_train.json")


def check_checkpoint(path: str | Path) -> dict:
    """Open a checkpoint the way resuming will (weights_only, memory-mapped: no weights are read) and
    return it; a missing, truncated, non-checkpoint or pickled (weights_only refuses it) file is a
    `TrainSetupError` naming it."""
    import pickle
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise TrainSetupError("checkpoint to resume from not found", file=path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        raise TrainSetupError(f"refused: it holds pickled objects that weights_only loading does not allow "
                              f"({one_line(e)[:200]}); navtune only resumes from its own checkpoints", file=path) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise TrainSetupError(f"not a readable checkpoint (truncated or corrupt?): {one_line(e)[:300]}",
                              file=path) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("global_step"), int):
        raise TrainSetupError("not a Lightning checkpoint", file=path, field="global_step")
    return ckpt


def prepare_run_folder(out: Path, resume: str | None, overwrite: bool, entries: tuple[str, ...] = RUN_ENTRIES) -> None:
    """Refuse to mix two runs in one folder: a non-empty `out` needs `resume` (continue the run) or
    `overwrite` (delete the previous run's own files, `entries`, and start afresh)."""
    from navtune.core.lock import LOCK_FILE

    present = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE) if out.is_dir() else []
    if not present or resume:
        return
    if not overwrite:
        raise TrainSetupError(f"is not empty (holds {', '.join(present[:5])}): it holds another run; pass --resume "
                              "last to continue it, --overwrite to replace it, or a new --out folder", file=out)
    for name in entries:
        p = out / name
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)


def trim_history(out: Path, step: int) -> None:
    """Drop loss-history lines after the checkpoint's optimizer step: the resumed run logs them again."""
    from navtune.core.io import read_jsonl, write_jsonl
    from navtune.trainers.module import HISTORY_FILE

    path = out / HISTORY_FILE
    if not path.exists():
        return
    rows = read_jsonl(path, TrainSetupError)
    keep = [r for r in rows if isinstance(r, dict) and isinstance(r.get("step"), int) and r["step"] <= step]
    if len(keep) != len(rows) or path.read_bytes()[-1:] not in (b"\n", b""):
        write_jsonl(path, keep)


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def load_trainable(cfg: TrainConfig):
    """(model ready to train, processor): loaded, vision frozen or LoRA applied, checkpointing set."""
    from navtune.agents.models.loading import load_model, set_activation_checkpointing

    check_model_dir(cfg.model)
    precision = str(resolve_precision(cfg.precision, cfg.accelerator))
    # "-true" precisions hold the weights in that dtype; mixed ones keep float32 weights
    dtype = {"bf16-true": "bfloat16", "64-true": "float64", "64": "float64"}.get(precision, "float32")
    try:
        loaded = load_model(cfg.model, dtype=dtype, device="cpu",
                            attn_implementation="auto" if torch.cuda.is_available() else "sdpa")
    except OSError as e:  # e.g. a hub id while offline, or a folder without a tokenizer
        raise TrainSetupError(f"could not load model {cfg.model!r}: {e}") from None
    model = loaded.model
    model.config.use_cache = False
    if cfg.lora:
        model = apply_lora(model, cfg.lora_cfg)
    else:
        if cfg.freeze_vision:
            freeze_vision(model)
        if cfg.freeze_embeddings:
            freeze_embeddings(model)
    if cfg.gradient_checkpointing:
        set_activation_checkpointing(model, True)
    model.train()
    return model, loaded.processor


def make_strategy(cfg: TrainConfig):
    """Lightning strategy object for cfg.strategy (gloo for DDP on CPU)."""
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

    on_cpu = cfg.accelerator == "cpu" or not torch.cuda.is_available()
    if cfg.strategy == "ddp":
        return DDPStrategy(process_group_backend="gloo" if on_cpu else "nccl", find_unused_parameters=False)
    if cfg.strategy == "fsdp":
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
            Qwen2_5_VLDecoderLayer,
            Qwen2_5_VLVisionBlock,
        )

        return FSDPStrategy(auto_wrap_policy={Qwen2_5_VLDecoderLayer, Qwen2_5_VLVisionBlock},
                            sharding_strategy="FULL_SHARD", state_dict_type="full",
                            use_orig_params=True, process_group_backend="gloo" if on_cpu else None)
    if cfg.strategy == "deepspeed":
        return "deepspeed_stage_2"
    return "auto"


class ExportCallback(pl.Callback):
    """Writes ``out/final`` (HF folder or peft adapter + processor + config) when training ends."""

    def __init__(self, cfg: TrainConfig, processor, out: Path, system_prompt: str | None = None):
        self.cfg, self.processor, self.out, self.system_prompt = cfg, processor, out, system_prompt

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        state_dict = None
        if type(trainer.strategy).__name__ == "FSDPStrategy":  # sharded: gather (collective, every rank)
            full = trainer.strategy.lightning_module_state_dict()
            state_dict = {k[len("model."):]: v for k, v in full.items() if k.startswith("model.")}
        if trainer.is_global_zero:
            export_model(pl_module, self.processor, self.cfg, self.out, state_dict, self.system_prompt)


def export_model(module, processor, cfg: TrainConfig, out: Path, state_dict: dict | None = None,
                 system_prompt: str | None = None) -> Path:
    """Save the trained model (full or adapter) with everything needed to load it back, and the system prompt
    it was trained with (`system_prompt`, else the file the run named or the model folder's)."""
    tmp = staging_folder(out)
    model = module.model
    if state_dict is not None:
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    else:
        model.save_pretrained(tmp, safe_serialization=True)
    processor.save_pretrained(tmp)
    write_agent_files(tmp, cfg, adapter=hasattr(model, "peft_config"),
                      trainer="awr" if isinstance(cfg, AWRConfig) else "sft", system_prompt=system_prompt)
    return publish_agent_folder(tmp, out, getattr(module, "value_head", None), cfg.to_dict())


def staging_folder(out: Path) -> Path:
    """An empty `out.tmp` beside `out`: an agent folder is written there, then `publish_agent_folder` renames it."""
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    return tmp


def publish_agent_folder(tmp: Path, out: Path, value_head: torch.nn.Module | None, config: dict) -> Path:
    """Finish an agent written into `tmp` (its value head, if any, and the run's config as navtune_train.json)
    and move it into place as `out` (a reader never sees half a folder): what SFT / AWR and RL exports share."""
    from safetensors.torch import save_file

    if value_head is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in value_head.state_dict().items()},
                  str(tmp / "value_head.safetensors"))
    atomic_write_json(tmp / "navtune_train.json", config)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def data_action_space(data: str | None) -> str | None:
    """The action space of the (first) training dataset folder, when it is one (None otherwise)."""
    from navtune.data.format import EpisodeDataset
    from navtune.trainers.sources import data_dirs

    for d in data_dirs(data or ""):
        try:
            eps = EpisodeDataset(d).episodes
        except (OSError, ValueError):
            return None
        return eps[0].action_space if eps else None
    return None


def write_agent_files(folder: Path, cfg: Any, adapter: bool, trainer: str, action_space: str | None = None,
                      system_prompt: str | None = None) -> None:
    """What makes an output folder a self-describing agent: system_prompt.txt and navtune_agent.json (the
    format, frame size, action space, system prompt and base model the weights need). `system_prompt`: the
    text the run trained with (else the file the run named, the model folder's, or the format's own)."""
    from navtune.agents.models.card import make_card, write_card
    from navtune.agents.prompts import get_format, load_system_prompt

    space = action_space or data_action_space(getattr(cfg, "data", None))
    fmt = get_format(cfg.format, action_space=space)
    prompt = system_prompt
    if prompt is None:
        prompt = load_system_prompt(cfg.system_prompt, cfg.model, format=fmt)
    (Path(folder) / "system_prompt.txt").write_text(prompt, encoding="utf-8")
    card = make_card(cfg.format, cfg.image_size, space, prompt, cfg.model, adapter, trainer,
                     sees_depth=bool(getattr(cfg, "depth", False)))
    if getattr(cfg, "answer", "action-only") != "action-only" and any(p.kind == "free" for p in fmt.answer_parts()):
        # trained to write its answer's free text (e.g. grounded Observation / Reasoning): it must generate it;
        # scoring actions after an empty skeleton is a prompt it never saw
        card = dataclasses.replace(card, decode="generate")
    write_card(folder, card)


@dataclass
class RunResult:
    out: Path
    final: Path
    last_checkpoint: Path | None
    metrics: dict[str, float]
    trainable: dict[str, int]
    global_zero: bool = True


def train(cfg: TrainConfig, train_source=None, val_source=None, model=None, processor=None,
          callbacks: list[pl.Callback] | None = None) -> RunResult:
    """Run SFT (TrainConfig) or AWR/RWR (AWRConfig) into `cfg.out` (one run per folder, locked while it
    trains; see the module docstring). Sources default to cfg.data read with cfg.format."""
    from lightning.pytorch.utilities import rank_zero_only

    from navtune.core.lock import FolderLock

    out = Path(cfg.out)
    resume = cfg.resume
    if resume == "last":
        resume = str(out / "checkpoints" / "last.ckpt")
    if model is None:
        check_model_dir(cfg.model)
    if train_source is None:  # inputs first: a bad model or dataset leaves no run folder behind
        from navtune.trainers.sources import data_dirs

        for d in data_dirs(cfg.data) + (data_dirs(cfg.val_data) if cfg.val_data else []):
            check_dataset_format(d, cfg.format)
    lock = None
    if getattr(rank_zero_only, "rank", 0) == 0:  # DDP worker processes share rank 0's folder and lock
        lock = FolderLock(out, what="training run").acquire()
    try:
        if lock is not None:
            prepare_run_folder(out, resume, cfg.overwrite)
            if resume:
                trim_history(out, check_checkpoint(resume)["global_step"])
        return _train(cfg, out, resume, train_source, val_source, model, processor, callbacks)
    finally:
        if lock is not None:
            lock.release()


def _train(cfg: TrainConfig, out: Path, resume: str | None, train_source, val_source, model, processor,
           callbacks: list[pl.Callback] | None) -> RunResult:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from navtune.trainers.datamodule import EpisodeDataModule
    from navtune.trainers.module import NavTrainModule

    # checkpoints are taken after the optimizer step on purpose (that is the state a resume continues from)
    warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
    warnings.filterwarnings("ignore", message=".*`is_gradient_checkpointing` is deprecated.*")
    # Lightning's own deprecation of its pytree helper, and the frozen modules (vision) we keep in eval mode on purpose
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if model is None:
        model, processor = load_trainable(cfg)
    if train_source is None:
        from navtune.trainers.sources import dataset_source

        train_source = dataset_source(cfg, processor, cfg.data)
        if cfg.val_data:
            val_source = dataset_source(cfg, processor, cfg.val_data)
    is_awr = isinstance(cfg, AWRConfig)
    dm = EpisodeDataModule(train_source, val_source, seed=cfg.seed, shuffle=cfg.shuffle, num_workers=cfg.num_workers)

    loggers = []
    if "csv" in cfg.loggers:
        loggers.append(CSVLogger(out / "logs", name="csv"))
    if "tensorboard" in cfg.loggers:
        loggers.append(TensorBoardLogger(out / "logs", name="tb", default_hp_metric=False))
    every = cfg.checkpoint_every or None
    # enable_version_counter=False: a resumed run re-saving step=N overwrites it (no stray step=N-v1.ckpt)
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="step={step}", auto_insert_metric_name=False,
                           every_n_train_steps=every, every_n_epochs=None if every else 1,
                           save_top_k=-1, save_last=True, save_on_train_epoch_end=True, enable_version_counter=False)
    cbs = [ckpt, ExportCallback(cfg, processor, out / "final", getattr(train_source, "system_prompt", None)),
           *(callbacks or [])]
    trainer = pl.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=make_strategy(cfg),
        precision=resolve_precision(cfg.precision, cfg.accelerator), max_epochs=cfg.epochs, max_steps=cfg.max_steps,
        logger=loggers or False, callbacks=cbs, log_every_n_steps=cfg.log_every, use_distributed_sampler=False,
        enable_progress_bar=cfg.progress, default_root_dir=str(out), num_sanity_val_steps=0,
        enable_model_summary=False, deterministic=False, limit_val_batches=None if val_source is not None else 0,
    )
    world = trainer.world_size
    batches = len(train_source) // world
    if batches == 0:
        raise TrainSetupError(f"{len(train_source)} training episodes for {world} processes: nothing to train on")
    steps_per_epoch = math.ceil(batches / cfg.accumulate_episodes)
    total = cfg.max_steps if cfg.max_steps > 0 else steps_per_epoch * cfg.epochs
    # the dataset's mean return: the baseline itself (--baseline dataset) or the value head's starting point
    baseline = dm.mean_return(cfg.gamma) if is_awr else 0.0  # type: ignore[attr-defined]
    module = NavTrainModule(model, cfg, total_steps=total, tokenizer=getattr(processor, "tokenizer", processor),
                            dataset_baseline=baseline)
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "navtune_train.json", cfg.to_dict())
    trainer.fit(module, datamodule=dm, ckpt_path=resume)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
    last = out / "checkpoints" / "last.ckpt"
    return RunResult(out, out / "final", last if last.exists() else None, metrics, trainable_summary(model),
                     trainer.is_global_zero)


def read_history(out: str | Path) -> dict[int, float]:
    """Optimizer step -> loss (mean over the step's episodes and processes) of a run (later lines win)."""
    from navtune.core.io import read_jsonl
    from navtune.trainers.module import HISTORY_FILE

    return {int(r["step"]): float(r["loss"]) for r in read_jsonl(Path(out) / HISTORY_FILE)}


def read_metrics(out: str | Path, key: str) -> dict[int, float]:
    """Logger step -> value of one metric from every CSV log version of a run (later versions win)."""
    import csv

    vals: dict[int, float] = {}
    for f in sorted((Path(out) / "logs" / "csv").glob("version_*/metrics.csv"),
                    key=lambda p: int(p.parent.name.split("_")[1])):
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get(key) not in (None, ""):
                    vals[int(row["step"])] = float(row[key])
    return vals


def describe(result: RunResult) -> dict[str, Any]:
    return {"out": str(result.out), "final": str(result.final), "metrics": result.metrics, **result.trainable}
