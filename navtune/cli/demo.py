"""`navtune demo`: the whole loop on the embedded simulator (README's main command)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        quick: bool = typer.Option(False, "--quick", help="A ~2-minute smoke version (CI)."),
        out: Path = typer.Option(Path("navtune-demo"), "--out", help="Working folder (rerun to resume; finished stages are skipped)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        """The whole loop on a CPU: houses -> expert data -> tiny model -> SFT -> failure mining -> AWR ->
        evaluation on held-out houses -> HTML report.

        Generates houses and VLN episodes, collects expert data, builds a tiny Qwen2.5-VL, fine-tunes it (SFT,
        then AWR on expert + mined failure data), evaluates it with the baselines on held-out houses and writes
        an HTML report. Prints the report's path and the headline table."""
        from navtune.cli.errors import fail
        from navtune.demo import DemoError, run_demo

        try:
            res = run_demo(out, quick=quick, show=not quiet)
        except DemoError as e:
            fail(e)
        typer.echo(res["table"])
        stages = ", ".join(f"{k} {v:.0f}s" for k, v in res["timings"].items())
        typer.echo(f"wall time: {res['seconds']:.0f} s" + (f" ({stages})" if stages else ""))
        typer.echo(f"report: {Path(res['report']).resolve()}")
