"""`navtune report RUN_DIR...`: a self-contained HTML report (+ PNGs) comparing evaluation runs."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_dirs: list[Path] = typer.Argument(..., help="Run folders written by `navtune eval` (shown side by side)."),
        out: Path = typer.Option(Path("report"), "--out", help="Folder for report.html and its PNGs."),
        names: list[str] = typer.Option([], "--name", help="Display name per run (repeat, in order)."),
        episodes: int = typer.Option(3, "--episodes", help="How many episodes get maps and frame strips."),
        episode_id: list[str] = typer.Option([], "--episode-id", help="Show these episodes (repeat)."),
        title: str = typer.Option("navtune report", "--title"),
    ) -> None:
        """One self-contained HTML report (+ PNGs) comparing evaluation runs: metrics side by side with 95 %
        intervals, paired differences of every run against the first on their shared episodes, failure modes,
        top-down maps of agent vs expert paths, frame strips.

        Example: navtune report runs/forward runs/sft --name forward --name SFT --out runs/report"""
        from navtune.cli.errors import fail
        from navtune.evaluation.results import RunFolderError
        from navtune.viz import build_report, load_run, markdown_table
        from navtune.viz.report import paired_table

        try:
            path = build_report(run_dirs, out, names or None, episodes, episode_id or None, title)
            runs = [load_run(p, names[i] if i < len(names) else None) for i, p in enumerate(run_dirs)]
        except (RunFolderError, ValueError) as e:
            fail(e)
        typer.echo(markdown_table(runs))
        if len(runs) > 1:
            try:
                typer.echo("\n" + paired_table(runs))
            except ValueError as e:  # runs on different episode sets: nothing to pair
                typer.echo(f"(no paired comparison: {e})")
        typer.echo(f"report: {path.resolve()}")
