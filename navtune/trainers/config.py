"""Training configuration: one dataclass per trainer, with the seed recipes as defaults.

Seed 1 (Qwen2.5-VL-3B-R2R-low-level): language model trained, vision encoder and merger frozen, AdamW
lr 1e-5, weight decay 0.1, bf16, linear schedule with warm-up over the first 10 % of the steps, batch 1
with gradient accumulation over each episode's steps. Seed 2 (ObjectNav offline RL): LoRA adapters,
advantage/reward-weighted regression, L2 on the LoRA weights and an entropy bonus.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

#: LoRA targets: the attention and MLP projections of the *language model* layers only. A plain list
#: like ``["q_proj", ..., "down_proj"]`` would also hit the vision blocks' MLP (``visual.blocks.N.mlp``
#: has gate/up/down_proj in Qwen2.5-VL), so the pattern is anchored on ``language_model.layers``.
LORA_TARGET_REGEX = r".*language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"

Strategy = Literal["auto", "ddp", "fsdp", "deepspeed"]


@dataclass
class LoraConfig:
    """peft LoRA settings (used when ``TrainConfig.lora`` is on)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0  # 0 keeps resume and DDP comparisons exact; raise it for real runs
    target_regex: str = LORA_TARGET_REGEX
    init_path: str | None = None  # start from an existing adapter folder instead of a fresh one


@dataclass
class TrainConfig:
    """Everything one training run needs; saved next to its checkpoints as ``navtune_train.json``."""

    model: str = ""  # model folder (or hub id when online)
    data: str = ""  # navtune episode dataset folder
    format: str = "chat"  # prompt format: r2r-lowlevel | objectnav-json | chat
    out: str = "runs/train"
    val_data: str | None = None
    system_prompt: str | None = None  # file; default: the model folder's system_prompt.txt or navtune's
    target: Literal["action", "expert"] = "action"  # label the executed action, or the expert's (DAgger data)
    image_size: tuple[int, int] | None = (320, 240)  # frames resized to this (seed 1: 320x240); None: as stored
    # optimisation (seed-1 recipe)
    epochs: int = 1
    max_steps: int = -1  # optimizer steps; -1: epochs decide
    lr: float = 1e-5
    weight_decay: float = 0.1
    warmup_ratio: float = 0.1
    grad_clip: float | None = 1.0
    accumulate_episodes: int = 1  # episodes per optimizer step on each process
    token_reduction: Literal["mean", "sum"] = "mean"  # per action: mean (HF per-step loss) or sum (log-prob)
    precision: str = "auto"  # auto: bf16-mixed where supported, else 32-true
    seed: int = 0
    shuffle: bool = True
    # what is trained
    lora: bool = False
    lora_cfg: LoraConfig = field(default_factory=LoraConfig)
    freeze_vision: bool = True  # vision encoder + merger (seed 1)
    freeze_embeddings: bool = False  # token embeddings + lm_head (most of a tiny model's weights and step time)
    cache_image_features: bool = True  # encode each frame once per episode (per-step formats; frozen vision only)
    gradient_checkpointing: bool = False
    # scale
    strategy: Strategy = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    num_workers: int = 0
    # runs
    resume: str | None = None  # a Lightning .ckpt, or "last" for out/checkpoints/last.ckpt
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0: end of each epoch only
    log_every: int = 1
    progress: bool = True
    loggers: tuple[str, ...] = ("csv", "tensorboard")
    limit_episodes: int | None = None  # use only the first N training episodes (smoke runs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class AWRConfig(TrainConfig):
    """Offline RL (seed 2): LoRA on by default, advantage- (or reward-) weighted NLL."""

    lora: bool = True
    lr: float = 1e-4
    token_reduction: Literal["mean", "sum"] = "sum"  # log pi(a|s) of the whole action text
    method: Literal["awr", "rwr"] = "awr"
    beta: float = 1.0  # temperature of exp(A / beta)
    gamma: float = 0.99  # discount used to recompute returns from the dataset's per-step rewards
    max_weight: float = 20.0  # clip of exp(A / beta)
    baseline: Literal["value", "dataset"] = "value"
    value_coef: float = 0.5  # weight of the value head's squared error (baseline == "value")
    value_lr: float = 1e-3  # learning rate of the value head (its bias starts at the dataset's mean return)
    l2_coef: float = 0.0  # lambda_L2 * ||LoRA||^2
    entropy_coef: float = 0.0  # lambda_H: subtracts lambda_H * entropy over the allowed actions

