"""`navtune demo`: the whole loop on the embedded simulator (README's main command)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        task: str = typer.Option("vln", "--task", help="vln (graph low-level actions, seed 1's setting) | objectnav "
                                 "(continuous actions, seed 2's JSON-answering agent and offline-RL round)."),
        quick: bool = typer.Option(False, "--quick", help="A ~2-minute smoke version (CI)."),
        out: Path | None = typer.Option(None, "--out", help="Working folder (rerun to resume; finished stages are "
                                        "skipped). Default: navtune-demo (vln) or navtune-demo-objectnav."),
        test_seeds: str | None = typer.Option(None, "--test-seeds", help="objectnav: held-out house seeds, e.g. "
                                              "1000-1049 (default: the demo's; never the training houses)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        """The whole loop on a CPU: houses -> expert data -> tiny model -> SFT -> failure mining -> AWR ->
        evaluation on held-out houses -> HTML report.

        Generates houses and episodes, collects expert data, builds a tiny Qwen2.5-VL, fine-tunes it (SFT, then
        AWR on expert + mined failure data), evaluates it with the baselines on held-out houses and writes an
        HTML report. Prints the report's path and the headline table. --task objectnav also writes
        OUT/summary.json (rates with Wilson 95 % intervals) and OUT/final (the final agent)."""
        if task not in ("vln", "objectnav"):
            typer.echo(f"error: --task must be vln or objectnav (got {task!r})", err=True)
            raise typer.Exit(2)
        if task == "objectnav":
            _objectnav(out or Path("navtune-demo-objectnav"), quick, test_seeds, quiet)
            return
        if test_seeds is not None:
            typer.echo("error: --test-seeds is an option of --task objectnav here", err=True)
            raise typer.Exit(2)
        from navtune.demo import DemoError, run_demo

        try:
            res = run_demo(out or Path("navtune-demo"), quick=quick, show=not quiet)
        except DemoError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        typer.echo(res["table"])
        stages = ", ".join(f"{k} {v:.0f}s" for k, v in res["timings"].items())
        typer.echo(f"wall time: {res['seconds']:.0f} s" + (f" ({stages})" if stages else ""))
        typer.echo(f"report: {Path(res['report']).resolve()}")


def _objectnav(out: Path, quick: bool, test_seeds: str | None, quiet: bool) -> None:
    from navtune.demo.objectnav import DemoError, run_objectnav_demo

    try:
        res = run_objectnav_demo(out, quick=quick, show=not quiet, test_seeds=test_seeds)
    except (DemoError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    s = res["summary"]
    typer.echo(res["table"])
    for name, a in s["agents"].items():
        lo, hi = a["sr_ci95"]
        typer.echo(f"{name:>13}: SR {100 * a['sr']:5.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}, n={a['episodes']})"
                   f"  valid {a['valid_action_pct']:.1f} %" + (f"  decode {a['decode']}" if a["decode"] else ""))
    d = s["awr_sr_change"]
    typer.echo(f"AWR round: SR change {100 * d['mean']:+.1f} points (95 % CI {100 * d['ci95'][0]:+.1f} to "
               f"{100 * d['ci95'][1]:+.1f}, paired, n={d['episodes']})")
    typer.echo(f"wall time: {s['wall_s']:.0f} s; final agent: {(out / 'final').resolve()}; "
               f"summary: {(out / 'summary.json').resolve()}")
    typer.echo(f"report: {Path(res['report']).resolve()}")
