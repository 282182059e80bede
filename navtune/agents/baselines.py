"""Baseline agents behind the `Policy` interface: random, forward-only and the oracle expert.

They bound what a learned agent should reach: random/forward are floors, the oracle (the env's
shortest-path expert, passed in as `act(..., expert_actions=...)`) is the ceiling of the action space."""
from __future__ import annotations

import zlib

import numpy as np

from navtune.agents.policy import POLICIES, ActionOutput, BasePolicy, Slot
from navtune.core.actions import ACTION_SPACES, FORWARD, TURNS, action_space_of
from navtune.envs.protocol import Observation


def _check_space(action_space: str) -> str:
    if action_space not in ACTION_SPACES:
        raise ValueError(f"unknown action_space {action_space!r}; known: {sorted(ACTION_SPACES)}")
    return action_space


@POLICIES.register("random")
class RandomPolicy(BasePolicy):
    """Uniform over the observation's allowed actions. `include_stop=False` never stops (except when
    stop is the only allowed action), which keeps random episodes from ending at step 0.

    When `reset(slot, episode_id=...)` names the episode (the harness and the collectors do), it draws from
    its own generator seeded by (seed, episode id), so its actions do not depend on which slot or batch it
    ran in, and a resumed evaluation equals an uninterrupted one. Otherwise one generator serves all slots."""

    name = "random"

    def __init__(self, action_space: str = "graph", seed: int = 0, include_stop: bool = True) -> None:
        super().__init__()
        self.action_space = _check_space(action_space)
        self.include_stop = include_stop
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self._episode_rngs: dict[Slot, np.random.Generator] = {}

    def _reset_slot(self, slot: Slot) -> None:
        self._episode_rngs.pop(slot, None)

    def _rng_for(self, slot: Slot) -> np.random.Generator:
        rng = self._episode_rngs.get(slot)
        if rng is None:
            eid = self.episode_ids.get(slot)
            if eid is None:
                return self.rng
            rng = self._episode_rngs[slot] = np.random.default_rng([self.seed, zlib.crc32(str(eid).encode())])
        return rng

    def _act(self, observations: dict[Slot, Observation], expert_actions: dict[Slot, str]) -> dict[Slot, ActionOutput]:
        out = {}
        for s, obs in observations.items():
            allowed = list(obs.allowed_actions or ACTION_SPACES[self.action_space])
            if not self.include_stop and len(allowed) > 1:
                allowed = [a for a in allowed if a.lower() != "stop"] or allowed
            out[s] = ActionOutput(action=str(allowed[int(self._rng_for(s).integers(len(allowed)))]))
        return out


@POLICIES.register("forward")
class ForwardPolicy(BasePolicy):
    """Always moves forward; when forward is not allowed it turns right (so it never gets stuck on a
    wall forever and never stops unless `max_steps` is reached)."""

    name = "forward"

    def __init__(self, action_space: str = "graph", max_steps: int | None = None) -> None:
        super().__init__()
        self.action_space = _check_space(action_space)
        self.max_steps = max_steps

    def _act(self, observations: dict[Slot, Observation], expert_actions: dict[Slot, str]) -> dict[Slot, ActionOutput]:
        fwd = FORWARD[self.action_space]
        right = TURNS[self.action_space][1]
        stop = [a for a in ACTION_SPACES[self.action_space] if a.lower() == "stop"][0]
        out = {}
        for s, obs in observations.items():
            allowed = obs.allowed_actions or ACTION_SPACES[self.action_space]
            if self.max_steps is not None and obs.step >= self.max_steps and stop in allowed:
                a = stop
            elif fwd in allowed:
                a = fwd
            elif right in allowed:
                a = right
            else:
                a = allowed[0]
            out[s] = ActionOutput(action=a)
        return out


@POLICIES.register("oracle")
class OraclePolicy(BasePolicy):
    """Takes the env's expert action, which callers pass as `act(..., expert_actions=...)` because
    `needs_expert` is True (agents never touch the env themselves)."""

    name = "oracle"
    needs_expert = True

    def __init__(self, action_space: str = "graph") -> None:
        super().__init__()
        self.action_space = _check_space(action_space)

    def _act(self, observations: dict[Slot, Observation], expert_actions: dict[Slot, str]) -> dict[Slot, ActionOutput]:
        out = {}
        for s in observations:
            a = expert_actions.get(s)
            if a is None:
                raise KeyError(
                    f"oracle: no expert action for slot {s!r}; pass act(..., expert_actions=...) when "
                    "policy.needs_expert is True"
                )
            action_space_of(a)  # clear error for an unknown action name
            out[s] = ActionOutput(action=a)
        return out
