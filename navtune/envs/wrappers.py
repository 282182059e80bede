"""`TimeLimit`: the step budget of an episode, applied in one place (gymnasium's TimeLimit for `NavEnv`).

The evaluation harness wraps every env it builds in one (`navtune.evaluation.backends.make_env`), so a
backend's env need not count steps itself.
"""
from __future__ import annotations

from typing import Any, Callable

from navtune.envs.protocol import Observation, StepResult


class TimeLimit:
    """Ends each episode after `max_steps` actions: the step that reaches the budget comes back with
    ``done=True`` and ``info["truncated"] = True`` (unless the env ended it already). `max_steps` is a number
    or a function of the episode given to `reset` (ObjectNav episodes carry their own budget)."""

    def __init__(self, env: Any, max_steps: int | Callable[[Any], int]):
        self.env = env
        self._budget = max_steps if callable(max_steps) else (lambda episode: int(max_steps))
        self.max_steps: int | None = None
        self.elapsed = 0

    @property
    def unwrapped(self) -> Any:
        return self.env

    @property
    def action_space(self) -> tuple[str, ...]:
        return self.env.action_space

    def reset(self, episode: Any) -> Observation:
        self.max_steps = int(self._budget(episode))
        self.elapsed = 0
        return self.env.reset(episode)

    def step(self, action: str) -> StepResult:
        res = self.env.step(action)
        self.elapsed += 1
        if not res.done and self.max_steps is not None and self.elapsed >= self.max_steps:
            res.done = True
            res.info = {**res.info, "truncated": True}
        return res

    def expert_action(self) -> str:
        return self.env.expert_action()

    def close(self) -> None:
        self.env.close()

    def __getattr__(self, name: str) -> Any:  # anything else is the env's (gymnasium wrappers do the same)
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)
