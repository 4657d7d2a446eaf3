"""``digiworm design``: how much data identifies the worm, and what to stimulate next."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .._errors import DigiwormError
from ._common import _atlas, _user_errors, app, console

design_app = typer.Typer(help="Experiment design: how much data identifies the worm.")
app.add_typer(design_app, name="design")


@design_app.command("error")
@_user_errors
def design_error_command(
    p: int = typer.Option(..., "--p", help="Number of inputs (coefficients per output)."),
    n: float = typer.Option(..., "--n", help="Number of samples."),
    sigma: float = typer.Option(..., "--sigma", help="Noise s.d. per output sample."),
    decay: float | None = typer.Option(
        None, "--decay", help="Input eigenvalues decay as decay^k (random basis, seed 0)."
    ),
    cond: Path | None = typer.Option(
        None, "--cond", help="Input covariance (p x p) as .npy or .csv."
    ),
    target: float | None = typer.Option(None, "--target", help="Also: samples for this error."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Print the expected least-squares error of y = A x + noise, and samples for a target."""
    import dataclasses
    import json

    import numpy as np

    from ..design import decaying_covariance, expected_error, samples_needed

    if decay is not None and cond is not None:
        raise DigiwormError("give either --decay or --cond, not both")
    cov = None
    if decay is not None:
        cov = decaying_covariance(p, decay)
    elif cond is not None:
        if not cond.is_file():
            raise DigiwormError(f"--cond file {str(cond)!r} does not exist")
        try:
            cov = np.load(cond) if cond.suffix == ".npy" else np.loadtxt(cond, delimiter=",")
        except ValueError as exc:
            raise DigiwormError(f"cannot read {str(cond)!r} as a matrix ({exc})") from None
    est = expected_error(p, n, sigma, cov)
    result = dataclasses.asdict(est)
    if target is not None:
        result["samples_for_target"] = samples_needed(target, p, sigma, cov)
        result["target"] = target
    if json_out:
        typer.echo(json.dumps(result, allow_nan=False if np.isfinite(est.exact_gaussian) else True))
        return
    console.print(
        f"expected error per output row (large-n): {est.approx:.4g}; exact for Gaussian inputs: "
        f"{est.exact_gaussian:.4g}\n tr(Σ⁻¹)/p = {est.trace_inv_per_p:.4g}, condition number "
        f"{est.condition_number:.3g}"
    )
    if target is not None:
        console.print(f"samples for error {target:g}: {result['samples_for_target']:.0f}")


@design_app.command("next")
@_user_errors
def design_next_command(
    model: Path = typer.Option(..., "--model", help="Fitted linear model (.dwm)."),
    k: int = typer.Option(10, "--k", help="Stimulation trials to choose."),
    criterion: str = typer.Option(
        "A", "--criterion",
        help="A (gain variance), D (log det information) or V (predictive variance of the "
        "pairs the atlas never measured).",
    ),
    sets: str = typer.Option(
        "single", "--sets",
        help="single (one neuron per trial) or classes (also every neuron class's members "
        "stimulated together).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):  # fmt: skip
    """Rank the next stimulations that best pin down the output gains (or the predictions)."""
    _check_sets(sets)
    atl = _atlas()
    fitted = _design_model(model, atl)
    ds, _ = _design_data(atl)
    table, (sigma, done, observed, _) = _planned(fitted, atl, ds, k, criterion, sets)
    if json_out:
        typer.echo(table.to_json(orient="records"))
        return
    what = "predictions of unmeasured pairs" if criterion == "V" else "output gains"
    out = Table(title=f"next {k} stimulation trials ({criterion}-optimal, {what}; "
                "responders as imaged in the atlas)", title_justify="left")  # fmt: skip
    for col in (
        "rank",
        "neuron",
        "trials done",
        "reduction" if criterion != "D" else "log det gain",
    ):
        out.add_column(col, justify="right" if col != "neuron" else "left")
    for row in table.itertuples():
        out.add_row(str(row.rank), row.neuron, str(row.trials_done), f"{row.reduction:.4f}")
    console.print(out)
    never = int((done == 0).sum())
    console.print(f"{never} of {len(done)} neurons were never stimulated in the atlas; "
                  f"{int((~observed).sum())} were never recorded as responders")  # fmt: skip


@design_app.command("plan")
@_user_errors
def design_plan_command(
    data: Path | None = typer.Option(
        None, "--data",
        help="Your perturbation NetCDF (the schema digiworm fit --data reads, with dff_trials); "
        "default: the bundled wild-type atlas.",
    ),
    budget: int = typer.Option(50, "--budget", help="Stimulation trials to plan."),
    criterion: str = typer.Option(
        "A", "--criterion",
        help="A (gain variance), D (log det information) or V (predictive variance of the "
        "pairs the data never measured).",
    ),
    sets: str = typer.Option(
        "single", "--sets", help="single, or classes (also each class's members together)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="A fitted linear model (.dwm) instead of fitting one to --data."
    ),
    out: Path = typer.Option(Path("plan.csv"), "--out", help="The plan, in order (.csv)."),
    report: Path | None = typer.Option(
        None, "--report", help="Also a folder with the expected uncertainty against trials."
    ),
):  # fmt: skip
    """Plan the next stimulations from your data: fit, then choose them in order."""
    from .._io import atomic_path
    from ..app import check_output_path
    from ..design import atlas_design

    out = check_output_path(out, (".csv",))
    if budget < 1:
        raise DigiwormError(f"--budget must be >= 1 trial; got {budget}")
    if criterion not in ("A", "D", "V"):
        raise DigiwormError(f"--criterion must be A, D or V; got {criterion!r}")
    _check_sets(sets)
    if report is not None and report.exists() and not report.is_dir():
        raise DigiwormError(f"--report {str(report)!r} exists and is not a folder")
    atl = _atlas()
    ds, what = _design_data(atl, data)
    design = atlas_design(ds)  # data without per-trial values fail before the fit
    fitted = _design_model(model, atl, ds, what)
    plan, (sigma, done, observed, unmeasured) = _planned(fitted, atl, ds, budget, criterion, sets,
                                                         design)  # fmt: skip
    with atomic_path(out) as tmp:
        plan.to_csv(tmp, index=False)
    table = Table(title=f"the first {min(budget, 10)} of {budget} planned trials "
                  f"({criterion}-optimal, from {what})", title_justify="left")  # fmt: skip
    for col in ("rank", "stimulate", "trials done", "reduction", "improves most"):
        table.add_column(col, justify="left" if col in ("stimulate", "improves most") else "right")
    for row in plan.head(10).itertuples():
        table.add_row(str(row.rank), row.neuron, str(row.trials_done), f"{row.reduction:.4f}",
                      row.improves_most.replace(";", ", "))  # fmt: skip
    console.print(table)
    console.print(f"wrote [bold]{out}[/] ({budget} trials in order)")
    if report is not None:
        from ..design._next import write_plan_report

        page = write_plan_report(plan, fitted, sigma, done, observed, criterion, report, what,
                                 target_pairs=unmeasured)  # fmt: skip
        console.print(f"report [bold]{page}[/]")


@design_app.command("study")
@_user_errors
def design_study_command(
    model: Path | None = typer.Option(
        None, "--model", help="Fitted linear model (.dwm); default: fit one to the atlas now."
    ),
    out: Path = typer.Option(Path("digiworm-design"), "--out", help="Output folder."),
    quick: bool = typer.Option(
        False, "--quick", help="3 seeds up to 1500 trials, smaller formula check (~2 min)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the formula check and shared drive."),
    criterion: str = typer.Option(
        "A",
        "--criterion",
        help="What the designs optimise: A (the unknowns' summed variance, "
        "what the study scores), D, or V (every scored prediction's variance).",
    ),  # fmt: skip
    sets: str = typer.Option(
        "single", "--sets", help="Candidates: single neurons, or also classes stimulated together."
    ),
    unknowns: str = typer.Option(
        "gains",
        "--unknowns",
        help="What is identified: every neuron's output gain, or the "
        "strongest couplings of the fitted network on wired pairs (--couplings of them).",
    ),  # fmt: skip
    couplings: int = typer.Option(300, "--couplings", help="Wired couplings identified."),
    seeds: int | None = typer.Option(None, "--seeds", help="Ground truths (default 5; quick 3)."),
    max_trials: int | None = typer.Option(
        None, "--max-trials", help="Trial budget (default 3000; quick 1500)."
    ),
):
    """Random vs designed stimulation on synthetic worms, with the formula and input checks."""
    import time

    from ..design import CRITERIA, atlas_design
    from ..design._report import run_design_report, write_design_report

    if out.exists() and not out.is_dir():
        raise DigiwormError(f"--out {str(out)!r} exists and is not a folder")
    if criterion not in CRITERIA:
        raise DigiwormError(f"--criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
    _check_sets(sets)
    if unknowns not in ("gains", "couplings"):
        raise DigiwormError(f"--unknowns must be 'gains' or 'couplings'; got {unknowns!r}")
    for name, value in (("--couplings", couplings), ("--seeds", seeds), ("--max-trials",
                                                                        max_trials)):  # fmt: skip
        if value is not None and value < 1:
            raise DigiwormError(f"{name} must be >= 1; got {value}")
    atl = _atlas()
    fitted = _design_model(model, atl)
    ds, _ = _design_data(atl)
    sigma, done, observed = atlas_design(ds)
    chosen = None
    if unknowns == "couplings":
        import numpy as np

        from ..design import wired_couplings
        from ..validate import baseline_context

        wired = np.asarray(baseline_context(atl).signed) != 0
        chosen = wired_couplings(np.asarray(fitted.a_per_s, float), wired, couplings)
    start = time.perf_counter()
    with console.status("design study…") as status:
        report = run_design_report(
            fitted, sigma, done, observed, quick=quick, seed=seed,
            progress=lambda m: status.update(f"design study: {m}"), criterion=criterion,
            sets=_class_sets(atl) if sets == "classes" else None, unknowns=chosen,
            seeds=seeds, max_trials=max_trials,
        )  # fmt: skip
    wall = time.perf_counter() - start
    write_design_report(report, out, wall)
    summary = report.study.summary()
    if summary["ratio_mean"] is None:
        console.print("designed order never reached random's final error")
    else:
        console.print(
            f"trials random needs / trials designed needs for the same gain error: "
            f"{summary['ratio_mean']:.2f} ± {summary['ratio_sd'] or 0:.2f} "
            f"({summary['seeds_reaching_target']}/{summary['seeds']} seeds)"
        )
    for key, what in (("adaptive", "adaptive"), ("adaptivity_gain", "fixed design / adaptive")):
        block = summary.get(key)
        if block and block["ratio_mean"] is not None:
            label = "trials random needs / trials adaptive needs" if key == "adaptive" else what
            reached = f"{block['seeds_reaching_target']}/{summary['seeds']} seeds"
            console.print(f"{label}: {block['ratio_mean']:.2f} ± {block['ratio_sd'] or 0:.2f} "
                          f"({reached})")  # fmt: skip
    console.print(f"wrote {out / 'report.html'}, study.json, curves.csv ({wall:.0f} s)")


def _check_sets(sets: str) -> None:
    if sets not in ("single", "classes"):
        raise DigiwormError(f"--sets must be 'single' or 'classes'; got {sets!r}")


def _design_data(atl, data: Path | None = None):
    """Return a design's checked perturbation dataset (the atlas's, or ``data``) and its name."""
    from ..validate import check_perturbation, load_perturbation

    if data is not None:
        return load_perturbation(data, atl.names), data.name
    fun = atl.functional("wt", kernel_time_s=None)
    return check_perturbation(
        fun[["dff", "dff_trials", "n_trials"]], atl.names
    ), "the wild-type atlas"


def _planned(fitted, atl, ds, k: int, criterion: str, sets: str, design=None):
    """Return the next ``k`` trials on ``ds`` (:func:`~digiworm.design.next_stimulations`).

    Also returns the design's inputs: responder noise, trials done, recorded responders
    (``design``, :func:`~digiworm.design.atlas_design` of ``ds`` if not given) and the pairs
    never measured (the V criterion's targets).
    """
    import numpy as np

    from ..design import atlas_design, next_stimulations

    sigma, done, observed = atlas_design(ds) if design is None else design
    unmeasured = (ds["n_trials"].to_numpy() == 0) & observed[:, None]
    np.fill_diagonal(unmeasured, False)
    with console.status(f"greedy {criterion}-optimal design of {k} trials over "
                        f"{len(atl.names)} neurons…"):  # fmt: skip
        table = next_stimulations(fitted, sigma, done, k=k, criterion=criterion,
                                  observed=observed, target_pairs=unmeasured,
                                  sets=_class_sets(atl) if sets == "classes" else None)  # fmt: skip
    return table, (sigma, done, observed, unmeasured)


def _class_sets(atl) -> dict:
    """Every neuron class with several members, stimulated together (a design candidate)."""
    import numpy as np

    classes = atl.neurons.loc[list(atl.names), "neuron_class"].to_numpy()
    return {
        f"{c} (all {int((classes == c).sum())})": np.flatnonzero(classes == c)
        for c in dict.fromkeys(classes)
        if (classes == c).sum() > 1
    }


def _design_model(path: Path | None, atl, ds=None, what: str = "the wild-type atlas"):
    """Return the linear model a design command works on: a file, or a fit to ``ds`` now.

    ``ds`` (a checked perturbation dataset with ``dff_trials``) defaults to the atlas's own.
    """
    from ..models import LinearModel, load_model

    if path is None:
        import numpy as np

        from ..fit import LinearCVSettings, fit_linear_response
        from ..fit._linear_cv import connectome_prior
        from ..models import linear_from_couplings
        from ..validate import baseline_context

        lin = LinearCVSettings()
        with console.status(f"fitting the linear network to {what} (ridge 1)…"):
            trials = (atl.functional("wt", kernel_time_s=None) if ds is None else ds)["dff_trials"]
            n = len(atl.names)
            fit = fit_linear_response(
                trials.to_numpy(), ~np.eye(n, dtype=bool),
                prior=connectome_prior(baseline_context(atl).signed), ridge=1.0,
                steps=lin.steps, learning_rate=lin.learning_rate, delta=lin.huber_delta,
            )  # fmt: skip
        return linear_from_couplings(atl.names, np.asarray(fit.w))
    if not path.is_file():
        raise DigiwormError(f"--model file {str(path)!r} does not exist")
    fitted = load_model(path)
    if not isinstance(fitted, LinearModel):
        raise DigiwormError(
            f"design needs a linear model (digiworm reproduce/fit writes model_linear.dwm); "
            f"{path.name} holds a {type(fitted).__name__}"
        )
    if tuple(fitted.names) != tuple(atl.names):
        raise DigiwormError(
            f"{path.name} covers {len(fitted.names)} neurons; design needs a model on the "
            f"atlas's {len(atl.names)} neurons in atlas order (as digiworm reproduce writes)"
        )
    return fitted
