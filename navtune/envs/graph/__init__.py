"""Graph world backend: MatterSim low-level navigation on any NavGraph, frames from an optional ViewRenderer."""
from navtune.envs.graph.env import DEFAULT_MAX_STEPS, GraphNavEnv, ViewRenderer

__all__ = ["DEFAULT_MAX_STEPS", "GraphNavEnv", "ViewRenderer"]
