"""How every navtune command ends on bad input: one line ``error: <file>: <field>: <what>`` on stderr and
exit status 2, never a traceback.

`guard` wraps each registered command (`navtune.cli` applies it to all of them) and turns navtune's own
`NavtuneError` (every reader's error type derives from it) into that line; `fail` is the same ending for
errors a command catches itself, and `user_errors` a context manager for a few extra exception types.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, NoReturn

import typer

from navtune.core.errors import NavtuneError, one_line

EXIT_BAD_INPUT = 2


def fail(e: BaseException | str) -> NoReturn:
    """Print ``error: <message>`` (one line) to stderr and exit 2."""
    typer.echo(f"error: {one_line(e) if isinstance(e, BaseException) else ' '.join(str(e).split())}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextlib.contextmanager
def user_errors(*extra: type[BaseException]):
    """``with user_errors(KeyError):``: navtune's errors and the `extra` types end the command with `fail`."""
    try:
        yield
    except (NavtuneError, *extra) as e:
        fail(e)


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command callback that ends with `fail` on a `NavtuneError` (idempotent)."""
    if getattr(fn, "_navtune_guarded", False):
        return fn

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NavtuneError as e:
            fail(e)

    command._navtune_guarded = True  # type: ignore[attr-defined]
    return command


def guard_app(app: typer.Typer) -> None:
    """Wrap every command of `app` and of its sub-groups with `guard`."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = guard(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_app(group.typer_instance)
