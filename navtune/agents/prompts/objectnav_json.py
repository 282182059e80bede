"""Seed-2 (ObjectNav, offline RL) format: one image and the goal per step, the model answers a JSON
object ``{"Observation": ..., "Reasoning": ..., "Action": ...}`` with a Habitat action.

The answer is rendered in segments so that only the action value is a target: ``{"Observation": "...",
"Reasoning": "...", "Action": "`` | ``move_forward`` | ``"}``. Constrained scoring forces the prefix
(with the given or empty Observation/Reasoning) and scores each action's full continuation."""
from __future__ import annotations

import json
from typing import Any

from navtune.agents.prompts.base import (
    ASSISTANT_PREFIX,
    IMAGE_PLACEHOLDER,
    PROMPT_FORMATS,
    BaseFormat,
    Rendered,
    Segment,
    StepInput,
)
from navtune.core.actions import CONTINUOUS_ACTIONS

JSON_END = '"}'


def answer_prefix(observation: str = "", reasoning: str = "") -> str:
    """JSON text up to the opening quote of the Action value (json-escaped fields)."""
    return "{" + f'"Observation": {json.dumps(observation)}, "Reasoning": {json.dumps(reasoning)}, "Action": "'


@PROMPT_FORMATS.register("objectnav-json")
class ObjectNavJsonFormat(BaseFormat):
    name = "objectnav-json"
    action_spaces = ("continuous",)

    def user_text(self, step: StepInput) -> str:
        allowed = [a for a in CONTINUOUS_ACTIONS if a in step.allowed_actions]
        goal = (step.instruction or "find the goal object").strip().rstrip(".")
        return (
            f"You are a robot navigating an indoor environment. Task: {goal}.\n"
            f"Step: {step.step}. Distance traveled: {float(step.distance):.2f} m. "
            f"Previous actions: {list(step.previous_actions[-8:])}\n"
            f"Current image:{IMAGE_PLACEHOLDER}\n"
            f"Allowed actions: {allowed}\n"
            'Describe what you see, reason about where the goal is, then answer with one JSON object: '
            '{"Observation": "...", "Reasoning": "...", "Action": "<one of the allowed actions>"}'
        )

    def render_step(self, step: StepInput, system_prompt: str) -> Rendered:
        text = (
            f"<|im_start|>system\n{system_prompt}<|im_end|>\n<|im_start|>user\n{self.user_text(step)}<|im_end|>\n"
            + ASSISTANT_PREFIX
        )
        return Rendered([Segment(text)], [step.image] if step.image is not None else [])

    def answer_prefix(self) -> str:
        """The JSON head with empty Observation / Reasoning, forced before the scored action."""
        return answer_prefix()

    def render_target(self, action: str, observation: str = "", reasoning: str = "", **extra: Any) -> Rendered:
        return Rendered(
            [Segment(answer_prefix(observation, reasoning)), Segment(action, target=True, action=action), Segment(JSON_END)]
        )
