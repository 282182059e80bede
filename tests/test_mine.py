"""Failure miner: real roll-outs, failures kept with the expert's label at every visited state, nothing
flagged for a policy that moves freely, resumable without duplicates."""
from __future__ import annotations

import json
import shutil

import pytest

from navtune.core.io import read_jsonl
from navtune.data import EpisodeDataset
from navtune.evaluation import AgentSpec, EvalTask, build_policy, load_episodes
from navtune.mining import mine_failures


@pytest.fixture(scope="module")
def graph_task(r2r_data_dir, tmp_path_factory) -> EvalTask:
    root = tmp_path_factory.mktemp("r2r")
    raw = json.loads((r2r_data_dir / "R2R_val_unseen.json").read_text())
    scan = sorted({x["scan"] for x in raw})[0]
    (root / "connectivity").mkdir()
    shutil.copy(r2r_data_dir / "connectivity" / f"{scan}_connectivity.json", root / "connectivity")
    (root / "R2R_mini.json").write_text(json.dumps([x for x in raw if x["scan"] == scan][:4]))
    return EvalTask(backend="graph", data_dir=str(root), split="mini")


def test_forward_failures_are_kept_with_expert_labels(graph_task, tmp_path):
    from navtune.envs.graph import GraphNavEnv
    from navtune.tasks.r2r import load_connectivity

    eps = load_episodes(graph_task)
    s = mine_failures(build_policy(AgentSpec("forward"), "graph"), graph_task, eps, tmp_path / "f", num_envs=3,
                      progress=False)
    # forward-only never stops: every episode times out (a failure mode), some also push into walls (stuck)
    assert s.episodes == 12 and s.kept == s.total_kept == s.modes["timeout"] == 12 and s.modes["stuck"] > 0
    ds = EpisodeDataset(tmp_path / "f")
    assert len(ds) == s.kept and ds.info["source"] == "dagger"
    ep = ds[0]
    assert ep["info"]["failure_modes"] and ep["source"] == "dagger"
    # replay the executed actions: the stored expert label at every visited state is the env's expert action
    by_id = {e.episode_id: e for e in eps}
    env = GraphNavEnv(load_connectivity(graph_task.data_dir, ep["scene"]))
    env.reset(by_id[ep["episode_id"]].payload)
    for st in ep["steps"]:
        assert st["expert_action"] == env.expert_action()
        assert st["info"]["viewpoint"] == env.state.viewpoint
        env.step(st["action"])
    assert all(st["action"] == "Move" or st["action"] == "Right" for st in ep["steps"])
    # every step has a reward and a return (geodesic distances known in the graph world)
    assert all(st["reward"] is not None and st["return"] is not None for st in ep["steps"])
    # rerun: nothing is run or written twice
    again = mine_failures(build_policy(AgentSpec("forward"), "graph"), graph_task, eps, tmp_path / "f", progress=False)
    assert again.episodes == 0 and again.skipped == 12 and again.total_kept == s.kept
    ids = [r["episode_id"] for r in read_jsonl(tmp_path / "f" / "manifest.jsonl")]
    assert len(ids) == len(set(ids))


def test_the_expert_is_never_flagged(graph_task, tmp_path):
    s = mine_failures(build_policy(AgentSpec("oracle"), "graph"), graph_task, load_episodes(graph_task),
                      tmp_path / "o", num_envs=2, progress=False)
    assert s.episodes == 12 and s.kept == 0 and s.total_kept == 0
    assert s.modes == {"stuck": 0, "oscillation": 0, "collision": 0, "early_stop": 0, "timeout": 0}


@pytest.mark.slow
@pytest.mark.gl
def test_house_sim_steps_free_mover_not_flagged_forward_collides(tmp_path):
    """In the MiniWorld house (the simulator really steps): the expert moves freely and is not flagged;
    forward-only runs into walls and is kept as stuck + collision with expert labels."""
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes
    from navtune.tasks.objectnav import write_episodes

    eps = list(generate_objectnav_episodes([7], per_house=2, max_steps=60))
    write_episodes(tmp_path / "eps.jsonl", eps)
    task = EvalTask(backend="house-objectnav", episodes=str(tmp_path / "eps.jsonl"), width=96, height=72)
    episodes = load_episodes(task)
    from navtune.evaluation import evaluate
    from navtune.evaluation.harness import EvalConfig
    from navtune.evaluation.pool import make_pool

    pool = make_pool(task, 1, False)
    try:
        rows = evaluate(build_policy(AgentSpec("oracle"), "continuous"), task, episodes, tmp_path / "o.jsonl",
                        EvalConfig(epa=False, progress=False), pool=pool)
        assert all(r["metrics"]["sr"] == 1.0 for r in rows)
        for r in rows:
            assert not r["failures"]["failed"] and r["collided"] == []
            moves = [t for t, a in enumerate(r["actions"]) if a == "move_forward"]
            assert moves and all(r["poses"][t + 1][:2] != r["poses"][t][:2] for t in moves)  # the sim stepped
        s = mine_failures(build_policy(AgentSpec("forward"), "continuous"), task, episodes, tmp_path / "f",
                          progress=False)
    finally:
        pool.close()
    assert s.kept >= 1 and s.modes["collision"] >= 1
    ds = EpisodeDataset(tmp_path / "f")
    ep = ds[0]
    assert {"stuck", "collision"} & set(ep["info"]["failure_modes"])
    assert any(st["collision"] for st in ep["steps"])
    assert all(st["expert_action"] in ("move_forward", "turn_left", "turn_right", "stop") for st in ep["steps"])
    assert ds.load_rgb(ep, 0).shape == (72, 96, 3)


def test_dagger_rollouts_keep_every_episode_and_mix_in_the_expert(graph_task, tmp_path):
    """DAgger through the harness: every roll-out is kept (successes too), each step stores the executed
    action and the expert's label; beta=1 executes the expert everywhere, beta=0 the learner alone, and a
    mixture's draws are the same when collected again."""
    from navtune.mining.dagger import ExpertMixture, dagger_rollouts

    eps = load_episodes(graph_task)
    fwd = lambda: build_policy(AgentSpec("forward"), "graph")  # noqa: E731
    s = dagger_rollouts(fwd(), graph_task, eps, tmp_path / "b1", beta=1.0, num_envs=3)
    ds = EpisodeDataset(tmp_path / "b1")
    assert s.total_kept == len(ds) == len(eps)
    assert all(st["action"] == st["expert_action"] for ep in ds for st in ep["steps"])
    assert all(ep["success"] for ep in ds)  # the expert drove
    dagger_rollouts(fwd(), graph_task, eps, tmp_path / "b0", beta=0.0, num_envs=3)
    ds0 = EpisodeDataset(tmp_path / "b0")
    assert len(ds0) == len(eps) and all(st["action"] in ("Move", "Right") for ep in ds0 for st in ep["steps"])
    assert any(st["action"] != st["expert_action"] for ep in ds0 for st in ep["steps"])
    runs = []
    for name in ("m1", "m2"):
        dagger_rollouts(fwd(), graph_task, eps, tmp_path / name, beta=0.5, seed=3, num_envs=2)
        runs.append({ep["episode_id"]: [st["action"] for st in ep["steps"]] for ep in EpisodeDataset(tmp_path / name)})
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="beta"):
        ExpertMixture(fwd(), 1.5)
@pytest.mark.slow
@pytest.mark.gl
def test_mine_cli_frame_size_and_reward_options(tmp_path):
    """`navtune mine` stores frames at --width x --height (not 320x240 when the model sees 64x48: issue 18 found
    177 MB of mined data against 9.9 MB of expert data) and writes rewards with the reward options given."""
    from typer.testing import CliRunner

    from navtune.cli import app
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes
    from navtune.tasks.objectnav import write_episodes

    write_episodes(tmp_path / "eps.jsonl", list(generate_objectnav_episodes([7], per_house=1, max_steps=12)))
    res = CliRunner().invoke(app, ["mine", "--agent", "forward", "--episodes", str(tmp_path / "eps.jsonl"),
                                   "--width", "64", "--height", "48", "--no-depth", "--success-bonus", "7",
                                   "--slack-penalty", "0.5", "--out", str(tmp_path / "f"), "--quiet"])
    assert res.exit_code == 0, res.output
    ds = EpisodeDataset(tmp_path / "f")
    assert len(ds) == 1 and ds.info["reward"]["success_bonus"] == 7 and ds.info["reward"]["slack"] == 0.5
    ep = ds[0]
    assert ds.load_rgb(ep, 0).shape == (48, 64, 3) and ep.steps[0].depth is None
    assert ep.info["failure_modes"]  # forward-only never stops here: at least a timeout
    # no stop, so the rewards add up to the distance gained minus the collision and slack penalties given
    total = sum(st.reward for st in ep.steps)
    gained = ep.steps[0].geodesic_distance - ep.final["geodesic_distance"]
    assert total == pytest.approx(gained - 0.1 * sum(st.collision for st in ep.steps) - 0.5 * len(ep.steps))
