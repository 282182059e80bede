"""Config dataclasses that describe their own command-line options (TRL's `field(metadata={"help": ...})`).

A field declared with `option(default, help=...)` carries what the CLI needs: its help text, its flag(s)
(default ``--field-name``), how a command-line value becomes the field's value, and simple checks
(`choices`, `min`) that `check_fields` applies in the dataclass's ``__post_init__``, so the same errors
come from Python and from the command line. `navtune.cli.config_options` turns such a dataclass into
Typer options in one place.

Metadata keys: ``help``; ``flag`` (a string or a tuple of declarations, e.g. ``("--model", "-m")`` or
``"--lora/--full"``); ``cli`` (False: not a command-line option); ``required`` (the option has no
default on the command line); ``cli_type`` / ``cli_default`` / ``to_field`` (the command-line type,
default and conversion when they differ from the field's, e.g. ``--image-size 320x240``); ``choices``;
``min``; ``nested`` (a dataclass whose own fields are options).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence


def option(default: Any = dataclasses.MISSING, *, help: str = "", default_factory: Any = dataclasses.MISSING,
           flag: str | Sequence[str] | None = None, choices: Sequence[Any] | None = None, min: float | None = None,
           cli: bool = True, required: bool = False, cli_type: Any = None, cli_default: Any = dataclasses.MISSING,
           to_field: Callable[[Any], Any] | None = None, nested: bool = False) -> Any:
    """A dataclass field with its command-line description (see the module docstring)."""
    meta: dict[str, Any] = {"help": help, "cli": cli, "required": required, "nested": nested}
    for key, value in (("flag", flag), ("choices", choices), ("min", min), ("cli_type", cli_type),
                       ("to_field", to_field)):
        if value is not None:
            meta[key] = tuple(value) if key == "choices" else value
    if cli_default is not dataclasses.MISSING:
        meta["cli_default"] = cli_default
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flags_of(f: dataclasses.Field) -> tuple[str, ...]:
    """The option declarations of a field: its ``flag`` metadata, else ``--field-name``."""
    flag = f.metadata.get("flag")
    if flag is None:
        return ("--" + f.name.replace("_", "-"),)
    return (flag,) if isinstance(flag, str) else tuple(flag)


def _flag_name(f: dataclasses.Field) -> str:
    return flags_of(f)[0].split("/")[0]


def check_fields(cfg: Any) -> None:
    """Check every field with ``choices`` / ``min`` metadata; a ValueError names the option and the field."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"{_flag_name(f)} ({f.name}) must be one of {', '.join(map(str, choices))} "
                             f"(got {value!r})")
        low = f.metadata.get("min")
        if low is not None and value is not None and value < low:
            raise ValueError(f"{_flag_name(f)} ({f.name}) must be >= {low} (got {value!r})")


def parse_size(text: str) -> tuple[int, int] | None:
    """``WxH`` (e.g. ``320x240``) or ``none`` -> (W, H) or None (the ``--image-size`` options)."""
    if text.lower() == "none":
        return None
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise ValueError(f"--image-size must be WxH like 320x240 or 'none' (got {text!r})") from None
