"""`navtune train sft|awr` end to end on a navtune dataset folder, and its clear errors."""
from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from navtune.cli import app
from navtune.trainers.run import read_history
from test_train_helpers import tiny_dir, write_dataset

runner = CliRunner()
FAST = ["--image-size", "56x56", "--quiet", "--accelerator", "cpu"]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return tiny_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def graph_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ds") / "graph", n_episodes=3, T=3, action_space="graph")


def _invoke(args):
    import traceback

    res = runner.invoke(app, args)
    tb = "".join(traceback.format_exception(res.exception)) if res.exception and res.exit_code != 2 else ""
    return res.exit_code, res.output + tb


@pytest.mark.slow
def test_sft_then_awr_from_the_sft_adapter(tiny_path, graph_data, tmp_path):
    code, out = _invoke(["train", "sft", "--model", tiny_path, "--data", graph_data, "--format", "chat",
                         "--out", str(tmp_path / "sft"), "--lora", "--lora-r", "4", "--lr", "1e-3", *FAST])
    assert code == 0, out
    final = tmp_path / "sft" / "final"
    assert (final / "adapter_model.safetensors").is_file()
    assert json.loads((final / "navtune_train.json").read_text())["format"] == "chat"
    assert len(read_history(tmp_path / "sft")) == 3
    assert list((tmp_path / "sft" / "logs" / "tb").glob("version_*/events.*"))  # TensorBoard too
    code, out = _invoke(["train", "awr", "--model", tiny_path, "--data", graph_data, "--format", "r2r-lowlevel",
                         "--out", str(tmp_path / "awr"), "--init-lora", str(final), "--beta", "0.5",
                         "--gamma", "0.9", "--entropy", "0.01", "--l2", "0.001", "--max-steps", "2", *FAST])
    assert code == 0, out
    assert (tmp_path / "awr" / "final" / "value_head.safetensors").is_file()
    assert len(read_history(tmp_path / "awr")) == 2


def test_error_for_a_folder_that_is_not_a_vl_model(graph_data, tmp_path):
    bad = tmp_path / "textonly"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 8}))
    code, out = _invoke(["train", "sft", "--model", str(bad), "--data", graph_data, *FAST])
    assert code == 2 and "model_type" in out and "qwen2" in out and "config.json" in out
    code, out = _invoke(["train", "sft", "--model", str(tmp_path / "nothing"), "--data", graph_data, *FAST])
    assert code == 2 and "not found" in out


def test_error_for_a_dataset_that_does_not_match_the_format(tiny_path, tmp_path):
    cont = write_dataset(tmp_path / "cont", n_episodes=1, T=2, action_space="continuous")
    code, out = _invoke(["train", "sft", "--model", tiny_path, "--data", cont, "--format", "r2r-lowlevel",
                         "--out", str(tmp_path / "o"), *FAST])
    assert code == 2 and "action_space" in out and "r2r-lowlevel" in out and "manifest.jsonl" in out


def test_error_for_an_adapter_that_does_not_match_its_base(tiny_path, graph_data, tmp_path):
    from navtune.agents.models.tiny import build_tiny_model
    from navtune.trainers.config import LoraConfig
    from navtune.trainers.freeze import apply_lora

    other, _ = build_tiny_model(None, size="tiny", seed=1)
    # a base with another MLP width: same module names, other shapes
    from transformers import Qwen2_5_VLForConditionalGeneration

    cfg = other.config
    cfg.text_config.intermediate_size = 96
    adapter = apply_lora(Qwen2_5_VLForConditionalGeneration(cfg), LoraConfig(r=2, alpha=4))
    adapter.save_pretrained(tmp_path / "adapter")
    code, out = _invoke(["train", "awr", "--model", tiny_path, "--data", graph_data,
                         "--init-lora", str(tmp_path / "adapter"), "--out", str(tmp_path / "o"), *FAST])
    assert code == 2 and "do not match" in out and "mlp" in out and "adapter_model.safetensors" in out
    shutil.rmtree(tmp_path / "adapter")
    (tmp_path / "adapter").mkdir()
    code, out = _invoke(["train", "awr", "--model", tiny_path, "--data", graph_data,
                         "--init-lora", str(tmp_path / "adapter"), "--out", str(tmp_path / "o"), *FAST])
    assert code == 2 and "adapter_config.json" in out
