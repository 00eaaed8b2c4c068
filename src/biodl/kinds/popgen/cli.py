"""``biodl popgen ...``: coalescent simulations as training data. Loaded by :mod:`biodl.cli`
through ``register(app)``; imports no torch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from biodl.errors import BiodlError, exit_with, stdout_console

popgen_app = typer.Typer(
    no_args_is_help=True, help="Population genetics: simulate training data (msprime), list the scenarios."
)
err = Console(stderr=True, soft_wrap=True, emoji=False, markup=False, highlight=False)


_fail = exit_with  # print the error, exit 2


@popgen_app.command("simulate")
def simulate_cmd(
    scenario: str = typer.Option(..., "--scenario", help="Scenario name (see `biodl popgen scenarios`)."),
    n: int = typer.Option(..., "--n", help="Number of simulations."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory (dataset.json + npz shards)."),
    seed: int = typer.Option(0, help="Seed: simulation i depends only on (seed, i)."),
    chunk: int = typer.Option(250, help="Simulations per shard (memory is bounded by chunk x workers)."),
    workers: int | None = typer.Option(None, help="Worker processes (default: one per CPU core)."),
    samples: int | None = typer.Option(None, help="Haploid chromosomes sampled (default: the scenario's)."),
    fix: list[str] | None = typer.Option(
        None, "--fix", help="Fix a prior parameter, KEY=VALUE (repeatable), e.g. --fix ne=5000 (theta 6)."
    ),
    progress: bool = typer.Option(
        True,
        help="Progress on standard error as shards finish: rewritten in place on a terminal, else a "
        "plain line at most every 30 s (and for the last shard).",
    ),
) -> None:
    """Simulate a training dataset: genotype matrices, positions and true parameters in npz shards,
    written as they finish; rerunning the command resumes (finished shards are kept).

    Example: biodl popgen simulate --scenario flagel-rho --n 10000 --seed 1 --out sims/rho
    """
    from biodl.kinds.popgen.simulate import simulate_dataset
    from biodl.options import parse_set

    try:
        fixed = parse_set(fix, "--fix")  # values checked (numbers, valid for the scenario) there
        r = simulate_dataset(
            scenario,
            n,
            seed,
            out,
            chunk=chunk,
            workers=workers,
            n_haplotypes=samples,
            fixed=fixed,
            progress=progress,
        )
    except (BiodlError, ValueError, TypeError) as e:
        _fail(e)
    stdout_console().print(
        f"{r['n']} simulations of {r['scenario']} in {out} ({r['simulated']} simulated now, "
        f"{r['skipped']} shard(s) kept; {r['seconds']:.1f} s)"
    )


@popgen_app.command("scenarios")
def scenarios_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the scenarios and their priors as JSON."),
) -> None:
    """List the simulation scenarios, their default targets and every parameter's prior: how
    the simulator draws it (distribution, range, unit) or derives it, and whether --fix takes it.

    Example: biodl popgen scenarios
    """
    from biodl.kinds.popgen.simulate import SCENARIOS, _n

    if as_json:
        import json

        rows = [
            {
                "name": s.name,
                "title": s.title,
                "task": s.task,
                "n_haplotypes": s.n_haplotypes,
                "length": s.length,
                "default_target": list(s.default_target),
                "classes": list(s.classes),
                "fixable": list(s.fixable),
                "parameters": {k: s.priors[k].as_dict() for k in s.params},
            }
            for s in SCENARIOS.values()
        ]
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="biodl popgen scenarios")
    for c in ("name", "task", "haplotypes", "length (bp)", "default target", "about"):
        t.add_column(c, no_wrap=c == "name")
    for s in SCENARIOS.values():
        t.add_row(s.name, s.task, str(s.n_haplotypes), f"{s.length:,g}", ", ".join(s.default_target), s.title)
    pr = Table(title="their parameters' priors, as simulated (--fix KEY=VALUE sets a fixable one)")
    for c in ("scenario", "parameter", "prior", "range", "unit", "--fix"):
        pr.add_column(c, no_wrap=c in ("scenario", "parameter"))
    for s in SCENARIOS.values():
        for k in s.params:
            p = s.priors[k]
            pr.add_row(
                s.name,
                k,
                f"= {p.text}" if p.dist == "derived" else f"{p.dist}: {p.text}" if p.text else p.dist,
                f"{_n(p.low)} to {_n(p.high)}",
                p.unit,
                "yes" if k in s.fixable else "",
            )
    con = stdout_console()
    con.print(t)
    con.print(pr)


def register(app: typer.Typer) -> None:
    """Add the ``popgen`` sub-app to the main ``biodl`` app."""
    app.add_typer(popgen_app, name="popgen")
