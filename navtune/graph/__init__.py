"""Navigation graphs, MatterSim low-level semantics and the BFS expert. No simulator, no models."""
from navtune.graph.expert import ExpertTable, GoalUnreachable, expert_actions, follows_with_move_to_nearest
from navtune.graph.lowlevel import (
    ADJUST,
    DEFAULT_HFOV,
    HEADING_MODES,
    HEADING_STEP,
    NUM_HEADINGS,
    Camera,
    LowLevelNavigator,
    LowLevelState,
    NavigatorConfig,
    heading_index_of,
    heading_of,
    navigable_neighbours,
    navigator_for,
)
from navtune.graph.navgraph import NavGraph

__all__ = [
    "ADJUST", "DEFAULT_HFOV", "ExpertTable", "HEADING_MODES", "HEADING_STEP", "NUM_HEADINGS", "Camera", "GoalUnreachable",
    "LowLevelNavigator", "LowLevelState", "NavGraph", "NavigatorConfig", "expert_actions", "follows_with_move_to_nearest",
    "heading_index_of", "heading_of", "navigable_neighbours", "navigator_for",
]
