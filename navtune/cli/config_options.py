"""Typer options generated from a config dataclass (fields declared with `navtune.core.config.option`):
the one place where a config's defaults, help texts, flags and checks become a command's options.

`config_command(app, "sft", TrainConfig, run)` adds a command whose options are the dataclass's fields
(nested dataclass fields flattened), and which builds the config from them (a config's ValueError is a
usage error naming the option) and calls `run(cfg)`.
"""
from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Callable, Sequence

import typer

from navtune.core.config import flags_of

_SEP = "__"  # parameter name of a nested field: <field>__<subfield>

#: ``--plugin MODULE`` (repeatable): modules imported before the command runs; each registers its prompt
#: formats, backends or metrics (installed packages can also declare them under the ``navtune.plugins``
#: entry-point group).
PLUGIN_OPTION = typer.Option([], "--plugin", help="import this module first (it registers prompt formats, "
                             "backends or metrics); repeat for several")


def import_plugin_modules(modules: list[str] | None) -> None:
    """Import the installed plugins and the `--plugin` modules; a module that cannot be imported is a usage
    error naming it."""
    from navtune.core.registry import import_plugins, installed_plugins

    try:
        import_plugins(installed_plugins() + list(modules or []))
    except ImportError as e:
        raise typer.BadParameter(f"cannot import plugin: {e}", param_hint="--plugin") from None


def _nested_class(ann: Any) -> type:
    """The dataclass of a nested field (``X`` or ``X | None``: an optional nested config is built from its
    options on the command line, and may be left None from Python)."""
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else ann


def _options(cls: type, prefix: str = "", exclude: frozenset[str] = frozenset()
             ) -> list[tuple[str, dataclasses.Field, Any]]:
    """(parameter name, field, command-line type) of every command-line field, nested ones flattened."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True) or f.name in exclude:
            continue
        if f.metadata.get("nested"):
            out += _options(_nested_class(hints[f.name]), prefix + f.name + _SEP, exclude)
            continue
        ann = f.metadata.get("cli_type", hints[f.name])
        if typing.get_origin(ann) is typing.Literal:
            ann = str
        out.append((prefix + f.name, f, ann))
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.metadata.get("required"):
        return ...
    if "cli_default" in f.metadata:
        return f.metadata["cli_default"]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def option_parameters(*classes: type, defaults: dict[str, Any] | None = None,
                      exclude: Sequence[str] = ()) -> list[inspect.Parameter]:
    """Typer parameters of the configs' options (defaults, help and flags from the field metadata; `defaults`
    overrides a command-line default by parameter name, `exclude` drops fields)."""
    defaults = defaults or {}
    params: dict[str, inspect.Parameter] = {}
    for cls in classes:
        for name, f, ann in _options(cls, exclude=frozenset(exclude)):
            if name in params:
                raise TypeError(f"option {name!r} is declared by two configs of one command")
            opt = typer.Option(defaults.get(name, _default(f)), *flags_of(f), help=f.metadata.get("help") or None)
            params[name] = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
    return list(params.values())


def signature_of(cls: type) -> inspect.Signature:
    """The Typer signature of a config's options."""
    return inspect.Signature(option_parameters(cls))


def with_config_options(*classes: type, defaults: dict[str, Any] | None = None,
                        exclude: Sequence[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a Typer command `fn(own options..., **values)`: its signature gets the configs' options
    after its own; `build_config(cls, values)` then builds each config in the command."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn).parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        fn.__signature__ = inspect.Signature(own + option_parameters(*classes, defaults=defaults,  # type: ignore[attr-defined]
                                                                     exclude=exclude))
        return fn

    return deco


def build_config(cls: type, values: dict[str, Any], **fixed: Any) -> Any:
    """The config from command-line values (converted with each field's `to_field`; other keys are ignored),
    with `fixed` field values on top."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True) or f.name in fixed:
            continue
        if f.metadata.get("nested"):
            sub = {k[len(f.name) + len(_SEP):]: v for k, v in values.items() if k.startswith(f.name + _SEP)}
            if sub:
                kwargs[f.name] = build_config(_nested_class(hints[f.name]), sub)
            continue
        if f.name not in values:
            continue
        v = values[f.name]
        conv = f.metadata.get("to_field")
        kwargs[f.name] = conv(v) if conv is not None and v is not None else v
    return cls(**kwargs, **fixed)


def config_command(app: typer.Typer, name: str, cls: type, run: Callable[[Any], None], help: str,
                   extra: dict[str, tuple[Any, Any]] | None = None,
                   before: Callable[[dict[str, Any]], None] | None = None) -> Callable[..., None]:
    """Add command `name` to `app`: options from `cls`, plus `extra` {name: (annotation, typer.Option)}
    handed to `before(extra_values)` first (e.g. ``--plugin``); then `run(cfg)`."""
    extra = extra or {}

    def command(**values: Any) -> None:
        if before is not None:
            before({k: values.pop(k) for k in list(values) if k in extra})
        try:
            cfg = build_config(cls, values)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        run(cfg)

    sig = signature_of(cls)
    more = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
            for k, (ann, opt) in extra.items()]
    command.__signature__ = sig.replace(parameters=list(sig.parameters.values()) + more)  # type: ignore[attr-defined]
    command.__doc__ = help
    command.__name__ = name
    app.command(name)(command)
    return command
