"""`RLConfig`: one online RL run (`navtune train rl`), GRPO or PPO. Each field carries its command-line option
(`navtune.core.config.option`); `__post_init__` validates it, so Python and the CLI give the same errors.

Defaults follow the usual conventions: TRL's GRPO (group-normalised returns, clipped ratio, KL to the
reference policy) and CleanRL's PPO (GAE with lambda 0.95, clip 0.2, value coefficient 0.5, normalised
advantages, gradient-norm clip), with LoRA on the language model and the vision tower frozen.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from navtune.core.config import check_fields, option
from navtune.evaluation.agents import AUTO, parse_agent_size
from navtune.evaluation.backends import EvalTask
from navtune.trainers.config import LoraConfig

ALGOS = ("grpo", "ppo")
PRECISIONS = ("32-true", "64-true", "bf16-mixed", "bf16-true")


@dataclass
class RLLoraConfig(LoraConfig):
    """LoRA of an RL run: always a fresh adapter (a starting adapter is `--adapter`, merged into the base so
    that the reference policy is the adapter switched off)."""

    init_path: str | None = option(None, cli=False, help="unused in RL (see --adapter)")


@dataclass
class RLConfig:
    """Everything one RL run needs; saved as ``navtune_train.json`` beside its checkpoints."""

    model: str = option("", required=True, flag=("--model", "-m"),
                        help="starting model folder (e.g. an SFT output) or hub id")
    adapter: str | None = option(None, help="starting peft LoRA adapter over --model (merged into it: the "
                                 "reference policy is the starting model)")
    algo: Literal["grpo", "ppo"] = option("grpo", choices=ALGOS, help="grpo (group-normalised returns) | ppo "
                                          "(value head + GAE)")
    task: EvalTask | None = option(None, nested=True, help="the episodes to roll out on (any evaluation set)")
    out: str = option("runs/rl", flag=("--out", "-o"), help="run folder (checkpoints, logs, final agent)")
    format: str | None = option(None, flag=("--format", "-f"),
                                help="prompt format (default: the model folder's navtune_agent.json, else chat)")
    image_size: tuple[int, int] | None | Literal["auto"] = option(
        AUTO, cli_type=str, cli_default=AUTO, to_field=parse_agent_size,
        help="resize frames to WxH ('auto': the model folder's navtune_agent.json, else 320x240; 'none': as rendered)")
    system_prompt: str | None = option(None, help="system prompt file (default: the model folder's)")
    # roll-outs
    max_iterations: int = option(20, min=1, help="RL iterations (roll out, then update)")
    episodes_per_iteration: int = option(8, min=1, flag="--episodes-per-iteration",
                                         help="episode starts drawn per iteration (from the whole set, seeded)")
    group_size: int = option(4, min=1, help="roll-outs from each episode start (GRPO's group G; >= 2 for GRPO)")
    num_envs: int = option(8, min=1, help="envs stepped together (one batched forward per step)")
    processes: bool = option(False, flag="--processes/--inline", help="one env per spawned process")
    temperature: float = option(1.0, help="sampling temperature of the action distribution")
    # objective
    advantage: Literal["return", "rtg"] = option(
        "return", choices=("return", "rtg"),
        help="GRPO: the roll-out's return (every step) or each step's return-to-go, normalised in the group")
    group_scale: Literal["std", "none"] = option(
        "std", choices=("std", "none"),
        help="GRPO: divide the group-centred returns by the group's std (TRL's default) or not (Dr. GRPO)")
    gamma: float = option(0.99, help="discount of returns (the rewards are navtune.data.rewards')")
    progress_coef: float = option(1.0, flag="--progress-reward",
                                  help="reward per metre of geodesic progress (navtune.data.rewards' default 1)")
    success_bonus: float = option(2.5, help="reward of a stop inside the success radius (default 2.5)")
    collision_penalty: float = option(0.1, help="penalty of a blocked move (default 0.1)")
    slack_penalty: float = option(0.01, help="penalty per step (default 0.01)")
    gae_lambda: float = option(0.95, help="PPO: GAE lambda")
    clip: float = option(0.2, help="clip of the importance ratio (1 +- clip)")
    kl_coef: float = option(0.04, flag="--kl", help="KL penalty to the reference policy (the starting model)")
    entropy_coef: float = option(0.0, flag="--entropy", help="entropy bonus on the allowed-action distribution")
    value_coef: float = option(0.5, help="PPO: weight of the value loss")
    value_lr: float = option(1e-3, help="PPO: learning rate of the value head")
    # optimisation
    lr: float = option(1e-4, help="AdamW learning rate (LoRA weights, or the LLM with --full)")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    update_epochs: int = option(2, min=1, help="passes over an iteration's roll-outs")
    minibatches: int = option(2, min=1, help="optimizer steps per pass (roll-outs split evenly)")
    grad_clip: float | None = option(1.0, help="gradient norm clip (none: no clipping)")
    lora: bool = option(True, flag="--lora/--full", help="LoRA adapters (default) or the full language model")
    lora_cfg: RLLoraConfig = option(default_factory=RLLoraConfig, nested=True)
    precision: str = option("32-true", choices=PRECISIONS, help="32-true | 64-true (tests) | bf16-mixed | bf16-true")
    accelerator: str = option("auto", help="auto | cpu | gpu")
    threads: int | None = option(None, min=1, help="torch CPU threads (default: torch's; 1 is fastest for tiny "
                                 "models on a busy machine)")
    seed: int = option(0, help="seed of the episode draws and of the action sampling")
    # runs
    resume: str | None = option(None, help="Lightning checkpoint to continue from, or 'last'")
    overwrite: bool = option(False, help="start a new run in a non-empty --out folder (its previous run's "
                             "checkpoints, logs and final agent are deleted; without this or --resume it is refused)")
    checkpoint_every: int = option(1, min=1, help="iterations between checkpoints")
    progress: bool = option(True, flag=("--quiet", "-q"), cli_type=bool, cli_default=False, to_field=lambda q: not q,
                            help="no progress display")
    loggers: tuple[str, ...] = option(("csv", "tensorboard"), cli=False, help="csv and / or tensorboard")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.task is None:
            raise ValueError("RLConfig needs the episodes to roll out on (task: an EvalTask, e.g. --data-dir and "
                             "--split for the graph backend)")
        if isinstance(self.task, dict):
            self.task = EvalTask.from_dict(self.task)
        if isinstance(self.lora_cfg, dict):
            self.lora_cfg = RLLoraConfig(**self.lora_cfg)
        if self.image_size not in (None, AUTO):
            self.image_size = tuple(int(v) for v in self.image_size)  # type: ignore[union-attr]
        if self.algo == "grpo" and self.group_size < 2:
            raise ValueError("--algo grpo needs --group-size >= 2 (a group of one has no relative advantage)")
        if self.minibatches > self.episodes_per_iteration * self.group_size:
            raise ValueError(f"--minibatches {self.minibatches} exceeds the {self.episodes_per_iteration * self.group_size}"
                             " roll-outs of an iteration")
        for name in ("temperature", "clip"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be > 0 (got {getattr(self, name)})")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1] (got {getattr(self, name)})")
        for name in ("kl_coef", "entropy_coef", "value_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (got {getattr(self, name)})")

    def reward(self):
        """The roll-outs' `navtune.data.rewards.RewardConfig` (the offline data's reward, these coefficients)."""
        from navtune.data.rewards import RewardConfig

        return RewardConfig(progress=self.progress_coef, success_bonus=self.success_bonus,
                            collision=self.collision_penalty, slack=self.slack_penalty, gamma=self.gamma)

    @property
    def rollouts_per_iteration(self) -> int:
        return self.episodes_per_iteration * self.group_size

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["task"] = self.task.to_dict() if self.task is not None else None
        return d
