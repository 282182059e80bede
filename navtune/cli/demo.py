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
        test_seeds: str = typer.Option(None, "--test-seeds", help="Held-out house seeds A-B (inclusive) for "
                                       "evaluation; default 1000-1059 (360 episodes; --quick: 1000-1001)."),
    ) -> None:
        """The whole loop on a CPU: houses -> expert data -> tiny model -> SFT -> offline rounds -> evaluation on
        held-out houses -> HTML report.

        Generates houses and VLN episodes, collects expert data, builds a tiny Qwen2.5-VL, fine-tunes it (SFT,
        then the offline rounds the recipe enables), exports the final agent to OUT/final (a self-describing
        folder: `navtune eval --agent vlm --model OUT/final` needs no other flag), evaluates every rung with the
        baselines on held-out houses (95 % intervals) and writes an HTML report and OUT/summary.json. Prints the
        headline table, each stage's paired difference against the rung below it, and the report's path."""
        from navtune.cli.errors import fail
        from navtune.demo import DemoError, run_demo

        try:
            res = run_demo(out, quick=quick, show=not quiet, test_seeds=test_seeds)
        except DemoError as e:
            fail(e)
        typer.echo(res["table"])
        if res.get("paired"):
            typer.echo("\n" + res["paired"])
        typer.echo(f"\nfinal agent: {res['final']} -> {(Path(out) / 'final').resolve()}")
        stages = ", ".join(f"{k} {v:.0f}s" for k, v in res["timings"].items())
        typer.echo(f"wall time: {res['seconds']:.0f} s this run, {res['wall_s']:.0f} s over all stages"
                   + (f" ({stages})" if stages else ""))
        typer.echo(f"summary: {Path(res['summary']).resolve()}")
        typer.echo(f"report: {Path(res['report']).resolve()}")
