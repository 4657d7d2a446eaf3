"""The ``digiworm`` command line: ``digiworm atlas | neuron NAME | gene NAME``.

User errors (unknown neuron, gene, dataset, out-of-range option) exit with code 2 and one line
on stderr naming the bad value and what would be valid; no tracebacks.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from ._errors import DigiwormError

app = typer.Typer(
    name="digiworm",
    help="A digital C. elegans built bottom up: atlas, models, experiments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# tables are wide: outside a terminal (pipes, CI logs) render at 160 columns, not rich's 80
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

ADULT_CONNECTOMES = ("cook2019", "white1986", "witvliet2021_8")


def _user_errors(func):
    """Turn digiworm's user-facing errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DigiwormError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(code=2) from None

    return wrapper


def _atlas():
    from . import atlas

    return atlas.load()


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log cache activity.")):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
    )


# -- digiworm atlas ---------------------------------------------------------------------------
@app.command("atlas")
@_user_errors
def atlas_command(
    report: Path | None = typer.Option(
        None, "--report", help="Write an HTML report with figures into this folder."
    ),
):
    """List every dataset: what it measures, neurons covered, version, citation, licence."""
    atl = _atlas()
    with console.status("loading the atlas (first run parses the data packages)…"):
        events = atl.load_all()
    table = Table(title="digiworm atlas: datasets", show_lines=False, expand=True)
    for col, style in (
        ("dataset", "bold cyan"), ("measures", ""), ("neurons", "green"),
        ("version", "magenta"), ("citation", "dim"), ("licence", "dim"),
    ):  # fmt: skip
        table.add_column(col, style=style, overflow="fold")
    cat = atl.catalogue()
    for name, row in cat.iterrows():
        table.add_row(name, row.measures, row.neurons, row.version, row.citation, row.licence)
    console.print(table)
    built = sum(e.status != "hit" for e in events)
    seconds = sum(e.seconds for e in events)
    rebuilt = [e for e in events if e.status == "rebuilt"]
    console.print(
        f"{len(events)} datasets loaded in {seconds:.2f} s ({built} parsed, "
        f"{len(events) - built} from cache at {atl.cache.root})"
    )
    for e in rebuilt:
        console.print(f"[yellow]rebuilt {e.name}:[/] {e.reason}")
    if report is not None:
        from .report import write_atlas_report

        with console.status("drawing the atlas report…"):
            path = write_atlas_report(atl, report)
        console.print(f"report written to [bold]{path}[/]")


# -- digiworm neuron --------------------------------------------------------------------------
@app.command("neuron")
@_user_errors
def neuron_command(
    name: str = typer.Argument(..., help="Neuron id, e.g. AVAL (case-insensitive)."),
    top: int = typer.Option(6, "--top", min=1, max=50, help="Partners listed per row."),
    threshold: int = typer.Option(2, "--threshold", help="CeNGEN threshold 1-4."),
    model: bool = typer.Option(
        False, "--model", help="Show its conductance model from expression and a current clamp."
    ),
    knockout: list[str] = typer.Option(
        [], "--knockout", help="With --model: also run this ion-channel gene knocked out."
    ),
    out: Path = typer.Option(None, "--out", help="With --model: write the figure to this PNG."),
):
    """Show a neuron card: identity, partners, peptides, channels, measured responses."""
    from .atlas import check_threshold
    from .report import neuron_card

    check_threshold(threshold)
    atl = _atlas()
    canon = atl.neuron(name)
    if model:
        _print_neuron_model(atl, canon, knockout, threshold, out)
        return
    if knockout or out is not None:
        raise DigiwormError("--knockout and --out need --model")
    card = neuron_card(atl, canon, top=top, threshold=threshold)
    console.rule(f"[bold]{canon}[/]  ({card['identity']['class']} class)")
    ident = Table(show_header=False, box=None)
    for k, v in card["identity"].items():
        ident.add_row(f"[cyan]{k}[/]", str(v))
    console.print(ident)
    for section, rows in card["sections"].items():
        t = Table(title=section, show_header=False, title_justify="left", box=None)
        t.add_column(style="cyan", no_wrap=True)
        t.add_column(overflow="fold")
        for k, v in rows.items():
            t.add_row(k, v)
        console.print(t)


def _print_neuron_model(atl, canon, knockouts, threshold, out):
    from ._neuron_model import neuron_model_view

    with console.status(f"building {canon}'s conductance model and running a current clamp…"):
        view = neuron_model_view(atl, canon, knockouts=knockouts, threshold=threshold, out=out)
    console.rule(f"[bold]{canon}[/]: conductance model from CeNGEN expression")
    t = Table(title=f"channels (capacitance {view.c_pF:.2f} pF)", title_justify="left")
    for col in ("channel", "genes", "TPM", "g (nS)", "description"):
        t.add_column(col, justify="right" if col in ("TPM", "g (nS)") else "left")
    for row in view.channels.itertuples():
        tpm = "-" if row.channel == "leak" else f"{row.TPM:.0f}"
        g = f"{row.g_nS:.3f}" + (" (prior)" if row.prior else "")
        t.add_row(row.channel, row.genes, tpm, g, row.description)
    console.print(t)
    if view.unmodelled:
        console.print("expressed channel genes with no kinetics: " + ", ".join(view.unmodelled))
    for label, rests in view.rests_mV.items():
        kind = "bistable" if len(rests) > 1 else "one rest"
        console.print(f"{label}: rest {', '.join(f'{r:.1f}' for r in rests)} mV ({kind})")
    r = Table(title="current clamp, 500 ms steps: peak / end (mV)", title_justify="left")
    r.add_column("step (pA)", justify="right")
    labels = list(dict.fromkeys(view.responses["model"]))
    for label in labels:
        r.add_column(label, justify="right")
    for step, rows in view.responses.groupby("step_pA", sort=True):
        cells = [
            f"{x.peak_mV:.1f} / {x.end_mV:.1f}"
            for x in rows.set_index("model").loc[labels].itertuples()
        ]
        r.add_row(f"{step:g}", *cells)
    console.print(r)
    if view.reference:
        console.print(f"published model of this neuron shown beside: {view.reference}")
    if view.figure is not None:
        console.print(f"figure written to [bold]{view.figure}[/]")


# -- digiworm gene ----------------------------------------------------------------------------
@app.command("gene")
@_user_errors
def gene_command(
    name: str = typer.Argument(..., help="Gene name (e.g. shk-1) or WBGene id."),
    threshold: int = typer.Option(2, "--threshold", help="CeNGEN threshold 1-4 for the list."),
):
    """Show which neurons express a gene, at which CeNGEN threshold, and its role."""
    from .atlas import THRESHOLDS, check_threshold

    check_threshold(threshold)
    atl = _atlas()
    gene = atl.gene(name)
    roles = atl.gene_roles
    console.rule(f"[bold]{gene}[/]")
    if gene in roles.index:
        r = roles.loc[gene]
        console.print(f"[cyan]role[/]: {r.role} ({r.family}; {r.category})")
        if r.model_effect and r.model_effect != "none":
            console.print(f"[cyan]model effect of a knockout[/]: {r.model_effect}")
        console.print(f"[cyan]citation[/]: {r.citation}")
    else:
        console.print("[dim]no curated role in digiworm's gene table[/]")
    counts = Table(title="neurons expressing it, by CeNGEN threshold", title_justify="left")
    counts.add_column("threshold")
    counts.add_column("neurons", justify="right")
    counts.add_column("types", justify="right")
    for th in THRESHOLDS:
        expr = atl.expression(gene, th)
        n_types = int((atl.expression_matrix(th).sel(gene=gene) > 0).sum())
        label = {1: "1 liberal", 2: "2 medium", 3: "3 conservative", 4: "4 stringent"}[th]
        counts.add_row(label, str(int((expr > 0).sum())), str(n_types))
    console.print(counts)
    expr = atl.expression(gene, threshold).to_series()
    classes = atl.neurons["neuron_class"]
    by_class = expr[expr > 0].groupby(classes).max().sort_values(ascending=False)
    listing = Table(
        title=f"expressing classes at threshold {threshold} (TPM)", title_justify="left"
    )
    listing.add_column("class")
    listing.add_column("TPM", justify="right")
    listing.add_column("neurons")
    for cls, tpm in by_class.items():
        members = expr[(classes == cls) & (expr > 0)].index
        listing.add_row(cls, f"{tpm:.1f}", ", ".join(members))
    if by_class.empty:
        console.print(f"not detected in any neuron at threshold {threshold}")
    else:
        console.print(listing)


# -- digiworm simulate -----------------------------------------------------------------------
def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(x.strip() for v in values for x in v.split(",") if x.strip())


@app.command("simulate")
@_user_errors
def simulate_command(
    model: str = typer.Option(
        "graded",
        "--model",
        help="graded | linear | kernel | conductance | path of a saved model.",
    ),
    stimulate: list[str] = typer.Option(
        [], "--stimulate", help="Neurons to stimulate, e.g. AVAL,AVAR (with --atlas: each in turn)."
    ),
    duration: float = typer.Option(30.0, "--duration", help="Simulated time, s."),
    dt: float | None = typer.Option(
        None, "--dt", help="Integration step, s (default 0.02; conductance 0.0005)."
    ),
    amplitude: float | None = typer.Option(
        None, "--amplitude", help="Drive (graded: mV, default 40; linear/kernel: default 1)."
    ),
    onset: float | None = typer.Option(
        None, "--onset", help="Stimulus onset, s (default 5, or a quarter of a shorter run)."
    ),
    pulse: float = typer.Option(0.5, "--pulse", help="Stimulus length, s."),
    ablate: list[str] = typer.Option([], "--ablate", help="Neurons to ablate, e.g. RIML,RIMR."),
    knockout: list[str] = typer.Option([], "--knockout", help="Genes to knock out, e.g. unc-31."),
    drug: list[str] = typer.Option([], "--drug", help="NAME:DOSE_uM, e.g. aldicarb:1000."),
    connectome: str = typer.Option("cook2019", "--connectome", help="Anatomical connectome."),
    spontaneous: bool = typer.Option(False, "--spontaneous", help="Noise-driven activity."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (needed with noise)."),
    atlas_mode: bool = typer.Option(
        False, "--atlas", help="Stimulate every neuron in turn: the in-silico atlas."
    ),
    out: Path = typer.Option(..., "--out", help="Output NetCDF file (.nc)."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw a figure (.png or .svg)."),
):
    """Simulate the worm: stimulate, ablate, knock out genes, apply drugs; write NetCDF."""
    from ._simulate_cmd import (
        SimulationRequest,
        check_output_path,
        parse_drug,
        plot_traces,
        run_request,
        write_netcdf,
    )

    out = check_output_path(out, (".nc",))
    if plot is not None:
        plot = check_output_path(plot, (".png", ".svg"))
    req = SimulationRequest(
        model=model, stimulate=_split(stimulate), duration_s=duration,
        dt_s=dt if dt is not None else (0.0005 if model == "conductance" else 0.02),
        amplitude=amplitude, onset_s=onset, pulse_s=pulse, ablate=_split(ablate),
        knockout=_split(knockout), drugs=tuple(parse_drug(d) for d in _split(drug)),
        connectome=connectome, spontaneous=spontaneous, seed=seed, atlas_mode=atlas_mode,
    )  # fmt: skip
    atl = _atlas()
    req.check(atl)
    if req.atlas_mode:  # a progress bar over batches of stimulated neurons
        ds = run_request(req, atl, progress=True)
    else:
        with console.status("simulating (the first run compiles the model)…"):
            ds = run_request(req, atl, progress=False)
    write_netcdf(ds, out)
    console.print(f"wrote [bold]{out}[/] ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")
    if plot is not None:
        plot_traces(ds, plot)
        console.print(f"figure [bold]{plot}[/]")


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
    from ._io import atomic_write_json
    from .atlas import STRAINS
    from .validate import load_perturbation, validate_prediction

    if strain not in STRAINS:
        from ._errors import UnknownNameError

        raise UnknownNameError("strain", strain, STRAINS)
    atl = _atlas()
    pred = load_perturbation(prediction, atl.names, what="prediction", model=model)
    with console.status("scoring (split-half noise ceiling from the per-trial data)…"):
        result = validate_prediction(atl, pred, strain)
    table = Table(title=f"{prediction.name} vs measured {strain} atlas", title_justify="left")
    metrics = ("pearson_clipped", "pearson_raw", "spearman", "sign_accuracy", "auroc")
    table.add_column("predictor")
    for metric in metrics:
        table.add_column(metric, justify="right")
    table.add_column("pairs", justify="right")
    for name in ("prediction", "anatomy"):
        s = result[name]
        table.add_row(name, *(f"{s[m]:.3f}" for m in metrics), str(s["n_pairs"]))
    console.print(table)
    c = result["noise_ceiling"]
    console.print(
        f"noise ceiling (split-half, Spearman–Brown, sqrt): {c['ceiling']:.3f} "
        f"(half r {c['r_half_clipped']:.3f} clipped 0.5–99.5 pct); prediction reaches "
        f"{result['fraction_of_ceiling']:.0%} of it"
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
        help="Ridge strengths (pull towards the scaled connectome) that "
        "inner cross-validation chooses among, comma-separated.",
    ),
    members: int = typer.Option(8, "--members", help="Bootstrap ensemble size (intervals)."),
    kernel_steps: int = typer.Option(
        80, "--kernel-steps", help="kernel: optimiser steps of each time-constant fit."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and the bootstrap."),
):
    """Identify a model from perturbation data; write it and its cross-validated scores."""
    from .fit import LinearCVSettings, fit_dataset
    from .validate import check_perturbation, load_perturbation

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

    from .reproduce import ReproduceSettings, run_reproduce, write_outputs

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
    metrics = ("pearson_clipped", "spearman", "sign_accuracy", "auroc")
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


# -- digiworm design ------------------------------------------------------------------------
# -- digiworm export ---------------------------------------------------------------------------
@app.command("export")
@_user_errors
def export_command(
    out: Path = typer.Option(..., "--out", help="Folder for the NeuroML2 + LEMS files."),
    neurons: str = typer.Option(
        None, "--neurons", help="Comma-separated neurons (default all 302), e.g. AVAL,AVAR,AVBL."
    ),
    stimulate: list[str] = typer.Option(
        [], "--stimulate", help="Current clamp NEURON:DELAY_MS:DURATION_MS:AMPLITUDE_PA."
    ),
    duration_ms: float = typer.Option(1000.0, "--duration-ms", min=0.001),
    dt_ms: float = typer.Option(0.05, "--dt-ms", min=1e-6),
):
    """Export the c302 C2 network (digiworm's C302Network) as NeuroML2 + LEMS files."""
    from .models import c302_network, export_neuroml

    atl = _atlas()
    names = None if neurons is None else atl.neuron_list(neurons)
    stimuli = []
    for item in stimulate:
        parts = item.split(":")
        if len(parts) != 4:
            raise DigiwormError(
                f"--stimulate wants NEURON:DELAY_MS:DURATION_MS:AMPLITUDE_PA; got {item!r}"
            )
        try:
            delay, dur, amp = (float(x) for x in parts[1:])
        except ValueError:
            raise DigiwormError(f"--stimulate numbers must be numbers; got {item!r}") from None
        stimuli.append((atl.neuron(parts[0]), delay, dur, amp))
    net = c302_network(names)
    lems = export_neuroml(net, out, stimuli=stimuli, duration_ms=duration_ms, dt_ms=dt_ms)
    console.print(
        f"wrote {lems.parent}: run it with [bold]jnml {lems.name}[/] (add -neuron for NEURON)"
    )


@app.command("serve")
@_user_errors
def serve_command(
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind (default: this machine only)."
    ),
    models: Path | None = typer.Option(
        None, "--models", help="Folder of fitted models (*.dwm, e.g. digiworm-reproduce)."
    ),
):
    """Start the worm explorer, a local web page: stimulate, ablate, knock out, compare."""
    import uvicorn

    from .serve import create_app

    atl = _atlas()
    with console.status("loading the atlas…"):
        atl.load_all()
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]binding to {host}: other machines on the network can reach it[/]")
    console.print(f"digiworm explorer on [bold]http://{host}:{port}/[/] (Ctrl-C stops it)")
    app = create_app(atl, models_dir=models, host=host)
    limit = app.state.limits.max_connections  # more at once are answered 503
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=limit)


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

    from .design import decaying_covariance, expected_error, samples_needed

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
    import numpy as np

    from .design import atlas_design, next_stimulations
    from .validate import check_perturbation

    atl = _atlas()
    fitted = _design_model(model, atl)
    fun = atl.functional("wt", kernel_time_s=None)
    ds = check_perturbation(fun[["dff", "dff_trials", "n_trials"]], atl.names)
    sigma, done, observed = atlas_design(ds)
    if sets not in ("single", "classes"):
        raise DigiwormError(f"--sets must be 'single' or 'classes'; got {sets!r}")
    candidates = None
    if sets == "classes":
        classes = atl.neurons.loc[list(atl.names), "neuron_class"].to_numpy()
        candidates = {
            f"{c} (all {int((classes == c).sum())})": np.flatnonzero(classes == c)
            for c in dict.fromkeys(classes)
            if (classes == c).sum() > 1
        }
    unmeasured = (ds["n_trials"].to_numpy() == 0) & observed[:, None]
    np.fill_diagonal(unmeasured, False)
    with console.status(f"greedy {criterion}-optimal design over {len(atl.names)} neurons…"):
        table = next_stimulations(fitted, sigma, done, k=k, criterion=criterion,
                                  observed=observed, sets=candidates,
                                  target_pairs=unmeasured)  # fmt: skip
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
):
    """Random vs designed stimulation on synthetic worms, with the formula and input checks."""
    import time

    from .design import atlas_design
    from .design._report import run_design_report, write_design_report
    from .validate import check_perturbation

    if out.exists() and not out.is_dir():
        raise DigiwormError(f"--out {str(out)!r} exists and is not a folder")
    atl = _atlas()
    fitted = _design_model(model, atl)
    fun = atl.functional("wt", kernel_time_s=None)
    ds = check_perturbation(fun[["dff", "dff_trials", "n_trials"]], atl.names)
    sigma, done, observed = atlas_design(ds)
    start = time.perf_counter()
    with console.status("design study…") as status:
        report = run_design_report(
            fitted, sigma, done, observed, quick=quick, seed=seed,
            progress=lambda m: status.update(f"design study: {m}"),
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
    console.print(f"wrote {out / 'report.html'}, study.json, curves.csv ({wall:.0f} s)")


def _design_model(path: Path | None, atl):
    """Return the linear model a design command works on: a file, or a fit to the atlas now."""
    from .models import LinearModel, load_model

    if path is None:
        import numpy as np

        from .fit import LinearCVSettings, fit_linear_response
        from .fit._linear_cv import connectome_prior
        from .models import linear_from_couplings
        from .validate import baseline_context

        lin = LinearCVSettings()
        with console.status("fitting the linear network to the wild-type atlas (ridge 1)…"):
            fun = atl.functional("wt", kernel_time_s=None)
            n = len(atl.names)
            fit = fit_linear_response(
                fun["dff_trials"].to_numpy(), ~np.eye(n, dtype=bool),
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``digiworm`` console script."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:  # typer exits through SystemExit
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
