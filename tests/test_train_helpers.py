"""Shared helpers of the trainer tests (no tests here): a tiny model folder and `chat` episodes built
with the real prompt format and processor, as a local stand-in for navtune.data's collators."""
from __future__ import annotations

import numpy as np
import torch

from navtune.trainers.batch import Chunk, EpisodeBatch

ACTIONS = ("Left", "Right", "Move", "Stop")


def tokenize_rendered(processor, rendered) -> tuple[dict, torch.Tensor]:
    """Segments tokenised one by one (as the seed does), image placeholders expanded, labels on targets."""
    tok = processor.tokenizer
    img = None
    counts: list[int] = []
    if rendered.images:
        img = processor.image_processor(images=rendered.images, return_tensors="pt")
        counts = [int(t * h * w) // 4 for t, h, w in img["image_grid_thw"].tolist()]
    ids: list[int] = []
    labels: list[int] = []
    k = 0
    for seg in rendered.segments:
        text = seg.text
        parts = text.split("<|image_pad|>")
        expanded = parts[0]
        for p in parts[1:]:
            expanded += "<|image_pad|>" * counts[k] + p
            k += 1
        seg_ids = tok.encode(expanded, add_special_tokens=False)
        ids += seg_ids
        labels += seg_ids if seg.target else [-100] * len(seg_ids)
    input_ids = torch.tensor([ids])
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
              "mm_token_type_ids": (input_ids == image_id).long()}
    if img is not None:
        inputs["pixel_values"] = img["pixel_values"]
        inputs["image_grid_thw"] = img["image_grid_thw"]
    return inputs, torch.tensor(labels)


def make_chat_episode(processor, T: int, seed: int, size: int = 56, episode_id: str | None = None,
                      actions: list[str] | None = None) -> EpisodeBatch:
    """A `chat` episode of T steps with random frames, random allowed actions and rewards."""
    from navtune.agents.prompts import get_format

    rng = np.random.default_rng(seed)
    fmt = get_format("chat")
    from navtune.agents.prompts import StepInput

    steps, allowed = [], []
    acts = list(actions) if actions else [str(rng.choice(ACTIONS)) for _ in range(T)]
    for t in range(T):
        allow = tuple(a for a in ACTIONS if a != "Move" or rng.random() < 0.8 or acts[t] == "Move")
        allowed.append(allow)
        frame = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
        steps.append(StepInput("walk to the kitchen", t, 0.5 * t, acts[:t], allow, image=frame,
                               previous_images=[None] * t))
    rendered = fmt.render_episode(steps, acts, "You are a navigation agent.")[0]
    from PIL import Image

    rendered.images = [Image.fromarray(im) for im in rendered.images]
    inputs, labels = tokenize_rendered(processor, rendered)
    rewards = torch.tensor(rng.normal(size=T), dtype=torch.float64)
    return EpisodeBatch(episode_id or f"ep{seed}", [Chunk(inputs, labels)], acts, allowed, rewards)


class ListSource:
    """An EpisodeSource over prebuilt episodes."""

    def __init__(self, episodes: list[EpisodeBatch]):
        self.episodes = episodes

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> EpisodeBatch:
        return self.episodes[i]

    def rewards(self, i: int) -> list[float]:
        return self.episodes[i].rewards.tolist()


_TINY: dict[str, object] = {}


def tiny_dir(tmp_path_factory) -> str:
    """A tiny Qwen2.5-VL folder built once per test session (navtune.agents' builder)."""
    if "dir" not in _TINY:
        from navtune.agents.models.tiny import build_tiny_model

        d = tmp_path_factory.mktemp("train_tiny") / "model"
        build_tiny_model(d, size="tiny", seed=0)
        _TINY["dir"] = str(d)
    return _TINY["dir"]


def load_tiny(path: str, dtype: str = "float32"):
    from navtune.agents.models.loading import load_model

    lm = load_model(path, dtype=dtype)
    lm.model.train()
    return lm.model, lm.processor


def write_dataset(root, n_episodes: int = 4, T: int = 3, action_space: str = "graph", seed: int = 0,
                  size: tuple[int, int] = (64, 48)) -> str:
    """A small navtune episode dataset (random frames, plausible distances so rewards exist)."""
    from navtune.core.actions import ACTION_SPACES
    from navtune.data.format import DatasetWriter, EpisodeMeta, StepData

    rng = np.random.default_rng(seed)
    acts = ACTION_SPACES[action_space]
    w = DatasetWriter(root, {"task": "vln", "collector": "test"})
    for e in range(n_episodes):
        meta = EpisodeMeta(episode_id=f"e{e}", task="vln", action_space=action_space, scene=f"house{e % 2}",
                           instruction="go to the red door", order=e)
        b = w.builder(meta)
        d = 4.0
        for t in range(T):
            a = acts[-1] if t == T - 1 else str(rng.choice(acts[:3]))
            frame = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
            b.add(StepData(action=a, pose={"x": 0.0, "y": float(t), "z": 0.0, "heading": 0.0}, rgb=frame,
                           geodesic_distance=d, allowed_actions=acts, info={"distance_traveled": 0.5 * t}))
            d = max(0.0, d - (1.0 if a in ("Move", "move_forward") else 0.0))
        w.commit(b.finish(final_pose={"x": 0.0, "y": float(T), "z": 0.0, "heading": 0.0}, final_geodesic_distance=d))
    w.finalize()
    return str(root)
