"""VLM inference paths agree: KV-cache chat == full recompute, cached image features == plain path,
batched == one at a time, multi-token scoring == the continuation's log-prob. The model runs in float64,
so equal paths agree to float64 rounding on any CPU (tests/exactness.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from exactness import assert_close
from navtune.envs.protocol import Observation, Pose

GRAPH = ("Left", "Right", "Move", "Stop")
CONT = ("move_forward", "turn_left", "turn_right", "stop")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from navtune.agents.models.loading import load_model

    # the tiny model's ops are microseconds: one thread avoids thread-pool thrash on a loaded 2-core CI box
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lm = load_model(tiny_model_dir, dtype="float64")  # equal paths compared in float64 (tests/exactness.py)
    yield lm.model, lm.processor
    torch.set_num_threads(threads)


def frames(n, seed=0, size=(64, 48)):
    rng = np.random.default_rng(seed)
    return [(rng.random((size[1], size[0], 3)) * 255).astype(np.uint8) for _ in range(n)]


def obs_stream(n, seed=0, space=GRAPH, instruction="walk past the sofa and stop at the door"):
    fr = frames(n, seed)
    out = []
    for t in range(n):
        allowed = space if t % 4 != 3 else tuple(a for a in space if a not in ("Move", "move_forward"))
        out.append(Observation(fr[t], None, Pose(0.0, 0.0), allowed, instruction=instruction, step=t,
                               distance_traveled=0.731 * t))
    return out


def policy(tiny, **kw):
    from navtune.agents.vlm import VLMPolicy

    model, proc = tiny
    kw.setdefault("system_prompt", "You navigate.")
    return VLMPolicy(model, proc, image_size=None, keep_logits=True, **kw)


def run(pol, stream, slot=0):
    pol.reset(slot)
    acts, logits = [], []
    for o in stream:
        a = pol.act({slot: o})[slot]
        assert a in o.allowed_actions
        acts.append(a)
        logits.append(pol.last_logits[slot])
    return acts, logits


@pytest.mark.slow
@pytest.mark.exact
def test_chat_kv_cache_equals_full_recompute_30_steps(tiny):
    stream = obs_stream(30, seed=3)
    kv_acts, kv_logits = run(policy(tiny, format="chat", mode="kv"), stream)
    full_acts, full_logits = run(policy(tiny, format="chat", mode="full"), stream)
    assert kv_acts == full_acts
    assert kv_logits[0].dtype == torch.float64
    for t, (a, b) in enumerate(zip(kv_logits, full_logits)):
        assert_close(a, b, what=f"step {t}")
    assert len(set(kv_acts)) > 1  # the test model's choices depend on the input


@pytest.mark.exact
def test_r2r_cached_features_equal_plain_path(tiny):
    stream = obs_stream(10, seed=5)
    c_acts, c_logits = run(policy(tiny, format="r2r-lowlevel", mode="cached"), stream)
    f_acts, f_logits = run(policy(tiny, format="r2r-lowlevel", mode="full"), stream)
    assert c_acts == f_acts
    for t, (a, b) in enumerate(zip(c_logits, f_logits)):
        assert_close(a, b, what=f"step {t}")


def test_seed_tokens_equal_the_seed_collate(tiny):
    """processor(text=prompt, images) + tokenizer('<|im_start|>assistant\\nAction: ') as the seed's collate."""
    from PIL import Image

    from navtune.agents.prompts import StepInput, get_format
    from navtune.agents.vlm import VLMRunner

    model, proc = tiny
    fr = [Image.fromarray(f) for f in frames(3, seed=9, size=(112, 84))]
    step = StepInput("go up the stairs", 2, 3.5, ["Left", "Move"], GRAPH, image=fr[2], previous_images=fr[:2])
    rendered = get_format("r2r-lowlevel").render_step(step, "SYS")
    seed = proc(text=rendered.segments[0].text, images=[fr], return_tensors="pt")
    label_start = proc.tokenizer("<|im_start|>assistant\nAction: ", return_tensors="pt").input_ids
    expected = torch.cat([seed["input_ids"], label_start], dim=1)[0].tolist()
    runner = VLMRunner(model, proc)
    ids, _ = runner.tokenize(rendered, list(runner.preprocess(fr)["image_grid_thw"]))
    assert ids == expected


@pytest.mark.exact
@pytest.mark.parametrize("fmt,mode", [("chat", "kv"), ("r2r-lowlevel", "cached")])
def test_batched_equals_sequential(tiny, fmt, mode):
    """4 slots of different lengths in one act() call (slot 2 restarts mid-way) == each run alone."""
    streams = {s: obs_stream(n, seed=10 + s) for s, n in zip(range(4), (9, 5, 4, 7))}
    second = obs_stream(4, seed=99, instruction="find the kitchen")  # slot 2's next episode
    seq = {s: run(policy(tiny, format=fmt, mode=mode), streams[s]) for s in streams}
    seq2 = run(policy(tiny, format=fmt, mode=mode), second)

    pol = policy(tiny, format=fmt, mode=mode)
    pol.reset(range(4))
    got = {s: ([], []) for s in range(4)}
    got2: tuple[list, list] = ([], [])
    t2 = None
    for t in range(9):
        batch = {s: streams[s][t] for s in range(4) if t < len(streams[s])}
        if t2 is not None and t2 < len(second):
            batch[2] = second[t2]
        out = pol.act(batch)
        for s in batch:
            target = got2 if (s == 2 and t2 is not None) else got[s]
            target[0].append(out[s])
            target[1].append(pol.last_logits[s])
        if t2 is not None:
            t2 += 1
        if t == len(streams[2]) - 1:  # slot 2's episode ends: release and start another in the same slot
            pol.release(2)
            pol.reset(2)
            t2 = 0
    for s in range(4):
        assert got[s][0] == seq[s][0], s
        assert_close(got[s][1], seq[s][1], what=f"slot {s}")
    assert got2[0] == seq2[0][: len(got2[0])] and len(got2[0]) == 4


def test_list_observations_give_list_actions(tiny):
    pol = policy(tiny, format="chat")
    pol.reset([0, 1])
    out = pol.act(obs_stream(2))
    assert isinstance(out, list) and len(out) == 2 and pol.last_outputs[1].scores


@pytest.mark.exact
def test_objectnav_json_scores_whole_continuation(tiny):
    """Multi-token actions (move_forward = 2 tokens) score log p(all tokens | prompt + JSON head)."""
    from navtune.agents.prompts import get_format
    from navtune.agents.vlm import VLMRunner

    model, proc = tiny
    pol = policy(tiny, format="objectnav-json", mode="cached")
    o = obs_stream(1, seed=4, space=CONT)[0]
    pol.reset(0)
    pol.act({0: o})
    scores = pol.last_outputs[0].scores
    assert set(scores) == set(CONT)
    runner = VLMRunner(model, proc)
    fmt = get_format("objectnav-json")
    step = pol._step_input(type(pol.slots[0])(), o)
    head = fmt.render_step(step, "You navigate.") + fmt.render_target("stop")
    first_target = next(i for i, seg in enumerate(head.segments) if seg.target)
    head.segments = head.segments[:first_target]  # prompt + JSON head (segment by segment), up to the action value
    grids = list(runner.preprocess([o.rgb])["image_grid_thw"])
    prompt_ids, _ = runner.tokenize(head, grids)
    for a in CONT:
        cand = runner.tokenize_text(a)
        ids = prompt_ids + cand
        t = torch.tensor([ids])
        pre = runner.preprocess([o.rgb])
        with torch.no_grad():
            logits = model(input_ids=t, pixel_values=pre["pixel_values"], image_grid_thw=pre["image_grid_thw"],
                           mm_token_type_ids=(t == runner.image_token_id).int()).logits[0]
        lp = torch.log_softmax(logits, -1)
        expected = sum(float(lp[len(prompt_ids) - 1 + j, cand[j]]) for j in range(len(cand)))
        assert_close(scores[a], expected, what=a)
    assert pol.last_outputs[0].action == max(scores, key=scores.get)


def test_move_excluded_when_not_possible(tiny):
    pol = policy(tiny, format="r2r-lowlevel")
    pol.reset(0)
    o = obs_stream(4)[3]
    assert "Move" not in o.allowed_actions
    pol.act({0: o})
    assert set(pol.last_outputs[0].scores) == {"Left", "Right", "Stop"}


def test_generate_mode_counts_invalid_and_falls_back(tiny):
    from navtune.agents.parsing import parse_action

    pol = policy(tiny, format="chat", decode="generate", max_new_tokens=4)
    again = policy(tiny, format="chat", decode="generate", max_new_tokens=4)
    pol.reset(0, episode_id="ep")
    again.reset(5, episode_id="ep")
    outs = []
    for o in obs_stream(4, seed=2):
        a = pol.act({0: o})[0]
        assert again.act({5: o})[5] == a  # the fallback draw depends on (episode, step), not on the slot
        out = pol.last_outputs[0]
        outs.append(out)
        assert a in o.allowed_actions and out.text is not None
        parsed = parse_action("Action: " + out.text, o.allowed_actions, "graph")
        assert out.valid == parsed.valid
        if parsed.valid:
            assert a == parsed.action
    assert pol.parse_stats.total == 4
    assert pol.parse_stats.invalid == sum(not o.valid for o in outs)


@pytest.mark.exact
def test_generate_loop_continues_the_cache_exactly(tiny):
    """The greedy decode loop over the KV cache yields the same tokens as argmax over full recomputes."""
    from navtune.agents.prompts import StepInput, get_format
    from navtune.agents.vlm import Chunk, VLMRunner

    model, proc = tiny
    runner = VLMRunner(model, proc)
    fr = frames(2, seed=6)
    fmt = get_format("chat")
    r = fmt.render_delta(StepInput("go", 0, 0, [], GRAPH, image=fr[0]), "S", None)
    r = r + fmt.render_delta(StepInput("go", 1, 0.5, ["Left"], GRAPH, image=fr[1]), "S", "Left")
    feats = runner.encode_images(fr)
    ids, _ = runner.tokenize(r, [f.grid_thw for f in feats])
    out = runner.forward_chunks([Chunk(ids, feats)], [None], [0])[0]
    toks = []
    for _ in range(5):
        tok = int(out.last_logits.argmax())
        toks.append(tok)
        out = runner.forward_chunks([Chunk([tok])], [out.kv], [out.offset])[0]
    full_ids = list(ids)
    pre = runner.preprocess(fr)
    ref = []
    for _ in range(5):
        t = torch.tensor([full_ids])
        with torch.no_grad():
            lg = model(input_ids=t, pixel_values=pre["pixel_values"], image_grid_thw=pre["image_grid_thw"],
                       mm_token_type_ids=(t == runner.image_token_id).int()).logits[0, -1]
        ref.append(int(lg.argmax()))
        full_ids.append(ref[-1])
    assert toks == ref


@pytest.mark.exact
def test_set_executed_action_rewrites_history(tiny):
    pol = policy(tiny, format="chat", mode="kv")
    ref = policy(tiny, format="chat", mode="full")
    stream = obs_stream(3, seed=8)
    for p in (pol, ref):
        p.reset(0)
    for o in stream:
        pol.act({0: o})
        ref.act({0: o})
        for p in (pol, ref):
            p.set_executed_action(0, "Stop")
    assert pol.slots[0].actions == ["Stop"] * 3
    assert_close(pol.last_logits[0], ref.last_logits[0])


def test_vlm_policy_errors(tiny):
    from navtune.agents.vlm import VLMPolicy

    model, proc = tiny
    with pytest.raises(ValueError, match="kv"):
        VLMPolicy(model, proc, format="r2r-lowlevel", mode="kv")
    with pytest.raises(ValueError, match="decode"):
        VLMPolicy(model, proc, decode="beam")
    pol = policy(tiny, format="chat")
    pol.reset(0)
    with pytest.raises(ValueError, match="rgb"):
        pol.act({0: Observation(None, None, Pose(0, 0), GRAPH, instruction="x")})


def test_chunk_positions_continue_the_full_sequence(tiny):
    """Rope positions of chunk B computed alone + the running offset == B's part of the whole sequence's
    get_rope_index (what makes KV-cache continuation exact across images)."""
    from navtune.agents.prompts import StepInput, get_format
    from navtune.agents.vlm import VLMRunner

    model, proc = tiny
    runner = VLMRunner(model, proc)
    fr = frames(3, seed=12, size=(112, 84))
    fmt = get_format("chat")
    deltas = [fmt.render_delta(StepInput("go", t, 0.5 * t, ["Left"] * t, GRAPH, image=fr[t]), "S", "Left" if t else None)
              for t in range(3)]
    grids = list(runner.preprocess(fr)["image_grid_thw"])
    chunks = [runner.tokenize(d, [g])[0] for d, g in zip(deltas, grids)]
    full = runner.positions(sum(chunks, []), grids, 0)
    offset, parts = 0, []
    for ids, g in zip(chunks, grids):
        p = runner.positions(ids, [g], offset)
        parts.append(p)
        offset = int(p.max()) + 1
    assert torch.equal(torch.cat(parts, dim=1), full)
    assert not torch.equal(full[0], full[1])  # really 3-D (image tokens), not plain 1-D positions


def test_invalid_answers_fall_back_without_bias(tiny):
    """An untrained model's free text never parses; the fallback is an unbiased draw among the allowed actions
    (issue 18: the first-token fallback tied turn_left and turn_right on the shared token `turn` and took
    turn_left every time), counted as invalid, and the same for the same (episode, step)."""
    pol = policy(tiny, format="objectnav-json", decode="generate", max_new_tokens=2)
    stream = obs_stream(40, seed=3, space=CONT, instruction="find a chair")
    picks = []
    for ep in range(3):
        pol.reset(0, episode_id=f"ep{ep}")
        for o in stream:
            picks.append(pol.act({0: o})[0])
            assert not pol.last_outputs[0].valid
    assert pol.parse_stats.invalid == pol.parse_stats.total == 120
    counts = {a: picks.count(a) for a in CONT}
    assert all(c >= 15 for c in counts.values()), counts  # uniform over 4 (3 when move is not allowed): ~30 each
    pol.reset(0, episode_id="ep1")
    assert [pol.act({0: o})[0] for o in stream] == picks[40:80]


def test_constrained_decoding_forces_the_skeleton_and_allowed_actions(tiny):
    """Constrained decoding writes the format's JSON skeleton, free Observation / Reasoning strings and an
    action among the allowed ones, so every answer parses; the action is the best whole continuation."""
    import json

    pol = policy(tiny, format="objectnav-json", decode="constrained", max_new_tokens=6)
    pol.reset(0, episode_id="e")
    for o in obs_stream(8, seed=5, space=CONT, instruction="find a chair"):
        a = pol.act({0: o})[0]
        out = pol.last_outputs[0]
        assert out.valid and a in o.allowed_actions and a == max(out.scores, key=out.scores.get)
        assert set(out.scores) == set(o.allowed_actions)
        obj = json.loads(out.text + '"}')
        assert set(obj) == {"Observation", "Reasoning", "Action"} and obj["Action"] == a
        assert '"' not in obj["Observation"] + obj["Reasoning"]
    assert pol.parse_stats.invalid == 0 and pol.parse_stats.total == 8


def test_depth_input_is_a_second_image(tiny):
    """With depth on (objectnav-json), each step shows the RGB frame and the depth frame as a colour map; the
    depth changes the decision inputs, a format that shows no depth refuses it, and a missing depth is an error."""
    from navtune.agents.depth import depth_image

    d = np.full((48, 64), 1.5, np.float32)
    d[:, :32] = 4.0
    img = depth_image(d)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert not np.array_equal(img[0, 0], img[0, 40])  # near and far differ
    assert np.array_equal(depth_image(np.full((2, 2), np.inf)), depth_image(np.full((2, 2), 99.0)))
    pol = policy(tiny, format="objectnav-json", decode="score", depth=True)
    obs = obs_stream(2, seed=7, space=CONT, instruction="find a chair")
    near = [Observation(o.rgb, np.full((48, 64), 0.5, np.float32), o.pose, o.allowed_actions, o.instruction, o.step)
            for o in obs]
    far = [Observation(o.rgb, np.full((48, 64), 4.5, np.float32), o.pose, o.allowed_actions, o.instruction, o.step)
           for o in obs]
    pol.reset(0)
    pol.act({0: near[0]})
    assert len(pol.slots[0].features) == 2  # the RGB frame and the depth frame
    s_near = pol.last_outputs[0].scores
    pol.reset(0)
    pol.act({0: far[0]})
    assert pol.last_outputs[0].scores != s_near
    with pytest.raises(ValueError, match="has none"):
        pol.reset(1)
        pol.act({1: obs[0]})
    with pytest.raises(ValueError, match="shows no depth"):
        policy(tiny, format="chat", depth=True)
