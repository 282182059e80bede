"""Episodes for the trainers from a navtune dataset folder, through navtune.data's training samples.

`navtune.data.training.EpisodeSamples` renders and tokenises each episode with the prompt format (one
packed sequence for ``chat``, one per step otherwise); this adapter turns its items into
``EpisodeBatch``es and checks that every labelled run is exactly one action span.
"""
from __future__ import annotations

from typing import Any

import torch

from navtune.trainers.batch import Chunk, EpisodeBatch
from navtune.trainers.config import TrainConfig


class DatasetEpisodes:
    """An ``EpisodeSource`` over `EpisodeSamples` (frames decoded lazily in ``__getitem__``)."""

    def __init__(self, samples: Any, limit: int | None = None):
        self.samples = samples
        self.n = len(samples) if limit is None else min(limit, len(samples))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> EpisodeBatch:
        from navtune.data.training import model_inputs

        if not 0 <= i < self.n:
            raise IndexError(i)
        item = self.samples[i]
        chunks = []
        for c in item["chunks"]:
            spans = tuple(tuple(s) for s in c["action_spans"]) if c.get("text_spans") else None
            chunk = Chunk(model_inputs(c), c["labels"], tuple(tuple(k) for k in c.get("image_keys", ())), spans)
            runs = [(int(r[0]), int(r[-1]) + 1) for r in chunk.runs()]
            if runs != [tuple(s) for s in c["action_spans"]]:
                raise ValueError(f"episode {item['episode_id']}: labelled runs {runs} are not the action spans "
                                 f"{c['action_spans']}")
            chunks.append(chunk)
        return EpisodeBatch(item["episode_id"], chunks, list(item["actions"]), [tuple(a) for a in item["allowed"]],
                            torch.as_tensor(item["rewards"], dtype=torch.float64), dict(item.get("step_labels") or {}))

    def rewards(self, i: int) -> list[float]:
        return self.samples.rewards(i)

    @property
    def system_prompt(self) -> str:
        """The system prompt every sample is rendered with (exported beside the trained model)."""
        return self.samples.system_prompt


class ConcatEpisodes:
    """Several sources one after the other (e.g. expert data + failure data for AWR)."""

    def __init__(self, parts: list[Any], limit: int | None = None):
        self.parts = parts
        self.offsets = []
        n = 0
        for p in parts:
            self.offsets.append(n)
            n += len(p)
        self.n = n if limit is None else min(limit, n)

    def __len__(self) -> int:
        return self.n

    def _locate(self, i: int) -> tuple[Any, int]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        k = max(j for j, o in enumerate(self.offsets) if o <= i)
        return self.parts[k], i - self.offsets[k]

    def __getitem__(self, i: int) -> EpisodeBatch:
        part, j = self._locate(i)
        return part[j]

    def rewards(self, i: int) -> list[float]:
        part, j = self._locate(i)
        return part.rewards(j)

    @property
    def system_prompt(self) -> str | None:
        return getattr(self.parts[0], "system_prompt", None) if self.parts else None


def data_dirs(spec: str) -> list[str]:
    """`--data` may name several dataset folders, comma-separated."""
    return [d for d in (x.strip() for x in spec.split(",")) if d]


def dataset_source(cfg: TrainConfig, processor: Any, data: str) -> DatasetEpisodes | ConcatEpisodes:
    from navtune.agents.prompts import find_system_prompt
    from navtune.data.training import EpisodeSamples

    # the file given, else the model's; None: the format's own default (resolved with the data's action space)
    system_prompt = find_system_prompt(cfg.system_prompt, cfg.model if cfg.model else None)
    parts = [DatasetEpisodes(EpisodeSamples(d, processor, cfg.format, system_prompt=system_prompt,
                                            image_size=cfg.image_size, target=cfg.target, answer=cfg.answer,
                                            text_fraction=cfg.text_fraction, depth=cfg.depth,
                                            step_labels=getattr(cfg, "aux_labels", ())))
             for d in data_dirs(data)]
    if len(parts) == 1:
        return DatasetEpisodes(parts[0].samples, cfg.limit_episodes)
    return ConcatEpisodes(parts, cfg.limit_episodes)
