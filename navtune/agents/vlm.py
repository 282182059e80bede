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

Decisions (``decode``):

* ``score`` forces the format's answer text before the action (objectnav-json's JSON head, with empty
  Observation / Reasoning) and compares the allowed actions' log-probs of their *whole* continuations
  (Move excluded when not allowed; ``turn_left`` / ``turn_right`` share the token ``turn`` and differ in the
  next one, so a first-token comparison would always tie them and pick the first), as the seed's argmax does;
* ``generate`` runs a small greedy decode loop (``generate()`` cannot continue from such a cache; it stops at
  the end of the turn or after ``max_new_tokens``) and parses the text. An answer that does not parse to an
  allowed action is counted as invalid and replaced by an *unbiased* draw among the allowed actions (a
  generator per (episode, step), so runs are reproducible), never by a model score that favours one action;
* ``constrained`` walks the format's `answer_parts`: forced text is fed as is (the JSON skeleton), free
  parts are generated greedily until their stop text (a closing quote), and the action is chosen among the
  allowed ones by whole-continuation scores: the answer is always well formed and always allowed.

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


@dataclass
class StepOutput:
    last_logits: torch.Tensor | None  # (V,) logits at the last fed position (float32; float64 for a float64 model)
    kv: KV | None
    offset: int  # next rope position
    last_hidden: torch.Tensor | None = None  # (H,) final hidden state there (value heads read it); batched path


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """Logits for scoring: bf16/fp16 upcast to float32, float32/float64 kept (float64 runs stay exact)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def cache_argument(forward: Any) -> str:
    """The name a decoder's forward takes its KV cache by: ``cache`` (transformers >= 5.2x, where the old
    ``past_key_values`` warns) or ``past_key_values`` (earlier 5.x)."""
    import inspect

    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


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
        self._cache_arg = cache_argument(model.model.language_model.forward)
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
                                              use_cache=True, **{self._cache_arg: cache})
        hidden = out.last_hidden_state
        last = hidden[torch.arange(B), torch.tensor(lens) - 1]
        logits = at_least_float32(self.model.lm_head(last)) if self.full_logits else None
        results = []
        for i in range(B):
            kv_i = [(layer.keys[i : i + 1, :, P - plens[i] : P + lens[i]], layer.values[i : i + 1, :, P - plens[i] : P + lens[i]])
                    for layer in cache.layers]
            results.append(StepOutput(logits[i] if logits is not None else None, kv_i, next_offsets[i], last[i]))
        if all_logits:
            return results, [at_least_float32(self.model.lm_head(hidden[i, : lens[i]])) for i in range(B)]
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
        cache = out["cache"] if "cache" in out else out.past_key_values  # the output field was renamed too
        kv = [(layer.keys, layer.values) for layer in cache.layers]
        offset = int(self.positions(ids, grids, 0).max()) + 1
        return StepOutput(at_least_float32(out.logits[0, -1]), kv, offset)


@dataclass
class SlotState:
    actions: list[str] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)  # raw frames (full mode re-encodes them)
    features: list[ImageFeature] = field(default_factory=list)  # cached mode
    history: Rendered = field(default_factory=lambda: Rendered([]))  # chat: all deltas so far
    kv: KV | None = None  # kv mode
    offset: int = 0


MODES = ("full", "cached", "kv")
DECODES = ("score", "generate", "constrained")


@POLICIES.register("vlm")
class VLMPolicy(BasePolicy):
    """A Qwen2(.5)-VL agent for one prompt format. See the module docstring for modes and decoding."""

    name = "vlm"

    def __init__(self, model: Any = None, processor: Any = None, *, model_path: str | Path | None = None,
                 format: str = "r2r-lowlevel", mode: str | None = None, decode: str = "score",
                 system_prompt: str | None = None, system_prompt_file: str | Path | None = None,
                 image_size: tuple[int, int] | None = (320, 240), max_new_tokens: int = 64,
                 distance_decimals: int | None = 3, action_space: str | None = None,
                 dtype: str = "float32", device: str = "cpu", keep_logits: bool = False, depth: bool = False,
                 seed: int = 0) -> None:
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
        if depth and not self.format.shows_depth:
            raise ValueError(f"prompt format {format!r} shows no depth image")
        self.depth = bool(depth)
        self.seed = int(seed)  # the fallback draws for invalid answers
        self.runner = VLMRunner(model, processor)
        self.system_prompt = system_prompt if system_prompt is not None else load_system_prompt(
            system_prompt_file, model_dir=model_path, format=self.format)
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
        depth = None
        if self.depth:
            if obs.depth is None:
                raise ValueError(f"{self.name}: the policy sees depth but an observation has none (render depth)")
            from navtune.agents.depth import depth_image

            depth = depth_image(obs.depth)
        return StepInput(instruction=obs.instruction or "", step=obs.step if obs.step is not None else len(st.actions),
                         distance=d, previous_actions=list(st.actions), allowed_actions=tuple(obs.allowed_actions),
                         image=obs.rgb, previous_images=list(st.frames), depth_image=depth)

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
            frames = [f for s in slots for f in ([steps[s].image] + ([steps[s].depth_image] if self.depth else []))]
            per = 2 if self.depth else 1
            encoded = self.runner.encode_images(frames, self.image_size)
            new_feats = [encoded[k:k + per] for k in range(0, len(encoded), per)]  # each slot's step images
            chunks, pasts, offsets = [], [], []
            for s, feat in zip(slots, new_feats):
                st, step = self.slots[s], steps[s]
                if self.mode == "kv":
                    delta = self.format.render_delta(step, self.system_prompt, st.actions[-1] if st.actions else None)
                    delta = self._with_forced_prefix(delta)
                    feats = list(feat)
                    pasts.append(st.kv)
                    offsets.append(st.offset)
                else:
                    delta = self._prompt(st, step)
                    n_img = len(delta.images)  # the format decides which frames it shows (all, or the last)
                    feats = (st.features + list(feat))[-n_img:] if n_img else []
                    pasts.append(None)
                    offsets.append(0)
                ids, _ = self.runner.tokenize(delta, [f.grid_thw for f in feats])
                chunks.append(Chunk(ids, feats))
            outs = dict(zip(slots, self.runner.forward_chunks(chunks, pasts, offsets)))
            for s, feat in zip(slots, new_feats):
                self.slots[s].features.extend(feat)
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
        """In `score` mode, append the answer text the format puts before the action (objectnav-json's JSON
        head, its free fields left empty), segment by segment as training tokenizes it."""
        if self.decode != "score":
            return r
        forced = []
        for part in self.format.answer_parts():
            if part.kind == "action":
                break
            if part.kind == "text":
                forced.append(Segment(part.text))
        return Rendered(r.segments + forced, r.images) if forced else r

    def _fallback(self, slot: Slot, allowed: Sequence[str]) -> str:
        """An unbiased draw among the allowed actions for an invalid answer: a generator per (seed, episode,
        step), so the choice does not depend on the slot or the batch and a rerun draws the same."""
        import zlib

        eid = str(self.episode_ids.get(slot))
        step = len(self.slots[slot].actions)
        rng = np.random.default_rng([self.seed, zlib.crc32(eid.encode()), step])
        return str(allowed[int(rng.integers(len(allowed)))])

    def _decide(self, slots: list[Slot], observations: dict[Slot, Observation], outs: dict[Slot, StepOutput]
                ) -> dict[Slot, ActionOutput]:
        if self.decode == "score":
            scores = self._score(slots, observations, outs)
            return {s: ActionOutput(max(scores[s], key=scores[s].get), True, None, scores[s]) for s in slots}
        if self.decode == "constrained":
            return self._constrained(slots, observations, outs)
        texts = self._generate(slots, outs)
        res = {}
        for s in slots:
            allowed = observations[s].allowed_actions
            parsed = self.parse_stats.add(self.format.parse(texts[s], allowed))
            if parsed.valid:
                res[s] = ActionOutput(parsed.action, True, texts[s])
            else:
                res[s] = ActionOutput(self._fallback(s, [a for a in self._space_actions() if a in allowed]),
                                      False, texts[s])
        return res

    def _space_actions(self) -> tuple[str, ...]:
        from navtune.core.actions import ACTION_SPACES

        return ACTION_SPACES[self.action_space]

    def _score(self, slots: list[Slot], observations: dict[Slot, Observation], outs: dict[Slot, StepOutput]
               ) -> dict[Slot, dict[str, float]]:
        """Log-prob of each allowed action's whole token sequence after each slot's state in `outs` (the
        continuations of all candidates of all slots in one batched forward)."""
        res: dict[Slot, dict[str, float]] = {}
        multi: list[tuple[Slot, str, list[int]]] = []
        logps = torch.log_softmax(torch.stack([outs[s].last_logits for s in slots]), -1)  # one call for the batch
        for s, logp in zip(slots, logps):
            res[s] = {}
            for seg in self.format.candidates(observations[s].allowed_actions):
                ids = self.runner.tokenize_text(seg.text)
                res[s][seg.action] = float(logp[ids[0]])
                if len(ids) > 1:
                    multi.append((s, seg.action, ids))
            if not res[s]:
                raise ValueError(f"slot {s!r}: no allowed action of the {self.action_space} space in "
                                 f"{observations[s].allowed_actions}")
        if multi:
            chunks = [Chunk(ids[:-1]) for _, _, ids in multi]
            pasts = [outs[s].kv for s, _, _ in multi]
            offsets = [outs[s].offset for s, _, _ in multi]
            _, all_logits = self.runner.forward_chunks(chunks, pasts, offsets, all_logits=True)
            for (s, a, ids), lg in zip(multi, all_logits):
                lp = torch.log_softmax(lg, -1)
                res[s][a] += float(sum(lp[j, ids[j + 1]] for j in range(len(ids) - 1)))
        return res

    def _greedy(self, slots: list[Slot], cur: dict[Slot, StepOutput], budget: dict[Slot, int],
                stop: str | None = None) -> dict[Slot, list[int]]:
        """Greedy tokens from each slot's state in `cur` (batched), until the end of the turn, a token holding a
        character of `stop` (not fed) or the slot's token `budget`; `cur` and `budget` are advanced in place."""
        gen: dict[Slot, list[int]] = {s: [] for s in slots}
        live = [s for s in slots if budget[s] > 0]
        while live:
            nxt = {}
            best = torch.stack([cur[s].last_logits for s in live]).argmax(-1).tolist()  # one call for the batch
            for s, tok in zip(live, best):
                if tok in self.runner.eos_ids:
                    continue
                if stop is not None and any(c in stop for c in self.runner.tokenizer.decode([tok])):
                    continue
                gen[s].append(tok)
                budget[s] -= 1
                nxt[s] = tok
            live = [s for s in nxt if budget[s] > 0]
            fed = list(nxt)
            if not fed:
                break
            res = self.runner.forward_chunks([Chunk([nxt[s]]) for s in fed], [cur[s].kv for s in fed],
                                             [cur[s].offset for s in fed])
            cur.update(dict(zip(fed, res)))
        return gen

    def _generate(self, slots: list[Slot], outs: dict[Slot, StepOutput]) -> dict[Slot, str]:
        """Greedy decode loop from each slot's cache (batched); the caches themselves are left untouched."""
        cur = dict(outs)
        gen = self._greedy(slots, cur, {s: self.max_new_tokens for s in slots})
        return {s: self.runner.tokenizer.decode(gen[s], skip_special_tokens=True) for s in slots}

    def _feed(self, slots: list[Slot], cur: dict[Slot, StepOutput], text: str) -> None:
        ids = self.runner.tokenize_text(text)
        res = self.runner.forward_chunks([Chunk(list(ids)) for _ in slots], [cur[s].kv for s in slots],
                                         [cur[s].offset for s in slots])
        cur.update(dict(zip(slots, res)))

    def _constrained(self, slots: list[Slot], observations: dict[Slot, Observation], outs: dict[Slot, StepOutput]
                     ) -> dict[Slot, ActionOutput]:
        """Walk the format's answer parts: forced text fed, free text generated until its stop, the action
        chosen among the allowed ones by whole-continuation scores."""
        cur = dict(outs)
        texts = {s: "" for s in slots}
        budget = {s: self.max_new_tokens for s in slots}
        res: dict[Slot, ActionOutput] = {}
        for part in self.format.answer_parts():
            if part.kind == "text":
                self._feed(slots, cur, part.text)
                for s in slots:
                    texts[s] += part.text
            elif part.kind == "free":
                gen = self._greedy(slots, cur, budget, stop=part.stop or None)
                for s in slots:
                    texts[s] += self.runner.tokenizer.decode(gen[s], skip_special_tokens=True)
            else:
                scores = self._score(slots, observations, cur)
                for s in slots:
                    a = max(scores[s], key=scores[s].get)
                    res[s] = ActionOutput(a, True, texts[s] + a, scores[s])
                break
        self.parse_stats.total += len(slots)
        return res
