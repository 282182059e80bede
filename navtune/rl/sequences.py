"""A roll-out as the update sees it: its training text in the prompt format (one packed sequence for ``chat``,
one per step for per-step formats), tokenized exactly as the policy fed it, with the frames' vision features
(kept from the roll-out: the vision tower is frozen) and, per action, the positions whose logits decide it.

`score_sequence` is the update's forward: one forward per chunk (one per roll-out for ``chat``), logits only
at the choice points, restricted to the valid tokens (`navtune.rl.policy`), and the hidden state of each
step's state (the position before the action: what a value head reads).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from navtune.agents.prompts.base import tokenize_rendered
from navtune.rl.policy import SamplingVLMPolicy, restricted_logprobs
from navtune.rl.rollout import Rollout


@dataclass
class SequenceChunk:
    """One forward: token ids, the vision features of its images (in placeholder order), and where to read."""

    ids: torch.Tensor  # (L,) long
    features: list[torch.Tensor]  # per image (n_tokens, hidden)
    grids: torch.Tensor | None  # (n_images, 3) long
    choice_pos: torch.Tensor  # (n,) positions whose logits predict a choice token
    state_pos: torch.Tensor  # (a,) position before each of this chunk's actions' first token


@dataclass
class RolloutSequence:
    """The encoded roll-out. Choice points are listed over all chunks in order; `step_of_choice` maps each to
    its action (steps with a forced action have none)."""

    chunks: list[SequenceChunk]
    valid: torch.Tensor  # (n, K) valid token ids at each choice point (padded)
    mask: torch.Tensor  # (n, K) real entries of `valid`
    chosen: torch.Tensor  # (n,) index of the taken token among `valid`
    step_of_choice: torch.Tensor  # (n,) action index
    num_steps: int

    def to(self, device: torch.device | str) -> "RolloutSequence":
        chunks = [SequenceChunk(c.ids.to(device), [f.to(device) for f in c.features],
                                None if c.grids is None else c.grids.to(device), c.choice_pos.to(device),
                                c.state_pos.to(device)) for c in self.chunks]
        return RolloutSequence(chunks, self.valid.to(device), self.mask.to(device), self.chosen.to(device),
                               self.step_of_choice.to(device), self.num_steps)


def encode_rollout(rollout: Rollout, policy: SamplingVLMPolicy) -> RolloutSequence:
    """Render the roll-out's steps (frames replaced by their indices) with the policy's format and system
    prompt, tokenize as the policy does, and locate every choice point of every action."""
    fmt, runner = policy.format, policy.runner
    steps = [dataclasses.replace(s.input, image=t, previous_images=list(range(t))) for t, s in enumerate(rollout.steps)]
    actions = [s.action for s in rollout.steps]
    counts = [runner.n_image_tokens(f.grid_thw) for f in rollout.features]
    chunks: list[SequenceChunk] = []
    valid_rows: list[list[int]] = []
    chosen: list[int] = []
    step_of: list[int] = []
    t = 0
    for rendered in fmt.render_episode(steps, actions, policy.system_prompt):
        images = list(rendered.images)
        ids, spans = tokenize_rendered(rendered, [counts[i] for i in images], runner.tokenize_text)
        choice_pos, state_pos = [], []
        for start, end, action in spans:
            if t >= len(actions) or action != actions[t]:
                raise ValueError(f"roll-out {rollout.job.key}: the format's training text labels {action!r} where the "
                                 f"roll-out took {actions[t] if t < len(actions) else None!r}")
            tree = policy.action_tokens(rollout.steps[t].allowed)
            want = tree.tokens[tree.actions.index(action)]
            if tuple(ids[start:end]) != want:
                raise ValueError(f"format {fmt.name!r} renders action {action!r} as tokens {ids[start:end]} in training "
                                 f"but scores it as {list(want)} when acting")
            state_pos.append(start - 1)
            for k, valid, idx in tree.positions(action):
                choice_pos.append(start + k - 1)
                valid_rows.append(valid)
                chosen.append(idx)
                step_of.append(t)
            t += 1
        feats = [rollout.features[i] for i in images]
        chunks.append(SequenceChunk(torch.tensor(ids, dtype=torch.long), [f.embeds for f in feats],
                                    torch.stack([f.grid_thw for f in feats]) if feats else None,
                                    torch.tensor(choice_pos, dtype=torch.long), torch.tensor(state_pos, dtype=torch.long)))
    if t != len(actions):
        raise ValueError(f"roll-out {rollout.job.key}: the training text labels {t} of its {len(actions)} actions")
    K = max((len(v) for v in valid_rows), default=1)
    valid = torch.zeros(len(valid_rows), K, dtype=torch.long)
    mask = torch.zeros(len(valid_rows), K, dtype=torch.bool)
    for i, v in enumerate(valid_rows):
        valid[i, : len(v)] = torch.tensor(v)
        mask[i, : len(v)] = True
    return RolloutSequence(chunks, valid, mask, torch.tensor(chosen, dtype=torch.long),
                           torch.tensor(step_of, dtype=torch.long), len(actions))


def _parts(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(Qwen2(.5)-VL inner model, lm_head) of a plain or peft-wrapped *ForConditionalGeneration."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model, base.lm_head


@dataclass
class SequenceScores:
    logp: torch.Tensor  # (n, K) restricted log-probs at each choice point (-inf where masked)
    state_hidden: torch.Tensor  # (T, H) hidden state at each step's state position


def score_sequence(model: nn.Module, seq: RolloutSequence, temperature: float, image_token_id: int) -> SequenceScores:
    """The update's forward of one roll-out (gradients flow when enabled): one forward per chunk."""
    inner, head = _parts(model)
    embed = inner.get_input_embeddings()
    logps, states = [], []
    a = 0
    for c in seq.chunks:
        ids = c.ids[None]
        emb = embed(ids)
        mm = (ids == image_token_id).int()
        if c.features:
            feats = torch.cat(c.features).to(emb.dtype)
            emb = emb.masked_scatter(mm[..., None].bool(), feats)
        pos = inner.get_rope_index(ids, mm_token_type_ids=mm, image_grid_thw=c.grids)[0]
        hidden = inner.language_model(inputs_embeds=emb, position_ids=pos, use_cache=False).last_hidden_state[0]
        n = len(c.choice_pos)
        if n:
            rows = slice(a, a + n)
            logps.append(restricted_logprobs(hidden[c.choice_pos], head, seq.valid[rows], seq.mask[rows], temperature))
            a += n
        states.append(hidden[c.state_pos])
    K = seq.valid.shape[1]
    logp = torch.cat(logps) if logps else torch.zeros(0, K, dtype=torch.float32, device=seq.valid.device)
    return SequenceScores(logp, torch.cat(states))
