"""`GraphNavEnv`: the NavEnv protocol over any NavGraph with MatterSim low-level semantics, in the heading
mode and camera of a `navtune.graph.NavigatorConfig` (an R2R setup's, e.g. `navtune.tasks.r2r.setups`).

Works for R2R (one graph per Matterport3D scan, frames from an optional skybox `ViewRenderer`) and for a
graph built over a generated house (frames from the house renderer). Without a renderer the observation's
rgb and depth are None and the env is a pure graph world (fast: replay, expert data, metric tests).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from navtune.core.actions import GRAPH_ACTIONS, MOVE, STOP
from navtune.envs.protocol import Observation, Pose, StepResult, check_expert, check_step
from navtune.graph.expert import ExpertTable
from navtune.graph.lowlevel import ADJUST, LowLevelNavigator, LowLevelState, NavigatorConfig, navigator_for
from navtune.graph.navgraph import NavGraph
from navtune.tasks.r2r.data import R2REpisode

DEFAULT_MAX_STEPS = 50
DEFAULT_SUCCESS_RADIUS = 3.0


@runtime_checkable
class ViewRenderer(Protocol):
    """Renders the camera view at a viewpoint: (rgb (H, W, 3) uint8, depth (H, W) float32 metres or None)."""

    def render(self, viewpoint_id: str, heading: float, elevation: float) -> tuple[np.ndarray, np.ndarray | None]: ...


GraphSource = NavGraph | Mapping[str, NavGraph] | Callable[[str], NavGraph]
RendererSource = ViewRenderer | Callable[[str], ViewRenderer] | None


class GraphNavEnv:
    """Left/Right/Move/Stop on a navigation graph. `graphs` is one NavGraph or a scan -> NavGraph mapping /
    callable; `renderer` is one ViewRenderer or a scan -> ViewRenderer callable (or None: no frames).

    `navigator` sets the heading mode (discretised / continuous), the camera's fov and whether Adjust is an
    action; `hfov` (radians) overrides the camera's horizontal fov. Observation.allowed_actions drops Move
    (and Adjust) where nothing is navigable; a Move there leaves the agent in place and reports
    `collided=True`. The episode ends on Stop or after `max_steps` actions (None: only on Stop; evaluation
    applies its budget with a `TimeLimit` wrapper)."""

    action_space: tuple[str, ...] = GRAPH_ACTIONS

    def __init__(
        self,
        graphs: GraphSource,
        renderer: RendererSource = None,
        max_steps: int | None = DEFAULT_MAX_STEPS,
        hfov: float | None = None,
        success_radius: float = DEFAULT_SUCCESS_RADIUS,
        navigator: NavigatorConfig | None = None,
    ):
        self._graphs = graphs
        self._renderer = renderer
        self.max_steps = max_steps
        self.nav_config = navigator if navigator is not None else NavigatorConfig()
        self.hfov = hfov if hfov is not None else self.nav_config.camera.hfov
        self.action_space = self.nav_config.action_space
        self.success_radius = success_radius
        self.episode: R2REpisode | None = None

    @classmethod
    def for_r2r(cls, data_dir, renderer: RendererSource = None, **kwargs) -> "GraphNavEnv":
        """An env over the R2R-format folder `data_dir` (graphs loaded per scan on first use)."""
        from navtune.tasks.r2r.data import load_connectivity

        return cls(lambda scan: load_connectivity(data_dir, scan), renderer, **kwargs)

    # ------------------------------------------------------------------ helpers
    def _graph_for(self, scan: str) -> NavGraph:
        g = self._graphs
        if isinstance(g, NavGraph):
            return g
        if isinstance(g, Mapping):
            if scan not in g:
                raise KeyError(f"no graph for scan {scan!r}; known: {', '.join(sorted(g))}")
            return g[scan]
        return g(scan)

    def _renderer_for(self, scan: str) -> ViewRenderer | None:
        r = self._renderer
        if r is None or hasattr(r, "render"):
            return r
        return r(scan)

    def _nav_for(self, graph: NavGraph) -> LowLevelNavigator:
        return navigator_for(graph, self.hfov, self.nav_config)

    def _observe(self) -> Observation:
        s, g = self.state, self.graph
        x, y, z = (float(v) for v in g.position(s.viewpoint))
        rgb = depth = None
        if self.renderer is not None:
            rgb, depth = self.renderer.render(s.viewpoint, s.heading, 0.0)
        return Observation(
            rgb=rgb,
            depth=depth,
            pose=Pose(x, y, z, s.heading),
            allowed_actions=self.navigator.allowed_actions(s),
            instruction=self.episode.instruction,
            step=self.steps,
            distance_traveled=self.distance_traveled,
            info=self._info(),
        )

    def _info(self) -> dict:
        s = self.state
        return {
            "episode_id": self.episode.episode_id,
            "scan": self.episode.scan,
            "viewpoint": s.viewpoint,
            "heading_index": s.heading_index,
            "distance_to_goal": self.graph.distance(s.viewpoint, self.episode.goal),
            "trajectory": [list(t) for t in self.trajectory],
        }

    # ------------------------------------------------------------------ NavEnv
    def reset(self, episode: R2REpisode | Mapping[str, Any]) -> Observation:
        """Start an `R2REpisode` (or its R2R-form dict, read with `R2REpisode.from_dict`)."""
        ep = episode if isinstance(episode, R2REpisode) else R2REpisode.from_dict(dict(episode), "reset(episode)")
        self.graph = self._graph_for(ep.scan)
        for k, vid in enumerate(ep.path):
            if vid not in self.graph.index:
                raise KeyError(f"episode {ep.episode_id}: path[{k}] viewpoint {vid!r} is not in graph {self.graph.name!r}")
        self.episode = ep
        self.navigator = self._nav_for(self.graph)
        self.renderer = self._renderer_for(ep.scan)
        self.state: LowLevelState = self.navigator.start_state(ep.start, ep.heading)  # snapped in discretised mode
        self.steps = 0
        self.distance_traveled = 0.0
        self.done = False
        self.actions: list[str] = []
        self.trajectory: list[tuple[str, float, float]] = [(self.state.viewpoint, self.state.heading, 0.0)]
        self._expert: ExpertTable | None = None
        return self._observe()

    def step(self, action: str) -> StepResult:
        check_step(self, action, self.action_space)
        collided = False
        self.steps += 1
        self.actions.append(action)
        if action in (MOVE, ADJUST) and not self.navigator.move_possible(self.state):
            collided = True
        elif action != STOP:
            nxt = self.navigator.step(self.state, action)
            if nxt.viewpoint != self.state.viewpoint:
                self.distance_traveled += self.graph.edge_length(self.state.viewpoint, nxt.viewpoint)
            self.state = nxt
            self.trajectory.append((nxt.viewpoint, nxt.heading, 0.0))
        stopped = action == STOP
        self.done = stopped or (self.max_steps is not None and self.steps >= self.max_steps)
        obs = self._observe()
        info = {
            "stopped": stopped,
            "truncated": self.done and not stopped,
            "success": self.done and obs.info["distance_to_goal"] < self.success_radius,
        }
        return StepResult(obs, self.done, collided, info)

    def expert_action(self) -> str:
        """The BFS expert's action from the current state (one cost-to-go table per episode)."""
        check_expert(self)
        if self._expert is None or not self._expert.covers(self.state):  # an Adjust leaves the heading grid
            self._expert = ExpertTable(self.navigator, self.episode.goal, self.state.heading_offset)
        return self._expert.action(self.state)

    def metrics(self) -> dict[str, float]:
        """R2R metrics of the episode so far (navtune.metrics.vln)."""
        from navtune.metrics.vln import vln_episode_metrics

        return vln_episode_metrics([t[0] for t in self.trajectory], list(self.episode.path), self.graph.distance,
                                   self.graph.edge_length, self.success_radius, steps=self.steps)

    def close(self) -> None:
        """Nothing of its own to release (navigators are shared per process, renderers belong to the caller)."""
        self.episode = None
