"""`navtune train sft|awr`: supervised fine-tuning (seed-1 recipe) and offline RL with LoRA (seed 2).

Examples::

    navtune train sft --model runs/tiny --data data/house_expert --format chat --out runs/sft
    navtune train awr --model runs/tiny --data data/expert_and_failures --init-lora runs/sft/final \\
        --beta 1.0 --gamma 0.99 --max-weight 20 --baseline value --entropy 0.01 --out runs/awr
    navtune train sft ... --strategy ddp --devices 2 --accelerator cpu      # 2 processes (gloo)
    navtune train sft ... --resume last                                     # continue exactly
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Train navigation VLMs: SFT (seed-1 recipe) and offline RL (AWR/RWR with LoRA).",
                  no_args_is_help=True)

_MODEL = typer.Option(..., "--model", "-m", help="Qwen2(.5)-VL model folder (or hub id when online)")
_DATA = typer.Option(..., "--data", "-d", help="navtune episode dataset folder (repeat to train on several)")
_FORMAT = typer.Option("chat", "--format", "-f", help="prompt format: chat | r2r-lowlevel | objectnav-json")
_OUT = typer.Option(Path("runs/train"), "--out", "-o", help="run folder (checkpoints, logs, final model)")
_VAL = typer.Option(None, "--val-data", help="validation dataset folder (other houses/scans)")
_EPOCHS = typer.Option(1, "--epochs", min=1)
_MAX_STEPS = typer.Option(-1, "--max-steps", help="stop after N optimizer steps (-1: epochs decide)")
_WD = typer.Option(0.1, "--weight-decay")
_WARM = typer.Option(0.1, "--warmup-ratio", help="linear warm-up over this fraction of the steps")
_ACC = typer.Option(1, "--accumulate-episodes", min=1, help="episodes per optimizer step on each process")
_R = typer.Option(16, "--lora-r")
_ALPHA = typer.Option(32, "--lora-alpha")
_DROP = typer.Option(0.0, "--lora-dropout")
_INIT = typer.Option(None, "--init-lora", help="start from this peft adapter folder")
_PREC = typer.Option("auto", "--precision", help="auto (bf16-mixed on GPUs with bf16, else 32-true), bf16-true, 32-true, ...")
_STRAT = typer.Option("auto", "--strategy", help="auto | ddp | fsdp | deepspeed")
_DEV = typer.Option("1", "--devices", help="devices (processes) per node, or 'auto'")
_NODES = typer.Option(1, "--num-nodes")
_ACCEL = typer.Option("auto", "--accelerator", help="auto | cpu | gpu")
_GC = typer.Option(False, "--gradient-checkpointing/--no-gradient-checkpointing")
_RESUME = typer.Option(None, "--resume", help="Lightning checkpoint to continue from, or 'last'")
_CKPT = typer.Option(0, "--checkpoint-every", help="optimizer steps between checkpoints (0: every epoch)")
_SYS = typer.Option(None, "--system-prompt", help="system prompt file (default: the model's or navtune's)")
_SEED = typer.Option(0, "--seed")
_WORKERS = typer.Option(0, "--num-workers", help="DataLoader workers decoding frames")
_LIMIT = typer.Option(None, "--limit-episodes", help="train on the first N episodes only")
_TARGET = typer.Option("action", "--target", help="label the executed 'action' or the 'expert' action (DAgger)")
_SIZE = typer.Option("320x240", "--image-size", help="resize frames to WxH ('none': as stored)")
_QUIET = typer.Option(False, "--quiet", "-q", help="no progress bar")


def _size(text: str) -> tuple[int, int] | None:
    if text.lower() == "none":
        return None
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise typer.BadParameter(f"--image-size must be WxH like 320x240 or 'none' (got {text!r})") from None


def _devices(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _run(cfg) -> None:
    from rich.console import Console
    from rich.markup import escape

    from navtune.data.format import DatasetFormatError
    from navtune.trainers.freeze import TrainSetupError
    from navtune.trainers.run import describe, train

    console = Console(stderr=True)
    try:
        result = train(cfg)
    except (TrainSetupError, DatasetFormatError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if not result.global_zero:
        return
    info = describe(result)
    console.print(f"[green]done[/green] final model: {info['final']}  "
                  f"(trained {info['trainable']:,} of {info['total']:,} parameters)")
    for k, v in sorted(info["metrics"].items()):
        console.print(f"  {k} = {v:.4f}")


def _lora(r: int, alpha: int, dropout: float, init: Optional[Path]):
    from navtune.trainers.config import LoraConfig

    return LoraConfig(r=r, alpha=alpha, dropout=dropout, init_path=str(init) if init else None)


def _shared(a: dict) -> dict:
    """The config fields that `sft` and `awr` take from their common options (`a`: the command's locals())."""
    return dict(
        model=a["model"], data=",".join(str(d) for d in a["data"]), format=a["format"], out=str(a["out"]),
        val_data=str(a["val_data"]) if a["val_data"] else None,
        system_prompt=str(a["system_prompt"]) if a["system_prompt"] else None, target=a["target"],
        image_size=_size(a["image_size"]), epochs=a["epochs"], max_steps=a["max_steps"], lr=a["lr"],
        weight_decay=a["weight_decay"], warmup_ratio=a["warmup_ratio"], accumulate_episodes=a["accumulate_episodes"],
        precision=a["precision"], seed=a["seed"],
        lora_cfg=_lora(a["lora_r"], a["lora_alpha"], a["lora_dropout"], a["init_lora"]),
        gradient_checkpointing=a["gradient_checkpointing"], strategy=a["strategy"], devices=_devices(a["devices"]),
        num_nodes=a["num_nodes"], accelerator=a["accelerator"], num_workers=a["num_workers"], resume=a["resume"],
        checkpoint_every=a["checkpoint_every"], progress=not a["quiet"], limit_episodes=a["limit_episodes"],
    )


@app.command("sft")
def sft(
    model: str = _MODEL, data: list[Path] = _DATA, format: str = _FORMAT, out: Path = _OUT,
    val_data: Optional[Path] = _VAL, epochs: int = _EPOCHS, max_steps: int = _MAX_STEPS,
    lr: float = typer.Option(1e-5, "--lr", help="AdamW learning rate (seed 1: 1e-5)"),
    weight_decay: float = _WD, warmup_ratio: float = _WARM, accumulate_episodes: int = _ACC,
    lora: bool = typer.Option(False, "--lora/--full", help="LoRA adapters instead of full fine-tuning"),
    lora_r: int = _R, lora_alpha: int = _ALPHA, lora_dropout: float = _DROP, init_lora: Optional[Path] = _INIT,
    precision: str = _PREC, strategy: str = _STRAT, devices: str = _DEV, num_nodes: int = _NODES,
    accelerator: str = _ACCEL, gradient_checkpointing: bool = _GC, resume: Optional[str] = _RESUME,
    checkpoint_every: int = _CKPT, system_prompt: Optional[Path] = _SYS, seed: int = _SEED,
    num_workers: int = _WORKERS, limit_episodes: Optional[int] = _LIMIT, target: str = _TARGET,
    image_size: str = _SIZE, quiet: bool = _QUIET,
) -> None:
    """Supervised fine-tuning: language model trained, vision encoder + merger frozen (seed-1 recipe)."""
    from navtune.trainers.config import TrainConfig

    cfg = TrainConfig(**_shared(locals()), lora=lora or init_lora is not None)
    _run(cfg)


@app.command("awr")
def awr(
    model: str = _MODEL, data: list[Path] = _DATA, format: str = _FORMAT, out: Path = _OUT,
    val_data: Optional[Path] = _VAL, epochs: int = _EPOCHS, max_steps: int = _MAX_STEPS,
    lr: float = typer.Option(1e-4, "--lr", help="AdamW learning rate of the LoRA weights"),
    weight_decay: float = _WD, warmup_ratio: float = _WARM, accumulate_episodes: int = _ACC,
    method: str = typer.Option("awr", "--method", help="awr (exp(A/beta)) or rwr (exp(G/beta))"),
    beta: float = typer.Option(1.0, "--beta", help="temperature of the weights"),
    gamma: float = typer.Option(0.99, "--gamma", help="discount for returns recomputed from the rewards"),
    max_weight: float = typer.Option(20.0, "--max-weight", help="clip of the weights"),
    baseline: str = typer.Option("value", "--baseline", help="value (head on the hidden state, trained jointly) or dataset (mean return)"),
    value_coef: float = typer.Option(0.5, "--value-coef", help="weight of the value head's squared error"),
    value_lr: float = typer.Option(1e-3, "--value-lr", help="learning rate of the value head"),
    l2: float = typer.Option(0.0, "--l2", help="lambda_L2 on ||LoRA||^2"),
    entropy: float = typer.Option(0.0, "--entropy", help="lambda_H: bonus on the entropy over the allowed actions"),
    lora: bool = typer.Option(True, "--lora/--full", help="LoRA adapters (default) or full fine-tuning"),
    lora_r: int = _R, lora_alpha: int = _ALPHA, lora_dropout: float = _DROP, init_lora: Optional[Path] = _INIT,
    precision: str = _PREC, strategy: str = _STRAT, devices: str = _DEV, num_nodes: int = _NODES,
    accelerator: str = _ACCEL, gradient_checkpointing: bool = _GC, resume: Optional[str] = _RESUME,
    checkpoint_every: int = _CKPT, system_prompt: Optional[Path] = _SYS, seed: int = _SEED,
    num_workers: int = _WORKERS, limit_episodes: Optional[int] = _LIMIT, target: str = _TARGET,
    image_size: str = _SIZE, quiet: bool = _QUIET,
) -> None:
    """Offline RL: advantage- (or reward-) weighted NLL of the dataset actions, LoRA on the language model."""
    from navtune.trainers.config import AWRConfig

    if method not in ("awr", "rwr"):
        raise typer.BadParameter(f"--method must be awr or rwr (got {method!r})")
    if baseline not in ("value", "dataset"):
        raise typer.BadParameter(f"--baseline must be value or dataset (got {baseline!r})")
    cfg = AWRConfig(
        **_shared(locals()), lora=lora, method=method, beta=beta, gamma=gamma, max_weight=max_weight,
        baseline=baseline, value_coef=value_coef, value_lr=value_lr, l2_coef=l2, entropy_coef=entropy,
    )
    _run(cfg)
