"""VLM policies over Qwen2(.5)-VL: the seed's loop, cached image features, and KV-cache incremental chat.

Three ways to run one step (``mode``):

* ``full``  - the seed's loop: re-tokenize and re-encode every image of the history each step, through the
  model's own ``forward`` (positions and vision computed inside transformers). The reference.
* ``cached`` - each frame is encoded once per episode by the (frozen, per-image) vision tower and its
  features are fed back through ``mm_encoder_outputs``-equivalent embedding scatter; the text is recomputed
  (the only option for ``r2r-lowlevel``, whose prompt changes *before* the image history each step).
* ``kv``    - incremental formats (``chat``): keep the KV cache across steps and feed only the step's new
  tokens (the format's `render_delta`). transformers 5.23 gets the multimodal rotary positions of a chunk
  wrong after a cached prefix, so each chunk's 3-D positions are computed with ``get_rope_index`` plus the
  running offset, and no chunk attention mask is passed (a full-length mask only when batching needs padding).

Decisions (``decode``): ``score`` compares the allowed actions' log-probs at the action position (Move
excluded when not allowed; multi-token actions score their whole continuation), as the seed's argmax
does; ``generate`` runs a small greedy decode loop (``generate()`` cannot continue from such a cache) and
parses the text (invalid answers are counted and fall back to the best-scored allowed action).

Batching: ``act`` runs all given slots in one forward (chunks right-padded, cached pasts left-padded, one
2-D mask), per-slot caches are sliced back afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from navtune.agents.parsing import ParseStats
from navtune.agents.policy import POLICIES, ActionOutput, BasePolicy, Slot
from navtune.agents.prompts import Rendered, Segment, StepInput, get_format, load_system_prompt
from navtune.agents.prompts.base import image_token_count, merge_size_of, tokenize_rendered
from navtune.envs.protocol import Observation

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each (B, kv_heads, L, head_dim)


@dataclass
class ImageFeature:
    """One frame after the vision tower: its LLM-side embeddings and grid (t, h, w) in patches."""

    embeds: torch.Tensor  # (n_tokens, hidden)
    grid_thw: torch.Tensor  # (3,) long


@dataclass
class Chunk:
    """Token ids to feed, with the features of the images whose placeholders they contain (in order)."""

    ids: list[int]
    images: list[ImageFeature] = field(default_factory=list)
    targets: list[tuple[int, int, str]] = field(default_factory=list)  # token spans of action segments


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Logits in float32, or float64 for a float64 model (its exact log-probs are compared in tests)."""
    return x if x.dtype == torch.float64 else x.float()


@dataclass
class StepOutput:
    last_logits: torch.Tensor | None  # (V,) logits at the last fed position (float32; float64 for a float64 model)
    kv: KV | None
    offset: int  # next rope position
    last_hidden: torch.Tensor | None = None  # (H,) final hidden state there (value heads read it); batched path


def to_pil(image: Any, size: tuple[int, int] | None = None) -> Image.Image:
    """(H, W, 3) uint8 array or PIL image -> RGB PIL, resized to (width, height) with LANCZOS like the seed."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] < 3:
            raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {image.shape}")
        img = Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    elif isinstance(image, Image.Image):
        img = image.convert("RGB")
    else:
        raise TypeError(f"expected an RGB array or PIL image, got {type(image).__name__}")
    if size is not None and img.size != tuple(size):
        img = img.resize(tuple(size), Image.Resampling.LANCZOS)
    return img


class VLMRunner:
    """Tokenization, image encoding and (batched, cached) chunk forwards for one loaded model."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        cfg = model.config
        self.image_token_id = int(cfg.image_token_id)
        self.merge = merge_size_of(processor)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self._tok_cache: dict[str, list[int]] = {}
        self._pos_cache: dict[tuple, torch.Tensor] = {}
        self.eos_ids = {self.tokenizer.convert_tokens_to_ids("<|im_end|>"), self.tokenizer.convert_tokens_to_ids("<|endoftext|>")}
        #: False: forward_chunks skips the full-vocabulary lm_head (StepOutput.last_logits is None); a caller that
        #: scores a few tokens computes them from last_hidden (for a tiny model the head is most of a step's work)
        self.full_logits = True

    # ---------------------------------------------------------------- text
    def tokenize_text(self, text: str) -> list[int]:
        ids = self._tok_cache.get(text)
        if ids is None:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(text) < 256:  # action names, turn ends, templates: bounded (step texts vary forever)
                if len(self._tok_cache) >= 4096:
                    self._tok_cache.clear()
                self._tok_cache[text] = ids
        return list(ids)

    def n_image_tokens(self, grid_thw: torch.Tensor) -> int:
        return image_token_count(grid_thw, self.merge)

    def tokenize(self, rendered: Rendered, grids: Sequence[torch.Tensor]) -> tuple[list[int], list[tuple[int, int, str]]]:
        """Segments tokenized one by one (image pads expanded like the processor does); action token spans."""
        return tokenize_rendered(rendered, [self.n_image_tokens(g) for g in grids], self.tokenize_text)

    # ---------------------------------------------------------------- vision
    def preprocess(self, images: Sequence[Any], size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        pils = [to_pil(im, size) for im in images]
        out = self.processor.image_processor(images=pils, return_tensors="pt")
        return {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}

    @torch.no_grad()
    def encode_images(self, images: Sequence[Any], size: tuple[int, int] | None = None) -> list[ImageFeature]:
        """Run the vision tower once over these frames (each frame is encoded independently)."""
        if not images:
            return []
        pre = self.preprocess(images, size)
        grid = pre["image_grid_thw"].to(self.device)
        out = self.model.model.get_image_features(pre["pixel_values"].to(self.device, self.dtype), grid, return_dict=True)
        return [ImageFeature(e, g.cpu()) for e, g in zip(out.pooler_output, pre["image_grid_thw"])]

    # ---------------------------------------------------------------- positions
    def positions(self, ids: list[int], grids: list[torch.Tensor], offset: int) -> torch.Tensor:
        """(3, L) mrope positions of a chunk that starts at rope position `offset`.

        `get_rope_index` looks only at where the image tokens are and at the grids, and each step's chunk has
        the same layout, so results are cached by (length, image-token runs, grids)."""
        img = self.image_token_id
        runs, start = [], None
        for i, tok in enumerate(ids):
            if tok == img and start is None:
                start = i
            elif tok != img and start is not None:
                runs.append((start, i))
                start = None
        if start is not None:
            runs.append((start, len(ids)))
        key = (len(ids), tuple(runs), tuple(tuple(int(v) for v in g) for g in grids))
        base = self._pos_cache.get(key)
        if base is None:
            t = torch.tensor([ids], dtype=torch.long)
            mm = (t == img).int()
            grid = torch.stack(grids) if grids else None
            base = self.model.model.get_rope_index(t, mm_token_type_ids=mm, image_grid_thw=grid)[0][:, 0]
            if len(ids) <= 2048 and len(self._pos_cache) < 256:
                self._pos_cache[key] = base
        return base + offset

    # ---------------------------------------------------------------- forward
    def _embed(self, chunk: Chunk) -> torch.Tensor:
        ids = torch.tensor(chunk.ids, dtype=torch.long, device=self.device)
        emb = self.model.model.get_input_embeddings()(ids)
        if chunk.images:
            feats = torch.cat([f.embeds for f in chunk.images]).to(emb.dtype)
            mask = ids == self.image_token_id
            if int(mask.sum()) != feats.shape[0]:
                raise ValueError(f"{int(mask.sum())} image tokens but {feats.shape[0]} image features")
            emb = emb.masked_scatter(mask[:, None], feats)
        return emb

    def _make_cache(self, kv: KV | None):
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        if kv is not None:
            for layer, (k, v) in zip(cache.layers, kv):
                layer.lazy_initialization(k, v)
                layer.keys, layer.values = k, v
        return cache

    @torch.no_grad()
    def forward_chunks(self, chunks: list[Chunk], pasts: list[KV | None], offsets: list[int],
                       all_logits: bool = False) -> list[StepOutput] | tuple[list[StepOutput], list[torch.Tensor]]:
        """Feed one chunk per row on top of each row's cached past. Returns per row the logits at its last
        chunk token, its new cache and its next rope offset (and all chunk logits when asked)."""
        B = len(chunks)
        lens = [len(c.ids) for c in chunks]
        plens = [0 if p is None else p[0][0].shape[-2] for p in pasts]
        Lc, P = max(lens), max(plens)
        embeds, pos = [], []
        next_offsets = []
        for c, off in zip(chunks, offsets):
            e = self._embed(c)
            p = self.positions(c.ids, [f.grid_thw for f in c.images], off)
            next_offsets.append(int(p.max()) + 1)
            if len(c.ids) < Lc:  # right-pad; pads are never attended by real tokens and are dropped after
                e = torch.cat([e, e.new_zeros(Lc - len(c.ids), e.shape[-1])])
                p = torch.cat([p, p[:, -1:].expand(3, Lc - len(c.ids))], dim=1)
            embeds.append(e)
            pos.append(p)
        inputs_embeds = torch.stack(embeds)
        position_ids = torch.stack(pos, dim=1).to(self.device)
        need_mask = len(set(lens)) > 1 or len(set(plens)) > 1
        # past: left-pad to P
        if P == 0:
            kv_in = None
        elif B == 1:
            kv_in = pasts[0]
        else:
            kv_in = []
            for layer in range(len(next(p for p in pasts if p is not None))):
                ks, vs = [], []
                for p, pl in zip(pasts, plens):
                    if p is None:
                        ref = next(q for q in pasts if q is not None)[layer][0]
                        k = ref.new_zeros(1, ref.shape[1], P, ref.shape[3])
                        v = k
                    else:
                        k, v = p[layer]
                        if pl < P:
                            z = k.new_zeros(1, k.shape[1], P - pl, k.shape[3])
                            k, v = torch.cat([z, k], dim=2), torch.cat([z, v], dim=2)
                    ks.append(k)
                    vs.append(v)
                kv_in.append((torch.cat(ks), torch.cat(vs)))
        mask = None
        if need_mask:
            mask = torch.zeros(B, P + Lc, dtype=torch.long, device=self.device)
            for i, (pl, ln) in enumerate(zip(plens, lens)):
                mask[i, P - pl : P + ln] = 1
        cache = self._make_cache(kv_in)
        out = self.model.model.language_model(inputs_embeds=inputs_embeds, position_ids=position_ids, attention_mask=mask,
                                              past_key_values=cache, use_cache=True)
        hidden = out.last_hidden_state
        last = hidden[torch.arange(B), torch.tensor(lens) - 1]
        logits = _upcast(self.model.lm_head(last)) if self.full_logits else None
        results = []
        for i in range(B):
            kv_i = [(layer.keys[i : i + 1, :, P - plens[i] : P + lens[i]], layer.values[i : i + 1, :, P - plens[i] : P + lens[i]])
                    for layer in cache.layers]
            results.append(StepOutput(logits[i] if logits is not None else None, kv_i, next_offsets[i], last[i]))
        if all_logits:
            return results, [_upcast(self.model.lm_head(hidden[i, : lens[i]])) for i in range(B)]
        return results

    @torch.no_grad()
    def forward_full(self, rendered: Rendered, size: tuple[int, int] | None = None) -> StepOutput:
        """The seed's path: everything (all frames too) through the model's own forward, no cache reuse."""
        kwargs: dict[str, Any] = {}
        grids: list[torch.Tensor] = []
        if rendered.images:
            pre = self.preprocess(rendered.images, size)
            kwargs["pixel_values"] = pre["pixel_values"].to(self.device, self.dtype)
            kwargs["image_grid_thw"] = pre["image_grid_thw"].to(self.device)
            grids = list(pre["image_grid_thw"])
        ids, _ = self.tokenize(rendered, grids)
        t = torch.tensor([ids], dtype=torch.long, device=self.device)
        self.model.model.rope_deltas = None
        out = self.model(input_ids=t, mm_token_type_ids=(t == self.image_token_id).int(), use_cache=True,
                         logits_to_keep=1, **kwargs)
        self.model.model.rope_deltas = None
        kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        offset = int(self.positions(ids, grids, 0).max()) + 1
        return StepOutput(_upcast(out.logits[0, -1]), kv, offset)


@dataclass
class SlotState:
    actions: list[str] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)  # raw frames (full mode re-encodes them)
    features: list[ImageFeature] = field(default_factory=list)  # cached mode
    history: Rendered = field(default_factory=lambda: Rendered([]))  # chat: all deltas so far
    kv: KV | None = None  # kv mode
    offset: int = 0


MODES = ("full", "cached", "kv")
DECODES = ("score", "generate")


@POLICIES.register("vlm")
class VLMPolicy(BasePolicy):
    """A Qwen2(.5)-VL agent for one prompt format. See the module docstring for modes and decoding."""

    name = "vlm"

    def __init__(self, model: Any = None, processor: Any = None, *, model_path: str | Path | None = None,
                 format: str = "r2r-lowlevel", mode: str | None = None, decode: str = "score",
                 system_prompt: str | None = None, system_prompt_file: str | Path | None = None,
                 image_size: tuple[int, int] | None = (320, 240), max_new_tokens: int = 64,
                 distance_decimals: int | None = 3, action_space: str | None = None,
                 dtype: str = "float32", device: str = "cpu", keep_logits: bool = False) -> None:
        super().__init__()
        if model is None:
            if model_path is None:
                raise ValueError("VLMPolicy needs a model (and processor) or a model_path")
            from navtune.agents.models.loading import load_model

            loaded = load_model(model_path, dtype=dtype, device=device)
            model, processor = loaded.model, loaded.processor
        self.format = get_format(format, action_space=action_space)
        self.action_space = self.format.action_space
        mode = mode or ("kv" if self.format.incremental else "cached")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {MODES}")
        if mode == "kv" and not self.format.incremental:
            raise ValueError(f"mode 'kv' needs an append-only format (chat), not {format!r}")
        if decode not in DECODES:
            raise ValueError(f"unknown decode {decode!r}; known: {DECODES}")
        self.mode, self.decode = mode, decode
        self.runner = VLMRunner(model, processor)
        self.system_prompt = system_prompt if system_prompt is not None else load_system_prompt(
            system_prompt_file, model_dir=model_path)
        self.image_size = tuple(image_size) if image_size else None
        self.max_new_tokens = max_new_tokens
        self.distance_decimals = distance_decimals
        self.keep_logits = keep_logits
        self.last_logits: dict[Slot, torch.Tensor] = {}
        self.parse_stats = ParseStats()
        self.slots: dict[Slot, SlotState] = {}
        self.name = f"vlm:{format}:{mode}"

    # ------------------------------------------------------------ slots
    def _reset_slot(self, slot: Slot) -> None:
        self.slots[slot] = SlotState()
        self.last_logits.pop(slot, None)

    def _release_slot(self, slot: Slot) -> None:
        self.slots.pop(slot, None)
        self.last_logits.pop(slot, None)

    def set_executed_action(self, slot: Slot, action: str) -> None:
        """Replace the slot's last action by what the env really executed (the next prompt shows it; in kv
        mode the action is only fed with the next step's delta, so the cache stays exact)."""
        st = self.slots.get(slot)
        if st is None or not st.actions:
            raise KeyError(f"{self.name}: slot {slot!r} has no step to correct")
        st.actions[-1] = action

    def _step_input(self, st: SlotState, obs: Observation) -> StepInput:
        d = obs.distance_traveled
        if self.distance_decimals is not None:
            d = round(float(d), self.distance_decimals)
        return StepInput(instruction=obs.instruction or "", step=obs.step if obs.step is not None else len(st.actions),
                         distance=d, previous_actions=list(st.actions), allowed_actions=tuple(obs.allowed_actions),
                         image=obs.rgb, previous_images=list(st.frames))

    # ------------------------------------------------------------ acting
    def _act(self, observations: dict[Slot, Observation], expert_actions: dict[Slot, str]) -> dict[Slot, ActionOutput]:
        slots = list(observations)
        for s in slots:
            if s not in self.slots:
                self._reset_slot(s)
            if observations[s].rgb is None:
                raise ValueError(f"{self.name}: observation of slot {s!r} has no rgb frame")
        steps = {s: self._step_input(self.slots[s], observations[s]) for s in slots}
        # 1. the prompt of this step, as one forward per slot (batched)
        if self.mode == "full":
            outs = {}
            for s in slots:
                st, step = self.slots[s], steps[s]
                outs[s] = self.runner.forward_full(self._prompt(st, step), self.image_size)
        else:
            new_feats = self.runner.encode_images([steps[s].image for s in slots], self.image_size)
            chunks, pasts, offsets = [], [], []
            for s, feat in zip(slots, new_feats):
                st, step = self.slots[s], steps[s]
                if self.mode == "kv":
                    delta = self.format.render_delta(step, self.system_prompt, st.actions[-1] if st.actions else None)
                    delta = self._with_forced_prefix(delta)
                    feats = [feat]
                    pasts.append(st.kv)
                    offsets.append(st.offset)
                else:
                    delta = self._prompt(st, step)
                    n_img = len(delta.images)  # the format decides which frames it shows (all, or the last)
                    feats = (st.features + [feat])[-n_img:] if n_img else []
                    pasts.append(None)
                    offsets.append(0)
                ids, _ = self.runner.tokenize(delta, [f.grid_thw for f in feats])
                chunks.append(Chunk(ids, feats))
            outs = dict(zip(slots, self.runner.forward_chunks(chunks, pasts, offsets)))
            for s, feat in zip(slots, new_feats):
                self.slots[s].features.append(feat)
        # 2. decide
        decisions = self._decide(slots, observations, outs)
        # 3. update histories (the chosen action is fed at the next step's delta in kv mode)
        for s in slots:
            st, step = self.slots[s], steps[s]
            if self.mode == "kv":
                st.kv, st.offset = outs[s].kv, outs[s].offset
            if self.format.incremental:
                st.history = self._history_with(st, step)
            st.actions.append(decisions[s].action)
            st.frames.append(step.image)
            if self.keep_logits:
                self.last_logits[s] = outs[s].last_logits.detach().cpu()
        return decisions

    def _history_with(self, st: SlotState, step: StepInput) -> Rendered:
        return st.history + self.format.render_delta(step, self.system_prompt, st.actions[-1] if st.actions else None)

    def _prompt(self, st: SlotState, step: StepInput) -> Rendered:
        """Full prompt of this step (the forced answer prefix included)."""
        if self.format.incremental:
            r = self._history_with(st, step)
        else:
            r = self.format.render_step(step, self.system_prompt)
        return self._with_forced_prefix(r)

    def _with_forced_prefix(self, r: Rendered) -> Rendered:
        """Append the answer text the format puts before the action (objectnav-json's JSON head) when scoring."""
        prefix = self.format.answer_prefix()
        if self.decode != "score" or not prefix:
            return r
        return Rendered(r.segments + [Segment(prefix)], r.images)

    def _decide(self, slots: list[Slot], observations: dict[Slot, Observation], outs: dict[Slot, StepOutput]
                ) -> dict[Slot, ActionOutput]:
        scores = self._score(slots, observations, outs)
        if self.decode == "score":
            return {s: ActionOutput(max(scores[s], key=scores[s].get), True, None, scores[s]) for s in slots}
        texts = self._generate(slots, outs)
        res = {}
        for s in slots:
            parsed = self.parse_stats.add(self.format.parse(texts[s], observations[s].allowed_actions))
            if parsed.valid:
                res[s] = ActionOutput(parsed.action, True, texts[s], scores[s])
            else:
                res[s] = ActionOutput(max(scores[s], key=scores[s].get), False, texts[s], scores[s])
        return res

    def _score(self, slots: list[Slot], observations: dict[Slot, Observation], outs: dict[Slot, StepOutput]
               ) -> dict[Slot, dict[str, float]]:
        """Log-prob of each allowed action's tokens after the prompt (first-token log-prob when decoding freely)."""
        res: dict[Slot, dict[str, float]] = {}
        multi: list[tuple[Slot, str, list[int]]] = []
        logps = torch.log_softmax(torch.stack([outs[s].last_logits for s in slots]), -1)  # one call for the batch
        for s, logp in zip(slots, logps):
            res[s] = {}
            for seg in self.format.candidates(observations[s].allowed_actions):
                ids = self.runner.tokenize_text(seg.text)
                res[s][seg.action] = float(logp[ids[0]])
                if len(ids) > 1 and self.decode == "score":
                    multi.append((s, seg.action, ids))
            if not res[s]:
                raise ValueError(f"slot {s!r}: no allowed action of the {self.action_space} space in "
                                 f"{observations[s].allowed_actions}")
        if multi:  # whole-continuation scores, all candidates of all slots in one batched forward
            chunks = [Chunk(ids[:-1]) for _, _, ids in multi]
            pasts = [outs[s].kv for s, _, _ in multi]
            offsets = [outs[s].offset for s, _, _ in multi]
            _, all_logits = self.runner.forward_chunks(chunks, pasts, offsets, all_logits=True)
            for (s, a, ids), lg in zip(multi, all_logits):
                lp = torch.log_softmax(lg, -1)
                res[s][a] += float(sum(lp[j, ids[j + 1]] for j in range(len(ids) - 1)))
        return res

    def _generate(self, slots: list[Slot], outs: dict[Slot, StepOutput]) -> dict[Slot, str]:
        """Greedy decode loop from each slot's cache (batched); the caches themselves are left untouched."""
        gen: dict[Slot, list[int]] = {s: [] for s in slots}
        live = list(slots)
        cur = {s: outs[s] for s in slots}
        for _ in range(self.max_new_tokens):
            nxt = {}
            for s in live:
                tok = int(torch.argmax(cur[s].last_logits))
                if tok in self.runner.eos_ids:
                    continue
                gen[s].append(tok)
                nxt[s] = tok
            live = list(nxt)
            if not live:
                break
            res = self.runner.forward_chunks([Chunk([nxt[s]]) for s in live], [cur[s].kv for s in live],
                                             [cur[s].offset for s in live])
            cur.update(dict(zip(live, res)))
        return {s: self.runner.tokenizer.decode(gen[s], skip_special_tokens=True) for s in slots}
