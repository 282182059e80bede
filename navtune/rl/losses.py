"""The RL objective's pieces as plain functions (numpy for advantages, torch for the loss terms).

Per action t of a roll-out (log pi = the policy's log-prob of the action over the allowed actions, see
`navtune.rl.policy`):

    ratio_t  = exp(log pi_theta(a_t|s_t) - log pi_old(a_t|s_t))                 pi_old: the roll-out's policy
    pg_t     = -min(ratio_t A_t, clip(ratio_t, 1 - eps, 1 + eps) A_t)            PPO's clipped surrogate
    kl_t     = KL(pi_theta(.|s_t) || pi_ref(.|s_t)) over the allowed actions      exact, not an estimate
    loss     = mean_t (pg_t + beta kl_t - c_H H_t)  [+ c_V mean_t (V(s_t) - R_t)^2 with PPO]

GRPO (TRL's): A = (R_i - mean_group R) / (std_group R + 1e-4), R_i the roll-out's discounted return (or,
per step, its return-to-go minus the group's mean return-to-go at that step); a group whose returns are all
equal teaches nothing and gets A = 0 exactly. Without the std (``--group-scale none``, Dr. GRPO / TRL's
``scale_rewards="none"``) a group of failures that differ only by a step's slack is not blown up to unit
advantages (which teaches "stop at once"). PPO (CleanRL's): A from GAE(gamma, lambda) over the value head's
estimates, a finished or cut episode bootstraps with 0, advantages normalised over the iteration.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

GROUP_EPS = 1e-4  # TRL's epsilon in the group normalisation


def group_advantages(returns: Sequence[float], scale: bool = True) -> np.ndarray:
    """(R_i - mean) / (std + eps) within one group (`scale=False`: R_i - mean, Dr. GRPO's unscaled variant,
    TRL's ``scale_rewards="none"``); all zeros when every return is the same."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size == 0 or np.all(r == r[0]):
        return np.zeros_like(r)
    return (r - r.mean()) / (r.std() + GROUP_EPS if scale else 1.0)


def group_step_advantages(returns_to_go: Sequence[Sequence[float]], scale: bool = True) -> list[np.ndarray]:
    """Per-step variant: A_t = G_t - mean of the group's G_t at the same step t (over the members still running
    then; a time-indexed baseline, so early steps are not favoured for having more return ahead), divided by
    the std of all those deviations (`scale`); all zeros when they are all 0 (equal roll-outs)."""
    rtg = [np.asarray(g, dtype=np.float64) for g in returns_to_go]
    T = max((len(g) for g in rtg), default=0)
    dev = [np.zeros(len(g)) for g in rtg]
    for t in range(T):
        alive = [i for i, g in enumerate(rtg) if len(g) > t]
        vals = np.array([rtg[i][t] for i in alive])
        if np.all(vals == vals[0]):
            continue
        for i, v in zip(alive, vals - vals.mean()):
            dev[i][t] = v
    flat = np.concatenate(dev) if dev else np.zeros(0)
    if flat.size == 0 or not np.any(flat):
        return [np.zeros(len(g)) for g in rtg]
    sd = flat.std() + GROUP_EPS if scale else 1.0
    return [d / sd for d in dev]


def gae(rewards: Sequence[float], values: Sequence[float], gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over one finished roll-out (the value after its last step is 0).
    Returns (advantages, value targets = advantages + values)."""
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape:
        raise ValueError(f"gae: {r.shape} rewards but {v.shape} values")
    adv = np.zeros_like(r)
    last = 0.0
    for t in range(len(r) - 1, -1, -1):
        nxt = v[t + 1] if t + 1 < len(r) else 0.0
        delta = r[t] + gamma * nxt - v[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv, adv + v


def normalize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit std (CleanRL's advantage normalisation); unchanged when constant."""
    if x.size < 2 or np.all(x == x.flat[0]):
        return x - x.mean() if x.size else x
    return (x - x.mean()) / (x.std() + 1e-8)


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per action: (-min(ratio A, clip(ratio) A), ratio, whether the clip was active)."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * adv
    return -torch.minimum(unclipped, clipped), ratio, (ratio - 1.0).abs() > clip


def kl_and_entropy(logp: torch.Tensor, ref_logp: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of restricted log-distributions (n, K; -inf where masked): KL(p || ref) and entropy of p."""
    p = logp.exp()
    safe = torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))
    ent = -(p * safe).sum(-1)
    if ref_logp is None:
        return torch.zeros_like(ent), ent
    ref_safe = torch.where(torch.isfinite(ref_logp), ref_logp, torch.zeros_like(ref_logp))
    kl = (p * (safe - ref_safe)).sum(-1)
    return kl, ent
