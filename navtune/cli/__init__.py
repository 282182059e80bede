"""navtune's one command line. Each area owns a module `navtune/cli/<area>.py` that exposes either a
Typer group `app` (registered under its name) or a `register(app)` function adding top-level commands.
Modules keep heavy imports (torch, transformers, miniworld) inside the command functions so that
`navtune --help` stays fast."""
from __future__ import annotations

import importlib

import typer

from navtune.cli.errors import guard_app

app = typer.Typer(
    name="navtune",
    help="Fine-tune and evaluate vision-language models as embodied navigation agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (module, group name or None for top-level commands)
_AREAS: list[tuple[str, str | None]] = [
    ("r2r", "r2r"),
    ("house", "house"),
    ("prompt", "prompt"),
    ("model", "model"),
    ("collect", "collect"),
    ("train", "train"),
    ("evaluate", None),  # navtune eval / merge
    ("mine", None),  # navtune mine
    ("report", None),  # navtune report
    ("demo", None),  # navtune demo
    ("backends", None),  # navtune mp3d ..., navtune habitat ...
]


def _register() -> None:
    for module, group in _AREAS:
        try:
            mod = importlib.import_module(f"navtune.cli.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"navtune.cli.{module}":  # area not built yet
                continue
            raise
        if group is not None:
            app.add_typer(mod.app, name=group)
        else:
            mod.register(app)
    guard_app(app)  # every command ends with one `error: ...` line (exit 2) on navtune's errors


_register()


def main() -> None:
    app()
