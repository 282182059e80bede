"""Lazy training samples per prompt format, built from a navtune dataset folder.

The format's `unit` decides the sample:

* ``"step"`` (``r2r-lowlevel``, ``objectnav-json``): one sample per step (the prompt with the history the
  format shows, then the answer), labels on the answer's tokens: the action (for ``r2r-lowlevel`` the word
  after ``Action: ``, as in the seed) and, for formats whose answer holds more (``objectnav-json``'s JSON),
  the answer text too (`text_spans`), with Observation / Reasoning either empty (``answer="action-only"``)
  or grounded in the simulator's knowledge of the view (``answer="grounded"``, `navtune.data.grounding`).
* ``"episode"`` (``chat``): one sample per episode, every action labelled, plus each action's token span
  and the labelled positions, so a trainer can compute logits only where labels are.

The text is rendered by the prompt formats of `navtune.agents.prompts` and tokenized **segment by segment
exactly as the VLM policy does at inference** (image placeholders expanded to the processor's image token
count), so the labels sit on the very ids the model is fed: the seed-2 reference tokenized the raw prompt
for labels and the chat-templated one for inputs, which misaligned them. `mm_token_type_ids` (1 on image
tokens) is always returned: Qwen2.5-VL's rotary positions depend on it. Frames are decoded only in
``__getitem__`` (DataLoader workers do the work) and only those the format shows.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from navtune.agents.prompts.base import IMAGE_PAD, image_token_count, merge_size_of, tokenize_segments
from navtune.core.actions import ACTION_SPACES
from navtune.data.format import DatasetFormatError, EpisodeDataset, split_by_scene

IGNORE_INDEX = -100


@dataclass(frozen=True)
class FrameRef:
    """A frame not decoded yet: prompt formats pass it through into `Rendered.images`."""

    episode: int
    t: int
    kind: str = "rgb"  # "rgb" | "depth" (shown as a colour image, `navtune.agents.depth.depth_image`)


def text_labelled(episode_id: str, t: int, fraction: float) -> bool:
    """Whether step t's answer text is labelled when only `fraction` of the steps are (a fixed draw per
    (episode, step), so every epoch and every process makes the same choice)."""
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    import zlib

    return (zlib.crc32(f"{episode_id}/{t}".encode()) % 1_000_003) / 1_000_003 < fraction


def _round(d: float, decimals: int | None) -> float:
    return round(float(d), decimals) if decimals is not None else float(d)


class FormatSamples(Dataset):
    """Shared machinery: the dataset, the prompt format, tokenization and image preprocessing.

    `target`: ``"action"`` labels the executed action; ``"expert"`` labels the expert's action at each
    visited state (DAgger data: the history shows what was executed, the answer is what the expert
    would have done; per-step formats only). `episode_ids` restricts to a subset (e.g. a split).
    `answer`: the answer text around the action, ``"action-only"`` (empty) or ``"grounded"`` (written from
    the simulator's knowledge). `text_fraction`: share of steps whose answer text is labelled (the action
    always is; the text is fed either way): each labelled token costs a softmax over the whole vocabulary.
    `depth`: show each step's depth frame too (as a colour image after the RGB frame)."""

    def __init__(
        self,
        dataset: EpisodeDataset | str | os.PathLike,
        processor: Any,
        format: str,
        system_prompt: str | None = None,
        image_size: tuple[int, int] | None = (320, 240),
        target: str = "action",
        distance_decimals: int | None = 3,
        episode_ids: Sequence[str] | None = None,
        answer: str = "action-only",
        text_fraction: float = 1.0,
        depth: bool = False,
    ):
        from navtune.agents.prompts import format_class, get_format, load_system_prompt
        from navtune.data.grounding import ANSWERS

        self.ds = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset(dataset)
        if target not in ("action", "expert"):
            raise ValueError(f"target must be 'action' or 'expert' (got {target!r})")
        if answer not in ANSWERS:
            raise ValueError(f"answer must be one of {ANSWERS} (got {answer!r})")
        if not 0.0 <= text_fraction <= 1.0:
            raise ValueError(f"text_fraction must be in [0, 1] (got {text_fraction})")
        self.answer, self.text_fraction, self.depth = answer, float(text_fraction), bool(depth)
        spaces = {ep.action_space for ep in self.ds}
        speaks = format_class(format).action_spaces
        bad = spaces - set(speaks)
        if bad:
            raise ValueError(f"{self.ds.root}: format {format!r} speaks {' / '.join(speaks)} actions but the "
                             f"dataset holds {sorted(bad)} episodes")
        if len(spaces) > 1:
            raise ValueError(f"{self.ds.root}: format {format!r} needs one action space, the dataset mixes "
                             f"{sorted(spaces)}")
        self.format = get_format(format, action_space=next(iter(spaces), None))
        if depth and not self.format.shows_depth:
            raise ValueError(f"prompt format {format!r} shows no depth image (depth=True needs e.g. objectnav-json)")
        self.format_name = format
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.merge = merge_size_of(processor)
        self.image_token_id = int(self.tokenizer.convert_tokens_to_ids(IMAGE_PAD))
        self.system_prompt = system_prompt if system_prompt is not None else load_system_prompt(format=self.format)
        self.image_size = tuple(image_size) if image_size else None
        self.target = target
        self.distance_decimals = distance_decimals
        if episode_ids is None:
            self.episodes = list(range(len(self.ds)))
        else:
            wanted = set(episode_ids)
            self.episodes = [i for i, ep in enumerate(self.ds) if ep.episode_id in wanted]
            missing = wanted - {self.ds[i].episode_id for i in self.episodes}
            if missing:
                raise KeyError(f"{self.ds.manifest_path}: no episode(s) {sorted(missing)[:5]}")
        manifest = self.ds.manifest_path
        for i in self.episodes:
            ep = self.ds[i]
            if not ep.steps:
                raise DatasetFormatError("is empty: an episode without steps has nothing to train on",
                                         file=manifest, where=f"episode {ep.episode_id!r}", field="steps")
            for s in ep.steps:
                where = f"episode {ep.episode_id!r}: step {s.t}"
                if s.rgb is None:
                    raise DatasetFormatError("no rgb frame (a VLM needs images; collect with a renderer)",
                                             file=manifest, where=where, field="rgb")
                if target == "expert" and s.expert_action is None:
                    raise DatasetFormatError("missing (--target expert needs the expert's action at every step)",
                                             file=manifest, where=where, field="expert_action")
                if depth and s.depth is None:
                    raise DatasetFormatError("no depth frame (collect with depth to train a model that sees depth)",
                                             file=manifest, where=where, field="depth")
        self._hfov: float | None = None

    # ------------------------------------------------------------ steps -> prompt inputs
    def step_inputs(self, e: int) -> tuple[list[Any], list[str], list[str]]:
        """(StepInputs, executed actions, labelled actions) of episode index `e`, frames as `FrameRef`s."""
        from navtune.agents.prompts import StepInput

        ep = self.ds[e]
        space = ACTION_SPACES[ep.action_space]
        steps, executed = [], []
        for s in ep.steps:
            t = s.t
            steps.append(
                StepInput(
                    instruction=ep.instruction or "",
                    step=t,
                    distance=_round(s.info.get("distance_traveled", 0.0), self.distance_decimals),
                    previous_actions=list(executed),
                    allowed_actions=tuple(s.allowed_actions or space),
                    image=FrameRef(e, t),
                    previous_images=[FrameRef(e, k) for k in range(t)],
                    depth_image=FrameRef(e, t, "depth") if self.depth else None,
                )
            )
            executed.append(s.action)
        labels = [s.expert_action for s in ep.steps] if self.target == "expert" else list(executed)
        return steps, executed, labels

    def answers(self, e: int, labels: Sequence[str]) -> list[Any] | None:
        """The answer text around each labelled action (None: the format's answer is the action alone)."""
        if self.answer == "action-only":
            return None
        from navtune.data.grounding import dataset_hfov, grounded_answers

        if self._hfov is None:
            self._hfov = dataset_hfov(self.ds)
        return grounded_answers(self.ds, self.ds[e], labels, self._hfov)

    # ------------------------------------------------------------ tokenization
    def _load_images(self, refs: Sequence[Any]) -> list[Any]:
        from PIL import Image

        out = []
        for r in refs:
            if not isinstance(r, FrameRef):
                raise TypeError(f"unexpected image {r!r} in a rendered prompt")
            if r.kind == "depth":
                from navtune.agents.depth import depth_image

                img = Image.fromarray(depth_image(self.ds.load_depth(self.ds[r.episode], r.t)))
            else:
                img = Image.fromarray(self.ds.load_rgb(self.ds[r.episode], r.t))
            if self.image_size is not None and img.size != self.image_size:
                img = img.resize(self.image_size, Image.Resampling.LANCZOS)
            out.append(img)
        return out

    def _pixels(self, refs: Sequence[Any], memo: dict | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(pixel_values, image_grid_thw) of these frames. With `memo` (one episode's), each frame is decoded
        and preprocessed once however many step prompts show it (the processor treats images one by one,
        so per-frame results concatenate to the batch result)."""
        if not refs:
            return None
        if memo is None:
            pre = self.image_processor(images=self._load_images(refs), return_tensors="pt")
            return pre["pixel_values"], pre["image_grid_thw"]
        for r in refs:
            if r not in memo:
                pre = self.image_processor(images=self._load_images([r]), return_tensors="pt")
                memo[r] = (pre["pixel_values"], pre["image_grid_thw"])
        return torch.cat([memo[r][0] for r in refs]), torch.cat([memo[r][1] for r in refs])

    def encode(self, rendered: Any, memo: dict | None = None, text_labels: bool = True) -> dict[str, Any]:
        """Token ids (segments tokenized one by one), labels on the action targets and (with `text_labels`) on
        the answer text, image tensors."""
        pixels = self._pixels(rendered.images, memo)
        out: dict[str, Any] = {}
        counts: list[int] = []
        if pixels is not None:
            out["pixel_values"], out["image_grid_thw"] = pixels
            counts = [image_token_count(g, self.merge) for g in out["image_grid_thw"]]
        tok = tokenize_segments(rendered, counts,
                                lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"])
        ids, spans = tok.ids, tok.action_spans
        text_spans = tok.text_spans if text_labels else []
        input_ids = torch.tensor([ids], dtype=torch.long)
        labels = torch.full((len(ids),), IGNORE_INDEX, dtype=torch.long)
        for a, b, _ in spans:
            labels[a:b] = input_ids[0, a:b]
        for a, b in text_spans:
            labels[a:b] = input_ids[0, a:b]
        out.update(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            mm_token_type_ids=(input_ids == self.image_token_id).long(),
            labels=labels,
            label_positions=torch.nonzero(labels != IGNORE_INDEX).flatten(),
            action_spans=[(a, b) for a, b, _ in spans],
            text_spans=list(text_spans),
            actions=[act for _, _, act in spans],
            image_keys=[(r.episode, r.t) if r.kind == "rgb" else (r.episode, r.t, r.kind)  # which frame each image is
                        for r in rendered.images],
        )
        return out

    def _relabel(self, sample: dict[str, Any], labels: list[str], where: str) -> dict[str, Any]:
        """Put the labelled actions' tokens on the action spans (differs from the input only for DAgger)."""
        if sample["actions"] == labels:
            return sample
        new = sample["labels"].clone()
        for (a, b), act in zip(sample["action_spans"], labels):
            tok = self.tokenizer(act, add_special_tokens=False)["input_ids"]
            if len(tok) != b - a:
                raise ValueError(f"{where}: expert action {act!r} has {len(tok)} tokens where the executed action "
                                 f"has {b - a}; relabel with a per-step format")
            new[a:b] = torch.tensor(tok)
        sample["labels"], sample["actions"] = new, list(labels)
        return sample

    def rewards(self, i: int) -> list[float]:
        """Per-step rewards of the i-th episode (NaN when unknown), without decoding frames."""
        ep = self.ds[self.episodes[i]]
        return [math.nan if s.reward is None else float(s.reward) for s in ep.steps]


class StepSamples(FormatSamples):
    """Per-step samples for formats whose training unit is a step (``r2r-lowlevel`` / ``objectnav-json``):
    prompt with history + one labelled action."""

    def __init__(self, dataset: EpisodeDataset | str | os.PathLike, processor: Any, format: str = "r2r-lowlevel",
                 **kwargs: Any):
        from navtune.agents.prompts import format_class

        if format_class(format).unit != "step":
            raise ValueError(f"StepSamples is for formats trained per step; use EpisodeSamples for {format!r}")
        super().__init__(dataset, processor, format, **kwargs)
        self.index = [(e, s.t) for e in self.episodes for s in self.ds[e].steps]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        e, t = self.index[i]
        steps, _, labels = self.step_inputs(e)
        answers = self.answers(e, labels)
        target = self.format.render_target(labels[t], answer=None if answers is None else answers[t])
        ep = self.ds[e]
        sample = self.encode(self.format.render_step(steps[t], self.system_prompt) + target,
                             text_labels=text_labelled(ep.episode_id, t, self.text_fraction))
        s = ep.steps[t]
        sample.update(episode_id=ep.episode_id, t=t, allowed=[tuple(steps[t].allowed_actions)],
                      reward=s.reward, ret=s.ret)
        return sample


class EpisodeSamples(FormatSamples):
    """One item per episode: ``chunks`` (one sample when the format's unit is the episode, e.g. ``chat``; one
    per step otherwise), the labelled actions in order, the allowed actions and rewards per step (what a
    trainer consumes)."""

    def __init__(self, dataset: EpisodeDataset | str | os.PathLike, processor: Any, format: str = "chat",
                 step_labels: Sequence[str] = (), **kwargs: Any):
        super().__init__(dataset, processor, format, **kwargs)
        from navtune.data.step_labels import STEP_LABELS

        self.step_labels = {name: STEP_LABELS.get(name) for name in step_labels}  # dense auxiliary targets

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        e = self.episodes[i]
        ep = self.ds[e]
        steps, executed, labels = self.step_inputs(e)
        if self.format.unit == "episode":  # one sample of the executed actions, relabelled (DAgger)
            (rendered,) = self.format.render_episode(steps, executed, self.system_prompt)
            chunks = [self._relabel(self.encode(rendered), labels, f"{self.ds.root}: episode {ep.episode_id!r}")]
        else:
            memo: dict = {}  # this episode's frames, decoded once for all its step prompts
            rendered = self.format.render_episode(steps, labels, self.system_prompt, self.answers(e, labels))
            chunks = [self.encode(r, memo, text_labelled(ep.episode_id, t, self.text_fraction))
                      for t, r in enumerate(rendered)]
        return {
            "episode_id": ep.episode_id,
            "chunks": chunks,
            "actions": labels,
            "allowed": [tuple(s.allowed_actions) for s in steps],
            "rewards": torch.tensor(self.rewards(i), dtype=torch.float64),
            **({"step_labels": {n: torch.as_tensor(lab(ep)) for n, lab in self.step_labels.items()}}
               if self.step_labels else {}),
        }


def training_samples(dataset: EpisodeDataset | str | os.PathLike, processor: Any, format: str, per: str | None = None,
                     **kwargs: Any) -> FormatSamples:
    """The natural sample unit of a format (its `unit`: per step for r2r-lowlevel/objectnav-json, per episode
    for chat); `per="episode"` groups a per-step format by episode."""
    from navtune.agents.prompts import format_class

    per = per or format_class(format).unit
    if per == "step":
        return StepSamples(dataset, processor, format, **kwargs)
    if per == "episode":
        return EpisodeSamples(dataset, processor, format, **kwargs)
    raise ValueError(f"per must be 'step' or 'episode' (got {per!r})")


def split_samples(dataset: EpisodeDataset | str | os.PathLike, processor: Any, format: str,
                  fractions: dict[str, float] | None = None, seed: int = 0, **kwargs: Any) -> dict[str, FormatSamples]:
    """Training samples per split, split by house/scan (never by step): {"train": ..., "val": ..., ...}."""
    ds = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset(dataset)
    splits = split_by_scene(ds.episodes, fractions, seed)
    return {name: training_samples(ds, processor, format, episode_ids=ids, **kwargs) for name, ids in splits.items() if ids}


# ---------------------------------------------------------------------------------------------- collate
_SEQ_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")


class PadCollator:
    """Batches samples: right-pads the sequences (pad id, attention 0, labels -100), concatenates the images'
    patches and grids, keeps `mm_token_type_ids`, and lists per-sample label positions / action spans."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = int(pad_token_id)

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not samples:
            raise ValueError("empty batch")
        L = max(s["input_ids"].shape[1] for s in samples)
        batch: dict[str, Any] = {}
        for key in _SEQ_KEYS:
            fill = self.pad_token_id if key == "input_ids" else 0
            rows = [torch.nn.functional.pad(s[key], (0, L - s[key].shape[1]), value=fill) for s in samples]
            batch[key] = torch.cat(rows)
        batch["labels"] = torch.stack(
            [torch.nn.functional.pad(s["labels"], (0, L - s["labels"].shape[0]), value=IGNORE_INDEX) for s in samples]
        )
        with_img = [s for s in samples if "pixel_values" in s]
        if with_img:
            batch["pixel_values"] = torch.cat([s["pixel_values"] for s in with_img])
            batch["image_grid_thw"] = torch.cat([s["image_grid_thw"] for s in with_img])
        batch["label_positions"] = [s["label_positions"] for s in samples]
        batch["action_spans"] = [s["action_spans"] for s in samples]
        batch["actions"] = [s["actions"] for s in samples]
        for key in ("episode_id", "t", "reward", "ret"):
            if all(key in s for s in samples):
                batch[key] = [s[key] for s in samples]
        return batch

    @classmethod
    def for_processor(cls, processor: Any) -> "PadCollator":
        tok = processor.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.convert_tokens_to_ids("<|endoftext|>")
        return cls(pad)


def model_inputs(sample_or_batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Only what `Qwen2_5_VLForConditionalGeneration.forward` takes (labels excluded)."""
    keys = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
    return {k: sample_or_batch[k] for k in keys if k in sample_or_batch}
