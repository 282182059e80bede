"""navtune's append-only multi-turn format.

One user turn per step (the step's text and its new image only), one assistant turn per action::

    <|im_start|>system\\n{system}<|im_end|>\\n
    <|im_start|>user\\nRoute Instruction: ...\\nStep 0 ... Current image:<img>\\nPossible actions: [...]<|im_end|>\\n
    <|im_start|>assistant\\nAction: |Left|<|im_end|>\\n<|im_start|>user\\nStep 1 ...

Nothing rendered for step t changes at step t+1: step t+1's prompt is step t's prompt + the action +
a delta. That makes KV-cache reuse exact (feed only the delta) and lets one forward pass train on a
whole episode (labels on every action segment)."""
from __future__ import annotations

from typing import Any, Sequence

from navtune.agents.parsing import ParseResult, parse_action
from navtune.agents.prompts.base import (
    ASSISTANT_PREFIX,
    IMAGE_PLACEHOLDER,
    PROMPT_FORMATS,
    BaseFormat,
    Rendered,
    Segment,
    StepInput,
)
from navtune.core.actions import ACTION_SPACES

ANSWER_PREFIX = ASSISTANT_PREFIX + "Action: "
TURN_END = "<|im_end|>\n"


def _fmt_distance(d: float | int) -> str:
    return f"{float(d):.2f}"


@PROMPT_FORMATS.register("chat")
class ChatFormat(BaseFormat):
    name = "chat"
    action_spaces = ("graph", "continuous")
    unit = "episode"  # one forward pass trains every action of an episode
    incremental = True

    def _user_turn(self, step: StepInput, first: bool) -> str:
        head = f"Route Instruction: {step.instruction}\n" if first else ""
        allowed = [a for a in ACTION_SPACES[self.action_space] if a in step.allowed_actions]
        return (
            f"<|im_start|>user\n{head}Current Step: {step.step}\nDistance Traveled: {_fmt_distance(step.distance)} m\n"
            f"Current image:{IMAGE_PLACEHOLDER}\nPossible actions: {allowed}{TURN_END}"
        )

    def render_delta(self, step: StepInput, system_prompt: str, previous_action: str | None) -> Rendered:
        """Tokens appended for step `step.step`: the previous action (a target), its turn end, this step's user
        turn and the assistant prefix. At step 0 (previous_action None) it starts with the system turn."""
        segs: list[Segment] = []
        if previous_action is None:
            segs.append(Segment(f"<|im_start|>system\n{system_prompt}{TURN_END}" + self._user_turn(step, True) + ANSWER_PREFIX))
        else:
            segs.append(Segment(previous_action, target=True, action=previous_action))
            segs.append(Segment(TURN_END + self._user_turn(step, False) + ANSWER_PREFIX))
        return Rendered(segs, [step.image] if step.image is not None else [])

    def render_step(self, step: StepInput, system_prompt: str) -> Rendered:
        """The full prompt before step t's action, rebuilt from the step's history (previous_actions and
        previous_images, one per earlier step). Equal to the concatenation of the deltas."""
        n_prev = step.n_previous
        if len(step.previous_actions) != n_prev:
            raise ValueError(
                f"chat format: step {step.step} has {len(step.previous_actions)} previous actions but {n_prev} previous images"
            )
        out = Rendered([])
        prev_imgs = list(step.previous_images) or [None] * n_prev
        for t in range(n_prev):
            past = StepInput(step.instruction, t, 0.0, list(step.previous_actions[:t]), step.allowed_actions,
                             image=prev_imgs[t])
            # earlier turns' distance / allowed actions are not known from a single StepInput; render_episode
            # is the exact path. Here we keep what the history gives.
            out = out + self.render_delta(past, system_prompt, step.previous_actions[t - 1] if t else None)
        return out + self.render_delta(step, system_prompt, step.previous_actions[-1] if n_prev else None)

    def render_target(self, action: str, **extra: Any) -> Rendered:
        return Rendered([Segment(action, target=True, action=action), Segment(TURN_END)])

    def parse(self, text: str, allowed: Sequence[str]) -> ParseResult:
        """Generated text continues the prompt's ``Action: ``; graph answers are parsed with it in front."""
        prefix = "Action: " if self.action_space == "graph" else ""
        return parse_action(prefix + text, allowed, self.action_space)

    def render_episode(self, steps: list[StepInput], actions: list[str], system_prompt: str,
                       answers: Sequence[Any] | None = None) -> list[Rendered]:
        """The whole episode as one sample (one forward pass trains every action; the answer is the action)."""
        out = Rendered([])
        for t, s in enumerate(steps):
            out = out + self.render_delta(s, system_prompt, actions[t - 1] if t else None)
        return [out + self.render_target(actions[len(steps) - 1])] if steps else []


#: what a Left / Right does to the heading in the graph low-level action space (MatterSim's 30 degrees)
TURN_DEGREES = {"Left": -30, "Right": 30}


def heading_change(actions: Sequence[str]) -> int:
    """Degrees turned by these graph actions (Left -30, Right +30), in (-180, 180]."""
    d = sum(TURN_DEGREES.get(a, 0) for a in actions) % 360
    return d - 360 if d > 180 else d


def _turned(d: int) -> str:
    if d == 0:
        return "0°"
    if d == 180:
        return "180°"
    return f"{abs(d)}° {'right' if d > 0 else 'left'}"


@PROMPT_FORMATS.register("chat-odometry")
class ChatOdometryFormat(ChatFormat):
    """`chat` with the agent's own odometry in each user turn: the heading change since the episode's start
    and since its last Move ("Heading: 90° left from start, 30° right since the last move"). Both are a
    deterministic function of the actions already taken (each Left / Right turns exactly 30°), like the
    "Distance Traveled" line, so the task is unchanged; the format only spares a tiny model from counting
    its own turns in the history."""

    name = "chat-odometry"
    action_spaces = ("graph",)

    def _user_turn(self, step: StepInput, first: bool) -> str:
        acts = list(step.previous_actions)
        last_move = max((i for i, a in enumerate(acts) if a == "Move"), default=-1)
        since_start, since_move = heading_change(acts), heading_change(acts[last_move + 1:])
        odo = (f"Heading: {_turned(since_start)} from start, {_turned(since_move)} since the last move\n"
               if acts else "Heading: as at the start\n")
        base = super()._user_turn(step, first)
        mark = "Current image:"
        return base.replace(mark, odo + mark, 1)
