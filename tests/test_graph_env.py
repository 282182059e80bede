"""GraphNavEnv: the NavEnv protocol over a NavGraph, with and without a view renderer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from navtune.envs.graph import GraphNavEnv, ViewRenderer
from navtune.envs.protocol import NavEnv
from navtune.graph import NavGraph
from navtune.tasks.r2r import load_r2r_split

E = math.pi / 2  # facing +x
LINE = NavGraph.from_edges(["A", "B", "C", "D", "F"], [(0, 0, 0), (2, 0, 0), (4, 0, 0), (6, 0, 0), (4, 3, 0)],
                           [("A", "B"), ("B", "C"), ("C", "D"), ("C", "F")], name="line")
EPISODE = {"scan": "line", "path": ["A", "B", "C", "D"], "heading": E + 0.2, "instructions": ["walk east"],
           "instr_id": "1_0"}


class StripeRenderer:
    """Paints the heading index into the image so tests can see which view was rendered."""

    def __init__(self):
        self.calls = []

    def render(self, viewpoint_id, heading, elevation):
        self.calls.append((viewpoint_id, round(math.degrees(heading)), elevation))
        rgb = np.full((4, 6, 3), round(math.degrees(heading)) // 30, dtype=np.uint8)
        return rgb, np.ones((4, 6), np.float32)


def test_protocol_moves_turns_and_trajectory():
    env = GraphNavEnv(LINE)
    assert isinstance(env, NavEnv)
    obs = env.reset(EPISODE)
    assert obs.rgb is None and obs.depth is None
    assert obs.pose.heading == pytest.approx(E)  # 101° snaps to 90°
    assert obs.instruction == "walk east" and obs.step == 0
    assert obs.info["viewpoint"] == "A" and obs.info["distance_to_goal"] == pytest.approx(6.0)
    assert obs.allowed_actions == ("Left", "Right", "Move", "Stop")
    r = env.step("Move")
    assert r.observation.info["viewpoint"] == "B" and r.observation.distance_traveled == pytest.approx(2.0)
    r = env.step("Move")
    r = env.step("Left")  # now facing +y at C: F is ahead
    assert r.observation.pose.heading == pytest.approx(math.radians(60))
    r = env.step("Left")
    assert r.observation.info["viewpoint"] == "C" and r.observation.step == 4
    assert r.observation.info["trajectory"][-1] == ["C", pytest.approx(math.radians(30)), 0.0]
    r = env.step("Stop")
    assert r.done and r.info["stopped"] and r.info["success"]  # C is 2 m from the goal
    assert len(r.observation.info["trajectory"]) == 5  # start + 2 moves + 2 turns; Stop adds nothing
    m = env.metrics()
    assert (m["sr"], m["pl"], m["steps"]) == (1.0, 4.0, 5.0)
    with pytest.raises(RuntimeError):
        env.step("Left")


def test_move_without_neighbour_in_view_and_max_steps():
    env = GraphNavEnv({"line": LINE}, max_steps=3)
    obs = env.reset(dict(EPISODE, heading=0.0))  # facing +y at A: nothing in view
    assert "Move" not in obs.allowed_actions
    r = env.step("Move")
    assert r.collided and r.observation.info["viewpoint"] == "A" and not r.done
    env.step("Right")
    r = env.step("Right")
    assert r.done and r.info["truncated"] and not r.info["success"]
    env.reset(EPISODE)
    with pytest.raises(ValueError, match="unknown action"):
        env.step("Jump")


def test_expert_reaches_goal_and_renderer_sees_each_state():
    ren = StripeRenderer()
    assert isinstance(ren, ViewRenderer)
    env = GraphNavEnv(LINE, renderer=ren)
    obs = env.reset(dict(EPISODE, heading=math.pi))  # facing -y: two lefts bring B within 30° of the view
    assert obs.rgb.shape == (4, 6, 3) and obs.rgb[0, 0, 0] == 6 and obs.depth.dtype == np.float32
    actions = []
    while True:
        a = env.expert_action()
        actions.append(a)
        r = env.step(a)
        if r.done:
            break
    assert actions == ["Left", "Left", "Move", "Move", "Move", "Stop"]  # moves keep heading 120°
    assert r.info["success"] and r.observation.info["distance_to_goal"] == 0.0
    assert ren.calls[0] == ("A", 180, 0.0) and ren.calls[-1] == ("D", 120, 0.0)
    assert len(ren.calls) == len(actions) + 1


def test_r2r_episodes_expert_success(r2r_data_dir):
    eps = load_r2r_split(r2r_data_dir, "val_unseen")[:60:3]
    env = GraphNavEnv.for_r2r(r2r_data_dir, max_steps=40)
    for ep in eps:
        env.reset(ep)
        while not (r := env.step(env.expert_action())).done:
            pass
        assert r.info["stopped"] and r.info["success"]
        assert env.metrics()["spl"] > 0.5
    with pytest.raises(KeyError, match="not in graph"):
        env.reset(dict(EPISODE, scan=eps[0].scan))
