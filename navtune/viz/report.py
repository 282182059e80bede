"""`navtune report`: one self-contained HTML page (every image inlined as base64) plus the same images as PNGs.

Sections: the metrics table (runs side by side, one table per task), headline bars (SR / SPL / EPA), the
failure-mode breakdown, top-down maps of chosen episodes with each run's path against the expert's, and
frame strips with the actions taken (from the thumbnails `navtune eval --save-frames` keeps)."""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from navtune.core.io import atomic_write_bytes, atomic_write_text, read_json
from navtune.core.paths import resolve_inside
from navtune.evaluation.registry import TASKS, task_metric_keys, task_spec
from navtune.evaluation.results import (
    EXTRA_KEYS,
    SUMMARY_FILE,
    RunFolderError,
    load_rows,
    load_run_info,
    metric_keys,
    summarize,
    task_of_run,
)
from navtune.metrics.intervals import PairedDifference, paired_difference
from navtune.viz import plots

FAILURE_COLUMNS = [("stuck %", "stuck"), ("oscillation %", "oscillation"), ("collision %", "collision"),
                   ("early stop %", "early_stop"), ("timeout %", "timeout"), ("any failure %", "failed")]


@dataclass
class RunData:
    name: str
    path: Path
    info: dict
    summary: dict
    rows: list[dict]
    by_id: dict[str, dict] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.rows[0]["task"] if self.rows else (task_of_run(self.info) or "vln")


def load_run(path: str | Path, name: str | None = None) -> RunData:
    path = Path(path)
    info = load_run_info(path)
    rows = load_rows(path)
    s_file = path / SUMMARY_FILE
    summary = read_json(s_file, RunFolderError) if s_file.exists() else summarize(rows)
    if not isinstance(summary, dict) or summary.get("episodes") != len(rows):  # summary older than the rows (e.g. an unmerged shard set)
        summary = summarize(rows)
    run = RunData(name or info.get("name") or path.name, path, info, summary, rows)
    run.by_id = {r["episode_id"]: r for r in rows}
    return run


def _fmt(v: Any, scale: float) -> str:
    if v is None:
        return "–"
    return f"{v * scale:.1f}" if scale != 1 or abs(v) < 1000 else f"{v:.0f}"


def _fmt_ci(summary: dict, key: str, scale: float) -> str:
    """'v [lo, hi]' when the summary holds the key's 95 % interval, else 'v'."""
    ci = summary.get(f"{key}_ci95")
    v = _fmt(summary.get(key), scale)
    return f"{v} [{ci[0] * scale:.1f}, {ci[1] * scale:.1f}]" if ci and summary.get(key) is not None else v


def _columns(task: str, runs: Sequence[RunData] = ()) -> list[tuple[str, str, float]]:
    """(column label, summary key, scale) of a task's table (scale 100 shows a fraction as a percentage); a
    metric the task does not list (a `--metric` measure) gets a column of its own before EPA."""
    cols = list(task_spec(task).columns)
    known = {k for _, k, _ in cols} | set(task_metric_keys(task)) | set(EXTRA_KEYS)
    extra = [k for r in runs for k in metric_keys(task, r.rows) if k not in known]
    at = next((i for i, (_, k, _) in enumerate(cols) if k == "epa"), len(cols))
    return cols[:at] + [(k, k, 1) for k in dict.fromkeys(extra)] + cols[at:]


def _table(runs: Sequence[RunData], task: str) -> str:
    cols = _columns(task, runs)
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _, _ in cols)
    head += "".join(f"<th>{html.escape(c)}</th>" for c, _ in FAILURE_COLUMNS) + "<th>episodes</th>"
    best = {}
    for _, k, _ in cols:
        vals = [r.summary.get(k) for r in runs if r.summary.get(k) is not None]
        if vals and k not in ("ne", "pl", "distance_to_goal", "steps", "valid_action_pct"):
            best[k] = max(vals)
    body = []
    for r in runs:
        cells = []
        for _, k, scale in cols:
            v = r.summary.get(k)
            cls = ' class="best"' if v is not None and k in best and v == best[k] and len(runs) > 1 else ""
            ci = r.summary.get(f"{k}_ci95")
            ci_html = f'<br><span class="ci">[{ci[0] * scale:.1f}, {ci[1] * scale:.1f}]</span>' if ci and v is not None else ""
            cells.append(f"<td{cls}>{_fmt(v, scale)}{ci_html}</td>")
        fr = r.summary.get("failure_rates") or {}
        cells += [f"<td>{_fmt(fr.get(k), 100)}</td>" for _, k in FAILURE_COLUMNS]
        cells.append(f"<td>{r.summary.get('episodes')}</td>")
        body.append(f"<tr><th class=\"run\">{html.escape(r.name)}</th>{''.join(cells)}</tr>")
    return (f'<table class="metrics" data-task="{task}"><thead><tr><th>run</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


#: headline columns that show their 95 % interval in the Markdown table
CI_COLUMNS = ("sr", "spl", "ndtw", "epa", "soft_spl")


def _paired_html(runs: Sequence[RunData]) -> str:
    rows = []
    for r in runs[1:]:
        if not any(e in r.by_id for e in runs[0].by_id):
            continue
        for d in paired_differences(runs[0], r):
            cls = ' class="best"' if d.significant and d.diff > 0 else ""
            rows.append(f"<tr><th class=\"run\">{html.escape(r.name)}</th><td>{html.escape(d.metric)}</td>"
                        f"<td>{100 * d.a:.1f}</td><td>{100 * d.b:.1f}</td><td{cls}>{100 * d.diff:+.1f} "
                        f"[{100 * d.ci95[0]:+.1f}, {100 * d.ci95[1]:+.1f}]</td><td>{d.episodes}</td></tr>")
    return ('<table class="metrics"><thead><tr><th>run</th><th>metric</th><th>' + html.escape(runs[0].name)
            + "</th><th>run</th><th>difference (points, paired 95 % interval)</th><th>episodes</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def markdown_table(runs: Sequence[RunData], keys: Sequence[tuple[str, str, float]] | None = None) -> str:
    """The headline table as Markdown (printed by `navtune demo` and `navtune report`); SR, SPL, nDTW and EPA
    carry their 95 % intervals (Wilson for rates, bootstrap over episodes otherwise)."""
    task = runs[0].task if runs else "vln"
    keys = keys or [c for c in task_spec(task).columns
                    if c[1] in ("sr", "spl", "epa", "ndtw", "soft_spl", "valid_action_pct", "steps")]
    modes = ("stuck", "oscillation", "collision", "early_stop", "timeout")
    lines = ["| run | " + " | ".join(c for c, _, _ in keys)
             + " | stuck % | osc. % | coll. % | early stop % | timeout % | episodes |",
             "|---|" + "---|" * (len(keys) + len(modes) + 1)]
    for r in runs:
        fr = r.summary.get("failure_rates") or {}
        vals = [_fmt_ci(r.summary, k, s) if k in CI_COLUMNS else _fmt(r.summary.get(k), s) for _, k, s in keys]
        vals += [_fmt(fr.get(k), 100) for k in modes]
        vals.append(str(r.summary.get("episodes")))
        lines.append(f"| {r.name} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def paired_differences(base: RunData, other: RunData, keys: Sequence[str] | None = None) -> list[PairedDifference]:
    """`other - base` on the episodes both runs hold, per headline metric, with paired 95 % intervals."""
    common = [e for e in base.by_id if e in other.by_id]
    if not common:
        raise ValueError(f"runs {base.name!r} and {other.name!r} share no episode: a paired comparison needs "
                         "the same episode set")
    keys = keys or [k for k in task_spec(base.task).headline if k in CI_COLUMNS]
    out = []
    for k in keys:
        a = [base.by_id[e]["metrics"].get(k) for e in common]
        b = [other.by_id[e]["metrics"].get(k) for e in common]
        try:
            out.append(paired_difference(k, a, b))
        except ValueError:  # the metric was not computed in one of the runs (e.g. EPA off)
            continue
    return out


def paired_table(runs: Sequence[RunData]) -> str:
    """Markdown: every run after the first against the first, on their shared episodes (difference in points,
    paired bootstrap 95 % interval; '*' where the interval excludes 0)."""
    if len(runs) < 2:
        return ""
    lines = [f"Paired differences against {runs[0].name} (same episodes; points, 95 % interval; * excludes 0):", "",
             "| run | metric | " + f"{runs[0].name} | run | difference | episodes |", "|---|---|---|---|---|---|"]
    for r in runs[1:]:
        if r.task != runs[0].task or not any(e in r.by_id for e in runs[0].by_id):
            continue
        for d in paired_differences(runs[0], r):
            star = " *" if d.significant else ""
            lines.append(f"| {r.name} | {d.metric} | {100 * d.a:.1f} | {100 * d.b:.1f} | "
                         f"{100 * d.diff:+.1f} [{100 * d.ci95[0]:+.1f}, {100 * d.ci95[1]:+.1f}]{star} | {d.episodes} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- maps
def _graph_for(run: RunData, scene: str):
    """The scene's navigation graph when the run's episodes come with R2R connectivity files."""
    data_dir = run.info.get("task", {}).get("data_dir")
    if not data_dir:
        return None
    try:
        from navtune.tasks.r2r import connectivity_path, load_connectivity

        if not connectivity_path(data_dir, scene).is_file():
            return None
        return load_connectivity(data_dir, scene)
    except Exception:  # noqa: BLE001 - the map then shows the paths without the graph
        return None


def _house_map(scene: str, agent: list, expert: list, row: dict, graph: Any = None) -> bytes | None:
    """The house simulator's top-down map (rooms, objects) with the expert's and the agent's paths, when the
    scene is a generated house."""
    if not scene.startswith("house_"):
        return None
    try:
        from navtune.envs.house.layout import generate_house, seed_from_scene_id
        from navtune.envs.house.topdown import render_topdown
    except ImportError:
        return None
    house = generate_house(seed_from_scene_id(scene))
    goals = None
    if row.get("goals"):
        ids = {g.get("object_id") for g in row["goals"]}
        goals = [o for o in house.objects if o.object_id in ids] or None
    kwargs: dict[str, Any] = {}
    if graph is not None:
        kwargs["nodes"] = [tuple(p[:2]) for p in graph.positions]
        kwargs["edges"] = [(tuple(graph.position(a)[:2]), tuple(graph.position(b)[:2])) for a, b in graph.edges()]
    img = render_topdown(house, size=420, trajectory=agent or None, expert_path=expert or None, goals=goals, **kwargs)
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img)).save(buf, format="PNG")
    return buf.getvalue()


def episode_map(run: RunData, row: dict) -> bytes:
    agent = [p[:2] for p in row.get("poses", [])]
    expert = [p[:2] for p in (row.get("expert") or {}).get("poses", [])]
    goals = [g["position"] for g in row.get("goals") or []]
    title = f"{run.name} · {row['episode_id']} · {'success' if row['metrics'].get('sr') else 'failure'}"
    graph = _graph_for(run, row["scene"])
    try:
        img = _house_map(row["scene"], agent, expert, row, graph)
    except Exception:  # noqa: BLE001 - fall back to the plain plot
        img = None
    if img is not None:
        return _titled(img, title)
    pos = edges = goal = None
    if graph is not None:
        pos = graph.positions[:, :2]
        edges = [(graph.index[a], graph.index[b]) for a, b in graph.edges()]
        ref = row.get("reference")
        if ref:
            goal = graph.position(ref[-1])[:2]
    elif goals:
        goal = goals[0][:2]
    return plots.path_map(agent, expert, title, pos, edges or (), goal)


def _titled(png: bytes, title: str) -> bytes:
    """Put a caption above a rendered map (the house map has none)."""
    import io

    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return plots.image_with_title(img, title)


def episode_strip(run: RunData, row: dict, max_frames: int = 8) -> bytes | None:
    if not row.get("frames"):
        return None
    # a results row names its frame folder: it must stay inside the run folder (no '..', absolute path, link)
    folder = resolve_inside(run.path, row["frames"], run.path / "episodes.jsonl", "frames", RunFolderError)
    files = sorted(folder.glob("*.png"))
    if not files:
        return None
    from PIL import Image

    idx = sorted(set(np.linspace(0, len(files) - 1, min(max_frames, len(files))).round().astype(int).tolist()))
    acts = row.get("actions", [])
    frames = [np.asarray(Image.open(files[i]).convert("RGB")) for i in idx]
    labels = [f"t={i}: {acts[i]}" if i < len(acts) else f"t={i}: end" for i in idx]
    return plots.frame_strip(frames, labels, f"{run.name} · {row['episode_id']}")


def choose_episodes(runs: Sequence[RunData], k: int, ids: Sequence[str] | None = None) -> list[str]:
    """Episodes every run has, those with saved frames first, in episode order (or the given ids)."""
    common = [r["episode_id"] for r in runs[0].rows if all(r["episode_id"] in x.by_id for x in runs)]
    if ids:
        missing = [i for i in ids if i not in common]
        if missing:
            raise ValueError(f"episodes {missing} are not in every run")
        return list(ids)
    with_frames = [i for i in common if all(x.by_id[i].get("frames") for x in runs)]
    rest = [i for i in common if i not in with_frames]
    return (with_frames + rest)[:k]


# --------------------------------------------------------------------------------------------- html
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table.metrics{border-collapse:collapse;font-size:13px;margin:8px 0}
table.metrics th,table.metrics td{border:1px solid #ccc;padding:4px 8px;text-align:right}
table.metrics th.run{text-align:left}thead th{background:#f3f3f3}td.best{font-weight:bold;background:#e8f5e9}
img{max-width:100%;border:1px solid #eee;margin:4px}.grid{display:flex;flex-wrap:wrap;gap:8px}
.note{color:#666;font-size:12px}.ci{color:#777;font-size:11px}
"""


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:80]


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path, names: Sequence[str] | None = None,
                 episodes: int = 3, episode_ids: Sequence[str] | None = None, title: str = "navtune report",
                 intro: str | None = None) -> Path:
    """Write <out_dir>/report.html (self-contained) and the PNGs; returns the HTML path."""
    if not run_dirs:
        raise ValueError("give at least one run folder")
    runs = [load_run(p, names[i] if names and i < len(names) else None) for i, p in enumerate(run_dirs)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    pngs: dict[str, bytes] = {}
    tasks = [t.name for t in TASKS.values()] + [r.task for r in runs if r.task not in TASKS]
    for task in dict.fromkeys(tasks):
        group = [r for r in runs if r.task == task]
        if not group:
            continue
        spec = task_spec(task)
        label = spec.title
        parts.append(f"<h2>{label}: metrics</h2>")
        parts.append(_table(group, task))
        if len(group) > 1 and any(e in group[1].by_id for e in group[0].by_id):
            parts.append(f"<h3>Paired differences against {html.escape(group[0].name)}</h3>" + _paired_html(group))
        parts.append('<p class="note">EPA: expert-path action accuracy (the policy\'s action at each state of the '
                     "expert's path, expert driving). Failure modes: stuck = no progress over N forward moves; "
                     "oscillation = alternating turns; collision = repeated blocked moves; early stop = stopped away from the "
                     "goal; timeout = the step budget ran out.</p>")
        names_ = [r.name for r in group]
        head_keys = list(spec.headline)
        pngs[f"metrics_{task}.png"] = plots.grouped_bars(
            names_, {k.upper(): [None if r.summary.get(k) is None else 100 * r.summary[k] for r in group] for k in head_keys},
            f"{label}: headline metrics", "%", (0, 105))
        pngs[f"failures_{task}.png"] = plots.grouped_bars(
            names_, {m: [None if (r.summary.get("failure_rates") or {}).get(m) is None else 100 * r.summary["failure_rates"][m]
                         for r in group] for m in ("stuck", "oscillation", "collision", "early_stop", "timeout",
                                                   "failed")},
            "Failure-mode breakdown (% of episodes)", "% episodes", (0, 105))
        parts.append('<div class="grid">' + _img(pngs[f"metrics_{task}.png"], "headline metrics")
                     + _img(pngs[f"failures_{task}.png"], "failure modes") + "</div>")
        chosen = choose_episodes(group, episodes, episode_ids)
        if chosen:
            parts.append("<h2>Episodes: agent path (red) vs expert path (green)</h2>")
        for eid in chosen:
            first = group[0].by_id[eid]
            instr = first.get("instruction") or ""
            parts.append(f"<h3>{html.escape(eid)} <span class=\"note\">{html.escape(first['scene'])} · "
                         f"{html.escape(instr)}</span></h3><div class=\"grid\">")
            for r in group:
                key = f"map_{_slug(r.name)}_{_slug(eid)}.png"
                pngs[key] = episode_map(r, r.by_id[eid])
                parts.append(_img(pngs[key], f"map {r.name} {eid}"))
            parts.append("</div>")
            for r in group:
                strip = episode_strip(r, r.by_id[eid])
                if strip is not None:
                    key = f"strip_{_slug(r.name)}_{_slug(eid)}.png"
                    pngs[key] = strip
                    parts.append(_img(strip, f"frames {r.name} {eid}"))
    parts.append('<h2>Runs</h2><ul class="note">' + "".join(
        f"<li>{html.escape(r.name)}: {html.escape(str(r.path))} — {html.escape(json.dumps(r.info.get('agent', {})))}</li>"
        for r in runs) + "</ul>")
    for k, data in pngs.items():
        atomic_write_bytes(out_dir / k, data)
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out_dir / "report.html"
    atomic_write_text(path, page)
    return path
