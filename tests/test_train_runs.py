"""Whole training runs on a tiny Qwen2.5-VL: what is frozen stays frozen, LoRA-only updates in AWR,
exact resume from a mid-epoch checkpoint, and the exported model/adapter loads back."""
from __future__ import annotations

import pytest
import torch

from exactness import assert_close
from navtune.trainers.config import AWRConfig, LoraConfig, TrainConfig
from navtune.trainers.run import read_history, train
from test_train_helpers import ListSource, load_tiny, make_chat_episode, tiny_dir


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return tiny_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def episodes(tiny_path):
    _, proc = load_tiny(tiny_path)
    return [make_chat_episode(proc, 3, seed=s, size=28 * 2) for s in range(4)]


def _params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_sft_keeps_vision_and_merger_frozen(tiny_path, episodes, tmp_path):
    from navtune.trainers.run import load_trainable

    cfg = TrainConfig(model=tiny_path, out=str(tmp_path / "sft"), epochs=1, lr=1e-3, loggers=("csv",),
                      progress=False)
    model, proc = load_trainable(cfg)
    before = _params(model)
    res = train(cfg, train_source=ListSource(episodes), val_source=ListSource(episodes[:1]), model=model,
                processor=proc)
    after = _params(model)
    assert "val/loss" in res.metrics and res.metrics["val/loss"] > 0
    vision = [n for n in before if ".visual." in f".{n}"]
    assert vision and any("merger" in n for n in vision)
    for n in vision:
        assert torch.equal(before[n], after[n]), n
    lm = [n for n in before if "language_model.layers" in n]
    assert all(not torch.equal(before[n], after[n]) for n in lm if "norm" not in n)
    assert (res.final / "model.safetensors").is_file() and (res.final / "navtune_train.json").is_file()
    assert (res.final / "preprocessor_config.json").is_file() or (res.final / "processor_config.json").is_file()
    # the exported folder reloads through the ordinary path with the trained weights
    reloaded, _ = load_tiny(str(res.final))
    for n, p in reloaded.named_parameters():
        assert torch.allclose(p, after[n]), n
    assert len(read_history(res.out)) == 4  # one optimizer step per episode


def test_awr_changes_only_lora_parameters(tiny_path, episodes, tmp_path):
    from navtune.trainers.run import load_trainable

    cfg = AWRConfig(model=tiny_path, out=str(tmp_path / "awr"), epochs=1, lr=1e-2, loggers=("csv",), progress=False,
                    lora_cfg=LoraConfig(r=4, alpha=8), l2_coef=1e-3, entropy_coef=1e-2, baseline="value")
    model, proc = load_trainable(cfg)
    before = _params(model)
    res = train(cfg, train_source=ListSource(episodes), model=model, processor=proc)
    after = _params(model)
    lora = [n for n in before if "lora_" in n]
    assert lora and all("language_model.layers" in n for n in lora)
    assert all(not torch.equal(before[n], after[n]) for n in lora if "lora_B" in n)
    for n in before:
        if "lora_" not in n:
            assert torch.equal(before[n], after[n]), n
    assert (res.final / "adapter_model.safetensors").is_file()
    assert (res.final / "value_head.safetensors").is_file()
    assert res.trainable["trainable"] < res.trainable["total"] / 10
    # the adapter loads back on a fresh base as the initial LoRA of another run, with the same weights
    from navtune.trainers.freeze import apply_lora

    base, _ = load_tiny(tiny_path)
    again = apply_lora(base, LoraConfig(init_path=str(res.final)))
    got = dict(again.named_parameters())
    for n in lora:
        assert torch.allclose(got[n], after[n]), n
    assert got[lora[0]].requires_grad


@pytest.mark.slow
@pytest.mark.exact
def test_resume_continues_the_uninterrupted_loss_curve(tiny_path, episodes, tmp_path):
    # float64 (Lightning's 64-true): the two runs agree to float64 rounding on any CPU
    common = dict(model=tiny_path, epochs=2, lr=1e-3, loggers=("csv",), progress=False, checkpoint_every=3,
                  lora_cfg=LoraConfig(r=4, alpha=8), baseline="dataset", entropy_coef=1e-2, precision="64-true")
    full = train(AWRConfig(out=str(tmp_path / "full"), **common), train_source=ListSource(episodes))
    curve = read_history(full.out)
    assert sorted(curve) == list(range(1, 9))
    ckpt = full.out / "checkpoints" / "step=3.ckpt"  # mid first epoch (4 episodes per epoch)
    assert ckpt.is_file()
    resumed = train(AWRConfig(out=str(tmp_path / "resumed"), resume=str(ckpt), **common),
                    train_source=ListSource(episodes))
    tail = read_history(resumed.out)
    assert sorted(tail) == [4, 5, 6, 7, 8]
    assert_close([tail[s] for s in range(4, 9)], [curve[s] for s in range(4, 9)], what="loss curve")
    # and the final adapters are the same
    from safetensors.torch import load_file

    a = load_file(str(full.final / "adapter_model.safetensors"))
    b = load_file(str(resumed.final / "adapter_model.safetensors"))
    for k in a:
        assert a[k].dtype == torch.float64, k
        assert_close(a[k], b[k], what=k)
