"""``digiworm validate``, ``fit`` and ``reproduce``: score, identify, the main job."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .._errors import DigiwormError
from ._common import _atlas, _user_errors, app, console


# -- digiworm validate -----------------------------------------------------------------------
@app.command("validate")
@_user_errors
def validate_command(
    prediction: Path = typer.Argument(..., help="NetCDF with dff(responding, stimulated)."),
    strain: str = typer.Option("wt", "--strain", help="Measured atlas to score against."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the scores as JSON."),
    model: str | None = typer.Option(
        None, "--model", help="Model to score, for files with a model dimension."
    ),
):
    """Score a prediction file against the measured signal propagation atlas."""
    from .._io import atomic_write_json
    from ..atlas import STRAINS
    from ..validate import load_perturbation, validate_prediction

    if strain not in STRAINS:
        from .._errors import UnknownNameError

        raise UnknownNameError("strain", strain, STRAINS)
    atl = _atlas()
    pred = load_perturbation(prediction, atl.names, what="prediction", model=model)
    with console.status("scoring (split-half noise ceiling from the per-trial data)…"):
        result = validate_prediction(atl, pred, strain)
    table = Table(title=f"{prediction.name} vs measured {strain} atlas", title_justify="left")
    metrics = (
        "pearson_clipped", "pearson_raw", "spearman", "sign_accuracy", "auroc", "scale_ratio"
    )  # fmt: skip
    table.add_column("predictor")
    for metric in metrics:
        table.add_column(metric, justify="right")
    table.add_column("pairs", justify="right")
    for name in ("prediction", "anatomy"):
        s = result[name]
        table.add_row(name, *(f"{s[m]:.3f}" for m in metrics), str(s["n_pairs"]))
    console.print(table)
    c = result["noise_ceiling"]
    fraction = result["fraction_of_ceiling"]
    reach = (
        f"prediction reaches {fraction:.0%} of it"
        if fraction is not None
        else "the measured split halves do not agree on these pairs, so there is no ceiling"
    )
    console.print(
        f"noise ceiling (split-half, Spearman–Brown, sqrt): {c['ceiling']:.3f} "
        f"(half r {c['r_half_clipped']:.3f} clipped 0.5–99.5 pct); {reach}"
    )
    if json_out is not None:
        atomic_write_json(json_out, result)
        console.print(f"wrote {json_out}")


# -- digiworm fit ----------------------------------------------------------------------------
@app.command("fit")
@_user_errors
def fit_command(
    data: Path | None = typer.Option(
        None, "--data", help="Perturbation NetCDF (default: the bundled wild-type atlas)."
    ),
    model: str = typer.Option(
        "linear", "--model", help="Model to identify: linear | graded | kernel."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (model file + scores.json)."),
    folds: int = typer.Option(5, "--folds", help="Cross-validation folds over neuron classes."),
    steps: int = typer.Option(300, "--steps", help="Optimiser steps per fit."),
    ridges: str = typer.Option(
        "0.3,1,3",
        "--ridges",
        help="Ridge strengths (pull towards the connectome with fitted transmitter-group "
        "gains) that inner cross-validation chooses among, comma-separated.",
    ),
    members: int = typer.Option(8, "--members", help="Bootstrap ensemble size (intervals)."),
    kernel_steps: int = typer.Option(
        80, "--kernel-steps", help="kernel: optimiser steps of each time-constant fit."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and the bootstrap."),
):
    """Identify a model from perturbation data; write it and its cross-validated scores."""
    from ..fit import LinearCVSettings, fit_dataset
    from ..validate import check_perturbation, load_perturbation

    if out.exists() and not out.is_dir():
        raise DigiwormError(f"--out {str(out)!r} exists and is not a folder")
    if steps < 1 or kernel_steps < 1:
        raise DigiwormError(f"--steps and --kernel-steps must be >= 1; got {steps}, {kernel_steps}")
    try:
        ridge_values = tuple(float(r) for r in ridges.split(","))
    except ValueError:
        raise DigiwormError(f"--ridges must be comma-separated numbers; got {ridges!r}") from None
    settings = LinearCVSettings(ridges=ridge_values, members=members, steps=steps, seed=seed)
    atl = _atlas()
    if data is None:
        keep = ["dff", "dff_trials", "n_trials", "q", "q_eq"] + (["kernel"] * (model == "kernel"))
        fun = atl.functional("wt")
        ds = check_perturbation(fun[keep], atl.names)
    else:
        ds = load_perturbation(data, atl.names)
    with console.status(f"fitting {model} model ({folds}-fold class split + final fit)…"):
        result = fit_dataset(
            atl, ds, out, model=model, folds=folds, settings=settings, seed=seed,
            kernel_steps=kernel_steps,
        )  # fmt: skip
    h = result["heldout"]
    if "identification" in result:
        console.print(f"graded network identified {result['identification']}")
    console.print(
        f"held-out ({folds}-fold class split): Pearson clipped {h['pearson_clipped']:.3f}, "
        f"Spearman {h['spearman']:.3f}, sign accuracy {h['sign_accuracy']:.3f}, AUROC "
        f"{h['auroc']:.3f} over {h['n_pairs']} pairs"
        + ("" if result["coverage90"] is None else
           f"; coverage of 90% intervals {result['coverage90']:.3f}")
    )  # fmt: skip
    if "heldout_kernels" in result:
        k = result["heldout_kernels"]
        console.print(
            "held-out kernel shapes (median r): "
            + ", ".join(f"{name} {v['shape_r_median']:.3f}" for name, v in k.items())
            + f"; median tau {result['tau_s_median']:.2f} s"
        )
    console.print(f"wrote {out / f'model_{model}.dwm'} (load with digiworm simulate --model) and "
                  f"{out / 'scores.json'}")  # fmt: skip


# -- digiworm reproduce ----------------------------------------------------------------------
@app.command("reproduce")
@_user_errors
def reproduce_command(
    out: Path = typer.Option(Path("digiworm-reproduce"), "--out", help="Output folder."),
    quick: bool = typer.Option(
        False, "--quick", help="Smaller ensemble, fixed ridge, fewer inner folds (~3 min)."
    ),
):
    """Run the main job: fit every model, cross-validate, score, predict unc-31, write a report."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..reproduce import ReproduceSettings, run_reproduce, write_outputs

    if out.exists() and not out.is_dir():
        raise DigiwormError(f"--out {str(out)!r} exists and is not a folder")
    settings = ReproduceSettings.quick_settings() if quick else ReproduceSettings()
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("loading the atlas", total=1.0)
        atl = _atlas()

        def progress(message: str, done: float) -> None:
            bar.update(task, description=message, completed=done)

        result = run_reproduce(atl, settings, progress)
        bar.update(task, description="writing the report", completed=0.98)
        written = write_outputs(result, out, atl, wall_s=time.perf_counter() - start)
        bar.update(task, description="done", completed=1.0)
    _print_scoreboard(result.scores)
    console.print(f"wrote {len(written)} files into {out}/ (open {out / 'report.html'}) in "
                  f"{time.perf_counter() - start:.0f} s")  # fmt: skip


def _print_scoreboard(scores: dict) -> None:
    metrics = ("pearson_clipped", "spearman", "sign_accuracy", "auroc", "scale_ratio")
    table = Table(title="held-out scores (5-fold class split; Pearson on 0.5–99.5 pct clipped)",
                  title_justify="left")  # fmt: skip
    table.add_column("predictor")
    for metric in metrics:
        table.add_column(metric, justify="right")
    rows = [(f"[bold]{m}[/]", v["heldout"]) for m, v in scores["models"].items() if "heldout" in v]
    rows += list(scores["baselines"].items())
    for name, s in rows:
        table.add_row(name, *(f"{s[m]:.3f}" for m in metrics))
    console.print(table)
    c = scores["noise_ceiling"]
    goal = 0.9 * c["ceiling"]
    console.print(f"noise ceiling {c['ceiling']:.3f} (goal 0.9 × ceiling = {goal:.3f})")
    for m, v in scores["models"].items():
        if v.get("coverage90") is not None:
            console.print(f"{m}: coverage of nominal 90% intervals {v['coverage90']:.3f}")
    kernel = scores["models"].get("kernel")
    if kernel is not None:
        k = kernel["heldout_kernels"]
        console.print(
            "kernel model, held-out kernel shapes (median r): "
            + ", ".join(f"{name} {v['shape_r_median']:.3f}" for name, v in k.items())
        )
    unc = scores["unc31"]
    for name, s in unc.items():
        if isinstance(s, dict) and "pearson_clipped" in s and "auroc" in s:
            console.print(f"unc-31 {name}: r {s['pearson_clipped']:.3f} clipped")
