"""Trainers: SFT (seed-1 recipe) and offline RL with LoRA (AWR / RWR, seed 2) on PyTorch Lightning.

`config` (TrainConfig, AWRConfig, LoraConfig), `freeze` (vision freezing, anchored LoRA targets, adapter
checks), `losses` (plain tensor functions), `batch` (EpisodeBatch / Chunk), `module` (NavTrainModule),
`datamodule` (EpisodeDataModule, resumable sharded loader), `sources` (navtune datasets -> episodes),
`run` (train(): Trainer, checkpoints, loggers, export). Import-light: torch/lightning load in submodules.
See docs/training.md.
"""
from navtune.trainers.config import LORA_TARGET_REGEX, AWRConfig, LoraConfig, TrainConfig

__all__ = ["AWRConfig", "LORA_TARGET_REGEX", "LoraConfig", "TrainConfig"]
