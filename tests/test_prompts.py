"""Prompt formats: the seed-1 text byte for byte, chat's append-only property, targets, the CLI."""
from __future__ import annotations

import json

import pytest

from navtune.agents.prompts import IMAGE_PLACEHOLDER, StepInput, get_format, load_system_prompt, render_chat
from navtune.agents.prompts.r2r_lowlevel import seed_messages

IMG = IMAGE_PLACEHOLDER
INSTR = "Turn around and keep walking on the hallway across the first doorway and wait at the top of some stairs. "


def seed_expected(system, instruction, step, distance, prev_actions, n_prev, move_possible):
    """The model card's format_prompt output written out by hand (typos included) + the collate's prefix."""
    prev = IMG * n_prev if n_prev else "[]"
    acts = "['Left', 'Right', 'Move', 'Stop']" if move_possible else "['Left', 'Right', 'Stop']"
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
        f"Route Instruction: {instruction}\nCurrent Step: {step}\nCummulative Distance Traveled: {distance}\n"
        f"Images from Previous Steps: {prev}\nActions performed at Previous Steps: {prev_actions}\nCurrent image:{IMG}\n"
        f"Possible actions: {acts}\nNow predict the next action based on the input you have recived. "
        "Answer on the format: Action: (an the action you choose)<|im_end|>\n<|im_start|>assistant\nAction: "
    )


CASES = [
    # (step, distance, previous actions, n previous images, move possible)
    (0, 0, [], 0, True),
    (2, 8.223, ["Left", "Move"], 2, True),
    (3, 4.5, ["Right", "Right", "Move"], 3, False),
    (1, 0.0, ["Stop"], 1, False),
]


@pytest.mark.parametrize("step,distance,prev,n_prev,move", CASES)
def test_r2r_lowlevel_text_is_the_seed_text(step, distance, prev, n_prev, move):
    fmt = get_format("r2r-lowlevel")
    allowed = ("Left", "Right", "Move", "Stop") if move else ("Left", "Right", "Stop")
    s = StepInput(INSTR, step, distance, prev, allowed, num_previous_images=n_prev)
    system = "You are a navigation agent.\nLine two."
    got = fmt.render_step(s, system).text
    assert got == seed_expected(system, INSTR, step, distance, str(prev), n_prev, move)
    # the typos and the empty-history marker, explicitly
    assert "Cummulative Distance Traveled" in got and "recived" in got and "(an the action you choose)" in got
    assert ("Images from Previous Steps: []\n" in got) == (n_prev == 0)
    assert got.endswith("<|im_end|>\n<|im_start|>assistant\nAction: ")
    assert got.count(IMG) == n_prev + 1


def test_seed_text_matches_transformers_apply_chat_template():
    """Our jinja rendering == the processor's apply_chat_template (tokenize=False), as the seed calls it."""
    from navtune.agents.models.tiny import build_tiny_processor

    proc = build_tiny_processor()
    for step, distance, prev, n_prev, move in CASES:
        allowed = ("Left", "Right", "Move", "Stop") if move else ("Left", "Right", "Stop")
        s = StepInput(INSTR, step, distance, prev, allowed, num_previous_images=n_prev)
        msgs = seed_messages(s, "SYS")
        hf = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False)
        assert hf == render_chat(msgs)
        assert get_format("r2r-lowlevel").render_step(s, "SYS").text == hf + "<|im_start|>assistant\nAction: "


def test_r2r_target_is_the_action_word_alone():
    fmt = get_format("r2r-lowlevel")
    s = StepInput("go", 0, 0, [], ("Left", "Right", "Stop"), num_previous_images=0)
    r = fmt.render_step(s, "S") + fmt.render_target("Left")
    (a, b, act), = r.target_char_spans()
    assert r.text[a:b] == "Left" and act == "Left" and r.text[:a].endswith("Action: ")
    assert [c.action for c in fmt.candidates(("Left", "Right", "Stop"))] == ["Left", "Right", "Stop"]


def _episode(n, space="graph"):
    acts = ["Left", "Move", "Right", "Stop"] if space == "graph" else ["turn_left", "move_forward", "turn_right", "stop"]
    steps = [StepInput("walk to the sofa", t, 0.75 * t, [acts[i % 3] for i in range(t)], tuple(acts),
                       image=f"img{t}") for t in range(n)]
    return steps, [acts[t % 3] if t < n - 1 else acts[3] for t in range(n)]


@pytest.mark.parametrize("space", ["graph", "continuous"])
def test_chat_is_append_only(space):
    fmt = get_format("chat", action_space=space)
    steps, actions = _episode(6, space)
    prefix = ""
    hist = None
    for t, s in enumerate(steps):
        delta = fmt.render_delta(s, "SYS", actions[t - 1] if t else None)
        hist = delta if hist is None else hist + delta
        assert hist.text.startswith(prefix)  # nothing rendered before changes
        prefix = hist.text
        assert hist.text.endswith("<|im_start|>assistant\nAction: ")
        assert hist.images == [f"img{i}" for i in range(t + 1)]
        assert hist.text.count(IMG) == t + 1
    full = fmt.render_episode(steps, actions, "SYS")[0]
    assert full.text.startswith(hist.text)
    spans = full.target_char_spans()
    assert [full.text[a:b] for a, b, _ in spans] == actions
    assert full.text.count("<|im_start|>system") == 1 and full.text.count("Route Instruction") == 1


def test_chat_render_step_rebuilds_history_from_a_step():
    fmt = get_format("chat")
    s = StepInput("go", 2, 1.5, ["Left", "Move"], ("Left", "Right", "Move", "Stop"), num_previous_images=2)
    text = fmt.render_step(s, "SYS").text
    assert text.count(IMG) == 3 and "Action: Left<|im_end|>" in text and "Action: Move<|im_end|>" in text
    with pytest.raises(ValueError, match="previous actions"):
        fmt.render_step(StepInput("go", 2, 0, ["Left"], ("Left",), num_previous_images=2), "S")


def test_objectnav_json_target_and_prefix():
    fmt = get_format("objectnav-json")
    s = StepInput("find a chair", 3, 1.25, ["turn_left"], ("turn_left", "turn_right", "stop"), image="x")
    r = fmt.render_step(s, "SYS") + fmt.render_target("stop", observation='a "red" chair', reasoning="it is close")
    answer = r.text.split("<|im_start|>assistant\n")[1]
    assert answer.endswith("<|im_end|>")  # the answer ends the turn: free generation stops there
    obj = json.loads(answer[: -len("<|im_end|>")])
    assert obj == {"Observation": 'a "red" chair', "Reasoning": "it is close", "Action": "stop"}
    (a, b, act), = r.target_char_spans()
    assert r.text[a:b] == "stop" == act
    assert "move_forward" not in fmt.user_text(s).split("Allowed actions:")[1].split("\n")[0]
    assert [c.action for c in fmt.candidates(("move_forward", "stop"))] == ["move_forward", "stop"]


def test_unknown_format_lists_known():
    with pytest.raises(KeyError, match="chat"):
        get_format("nope")


def test_default_system_prompt_and_model_folder(tmp_path):
    assert "Move" in load_system_prompt()
    (tmp_path / "system_prompt.txt").write_text("FROM MODEL")
    assert load_system_prompt(model_dir=tmp_path) == "FROM MODEL"
    assert load_system_prompt(tmp_path / "system_prompt.txt") == "FROM MODEL"
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_system_prompt(tmp_path / "missing.txt")


def test_cli_prompt_show(tmp_path):
    from typer.testing import CliRunner

    from navtune.cli import app

    case = {"instruction": INSTR, "step": 2, "distance": 8.223, "previous_actions": ["Left", "Move"],
            "move_possible": True, "num_previous_images": 2, "system_prompt": "SYS"}
    p = tmp_path / "case.json"
    p.write_text(json.dumps(case))
    res = CliRunner().invoke(app, ["prompt", "show", "--format", "r2r-lowlevel", "--case", str(p)])
    assert res.exit_code == 0, res.output
    assert res.output == seed_expected("SYS", INSTR, 2, 8.223, "['Left', 'Move']", 2, True) + "\n"
    for fmt in ("chat", "objectnav-json"):
        res = CliRunner().invoke(app, ["prompt", "show", "--format", fmt, "--case", str(p)])
        assert res.exit_code == 0 and IMG in res.output
    del case["distance"]
    p.write_text(json.dumps(case))
    res = CliRunner().invoke(app, ["prompt", "show", "--format", "r2r-lowlevel", "--case", str(p)])
    assert res.exit_code != 0 and "distance" in res.output and "case.json" in res.output
