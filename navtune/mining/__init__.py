"""Failure mining: roll a policy out for real, keep its stuck / oscillating / colliding episodes with the
expert's corrective action at every visited state (a navtune episode dataset, ready for training)."""
from navtune.mining.miner import DatasetRecorder, MineSummary, episode_meta, mine_failures

__all__ = ["DatasetRecorder", "MineSummary", "episode_meta", "mine_failures"]
