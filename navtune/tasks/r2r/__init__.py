"""Room-to-Room: data loading/validation, prediction files, replay and scoring over R2R-format folders."""
from navtune.tasks.r2r.data import (
    R2RDataError,
    R2REpisode,
    connectivity_path,
    load_connectivity,
    load_graphs,
    load_r2r_split,
    parse_connectivity,
    split_path,
    write_connectivity,
    write_r2r_split,
)
from navtune.tasks.r2r.predictions import load_predictions, write_predictions

__all__ = [
    "R2RDataError", "R2REpisode", "connectivity_path", "load_connectivity", "load_graphs", "load_predictions",
    "load_r2r_split", "parse_connectivity", "split_path", "write_connectivity", "write_predictions",
    "write_r2r_split",
]
