"""Shared test fixtures. Tests never touch the network: hub access is off."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PYGLET_HEADLESS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
R2R_DATA = REPO_ROOT.parent / "shared" / "data" / "r2r"


@pytest.fixture(scope="session")
def r2r_data_dir() -> Path:
    """The real R2R graphs and episodes shipped beside the project (never copied into it)."""
    if not (R2R_DATA / "connectivity").is_dir():
        pytest.skip(f"R2R data not found at {R2R_DATA}")
    return R2R_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2.5-VL (real architecture, Qwen2 tokenizer, image-only processor,
    system_prompt.txt) built once per session with `navtune.agents.models.tiny.build_tiny_model`."""
    from navtune.agents.models.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny_model")
    build_tiny_model(out)
    return out
