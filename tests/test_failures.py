"""Failure-mode detectors: they fire on real failure patterns and never on an agent that moves freely."""
from __future__ import annotations

import math

import numpy as np
import pytest

from navtune.metrics.failures import (
    FailureConfig,
    failure_modes,
    failure_rates,
    inferred_collisions,
    is_oscillating,
    is_stuck,
    longest_alternating_turns,
    stuck_windows,
)


def _walk(actions, step=0.25, turn=math.radians(30), blocked=()):
    """Integrate continuous actions from the origin (heading 0 = +y, turning right positive)."""
    x = y = h = 0.0
    pos = [(x, y, 0.0)]
    coll = []
    for t, a in enumerate(actions):
        hit = False
        if a == "move_forward":
            if t in blocked:
                hit = True
            else:
                x, y = x + step * math.sin(h), y + step * math.cos(h)
        elif a == "turn_left":
            h -= turn
        elif a == "turn_right":
            h += turn
        pos.append((x, y, 0.0))
        coll.append(hit)
    return pos, coll


def test_free_moving_policy_is_never_flagged():
    # forward-only, and a wanderer: forward runs of 3-8 moves with 1-2 turns (<= 60 deg) between them;
    # every move succeeds in the simulator
    rng = np.random.default_rng(0)
    wander: list[str] = []
    while len(wander) < 300:
        wander += ["move_forward"] * int(rng.integers(3, 9))
        wander += [str(rng.choice(["turn_left", "turn_right"]))] * int(rng.integers(1, 3))
    for actions in (["move_forward"] * 200, wander):
        pos, coll = _walk(actions)
        f = failure_modes(actions, pos, coll)
        assert not f["failed"], f
        assert f["collisions"] == 0
        # no collision is inferred from positions either (the seed's bug: an unstepped sim looks blocked)
        assert not any(inferred_collisions(actions, pos))
        assert not failure_modes(actions, pos, None)["failed"]


def test_square_walk_with_turns_is_not_stuck_or_oscillating():
    actions = (["move_forward"] * 6 + ["turn_right"] * 3) * 8
    pos, coll = _walk(actions)
    f = failure_modes(actions, pos, coll)
    assert not f["stuck"] and not f["oscillation"] and not f["collision"], f


def test_blocked_forward_moves_are_stuck_and_collisions():
    actions = ["move_forward"] * 3 + ["move_forward"] * 10
    pos, coll = _walk(actions, blocked=set(range(3, 13)))
    f = failure_modes(actions, pos, coll)
    assert f["stuck"] and f["collision"] and f["collisions"] == 10
    assert stuck_windows(actions, pos)[0] == (2, 9)  # 0.25 m in moves 2..9
    # inferred collisions agree with the simulator's flags
    assert inferred_collisions(actions, pos) == coll


def test_back_and_forth_is_stuck_but_progress_is_not():
    # walk 1 m out and back repeatedly: forward moves without net displacement
    actions = (["move_forward"] * 4 + ["turn_right"] * 6) * 4
    pos, coll = _walk(actions)
    assert is_stuck(actions, pos, n_forward=8, min_progress=0.5)
    assert not is_stuck(["move_forward"] * 8, _walk(["move_forward"] * 8)[0], n_forward=8, min_progress=0.5)


def test_oscillation_needs_alternating_turns_in_a_row():
    osc = ["move_forward", "turn_left", "turn_right", "turn_left", "turn_right", "turn_left", "turn_right", "stop"]
    assert longest_alternating_turns(osc) == 6
    assert is_oscillating(osc, window=6)
    assert not is_oscillating(osc, window=7)
    spin = ["turn_left"] * 12  # turning one way is scanning, not oscillating
    assert longest_alternating_turns(spin) == 1
    broken = ["turn_left", "turn_right", "move_forward", "turn_left", "turn_right", "turn_left"]
    assert longest_alternating_turns(broken) == 3
    # graph action space too
    assert longest_alternating_turns(["Left", "Right", "Left", "Right"]) == 4


def test_graph_actions_and_thresholds():
    pos = [(0, 0, 0)] + [(0, 2.0 * (k + 1), 0) for k in range(5)]
    actions = ["Move"] * 5
    f = failure_modes(actions, pos, [False] * 5, FailureConfig(n_forward=3, min_progress=0.5))
    assert not f["failed"]
    blocked = failure_modes(["Move"] * 5, [(0, 0, 0)] * 6, [True] * 5, FailureConfig(n_forward=3, min_collisions=5))
    assert blocked["stuck"] and blocked["collision"]
    assert not failure_modes(["Move"] * 5, [(0, 0, 0)] * 6, [True] * 5, FailureConfig(min_collisions=6))["collision"]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="positions"):
        failure_modes(["Move", "Move"], [(0, 0, 0)] * 2, [False, False])
    with pytest.raises(ValueError, match="collision flags"):
        failure_modes(["Move"], [(0, 0, 0)] * 2, [False, True])


def test_failure_rates():
    rows = [{"failures": {"stuck": True, "oscillation": False, "collision": True, "failed": True}},
            {"failures": {"stuck": False, "oscillation": False, "collision": False, "failed": False}}]
    assert failure_rates(rows) == {"stuck": 0.5, "oscillation": 0.0, "collision": 0.5, "early_stop": 0.0,
                                   "timeout": 0.0, "failed": 0.5}


def test_early_stop_and_timeout_need_the_outcome():
    """An early Stop away from the goal and a budget that ran out are failure modes (issue 18: a random agent with
    SR 0 showed 0 % failures); both need the episode's outcome, so without it they stay False."""
    line = [[0.25 * t, 0.0, 0.0] for t in range(4)]
    stop = ["move_forward", "move_forward", "stop"]
    walk = ["move_forward", "move_forward", "move_forward"]
    f = failure_modes(stop, line, [False] * 3, success=False)
    assert f["early_stop"] and not f["timeout"] and f["failed"]
    assert not failure_modes(stop, line, [False] * 3, success=True)["failed"]
    f = failure_modes(walk, line, [False] * 3, success=False)
    assert f["timeout"] and not f["early_stop"] and f["failed"]
    assert not any(failure_modes(a, line, [False] * 3)[m] for a in (stop, walk) for m in ("early_stop", "timeout"))
