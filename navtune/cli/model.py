"""`navtune model ...`: build tiny local models (tests, CPU demo) and inspect checkpoints."""
from __future__ import annotations

from pathlib import Path

import typer

from navtune.cli.errors import fail

app = typer.Typer(help="Models: tiny local Qwen2.5-VL builds and checkpoint info.", no_args_is_help=True)


@app.command("tiny")
def tiny(
    out: Path = typer.Option(..., "--out", help="folder to save the model, processor and system_prompt.txt into"),
    size: str = typer.Option("tiny", "--size", help="tiny | cpu-large | 3b (random weights, real architecture)"),
    seed: int = typer.Option(0, "--seed"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16"),
    init_std: float | None = typer.Option(None, "--init-std", help="weight init std (default: the size's own: "
                                          "tiny 0.3, so random test models' choices depend on the input)"),
    vision_init_std: float | None = typer.Option(None, "--vision-init-std", help="init std of the vision tower "
                                                 "+ merger (default: --init-std; ~0.07 gives tiny's image tokens "
                                                 "the text embeddings' norm)"),
) -> None:
    """Build a random-weight Qwen2.5-VL of the real architecture and save it for `from_pretrained`."""
    from navtune.agents.models.tiny import SIZES, build_tiny_model

    if size not in SIZES:
        raise typer.BadParameter(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    model, _ = build_tiny_model(out, size=size, seed=seed, dtype=dtype, init_std=init_std,
                                vision_init_std=vision_init_std)
    n = sum(p.numel() for p in model.parameters())
    typer.echo(f"saved {size} Qwen2.5-VL ({n / 1e6:.1f}M parameters) to {out}")


@app.command("info")
def info(model: str = typer.Argument(..., help="hub id or local folder")) -> None:
    """Print a checkpoint's architecture summary (loads it on CPU)."""
    from navtune.agents.models.loading import load_model

    try:
        lm = load_model(model)
    except (FileNotFoundError, ValueError, OSError) as e:
        fail(e)
    cfg = lm.model.config
    t = cfg.get_text_config()
    typer.echo(f"{model}: {cfg.model_type}, hidden {t.hidden_size}, layers {t.num_hidden_layers}, "
               f"vision depth {cfg.vision_config.depth}, params {sum(p.numel() for p in lm.model.parameters()) / 1e6:.1f}M")
