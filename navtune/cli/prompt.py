"""`navtune prompt ...`: inspect what a prompt format renders."""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Prompt formats: render and inspect.", no_args_is_help=True)

_CASE_FIELDS = ("instruction", "step", "distance", "previous_actions", "move_possible", "num_previous_images", "system_prompt")


def case_to_step(case: dict, fmt_name: str, source: str = "case"):
    """CASE.json dict -> StepInput (clear error naming the file and field)."""
    from navtune.agents.prompts import StepInput, format_class
    from navtune.core.actions import ACTION_SPACES, FORWARD

    missing = [f for f in _CASE_FIELDS if f not in case and f != "system_prompt"]
    if missing:
        raise ValueError(f"{source}: missing field(s) {missing}; expected {list(_CASE_FIELDS)}")
    if not isinstance(case["previous_actions"], list):
        raise ValueError(f"{source}: field 'previous_actions' must be a list, got {type(case['previous_actions']).__name__}")
    for f in ("step", "num_previous_images"):
        if not isinstance(case[f], int) or case[f] < 0:
            raise ValueError(f"{source}: field {f!r} must be a non-negative integer, got {case[f]!r}")
    if not isinstance(case["distance"], (int, float)):
        raise ValueError(f"{source}: field 'distance' must be a number, got {case['distance']!r}")
    fmt_space = format_class(fmt_name).action_spaces[0]
    fwd = FORWARD[fmt_space]
    allowed = tuple(a for a in ACTION_SPACES[fmt_space] if case["move_possible"] or a != fwd)
    return StepInput(
        instruction=str(case["instruction"]),
        step=case["step"],
        distance=case["distance"],
        previous_actions=list(case["previous_actions"]),
        allowed_actions=allowed,
        num_previous_images=case["num_previous_images"],
    )


def render_case(fmt_name: str, case: dict, source: str = "case", system_prompt: str | None = None) -> str:
    """Text a format renders for a CASE.json (placeholders for images), ending with the assistant prefix."""
    from navtune.agents.prompts import get_format, load_system_prompt

    fmt = get_format(fmt_name)
    step = case_to_step(case, fmt_name, source)
    sp = system_prompt if system_prompt is not None else case.get("system_prompt")
    if sp is None:
        sp = load_system_prompt()
    return fmt.render_step(step, sp).text


@app.command("show")
def show(
    format: str = typer.Option(..., "--format", "-f", help="r2r-lowlevel | objectnav-json | chat"),
    case: Path = typer.Option(..., "--case", help="CASE.json: {instruction, step, distance, previous_actions, "
                              "move_possible, num_previous_images, system_prompt}"),
    system_prompt: Path | None = typer.Option(None, "--system-prompt", help="file overriding the case's system_prompt"),
) -> None:
    """Print the rendered prompt text (images as <|vision_start|><|image_pad|><|vision_end|>)."""
    from navtune.agents.prompts import load_system_prompt

    from navtune.core.errors import NavtuneError
    from navtune.core.io import read_json

    try:
        data = read_json(case)
    except NavtuneError as e:
        raise typer.BadParameter(str(e)) from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{case}: must hold a JSON object")
    sp = load_system_prompt(system_prompt) if system_prompt else None
    try:
        text = render_case(format, data, str(case), sp)
    except (ValueError, KeyError) as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(text, nl=False)
    typer.echo("")


@app.command("formats")
def formats() -> None:
    """List the registered prompt formats."""
    from navtune.agents.prompts import PROMPT_FORMATS

    for k in PROMPT_FORMATS.keys():
        typer.echo(k)
