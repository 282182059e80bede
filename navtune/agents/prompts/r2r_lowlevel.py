"""Seed-1 prompt (Qwen2.5-VL-3B-R2R-low-level model card's `format_prompt`), reproduced byte for byte,
spelling included ("Cummulative", "recived", "an the action"), so its released weights see what they
were trained on. Every step re-renders the whole history, so only the vision side can be cached."""
from __future__ import annotations

from typing import Any, Sequence

from navtune.agents.parsing import ParseResult, parse_action
from navtune.agents.prompts.base import (
    ASSISTANT_PREFIX,
    PROMPT_FORMATS,
    BaseFormat,
    Rendered,
    Segment,
    StepInput,
    render_chat,
)
from navtune.core.actions import MOVE

#: What the seed's collate appends after the chat-template text (tokenized on its own).
ANSWER_PREFIX = ASSISTANT_PREFIX + "Action: "


def seed_messages(step: StepInput, system_prompt: str) -> list[dict]:
    """The seed's `messages` list (images as placeholders), in the seed's exact construction order."""
    content: list[dict] = [
        {
            "type": "text",
            "text": f"Route Instruction: {step.instruction}\nCurrent Step: {step.step}\n"
            f"Cummulative Distance Traveled: {step.distance}\nImages from Previous Steps: ",
        }
    ]
    for i in range(step.n_previous):
        content.append({"type": "image", "image": f"step_{i}"})
    if step.n_previous == 0:
        content[0]["text"] += "[]"
    content.append(
        {"type": "text", "text": f"\nActions performed at Previous Steps: {list(step.previous_actions).__str__()}\nCurrent image:"}
    )
    content.append({"type": "image", "image": "current"})
    move_possible = MOVE in step.allowed_actions
    possible_actions = ["Left", "Right", "Move", "Stop"] if move_possible else ["Left", "Right", "Stop"]
    content.append(
        {
            "type": "text",
            "text": f"\nPossible actions: {possible_actions.__str__()}\nNow predict the next action based on the input "
            "you have recived. Answer on the format: Action: (an the action you choose)",
        }
    )
    return [
        {"role": "system", "content": [{"type": "text", "text": system_prompt}]},
        {"role": "user", "content": content},
    ]


@PROMPT_FORMATS.register("r2r-lowlevel")
class R2RLowLevelFormat(BaseFormat):
    name = "r2r-lowlevel"
    action_spaces = ("graph",)

    def render_step(self, step: StepInput, system_prompt: str) -> Rendered:
        text = render_chat(seed_messages(step, system_prompt), add_generation_prompt=False)
        images = list(step.previous_images) + ([step.image] if step.image is not None else [])
        return Rendered([Segment(text), Segment(ANSWER_PREFIX)], images)

    def render_target(self, action: str, **extra: Any) -> Rendered:
        return Rendered([Segment(action, target=True, action=action)])

    def parse(self, text: str, allowed: Sequence[str]) -> ParseResult:
        """Generated text continues the prompt's ``Action: ``: parsed with it in front, as the seed reads it."""
        return parse_action("Action: " + text, allowed, self.action_space)
