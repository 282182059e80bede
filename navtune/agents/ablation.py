"""Does an agent use its frames? A policy wrapper that shows the wrapped policy other frames than the env's.

`FrameAblation(policy, "blank")` replaces every frame by a uniform grey one of the same shape; "shuffle"
by a frame seen earlier in the same run (another step, usually another episode). Everything else in the
observation (instruction, step, distance, allowed actions) is unchanged, so an agent whose success rate is
the same with blank frames as with real ones does not use what it sees (bench/learning.py's "vision use"
columns)."""
from __future__ import annotations

import dataclasses

import numpy as np

from navtune.agents.policy import ActionOutput, BasePolicy, Policy, Slot
from navtune.envs.protocol import Observation

FRAME_MODES = ("real", "blank", "shuffle")
GREY = 128
BANK_SIZE = 512  # frames kept for "shuffle"


class FrameAblation(BasePolicy):
    """`policy` acting on blank ("blank") or other steps' ("shuffle", seeded) frames instead of its own."""

    def __init__(self, policy: Policy, mode: str = "blank", seed: int = 0) -> None:
        super().__init__()
        if mode not in FRAME_MODES:
            raise ValueError(f"unknown frame mode {mode!r}; known: {', '.join(FRAME_MODES)}")
        self.policy, self.mode = policy, mode
        self.name = f"{policy.name}[frames={mode}]"
        self.action_space = policy.action_space
        self.needs_expert = policy.needs_expert
        self._rng = np.random.default_rng(seed)
        self._bank: list[np.ndarray] = []

    def reset(self, slots, episode_id: str | None = None) -> None:
        super().reset(slots, episode_id)
        self.policy.reset(slots, episode_id)

    def release(self, slots) -> None:
        super().release(slots)
        self.policy.release(slots)

    def set_executed_action(self, slot: Slot, action: str) -> None:
        self.policy.set_executed_action(slot, action)

    def frame(self, rgb: np.ndarray | None) -> np.ndarray | None:
        """The frame the wrapped policy sees instead of `rgb`."""
        if rgb is None or self.mode == "real":
            return rgb
        if self.mode == "blank":
            return np.full_like(rgb, GREY)
        frame = np.array(rgb, copy=True)
        if len(self._bank) < BANK_SIZE:
            self._bank.append(frame)
        else:  # bounded: a long run replaces a random earlier frame (memory stays flat, cf. docs/reliability.md)
            self._bank[int(self._rng.integers(BANK_SIZE))] = frame
        return self._bank[int(self._rng.integers(len(self._bank)))]

    def _act(self, observations: dict[Slot, Observation], expert_actions: dict[Slot, str]) -> dict[Slot, ActionOutput]:
        shown = {s: dataclasses.replace(o, rgb=self.frame(o.rgb)) for s, o in observations.items()}
        self.policy.act(shown, expert_actions or None)
        return {s: self.policy.last_outputs[s] for s in observations}
