"""The same `navtune train` command on 2 CPU processes (Lightning DDP over gloo) and on 1 process with
the same global batch (2 episodes per optimizer step): same loss curve, same trained weights (float64:
`--precision 64-true`, so the comparison holds to float64 rounding on any CPU)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from exactness import assert_close
from navtune.trainers.run import read_history
from test_train_helpers import tiny_dir, write_dataset

NAVTUNE = str(Path(sys.executable).with_name("navtune"))


def _train(model, data, out, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [NAVTUNE, "train", "sft", "--model", model, "--data", data, "--out", str(out), "--lora", "--lora-r", "4",
           "--lr", "1e-3", "--image-size", "56x56", "--quiet", "--accelerator", "cpu", "--precision", "64-true", *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.exact
@pytest.mark.skipif(not Path(NAVTUNE).exists(), reason="navtune console script not installed in the venv")
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path_factory, tmp_path):
    model = tiny_dir(tmp_path_factory)
    data = write_dataset(tmp_path / "data", n_episodes=4, T=3)
    _train(model, data, tmp_path / "two", "--strategy", "ddp", "--devices", "2")
    _train(model, data, tmp_path / "one", "--accumulate-episodes", "2")
    two, one = read_history(tmp_path / "two"), read_history(tmp_path / "one")
    assert sorted(two) == sorted(one) == [1, 2]
    assert_close([two[s] for s in (1, 2)], [one[s] for s in (1, 2)], what="loss curve")
    a = load_file(str(tmp_path / "one" / "final" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "two" / "final" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == torch.float64, k
        assert_close(a[k], b[k], what=k)
    assert any(a[k].abs().sum() > 0 for k in a if "lora_B" in k)  # it trained
