"""The built-in measures (habitat's Measure idea over the plain functions of `navtune.metrics`).

* ``vln``: the R2R scorer's metrics (pl, ne, osr, sr, spl, ndtw, sdtw, cls, steps) of a graph-world
  episode, from the env's trajectory and graph.
* ``objectnav``: sr, spl, soft_spl, distance_to_goal, path_length, steps from the recorded positions and
  geodesic distances to the goal (success within the episode's success distance).
* ``objectnav-region``: the same for the house simulator, whose distances are to the *success region*
  (0 exactly on success), from the env's own positions; also its collision count.

A new measure is one function registered with `register_measure` (see docs/ARCHITECTURE.md).
"""
from __future__ import annotations

import math

from navtune.core.actions import STOP_CONT
from navtune.evaluation.registry import MeasureContext, register_measure
from navtune.metrics.objectnav import OBJECTNAV_KEYS, objectnav_episode_metrics
from navtune.metrics.vln import METRIC_KEYS, vln_episode_metrics


@register_measure("vln", keys=METRIC_KEYS)
def vln_metrics(ctx: MeasureContext) -> dict[str, float]:
    env = ctx.env
    return vln_episode_metrics([t[0] for t in env.trajectory], list(ctx.episode.payload.path), env.graph.distance,
                               env.graph.edge_length, env.success_radius, steps=env.steps)


@register_measure("objectnav", keys=OBJECTNAV_KEYS)
def objectnav_metrics(ctx: MeasureContext) -> dict[str, float]:
    radius = ctx.task.success_radius or ctx.episode.payload.success_distance
    geo = [math.inf if g is None else g for g in ctx.trace.geodesics]
    return objectnav_episode_metrics(ctx.trace.positions, geo, ctx.trace.stopped, radius, steps=ctx.trace.steps)


@register_measure("objectnav-region", keys=OBJECTNAV_KEYS)
def objectnav_region_metrics(ctx: MeasureContext) -> dict[str, float]:
    env = ctx.env
    stopped = bool(env.actions) and env.actions[-1] == STOP_CONT
    m = objectnav_episode_metrics(env.positions, env.geodesics, stopped, 1e-6, steps=env.steps)
    m["collisions"] = float(env.collisions)
    return m
