"""``digiworm behave``: a brain in a body; the behaviour it makes, scored against the papers."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import _atlas, _user_errors, app, console
from ._simulate import _split


@app.command("behave")
@_user_errors
def behave_command(
    model: str = typer.Option(
        "graded",
        "--model",
        help="The brain: graded | linear (the fitted worm) | graded-uncalibrated | "
        "linear-uncalibrated | path of a saved model.",
    ),
    medium: str = typer.Option(
        "agar", "--medium", help="water | agar | a Newtonian viscosity in Pa s, e.g. 0.05."
    ),
    duration: float = typer.Option(60.0, "--duration", help="Simulated time, s (5 to 3600)."),
    ablate: list[str] = typer.Option([], "--ablate", help="Neurons to ablate, e.g. AVAL,AVAR."),
    knockout: list[str] = typer.Option(
        [],
        "--knockout",
        help="Genes to knock out (brain, and muscles where a rule exists: unc-25, unc-29, ...).",
    ),
    drug: list[str] = typer.Option(
        [],
        "--drug",
        help="NAME:DOSE_uM (brain and, for aldicarb and levamisole, muscles), e.g. levamisole:500.",
    ),
    touch: list[str] = typer.Option(
        [], "--touch", help="WHERE@SECONDS, WHERE anterior or posterior, e.g. anterior@20."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the command switch's noise."),
    out: Path = typer.Option(..., "--out", help="Output NetCDF file (.nc)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the summary (.json)."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Also draw the kymograph, path and direction (.png or .svg)."
    ),
):
    """Run a brain in a body: gait, reversals and touch responses, scored against the papers."""
    from .._io import atomic_write_json
    from ..app import check_output_path, parse_drug, write_netcdf
    from ..app._behaviour import BehaviourRequest, parse_touch, run_behaviour
    from ..body import plot_worm

    out = check_output_path(out, (".nc",))
    if json_out is not None:
        json_out = check_output_path(json_out, (".json",))
    if plot is not None:
        plot = check_output_path(plot, (".png", ".svg"))
    req = BehaviourRequest(
        model=model, medium=medium, duration_s=duration, ablate=_split(ablate),
        knockout=_split(knockout), drugs=tuple(parse_drug(d) for d in _split(drug)),
        touch=tuple(parse_touch(t) for t in _split(touch)), seed=seed,
    )  # fmt: skip
    atl = _atlas()
    req.check(atl)
    with console.status(f"simulating {duration:g} s of behaviour (the first run compiles)…"):
        ds, summary = run_behaviour(req, atl)
    write_netcdf(ds, out)
    console.print(f"wrote [bold]{out}[/] ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")
    _print_summary(summary)
    if json_out is not None:
        atomic_write_json(json_out, summary)
        console.print(f"summary [bold]{json_out}[/]")
    if plot is not None:
        plot_worm(ds, plot)
        console.print(f"figure [bold]{plot}[/]")


def _print_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title="behaviour", show_header=True)
    table.add_column("read-out")
    table.add_column("simulated", justify="right")
    table.add_column("target (range)", justify="right")
    table.add_column("source")
    keys = ("speed_mm_per_s", "reverse_speed_mm_per_s", "reversals_per_min", "forward_run_s",
            "reversal_s", "frequency_hz", "wavelength_body_lengths", "eigenworm_variance_4",
            "co_contraction")  # fmt: skip
    for key in keys:
        value = summary.get(key)
        hits = [s for s in summary["scores"] if s["key"] == key]
        target = ", ".join(_target_text(s) for s in hits) or "-"
        source = ", ".join(s["citation"].split(" (")[0] for s in hits) or ""
        table.add_row(key, "-" if value is None else f"{value:.3g}", target, source)
    console.print(table)
    touches = summary.get("touch_reversals") or []
    for spec, reversed_ in zip(summary["request"]["touch"], touches):
        console.print(f"touch {spec}: {'reversed' if reversed_ else 'did not reverse'}")


def _target_text(s: dict) -> str:
    text = f"{s['target']:.3g}"
    if s["low"] is not None and s["high"] is not None:
        text += f" ({s['low']:.3g}-{s['high']:.3g})"
    return text
