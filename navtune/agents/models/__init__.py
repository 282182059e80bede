"""Model loading (any Qwen2-VL / Qwen2.5-VL checkpoint) and tiny local models for tests and CPU demos."""
