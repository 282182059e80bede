"""Data: the on-disk episode dataset (frames + manifest), collectors, rewards/returns, and the lazy
per-prompt-format training datasets. Import-light: torch/transformers/datasets load in `hf.py` and
`training.py` only."""
from navtune.data.format import (
    DatasetFormatError,
    DatasetWriter,
    EpisodeBuilder,
    EpisodeDataset,
    EpisodeMeta,
    FrameError,
    PendingEpisode,
    StepData,
    split_by_scene,
)
from navtune.data.rewards import RewardConfig, discounted_returns, step_rewards

__all__ = [
    "DatasetFormatError",
    "DatasetWriter",
    "EpisodeBuilder",
    "EpisodeDataset",
    "EpisodeMeta",
    "FrameError",
    "PendingEpisode",
    "RewardConfig",
    "StepData",
    "discounted_returns",
    "split_by_scene",
    "step_rewards",
]
