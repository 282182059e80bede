"""R2R low-level labels: the BFS expert's Left/Right/Move/Stop actions over R2R episodes (any split with
goals), i.e. the action labels of the seed-1 training data, with frames from an optional view renderer.

Each instruction is one episode (`episode_id = instr_id`). The agent starts at the reference start in the
simulator setup's heading mode (`navtune.tasks.r2r.setups`: snapped to 30° in the default discretised
mode, the episode's own heading in seed 1's continuous mode) and follows the expert
(`navtune.graph.ExpertTable`) to the goal viewpoint. Without a renderer the dataset holds the labels,
poses, viewpoints and distances only.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

from navtune.core.actions import MOVE, STOP
from navtune.data.collectors.common import CollectSummary, SkippedEpisode, factory_key, plan, run_jobs
from navtune.data.format import DatasetWriter, EpisodeMeta, PendingEpisode, StepData
from navtune.data.rewards import RewardConfig

R2R_SUCCESS_RADIUS = 3.0


class SceneRenderer(Protocol):
    """Renders the view at a viewpoint of any scan: (rgb (H, W, 3) uint8, depth (H, W) metres or None).
    (GraphNavEnv's per-scan `ViewRenderer` is this with the scan fixed.)"""

    def render(self, scan: str, viewpoint: str, heading: float) -> tuple[np.ndarray, np.ndarray | None]: ...


RendererFactory = Callable[[], SceneRenderer]

_WORKER: dict[str, Any] = {}


def _init_worker(root: str, data_dir: str, reward: dict, renderer_factory: RendererFactory | None,
                 depth: bool, navigator: Any = None) -> None:
    key = factory_key(renderer_factory)
    if _WORKER.get("renderer_key") != key or "renderer" not in _WORKER:  # keep a simulator between runs
        old = _WORKER.get("renderer")
        if old is not None and hasattr(old, "close"):
            old.close()
        _WORKER["renderer"] = None if renderer_factory is None else renderer_factory()
        _WORKER["renderer_key"] = key
    _WORKER.update(root=root, data_dir=data_dir, reward=RewardConfig.from_dict(reward), depth=depth,
                   navigator=navigator)


def r2r_meta(graph, episode, order: int = 0, source: str = "r2r-bfs", navigator: Any = None) -> EpisodeMeta:
    """Dataset metadata of an R2R episode (start pose as the simulator sets it: in the default discretised
    mode the heading snaps to 30°; `navigator` is a `navtune.graph.NavigatorConfig`)."""
    from navtune.graph.lowlevel import navigator_for

    state = navigator_for(graph, config=navigator).start_state(episode.start, episode.heading)
    p0 = graph.position(episode.start)
    return EpisodeMeta(
        episode_id=episode.instr_id,
        task="r2r",
        action_space="graph",
        scene=episode.scan,
        instruction=episode.instruction,
        start={"x": p0[0], "y": p0[1], "z": p0[2], "heading": state.heading},
        goal={"viewpoint": episode.goal, "path": list(episode.path), "path_id": episode.path_id},
        success_radius=R2R_SUCCESS_RADIUS,
        source=source,
        order=order,
    )


def label_episode(navigator, table, episode, order: int = 0) -> tuple[EpisodeMeta, list[dict]]:
    """The expert's states and actions for one R2R episode: (meta, [{state, action, allowed, ...}])."""
    graph = navigator.graph
    state = navigator.start_state(episode.start, episode.heading)
    meta = r2r_meta(graph, episode, order, navigator=navigator.config)
    steps = []
    traveled = 0.0
    limit = table.cost(state) + 1
    while True:
        action = table.action(state)
        steps.append({"state": state, "action": action, "allowed": navigator.allowed_actions(state),
                      "traveled": traveled})
        if action == STOP:
            break
        nxt = navigator.step(state, action)
        if action == MOVE:
            traveled += graph.edge_length(state.viewpoint, nxt.viewpoint)
        state = nxt
        if len(steps) > limit:
            raise RuntimeError(f"R2R episode {episode.instr_id}: the expert did not stop in {limit} actions")
    return meta, steps


def _pose(graph, state) -> dict[str, float]:
    p = graph.position(state.viewpoint)
    return {"x": float(p[0]), "y": float(p[1]), "z": float(p[2]), "heading": float(state.heading)}


def _scan_job(job: tuple[str, list[tuple[int, Any]]]) -> Iterator[PendingEpisode | SkippedEpisode]:
    """All episodes of one scan (graph, navigator and per-goal expert tables built once). An episode whose
    goal Left/Right/Move cannot reach (a few R2R train paths) is reported, not written."""
    from navtune.data.format import EpisodeBuilder
    from navtune.graph import ExpertTable, GoalUnreachable, LowLevelNavigator
    from navtune.tasks.r2r import load_connectivity

    scan, items = job
    graph = load_connectivity(_WORKER["data_dir"], scan)
    nav = LowLevelNavigator(graph, config=_WORKER["navigator"])
    tables: OrderedDict[tuple[str, float], ExpertTable] = OrderedDict()
    renderer: SceneRenderer | None = _WORKER["renderer"]
    for order, ep in items:
        key = (ep.goal, nav.start_state(ep.start, ep.heading).heading_offset)  # continuous: the path's grid
        if key not in tables:
            tables[key] = ExpertTable(nav, *key)
            if len(tables) > 64:
                tables.popitem(last=False)
        try:
            meta, steps = label_episode(nav, tables[key], ep, order)
        except GoalUnreachable as e:
            yield SkippedEpisode(ep.instr_id, str(e))
            continue
        b = EpisodeBuilder(_WORKER["root"], meta, _WORKER["reward"])
        try:
            for s in steps:
                st = s["state"]
                rgb = depth = None
                if renderer is not None:
                    rgb, depth = renderer.render(scan, st.viewpoint, st.heading)
                b.add(StepData(
                    action=s["action"],
                    pose=_pose(graph, st),
                    rgb=rgb,
                    depth=depth if _WORKER["depth"] else None,
                    geodesic_distance=graph.distance(st.viewpoint, ep.goal),
                    allowed_actions=s["allowed"],
                    expert_action=s["action"],
                    info={"viewpoint": st.viewpoint, "heading_index": st.heading_index,
                          "distance_traveled": s["traveled"]},
                ))
            last = steps[-1]["state"]
            yield b.finish(final_pose=_pose(graph, last), final_geodesic_distance=graph.distance(last.viewpoint, ep.goal),
                           info={"final_viewpoint": last.viewpoint})
        except BaseException:
            b.abort()
            raise


def collect_r2r(
    data_dir: str | os.PathLike,
    split: str,
    out: str | os.PathLike,
    renderer_factory: RendererFactory | None = None,
    renderer_name: str | None = None,
    workers: int = 1,
    limit: int | None = None,
    scans: Sequence[str] | None = None,
    reward: RewardConfig = RewardConfig(),
    depth: bool = True,
    progress: bool = True,
    commit_every: int | None = None,
    preset: str | None = None,
) -> CollectSummary:
    """Write the expert's low-level labels for every instruction of `R2R_<split>.json` into `out`, in the
    simulator setup `preset` (`navtune.tasks.r2r.setups`; None: the default discretised "r2r")."""
    from navtune.tasks.r2r import R2RDataError, load_r2r_split, split_path
    from navtune.tasks.r2r.setups import get_setup

    setup = get_setup(preset)

    episodes = load_r2r_split(data_dir, split)
    if scans:
        episodes = [e for e in episodes if e.scan in set(scans)]
    if limit is not None:
        episodes = episodes[:limit]
    no_goal = [e.instr_id for e in episodes if len(e.path) < 2 and e.distance is None]
    if no_goal:
        raise R2RDataError(split_path(data_dir, split),
                           f"{len(no_goal)} episodes have no goal (only a start viewpoint), e.g. {no_goal[0]}: "
                           "the test split cannot be labelled", field="path")
    info = {
        "task": "r2r",
        "action_space": "graph",
        "source": "r2r-bfs",
        "split": split,
        "data_dir": str(os.path.abspath(data_dir)),
        "renderer": renderer_name if renderer_factory is not None else None,
        "depth": bool(depth and renderer_factory is not None),
        "success_radius": R2R_SUCCESS_RADIUS,
        "reward": reward.to_dict(),
        "limit": limit,
        "scans": sorted(scans) if scans else None,
    }
    if preset is not None:  # datasets written before presets existed resume unchanged
        info["preset"] = setup.name
    writer = DatasetWriter(out, info)
    summary = CollectSummary(out=str(out))
    left = plan(writer, [e.instr_id for e in episodes], summary)
    by_scan: dict[str, list[tuple[int, Any]]] = {}
    for i, e in enumerate(episodes):
        if e.instr_id in left:
            by_scan.setdefault(e.scan, []).append((i, e))
    # jobs per scan (graph built once per job), in chunks so a parallel run commits as it goes; scans with
    # more episodes first for better load balance
    chunk = 32 if renderer_factory is not None else 1024
    jobs = [(scan, items[k:k + chunk]) for scan, items in sorted(by_scan.items(), key=lambda kv: -len(kv[1]))
            for k in range(0, len(items), chunk)]
    return run_jobs(
        writer,
        jobs,
        work=_scan_job,
        summary=summary,
        workers=workers,
        init=_init_worker,
        init_args=(str(writer.root), str(data_dir), reward.to_dict(), renderer_factory, depth, setup.navigator),
        desc=f"R2R {split} labels",
        progress=progress,
        # frameless episodes are tiny: group their manifest appends (one fsync per 64 episodes)
        commit_every=commit_every or (1 if renderer_factory is not None else 64),
    )
