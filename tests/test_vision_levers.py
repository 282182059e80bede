"""The levers of making an agent see (issue 14, phase 2): blank-frame evaluation (`FrameAblation`), the
chat-odometry format, the vision tower's own init std, dense step labels and the auxiliary heads that learn
them at training time only."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from navtune.agents.ablation import GREY, FrameAblation
from navtune.agents.policy import ActionOutput, BasePolicy
from navtune.agents.prompts import StepInput, get_format
from navtune.envs.protocol import Observation, Pose


class Recorder(BasePolicy):
    """Answers Move when allowed, else Left; remembers the frames it was shown."""

    def __init__(self):
        super().__init__()
        self.seen: list[np.ndarray] = []
        self.resets: list = []

    def _reset_slot(self, slot):
        self.resets.append(slot)

    def _act(self, observations, expert_actions):
        out = {}
        for s, o in observations.items():
            self.seen.append(o.rgb)
            out[s] = ActionOutput("Move" if "Move" in o.allowed_actions else "Left", scores={"Move": -0.1})
        return out


def _obs(seed: int, allowed=("Left", "Right", "Move", "Stop")) -> Observation:
    rgb = np.random.default_rng(seed).integers(0, 255, size=(8, 6, 3), dtype=np.uint8)
    return Observation(rgb=rgb, depth=None, pose=Pose(0, 0), allowed_actions=allowed, instruction="go", step=seed)


def test_blank_frames_change_only_the_frames():
    inner = Recorder()
    pol = FrameAblation(inner, "blank")
    pol.reset([0, 1])
    assert inner.resets == [0, 1]
    obs = {0: _obs(0), 1: _obs(1, ("Left", "Right", "Stop"))}
    assert pol.act(obs) == {0: "Move", 1: "Left"}
    assert all(f.shape == (8, 6, 3) and f.dtype == np.uint8 and (f == GREY).all() for f in inner.seen)
    assert pol.last_outputs[0].scores == {"Move": -0.1}  # the wrapped policy's outputs, passed through
    assert obs[0].rgb.std() > 0  # the caller's observation is untouched


def test_real_frames_pass_through_and_shuffle_shows_other_steps_frames():
    inner = Recorder()
    FrameAblation(inner, "real").act({0: _obs(3)})
    assert (inner.seen[0] == _obs(3).rgb).all()
    inner = Recorder()
    pol = FrameAblation(inner, "shuffle", seed=0)
    frames = [_obs(k).rgb for k in range(20)]
    for k in range(20):
        pol.act({0: _obs(k)})
    assert all(any((f == g).all() for g in frames[: k + 1]) for k, f in enumerate(inner.seen))
    assert sum(not (f == g).all() for f, g in zip(inner.seen, frames)) > 5
    with pytest.raises(ValueError, match="frame mode"):
        FrameAblation(Recorder(), "dark")


def test_chat_odometry_is_append_only_and_counts_turns():
    fmt = get_format("chat-odometry", action_space="graph")
    acts = ["Left", "Left", "Move", "Right", "Right", "Right", "Right", "Right", "Right", "Right", "Stop"]
    steps = [StepInput("go", t, 0.0, acts[:t], ("Left", "Right", "Move", "Stop"), image=None) for t in range(len(acts))]
    whole = fmt.render_episode(steps, acts, "SYS")[0].text
    deltas = "".join(fmt.render_delta(s, "SYS", acts[t - 1] if t else None).text for t, s in enumerate(steps))
    assert whole.startswith(deltas)
    assert "Heading: as at the start\n" in whole
    assert "Heading: 60° left from start, 60° left since the last move\n" in whole  # after Left, Left
    assert "Heading: 60° left from start, 0° since the last move\n" in whole  # after the Move
    assert "Heading: 120° right from start, 180° since the last move\n" in whole  # 6 Rights after the Move
    # render_step rebuilds the same history (earlier turns' odometry from the step's previous actions)
    s5 = StepInput("go", 5, 0.0, acts[:5], ("Left", "Right", "Move", "Stop"), num_previous_images=5)
    assert fmt.render_step(s5, "SYS").text == "".join(
        fmt.render_delta(s, "SYS", acts[t - 1] if t else None).text for t, s in enumerate(steps[:6]))


def test_vision_init_std_redraws_only_the_vision_tower():
    from navtune.agents.models.tiny import build_tiny_model

    a, _ = build_tiny_model(None, seed=0)
    b, _ = build_tiny_model(None, seed=0, vision_init_std=0.05)
    pa = {k: v.detach() for k, v in a.named_parameters()}
    pb = {k: v.detach() for k, v in b.named_parameters()}
    for n in pa:
        if ".visual." in f".{n}" and n.endswith("weight") and pa[n].ndim > 1:
            assert float(pb[n].std()) == pytest.approx(0.05, rel=0.3), n
            assert float(pa[n].std()) == pytest.approx(0.3, rel=0.3), n
        elif ".visual." not in f".{n}":
            assert torch.equal(pa[n], pb[n]), n


# ------------------------------------------------------------------------------ dense step labels
def _expert_episodes(seed: int, n: int):
    """Expert episodes on a generated house's VLN paths, as the expert collector records them (no frames)."""
    from navtune.data.format import EpisodeRecord
    from navtune.envs.graph.env import GraphNavEnv
    from navtune.envs.house.episodes.vln import house_vln_paths
    from navtune.envs.house.layout import generate_house
    from navtune.envs.house.navgraph import build_house_graph
    from navtune.tasks.r2r.data import R2REpisode

    house = generate_house(seed)
    graph, rooms = build_house_graph(house)
    env = GraphNavEnv(lambda scan: graph, None)
    out = []
    for p in house_vln_paths(house, n, np.random.default_rng(0), min_hops=2, max_hops=4, graph_rooms=(graph, rooms)):
        r2r = {**p.to_r2r(), "instr_id": f"{p.path_id}_0", "instruction": p.instructions[0]}
        obs = env.reset(R2REpisode.from_dict(r2r, "test"))
        steps = []
        for t in range(40):
            a = env.expert_action()
            steps.append({"t": t, "action": a, "expert_action": a, "allowed_actions": list(obs.allowed_actions),
                          "pose": obs.pose.to_dict(), "info": {"viewpoint": obs.info["viewpoint"]}})
            res = env.step(a)
            obs = res.observation
            if res.done:
                break
        ep = {"episode_id": f"e{p.path_id}", "task": "vln", "action_space": "graph", "scene": house.scene_id,
              "steps": steps, "goal": {"viewpoint": p.path[-1], "path": list(p.path)}}
        out.append(EpisodeRecord.from_manifest(ep))
    return out, graph


@pytest.fixture(scope="module")
def house_episodes():
    return _expert_episodes(3, 6)


def test_path_bearing_agrees_with_the_expert(house_episodes):
    from navtune.data.step_labels import STEP_LABELS

    agree = total = 0
    for ep in house_episodes[0]:
        bearing = STEP_LABELS.get("path-bearing")(ep)
        acts = [s.expert_action for s in ep.steps]
        assert acts[-1] == "Stop" and bearing[-1] == 12 and (bearing[:-1] < 12).all()
        for a, b in zip(acts[:-1], bearing[:-1]):
            # Move: the route's next viewpoint is ahead; Right / Left: it lies to that side (or behind). The
            # expert takes the fewest actions, which now and then is another route than the reference path
            agree += {"Move": b in (11, 0, 1), "Right": 1 <= b <= 6, "Left": 6 <= b <= 11}[a]
            total += 1
    assert total > 30 and agree >= 0.85 * total


def test_exits_are_the_neighbours_bearings(house_episodes):
    from navtune.data.step_labels import STEP_LABELS, bearing_bin

    (ep, *_), graph = house_episodes
    exits = STEP_LABELS.get("exits")(ep)
    assert exits.shape == (len(ep.steps), 12)
    for s, row in zip(ep.steps, exits):
        v = s.info["viewpoint"]
        here = graph.position(v)[:2]
        want = {bearing_bin(here, graph.position(n)[:2], s.pose["heading"]) for n in graph.neighbours(v)}
        assert set(np.flatnonzero(row)) == want
        if "Move" in s.allowed_actions:  # Move is allowed only with a neighbour within the field of view
            assert row[[11, 0, 1]].any()
    assert bearing_bin(np.zeros(2), np.array([1.0, 0.0]), 0.0) == 3  # east of a north-facing agent: right
    assert bearing_bin(np.zeros(2), np.array([0.0, -1.0]), math.pi / 2) == 3  # south of an east-facing one


def test_aux_heads_train_with_sft_and_stay_out_of_the_model(tmp_path, tmp_path_factory):
    from test_train_helpers import ListSource, load_tiny, make_chat_episode, tiny_dir

    from navtune.trainers.config import TrainConfig
    from navtune.trainers.run import read_history, train

    path = tiny_dir(tmp_path_factory)
    _, proc = load_tiny(path)
    eps = []
    for s in range(3):
        ep = make_chat_episode(proc, 3, seed=s)
        ep.step_labels = {"path-bearing": torch.tensor([s, 0, 12]), "exits": torch.eye(12)[:3]}
        eps.append(ep)
    cfg = TrainConfig(model=str(path), data=str(tmp_path), out=str(tmp_path / "run"), image_size=None, epochs=2,
                      lr=1e-3, progress=False, loggers=("csv",), aux_labels=("path-bearing", "exits"))
    res = train(cfg, train_source=ListSource(eps), processor=proc)
    assert len(read_history(cfg.out)) == 6
    from safetensors import safe_open

    for shard in res.final.glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as f:
            assert not [k for k in f.keys() if "aux" in k]
    bad = make_chat_episode(proc, 3, seed=9)
    with pytest.raises(ValueError, match="step label 'path-bearing'"):
        train(TrainConfig(**{**cfg.to_dict(), "out": str(tmp_path / "run2"), "lora_cfg": cfg.lora_cfg}),
              train_source=ListSource([bad]), processor=proc)
    with pytest.raises(KeyError, match="step label"):
        TrainConfig(model=str(path), data=str(tmp_path), aux_labels=("nope",))
