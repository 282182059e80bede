"""Baseline agents behind the Policy interface (random, forward-only, oracle) and the slot contract."""
from __future__ import annotations

from collections import Counter

import pytest

from navtune.agents.policy import POLICIES, Policy, make_policy
from navtune.envs.protocol import Observation, Pose

GRAPH = ("Left", "Right", "Move", "Stop")
CONT = ("move_forward", "turn_left", "turn_right", "stop")


def ob(allowed, step=0, **info):
    return Observation(None, None, Pose(0.0, 0.0), tuple(allowed), instruction="x", step=step, info=dict(info))


def test_registry_and_protocol():
    for name in ("random", "forward", "oracle"):
        p = make_policy(name)
        assert isinstance(p, Policy) and p.action_space == "graph"
    assert make_policy("oracle").needs_expert and not make_policy("random").needs_expert
    assert {"random", "forward", "oracle"} <= set(POLICIES.keys())
    with pytest.raises(KeyError, match="forward"):
        make_policy("nope")
    with pytest.raises(ValueError, match="continuous"):
        make_policy("random", action_space="hexagonal")


def test_random_is_uniform_over_allowed_and_seeded():
    p = make_policy("random", seed=3)
    p.reset(range(3))
    counts = Counter()
    for _ in range(400):
        out = p.act({0: ob(GRAPH), 1: ob(("Left", "Right", "Stop")), 2: ob(CONT)})
        assert out[1] != "Move" and out[2] in CONT
        counts[out[0]] += 1
    assert set(counts) == set(GRAPH) and min(counts.values()) > 60
    a = make_policy("random", seed=7)
    b = make_policy("random", seed=7)
    assert [a.act([ob(GRAPH)])[0] for _ in range(20)] == [b.act([ob(GRAPH)])[0] for _ in range(20)]
    nostop = make_policy("random", include_stop=False)
    assert all(nostop.act([ob(GRAPH)])[0] != "Stop" for _ in range(50))
    assert nostop.act([ob(("Stop",))]) == ["Stop"]


def test_random_draws_per_episode_whatever_the_slot():
    """With the episode named at reset, an episode's actions depend on (seed, episode) only."""
    def run(policy, slot, eid, n=15):
        policy.reset(slot, episode_id=eid)
        return [policy.act({slot: ob(GRAPH, step=t)})[slot] for t in range(n)]

    a, b = make_policy("random", seed=5), make_policy("random", seed=5)
    first = run(a, 0, "ep-1")
    run(b, 3, "ep-0")  # another episode first, in another slot
    assert run(b, 1, "ep-1") == first
    assert run(a, 0, "ep-2") != first and run(make_policy("random", seed=6), 0, "ep-1") != first


def test_forward_moves_or_turns():
    p = make_policy("forward")
    assert p.act({0: ob(GRAPH), 1: ob(("Left", "Right", "Stop"))}) == {0: "Move", 1: "Right"}
    c = make_policy("forward", action_space="continuous", max_steps=5)
    assert c.act([ob(CONT), ob(("turn_left", "turn_right", "stop")), ob(CONT, step=5)]) == [
        "move_forward", "turn_right", "stop"]


def test_oracle_reads_the_expert_action():
    p = make_policy("oracle")
    p.reset([0, 1])
    assert p.act({0: ob(GRAPH), 1: ob(GRAPH)}, expert_actions={0: "Left", 1: "Stop"}) == {0: "Left", 1: "Stop"}
    assert p.last_outputs[1].action == "Stop" and p.last_outputs[1].valid
    with pytest.raises(KeyError, match="expert_action"):
        p.act({0: ob(GRAPH)})
    with pytest.raises(ValueError, match="unknown action"):
        p.act({0: ob(GRAPH + ("Fly",))}, expert_actions={0: "Fly"})


def test_act_rejects_a_disallowed_choice():
    p = make_policy("oracle")
    with pytest.raises(RuntimeError, match="not in allowed"):
        p.act({0: ob(("Left", "Right", "Stop"))}, expert_actions={0: "Move"})


def test_slots_are_independent():
    p = make_policy("random", seed=0)
    p.reset("a")
    p.reset(("b", 1))  # a tuple is one slot
    out = p.act({"a": ob(GRAPH), ("b", 1): ob(GRAPH)})
    assert set(out) == {"a", ("b", 1)} and set(p.last_outputs) == {"a", ("b", 1)}
    p.release("a")
    assert set(p.last_outputs) == {("b", 1)}
    assert p.act({}) == {} and p.act([]) == []
