"""Training configuration: one dataclass per trainer, with the seed recipes as defaults. Each field carries
its command-line option (help, flag, checks; `navtune.core.config.option`): `navtune train sft|awr` is
generated from these classes, and `__post_init__` validates them (the same errors from Python and the CLI).

Seed 1 (Qwen2.5-VL-3B-R2R-low-level): language model trained, vision encoder and merger frozen, AdamW
lr 1e-5, weight decay 0.1, bf16, linear schedule with warm-up over the first 10 % of the steps, batch 1
with gradient accumulation over each episode's steps. Seed 2 (ObjectNav offline RL): LoRA adapters,
advantage/reward-weighted regression, L2 on the LoRA weights and an entropy bonus.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from navtune.core.config import check_fields, option, parse_size

#: LoRA targets: the attention and MLP projections of the *language model* layers only. A plain list
#: like ``["q_proj", ..., "down_proj"]`` would also hit the vision blocks' MLP (``visual.blocks.N.mlp``
#: has gate/up/down_proj in Qwen2.5-VL), so the pattern is anchored on ``language_model.layers``.
LORA_TARGET_REGEX = r".*language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"

Strategy = Literal["auto", "ddp", "fsdp", "deepspeed"]


def parse_devices(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def join_paths(paths: list[Any]) -> str:
    """Repeated ``--data`` folders -> the comma-separated `data` field."""
    return ",".join(str(p) for p in paths)


@dataclass
class LoraConfig:
    """peft LoRA settings (used when ``TrainConfig.lora`` is on)."""

    r: int = option(16, help="LoRA rank", flag="--lora-r")
    alpha: int = option(32, help="LoRA scaling alpha", flag="--lora-alpha")
    dropout: float = option(0.0, help="LoRA dropout (0 keeps resume and DDP comparisons exact; raise it for real runs)",
                            flag="--lora-dropout")
    target_regex: str = option(LORA_TARGET_REGEX, cli=False, help="modules that get adapters")
    init_path: str | None = option(None, help="start from this peft adapter folder (implies LoRA)", flag="--init-lora")


@dataclass
class TrainConfig:
    """Everything one training run needs; saved next to its checkpoints as ``navtune_train.json``. Each field's
    metadata is its `navtune train sft` option (help, flag, checks)."""

    model: str = option("", required=True, flag=("--model", "-m"),
                        help="Qwen2(.5)-VL model folder (or hub id when online)")
    data: str = option("", required=True, flag=("--data", "-d"), cli_type=list[Path], to_field=join_paths,
                       help="navtune episode dataset folder (repeat to train on several)")
    format: str = option("chat", flag=("--format", "-f"), help="prompt format: chat | r2r-lowlevel | objectnav-json")
    out: str = option("runs/train", flag=("--out", "-o"), help="run folder (checkpoints, logs, final model)")
    val_data: str | None = option(None, help="validation dataset folder (other houses/scans)")
    system_prompt: str | None = option(None, help="system prompt file (default: the model's or navtune's)")
    target: Literal["action", "expert"] = option("action", choices=("action", "expert"),
                                                 help="label the executed 'action' or the 'expert' action (DAgger)")
    image_size: tuple[int, int] | None = option((320, 240), cli_type=str, cli_default="320x240", to_field=parse_size,
                                               help="resize frames to WxH ('none': as stored; seed 1: 320x240)")
    answer: Literal["action-only", "grounded"] = option(
        "action-only", choices=("action-only", "grounded"),
        help="answer text around the action (objectnav-json's Observation / Reasoning): empty, or grounded in the "
             "simulator's knowledge of each view (generated houses)")
    text_fraction: float = option(1.0, min=0.0, help="share of steps whose answer text is labelled (the action "
                                  "always is); each labelled token costs a softmax over the whole vocabulary")
    answer_coef: float = option(1.0, min=0.0, help="weight of the answer text's mean token NLL in the loss")
    depth: bool = option(False, flag="--depth/--no-depth", help="show each step's depth frame as a second image "
                         "(a colour map; needs data collected with depth)")
    # optimisation (seed-1 recipe)
    epochs: int = option(1, min=1, help="passes over the training episodes")
    max_steps: int = option(-1, help="stop after N optimizer steps (-1: epochs decide)")
    lr: float = option(1e-5, help="AdamW learning rate (seed 1: 1e-5)")
    weight_decay: float = option(0.1, help="AdamW weight decay")
    warmup_ratio: float = option(0.1, help="linear warm-up over this fraction of the steps")
    grad_clip: float | None = option(1.0, help="gradient norm clip (none: no clipping)")
    accumulate_episodes: int = option(1, min=1, help="episodes per optimizer step on each process")
    chunk_batch: int = option(1, min=1, help="per-step samples of an episode forwarded together as one padded "
                              "batch (independent samples: the same gradient, fewer calls)")
    token_reduction: Literal["mean", "sum"] = option("mean", choices=("mean", "sum"),
                                                     help="per action: mean (HF per-step loss) or sum (log-prob)")
    precision: str = option("auto", help="auto (bf16-mixed on GPUs with bf16, else 32-true), bf16-true, 32-true, ...")
    seed: int = option(0, help="random seed")
    shuffle: bool = option(True, flag="--shuffle/--no-shuffle", help="shuffle the episodes each epoch")
    # what is trained
    lora: bool = option(False, flag="--lora/--full", help="LoRA adapters instead of full fine-tuning")
    lora_cfg: LoraConfig = option(default_factory=LoraConfig, nested=True)
    freeze_vision: bool = option(True, flag="--freeze-vision/--train-vision",
                                 help="freeze the vision encoder + merger (seed 1)")
    freeze_embeddings: bool = option(False, flag="--freeze-embeddings/--train-embeddings",
                                     help="leave token embeddings + lm_head as built (most of a tiny model's weights "
                                     "and step time; needs a large init, e.g. the tiny size's)")
    cache_image_features: bool = option(True, flag="--cache-image-features/--no-cache-image-features",
                                        help="encode each frame once per episode (per-step formats; frozen vision)")
    aux_labels: tuple[str, ...] = option((), flag="--aux-label", cli_type=list[str], cli_default=[], to_field=tuple,
                                         help="dense per-step labels from the simulator (navtune.data.step_labels: "
                                              "path-bearing, exits) predicted by auxiliary heads on the decision "
                                              "state, at training time only (episode formats; repeat for several)")
    aux_coef: float = option(0.5, min=0.0, help="weight of the auxiliary heads' losses (--aux-label)")
    gradient_checkpointing: bool = option(False, flag="--gradient-checkpointing/--no-gradient-checkpointing",
                                          help="recompute activations in the backward pass (less memory)")
    # scale
    strategy: Strategy = option("auto", choices=("auto", "ddp", "fsdp", "deepspeed"),
                                help="auto | ddp | fsdp | deepspeed")
    devices: int | str = option(1, cli_type=str, cli_default="1", to_field=parse_devices,
                                help="devices (processes) per node, or 'auto'")
    num_nodes: int = option(1, help="nodes")
    accelerator: str = option("auto", help="auto | cpu | gpu")
    num_workers: int = option(0, help="DataLoader workers decoding frames")
    # runs
    resume: str | None = option(None, help="Lightning checkpoint to continue from, or 'last'")
    overwrite: bool = option(False, help="start a new run in a non-empty --out folder: its previous run's "
                             "checkpoints, logs, final model and loss history are deleted (without this or "
                             "--resume, a non-empty --out is refused)")
    checkpoint_every: int = option(0, help="optimizer steps between checkpoints (0: every epoch)")
    log_every: int = option(1, help="optimizer steps between log lines")
    progress: bool = option(True, flag=("--quiet", "-q"), cli_type=bool, cli_default=False, to_field=lambda q: not q,
                            help="no progress bar")
    loggers: tuple[str, ...] = option(("csv", "tensorboard"), cli=False, help="csv and / or tensorboard")
    limit_episodes: int | None = option(None, help="train on the first N episodes only (smoke runs)")

    def __post_init__(self) -> None:
        check_fields(self)
        self.aux_labels = tuple(self.aux_labels)
        if self.aux_labels:
            from navtune.data.step_labels import STEP_LABELS

            for name in self.aux_labels:
                STEP_LABELS.get(name)  # a clear error listing the known labels
        if self.lora_cfg.init_path is not None:  # starting from an adapter means training LoRA
            self.lora = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class AWRConfig(TrainConfig):
    """Offline RL (seed 2): LoRA on by default, advantage- (or reward-) weighted NLL."""

    lora: bool = option(True, flag="--lora/--full", help="LoRA adapters (default) or full fine-tuning")
    lr: float = option(1e-4, help="AdamW learning rate of the LoRA weights")
    token_reduction: Literal["mean", "sum"] = option("sum", choices=("mean", "sum"),
                                                     help="per action: sum (log pi(a|s) of the whole action text) "
                                                          "or mean")
    method: Literal["awr", "rwr"] = option("awr", choices=("awr", "rwr"), help="awr (exp(A/beta)) or rwr (exp(G/beta))")
    beta: float = option(1.0, help="temperature of the weights exp(A / beta)")
    gamma: float = option(0.99, help="discount for returns recomputed from the rewards")
    max_weight: float = option(20.0, help="clip of the weights")
    baseline: Literal["value", "dataset"] = option(
        "value", choices=("value", "dataset"),
        help="value (head on the hidden state, trained jointly) or dataset (mean return)")
    value_coef: float = option(0.5, help="weight of the value head's squared error (--baseline value)")
    value_lr: float = option(1e-3, help="learning rate of the value head (its bias starts at the dataset's mean return)")
    l2_coef: float = option(0.0, flag="--l2", help="lambda_L2 on ||LoRA||^2")
    entropy_coef: float = option(0.0, flag="--entropy", help="lambda_H: bonus on the entropy over the allowed actions")
    relabelled: Literal["dagger", "returns"] = option(
        "dagger", choices=("dagger", "returns"),
        help="with --target expert: dagger (weight 1: the expert's action is optimal, its advantage under the "
             "expert's value is 0) or returns (exp(A/beta) from the executed trajectory's return, which belongs "
             "to another action wherever the policy deviated)")
