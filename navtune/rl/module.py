"""`RLModule`: online RL (GRPO / PPO) as a LightningModule. One training step is one RL iteration:

1. **roll out** `episodes_per_iteration` episode starts x `group_size` roll-outs with the current policy
   (`RolloutCollector`: N envs, batched KV-cache forwards, sampling over the allowed actions);
2. **advantages**: GRPO normalises returns within each group; PPO runs GAE over the value head's estimates
   recorded while rolling out;
3. **reference**: the starting policy's distributions at the roll-outs' choice points (the LoRA adapter
   switched off, or a frozen copy with --full), one no-grad forward per roll-out (skipped when --kl 0);
4. **update**: `update_epochs` passes, each split into `minibatches` optimizer steps; every roll-out is one
   forward (one per step for per-step formats) whose log-probs equal the roll-out's before the first step.

The iteration index is the data module's item, so Lightning's loop state and the loader's position (saved in
checkpoints) carry it; every random draw (episode starts, action sampling, minibatch order) is seeded by
(seed, iteration, ...), so a resumed run replays exactly what the uninterrupted one did.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from navtune.core.io import append_jsonl
from navtune.evaluation.backends import EvalEpisode
from navtune.rl import losses as L
from navtune.rl.config import RLConfig
from navtune.rl.policy import SamplingVLMPolicy
from navtune.rl.rollout import Rollout, RolloutCollector, RolloutJob
from navtune.rl.sequences import RolloutSequence, encode_rollout, score_sequence
from navtune.trainers.module import check_resumable, keep_trained_state

#: One line per iteration (rank 0): the logged scalars; a resumed run appends (later lines for an iteration win).
HISTORY_FILE = "rl_history.jsonl"


@dataclass(frozen=True)
class StartingAgent:
    """What the run starts from, resolved from the config and the model folder's card."""

    model: str  # the weights loaded (a Hugging Face folder or hub id)
    adapter: str | None  # a peft adapter merged into them at load
    format: str
    image_size: tuple[int, int] | None
    system_prompt: str
    action_space: str


def draw_jobs(episodes: list[EvalEpisode], cfg: RLConfig, iteration: int) -> list[RolloutJob]:
    """The iteration's roll-outs: episode starts drawn without replacement (seeded by seed and iteration),
    `group_size` roll-outs each, keyed so their action sampling is their own. Listed member by member (every
    start's first roll-out, then every start's second, ...): the first wave spreads the starts over the envs and
    each env then runs the rest of its group in the house it has loaded (a house load costs ~0.1 s)."""
    rng = np.random.default_rng([cfg.seed, iteration, 1])
    n = min(cfg.episodes_per_iteration, len(episodes))
    starts = [episodes[e] for e in rng.choice(len(episodes), size=n, replace=False).tolist()]
    jobs = []
    for m in range(cfg.group_size):
        for g, ep in enumerate(starts):
            jobs.append(RolloutJob(len(jobs), ep, g, m, f"{cfg.seed}/{iteration}/{ep.episode_id}/{m}"))
    return jobs


def advantages(rollouts: list[Rollout], cfg: RLConfig) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Per roll-out, per step: (advantages, value targets (PPO) or None)."""
    if cfg.algo == "grpo":
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(rollouts):
            groups.setdefault(r.job.group, []).append(i)
        adv: list[np.ndarray] = [np.zeros(0)] * len(rollouts)
        for members in groups.values():
            if cfg.advantage == "return":
                a = L.group_advantages([rollouts[i].returns(cfg.gamma)[0] if rollouts[i].num_steps else 0.0
                                        for i in members], scale=cfg.group_scale == "std")
                for i, ai in zip(members, a):
                    adv[i] = np.full(rollouts[i].num_steps, ai)
            else:
                rtg = [rollouts[i].returns(cfg.gamma) for i in members]
                for i, ai in zip(members, L.group_step_advantages(rtg, scale=cfg.group_scale == "std")):
                    adv[i] = ai
        return adv, None
    pairs = [L.gae(r.rewards, [s.value for s in r.steps], cfg.gamma, cfg.gae_lambda) for r in rollouts]
    flat = L.normalize(np.concatenate([a for a, _ in pairs])) if pairs else np.zeros(0)
    out, k = [], 0
    for a, _ in pairs:
        out.append(flat[k:k + len(a)])
        k += len(a)
    return out, [t for _, t in pairs]


class RLModule(pl.LightningModule):
    def __init__(self, model: nn.Module, processor: Any, cfg: RLConfig, start: StartingAgent,
                 episodes: list[EvalEpisode], reference: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.processor = processor
        self.cfg = cfg
        self.start = start
        self.episodes = episodes
        self._reference = [reference] if reference is not None else []  # not a submodule: never checkpointed
        self.automatic_optimization = False
        self.strict_loading = False  # frozen weights are not in checkpoints (see on_save_checkpoint)
        self.value_head: nn.Linear | None = None
        if cfg.algo == "ppo":
            self.value_head = nn.Linear(_hidden_size(model), 1)
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)
        self.image_token_id = int(_base(model).config.image_token_id)
        self.policy: SamplingVLMPolicy | None = None
        self.collector: RolloutCollector | None = None
        self.last_stats: dict[str, float] = {}

    # ---- lifecycle -----------------------------------------------------------------------------
    def make_policy(self) -> SamplingVLMPolicy:
        s = self.start
        return SamplingVLMPolicy(_base(self.model), self.processor, format=s.format, temperature=self.cfg.temperature,
                                 seed=self.cfg.seed, system_prompt=s.system_prompt, image_size=s.image_size,
                                 action_space=s.action_space, value_head=self.value_head)

    def on_train_start(self) -> None:
        self.policy = self.make_policy()
        self.collector = RolloutCollector(self.policy, self.cfg.task, self.cfg.num_envs, self.cfg.processes,
                                          self.cfg.reward())

    def teardown(self, stage: str) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None

    def configure_optimizers(self):
        main = [p for n, p in self.model.named_parameters() if p.requires_grad]
        if not main:
            raise ValueError("nothing to train: every parameter of the model is frozen")
        groups = [{"params": main, "weight_decay": self.cfg.weight_decay}]
        if self.value_head is not None:
            groups.append({"params": list(self.value_head.parameters()), "weight_decay": 0.0, "lr": self.cfg.value_lr})
        return torch.optim.AdamW(groups, lr=self.cfg.lr)

    # ---- one iteration -------------------------------------------------------------------------
    def reference_context(self):
        """The reference policy: the starting model (LoRA switched off; with --full a frozen copy)."""
        if self._reference:
            return None
        return self.model.disable_adapter() if hasattr(self.model, "disable_adapter") else None

    @torch.no_grad()
    def reference_logps(self, seqs: list[RolloutSequence]) -> list[torch.Tensor]:
        T = self.cfg.temperature
        if self._reference:
            ref = self._reference[0]
            return [score_sequence(ref, s, T, self.image_token_id).logp for s in seqs]
        ctx = self.reference_context()
        if ctx is None:
            raise ValueError("no reference policy: LoRA off and no frozen copy")
        with ctx:
            return [score_sequence(self.model, s, T, self.image_token_id).logp for s in seqs]

    def training_step(self, batch: Any, batch_idx: int) -> None:
        cfg = self.cfg
        iteration = int(batch)
        t0 = time.perf_counter()
        jobs = draw_jobs(self.episodes, cfg, iteration)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            rb = self.collector.collect(jobs)
        rollouts = rb.rollouts
        seqs = [encode_rollout(r, self.policy).to(self.device) for r in rollouts]
        adv, targets = advantages(rollouts, cfg)
        t1 = time.perf_counter()
        ref = self.reference_logps(seqs) if cfg.kl_coef > 0 else None
        if was_training:
            self.model.train()
        stats = self.update(iteration, rollouts, seqs, adv, targets, ref)
        t2 = time.perf_counter()
        n_actions = sum(r.num_steps for r in rollouts)
        returns = [r.returns(cfg.gamma)[0] if r.num_steps else 0.0 for r in rollouts]
        kl_old = self._kl_of_rollouts(rollouts, seqs, ref) if ref is not None else float("nan")
        stats.update({
            "iteration": float(iteration),
            "return": float(np.mean(returns)),
            "reward_sum": float(np.mean([r.rewards.sum() for r in rollouts])),
            "sr": float(np.mean([r.success for r in rollouts])),
            "steps": n_actions / len(rollouts),
            "kl": kl_old,
            "entropy": float(np.mean([s.entropy for r in rollouts for s in r.steps])) if n_actions else 0.0,
            "rollout_s": rb.seconds,
            "env_steps_per_s": rb.env_steps / rb.seconds if rb.seconds > 0 else float("nan"),
            "update_s": t2 - t1,
            "encode_s": t1 - t0 - rb.seconds,
            "iteration_s": t2 - t0,
        })
        self.last_stats = stats
        self._log(iteration, stats)

    def _kl_of_rollouts(self, rollouts: list[Rollout], seqs: list[RolloutSequence], ref: list[torch.Tensor]) -> float:
        """Mean over actions of KL(pi_rollout || pi_ref): the iteration's policy (as it acted) to the reference."""
        total, n = 0.0, 0
        for r, s, q in zip(rollouts, seqs, ref):
            old = [c for st in r.steps for c in st.choices]
            for c, qrow, m in zip(old, q.double().cpu(), s.mask.cpu()):
                qv = qrow[m].numpy()
                total += float((np.exp(c) * (c - qv)).sum())
            n += r.num_steps
        return total / max(n, 1)

    def update(self, iteration: int, rollouts: list[Rollout], seqs: list[RolloutSequence], adv: list[np.ndarray],
               targets: list[np.ndarray] | None, ref: list[torch.Tensor] | None) -> dict[str, float]:
        cfg = self.cfg
        opt = self.optimizers()
        dev = self.device
        dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        old = [torch.tensor([s.logp for s in r.steps], dtype=dtype, device=dev) for r in rollouts]
        advs = [torch.as_tensor(a, dtype=dtype, device=dev) for a in adv]
        tgts = [torch.as_tensor(t, dtype=dtype, device=dev) for t in targets] if targets is not None else None
        keys = ("loss", "pg_loss", "kl_update", "entropy_update", "clip_frac", "value_loss")
        sums = dict.fromkeys(keys, 0.0)
        counted = 0
        ratio_dev0 = 0.0  # max |ratio - 1| before the first optimizer step: 0 up to float rounding (log-probs match)
        for epoch in range(cfg.update_epochs):
            order = np.random.default_rng([cfg.seed, iteration, epoch, 2]).permutation(len(rollouts))
            for mb_index, mb in enumerate(np.array_split(order, cfg.minibatches)):
                n_mb = sum(rollouts[i].num_steps for i in mb)
                if n_mb == 0:
                    continue
                for i in mb:
                    out = score_sequence(self.model, seqs[i], cfg.temperature, self.image_token_id)
                    terms = self._terms(seqs[i], out, old[i], advs[i], None if ref is None else ref[i],
                                        None if tgts is None else tgts[i])
                    self.manual_backward(terms["loss"] / n_mb)
                    for k in keys:
                        if k in terms:
                            sums[k] += float(terms[k].detach())
                    if epoch == 0 and mb_index == 0:
                        ratio_dev0 = max(ratio_dev0, float(terms["ratio_dev"].detach()))
                    counted += rollouts[i].num_steps
                if cfg.grad_clip:
                    self.clip_gradients(opt, gradient_clip_val=cfg.grad_clip, gradient_clip_algorithm="norm")
                opt.step()
                opt.zero_grad(set_to_none=True)
        out = {k: v / max(counted, 1) for k, v in sums.items()}  # per action, over every pass
        out["ratio_dev0"] = ratio_dev0
        return out

    def _terms(self, seq: RolloutSequence, out: Any, old: torch.Tensor, adv: torch.Tensor, ref: torch.Tensor | None,
               target: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Summed (over the roll-out's actions) loss terms; see navtune.rl.losses."""
        cfg = self.cfg
        T = seq.num_steps
        chosen_lp = out.logp.gather(-1, seq.chosen[:, None]).squeeze(-1)
        logp = torch.zeros(T, dtype=chosen_lp.dtype, device=chosen_lp.device).index_add(0, seq.step_of_choice, chosen_lp)
        pg, ratio, clipped = L.clipped_surrogate(logp, old.to(logp.dtype), adv.to(logp.dtype), cfg.clip)
        kl_pos, ent_pos = L.kl_and_entropy(out.logp, ref)
        zeros = torch.zeros(T, dtype=logp.dtype, device=logp.device)
        kl = zeros.index_add(0, seq.step_of_choice, kl_pos)
        ent = zeros.index_add(0, seq.step_of_choice, ent_pos)
        loss = pg.sum() + cfg.kl_coef * kl.sum() - cfg.entropy_coef * ent.sum()
        terms = {"pg_loss": pg.sum(), "kl_update": kl.sum(), "entropy_update": ent.sum(),
                 "clip_frac": clipped.to(logp.dtype).sum(), "ratio_dev": (ratio - 1).abs().max() if T else zeros.sum()}
        if self.value_head is not None and target is not None:
            v = self.value_head(out.state_hidden.to(self.value_head.weight.dtype)).squeeze(-1)
            vl = 0.5 * ((v - target.to(v.dtype)) ** 2).sum()
            loss = loss + cfg.value_coef * vl
            terms["value_loss"] = vl
        terms["loss"] = loss
        return terms

    # ---- logging and checkpoints ---------------------------------------------------------------
    def _log(self, iteration: int, stats: dict[str, float]) -> None:
        for k in ("return", "sr", "kl"):
            self.log(f"rl/{k}", stats[k], prog_bar=True, logger=False, batch_size=1)
        if not self.trainer.is_global_zero:
            return
        scalars = {f"rl/{k}": v for k, v in stats.items() if k != "iteration" and np.isfinite(v)}
        for lg in self.loggers:
            lg.log_metrics(scalars, step=iteration)
            lg.save()
        if self.cfg.out:
            append_jsonl(Path(self.cfg.out) / HISTORY_FILE, {k: (v if np.isfinite(v) else None) for k, v in stats.items()})

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Only trained weights (and buffers) go into checkpoints; the frozen base comes back from the model
        folder. The config is stored to refuse resuming another run."""
        keep_trained_state(self, checkpoint)
        checkpoint["navtune_rl"] = json.loads(json.dumps(self.cfg.to_dict()))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_resumable(self, checkpoint, checkpoint.get("navtune_rl", {}),
                        ("model", "adapter", "algo", "lora", "seed", "group_size", "episodes_per_iteration"))


def _base(model: nn.Module) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _hidden_size(model: nn.Module) -> int:
    cfg = _base(model).config
    text = getattr(cfg, "text_config", None) or cfg
    return int(text.hidden_size)


