"""Seed-2 (ObjectNav, offline RL) format: one image and the goal per step, the model answers a JSON
object ``{"Observation": ..., "Reasoning": ..., "Action": ...}`` with a Habitat action.

The whole answer is trained and generated (seed 2's model answers this JSON; a model trained on the action
alone produces no JSON at all when it decodes freely). The answer is rendered in segments, each tokenized on
its own, so that the JSON skeleton has the same tokens in training, in free generation and when a
constrained decoder forces it::

    {"Observation": "  | <observation> | ", "Reasoning": "  | <reasoning> | ", "Action": "  | <action> | "}<|im_end|>

Everything but the action is answer text (`Segment.label`); the action is the target. With empty
Observation / Reasoning (``answer="action-only"`` in training) the JSON is still the answer."""
from __future__ import annotations

import json
from typing import Any

from navtune.agents.prompts.base import (
    ASSISTANT_PREFIX,
    IMAGE_PLACEHOLDER,
    PROMPT_FORMATS,
    AnswerPart,
    AnswerText,
    BaseFormat,
    Rendered,
    Segment,
    StepInput,
)
from navtune.core.actions import CONTINUOUS_ACTIONS

OBS_HEAD = '{"Observation": "'
REASONING_HEAD = '", "Reasoning": "'
ACTION_HEAD = '", "Action": "'
JSON_END = '"}'
TURN_END = "<|im_end|>"
#: what ends a free JSON string: its closing quote, or a character a JSON string cannot hold as is
STRING_STOP = '"\\' + "".join(chr(i) for i in range(32))

SYSTEM_PROMPT = (
    "You are a robot looking for an object in a house. At every step you see your camera image and answer with "
    "one JSON object: Observation (the room and what is in view), Reasoning (where the object is, or where to "
    "explore) and Action: move_forward (0.25 m), turn_left or turn_right (30 degrees), or stop when the object "
    "is within 1 m in front of you."
)


def _escaped(text: str) -> str:
    """`text` as the inside of a JSON string."""
    return json.dumps(text)[1:-1]


def answer_prefix(observation: str = "", reasoning: str = "") -> str:
    """JSON text up to the opening quote of the Action value (json-escaped fields)."""
    return OBS_HEAD + _escaped(observation) + REASONING_HEAD + _escaped(reasoning) + ACTION_HEAD


@PROMPT_FORMATS.register("objectnav-json")
class ObjectNavJsonFormat(BaseFormat):
    name = "objectnav-json"
    action_spaces = ("continuous",)
    shows_depth = True

    def default_system_prompt(self) -> str:
        return SYSTEM_PROMPT

    def user_text(self, step: StepInput) -> str:
        allowed = [a for a in CONTINUOUS_ACTIONS if a in step.allowed_actions]
        goal = (step.instruction or "find the goal object").strip().rstrip(".")
        depth = f"\nDepth image:{IMAGE_PLACEHOLDER}" if step.depth_image is not None else ""
        return (
            f"Task: {goal}.\n"
            f"Step: {step.step}. Distance traveled: {float(step.distance):.2f} m. "
            f"Previous actions: {list(step.previous_actions[-8:])}\n"
            f"Current image:{IMAGE_PLACEHOLDER}{depth}\n"
            f"Allowed actions: {allowed}\n"
            'Answer with {"Observation": "...", "Reasoning": "...", "Action": "<one of the allowed actions>"}'
        )

    def render_step(self, step: StepInput, system_prompt: str) -> Rendered:
        text = (
            f"<|im_start|>system\n{system_prompt}<|im_end|>\n<|im_start|>user\n{self.user_text(step)}<|im_end|>\n"
            + ASSISTANT_PREFIX
        )
        images = [step.image] if step.image is not None else []
        if step.depth_image is not None:
            images.append(step.depth_image)
        return Rendered([Segment(text)], images)

    def answer_parts(self) -> list[AnswerPart]:
        """The JSON skeleton (forced by a constrained decoder), two free strings and the action."""
        return [AnswerPart("text", OBS_HEAD), AnswerPart("free", stop=STRING_STOP), AnswerPart("text", REASONING_HEAD),
                AnswerPart("free", stop=STRING_STOP), AnswerPart("text", ACTION_HEAD), AnswerPart("action")]

    def render_target(self, action: str, answer: AnswerText | None = None, observation: str = "",
                      reasoning: str = "", **extra: Any) -> Rendered:
        """The whole answer: every segment is trained (the action as the target, the rest as answer text)."""
        if answer is not None:
            observation, reasoning = answer.observation, answer.reasoning
        return Rendered([
            Segment(OBS_HEAD, label=True), Segment(_escaped(observation), label=True),
            Segment(REASONING_HEAD, label=True), Segment(_escaped(reasoning), label=True),
            Segment(ACTION_HEAD, label=True), Segment(action, target=True, action=action),
            Segment(JSON_END, label=True), Segment(TURN_END, label=True),
        ])
