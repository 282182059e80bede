"""The `Policy` protocol: what the evaluation harness, the demo and the failure miner call.

Contract (evaluation codes against exactly this):

* A policy drives several episodes at once. Each running episode lives in a **slot** (any hashable,
  usually an int 0..B-1). Slots are independent: one may finish and be reset while others go on.
* ``policy.reset(slots, episode_id=None)`` starts fresh episodes in the given slots (an iterable of slots
  or a single slot): their history (previous images, actions, KV cache) is forgotten. Call it before the
  first ``act`` of each episode. ``episode_id`` (one slot only) names the episode: stochastic policies seed
  their per-episode draws with it, so an episode's actions do not depend on its slot or batch.
* ``policy.act({slot: Observation, ...}, expert_actions=None) -> {slot: action}`` returns one action name
  per given slot, always one of that observation's ``allowed_actions``. Only the slots passed are
  advanced; slots that are not passed keep their state untouched. A list of observations is also
  accepted (slots 0..n-1) and then a list of actions is returned.
  Observations are ``navtune.envs.protocol.Observation``; the VLM policies use ``rgb``,
  ``instruction``, ``step``, ``distance_traveled`` and ``allowed_actions``.
* ``policy.set_executed_action(slot, action)``: the env executed `action` instead of the
  policy's own choice at the last step (expert-driven passes); the slot's history is corrected.
* ``policy.release(slots)`` frees a slot's memory (KV cache, cached features) once its episode is done.
* ``policy.needs_expert``: when True, callers pass the env's ``expert_action()`` of every slot as
  ``act(..., expert_actions={slot: action})`` (the oracle baseline needs it; others are called without).
* ``policy.last_outputs[slot]``: an ``ActionOutput`` for the slot's last ``act`` call: the action,
  the raw generated text (free-text decoding), whether the text parsed to a valid action
  (``valid=False`` is counted as an *invalid action*; the policy then falls back to a valid one),
  and the per-action scores when constrained scoring was used.
* ``policy.action_space``: "graph" (Left/Right/Move/Stop) or "continuous" (move_forward/...).
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from navtune.core.registry import Registry
from navtune.envs.protocol import Observation

Slot = Hashable


@dataclass
class ActionOutput:
    """What a policy decided for one slot at one step, and why (for invalid-action counting and logs)."""

    action: str
    valid: bool = True  # False: the model's text did not parse to an allowed action (a fallback was used)
    text: str | None = None  # raw generated text (free decoding), None for scoring / baselines
    scores: dict[str, float] = field(default_factory=dict)  # constrained scoring: action -> log-prob

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "valid": self.valid, "text": self.text, "scores": dict(self.scores)}


@runtime_checkable
class Policy(Protocol):
    name: str
    action_space: str
    needs_expert: bool
    last_outputs: dict[Slot, ActionOutput]

    def reset(self, slots: Iterable[Slot] | Slot, episode_id: str | None = None) -> None: ...

    def act(self, observations: Mapping[Slot, Observation],
            expert_actions: Mapping[Slot, str] | None = None) -> dict[Slot, str]: ...

    def set_executed_action(self, slot: Slot, action: str) -> None: ...

    def release(self, slots: Iterable[Slot] | Slot) -> None: ...


def act_with_expert(policy: Policy, observations: Mapping[Slot, Observation],
                    expert_actions: Mapping[Slot, str | None]) -> dict[Slot, str]:
    """`policy.act`, given the env's expert actions only when the policy takes them (`needs_expert`)."""
    if policy.needs_expert:
        return policy.act(observations, expert_actions={s: a for s, a in expert_actions.items() if a is not None})
    return policy.act(observations)


def as_slots(slots: Iterable[Slot] | Slot) -> list[Slot]:
    """Normalise `reset`/`release` arguments: one slot or an iterable of slots (a str/tuple is one slot)."""
    if isinstance(slots, (str, bytes, tuple)) or not isinstance(slots, Iterable):
        return [slots]
    return list(slots)


def as_mapping(observations: Mapping[Slot, Observation] | Sequence[Observation]) -> tuple[dict, bool]:
    """(slot -> observation, whether the caller passed a list and wants a list back)."""
    if isinstance(observations, Mapping):
        return dict(observations), False
    return dict(enumerate(observations)), True


class BasePolicy:
    """Slot bookkeeping shared by all policies; subclasses implement
    `_act(observations, expert_actions) -> dict[slot, ActionOutput]` and may override `_reset_slot` /
    `_release_slot`. `episode_ids[slot]` is the episode id given to `reset` (None when not given)."""

    name = "base"
    action_space = "graph"
    needs_expert = False

    def __init__(self) -> None:
        self.last_outputs: dict[Slot, ActionOutput] = {}
        self.episode_ids: dict[Slot, str | None] = {}

    def reset(self, slots: Iterable[Slot] | Slot, episode_id: str | None = None) -> None:
        slots = as_slots(slots)
        if episode_id is not None and len(slots) != 1:
            raise ValueError(f"{self.name}: an episode_id names the episode of one slot, got {len(slots)} slots")
        for s in slots:
            self.last_outputs.pop(s, None)
            self.episode_ids[s] = episode_id
            self._reset_slot(s)

    def set_executed_action(self, slot: Slot, action: str) -> None:
        """The env executed `action` (not necessarily ours) at the slot's last step; stateless here."""

    def release(self, slots: Iterable[Slot] | Slot) -> None:
        for s in as_slots(slots):
            self.last_outputs.pop(s, None)
            self.episode_ids.pop(s, None)
            self._release_slot(s)

    def act(self, observations: Mapping[Slot, Observation] | Sequence[Observation],
            expert_actions: Mapping[Slot, str] | Sequence[str] | None = None):
        obs, as_list = as_mapping(observations)
        if not obs:
            return [] if as_list else {}
        experts = {} if expert_actions is None else as_mapping(expert_actions)[0]
        outs = self._act(obs, experts)
        for s, o in outs.items():
            allowed = obs[s].allowed_actions
            if allowed and o.action not in allowed:
                raise RuntimeError(f"{self.name}: action {o.action!r} not in allowed {allowed} (slot {s!r})")
        self.last_outputs.update(outs)
        actions = {s: outs[s].action for s in obs}
        return [actions[i] for i in range(len(obs))] if as_list else actions

    # --- for subclasses
    def _reset_slot(self, slot: Slot) -> None:
        pass

    def _release_slot(self, slot: Slot) -> None:
        self._reset_slot(slot)

    def _act(self, observations: dict[Slot, Observation], expert_actions: dict[Slot, str]) -> dict[Slot, ActionOutput]:
        raise NotImplementedError


#: name -> policy factory (``POLICIES.get("random")(action_space="graph", seed=0)``); VLM policies are
#: registered by `navtune.agents.vlm` as "vlm" (imported lazily by `make_policy`).
POLICIES: Registry = Registry("policy")


def make_policy(name: str, **kwargs: Any) -> Policy:
    """Build a registered policy by name (baselines: random, forward, oracle; "vlm" loads a model)."""
    import navtune.agents.baselines  # noqa: F401  (registers baselines)

    if name == "vlm" and "vlm" not in POLICIES:
        import navtune.agents.vlm  # noqa: F401
    return POLICIES.get(name)(**kwargs)
