"""Training samples per prompt format: labels sit exactly on the action tokens of the ids the model is fed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from navtune.data.format import DatasetWriter, EpisodeMeta, StepData
from navtune.data.training import (
    IGNORE_INDEX,
    EpisodeSamples,
    PadCollator,
    StepSamples,
    model_inputs,
    split_samples,
)

SIZE = (56, 42)


@pytest.fixture(scope="module")
def processor():
    from navtune.agents.models.tiny import build_tiny_processor

    return build_tiny_processor()


def _write(root, space: str, n_episodes: int = 3, expert_differs: bool = False):
    from navtune.core.actions import ACTION_SPACES

    acts = {"graph": ["Left", "Move", "Move", "Right", "Stop"],
            "continuous": ["turn_left", "move_forward", "move_forward", "turn_right", "stop"]}[space]
    task = "vln" if space == "graph" else "objectnav"
    w = DatasetWriter(root, {"task": task, "action_space": space})
    rng = np.random.default_rng(0)
    for e in range(n_episodes):
        b = w.builder(EpisodeMeta(f"ep{e}", task, space, f"house_{e}", instruction="find a bed" if task == "objectnav"
                                  else "walk past the sofa and stop at the door", order=e))
        n = 3 + e  # different lengths
        seq = acts[: n - 1] + acts[-1:]
        for t, a in enumerate(seq):
            expert = a
            if expert_differs and t == 1:
                expert = acts[3]  # a turn where the policy moved
            allowed = ACTION_SPACES[space] if t != 2 else tuple(x for x in ACTION_SPACES[space] if x not in ("Move", "move_forward"))
            b.add(StepData(a, {"x": 0.0, "y": 0.25 * t, "z": 0.0, "heading": 0.0},
                           rgb=rng.integers(0, 256, (42, 56, 3), dtype=np.uint8), geodesic_distance=3.0 - 0.25 * t,
                           allowed_actions=allowed, expert_action=expert, info={"distance_traveled": 0.25 * t}))
        w.commit(b.finish({"x": 0.0, "y": 0.25 * n, "z": 0.0, "heading": 0.0}, 3.0 - 0.25 * n))
    return root


def _check_labels(sample, tokenizer, expected_actions):
    ids = sample["input_ids"][0]
    labels = sample["labels"]
    assert ids.shape[0] == labels.shape[0] == sample["mm_token_type_ids"].shape[1]
    lab = torch.nonzero(labels != IGNORE_INDEX).flatten()
    assert torch.equal(lab, sample["label_positions"])
    # each contiguous labelled run decodes back to its action, in order, and nothing else is labelled
    runs = np.split(lab.numpy(), np.nonzero(np.diff(lab.numpy()) != 1)[0] + 1) if len(lab) else []
    decoded = [tokenizer.decode(labels[r]) for r in runs]
    assert decoded == expected_actions == sample["actions"]
    # ... and the labels are the fed ids themselves at those positions (HF shifts them inside the model)
    assert [tokenizer.decode(ids[a:b]) for a, b in sample["action_spans"]] == sample["actions"]
    assert torch.equal(labels[lab], ids[lab])
    # mm_token_type_ids marks exactly the image tokens, as many as the images' grids give
    image_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert torch.equal(sample["mm_token_type_ids"][0].bool(), ids == image_id)
    assert int(sample["mm_token_type_ids"].sum()) == int(sample["image_grid_thw"].prod(-1).sum()) // 4


def test_r2r_lowlevel_matches_seed_tokenization(tmp_path, processor):
    """Our ids == the seed's: processor(text=chat-templated prompt, images) + "<|im_start|>assistant\\nAction: "
    tokenized on its own, then the action; the label is the action token after `Action: `."""
    from PIL import Image

    from navtune.agents.prompts import load_system_prompt
    from navtune.agents.prompts.r2r_lowlevel import seed_messages

    ds = StepSamples(_write(tmp_path / "g", "graph"), processor, "r2r-lowlevel", image_size=SIZE)
    assert len(ds) == 3 + 4 + 5
    sp = load_system_prompt()
    for i in (0, 4, 11):
        sample = ds[i]
        e, t = ds.index[i]
        ep = ds.ds[e]
        _check_labels(sample, processor.tokenizer, [ep["steps"][t]["action"]])
        steps, _, _ = ds.step_inputs(e)
        text = processor.apply_chat_template(seed_messages(steps[t], sp), tokenize=False, add_generation_prompt=False)
        images = [Image.fromarray(ds.ds.load_rgb(ep, k)) for k in range(t + 1)]
        seed = processor(text=text, images=[images], return_tensors="pt")["input_ids"][0].tolist()
        seed += processor.tokenizer("<|im_start|>assistant\nAction: ")["input_ids"]
        seed += processor.tokenizer(ep["steps"][t]["action"])["input_ids"]
        assert sample["input_ids"][0].tolist() == seed
        assert len(sample["label_positions"]) == 1 and int(sample["label_positions"][0]) == len(seed) - 1
        assert sample["image_grid_thw"].shape[0] == t + 1  # the full image history


def test_objectnav_json_labels_the_whole_answer(tmp_path, processor):
    """The JSON answer is trained, not only its action: every answer token is labelled (the action as the
    action span, the skeleton and fields as answer text), so a model can learn to write it (issue 18)."""
    ds = StepSamples(_write(tmp_path / "c", "continuous"), processor, "objectnav-json", image_size=SIZE)
    tok = processor.tokenizer
    for i in range(len(ds)):
        sample = ds[i]
        e, t = ds.index[i]
        action = ds.ds[e]["steps"][t]["action"]
        ids, labels = sample["input_ids"][0], sample["labels"]
        lab = torch.nonzero(labels != IGNORE_INDEX).flatten()
        assert torch.equal(labels[lab], ids[lab])
        assert tok.decode(labels[lab]) == '{"Observation": "", "Reasoning": "", "Action": "' + action + '"}<|im_end|>'
        assert [tok.decode(ids[a:b]) for a, b in sample["action_spans"]] == [action] == sample["actions"]
        assert int(lab[-1]) == len(ids) - 1 and len(lab) == int(lab[-1] - lab[0]) + 1  # one run: the answer
        assert sum(b - a for a, b in sample["text_spans"]) + sum(b - a for a, b in sample["action_spans"]) == len(lab)
        assert sample["image_grid_thw"].shape[0] == 1  # this format shows the current frame only
    # text_fraction 0: the answer text is fed but only the action is labelled
    ds0 = StepSamples(tmp_path / "c", processor, "objectnav-json", image_size=SIZE, text_fraction=0.0)
    sample = ds0[1]
    assert sample["text_spans"] == [] and torch.equal(sample["input_ids"], ds[1]["input_ids"])
    lab = torch.nonzero(sample["labels"] != IGNORE_INDEX).flatten()
    assert tok.decode(sample["labels"][lab]) == ds0.ds[0]["steps"][1]["action"]
    with pytest.raises(ValueError, match="speaks graph actions"):
        StepSamples(tmp_path / "c", processor, "r2r-lowlevel")


@pytest.mark.parametrize("space", ["graph", "continuous"])
def test_chat_whole_episode_every_action_labelled(tmp_path, processor, space):
    ds = EpisodeSamples(_write(tmp_path / space, space), processor, "chat", image_size=SIZE)
    assert len(ds) == 3
    item = ds[2]
    assert len(item["chunks"]) == 1
    sample = item["chunks"][0]
    actions = [s["action"] for s in ds.ds[2]["steps"]]
    _check_labels(sample, processor.tokenizer, actions)
    assert item["actions"] == actions and len(item["allowed"]) == 5
    assert sample["image_grid_thw"].shape[0] == 5
    np.testing.assert_allclose(item["rewards"].numpy(), [s["reward"] for s in ds.ds[2]["steps"]])
    # the packed sequence is the last step's prompt: its per-step prefix is exactly what inference feeds
    assert ds.rewards(0) == [s["reward"] for s in ds.ds[0]["steps"]]


def test_per_step_format_grouped_by_episode(tmp_path, processor):
    ds = EpisodeSamples(_write(tmp_path / "g", "graph"), processor, "r2r-lowlevel", image_size=SIZE)
    loads = []
    load_rgb = ds.ds.load_rgb
    ds.ds.load_rgb = lambda ep, t: (loads.append(t), load_rgb(ep, t))[1]
    item = ds[1]
    assert len(item["chunks"]) == 4 and sorted(loads) == [0, 1, 2, 3]  # not 1 + 2 + 3 + 4 decodes
    for chunk, a in zip(item["chunks"], item["actions"]):
        _check_labels(chunk, processor.tokenizer, [a])
    # each frame is decoded once for the whole episode: the same tensors as the per-step samples' (which
    # preprocess every prompt's frames together), and frame keys that say which frame each image is
    steps = StepSamples(tmp_path / "g", processor, "r2r-lowlevel", image_size=SIZE)
    first = sum(len(ds[e]["chunks"]) for e in range(1))
    for t, chunk in enumerate(item["chunks"]):
        ref = steps[first + t]
        assert torch.equal(chunk["pixel_values"], ref["pixel_values"])
        assert torch.equal(chunk["image_grid_thw"], ref["image_grid_thw"])
        assert torch.equal(chunk["input_ids"], ref["input_ids"])
        assert chunk["image_keys"] == ref["image_keys"] == [(1, k) for k in range(t + 1)]


def test_expert_relabelling_targets(tmp_path, processor):
    root = _write(tmp_path / "d", "graph", expert_differs=True)
    ds = StepSamples(root, processor, "r2r-lowlevel", image_size=SIZE, target="expert")
    s = ds[1]  # episode 0 step 1: executed Move, expert says Right
    assert s["actions"] == ["Right"]
    assert processor.tokenizer.decode(s["labels"][s["label_positions"]]) == "Right"
    s2 = ds[2]  # step 2's history shows the executed action
    assert "['Left', 'Move']" in processor.tokenizer.decode(s2["input_ids"][0])
    chat = EpisodeSamples(root, processor, "chat", image_size=SIZE, target="expert")
    c = chat[0]["chunks"][0]
    assert c["actions"] == ["Left", "Right", "Stop"]
    assert [processor.tokenizer.decode(c["labels"][a:b]) for a, b in c["action_spans"]] == ["Left", "Right", "Stop"]
    assert processor.tokenizer.decode(c["input_ids"][0, c["action_spans"][1][0]:c["action_spans"][1][1]]) == "Move"


def test_collator_and_split_by_house(tmp_path, processor):
    from navtune.agents.models.tiny import build_tiny_model

    root = _write(tmp_path / "g", "graph", n_episodes=4)
    splits = split_samples(root, processor, "r2r-lowlevel", fractions={"train": 0.5, "val": 0.25, "test": 0.25},
                           image_size=SIZE)
    houses = {k: {v.ds.episode(v.ds[e]["episode_id"])["scene"] for e in v.episodes} for k, v in splits.items()}
    assert set(houses) == {"train", "val", "test"}
    assert not (houses["train"] & houses["val"]) and not (houses["train"] & houses["test"])
    ds = splits["train"]
    collate = PadCollator.for_processor(processor)
    a, b = ds[0], ds[len(ds) - 1]
    batch = collate([a, b])
    L = max(a["input_ids"].shape[1], b["input_ids"].shape[1])
    assert batch["input_ids"].shape == batch["mm_token_type_ids"].shape == batch["labels"].shape == (2, L)
    assert batch["pixel_values"].shape[0] == a["pixel_values"].shape[0] + b["pixel_values"].shape[0]
    short = 0 if a["input_ids"].shape[1] < L else 1
    assert batch["attention_mask"][short, -1] == 0 and batch["labels"][short, -1] == IGNORE_INDEX
    model, _ = build_tiny_model()
    with torch.no_grad():
        loss = model(**model_inputs(batch), labels=batch["labels"]).loss
    assert torch.isfinite(loss)
