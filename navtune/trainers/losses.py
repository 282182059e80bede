"""Loss pieces shared by SFT and AWR, as plain tensor functions (unit-tested by hand computations).

Vocabulary: a sequence's *labelled positions* are the tokens with ``labels != -100``; one contiguous run
of them is one *action* (a per-step sample has one run, a packed ``chat`` episode one run per step).
Logits are computed only at the positions just before labelled tokens, never over the whole sequence.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def label_runs(labels: torch.Tensor) -> list[torch.Tensor]:
    """Contiguous runs of labelled token indices of a 1-D `labels` tensor, one run per action."""
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
    idx = torch.nonzero(labels != IGNORE_INDEX, as_tuple=False).flatten()
    if idx.numel() == 0:
        return []
    breaks = torch.nonzero(idx[1:] != idx[:-1] + 1, as_tuple=False).flatten() + 1
    return list(torch.tensor_split(idx, breaks.tolist()))


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 upcast to float32 for log-softmax and losses; float32 and float64 kept as they are."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) per row of `logits` (n, V), computed in float32 (float64 for float64 logits)."""
    return torch.log_softmax(at_least_float32(logits), dim=-1).gather(-1, targets[:, None]).squeeze(-1)


def per_action(values: torch.Tensor, action_of_token: torch.Tensor, n_actions: int, reduction: str) -> torch.Tensor:
    """Reduce per-token values to per-action values ('sum' or 'mean' over each action's tokens)."""
    out = torch.zeros(n_actions, dtype=values.dtype, device=values.device).index_add(0, action_of_token, values)
    if reduction == "sum":
        return out
    if reduction == "mean":
        counts = torch.bincount(action_of_token, minlength=n_actions).to(values.dtype)
        return out / counts
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def exp_weights(scores: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """min(exp(scores / beta), max_weight), without overflow (the exponent is clipped first)."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if max_weight <= 0:
        raise ValueError(f"max_weight must be > 0, got {max_weight}")
    return torch.exp(torch.clamp(scores / beta, max=math.log(max_weight)))


def awr_weights(returns: torch.Tensor, baseline: torch.Tensor | float, beta: float, max_weight: float) -> torch.Tensor:
    """AWR: w = min(exp((G - b) / beta), max_weight); the baseline gets no gradient through the weights."""
    b = baseline.detach() if isinstance(baseline, torch.Tensor) else baseline
    return exp_weights(returns - b, beta, max_weight)


def rwr_weights(returns: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """RWR: w = min(exp(G / beta), max_weight), straight from the returns."""
    return exp_weights(returns, beta, max_weight)


def candidate_logprobs(
    logprobs: torch.Tensor,
    dataset_tokens: torch.Tensor,
    candidates: Sequence[Sequence[int]],
) -> torch.Tensor:
    """Scores of the allowed actions at one action position, from teacher-forced log-probs.

    `logprobs` (n, V): log-softmax at the n positions predicting the dataset action's tokens
    `dataset_tokens` (n,). A candidate is scored by its tokens up to and including its first token that
    differs from the dataset action's (the logits after that point were never computed): for actions
    that differ in their first token (Left/Right/Move/Stop) this is the exact constrained score the
    policy decides by; for ``turn_left``/``turn_right`` it is the score of the shared prefix plus the
    diverging token. Returns (C,) log-probs normalised over the candidates.
    """
    n = dataset_tokens.numel()
    scores = []
    ds = dataset_tokens.tolist()
    for cand in candidates:
        cand = list(cand)
        if not cand:
            raise ValueError("an allowed action tokenises to no tokens")
        k = 0
        while k < min(n, len(cand)) and cand[k] == ds[k]:
            k += 1
        if k == len(cand) and k == n:  # the dataset action itself
            s = logprobs[torch.arange(n), dataset_tokens].sum()
        elif k < min(n, len(cand)):
            s = logprobs[torch.arange(k), dataset_tokens[:k]].sum() + logprobs[k, cand[k]]
        else:
            raise ValueError(f"allowed actions are not prefix-free at the labelled tokens: {cand} vs {ds}")
        scores.append(s)
    return torch.log_softmax(torch.stack(scores), dim=0)


def entropy_of(logp: torch.Tensor) -> torch.Tensor:
    """Entropy of a normalised log-distribution (last dim)."""
    return -(logp.exp() * logp).sum(-1)


def l2_penalty(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum of squared entries (the ||LoRA||^2 of seed 2)."""
    if not params:
        return torch.zeros(())
    return torch.stack([at_least_float32(p).pow(2).sum() for p in params]).sum()


def weighted_nll(action_logp: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over actions of w * (-log p(a)); w = 1 gives the SFT loss averaged per action."""
    nll = -action_logp
    if weights is not None:
        nll = nll * weights.to(nll.dtype)
    return nll.mean()


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(at_least_float32(values), at_least_float32(returns))
