"""LightningModules: SFT (seed 1) and AWR/RWR offline RL (seed 2), one code path.

Both consume one episode per batch (``EpisodeBatch``) and step the optimizer manually: each chunk
(a per-step prompt, or a whole packed ``chat`` episode) is forwarded and back-propagated on its own,
with DDP's gradient sync blocked until the last chunk of the last episode of an optimizer step, so
memory stays that of one forward while the gradient is exactly the episode-mean loss's.

Per action a: nll_a = -log p(a) (mean or sum over its tokens), and the episode loss is
    SFT:  mean_a nll_a                                                    + c_A answer_nll
    AWR:  mean_a w_a nll_a + c_V mean_a (V_a - G_a)^2 + l2 ||LoRA||^2 - l_H mean_a H_a + c_A answer_nll
with w_a = min(exp((G_a - b_a) / beta), w_max) (AWR, b = value head or dataset mean return) or
min(exp(G_a / beta), w_max) (RWR), w_a = 1 for expert labels (`--target expert`, `relabelled="dagger"`: the
expert's action has advantage 0 under the expert's value), H_a the entropy over the allowed actions, and
answer_nll the mean NLL of the answer's other labelled tokens (objectnav-json's JSON; c_A `answer_coef`).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn

from navtune.core.io import append_jsonl
from navtune.trainers import losses as L
from navtune.trainers.batch import MODEL_INPUT_KEYS, Chunk, EpisodeBatch
from navtune.trainers.config import AWRConfig, TrainConfig
from navtune.trainers.freeze import lora_parameters


#: One line per optimizer step (rank 0): {"step", "epoch", "loss" (mean over the step's episodes and
#: processes), "lr"}. A resumed run appends to it; later lines for a step win.
HISTORY_FILE = "loss_history.jsonl"


def backbone_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(decoder that returns hidden states, lm_head) of a plain or peft-wrapped *ForConditionalGeneration."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model, base.get_output_embeddings()


@dataclass
class ChunkOutput:
    """Per-token and per-action results of one forward, at labelled positions only."""

    token_logp: torch.Tensor  # (n,) log p of each labelled action token
    logprobs: torch.Tensor | None  # (n, V) log-softmax at each action token position (entropy term), if asked
    targets: torch.Tensor  # (n,) label token ids of the action tokens
    action_of_token: torch.Tensor  # (n,) action index (within the chunk) of each action token
    state_hidden: torch.Tensor  # (A, H) hidden state before each action's first token
    n_actions: int
    text_logp: torch.Tensor | None = None  # (m,) log p of each labelled answer-text token (None: no text)


def concat_outputs(outs: list[ChunkOutput]) -> ChunkOutput:
    """Several chunks' outputs as one (actions renumbered in order), for losses over a group of chunks."""
    if len(outs) == 1:
        return outs[0]
    shift, aot = 0, []
    for o in outs:
        aot.append(o.action_of_token + shift)
        shift += o.n_actions
    texts = [o.text_logp for o in outs if o.text_logp is not None]
    lps = [o.logprobs for o in outs]
    return ChunkOutput(torch.cat([o.token_logp for o in outs]),
                       torch.cat(lps) if all(lp is not None for lp in lps) else None,
                       torch.cat([o.targets for o in outs]), torch.cat(aot),
                       torch.cat([o.state_hidden for o in outs]), shift, torch.cat(texts) if texts else None)


@functools.cache
def takes_encoder_outputs(backbone_cls: type) -> bool:
    """Whether this transformers version's multimodal forward takes precomputed ``mm_encoder_outputs``
    (older 5.x releases swallow the unknown keyword and silently drop the images)."""
    return "mm_encoder_outputs" in inspect.signature(backbone_cls.forward).parameters


def _cached_image_features(backbone: nn.Module, inputs: dict, keys: tuple, cache: dict) -> dict:
    """`mm_encoder_outputs` for the chunk's images, encoding only frames not in `cache` (the vision tower is
    frozen and encodes each image on its own, so a frame's features are the same in every chunk)."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    grid = inputs["image_grid_thw"]
    sizes = [int(n) for n in grid.prod(-1).tolist()]  # patches per image
    if len(keys) != len(sizes):
        raise ValueError(f"{len(keys)} image keys for {len(sizes)} images")
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    if missing:
        pv = inputs["pixel_values"]
        with torch.no_grad():
            feats = backbone.get_image_features(torch.cat([pv[starts[i]:starts[i] + sizes[i]] for i in missing]),
                                                grid[missing], return_dict=True).pooler_output
        for i, f in zip(missing, feats):
            cache[keys[i]] = f
    return {"image": BaseModelOutputWithPooling(pooler_output=[cache[k] for k in keys])}


def _pad_batch(chunks: list[Chunk]) -> tuple[dict, tuple]:
    """Right-padded model inputs of several chunks (attention 0 on pads: a real token never attends to one),
    their images concatenated in order, and the images' keys."""
    L = max(int(c.labels.numel()) for c in chunks)
    inputs: dict = {}
    for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
        rows = [c.inputs[key] for c in chunks if key in c.inputs]
        if len(rows) == len(chunks):
            inputs[key] = torch.cat([torch.nn.functional.pad(r, (0, L - r.shape[1]), value=0) for r in rows])
    if "attention_mask" not in inputs:
        inputs["attention_mask"] = torch.cat([torch.nn.functional.pad(torch.ones_like(c.inputs["input_ids"]),
                                                                      (0, L - c.inputs["input_ids"].shape[1]))
                                              for c in chunks])
    with_img = [c for c in chunks if "pixel_values" in c.inputs]
    if with_img:
        inputs["pixel_values"] = torch.cat([c.inputs["pixel_values"] for c in with_img])
        inputs["image_grid_thw"] = torch.cat([c.inputs["image_grid_thw"] for c in with_img])
    keys = tuple(k for c in chunks for k in c.image_keys)
    return inputs, keys


def forward_chunk(model: nn.Module, chunk: Chunk, image_cache: dict | None = None,
                  need_logprobs: bool = True) -> ChunkOutput:
    """Forward one sequence and compute logits only where labels are (not over the whole sequence).

    With `image_cache` (a dict kept for one episode; only valid while the vision tower is frozen), each
    frame goes through the vision tower once per episode instead of once per chunk that shows it (on a
    transformers without ``mm_encoder_outputs`` every chunk re-encodes its frames: slower, same result)."""
    return forward_chunks(model, [chunk], image_cache, need_logprobs)[0]


def forward_chunks(model: nn.Module, chunks: list[Chunk], image_cache: dict | None = None,
                   need_logprobs: bool = True) -> list[ChunkOutput]:
    """`forward_chunk` for several independent chunks in one padded forward (one batch row each), with one
    output-projection call over every row's labelled positions."""
    plan = []
    for c in chunks:
        runs = c.runs()
        if not runs:
            raise ValueError("a training sequence has no labelled tokens")
        act = torch.cat(runs)
        text = c.text_positions()
        pos = torch.cat([act, text])
        if int(pos.min()) < 1:
            raise ValueError("a labelled token at position 0 has no preceding position to predict it from")
        plan.append((runs, act, text, pos))
    backbone, head = backbone_and_head(model)
    if len(chunks) == 1:
        inputs = {k: v for k, v in chunks[0].inputs.items() if k in MODEL_INPUT_KEYS}
        keys = chunks[0].image_keys
    else:
        inputs, keys = _pad_batch(chunks)
    if "mm_token_type_ids" not in inputs and "pixel_values" in inputs:
        raise ValueError("inputs with images need mm_token_type_ids (without it Qwen2.5-VL silently "
                         "falls back to 1-D positions)")
    if image_cache is not None and keys and "pixel_values" in inputs and takes_encoder_outputs(type(backbone)):
        mm = _cached_image_features(backbone, inputs, keys, image_cache)
        inputs = {k: v for k, v in inputs.items() if k != "pixel_values"}
        out = backbone(**inputs, mm_encoder_outputs=mm, use_cache=False)
    else:
        out = backbone(**inputs, use_cache=False)
    hidden = out.last_hidden_state
    h = torch.cat([hidden[b, pos - 1] for b, (_, _, _, pos) in enumerate(plan)])
    logits = head(h)
    if logits.dtype in (torch.float16, torch.bfloat16):  # the softmax in float32 (float64 stays float64)
        logits = logits.float()
    targets = torch.cat([c.labels[pos] for c, (_, _, _, pos) in zip(chunks, plan)])
    token_logp = -torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    results, k = [], 0
    for b, (c, (runs, act, text, pos)) in enumerate(zip(chunks, plan)):
        n_act, n = len(act), len(pos)
        sl = slice(k, k + n_act)
        logprobs = torch.log_softmax(logits[sl], dim=-1) if need_logprobs else None
        action_of_token = torch.cat([torch.full((len(r),), i, dtype=torch.long, device=act.device)
                                     for i, r in enumerate(runs)])
        first = torch.stack([r[0] for r in runs]) - 1
        results.append(ChunkOutput(token_logp[sl], logprobs, targets[sl], action_of_token, hidden[b, first],
                                   len(runs), token_logp[k + n_act:k + n] if len(text) else None))
        k += n
    return results


class NavTrainModule(pl.LightningModule):
    """SFT when given a ``TrainConfig``, AWR/RWR when given an ``AWRConfig``."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, total_steps: int, tokenizer=None,
                 dataset_baseline: float = 0.0):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.is_awr = isinstance(cfg, AWRConfig)
        self.total_steps = max(1, int(total_steps))
        self.tokenizer = tokenizer
        self.automatic_optimization = False
        self.strict_loading = False  # frozen base weights are not stored in checkpoints (see on_save_checkpoint)
        self.value_head: nn.Module | None = None
        if self.is_awr and cfg.method == "awr" and cfg.baseline == "value":
            hidden = _hidden_size(model)
            # float32, or float64 with a float64 model (exact comparisons); Lightning's precision may convert it
            dtype = torch.promote_types(next(model.parameters()).dtype, torch.float32)
            self.value_head = nn.Linear(hidden, 1, dtype=dtype)
            nn.init.zeros_(self.value_head.weight)  # starts as the dataset-level baseline, learns from there
            nn.init.constant_(self.value_head.bias, float(dataset_baseline))
        self.register_buffer("dataset_baseline", torch.tensor(float(dataset_baseline), dtype=torch.float64))
        self.aux_heads = _aux_heads(model, getattr(cfg, "aux_labels", ()))
        self._cand_cache: dict[str, list[int]] = {}
        self._window: list[float] = []

    # ---- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self):
        decay, no_decay, value = [], [], []
        for n, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if n.startswith("value_head."):
                value.append(p)
            else:
                (no_decay if p.ndim < 2 or "norm" in n.lower() else decay).append(p)
        if not decay and not no_decay:
            raise ValueError("nothing to train: every parameter is frozen")
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if value:  # a fresh linear head on returns of size ~10 needs a far larger step than the LoRA weights
            groups.append({"params": value, "weight_decay": 0.0, "lr": self.cfg.value_lr})
        params = [p for g in groups for p in g["params"]]
        # the fused kernel is ~8x faster on CPU (a 151k-token vocabulary makes the step dominate tiny models);
        # sharded strategies keep the plain one
        fused = self.cfg.strategy in ("auto", "ddp") and all(p.dtype in (torch.float32, torch.bfloat16) for p in params)
        opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=self.cfg.lr, fused=fused or None)
        warmup = int(math.ceil(self.cfg.warmup_ratio * self.total_steps))
        from transformers import get_linear_schedule_with_warmup

        sched = get_linear_schedule_with_warmup(opt, warmup, self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _is_step_end(self, batch_idx: int) -> bool:
        n = self.trainer.num_training_batches
        return (batch_idx + 1) % self.cfg.accumulate_episodes == 0 or (batch_idx + 1) >= n

    def training_step(self, batch: EpisodeBatch, batch_idx: int):
        opt = self.optimizers()
        step_end = self._is_step_end(batch_idx)
        scale = 1.0 / self.cfg.accumulate_episodes
        stats = self.episode_loss(batch, backward_scale=scale, sync_last=step_end)
        if step_end:
            if self.cfg.grad_clip:
                self.clip_gradients(opt, gradient_clip_val=self.cfg.grad_clip, gradient_clip_algorithm="norm")
            opt.step()
            opt.zero_grad(set_to_none=True)
            self.lr_schedulers().step()
        self._window.append(stats["loss"])
        self.log("train/loss", stats["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=1,
                 sync_dist=True)
        for k, v in stats.items():
            if k != "loss":
                self.log(f"train/{k}", v, on_step=True, on_epoch=False, batch_size=1)
        if step_end:
            step_loss = torch.tensor(sum(self._window) / len(self._window), device=self.device)
            self._window = []
            step_loss = float(self.trainer.strategy.reduce(step_loss, reduce_op="mean"))  # mean over processes
            lr = self.lr_schedulers().get_last_lr()[0]
            self.log("train/step_loss", step_loss, on_step=True, on_epoch=False, batch_size=1)
            self.log("lr", lr, on_step=True, on_epoch=False, batch_size=1)
            if self.trainer.is_global_zero and self.cfg.out:
                append_jsonl(Path(self.cfg.out) / HISTORY_FILE, {"step": int(self.global_step),
                             "epoch": int(self.current_epoch), "loss": step_loss, "lr": float(lr)})

    def episode_loss(self, batch: EpisodeBatch, backward_scale: float | None = None,
                     sync_last: bool = True) -> dict[str, float]:
        """The episode's loss (see module docstring). With `backward_scale`, back-propagates group by group
        of chunks (`chunk_batch` chunks per forward; scaled) and returns floats; the returned "loss" is the
        unscaled episode loss."""
        T = batch.num_actions
        n_text = batch.num_text_tokens
        a0 = 0
        returns = self.episode_returns(batch) if self.is_awr else None
        totals = {"loss": 0.0, "nll": 0.0}
        if n_text:
            totals["answer_nll"] = 0.0
        if self.is_awr:
            totals.update(weight=0.0, entropy=0.0, value_loss=0.0, advantage=0.0)
        image_cache = {} if self._vision_frozen() else None  # one episode's image features
        size = max(1, int(getattr(self.cfg, "chunk_batch", 1)))
        groups = [batch.chunks[i:i + size] for i in range(0, len(batch.chunks), size)]
        need_logprobs = self.is_awr and bool(self.cfg.entropy_coef)
        for gi, group in enumerate(groups):
            last = gi == len(groups) - 1
            block = backward_scale is not None and not (sync_last and last)
            ctx = _no_sync(self) if block else contextlib.nullcontext()
            with ctx:
                out = concat_outputs(forward_chunks(self.model, group, image_cache, need_logprobs))
                sl = slice(a0, a0 + out.n_actions)
                a0 += out.n_actions
                logp = L.per_action(out.token_logp, out.action_of_token, out.n_actions, self.cfg.token_reduction)
                terms = {"nll": -logp.sum() / T}
                loss = terms["nll"]
                if self.is_awr:
                    loss, extra = self._awr_terms(batch, returns[sl], sl, out, logp, T)
                    terms.update(extra)
                if out.text_logp is not None:  # the answer around the action: plain likelihood, never weighted
                    terms["answer_nll"] = -out.text_logp.sum() / n_text
                    loss = loss + self.cfg.answer_coef * terms["answer_nll"]
                if self.aux_heads is not None:
                    aux = self._aux_loss(batch, sl, out, T)
                    loss = loss + self.cfg.aux_coef * aux
                    terms["aux"] = aux
                if last and self.is_awr and self.cfg.l2_coef:
                    l2 = self.cfg.l2_coef * L.l2_penalty([p for _, p in lora_parameters(self.model)])
                    loss = loss + l2
                    terms["l2"] = l2
                if backward_scale is not None:
                    self.manual_backward(loss * backward_scale)
            totals["loss"] += float(loss.detach())
            for k, v in terms.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
        return totals

    def _aux_loss(self, batch: EpisodeBatch, sl: slice, out: ChunkOutput, T: int) -> torch.Tensor:
        """Sum over this chunk's actions of the auxiliary heads' losses on the decision state (cross-entropy
        for class labels, mean binary cross-entropy for multi-labels), divided by the episode's T."""
        from navtune.data.step_labels import STEP_LABELS

        total = out.state_hidden.new_zeros(())
        for name, head in self.aux_heads.items():
            if name not in batch.step_labels:
                raise ValueError(f"episode {batch.episode_id}: no step label {name!r} (aux_labels needs the "
                                 "training samples to carry it)")
            h = out.state_hidden.to(head.weight.dtype)
            logits = head(h)
            target = batch.step_labels[name][sl].to(logits.device)
            if STEP_LABELS.get(name).kind == "class":
                loss = nn.functional.cross_entropy(logits, target.long(), reduction="sum")
            else:
                loss = nn.functional.binary_cross_entropy_with_logits(
                    logits, target.to(logits.dtype), reduction="none").mean(-1).sum()
            total = total + loss.to(total.dtype)
        return total / T

    def _vision_frozen(self) -> bool:
        """Whether a frame's features can be reused across an episode's chunks: asked for, and nothing in the
        vision tower trains."""
        from navtune.trainers.freeze import TrainSetupError, vision_module

        if not getattr(self.cfg, "cache_image_features", True):
            return False
        try:
            return not any(p.requires_grad for p in vision_module(self.model).parameters())
        except TrainSetupError:
            return False

    def episode_returns(self, batch: EpisodeBatch) -> torch.Tensor:
        """G_t recomputed from the dataset's per-step rewards with this run's gamma."""
        from navtune.data.rewards import discounted_returns

        if torch.isnan(batch.rewards).any():
            raise ValueError(f"episode {batch.episode_id}: some steps have no reward (unknown distances); "
                             "offline RL needs rewards on every step")
        return torch.as_tensor(discounted_returns(batch.rewards.cpu().tolist(), self.cfg.gamma), dtype=torch.float64)

    def _awr_terms(self, batch: EpisodeBatch, G: torch.Tensor, sl: slice, out: ChunkOutput, logp: torch.Tensor,
                   T: int):
        cfg: AWRConfig = self.cfg  # type: ignore[assignment]
        G = G.to(logp.device, logp.dtype)
        extra: dict[str, torch.Tensor] = {}
        loss = torch.zeros((), device=logp.device, dtype=logp.dtype)
        if cfg.target == "expert" and cfg.relabelled == "dagger":
            # every label is the expert's action: optimal by construction, so its advantage under the expert's
            # value is 0 and its weight exp(0) = 1. The return of the trajectory that was executed (a failure's,
            # in mined data) says nothing about the relabelled action (DAgger's aggregation).
            w = torch.ones_like(G)
        elif cfg.method == "rwr":
            w = L.rwr_weights(G, cfg.beta, cfg.max_weight)
        elif cfg.baseline == "value":
            v = self.value_head(out.state_hidden.to(self.value_head.weight.dtype)).squeeze(-1).to(G.dtype)
            w = L.awr_weights(G, v, cfg.beta, cfg.max_weight)
            vl = ((v - G) ** 2).sum() / T
            loss = loss + cfg.value_coef * vl
            extra["value_loss"] = vl
            extra["advantage"] = (G - v.detach()).sum() / T
        else:
            b = self.dataset_baseline.to(G.device, G.dtype)
            w = L.awr_weights(G, b, cfg.beta, cfg.max_weight)
            extra["advantage"] = (G - b).sum() / T
        nll = -(w * logp).sum() / T
        loss = loss + nll
        extra["nll"] = (-logp).sum() / T
        extra["weight"] = w.sum() / T
        if cfg.entropy_coef:
            ent = self._entropy(batch, sl, out)
            loss = loss - cfg.entropy_coef * ent.sum() / T
            extra["entropy"] = ent.sum() / T
        return loss, extra

    def _entropy(self, batch: EpisodeBatch, sl: slice, out: ChunkOutput) -> torch.Tensor:
        if self.tokenizer is None:
            raise ValueError("the entropy term needs the tokenizer (to score the allowed actions)")
        ents = []
        for i, a in enumerate(range(sl.start, sl.stop)):
            sel = out.action_of_token == i
            tokens = out.targets[sel]
            own = self._tokens(batch.actions[a])
            if own != tokens.tolist():
                raise ValueError(
                    f"episode {batch.episode_id} step {a}: the labelled tokens {tokens.tolist()} are not the "
                    f"tokenisation {own} of action {batch.actions[a]!r}; the entropy term cannot score the "
                    "allowed actions in this format (set entropy_coef to 0)")
            cands = [self._tokens(c) for c in batch.allowed[a]]
            ents.append(L.entropy_of(L.candidate_logprobs(out.logprobs[sel], tokens, cands)))
        return torch.stack(ents)

    def _tokens(self, text: str) -> list[int]:
        if text not in self._cand_cache:
            self._cand_cache[text] = list(self.tokenizer.encode(text, add_special_tokens=False))
        return self._cand_cache[text]

    # ---- batches and checkpoints ----------------------------------------------------------------
    def validation_step(self, batch: EpisodeBatch, batch_idx: int):
        stats = self.episode_loss(batch, backward_scale=None)
        self.log("val/loss", stats["loss"], on_epoch=True, prog_bar=True, batch_size=1, sync_dist=True)
        self.log("val/nll", stats["nll"], on_epoch=True, batch_size=1, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep only what training changes: frozen base weights come back from the model folder."""
        keep_trained_state(self, checkpoint)
        checkpoint["navtune_config"] = self.cfg.to_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_resumable(self, checkpoint, checkpoint.get("navtune_config", {}), ("model", "format", "lora"))


def keep_trained_state(module: pl.LightningModule, checkpoint: dict) -> None:
    """Reduce a Lightning checkpoint's state_dict to the parameters that train and the buffers (the frozen base
    is reloaded from the model folder): SFT / AWR and RL checkpoints alike."""
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    sd = checkpoint.get("state_dict")
    if sd is not None:
        buffers = {n for n, _ in module.named_buffers()}
        checkpoint["state_dict"] = {k: v for k, v in sd.items() if k in trainable or k in buffers}


def check_resumable(module: pl.LightningModule, checkpoint: dict, saved: dict, keys: tuple[str, ...]) -> None:
    """Refuse to resume from a checkpoint of another run: a config field in `keys` that differs from the saved
    config (`saved`), or a trained parameter the checkpoint does not hold."""
    for key in keys:
        if key in saved and saved[key] != getattr(module.cfg, key):
            raise ValueError(f"checkpoint was trained with {key}={saved[key]!r} but this run has "
                             f"{key}={getattr(module.cfg, key)!r}; resume with the same setting")
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    missing = trainable - set(checkpoint.get("state_dict", {}))
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} trained parameters (e.g. {sorted(missing)[0]}): "
                         "it does not belong to this model/LoRA setup")


def _no_sync(module: pl.LightningModule):
    """DDP's no_sync (via Lightning's parallel strategies); a no-op on one device or without a trainer."""
    try:
        strategy = module.trainer.strategy
    except RuntimeError:
        return contextlib.nullcontext()
    block = getattr(strategy, "block_backward_sync", None)
    return block() if block is not None else contextlib.nullcontext()


def _aux_heads(model: nn.Module, names: tuple[str, ...]) -> nn.ModuleDict | None:
    """One linear head per auxiliary step label (training only: not part of the saved model)."""
    if not names:
        return None
    from navtune.data.step_labels import STEP_LABELS

    dtype = torch.promote_types(next(model.parameters()).dtype, torch.float32)
    hidden = _hidden_size(model)
    return nn.ModuleDict({n: nn.Linear(hidden, STEP_LABELS.get(n).size, dtype=dtype) for n in names})


def _hidden_size(model: nn.Module) -> int:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    text = getattr(cfg, "text_config", None) or cfg
    return int(text.hidden_size)
