"""The two action spaces navtune speaks, named in one place.

Seed 1 (R2R low-level) uses capitalised words on a navigation graph; seed 2 (ObjectNav) uses
Habitat's snake_case continuous actions. Prompt formats, parsers, envs and metrics all refer to these.
"""
from __future__ import annotations

LEFT, RIGHT, MOVE, STOP = "Left", "Right", "Move", "Stop"
GRAPH_ACTIONS: tuple[str, ...] = (LEFT, RIGHT, MOVE, STOP)

MOVE_FORWARD, TURN_LEFT, TURN_RIGHT, STOP_CONT = "move_forward", "turn_left", "turn_right", "stop"
CONTINUOUS_ACTIONS: tuple[str, ...] = (MOVE_FORWARD, TURN_LEFT, TURN_RIGHT, STOP_CONT)

ACTION_SPACES: dict[str, tuple[str, ...]] = {"graph": GRAPH_ACTIONS, "continuous": CONTINUOUS_ACTIONS}

#: Actions that end an episode, in either space.
STOP_ACTIONS = frozenset({STOP, STOP_CONT})
#: Turn actions per space (used by oscillation detection), as (left, right).
TURNS = {"graph": (LEFT, RIGHT), "continuous": (TURN_LEFT, TURN_RIGHT)}
#: The action that moves the agent, per space.
FORWARD = {"graph": MOVE, "continuous": MOVE_FORWARD}


def action_space_of(action: str) -> str:
    """Name of the action space an action belongs to ('graph' or 'continuous')."""
    for name, actions in ACTION_SPACES.items():
        if action in actions:
            return name
    raise ValueError(f"unknown action {action!r}; known: {GRAPH_ACTIONS + CONTINUOUS_ACTIONS}")
