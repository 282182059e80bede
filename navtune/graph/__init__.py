"""Navigation graphs, MatterSim low-level semantics and the BFS expert. No simulator, no models."""
from navtune.graph.expert import ExpertTable, GoalUnreachable, expert_actions, follows_with_move_to_nearest
from navtune.graph.lowlevel import (
    DEFAULT_HFOV,
    HEADING_STEP,
    NUM_HEADINGS,
    LowLevelNavigator,
    LowLevelState,
    heading_index_of,
    heading_of,
    navigable_neighbours,
)
from navtune.graph.navgraph import NavGraph

__all__ = [
    "DEFAULT_HFOV", "ExpertTable", "HEADING_STEP", "NUM_HEADINGS", "GoalUnreachable", "LowLevelNavigator", "LowLevelState",
    "NavGraph", "expert_actions", "follows_with_move_to_nearest", "heading_index_of", "heading_of",
    "navigable_neighbours",
]
