"""Loss pieces against hand computations, and the packed `chat` loss against per-step teacher forcing.
Everything runs in float64, so equal paths agree to float64 rounding on any CPU (tests/exactness.py)."""
from __future__ import annotations

import math

import pytest
import torch

from exactness import assert_close
from navtune.agents.models.loading import set_activation_checkpointing
from navtune.trainers import losses as L
from navtune.trainers.batch import unpack_episode
from navtune.trainers.config import AWRConfig, TrainConfig
from navtune.trainers.module import NavTrainModule, forward_chunk, takes_encoder_outputs
from test_train_helpers import load_tiny, make_chat_episode, tiny_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_tiny(tiny_dir(tmp_path_factory), dtype="float64")


def test_label_runs_split_actions():
    labels = torch.tensor([-100, 5, 6, -100, -100, 7, -100, 8, 9, 10])
    runs = L.label_runs(labels)
    assert [r.tolist() for r in runs] == [[1, 2], [5], [7, 8, 9]]
    assert L.label_runs(torch.full((4,), -100)) == []


def test_per_action_mean_and_sum():
    v = torch.tensor([1.0, 3.0, 10.0, -2.0, -4.0])
    a = torch.tensor([0, 0, 1, 2, 2])
    assert L.per_action(v, a, 3, "sum").tolist() == [4.0, 10.0, -6.0]
    assert L.per_action(v, a, 3, "mean").tolist() == [2.0, 10.0, -3.0]


def test_awr_and_rwr_weights_match_hand_computation():
    G = torch.tensor([1.0, 0.5, -2.0, 10.0], dtype=torch.float64)
    b = torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    w = L.awr_weights(G, b, beta=2.0, max_weight=5.0)
    hand = [math.exp(0.25), 1.0, math.exp(-1.0), 5.0]  # exp(10/2) = 148 clipped to 5
    assert_close(w, hand)
    w = L.rwr_weights(G, beta=0.5, max_weight=100.0)
    hand = [math.exp(2.0), math.exp(1.0), math.exp(-4.0), 100.0]
    assert_close(w, hand)
    # no overflow for huge advantages, and the baseline gets no gradient through the weights
    bb = torch.zeros(1, requires_grad=True)
    w = L.awr_weights(torch.tensor([1e6]), bb, 1e-3, 7.0)
    assert w.item() == pytest.approx(7.0) and not w.requires_grad
    with pytest.raises(ValueError):
        L.exp_weights(G, beta=0.0, max_weight=1.0)


def test_candidate_scores_and_entropy_by_hand():
    logp = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.5, 0.0, 3.0, 0.0]], dtype=torch.float64), dim=-1)
    ds = torch.tensor([2, 2])  # dataset action: tokens [2, 2]
    # candidates: the dataset action, one diverging at token 0, one sharing token 0 and diverging at 1
    c = L.candidate_logprobs(logp, ds, [[2, 2], [0], [2, 1, 3]])
    s = [logp[0, 2] + logp[1, 2], logp[0, 0], logp[0, 2] + logp[1, 1]]
    hand = torch.log_softmax(torch.stack(s), 0)
    assert_close(c, hand)
    p = hand.exp()
    assert_close(L.entropy_of(c).item(), float(-(p * p.log()).sum()))
    with pytest.raises(ValueError, match="prefix-free"):
        L.candidate_logprobs(logp, ds, [[2]])


def test_l2_penalty():
    assert L.l2_penalty([torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]).item() == 14.0


def _full_logits_logp(model, chunk):
    """log p of labelled tokens from the model's ordinary full-sequence logits."""
    out = model(**chunk.inputs, use_cache=False)
    lp = torch.log_softmax(out.logits[0], -1)
    pos = torch.nonzero(chunk.labels != -100).flatten()
    return lp[pos - 1, chunk.labels[pos]]


@pytest.mark.exact
def test_logits_at_labelled_positions_equal_full_logits(tiny):
    model, proc = tiny
    ep = make_chat_episode(proc, 4, seed=1)
    with torch.no_grad():
        fast = forward_chunk(model, ep.chunks[0]).token_logp
        full = _full_logits_logp(model, ep.chunks[0])
    assert fast.dtype == torch.float64
    assert_close(fast, full)


@pytest.mark.exact
def test_packed_chat_loss_equals_per_step_loss(tiny):
    model, proc = tiny
    image_id = proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for cfg in (TrainConfig(), AWRConfig(lora=False, baseline="dataset", entropy_coef=0.1, beta=0.7)):
        module = NavTrainModule(model, cfg, total_steps=10, tokenizer=proc.tokenizer, dataset_baseline=0.3)
        ep = make_chat_episode(proc, 5, seed=2)
        per = unpack_episode(ep, image_id)
        assert len(per.chunks) == 5 and len(ep.chunks) == 1
        with torch.no_grad():
            packed = module.episode_loss(ep)
            stepwise = module.episode_loss(per)
        for k in packed:
            assert_close(packed[k], stepwise[k], what=k)
        assert set(packed) >= ({"loss", "nll", "weight", "entropy"} if module.is_awr else {"loss", "nll"})


@pytest.mark.exact
def test_packed_chat_gradients_equal_per_step(tiny):
    model, proc = tiny
    image_id = proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    module = NavTrainModule(model, TrainConfig(), total_steps=10)
    ep = make_chat_episode(proc, 3, seed=3)
    params = [p for n, p in model.named_parameters() if "layers.1.mlp.down_proj" in n]

    def grads(batch):
        model.zero_grad()
        loss = torch.zeros(())
        T = batch.num_actions
        for c in batch.chunks:  # the same per-action mean, through autograd
            o = forward_chunk(model, c)
            loss = loss - L.per_action(o.token_logp, o.action_of_token, o.n_actions, "mean").sum() / T
        loss.backward()
        return [p.grad.clone() for p in params]

    packed = grads(ep)
    assert packed[0].dtype == torch.float64
    for a, b in zip(packed, grads(unpack_episode(ep, image_id))):
        assert_close(a, b)
    # gradient checkpointing recomputes activations in backward: same gradients
    set_activation_checkpointing(model, True)
    try:
        assert model.model.language_model.gradient_checkpointing
        for a, b in zip(packed, grads(ep)):
            assert_close(a, b)
    finally:
        set_activation_checkpointing(model, False)
    assert not model.model.language_model.gradient_checkpointing


@pytest.mark.exact
def test_lora_gradients_with_activation_checkpointing(tmp_path_factory):
    """LoRA (frozen base, frozen inputs) under non-reentrant checkpointing: the same adapter gradients."""
    from navtune.trainers.config import LoraConfig
    from navtune.trainers.freeze import apply_lora, lora_parameters

    base, proc = load_tiny(tiny_dir(tmp_path_factory), dtype="float64")
    model = apply_lora(base, LoraConfig(r=4, alpha=8))
    for n, p in lora_parameters(model):
        if "lora_B" in n:  # B starts at zero: give it values so A gets a gradient too
            torch.nn.init.normal_(p, std=0.1)
    ep = make_chat_episode(proc, 3, seed=5)

    def grads():
        model.zero_grad()
        o = forward_chunk(model, ep.chunks[0])
        (-L.per_action(o.token_logp, o.action_of_token, o.n_actions, "mean").mean()).backward()
        return [p.grad.clone() for _, p in lora_parameters(model)]

    plain = grads()
    set_activation_checkpointing(model, True)
    try:
        checkpointed = grads()
    finally:
        set_activation_checkpointing(model, False)
    assert plain and all(g.abs().sum() > 0 for g in plain)
    for a, b in zip(plain, checkpointed):
        assert_close(a, b)


@pytest.mark.exact
def test_awr_loss_matches_hand_computation(tiny):
    model, proc = tiny
    cfg = AWRConfig(lora=False, baseline="value", beta=0.5, max_weight=3.0, value_coef=0.25, entropy_coef=0.0,
                    gamma=0.9)
    module = NavTrainModule(model, cfg, total_steps=10, tokenizer=proc.tokenizer)
    torch.nn.init.normal_(module.value_head.weight, std=0.1)
    ep = make_chat_episode(proc, 4, seed=4)
    ep.rewards = torch.tensor([1.0, -0.5, 2.0, 0.1], dtype=torch.float64)
    g3 = 0.1
    g2 = 2.0 + 0.9 * g3
    g1 = -0.5 + 0.9 * g2
    g0 = 1.0 + 0.9 * g1
    with torch.no_grad():
        got = module.episode_loss(ep)
        o = forward_chunk(model, ep.chunks[0])
        logp = L.per_action(o.token_logp, o.action_of_token, 4, "sum")
        v = module.value_head(o.state_hidden).squeeze(-1)
        G = torch.tensor([g0, g1, g2, g3], dtype=torch.float64)
        w = [min(math.exp((float(G[i]) - float(v[i])) / 0.5), 3.0) for i in range(4)]
        hand = sum(-w[i] * float(logp[i]) for i in range(4)) / 4 + 0.25 * float(((v - G) ** 2).mean())
    assert_close(got["loss"], hand, what="loss")
    assert_close(got["weight"], sum(w) / 4, what="weight")


@pytest.mark.exact
def test_per_step_episode_encodes_each_frame_once_with_the_same_loss_and_gradients(tiny, tmp_path):
    """r2r-lowlevel shows every earlier frame at every step: with the per-episode feature cache the frozen
    vision tower sees each frame once, and the loss and gradients are those of re-encoding every chunk."""
    from dataclasses import replace

    from navtune.trainers.sources import dataset_source
    from test_train_helpers import write_dataset

    model, proc = tiny
    data = write_dataset(tmp_path / "d", n_episodes=1, T=5)
    cfg = TrainConfig(format="r2r-lowlevel", image_size=(64, 48))
    ep = dataset_source(cfg, proc, data)[0]
    assert len(ep.chunks) == 5 and [len(c.image_keys) for c in ep.chunks] == [1, 2, 3, 4, 5]
    for p in model.model.visual.parameters():
        p.requires_grad_(False)
    encoded: list[int] = []
    hook = model.model.visual.register_forward_hook(
        lambda mod, args, kwargs, out: encoded.append(int((kwargs.get("grid_thw") if "grid_thw" in kwargs
                                                           else args[1]).shape[0])), with_kwargs=True)
    params = [p for n, p in model.named_parameters() if "layers.1.mlp.down_proj" in n]
    results = {}
    try:
        for cache in (False, True):
            module = NavTrainModule(model, replace(cfg, cache_image_features=cache), total_steps=10)
            model.zero_grad()
            encoded.clear()
            with torch.enable_grad():
                stats = module.episode_loss(ep)
                loss, shared = torch.zeros(()), ({} if cache else None)
                for c in ep.chunks:  # the same loss through autograd, for gradients
                    o = forward_chunk(model, c, shared)
                    loss = loss - L.per_action(o.token_logp, o.action_of_token, o.n_actions, "mean").sum() / 5
                loss.backward()
            results[cache] = (stats, [p.grad.clone() for p in params], sum(encoded))
    finally:
        hook.remove()
        for p in model.model.visual.parameters():
            p.requires_grad_(True)
    (s0, g0, n0), (s1, g1, n1) = results[False], results[True]
    assert n0 == 2 * (1 + 2 + 3 + 4 + 5)  # episode_loss + the autograd pass, every frame in every chunk
    if takes_encoder_outputs(type(model.model)):
        assert n1 == 2 * 5  # each frame once per pass
    else:  # a transformers without mm_encoder_outputs: the cache is off, every chunk re-encodes
        assert n1 == n0
    assert_close(s1["loss"], s0["loss"], what="loss")
    for a, b in zip(g0, g1):
        assert_close(a, b, what="gradient")
