"""The embedded simulator: procedurally generated houses rendered by MiniWorld (headless EGL).

Light on import: the plan (`layout`), occupancy grid, experts and maps need no OpenGL; `world`, `env`,
`renderer` start MiniWorld (and a GL context) only when an environment is built. Names below load lazily.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "generate_house": "layout", "HouseSpec": "layout", "OBJECT_CATEGORIES": "layout",
    "OccupancyGrid": "occupancy", "ContinuousExpert": "expert", "render_topdown": "topdown",
    "build_house_graph": "navgraph", "HouseEnvConfig": "env", "HouseNavEnv": "env", "HouseGymEnv": "gym_env",
    "HouseViewRenderer": "renderer", "HouseRenderers": "renderer", "house_graph": "renderer",
    "HouseWorkerPool": "parallel", "run_expert": "parallel", "HouseGLError": "gl",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
