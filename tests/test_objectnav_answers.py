"""Grounded ObjectNav answers (issue 18): the Observation / Reasoning written from the simulator's knowledge
of the view are true of the house, agree with the labelled action, and are what the JSON answer trains on."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from navtune.data.format import DatasetWriter, EpisodeMeta, StepData
from navtune.data.training import IGNORE_INDEX, EpisodeSamples
from navtune.envs.house.describe import describe_view, direction, reason_about, view_facts
from navtune.envs.house.episodes.objectnav import house_objectnav_episodes
from navtune.envs.house.expert import ContinuousExpert, simulate
from navtune.envs.house.layout import generate_house

HFOV = math.radians(60.0)


def _expert_run(seed: int = 3, k: int = 0):
    house = generate_house(seed)
    ep = house_objectnav_episodes(house, k + 1, np.random.default_rng([seed, 1]))[k]
    expert = ContinuousExpert(house.grid(), house.objects_of(ep.object_category), ep.success_distance)
    x, y, _ = ep.start_position
    actions = expert.plan(x, y, ep.start_heading)
    assert actions and actions[-1] == "stop"
    poses = simulate(expert, x, y, ep.start_heading, actions)
    return house, ep, actions, poses


def test_view_facts_are_true_of_the_house():
    house, ep, actions, poses = _expert_run()
    x, y, h = poses[-1]  # the expert stops looking at a goal instance within reach
    f = view_facts(house, x, y, h, HFOV, ep.object_category, ep.success_distance)
    assert f.goal_reached and f.goal is not None and f.path_bearing is None
    assert f.goal.name.endswith(ep.object_category) and abs(f.goal.bearing) <= HFOV / 2
    assert reason_about(f, "stop") == f"the {ep.object_category} is within reach: stop"
    assert describe_view(f).startswith(house.room_name(house.room_at(x, y)) + "; " + f.goal.name)
    # turning around puts the goal out of view (an instance is never seen through the back of the head)
    back = view_facts(house, x, y, h + math.pi, HFOV, ep.object_category, ep.success_distance)
    assert all(o.name != f.goal.name or o.distance != f.goal.distance for o in back.objects)
    # far away at the start: every object named is inside the field of view and closer than 7 m
    x0, y0, h0 = poses[0]
    start = view_facts(house, x0, y0, h0, HFOV, ep.object_category, ep.success_distance)
    assert all(abs(o.bearing) <= HFOV / 2 + 0.3 and o.distance <= 7.0 for o in start.objects)
    assert not start.goal_reached and start.path_bearing is not None


def test_reasoning_names_the_labelled_action_and_the_way():
    house, ep, actions, poses = _expert_run()
    for (x, y, h), a in zip(poses, actions):
        f = view_facts(house, x, y, h, HFOV, ep.object_category, ep.success_distance)
        text = reason_about(f, a)
        assert text.endswith(": " + a.replace("_", " "))
        if f.goal is None and f.path_bearing is not None:
            assert text.startswith(f"no {ep.object_category} in view") and direction(f.path_bearing) in text
    assert direction(0.0) == "ahead" and direction(-0.5) == "on the left" and direction(0.5) == "on the right"
    assert direction(math.pi) == "behind"


@pytest.fixture(scope="module")
def processor():
    from navtune.agents.models.tiny import build_tiny_processor

    return build_tiny_processor()


def _write(root, house, ep, actions, poses):
    w = DatasetWriter(root, {"task": "objectnav", "action_space": "continuous", "width": 56, "height": 56})
    meta = EpisodeMeta(ep.episode_id, "objectnav", "continuous", ep.scene_id, instruction=ep.instruction,
                       target=ep.object_category, goal={"success_distance": ep.success_distance})
    b = w.builder(meta)
    rng = np.random.default_rng(0)
    for (x, y, h), a in zip(poses, actions):
        b.add(StepData(a, {"x": x, "y": y, "z": 0.0, "heading": h}, rgb=rng.integers(0, 256, (56, 56, 3), np.uint8),
                       geodesic_distance=1.0, allowed_actions=("move_forward", "turn_left", "turn_right", "stop"),
                       expert_action=a))
    x, y, h = poses[-1]
    w.commit(b.finish({"x": x, "y": y, "z": 0.0, "heading": h}, 0.0))
    w.finalize()
    return root


def test_grounded_samples_train_the_whole_true_answer(tmp_path, processor):
    house, ep, actions, poses = _expert_run()
    root = _write(tmp_path / "d", house, ep, actions, poses)
    item = EpisodeSamples(root, processor, "objectnav-json", image_size=(56, 56), answer="grounded")[0]
    tok = processor.tokenizer
    for t, chunk in enumerate(item["chunks"]):
        labels = chunk["labels"]
        lab = torch.nonzero(labels != IGNORE_INDEX).flatten()
        answer = json.loads(tok.decode(labels[lab]).removesuffix("<|im_end|>"))
        x, y, h = poses[t]
        f = view_facts(house, x, y, h, HFOV, ep.object_category, ep.success_distance)
        assert answer == {"Observation": describe_view(f), "Reasoning": reason_about(f, actions[t]),
                          "Action": actions[t]}
    # episodes of another simulator cannot be described: one clear error naming the episode
    from navtune.data.grounding import GroundingError

    w = DatasetWriter(tmp_path / "other", {"task": "objectnav", "action_space": "continuous", "width": 56,
                                           "height": 56})
    b = w.builder(EpisodeMeta("mp3d_ep", "objectnav", "continuous", "17DRP5sb8fy", target="chair"))
    b.add(StepData("stop", {"x": 0.0, "y": 0.0, "z": 0.0, "heading": 0.0},
                   rgb=np.zeros((56, 56, 3), np.uint8)))
    w.commit(b.finish({"x": 0.0, "y": 0.0, "z": 0.0, "heading": 0.0}, 0.0))
    w.finalize()
    with pytest.raises(GroundingError, match="mp3d_ep.*not a generated house"):
        EpisodeSamples(tmp_path / "other", processor, "objectnav-json", image_size=(56, 56), answer="grounded")[0]
