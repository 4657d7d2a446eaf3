"""``digiworm screen``: many perturbed experiments, read out as phenotypes and ranked."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from .._errors import DigiwormError
from ._common import _atlas, _check_engine, _user_errors, app, console


@app.command("screen")
@_user_errors
def screen_command(
    grid: str | None = typer.Option(
        None,
        "--grid",
        help="Every combination of the columns' values, e.g. \"drug=aldicarb,levamisole;"
        'dose=0,10,100;knockout=none,unc-31" (columns: drug, dose, knockout, ablate, '
        "stimulate, medium, model, seed, and the state's serotonin, dopamine, octopamine, "
        "tyramine levels in [0, 1]; join several genes or neurons with +).",
    ),
    table: Path | None = typer.Option(
        None, "--table", help="A condition table (.csv or .parquet) with those columns."
    ),
    readout: str = typer.Option(
        "neural", "--readout", help="neural, behaviour, or both (neural,behaviour)."
    ),
    out: Path = typer.Option(..., "--out", help="The screen's folder (resumed if it exists)."),
    chunk: int = typer.Option(64, "--chunk", help="Conditions per chunk written."),
    duration: float = typer.Option(
        30.0, "--duration", help="Simulated seconds of each neural run."
    ),
    behaviour_duration: float = typer.Option(
        20.0, "--behaviour-duration", help="Simulated seconds of each behavioural run."
    ),
    engine: str = typer.Option(
        "local", "--engine", help="local (this machine) or ray (actors on a Ray cluster)."
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray: auto (the running cluster) or ray://HOST:PORT; default a local Ray instance.",
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Ray: actors to start (default one per CPU of the cluster)."
    ),
    traces: int = typer.Option(
        5, "--traces", help="Top hits per read-out rerun with their traces kept in screen.nc."
    ),
    ensemble: int = typer.Option(
        3,
        "--ensemble",
        help="Top hits per read-out rerun on the fitted worm's 8 bootstrap members (spread).",
    ),
    batch: str = typer.Option(
        "auto",
        "--batch",
        help="How a chunk's conditions run: vmap (one batch: accelerators), loop (one after "
        "another: CPUs) or auto (by the device JAX uses).",
    ),
):
    """Run a screen: drugs x doses x genes x stimulations, phenotypes against the wild type."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .._io import atomic_write_text
    from ..screen import batch_strategy, check_table, parse_grid, read_table, run_screen

    _check_engine(engine, address, workers)
    if (grid is None) == (table is None):
        raise DigiwormError("give the conditions as --grid SPEC or --table FILE (one of them)")
    batch_strategy(batch)  # a bad strategy fails before the atlas loads
    readouts = tuple(r.strip() for r in readout.split(",") if r.strip())
    conditions = parse_grid(grid) if grid is not None else read_table(table)
    atl = _atlas()
    checked = check_table(conditions, atl, readouts)  # every bad row, before anything runs
    command = shlex.join(["digiworm", *sys.argv[1:]]) if sys.argv[1:] else "digiworm screen"
    with Progress(
        TextColumn("screen"), BarColumn(), MofNCompleteColumn(), TextColumn("conditions"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("screen", total=len(checked), rate="")
        state = {"t0": None, "first": 0}

        def progress(done, total, skipped):
            import time

            if state["t0"] is None:
                state["t0"], state["first"] = time.perf_counter(), done
                if skipped:
                    console.print(f"resuming: {skipped} of {total} conditions already done")
            elapsed = time.perf_counter() - state["t0"]
            ran = done - state["first"]
            rate = f"{ran / elapsed:.2f}/s" if ran and elapsed > 0 else ""
            bar.update(task, completed=done, rate=rate)

        phenotypes, summary = run_screen(
            checked, atl, out, readouts=readouts, chunk_size=chunk, duration_s=duration,
            behaviour_duration_s=behaviour_duration, on_chunk=progress, command=command,
            engine=engine, address=address, workers=workers, traces=traces, ensemble=ensemble,
            batch=batch,
        )  # fmt: skip
    atomic_write_text(Path(out) / "command.txt", command + "\n")
    console.print(
        f"wrote [bold]{Path(out) / 'phenotypes.parquet'}[/] ({len(phenotypes)} conditions; "
        f"{summary['ran_rows']} run now, {summary['skipped_rows']} from earlier chunks), "
        f"the report {Path(out) / 'report.html'}"
    )
    for name, block in summary["hits"].items():
        console.print(f"top {name} hits, by the {block['ranked_by']}:")
        for hit in block["hits"][:5]:
            parts = [f"{hit['drug']} {hit['dose_uM']:g} uM"] if hit["drug"] != "none" else []
            parts += [f"{k} {hit[k]}" for k in ("knockout", "ablate") if hit[k] != "none"]
            value = {k: v for k, v in hit.items() if k.startswith(("neural_", "speed_"))}
            console.print(f"  row {hit['row']}: {', '.join(parts) or 'wild type'}  {value}")
