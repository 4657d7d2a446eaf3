"""``digiworm behave``: a brain in a body; the behaviour it makes, scored against the papers."""

from __future__ import annotations

from pathlib import Path

import typer

from .._errors import DigiwormError
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
        "agar",
        "--medium",
        help="water | agar | blend:F (0 water to 1 agar) | a Newtonian viscosity in Pa s (0.05).",
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
    out: Path | None = typer.Option(None, "--out", help="Output NetCDF file (.nc)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the summary (.json)."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Also draw the kymograph, path and direction (.png or .svg)."
    ),
    video: Path | None = typer.Option(
        None, "--video", help="Also write the moving worm, neurons coloured (.gif)."
    ),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Instead of one run: the behaviour report in DIR (wild type in water and on "
        "agar, ablations, mutants, drugs, gait across media, dose-response).",
    ),
):
    """Run a brain in a body: gait, reversals and touch responses, scored against the papers."""
    from .._io import atomic_write_json
    from ..app import check_output_path, parse_drug, write_netcdf
    from ..app._behaviour import BehaviourRequest, parse_touch, run_behaviour
    from ..body import animate_worm, plot_worm

    if report is not None:
        _report(model, duration, seed, report, bool(ablate or knockout or drug or touch))
        return
    if out is None:
        raise DigiwormError("give --out RUN.nc (one run) or --report DIR (the report)")
    out = check_output_path(out, (".nc",))
    if json_out is not None:
        json_out = check_output_path(json_out, (".json",))
    if plot is not None:
        plot = check_output_path(plot, (".png", ".svg"))
    if video is not None:
        video = check_output_path(video, (".gif",))
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
    if video is not None:
        with console.status("drawing the video…"):
            frames = animate_worm(ds, video)
        console.print(f"video [bold]{video}[/] ({frames} frames)")


def _report(model: str, duration: float, seed: int, folder: Path, perturbed: bool) -> None:
    from rich.progress import Progress

    from ..app._behaviour import BehaviourRequest, behaviour_suite
    from ..report import write_behaviour_report

    if perturbed:
        raise DigiwormError(
            "--report runs its own set of ablations, mutants, drugs and touches; drop --ablate, "
            "--knockout, --drug and --touch"
        )
    if folder.exists() and not folder.is_dir():
        raise DigiwormError(f"--report {str(folder)!r} is a file, not a folder")
    atl = _atlas()
    BehaviourRequest(model=model, duration_s=duration, seed=seed).check(atl)
    with Progress(console=console) as bar:
        task = bar.add_task("behaviour report", total=None)

        def progress(done, total, label):
            bar.update(task, completed=done, total=total, description=f"behaviour: {label}")

        suite = behaviour_suite(atl, model, duration_s=duration, seed=seed, progress=progress)
    index = write_behaviour_report(suite, folder)
    met = [p["met"] for p in suite["perturbations"]]
    console.print(
        f"wrote [bold]{index}[/]: perturbations met {sum(m is True for m in met)}, missed "
        f"{sum(m is False for m in met)}, not testable {sum(m is None for m in met)}"
    )


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
