"""`navtune train sft|awr|rl`: supervised fine-tuning (seed-1 recipe), offline RL with LoRA (seed 2) and online
RL in the simulator (GRPO / PPO on batched KV-cache roll-outs).

Examples::

    navtune train sft --model runs/tiny --data data/house_expert --format chat --out runs/sft
    navtune train awr --model runs/tiny --data data/expert_and_failures --init-lora runs/sft/final \\
        --beta 1.0 --gamma 0.99 --max-weight 20 --baseline value --entropy 0.01 --out runs/awr
    navtune train sft ... --strategy ddp --devices 2 --accelerator cpu      # 2 processes (gloo)
    navtune train sft ... --resume last                                     # continue exactly
    navtune train rl --model runs/sft/final --algo grpo --data-dir episodes --split train --renderer house \
        --width 56 --height 56 --max-steps 15 --max-iterations 20 --out runs/rl
"""
from __future__ import annotations

import typer

app = typer.Typer(help="Train navigation VLMs: SFT (seed-1 recipe), offline RL (AWR/RWR with LoRA) and online RL "
                       "(GRPO / PPO in the simulator).",
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


def _run_rl(cfg) -> None:
    from rich.console import Console

    from navtune.cli.errors import user_errors
    from navtune.rl.run import train_rl

    console = Console(stderr=True)
    with user_errors(FileNotFoundError):  # navtune's errors (card, roll-out backend, model, run folder) and files
        result = train_rl(cfg)
    console.print(f"[green]done[/green] final agent: {result.final}  (trained {result.trainable['trainable']:,} of "
                  f"{result.trainable['total']:,} parameters)")
    for k in ("return", "sr", "kl", "entropy", "env_steps_per_s"):
        if k in result.metrics:
            console.print(f"  last iteration {k} = {result.metrics[k]:.4f}")


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
    from navtune.rl.config import RLConfig

    config_command(app, "rl", RLConfig, _run_rl, extra=plugin, before=before,
                   help="Online RL in the simulator: GRPO (group-normalised returns) or PPO (value head, GAE) on "
                        "roll-outs of any evaluation episode set, LoRA (default) on the language model, vision "
                        "frozen; clipped ratio, KL to the starting model, entropy bonus.")


_register()
