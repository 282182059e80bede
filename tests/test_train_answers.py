"""Training objectnav-json on its whole answer (issue 18): the answer text is a term of the loss, per-step
samples batched into one forward give the same loss and gradients, and expert relabels are weighted 1 in AWR
(not by the return of the failed trajectory they were mined from)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from navtune.data.format import DatasetWriter, EpisodeMeta, StepData
from navtune.trainers.config import AWRConfig, TrainConfig
from navtune.trainers.module import NavTrainModule
from navtune.trainers.sources import dataset_source
from test_train_helpers import load_tiny, tiny_dir

CONT = ("move_forward", "turn_left", "turn_right", "stop")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return load_tiny(tiny_dir(tmp_path_factory))


def _dataset(root, episodes: list[tuple[list[str], list[str], float]], seed: int = 0) -> str:
    """Episodes of (executed actions, expert labels, distance gained per forward move)."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, {"task": "objectnav", "action_space": "continuous", "width": 56, "height": 42})
    for e, (acts, experts, gain) in enumerate(episodes):
        b = w.builder(EpisodeMeta(f"e{e}", "objectnav", "continuous", f"house_{e}", instruction="find a chair",
                                  target="chair", success_radius=0.5, order=e))
        d = 3.0
        for t, (a, x) in enumerate(zip(acts, experts)):
            b.add(StepData(a, {"x": 0.0, "y": 0.25 * t, "z": 0.0, "heading": 0.0},
                           rgb=rng.integers(0, 256, (42, 56, 3), dtype=np.uint8), geodesic_distance=d,
                           allowed_actions=CONT, expert_action=x, info={"distance_traveled": 0.25 * t}))
            d = max(0.0, d - (gain if a == "move_forward" else 0.0))
        w.commit(b.finish({"x": 0.0, "y": 0.25 * len(acts), "z": 0.0, "heading": 0.0}, d))
    w.finalize()
    return str(root)


def _episode(cfg, proc, data, i=0):
    return dataset_source(cfg, proc, data)[i]


def test_answer_text_is_a_term_of_the_loss(tiny, tmp_path):
    """SFT loss = mean action NLL + answer_coef * mean NLL of the other answer tokens, each by hand from the
    full logits; with answer_coef 0 the text gets no gradient."""
    model, proc = tiny
    data = _dataset(tmp_path / "d", [(["turn_left", "move_forward", "stop"], ["turn_left", "move_forward", "stop"],
                                      1.0)])
    cfg = TrainConfig(format="objectnav-json", image_size=(56, 42), answer_coef=0.7)
    ep = _episode(cfg, proc, data)
    assert ep.num_text_tokens > 0 and ep.actions == ["turn_left", "move_forward", "stop"]
    module = NavTrainModule(model, cfg, total_steps=10)
    with torch.no_grad():
        got = module.episode_loss(ep)
        act_nll, text_lp = [], []
        for c in ep.chunks:
            inputs = {k: v for k, v in c.inputs.items()}
            logp = torch.log_softmax(model(**inputs).logits[0].float(), -1)
            (a, b), = c.action_spans
            act_nll.append(-float(sum(logp[j - 1, c.labels[j]] for j in range(a, b))) / (b - a))
            text_lp += [float(logp[j - 1, c.labels[j]]) for j in c.text_positions().tolist()]
    assert len(text_lp) == ep.num_text_tokens
    assert got["nll"] == pytest.approx(sum(act_nll) / 3, rel=1e-4)
    assert got["answer_nll"] == pytest.approx(-sum(text_lp) / len(text_lp), rel=1e-4)
    assert got["loss"] == pytest.approx(got["nll"] + 0.7 * got["answer_nll"], rel=1e-5)


def test_batched_steps_give_the_same_loss_and_gradients(tiny, tmp_path):
    """chunk_batch: an episode's per-step samples padded into one forward (attention 0 on pads) give the
    one-by-one loss and gradients, in float64 to a tolerance from the dtype."""
    model, proc = tiny
    data = _dataset(tmp_path / "d", [(["turn_left", "move_forward", "move_forward", "turn_right", "stop"],
                                      ["turn_left", "move_forward", "move_forward", "turn_right", "stop"], 0.5)])
    model.double()
    try:
        results = {}
        for size in (1, 3, 64):
            cfg = TrainConfig(format="objectnav-json", image_size=(56, 42), chunk_batch=size)
            ep = _episode(cfg, proc, data)
            for c in ep.chunks:
                c.inputs["pixel_values"] = c.inputs["pixel_values"].double()
            module = NavTrainModule(model, cfg, total_steps=10)
            module.manual_backward = lambda loss: loss.backward()
            model.zero_grad()
            stats = module.episode_loss(ep, backward_scale=1.0)
            results[size] = (stats, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    finally:
        model.float()
    tol = 1e3 * torch.finfo(torch.float64).eps
    (s1, g1) = results[1]
    for size in (3, 64):
        s, g = results[size]
        assert s["loss"] == pytest.approx(s1["loss"], rel=tol)
        assert g.keys() == g1.keys()
        for n in g1:
            assert torch.allclose(g[n], g1[n], rtol=tol, atol=tol * float(g1[n].abs().max() + 1)), n


def test_expert_relabels_weigh_one_not_the_failed_return(tiny, tmp_path):
    """AWR with --target expert: a mined failure (the policy turned in place, low returns) relabelled by the
    expert and an expert episode (high returns) both weigh 1 (the expert's action has advantage 0 under the
    expert's value), where weighting by the executed trajectory's return gave the expert data the clip and
    the corrections almost nothing (issue 18); relabelled="returns" keeps that old behaviour for comparison."""
    model, proc = tiny
    expert = (["move_forward"] * 4 + ["stop"], ["move_forward"] * 4 + ["stop"], 0.75)
    failure = (["turn_left"] * 5, ["move_forward"] * 4 + ["stop"], 0.75)
    data = _dataset(tmp_path / "d", [expert, failure])
    base = AWRConfig(format="objectnav-json", image_size=(56, 42), lora=False, target="expert",
                     baseline="dataset", beta=0.5, max_weight=20.0)
    weights = {}
    for mode in ("dagger", "returns"):
        cfg = replace(base, relabelled=mode)
        src = dataset_source(cfg, proc, data)
        from navtune.trainers.datamodule import EpisodeDataModule

        b = EpisodeDataModule(src).mean_return(cfg.gamma)
        module = NavTrainModule(model, cfg, total_steps=10, dataset_baseline=b)
        with torch.no_grad():
            weights[mode] = [module.episode_loss(src[i])["weight"] for i in range(2)]
        assert src[1].actions == failure[1]  # the failure is trained on the expert's labels
    assert weights["dagger"] == pytest.approx([1.0, 1.0])
    w_expert, w_failure = weights["returns"]
    assert w_expert > 5.0 and w_failure < 0.5  # what the return weighting did: the corrections thrown away
    assert math.isfinite(w_expert)
