"""From a model's free text to an action name, or "invalid" (counted, never an exception).

Accepts the seed-1 answer ``Action: Move`` (any case / spacing / trailing punctuation), the seed-2 JSON
object ``{"Observation": ..., "Reasoning": ..., "Action": "move_forward"}`` (also embedded in prose or a
```json fence, or with single quotes), and spaced variants (``turn left``, ``Move Forward``)."""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from navtune.core.actions import ACTION_SPACES, CONTINUOUS_ACTIONS, GRAPH_ACTIONS

INVALID = "invalid"

# normalised spelling (lowercase, single underscores) -> canonical action, per space
_ALIASES: dict[str, dict[str, str]] = {
    "graph": {a.lower(): a for a in GRAPH_ACTIONS},
    "continuous": {a: a for a in CONTINUOUS_ACTIONS} | {"forward": "move_forward", "left": "turn_left",
                                                       "right": "turn_right", "moveforward": "move_forward",
                                                       "turnleft": "turn_left", "turnright": "turn_right"},
}
_ACTION_LINE = re.compile(r"action\s*[\"']?\s*[:=]\s*[\"'(\[]?\s*([A-Za-z][A-Za-z _-]{0,30})", re.IGNORECASE)
_JSON_OBJ = re.compile(r"\{.*\}", re.DOTALL)


@dataclass
class ParseResult:
    action: str  # canonical action name, or INVALID
    valid: bool
    reason: str = ""


def _norm(word: str) -> str:
    w = re.sub(r"[\s\-]+", "_", word.strip().strip(".,;:!?\"'()[]{}`").lower())
    return re.sub(r"_+", "_", w).strip("_")


def _lookup(word: str, spaces: Sequence[str]) -> str | None:
    w = _norm(word)
    parts = w.split("_")
    # whole answer first ("move_forward", "turn left"), then its first words ("left. then ...")
    for c in (w, w.replace("_", ""), "_".join(parts[:2]), "".join(parts[:2]), parts[0]):
        for sp in spaces:
            if c in _ALIASES[sp]:
                return _ALIASES[sp][c]
    return None


def _from_json(text: str) -> str | None:
    m = _JSON_OBJ.search(text)
    if not m:
        return None
    blob = m.group(0)
    for attempt in (blob, blob.replace("'", '"')):
        try:
            obj = json.loads(attempt)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(k, str) and k.strip().lower() == "action" and isinstance(v, str):
                    return v
    return None


def parse_action(text: object, allowed: Sequence[str] | None = None, action_space: str | None = None) -> ParseResult:
    """Parse `text` to one of `allowed` (or of the action space). Never raises."""
    try:
        if not isinstance(text, str):
            return ParseResult(INVALID, False, f"not text: {type(text).__name__}")
        if action_space is not None and action_space not in ACTION_SPACES:
            return ParseResult(INVALID, False, f"unknown action space {action_space!r}")
        if action_space is not None:
            spaces: list[str] = [action_space]
        elif allowed:
            spaces = [s for s in ACTION_SPACES if any(a in ACTION_SPACES[s] for a in allowed)] or list(ACTION_SPACES)
        else:
            spaces = list(ACTION_SPACES)
        found: str | None = None
        raw = _from_json(text)
        if raw is not None:
            found = _lookup(raw, spaces)
        if found is None:
            m = _ACTION_LINE.search(text)
            if m:
                found = _lookup(m.group(1), spaces)
        if found is None and len(text.strip()) <= 40:  # a bare answer: "Move", " turn_left\n"
            found = _lookup(text, spaces)
        if found is None:
            return ParseResult(INVALID, False, "no action found")
        if allowed is not None and found not in allowed:
            return ParseResult(INVALID, False, f"{found} not allowed here")
        return ParseResult(found, True)
    except Exception as e:  # never crash an evaluation on a weird string
        return ParseResult(INVALID, False, f"parser error: {e!r}")


@dataclass
class ParseStats:
    """Counts of parsed answers, for the valid-action rate (seed 2's "valid-action %")."""

    total: int = 0
    invalid: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add(self, result: ParseResult) -> ParseResult:
        self.total += 1
        if not result.valid:
            self.invalid += 1
            self.reasons[result.reason.split(":")[0]] += 1
        return result

    @property
    def valid_rate(self) -> float:
        return 1.0 - self.invalid / self.total if self.total else 1.0
