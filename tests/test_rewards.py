"""The navigation reward and discounted returns on hand-made trajectories."""
from __future__ import annotations

import numpy as np
import pytest

from navtune.data.rewards import RewardConfig, discounted_returns, step_rewards

NO_SLACK = RewardConfig(progress=1.0, success_bonus=2.5, collision=0.1, slack=0.0, gamma=0.9)


def test_progress_is_decrease_of_geodesic_distance():
    # 3 moves: 5 -> 4 (closer), 4 -> 4.5 (further, e.g. around a wall), 4.5 -> 3.25
    r = step_rewards([5.0, 4.0, 4.5, 3.25], ["Move", "Move", "Move"], [False] * 3, 3.0, NO_SLACK)
    np.testing.assert_allclose(r, [1.0, -0.5, 1.25])


def test_success_bonus_only_for_stop_inside_radius():
    cfg = NO_SLACK
    inside = step_rewards([3.5, 2.0, 2.0], ["Move", "Stop"], [False, False], 3.0, cfg)
    np.testing.assert_allclose(inside, [1.5, 2.5])
    outside = step_rewards([5.0, 4.0, 4.0], ["Move", "Stop"], [False, False], 3.0, cfg)
    np.testing.assert_allclose(outside, [1.0, 0.0])
    # being inside without stopping is no success
    no_stop = step_rewards([3.5, 2.0, 1.0], ["Move", "Move"], [False, False], 3.0, cfg)
    np.testing.assert_allclose(no_stop, [1.5, 1.0])
    # continuous action space, ObjectNav radius 1 m
    cont = step_rewards([1.2, 0.7, 0.7], ["move_forward", "stop"], [False, False], 1.0, cfg)
    np.testing.assert_allclose(cont, [0.5, 2.5])


def test_collision_and_slack_penalties():
    cfg = RewardConfig(progress=1.0, success_bonus=2.5, collision=0.3, slack=0.01, gamma=1.0)
    # a blocked move: no progress, pays collision + slack; a turn pays slack only
    r = step_rewards([4.0, 4.0, 4.0], ["move_forward", "turn_left"], [True, False], 1.0, cfg)
    np.testing.assert_allclose(r, [-0.31, -0.01])


def test_coefficients_scale():
    cfg = RewardConfig(progress=2.0, success_bonus=10.0, collision=0.0, slack=0.0)
    r = step_rewards([2.0, 0.5, 0.5], ["Move", "Stop"], [False, False], 1.0, cfg)
    np.testing.assert_allclose(r, [3.0, 10.0])


def test_returns_with_gamma():
    r = [1.0, 0.0, -1.0, 2.0]
    g = discounted_returns(r, 0.5)
    # by hand: G3 = 2; G2 = -1 + 0.5*2 = 0; G1 = 0 + 0 = 0; G0 = 1 + 0 = 1
    np.testing.assert_allclose(g, [1.0, 0.0, 0.0, 2.0])
    np.testing.assert_allclose(discounted_returns(r, 1.0), [2.0, 1.0, 1.0, 2.0])
    np.testing.assert_allclose(discounted_returns(r, 0.0), r)
    assert discounted_returns([], 0.9).shape == (0,)


def test_returns_match_direct_sum():
    rng = np.random.default_rng(0)
    r = rng.normal(size=50)
    gamma = 0.97
    direct = [sum(gamma**k * r[t + k] for k in range(len(r) - t)) for t in range(len(r))]
    np.testing.assert_allclose(discounted_returns(r, gamma), direct, rtol=1e-10)


def test_expert_trajectory_return_is_positive_and_bad_input_rejected():
    cfg = RewardConfig()
    d = [4.0, 3.0, 2.0, 1.0, 0.5, 0.5]
    acts = ["Move"] * 4 + ["Stop"]
    r = step_rewards(d, acts, [False] * 5, 3.0, cfg)
    g = discounted_returns(r, cfg.gamma)
    assert g[0] > 3.0 + 2.5 * cfg.gamma**4 - 0.1
    with pytest.raises(ValueError, match="distances"):
        step_rewards([1.0, 2.0], ["Move", "Move"], [False, False], 3.0)
    with pytest.raises(ValueError, match="gamma"):
        RewardConfig(gamma=1.5)
    with pytest.raises(ValueError, match="unknown"):
        RewardConfig.from_dict({"bonus": 1.0})
