"""Agents: prompt formats, action parsing, model loading, VLM policies (KV cache, cached vision
features, batching) and baselines. Import-light: torch/transformers load only in `models/` and `vlm.py`."""
from navtune.agents.policy import ActionOutput, BasePolicy, Policy

__all__ = ["ActionOutput", "BasePolicy", "Policy"]
