"""Grounded answer text for training: the Observation / Reasoning around each labelled action, written from
the simulator's knowledge of the stored pose (`navtune.envs.house.describe`).

A dataset step stores the agent's pose; for generated houses (scene ``house_<seed>``) the house is rebuilt
from its seed, so the room, the objects and doorways in view, where the goal is (or which way the walkable
path goes when it is not in view) are known exactly, and the text is short, templated and true. This is what
a small model can learn the answer's format from, and it makes the answer mean something. Episodes from
other simulators have no such knowledge: asking for grounded answers on them is an error naming the episode.
"""
from __future__ import annotations

import math
from typing import Sequence

from navtune.agents.prompts.base import AnswerText
from navtune.data.format import EpisodeDataset, EpisodeRecord

ANSWERS = ("action-only", "grounded")
#: vertical field of view of the house simulator's camera (`HouseEnvConfig.vfov_deg`)
HOUSE_VFOV_DEG = 60.0


class GroundingError(ValueError):
    """Grounded answers asked for episodes whose simulator cannot describe the view."""


def dataset_hfov(ds: EpisodeDataset) -> float:
    """Horizontal field of view (radians) of the dataset's frames: the house camera's vertical FOV at the
    stored frame size (collection info `width` / `height`, else the task's)."""
    from navtune.core.geometry import horizontal_fov

    info = ds.info
    task = info.get("eval_task") or {}
    w = info.get("width") or task.get("width")
    h = info.get("height") or task.get("height")
    if not w or not h:
        raise GroundingError(f"{ds.root}/dataset_info.json: fields 'width' / 'height' are missing: the frame size "
                             "decides the field of view the grounded text describes")
    return horizontal_fov(math.radians(HOUSE_VFOV_DEG), float(w) / float(h))


def grounded_answers(ds: EpisodeDataset, ep: EpisodeRecord, labels: Sequence[str],
                     hfov: float | None = None) -> list[AnswerText]:
    """One `AnswerText` per step of `ep`: the view at the step's pose and the reasoning behind `labels[t]`."""
    from navtune.envs.house.describe import describe_view, reason_about, view_facts
    from navtune.envs.house.layout import generate_house, seed_from_scene_id

    where = f"{ds.root}: episode {ep.episode_id!r}"
    if ep.task != "objectnav" or not ep.target:
        raise GroundingError(f"{where}: grounded answers are written for ObjectNav episodes (field 'task' is "
                             f"{ep.task!r}); use answer 'action-only'")
    try:
        seed = seed_from_scene_id(ep.scene)
    except ValueError:
        raise GroundingError(f"{where}: field 'scene' is {ep.scene!r}, not a generated house: only the house "
                             "simulator can describe its views; use answer 'action-only'") from None
    house = generate_house(seed)
    hfov = dataset_hfov(ds) if hfov is None else hfov
    success = float(ep.goal.get("success_distance", 1.0))
    out = []
    for s, label in zip(ep.steps, labels):
        p = s.pose
        facts = view_facts(house, float(p["x"]), float(p["y"]), float(p["heading"]), hfov, ep.target, success)
        out.append(AnswerText(describe_view(facts), reason_about(facts, label)))
    return out
