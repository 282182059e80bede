"""Reports: one self-contained HTML page + PNGs (metrics side by side, failure modes, maps, frame strips)."""
from navtune.viz.report import RunData, build_report, load_run, markdown_table

__all__ = ["RunData", "build_report", "load_run", "markdown_table"]
