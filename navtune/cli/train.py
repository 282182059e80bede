"""`navtune train sft|awr`: supervised fine-tuning (seed-1 recipe) and offline RL with LoRA (seed 2).

Examples::

    navtune train sft --model runs/tiny --data data/house_expert --format chat --out runs/sft
    navtune train awr --model runs/tiny --data data/expert_and_failures --init-lora runs/sft/final \\
        --beta 1.0 --gamma 0.99 --max-weight 20 --baseline value --entropy 0.01 --out runs/awr
    navtune train sft ... --strategy ddp --devices 2 --accelerator cpu      # 2 processes (gloo)
    navtune train sft ... --resume last                                     # continue exactly
"""
from __future__ import annotations

import typer

app = typer.Typer(help="Train navigation VLMs: SFT (seed-1 recipe) and offline RL (AWR/RWR with LoRA).",
                  no_args_is_help=True)


def _run(cfg) -> None:
    from rich.console import Console

    from navtune.cli.errors import user_errors
    from navtune.trainers.run import describe, train

    console = Console(stderr=True)
    with user_errors(FileNotFoundError):  # navtune's errors (dataset, model, run folder, lock) and missing files
        result = train(cfg)
    if not result.global_zero:
        return
    info = describe(result)
    console.print(f"[green]done[/green] final model: {info['final']}  "
                  f"(trained {info['trainable']:,} of {info['total']:,} parameters)")
    for k, v in sorted(info["metrics"].items()):
        console.print(f"  {k} = {v:.4f}")


def _register() -> None:
    """`sft` and `awr`: their options are the fields of TrainConfig / AWRConfig (navtune.trainers.config)."""
    from navtune.cli.config_options import PLUGIN_OPTION, config_command, import_plugin_modules
    from navtune.trainers.config import AWRConfig, TrainConfig

    plugin = {"plugin": (list[str], PLUGIN_OPTION)}

    def before(extra: dict) -> None:
        import_plugin_modules(extra.get("plugin"))

    config_command(app, "sft", TrainConfig, _run, extra=plugin, before=before,
                   help="Supervised fine-tuning: language model trained, vision encoder + merger frozen (seed-1 recipe).")
    config_command(app, "awr", AWRConfig, _run, extra=plugin, before=before,
                   help="Offline RL: advantage- (or reward-) weighted NLL of the dataset actions, LoRA on the "
                        "language model.")


_register()
