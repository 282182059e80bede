"""Online RL (`navtune train rl`) on a tiny Qwen2.5-VL and a few generated houses: the roll-outs' log-probs are
what the update recomputes (float64), GRPO's group advantages, GAE, KL = 0 at the first iteration, a few
iterations raise the mean training return, a run killed with kill -9 resumes to the same final weights, and the
output folder is a self-describing agent."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from navtune.rl import losses as L

REPO = Path(__file__).resolve().parents[1]
NAVTUNE = [str(Path(sys.executable).parent / "navtune")]
SIZE = 56  # 4 image tokens per frame with the tiny processor


# --------------------------------------------------------------------------------------------- fixtures
def write_houses(out: Path, seeds, per_house: int = 1, min_hops: int = 2, max_hops: int = 2,
                 min_distance: float = 3.2, face_path: bool = True) -> Path:
    """VLN episodes (R2R format) on generated houses: short paths (a correct Move or two, then Stop, succeeds)."""
    from navtune.envs.house.episodes.vln import house_vln_paths
    from navtune.envs.house.layout import generate_house
    from navtune.envs.house.navgraph import build_house_graph
    from navtune.tasks.r2r.data import connectivity_path, split_path, write_connectivity, write_r2r_split

    items = []
    for seed in seeds:
        house = generate_house(seed)
        graph, rooms = build_house_graph(house)
        write_connectivity(graph, connectivity_path(out, house.scene_id))
        rng = np.random.default_rng([seed, 2])
        for p in house_vln_paths(house, per_house, rng, path_id_start=seed * 1000, min_hops=min_hops,
                                 max_hops=max_hops, min_distance=min_distance, graph_rooms=(graph, rooms)):
            item = p.to_r2r()
            if face_path:  # start looking along the first edge: Move, then Stop near the goal succeeds
                (x0, y0, _), (x1, y1, _) = graph.position(p.path[0]), graph.position(p.path[1])
                item["heading"] = round(math.atan2(x1 - x0, y1 - y0) / (math.pi / 6)) % 12 * math.pi / 6
            items.append(item)
    write_r2r_split(items, split_path(out, "train"))
    return out


@pytest.fixture(scope="module")
def houses(tmp_path_factory) -> Path:
    """Two generated houses, one short path each (3 instructions: 6 episodes)."""
    return write_houses(tmp_path_factory.mktemp("houses"), range(2))


def graph_task(houses: Path, max_steps: int = 6):
    from navtune.evaluation import EvalTask

    return EvalTask(backend="graph", data_dir=str(houses), split="train", renderer="house", width=SIZE, height=SIZE,
                    max_steps=max_steps)


def rl_config(model_dir, task, out, **kw):
    from navtune.rl.config import RLConfig

    base = dict(model=str(model_dir), format="chat", image_size=(SIZE, SIZE), task=task, out=str(out),
                episodes_per_iteration=3, group_size=2, num_envs=3, max_iterations=2, progress=False,
                loggers=("csv",), lr=1e-3, minibatches=1, update_epochs=1)
    base.update(kw)
    return RLConfig(**base)


def collect(model_dir, task, precision="64-true", fmt="chat", iteration=0, **kw):
    """(module, rollouts, sequences) of one iteration's roll-outs, without Lightning."""
    from navtune.evaluation import load_episodes
    from navtune.rl.module import RLModule, draw_jobs
    from navtune.rl.rollout import RolloutCollector
    from navtune.rl.run import load_policy_model, resolve_start
    from navtune.rl.sequences import encode_rollout

    cfg = rl_config(model_dir, task, "", precision=precision, format=fmt, **kw)
    start = resolve_start(cfg)
    model, proc, ref = load_policy_model(cfg, start)
    module = RLModule(model, proc, cfg, start, load_episodes(task), ref)
    module.policy = module.make_policy()
    collector = RolloutCollector(module.policy, task, cfg.num_envs)
    try:
        model.eval()
        with torch.no_grad():
            batch = collector.collect(draw_jobs(module.episodes, cfg, iteration))
    finally:
        collector.close()
    return module, batch.rollouts, [encode_rollout(r, module.policy) for r in batch.rollouts]


def per_step_logp(module, seq) -> torch.Tensor:
    from navtune.rl.sequences import score_sequence

    out = score_sequence(module.model, seq, module.cfg.temperature, module.image_token_id)
    lp = out.logp.gather(-1, seq.chosen[:, None]).squeeze(-1)
    return torch.zeros(seq.num_steps, dtype=lp.dtype).index_add(0, seq.step_of_choice, lp)


def tol(dtype: torch.dtype, n: int) -> float:
    """Different summation orders (KV cache vs one forward, batched vs single rows) over n terms."""
    return 100 * n * torch.finfo(dtype).eps


# --------------------------------------------------------------------------------------------- advantages
def test_grpo_advantages_of_an_equal_return_group_are_zero():
    assert np.array_equal(L.group_advantages([0.1, 0.1, 0.1, 0.1]), np.zeros(4))  # mean(0.1 x 3) != 0.1 in floats
    assert all(np.array_equal(a, np.zeros(2)) for a in L.group_step_advantages([[0.3, 0.2], [0.3, 0.2], [0.3, 0.2]]))
    # per step: compared with the members at the same step; a member alone at a step gets 0 there
    a, b = L.group_step_advantages([[1.0, 0.5, 0.2], [0.0, 0.5]], scale=False)
    assert a == pytest.approx([0.5, 0.0, 0.0]) and b == pytest.approx([-0.5, 0.0])
    a = L.group_advantages([1.0, 0.0, 0.0, 1.0])
    assert a.sum() == pytest.approx(0.0, abs=1e-12) and a[0] > 0 > a[1]
    assert a[0] == pytest.approx(0.5 / (0.5 + L.GROUP_EPS))  # (1 - 0.5) / (std 0.5 + eps)


def test_grpo_advantages_of_rollouts(houses):
    """Through `advantages()` on real roll-out records: equal-return groups get 0 on every step."""
    from types import SimpleNamespace

    from navtune.data.rewards import discounted_returns
    from navtune.rl.module import advantages

    def ro(group, rewards):
        r = SimpleNamespace(job=SimpleNamespace(group=group), rewards=np.asarray(rewards, dtype=float),
                            num_steps=len(rewards))
        r.returns = lambda gamma, rw=r.rewards: discounted_returns(rw, gamma)
        return r

    cfg = SimpleNamespace(algo="grpo", advantage="return", gamma=0.99, group_scale="std")
    rolls = [ro(0, [0.5, -0.01]), ro(0, [0.5, -0.01]), ro(1, [1.0]), ro(1, [0.0, 0.0])]
    adv, targets = advantages(rolls, cfg)
    assert targets is None
    assert np.array_equal(adv[0], np.zeros(2)) and np.array_equal(adv[1], np.zeros(2))
    assert adv[2][0] > 0 > adv[3][0] and np.all(adv[3] == adv[3][0])


def test_gae_by_hand():
    adv, ret = L.gae([1.0, 0.0, 2.0], [0.5, 0.25, 1.0], gamma=0.9, lam=0.8)
    d2 = 2.0 - 1.0
    d1 = 0.0 + 0.9 * 1.0 - 0.25
    d0 = 1.0 + 0.9 * 0.25 - 0.5
    a2 = d2
    a1 = d1 + 0.9 * 0.8 * a2
    a0 = d0 + 0.9 * 0.8 * a1
    assert adv == pytest.approx([a0, a1, a2], abs=1e-12)
    assert ret == pytest.approx([a0 + 0.5, a1 + 0.25, a2 + 1.0], abs=1e-12)


def test_action_tokens_tree_and_restricted_distribution():
    from navtune.rl.policy import ActionTokens, restricted_logprobs

    tree = ActionTokens(("move_forward", "turn_left", "turn_right", "stop"), ((3, 30), (4, 40), (4, 41), (5,)))
    assert tree.next_tokens(()) == [3, 4, 5] and tree.next_tokens((4,)) == [40, 41] and tree.next_tokens((3,)) == [30]
    assert tree.positions("move_forward") == [(0, [3, 4, 5], 0)]  # its second token is forced
    assert tree.positions("turn_right") == [(0, [3, 4, 5], 1), (1, [40, 41], 1)]
    with pytest.raises(ValueError, match="prefix-free"):
        ActionTokens(("a", "ab"), ((1,), (1, 2)))
    head = torch.nn.Linear(4, 50, bias=False).double()
    h = torch.randn(2, 4, dtype=torch.float64)
    valid = torch.tensor([[3, 4, 5], [40, 41, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    lp = restricted_logprobs(h, head, valid, mask, temperature=2.0)
    full = head(h) / 2.0
    assert torch.allclose(lp[0], torch.log_softmax(full[0, [3, 4, 5]], -1))
    assert torch.allclose(lp[1, :2], torch.log_softmax(full[1, [40, 41]], -1)) and lp[1, 2] == float("-inf")


# --------------------------------------------------------------------------------------------- equality
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["chat", "r2r-lowlevel"])
def test_rollout_logprobs_equal_the_update_forward(tiny_model_dir, houses, fmt):
    """In float64: every sampled action's log-prob recomputed by the update's forward (one per roll-out for
    chat, one per step for r2r-lowlevel) equals what the batched KV-cache roll-out recorded."""
    # temperature 4: a random tiny model can be nearly sure of one action; the samples must vary (checked below)
    module, rollouts, seqs = collect(tiny_model_dir, graph_task(houses), fmt=fmt, temperature=4.0)
    assert len(rollouts) == 6 and all(r.num_steps >= 1 for r in rollouts)
    if fmt == "chat":
        assert all(len(s.chunks) == 1 for s in seqs)
    else:
        assert [len(s.chunks) for s in seqs] == [r.num_steps for r in rollouts]
    module.model.eval()
    gaps = []
    with torch.no_grad():
        for r, s in zip(rollouts, seqs):
            got = per_step_logp(module, s)
            want = torch.tensor([st.logp for st in r.steps], dtype=torch.float64)
            n = sum(len(c.ids) for c in s.chunks)
            assert torch.allclose(got, want, rtol=0, atol=tol(torch.float64, n)), (got - want).abs().max()
            gaps.append(float((got - want).abs().max()))
    assert max(gaps) < 1e-9
    # the samples are real choices: more than one action over the roll-outs, log-probs below 0
    assert len({st.action for r in rollouts for st in r.steps}) > 1
    assert all(st.logp <= 0 for r in rollouts for st in r.steps)


@pytest.mark.slow
@pytest.mark.gl
def test_continuous_actions_sample_the_token_tree(tiny_model_dir, tmp_path):
    """ObjectNav on the house simulator, chat format, continuous actions: turn_left / turn_right share their
    first token, so the roll-out decides them one token later; the update still recomputes the same log-probs."""
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes
    from navtune.evaluation import EvalTask
    from navtune.tasks.objectnav import write_episodes

    eps = list(generate_objectnav_episodes([3], per_house=2, max_steps=5))
    write_episodes(tmp_path / "eps.jsonl", eps)
    task = EvalTask(backend="house-objectnav", episodes=str(tmp_path / "eps.jsonl"), width=SIZE, height=SIZE)
    module, rollouts, seqs = collect(tiny_model_dir, task, episodes_per_iteration=2, group_size=2, num_envs=1)
    module.model.eval()
    turns = 0
    with torch.no_grad():
        for r, s in zip(rollouts, seqs):
            got = per_step_logp(module, s)
            want = torch.tensor([st.logp for st in r.steps], dtype=torch.float64)
            assert torch.allclose(got, want, rtol=0, atol=tol(torch.float64, len(s.chunks[0].ids)))
            turns += sum(len(st.choices) == 2 for st in r.steps)
    assert turns > 0, "no turn was sampled: the second choice point was never exercised"


# --------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def explorer_model_dir(tmp_path_factory) -> Path:
    """A tiny model with init std 0.02: its random policy is near uniform over the allowed actions (the std-0.3
    test model almost always stops at once), so a few roll-outs from one start find the goal sometimes."""
    from navtune.agents.models.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny_explorer")
    build_tiny_model(out, init_std=0.02)
    return out


@pytest.mark.slow
def test_kl_is_zero_at_iteration_0_and_return_rises(explorer_model_dir, houses, tmp_path):
    """GRPO iterations from one episode start raise the mean return of the training roll-outs (the policy
    learns which of Move / turns / Stop reach the goal from there); the first iteration's policy is the
    reference (KL 0 up to float rounding)."""
    import dataclasses

    from navtune.rl import train_rl
    from navtune.rl.module import HISTORY_FILE

    task = dataclasses.replace(graph_task(houses), limit=1)
    cfg = rl_config(explorer_model_dir, task, tmp_path / "rl", max_iterations=10, episodes_per_iteration=1,
                    group_size=8, num_envs=8, lr=1e-2, update_epochs=2, minibatches=2, kl_coef=0.01, seed=1)
    res = train_rl(cfg)
    hist = [json.loads(x) for x in (tmp_path / "rl" / HISTORY_FILE).read_text().splitlines()]
    assert [h["iteration"] for h in hist] == list(range(10))
    assert abs(hist[0]["kl"]) < tol(torch.float32, 1000)
    assert hist[-1]["kl"] > 0
    first, last = np.mean([h["return"] for h in hist[:2]]), np.mean([h["return"] for h in hist[-3:]])
    assert last > first + 1.0, [round(h["return"], 3) for h in hist]
    for k in ("sr", "entropy", "clip_frac", "env_steps_per_s", "update_s", "rollout_s", "ratio_dev0"):
        assert np.isfinite(hist[-1][k]), k
    assert hist[0]["ratio_dev0"] < 1e-4  # the update's log-probs are the roll-out's (float32 here)
    csv = list((tmp_path / "rl" / "logs").rglob("metrics.csv"))
    assert csv and "rl/return" in csv[0].read_text().splitlines()[0]
    assert res.metrics["return"] == pytest.approx(hist[-1]["return"])


@pytest.mark.slow
def test_ppo_runs_with_a_value_head(tiny_model_dir, houses, tmp_path):
    from navtune.rl import train_rl

    cfg = rl_config(tiny_model_dir, graph_task(houses), tmp_path / "ppo", algo="ppo", group_size=1,
                    episodes_per_iteration=3, max_iterations=2)
    res = train_rl(cfg)
    assert (res.final / "value_head.safetensors").is_file()
    assert np.isfinite(res.metrics["value_loss"]) and res.metrics["value_loss"] > 0


def _cli(model_dir, houses, out, *extra):
    return NAVTUNE + ["train", "rl", "--model", str(model_dir), "--format", "chat", "--image-size", f"{SIZE}x{SIZE}",
                      "--data-dir", str(houses), "--split", "train", "--renderer", "house", "--width", str(SIZE),
                      "--height", str(SIZE), "--max-steps", "6", "--episodes-per-iteration", "3", "--group-size", "2",
                      "--num-envs", "3", "--max-iterations", "4", "--lr", "1e-2", "--threads", "1", "--out", str(out),
                      *extra]


@pytest.mark.slow
def test_kill9_then_resume_gives_the_uninterrupted_weights(tiny_model_dir, houses, tmp_path):
    from safetensors.torch import load_file

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    clean = tmp_path / "clean"
    subprocess.run(_cli(tiny_model_dir, houses, clean), env=env, check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(tiny_model_dir, houses, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    target = killed / "checkpoints" / "iteration=2.ckpt"
    deadline = time.time() + 300
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    time.sleep(0.3)  # somewhere inside iteration 3
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "final").exists()
    subprocess.run(_cli(tiny_model_dir, houses, killed, "--resume", "last"), env=env, check=True, capture_output=True)
    a = load_file(str(clean / "final" / "adapter_model.safetensors"))
    b = load_file(str(killed / "final" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    hist = {}
    for line in (killed / "rl_history.jsonl").read_text().splitlines():
        h = json.loads(line)
        hist[int(h["iteration"])] = h
    clean_hist = {int(json.loads(x)["iteration"]): json.loads(x) for x in (clean / "rl_history.jsonl").read_text().splitlines()}
    assert sorted(hist) == [0, 1, 2, 3]
    for i in range(4):
        assert hist[i]["return"] == clean_hist[i]["return"], i


# --------------------------------------------------------------------------------------------- the agent
@pytest.mark.slow
def test_rl_output_is_a_self_describing_agent(tiny_model_dir, houses, tmp_path):
    """`navtune eval --agent vlm --model final` needs no format or size flag: the card says them."""
    from navtune.agents.models.card import read_card
    from navtune.evaluation import AgentSpec, EvalConfig, run_eval
    from navtune.rl import train_rl

    res = train_rl(rl_config(tiny_model_dir, graph_task(houses), tmp_path / "rl", max_iterations=1))
    card = read_card(res.final)
    assert card.format == "chat" and card.image_size == (SIZE, SIZE) and card.action_space == "graph"
    assert card.adapter and Path(card.base_model) == Path(tiny_model_dir).resolve() and card.trainer == "rl-grpo"
    spec = AgentSpec("vlm", model=str(res.final)).resolved()
    assert (spec.model, spec.adapter, spec.format, spec.image_size) == (str(Path(tiny_model_dir).resolve()),
                                                                       str(res.final), "chat", (SIZE, SIZE))
    with pytest.warns(UserWarning, match="--image-size"):
        assert AgentSpec("vlm", model=str(res.final), image_size=(28, 28)).resolved().image_size == (28, 28)
    out = run_eval(tmp_path / "eval", AgentSpec("vlm", model=str(res.final)), graph_task(houses),
                   EvalConfig(num_envs=3, progress=False, epa=False))
    assert out["summary"]["episodes"] == 6
    saved = json.loads((tmp_path / "eval" / "run.json").read_text())["agent"]
    assert saved["format"] == "chat" and saved["image_size"] == [SIZE, SIZE]


def test_config_checks_name_the_option(houses, tmp_path):
    from navtune.rl.config import RLConfig

    task = graph_task(houses)
    with pytest.raises(ValueError, match="--group-size >= 2"):
        RLConfig(model="m", task=task, group_size=1)
    with pytest.raises(ValueError, match="--algo"):
        RLConfig(model="m", task=task, algo="a2c")
    with pytest.raises(ValueError, match="episodes to roll out"):
        RLConfig(model="m")
    RLConfig(model="m", task=task, algo="ppo", group_size=1)


def test_a_folder_holding_another_run_is_refused_unless_resumed_or_overwritten(tiny_model_dir, houses, tmp_path):
    """As `navtune train sft`: one line naming the folder, exit 2, the other run's files untouched."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "rl_history.jsonl").write_text('{"iteration": 0}\n')
    res = subprocess.run(NAVTUNE + ["train", "rl", "--model", str(tiny_model_dir), "--data-dir", str(houses),
                                    "--split", "train", "--renderer", "house", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "is not empty" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and (out / "rl_history.jsonl").read_text() == '{"iteration": 0}\n'
    from navtune.rl.module import HISTORY_FILE
    from navtune.trainers.run import RUN_ENTRIES, prepare_run_folder

    prepare_run_folder(out, None, True, RUN_ENTRIES + (HISTORY_FILE,))  # what --overwrite does first
    assert not (out / "rl_history.jsonl").exists()


def test_cli_help_lists_the_rl_knobs():
    out = subprocess.run(NAVTUNE + ["train", "rl", "--help"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}).stdout
    for flag in ("--algo", "--group-size", "--max-iterations", "--kl", "--entropy", "--clip", "--temperature",
                 "--num-envs", "--data-dir", "--lora-r", "--resume"):
        assert flag in out, flag


@pytest.mark.gl
def test_frame_cache_returns_what_a_render_gives():
    from navtune.envs.house.renderer import FrameCache, HouseRenderers, house_graph

    graph = house_graph("house_0")
    cached = HouseRenderers(width=SIZE, height=SIZE, depth=False)
    fresh = HouseRenderers(width=SIZE, height=SIZE, depth=False)
    cache = FrameCache(1 << 20)
    r = cached("house_0")
    r.cache = cache
    f = fresh("house_0")
    f.cache = None
    views = [(v, h) for v in graph.ids[:3] for h in (0.0, 0.5236)]
    first = [r.render(v, h)[0] for v, h in views]
    again = [r.render(v, h)[0] for v, h in views]
    assert cache.hits == len(views) and cache.misses == len(views)
    for a, b, (v, h) in zip(first, again, views):
        assert a is b and not a.flags.writeable
        assert np.array_equal(a, f.render(v, h)[0])
    cached.close()
    fresh.close()
