"""`navtune demo`: the whole loop on the embedded simulator (README's main command)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        task: str = typer.Option("vln", "--task", help="vln (graph low-level actions, seed 1's setting; ~9 min on 2 "
                                 "cores) | objectnav (continuous actions, seed 2's JSON-answering agent and offline-RL "
                                 "round; over an hour on 2 cores, docs/evaluation.md)."),
        quick: bool = typer.Option(False, "--quick", help="A ~2-minute smoke version (CI)."),
        out: Path | None = typer.Option(None, "--out", help="Working folder (rerun to resume; finished stages are "
                                        "skipped). Default: navtune-demo (vln) or navtune-demo-objectnav."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
        test_seeds: str | None = typer.Option(None, "--test-seeds", help="Held-out house seeds A-B (inclusive) for "
                                              "evaluation; default: the demo's (never its training houses)."),
    ) -> None:
        """The whole loop on a CPU: houses -> expert data -> tiny model -> SFT -> offline rounds -> evaluation on
        held-out houses -> HTML report.

        Generates houses and episodes, collects expert data, builds a tiny Qwen2.5-VL, fine-tunes it (SFT,
        then the offline rounds the recipe enables), exports the final agent to OUT/final (a self-describing
        folder: `navtune eval --agent vlm --model OUT/final` needs no other flag), evaluates every rung with the
        baselines on held-out houses (95 % intervals) and writes an HTML report and OUT/summary.json. Prints the
        headline table, each stage's paired difference against the rung below it, and the report's path.
        --task objectnav runs seed 2's loop (JSON answers, mined failures, one AWR round)."""
        from navtune.cli.errors import fail
        from navtune.demo import DemoError

        if task not in DEMO_TASKS:
            fail(DemoError(f"--task must be one of {', '.join(DEMO_TASKS)} (got {task!r})"))
        try:
            DEMO_TASKS[task](out, quick, test_seeds, quiet)
        except DemoError as e:
            fail(e)


def _vln(out: Path | None, quick: bool, test_seeds: str | None, quiet: bool) -> None:
    from navtune.demo import run_demo

    out = out or Path("navtune-demo")
    res = run_demo(out, quick=quick, show=not quiet, test_seeds=test_seeds)
    typer.echo(res["table"])
    if res.get("paired"):
        typer.echo("\n" + res["paired"])
    typer.echo(f"\nfinal agent: {res['final']} -> {(Path(out) / 'final').resolve()}")
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in res["timings"].items())
    typer.echo(f"wall time: {res['seconds']:.0f} s this run, {res['wall_s']:.0f} s over all stages"
               + (f" ({stages})" if stages else ""))
    typer.echo(f"summary: {Path(res['summary']).resolve()}")
    typer.echo(f"report: {Path(res['report']).resolve()}")


def _objectnav(out: Path | None, quick: bool, test_seeds: str | None, quiet: bool) -> None:
    from navtune.demo import DemoError
    from navtune.demo.objectnav import run_objectnav_demo

    out = out or Path("navtune-demo-objectnav")
    try:
        res = run_objectnav_demo(out, quick=quick, show=not quiet, test_seeds=test_seeds)
    except ValueError as e:
        raise DemoError(str(e)) from e
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


#: `navtune demo --task NAME`: the loop each task runs
DEMO_TASKS = {"vln": _vln, "objectnav": _objectnav}
