"""Action parsing: seed formats and variants, never a crash (fuzzed), invalid answers counted."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from navtune.agents.parsing import INVALID, ParseStats, parse_action
from navtune.core.actions import CONTINUOUS_ACTIONS, GRAPH_ACTIONS


@pytest.mark.parametrize("text,expected", [
    ("Action: Move", "Move"),
    ("action:move", "Move"),
    ("  ACTION :  left.", "Left"),
    ("Action: (Right)", "Right"),
    ("Stop", "Stop"),
    ("Action: Stop<|im_end|>", "Stop"),
    ('{"Observation": "a door", "Reasoning": "go", "Action": "move_forward"}', "move_forward"),
    ("Sure! ```json\n{\"Action\": \"turn_left\"}\n```", "turn_left"),
    ("{'Observation': 'x', 'Action': 'Turn Right'}", "turn_right"),
    ("Action: move forward", "move_forward"),
])
def test_parse_variants(text, expected):
    r = parse_action(text)
    assert r.valid and r.action == expected


def test_action_space_and_allowed():
    assert parse_action("Move Forward", action_space="graph").action == "Move"
    assert parse_action("Action: Move", allowed=("Left", "Right", "Stop")) .action == INVALID
    r = parse_action('{"Action": "fly"}', action_space="continuous")
    assert not r.valid and r.action == INVALID
    assert not parse_action("I think the answer is unclear and long " * 3).valid
    assert not parse_action(None).valid and not parse_action(b"Move").valid
    assert not parse_action("Move", action_space="teleport").valid


def test_stats_count_invalid():
    stats = ParseStats()
    for t in ["Action: Left", "garbage", '{"Action": "stop"}', ""]:
        stats.add(parse_action(t))
    assert (stats.total, stats.invalid) == (4, 2)
    assert stats.valid_rate == 0.5


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from([None, "graph", "continuous"]),
       st.one_of(st.none(), st.lists(st.sampled_from(GRAPH_ACTIONS + CONTINUOUS_ACTIONS), max_size=4)))
def test_fuzz_never_crashes(text, space, allowed):
    r = parse_action(text, allowed=allowed, action_space=space)
    assert isinstance(r.valid, bool)
    if r.valid:
        assert r.action in GRAPH_ACTIONS + CONTINUOUS_ACTIONS
        assert allowed is None or r.action in allowed
    else:
        assert r.action == INVALID


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(GRAPH_ACTIONS + CONTINUOUS_ACTIONS), st.sampled_from(["", " ", "  ", "\n", "\t"]),
       st.sampled_from(["", ".", "\n", " ", "<|im_end|>"]), st.sampled_from(["lower", "upper", "title", "same"]),
       st.booleans())
def test_fuzz_decorated_actions_roundtrip(action, lead, trail, case, as_json):
    word = {"lower": action.lower(), "upper": action.upper(), "title": action.title(), "same": action}[case]
    text = json.dumps({"Observation": "o", "Reasoning": "r", "Action": word}) if as_json else f"{lead}Action:{lead}{word}{trail}"
    space = "graph" if action in GRAPH_ACTIONS else "continuous"
    r = parse_action(text, action_space=space)
    assert r.valid and r.action == action
