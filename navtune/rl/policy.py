"""The policy online RL samples from: the VLM's distribution over the *allowed* actions, at a temperature.

An allowed action is a token sequence (its prompt format's candidate text, e.g. ``Move`` is one token,
``turn_left`` two). The policy picks an action token by token, each time among the tokens that continue
some allowed action (the prefix tree of the allowed actions), with probabilities
``softmax(logits[valid] / temperature)``; a position with one valid token is forced (probability 1). So

    log pi(a | s) = sum over a's tokens k of  log softmax(logits_k[valid_k] / T)[a_k]

which needs the logits only at the positions of the chosen action's own tokens: the update's teacher-forced
forward of the whole episode has exactly those, so it recomputes the roll-out's log-probs (tested equal). For
actions that differ in their first token (Left/Right/Move/Stop) this is a softmax over the allowed actions at
the answer position; ``turn_left``/``turn_right`` share ``turn`` and are told apart one token later (one more
batched forward while rolling out).

`SamplingVLMPolicy` is a `VLMPolicy` (same prompts, KV cache, batched forwards) whose decision samples from
that distribution with a per-episode generator (seeded by the episode id given to `reset`, so a roll-out
does not depend on its slot or batch) and records what the update needs (`SampledStep`).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from navtune.agents.policy import ActionOutput, Slot
from navtune.agents.prompts import StepInput
from navtune.agents.vlm import Chunk, ImageFeature, StepOutput, VLMPolicy
from navtune.envs.protocol import Observation


@dataclass(frozen=True)
class ActionTokens:
    """The allowed actions of one step as token sequences (their prefix tree)."""

    actions: tuple[str, ...]
    tokens: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        for i, a in enumerate(self.tokens):
            if not a:
                raise ValueError(f"action {self.actions[i]!r} tokenises to no tokens")
            for j, b in enumerate(self.tokens):
                if i != j and len(a) <= len(b) and b[: len(a)] == a:
                    raise ValueError(f"allowed actions are not prefix-free: {self.actions[i]!r} {a} is a prefix of "
                                     f"{self.actions[j]!r} {b}")

    def next_tokens(self, prefix: Sequence[int]) -> list[int]:
        """Distinct tokens that continue `prefix` towards some action (in candidate order)."""
        k, p = len(prefix), tuple(prefix)
        out: list[int] = []
        for t in self.tokens:
            if len(t) > k and t[:k] == p and t[k] not in out:
                out.append(t[k])
        return out

    def action_of(self, prefix: Sequence[int]) -> str | None:
        """The action whose tokens are exactly `prefix` (None while the prefix is not a whole action)."""
        p = tuple(prefix)
        for a, t in zip(self.actions, self.tokens):
            if t == p:
                return a
        return None

    def positions(self, action: str) -> list[tuple[int, list[int], int]]:
        """The choice points of `action`: (token index k, valid tokens at k, index of a's token among them),
        only where more than one token is valid (forced tokens have probability 1)."""
        toks = self.tokens[self.actions.index(action)]
        out = []
        for k in range(len(toks)):
            valid = self.next_tokens(toks[:k])
            if len(valid) > 1:
                out.append((k, valid, valid.index(toks[k])))
        return out


def restricted_logprobs(hidden: torch.Tensor, head: torch.nn.Module, valid: torch.Tensor, mask: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """log softmax(logits[valid] / T) per row, the logits of only the valid tokens computed from the final
    hidden states (never the whole vocabulary): `hidden` (n, H), `head` the lm_head, `valid` (n, K) token ids,
    `mask` (n, K) which of them are real (rows have up to K valid tokens). Returns (n, K), -inf where masked, in
    float32 (float64 for a float64 model)."""
    w = head.weight[valid]  # (n, K, H)
    logits = torch.einsum("nh,nkh->nk", hidden.to(w.dtype), w)
    if getattr(head, "bias", None) is not None:
        logits = logits + head.bias[valid]
    if logits.dtype != torch.float64:
        logits = logits.float()
    logits = (logits / temperature).masked_fill(~mask, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


@dataclass
class SampledStep:
    """One decision of a roll-out: what the policy saw and chose, with the behaviour log-prob."""

    input: StepInput  # the step as the prompt format rendered it (frames included)
    action: str
    logp: float  # log pi_old(action | state) under the sampling distribution (temperature included)
    choices: list[np.ndarray]  # the restricted log-probs at each choice point of the action (valid-token order)
    allowed: tuple[str, ...]
    value: float | None = None  # V_old(state) when the policy carries a value head (PPO)

    @property
    def entropy(self) -> float:
        """Entropy of the decision along the sampled path (exact for actions told apart by one token)."""
        return float(sum(-(np.exp(c) * c).sum() for c in self.choices))


class SamplingVLMPolicy(VLMPolicy):
    """A `VLMPolicy` that samples from its distribution over the allowed actions (module docstring) and
    keeps, per slot, the decisions of the running episode (`steps[slot]`) and its frames' features."""

    def __init__(self, model: Any, processor: Any, *, format: str, temperature: float = 1.0, seed: int = 0,
                 system_prompt: str | None = None, image_size: tuple[int, int] | None = None,
                 action_space: str | None = None, value_head: torch.nn.Module | None = None) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        super().__init__(model, processor, format=format, decode="score", system_prompt=system_prompt,
                         image_size=image_size, action_space=action_space)
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.value_head = value_head
        self.runner.full_logits = False  # only the allowed actions' tokens are scored (from the hidden states)
        self.name = f"vlm-sampling:{format}"
        self.steps: dict[Slot, list[SampledStep]] = {}
        self._rngs: dict[Slot, np.random.Generator] = {}
        self._trees: dict[tuple[str, ...], ActionTokens] = {}

    # ------------------------------------------------------------ slots
    def _reset_slot(self, slot: Slot) -> None:
        super()._reset_slot(slot)
        self.steps[slot] = []
        eid = self.episode_ids.get(slot)
        key = zlib.crc32(str(eid).encode()) if eid is not None else 0
        self._rngs[slot] = np.random.default_rng([self.seed, key])

    def _release_slot(self, slot: Slot) -> None:
        super()._release_slot(slot)
        self.steps.pop(slot, None)
        self._rngs.pop(slot, None)

    def features(self, slot: Slot) -> list[ImageFeature]:
        """The vision tower's output for each frame of the slot's episode so far (in step order)."""
        return list(self.slots[slot].features)

    def action_tokens(self, allowed: Sequence[str]) -> ActionTokens:
        key = tuple(allowed)
        tree = self._trees.get(key)
        if tree is None:
            segs = self.format.candidates(allowed)
            if not segs:
                raise ValueError(f"{self.name}: no allowed action of the {self.action_space} space in {allowed}")
            tree = ActionTokens(tuple(s.action for s in segs), tuple(tuple(self.runner.tokenize_text(s.text))
                                                                      for s in segs))
            self._trees[key] = tree
        return tree

    # ------------------------------------------------------------ deciding
    def _decide(self, slots: list[Slot], observations: dict[Slot, Observation], outs: dict[Slot, StepOutput]
                ) -> dict[Slot, ActionOutput]:
        trees = {s: self.action_tokens(observations[s].allowed_actions) for s in slots}
        prefix: dict[Slot, list[int]] = {s: [] for s in slots}
        state = {s: outs[s] for s in slots}  # logits / cache after the tokens fed so far
        fed = {s: 0 for s in slots}  # prefix tokens already fed on top of the step's prompt
        logp = {s: 0.0 for s in slots}
        choices: dict[Slot, list[np.ndarray]] = {s: [] for s in slots}
        live = list(slots)
        while live:
            need_forward = []
            for s in live:
                tree = trees[s]
                while tree.action_of(prefix[s]) is None:
                    valid = tree.next_tokens(prefix[s])
                    if len(valid) == 1:  # a forced token
                        prefix[s].append(valid[0])
                        continue
                    if fed[s] < len(prefix[s]):  # the logits after the prefix are not computed yet
                        need_forward.append(s)
                        break
                    k, lp = self._sample(s, state[s].last_hidden, valid)
                    logp[s] += float(lp[k])
                    choices[s].append(lp.double().cpu().numpy())
                    prefix[s].append(valid[k])
            live = need_forward
            if live:  # one batched forward for every slot whose next choice point lies further in
                res = self.runner.forward_chunks([Chunk(prefix[s][fed[s]:]) for s in live], [state[s].kv for s in live],
                                                 [state[s].offset for s in live])
                for s, r in zip(live, res):
                    state[s], fed[s] = r, len(prefix[s])
        values = self._values(slots, outs)
        decisions = {}
        for s in slots:
            action = trees[s].action_of(prefix[s])
            self.steps[s].append(SampledStep(self._step_input(self.slots[s], observations[s]), action, logp[s],
                                             choices[s], tuple(observations[s].allowed_actions), values.get(s)))
            decisions[s] = ActionOutput(action, True, None, {action: logp[s]})
        return decisions

    @torch.no_grad()
    def _values(self, slots: list[Slot], outs: dict[Slot, StepOutput]) -> dict[Slot, float]:
        if self.value_head is None:
            return {}
        h = torch.stack([outs[s].last_hidden for s in slots])
        w = next(self.value_head.parameters())
        v = self.value_head(h.to(w.dtype)).squeeze(-1)
        return {s: float(x) for s, x in zip(slots, v)}

    def _sample(self, slot: Slot, hidden: torch.Tensor, valid: list[int]) -> tuple[int, torch.Tensor]:
        """Index of the sampled token among `valid`, and the restricted log-probs of all of them."""
        ids = torch.tensor([valid], device=hidden.device)
        lp = restricted_logprobs(hidden[None], self.runner.model.lm_head, ids, torch.ones_like(ids, dtype=torch.bool),
                                 self.temperature)[0]
        cdf = np.cumsum(lp.exp().double().cpu().numpy())
        k = int(np.searchsorted(cdf, self._rngs[slot].random() * cdf[-1], side="right"))
        return min(k, len(valid) - 1), lp
