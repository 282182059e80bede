"""Matplotlib figures of a report: headline metric bars, failure-mode breakdown, top-down paths, frame strips.

All functions return PNG bytes (Agg backend, no display needed)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

#: colours of the agent's and the expert's paths, used by every map
AGENT_COLOR = "#d62728"
EXPERT_COLOR = "#00aa00"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def grouped_bars(names: Sequence[str], groups: dict[str, Sequence[float | None]], title: str, ylabel: str,
                 ylim: tuple[float, float] | None = None) -> bytes:
    """One group of bars per key of `groups` (e.g. metric or failure mode), one bar per run name."""
    plt = _plt()
    keys = list(groups)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(keys) * max(1, len(names)) / 2 + 2), 3.6))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(keys))
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        vals = [groups[k][i] for k in keys]
        ys = [np.nan if v is None else v for v in vals]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, ys, width, label=name, color=cmap(i % 10))
        for b, v in zip(bars, vals):
            if v is not None:
                ax.annotate(f"{v:.0f}" if abs(v) >= 10 or v == 0 else f"{v:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, keys)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def path_map(agent: Sequence[Sequence[float]], expert: Sequence[Sequence[float]], title: str,
             graph_positions: np.ndarray | None = None, graph_edges: Sequence[tuple[int, int]] = (),
             goal: Sequence[float] | None = None) -> bytes:
    """Top-down plot of the agent's path against the expert's (x right, y up), over a nav graph when given.
    Used where no rendered top-down map of the scene exists (R2R scans)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    if graph_positions is not None and len(graph_positions):
        for i, j in graph_edges:
            ax.plot(graph_positions[[i, j], 0], graph_positions[[i, j], 1], color="#cccccc", lw=0.6, zorder=1)
        ax.scatter(graph_positions[:, 0], graph_positions[:, 1], s=6, color="#999999", zorder=2)
    for pts, color, label in ((expert, EXPERT_COLOR, "expert"), (agent, AGENT_COLOR, "agent")):
        p = np.asarray(pts, dtype=float)
        if len(p):
            ax.plot(p[:, 0], p[:, 1], "-", color=color, lw=2.2 if label == "expert" else 1.6, label=label, zorder=3)
            ax.scatter(p[:1, 0], p[:1, 1], marker="o", s=40, color=color, zorder=4)
            ax.scatter(p[-1:, 0], p[-1:, 1], marker="x", s=50, color=color, zorder=4)
    if goal is not None:
        ax.scatter([goal[0]], [goal[1]], marker="*", s=160, color="#ffbf00", edgecolors="black", label="goal", zorder=5)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.2)
    return _png(fig)


def frame_strip(frames: Sequence[np.ndarray], labels: Sequence[str], title: str) -> bytes:
    """Frames side by side, each captioned with the step and the action taken there."""
    plt = _plt()
    n = max(1, len(frames))
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n, 2.0))
    axes = np.atleast_1d(axes)
    for ax, f, lab in zip(axes, frames, labels):
        ax.imshow(f)
        ax.set_title(lab, fontsize=8)
        ax.axis("off")
    for ax in axes[len(frames):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def image_with_title(img: np.ndarray, title: str) -> bytes:
    """An image (e.g. the house's top-down map) with a caption and a legend of the path colours."""
    plt = _plt()
    h, w = img.shape[:2]
    fig, ax = plt.subplots(figsize=(4.6, 4.6 * h / max(w, 1) + 0.4))
    ax.imshow(img)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([0], [0], color=EXPERT_COLOR, lw=2, label="expert"),
                       Line2D([0], [0], color=AGENT_COLOR, lw=2, label="agent")], fontsize=7, loc="lower right")
    return _png(fig)
