"""Model loading: tiny Qwen2.5-VL saved and reloaded offline gives identical logits; image-only processor."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch


def _inputs(processor, size=(64, 48)):
    from PIL import Image

    rng = np.random.default_rng(1)
    img = Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))
    text = "<|im_start|>user\nHello <|vision_start|><|image_pad|><|vision_end|> go<|im_end|>\n"
    return processor(text=[text], images=[img], return_tensors="pt")


def test_tiny_model_reload_offline_identical_logits(tiny_model_dir):
    from navtune.agents.models.loading import ImageOnlyQwen2_5_VLProcessor, load_model
    from navtune.agents.models.tiny import build_tiny_model

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    model, proc = build_tiny_model(None, seed=0)  # same seed as the fixture's saved model
    loaded = load_model(tiny_model_dir)
    assert isinstance(loaded.processor, ImageOnlyQwen2_5_VLProcessor)
    assert not (tiny_model_dir / "system_prompt.txt").exists()  # a random model has no prompt: the format's applies
    batch = _inputs(loaded.processor)
    batch2 = _inputs(proc)
    assert torch.equal(batch["input_ids"], batch2["input_ids"])
    with torch.no_grad():
        a = model(**batch).logits
        b = loaded.model(**batch).logits
    assert torch.equal(a, b)
    cfg = loaded.model.config
    t = cfg.get_text_config()
    assert t.num_hidden_layers == 2 and t.hidden_size == 64 and cfg.vision_config.depth == 2


def test_auto_processor_knows_the_image_only_class(tiny_model_dir):
    from transformers import AutoProcessor

    from navtune.agents.models.loading import ImageOnlyQwen2_5_VLProcessor, register_processor

    register_processor()
    p = AutoProcessor.from_pretrained(str(tiny_model_dir))
    assert isinstance(p, ImageOnlyQwen2_5_VLProcessor)
    assert p.video_processor is None if hasattr(p, "video_processor") else True
    assert "image_pad" in p.chat_template


def test_tokenizer_ids_match_qwen25vl_vision_tokens(tiny_model_dir):
    from navtune.agents.models.loading import load_processor

    tok = load_processor(tiny_model_dir).tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|im_start|>"]}
    assert ids == {"<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|image_pad|>": 151655, "<|im_start|>": 151644}


def test_320x240_frame_token_count(tiny_model_dir):
    from navtune.agents.models.loading import load_processor

    proc = load_processor(tiny_model_dir)
    out = _inputs(proc, size=(320, 240))
    n = int((out["input_ids"] == 151655).sum())
    assert 88 <= n <= 99, n


def test_tiny_config_mrope_sections_sum_to_half_head_dim():
    from navtune.agents.models.tiny import SIZES, tiny_config

    for name in SIZES:
        cfg = tiny_config(name, vocab_size=1000)
        t = cfg.get_text_config()
        assert sum(t.rope_parameters["mrope_section"]) * 2 == t.hidden_size // t.num_attention_heads
    big = SIZES["cpu-large"]
    assert big.hidden >= 512 and big.layers >= 8


def test_load_model_errors(tmp_path):
    from navtune.agents.models.loading import load_model, parse_dtype

    with pytest.raises(FileNotFoundError, match="nothing-here"):
        load_model(tmp_path / "nothing-here")
    from navtune.core.hub import is_hub_id

    assert is_hub_id("Qwen/Qwen2.5-VL-3B-Instruct") and is_hub_id("org/model-v1.5")
    assert not any(is_hub_id(s) for s in ("/abs/model", "./org/model", "../m/x", "a/b/c", "model", str(tmp_path)))
    # "org/name" is a hub id, not a missing folder: offline and not cached, the error says so
    with pytest.raises(FileNotFoundError, match="hub .*does not provide it"):
        load_model("navtune-test/no-such-model")
    with pytest.raises(ValueError, match="bfloat16"):
        parse_dtype("float8")


@pytest.mark.slow
def test_cli_model_tiny_then_reload_offline(tmp_path):
    """`navtune model tiny --out DIR` in a fresh process, then reload with HF_HUB_OFFLINE=1: same logits as
    the same-seed in-memory build."""
    out = tmp_path / "m"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    exe = Path(sys.executable).parent / "navtune"
    if exe.is_file():
        res = subprocess.run([str(exe), "model", "tiny", "--out", str(out)], capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stderr
    else:  # not installed as a script: same command in-process
        from typer.testing import CliRunner

        from navtune.cli import app

        r = CliRunner().invoke(app, ["model", "tiny", "--out", str(out)])
        assert r.exit_code == 0, r.output
    from navtune.agents.models.loading import load_model
    from navtune.agents.models.tiny import build_tiny_model

    model, proc = build_tiny_model(None, seed=0)
    loaded = load_model(out)
    batch = _inputs(loaded.processor)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded.model(**batch).logits)
