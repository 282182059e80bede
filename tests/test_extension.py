"""Extending navtune costs one file: a prompt format, a backend and a metric are each registered by one plugin
module (written here, inside the test) and used through the ordinary command line (`--plugin MODULE`):
collect -> train -> evaluate -> report. These are the examples of docs/ARCHITECTURE.md."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from navtune.cli import app
from navtune.core.io import read_jsonl

runner = CliRunner()
FAST_TRAIN = ["--image-size", "56x56", "--quiet", "--accelerator", "cpu", "--max-steps", "2", "--lr", "1e-3"]

# ------------------------------------------------------------------------------------------- the plugins
FORMAT_PLUGIN = '''
"""A prompt format in one file: one frame, the instruction and the allowed actions; the answer is the
bare action word (the default parse rule and candidates of BaseFormat)."""
from navtune.agents.prompts.base import (ASSISTANT_PREFIX, IMAGE_PLACEHOLDER, PROMPT_FORMATS, BaseFormat,
                                         Rendered, Segment)
from navtune.core.actions import ACTION_SPACES


@PROMPT_FORMATS.register("terse")
class TerseFormat(BaseFormat):
    name = "terse"
    action_spaces = ("graph", "continuous")

    def render_step(self, step, system_prompt):
        allowed = " ".join(a for a in ACTION_SPACES[self.action_space] if a in step.allowed_actions)
        text = (f"<|im_start|>system\\n{system_prompt}<|im_end|>\\n<|im_start|>user\\n{step.instruction}\\n"
                f"{IMAGE_PLACEHOLDER}\\nActions: {allowed}<|im_end|>\\n" + ASSISTANT_PREFIX)
        return Rendered([Segment(text)], [step.image] if step.image is not None else [])

    def render_target(self, action, **extra):
        return Rendered([Segment(action, target=True, action=action), Segment("<|im_end|>")])
'''

BACKEND_PLUGIN = '''
"""A backend in one file: a 5x5 grid world (continuous action space: move_forward / turn_left / turn_right /
stop, 90 degree turns), its episode file, its task, its measure and its default step budget."""
import json
import math
from dataclasses import dataclass

import numpy as np

from navtune.core.actions import CONTINUOUS_ACTIONS, MOVE_FORWARD, STOP_CONT, TURN_LEFT, TURN_RIGHT
from navtune.data.format import EpisodeMeta
from navtune.envs.protocol import Observation, Pose, StepResult, check_expert, check_step
from navtune.evaluation import EvalEpisode, register_backend, register_measure, register_task

DIRS = ((0, 1), (1, 0), (0, -1), (-1, 0))  # heading index k: 90k degrees, clockwise from +y


@dataclass(frozen=True)
class GridEpisode:
    episode_id: str
    start: tuple
    heading: int
    goal: tuple
    size: int = 5
    max_steps: int = 24

    @property
    def instruction(self):
        return f"go to the green cell {self.goal[0]},{self.goal[1]}"


class GridEnv:
    action_space = CONTINUOUS_ACTIONS

    def __init__(self, task):
        self.cell = max(2, task.width // 5)
        self.episode, self.done = None, False

    def reset(self, episode):
        self.episode, self.pos, self.h = episode, tuple(episode.start), episode.heading
        self.steps, self.traveled, self.done = 0, 0.0, False
        return self._observe()

    def _observe(self):
        c, (gx, gy), (x, y) = self.cell, self.episode.goal, self.pos
        img = np.full((5 * c, 5 * c, 3), 40, np.uint8)
        img[(4 - gy) * c:(5 - gy) * c, gx * c:(gx + 1) * c] = (0, 200, 0)
        img[(4 - y) * c:(5 - y) * c, x * c:(x + 1) * c] = (200, 30 * self.h, 0)
        return Observation(img, None, Pose(float(x), float(y), 0.0, self.h * math.pi / 2), CONTINUOUS_ACTIONS,
                           self.episode.instruction, self.steps, self.traveled,
                           {"distance_to_goal": float(abs(gx - x) + abs(gy - y))})

    def step(self, action):
        check_step(self, action, CONTINUOUS_ACTIONS)
        self.steps += 1
        collided = False
        if action == MOVE_FORWARD:
            dx, dy = DIRS[self.h]
            nx, ny = self.pos[0] + dx, self.pos[1] + dy
            if 0 <= nx < self.episode.size and 0 <= ny < self.episode.size:
                self.pos, self.traveled = (nx, ny), self.traveled + 1.0
            else:
                collided = True
        elif action in (TURN_LEFT, TURN_RIGHT):
            self.h = (self.h + (1 if action == TURN_RIGHT else -1)) % 4
        self.done = action == STOP_CONT
        return StepResult(self._observe(), self.done, collided, {"stopped": self.done})

    def expert_action(self):
        check_expert(self)
        dx, dy = self.episode.goal[0] - self.pos[0], self.episode.goal[1] - self.pos[1]
        if dx == dy == 0:
            return STOP_CONT
        want = [k for k, (ux, uy) in enumerate(DIRS) if ux * dx > 0 or uy * dy > 0]
        if self.h in want:
            return MOVE_FORWARD
        return TURN_RIGHT if (want[0] - self.h) % 4 in (1, 2) else TURN_LEFT

    def close(self):
        pass


def load_grid_episodes(task):
    rows = json.loads(open(task.episodes).read())
    eps = [GridEpisode(r["id"], tuple(r["start"]), r["heading"], tuple(r["goal"])) for r in rows]
    return [EvalEpisode(e.episode_id, "grid5", k, e, e.instruction) for k, e in enumerate(eps)]


def dataset_meta(task, ep, source):
    return EpisodeMeta(ep.episode_id, "gridnav", "continuous", ep.scene, instruction=ep.instruction,
                       success_radius=0.5, order=ep.order, source=source)


def needs_episode_file(task):
    if not task.episodes:
        raise ValueError("backend 'gridworld' needs --episodes (a grid episode file)")


register_task("gridnav", title="Grid navigation", headline=("sr", "epa"),
              columns=(("SR %", "sr", 100), ("dist. m", "final_distance", 1), ("EPA %", "epa", 100),
                       ("steps", "steps", 1)))


@register_measure("grid", keys=("sr", "final_distance", "steps"))
def grid_metrics(ctx):
    d = ctx.trace.geodesics[-1]
    return {"sr": float(ctx.trace.stopped and d == 0), "final_distance": d, "steps": float(ctx.trace.steps)}


register_backend("gridworld", entry_point=GridEnv, episodes=load_grid_episodes, task="gridnav",
                 action_space="continuous", metrics=("grid",), max_episode_steps=lambda ep: ep.max_steps,
                 validate=needs_episode_file, dataset_meta=dataset_meta)
'''

METRIC_PLUGIN = '''
"""A metric in one file: how many turns the agent made (a measure over the harness's trace)."""
from navtune.core.actions import TURNS
from navtune.evaluation import register_measure

TURN_ACTIONS = {a for pair in TURNS.values() for a in pair}


@register_measure("turns", keys=("turns",))
def turns(ctx):
    return {"turns": float(sum(a in TURN_ACTIONS for a in ctx.trace.actions))}
'''


def _plugin(monkeypatch, folder: Path, name: str, source: str) -> str:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(folder))
    return name


def _cli(args: list[str]) -> str:
    import traceback

    res = runner.invoke(app, [str(a) for a in args])
    tb = "".join(traceback.format_exception(res.exception)) if res.exception and res.exit_code != 2 else ""
    assert res.exit_code == 0, res.output + tb
    return res.output


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# ------------------------------------------------------------------------------------------- the tests
@pytest.mark.slow
def test_a_new_prompt_format_trains_and_evaluates(tiny_model_dir, tmp_path, monkeypatch):
    fmt = _plugin(monkeypatch, tmp_path, "navtune_plugin_terse_format", FORMAT_PLUGIN)
    vln, data = tmp_path / "vln", tmp_path / "expert"
    _cli(["house", "episodes", "--task", "vln", "--seeds", "3", "--out", vln, "--split", "train", "--per-house", "1"])
    _cli(["collect", "expert", "--task", "vln", "--episodes", vln, "--split", "train", "--out", data, "--width", "56",
          "--height", "56", "--no-depth", "--limit", "2", "--quiet"])
    _cli(["train", "sft", "--plugin", fmt, "--format", "terse", "--model", tiny_model_dir, "--data", data,
          "--out", tmp_path / "sft", *FAST_TRAIN])
    assert json.loads((tmp_path / "sft" / "final" / "navtune_train.json").read_text())["format"] == "terse"
    run = tmp_path / "run"
    _cli(["eval", "--plugin", fmt, "--agent", "vlm", "--model", tmp_path / "sft" / "final", "--format", "terse",
          "--data-dir", vln, "--split", "train", "--renderer", "house", "--limit", "2", "--max-steps", "4",
          "--image-size", "56x56", "--out", run])
    rows = read_jsonl(run / "episodes.jsonl")
    assert len(rows) == 2 and all(r["policy"] == "vlm:terse:cached" for r in rows)
    assert all(1 <= len(r["actions"]) <= 4 and r["metrics"]["valid_action_pct"] == 100.0 for r in rows)
    assert _summary(run)["episodes"] == 2 and _summary(run)["epa"] is not None


@pytest.mark.slow
def test_a_new_backend_collects_trains_evaluates_and_reports(tiny_model_dir, tmp_path, monkeypatch):
    grid = _plugin(monkeypatch, tmp_path, "navtune_plugin_gridworld", BACKEND_PLUGIN)
    episodes = tmp_path / "grid.json"
    episodes.write_text(json.dumps([{"id": f"g{k}", "start": [k % 5, 0], "heading": k % 4, "goal": [4 - k % 5, 3]}
                                    for k in range(4)]))
    base = ["--plugin", grid, "--backend", "gridworld", "--episodes", episodes]
    _cli(["collect", "expert", *base, "--out", tmp_path / "expert", "--width", "56", "--height", "56", "--no-depth",
          "--quiet"])
    _cli(["train", "sft", "--plugin", grid, "--format", "objectnav-json", "--model", tiny_model_dir,
          "--data", tmp_path / "expert", "--out", tmp_path / "sft", *FAST_TRAIN])
    _cli(["eval", *base, "--agent", "oracle", "--out", tmp_path / "oracle"])
    _cli(["eval", *base, "--agent", "vlm", "--model", tmp_path / "sft" / "final", "--format", "objectnav-json",
          "--image-size", "56x56", "--limit", "2", "--max-steps", "5", "--out", tmp_path / "vlm"])
    oracle, vlm = _summary(tmp_path / "oracle"), _summary(tmp_path / "vlm")
    assert oracle["episodes"] == 4 and oracle["sr"] == 1.0 and oracle["final_distance"] == 0.0 and oracle["epa"] == 1.0
    assert vlm["episodes"] == 2 and 1 <= vlm["steps"] <= 5 and set(vlm) >= {"sr", "final_distance", "epa"}
    rows = read_jsonl(tmp_path / "vlm" / "episodes.jsonl")
    assert all(r["task"] == "gridnav" and len(r["actions"]) <= 5 for r in rows)  # the registered budget wrapper
    out = _cli(["report", tmp_path / "oracle", tmp_path / "vlm", "--out", tmp_path / "report"])
    assert "| oracle | 100.0 [" in out  # SR with its Wilson interval
    assert "Grid navigation" in (tmp_path / "report" / "report.html").read_text()


def test_a_new_metric_is_computed_and_reported(r2r_data_dir, tmp_path, monkeypatch):
    from test_eval_harness import _mini_split

    turns = _plugin(monkeypatch, tmp_path, "navtune_plugin_turns_metric", METRIC_PLUGIN)
    data = _mini_split(r2r_data_dir, tmp_path / "r2r", 2)
    run = tmp_path / "run"
    _cli(["eval", "--plugin", turns, "--metric", "turns", "--agent", "random", "--data-dir", data, "--split", "mini",
          "--num-envs", "2", "--processes", "--out", run])  # worker processes import the plugin too
    rows = read_jsonl(run / "episodes.jsonl")
    by_hand = [float(sum(a in ("Left", "Right") for a in r["actions"])) for r in rows]
    assert [r["metrics"]["turns"] for r in rows] == by_hand
    assert _summary(run)["turns"] == pytest.approx(sum(by_hand) / len(by_hand))
    assert json.loads((run / "run.json").read_text())["task"]["metrics"] == ["turns"]
    _cli(["report", run, "--out", tmp_path / "report"])
    assert "<th>turns</th>" in (tmp_path / "report" / "report.html").read_text()


def test_no_branching_on_format_or_backend_names():
    """Formats and backends are looked up, never tested by name (choosing one by name as a setting is fine)."""
    import re

    root = Path(__file__).resolve().parents[1] / "navtune"
    names = r'"(chat|r2r-lowlevel|objectnav-json|house-objectnav|habitat-objectnav)"'  # ("graph" is also a space)
    compare = re.compile(r"\b(format|fmt|backend)\w*[\"')\]]*\s*(==|!=|in\s*[(\[{])\s*\"|" + names + r"\s*(==|!=)|"
                         r"(==|!=)\s*" + names + r"|\bin\s*\(\s*" + names)
    bad = []
    for f in sorted(root.rglob("*.py")):
        if f.is_relative_to(root / "agents" / "prompts"):
            continue
        for k, line in enumerate(f.read_text().splitlines(), 1):
            if compare.search(line.split("#")[0]):
                bad.append(f"{f.relative_to(root)}:{k}: {line.strip()}")
    assert not bad, "\n".join(bad)
    assert not re.search(r"class GraphEpisode\b", "".join(p.read_text() for p in root.rglob("*.py")))


def test_configs_validate_themselves_and_the_budget_is_one_wrapper():
    from navtune.envs.graph import GraphNavEnv
    from navtune.envs.wrappers import TimeLimit
    from navtune.evaluation import EvalTask
    from navtune.graph import NavGraph
    from navtune.trainers.config import AWRConfig, LoraConfig, TrainConfig

    with pytest.raises(ValueError, match="--method"):
        AWRConfig(method="ppo")
    with pytest.raises(ValueError, match="--baseline"):
        AWRConfig(baseline="critic")
    with pytest.raises(ValueError, match="--epochs"):
        TrainConfig(epochs=0)
    assert TrainConfig(lora_cfg=LoraConfig(init_path="adapter")).lora  # starting from an adapter is LoRA
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        EvalTask(backend="nope")
    with pytest.raises(ValueError, match="unknown metric"):
        EvalTask(backend="graph", data_dir="d", split="s", metrics=("nope",))
    line = NavGraph.from_edges(["A", "B"], [(0, 0, 0), (2, 0, 0)], [("A", "B")], name="line")
    env = TimeLimit(GraphNavEnv(line, max_steps=None), 3)
    env.reset({"scan": "line", "path": ["A", "B"], "heading": 0.0, "instr_id": "1_0"})
    results = [env.step("Left") for _ in range(3)]
    assert [r.done for r in results] == [False, False, True] and results[-1].info["truncated"]
