"""What a trainer consumes: one episode per batch, as one or more model forwards ("chunks").

A packed ``chat`` episode is one chunk with every action labelled; a per-step format
(``r2r-lowlevel``, ``objectnav-json``) gives one chunk per step with one labelled action each. Labels
follow Hugging Face's convention (``-100`` = not labelled). Without `action_spans` each contiguous labelled
run is one action, in episode order across chunks; a chunk whose answer holds more than the action
(objectnav-json's JSON) names its actions' token spans in `action_spans`, and its other labelled tokens
are answer text. Gradients are accumulated over an episode's chunks (seed 1's "batch 1 with gradient
accumulation over each episode's steps"); independent per-step chunks may be forwarded together as one
padded batch (`TrainConfig.chunk_batch`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from navtune.trainers.losses import label_runs

#: Keys of a chunk's ``inputs`` passed to the model (others are ignored).
MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw", "mm_token_type_ids")


@dataclass
class Chunk:
    inputs: dict[str, torch.Tensor]  # batch dim 1: input_ids (1, L), mm_token_type_ids (1, L), pixel_values, ...
    labels: torch.Tensor  # (L,), -100 where not labelled
    image_keys: tuple = ()  # one hashable key per image (the same frame has the same key across an episode's chunks)
    action_spans: tuple[tuple[int, int], ...] | None = None  # the actions' token spans (None: each labelled run)

    def to(self, device: torch.device | str) -> "Chunk":
        return Chunk({k: v.to(device) for k, v in self.inputs.items()}, self.labels.to(device), self.image_keys,
                     self.action_spans)

    def runs(self) -> list[torch.Tensor]:
        """Token positions of each action, in order."""
        if self.action_spans is None:
            return label_runs(self.labels)
        return [torch.arange(a, b, device=self.labels.device) for a, b in self.action_spans]

    def text_positions(self) -> torch.Tensor:
        """Labelled positions outside every action: the answer text (empty for action-only answers)."""
        pos = torch.nonzero(self.labels != -100, as_tuple=False).flatten()
        if self.action_spans is None or pos.numel() == 0:
            return pos[:0]
        inside = torch.zeros_like(pos, dtype=torch.bool)
        for a, b in self.action_spans:
            inside |= (pos >= a) & (pos < b)
        return pos[~inside]


@dataclass
class EpisodeBatch:
    episode_id: str
    chunks: list[Chunk]
    actions: list[str]  # dataset action of each labelled run, in order
    allowed: list[tuple[str, ...]]  # allowed actions at each step (entropy term)
    rewards: torch.Tensor  # (T,) float64; NaN where unknown (returns are computed with the run's gamma)
    # dense per-step targets of auxiliary heads (navtune.data.step_labels): name -> (T,) or (T, K)
    step_labels: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_runs = sum(len(c.runs()) for c in self.chunks)
        if n_runs != len(self.actions):
            raise ValueError(
                f"episode {self.episode_id}: {n_runs} labelled runs in its sequences but {len(self.actions)} "
                "actions: labels must mark each action's tokens as one contiguous run")
        if len(self.allowed) != len(self.actions) or self.rewards.numel() != len(self.actions):
            raise ValueError(f"episode {self.episode_id}: actions, allowed and rewards differ in length")
        for name, v in self.step_labels.items():
            if v.shape[0] != len(self.actions):
                raise ValueError(f"episode {self.episode_id}: step label {name!r} has {v.shape[0]} steps for "
                                 f"{len(self.actions)} actions")

    @property
    def num_actions(self) -> int:
        return len(self.actions)

    @property
    def num_text_tokens(self) -> int:
        """Labelled answer-text tokens over the episode's chunks (what the answer term averages over)."""
        return sum(int(c.text_positions().numel()) for c in self.chunks)

    def to(self, device: torch.device | str) -> "EpisodeBatch":
        return EpisodeBatch(self.episode_id, [c.to(device) for c in self.chunks], self.actions, self.allowed,
                            self.rewards, {k: v.to(device) for k, v in self.step_labels.items()})


def _image_token_counts(chunk: Chunk, merge: int) -> list[int]:
    grid = chunk.inputs.get("image_grid_thw")
    if grid is None:
        return []
    return [int(t * h * w) // (merge * merge) for t, h, w in grid.tolist()]


def per_step_chunks(chunk: Chunk, image_token_id: int, spatial_merge_size: int = 2) -> list[Chunk]:
    """Split a packed multi-action sequence into one teacher-forced prompt per action.

    Step t's chunk is the packed sequence cut right after action t's tokens, labelled only there, with
    the images that appear before the cut. Because the packed format is append-only, each of these is
    exactly the prompt + answer the model sees at step t; the packed loss must equal the mean of theirs.
    """
    ids = chunk.inputs["input_ids"]
    counts = _image_token_counts(chunk, spatial_merge_size)
    patches_per_image = [c * spatial_merge_size * spatial_merge_size for c in counts]
    out = []
    for run in chunk.runs():
        end = int(run[-1]) + 1
        n_img_tokens = int((ids[0, :end] == image_token_id).sum())
        k, acc = 0, 0
        while k < len(counts) and acc + counts[k] <= n_img_tokens:
            acc += counts[k]
            k += 1
        if acc != n_img_tokens:
            raise ValueError("an action's cut falls inside an image's tokens")
        inputs = {}
        for key, v in chunk.inputs.items():
            if key == "pixel_values":
                inputs[key] = v[: sum(patches_per_image[:k])]
            elif key == "image_grid_thw":
                inputs[key] = v[:k]
            elif v.dim() == 2 and v.shape[1] == ids.shape[1]:
                inputs[key] = v[:, :end]
            else:
                inputs[key] = v
        if k == 0:
            inputs.pop("pixel_values", None)
            inputs.pop("image_grid_thw", None)
        labels = torch.full((end,), -100, dtype=chunk.labels.dtype, device=chunk.labels.device)
        labels[run] = chunk.labels[run]
        out.append(Chunk(inputs, labels, tuple(chunk.image_keys[:k])))
    return out


def unpack_episode(batch: EpisodeBatch, image_token_id: int, spatial_merge_size: int = 2) -> EpisodeBatch:
    """The same episode as per-step teacher-forced chunks (for comparisons and benchmarks)."""
    chunks = [c for ch in batch.chunks for c in per_step_chunks(ch, image_token_id, spatial_merge_size)]
    return EpisodeBatch(batch.episode_id, chunks, batch.actions, batch.allowed, batch.rewards, batch.step_labels)
