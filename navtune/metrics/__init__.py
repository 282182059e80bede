"""Plain metric functions over trajectories and distances (no simulator, no models), shared by all tasks."""
from navtune.metrics.objectnav import OBJECTNAV_KEYS, objectnav_episode_metrics, walked_length
from navtune.metrics.vln import (
    METRIC_KEYS,
    average,
    cls,
    collapse_repeats,
    dtw,
    ndtw,
    path_length,
    vln_episode_metrics,
)

__all__ = [
    "METRIC_KEYS", "OBJECTNAV_KEYS", "average", "cls", "collapse_repeats", "dtw", "ndtw", "objectnav_episode_metrics",
    "path_length", "vln_episode_metrics", "walked_length",
]
