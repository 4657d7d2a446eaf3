"""``digiworm simulate``, ``export`` and ``serve``: run the worm, export it, explore it."""

from __future__ import annotations

from pathlib import Path

import typer

from .._errors import DigiwormError
from ._common import _atlas, _check_engine, _user_errors, app, console


# -- digiworm simulate -----------------------------------------------------------------------
def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(x.strip() for v in values for x in v.split(",") if x.strip())


@app.command("simulate")
@_user_errors
def simulate_command(
    model: str = typer.Option(
        "graded",
        "--model",
        help="graded | linear | kernel (the fitted worm shipped with digiworm) | conductance | "
        "graded-uncalibrated | linear-uncalibrated | kernel-atlas | path of a saved model.",
    ),
    stimulate: list[str] = typer.Option(
        [], "--stimulate", help="Neurons to stimulate, e.g. AVAL,AVAR (with --atlas: each in turn)."
    ),
    duration: float = typer.Option(30.0, "--duration", help="Simulated time, s."),
    dt: float | None = typer.Option(
        None, "--dt", help="Integration step, s (default 0.02; conductance 0.0005)."
    ),
    amplitude: float | None = typer.Option(
        None,
        "--amplitude",
        help="Drive (default 1: the fitted worm's unit, 1 mV for graded; graded-uncalibrated: "
        "mV, default 40; conductance: pA, default 20 mV above each rest).",
    ),
    onset: float | None = typer.Option(
        None, "--onset", help="Stimulus onset, s (default 5, or a quarter of a shorter run)."
    ),
    pulse: float | None = typer.Option(
        None,
        "--pulse",
        help="Stimulus length, s (default: the fitted worm is driven to the end, the steady "
        "state it was identified from; other models 0.5 s).",
    ),
    ablate: list[str] = typer.Option([], "--ablate", help="Neurons to ablate, e.g. RIML,RIMR."),
    knockout: list[str] = typer.Option([], "--knockout", help="Genes to knock out, e.g. unc-31."),
    drug: list[str] = typer.Option([], "--drug", help="NAME:DOSE_uM, e.g. aldicarb:1000."),
    connectome: str = typer.Option(
        "cook2019",
        "--connectome",
        help="Anatomical connectome: a worm dataset (cook2019, white1986, ...), an edge-list "
        "file (.parquet or .csv; --model graded or lif), flyvis[:EXTENT] (the fly's optic "
        "lobe) or synthetic-flywire[:SCALE].",
    ),
    neurons: Path | None = typer.Option(
        None, "--neurons", help="With a connectome file: its neuron table (.parquet or .csv)."
    ),
    trials: int = typer.Option(1, "--trials", help="With --model lif: trials run as a batch."),
    conditions: Path | None = typer.Option(
        None,
        "--conditions",
        help="With a connectome file: a table of conditions (.csv or .parquet: stimulate, "
        "[seed, trials, amplitude]), one rate or peak response per neuron each.",
    ),
    engine: str = typer.Option(
        "local", "--engine", help="With --conditions: local, or ray (a Ray cluster's actors)."
    ),
    address: str | None = typer.Option(
        None, "--address", help="With --engine ray: a running cluster (auto or HOST:PORT)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="With --engine ray: actors (default: the cluster's CPUs)."
    ),
    spontaneous: bool = typer.Option(False, "--spontaneous", help="Noise-driven activity."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (needed with noise)."),
    atlas_mode: bool = typer.Option(
        False, "--atlas", help="Stimulate every neuron in turn: the in-silico atlas."
    ),
    out: Path = typer.Option(..., "--out", help="Output NetCDF file (.nc)."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw a figure (.png or .svg)."),
):
    """Simulate the worm: stimulate, ablate, knock out genes, apply drugs; write NetCDF."""
    from ..app import (
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
    from ..brains._run import is_brain_file

    if is_brain_file(connectome):
        if conditions is not None:
            return _brain_conditions(connectome, neurons, model, conditions, duration, dt, seed,
                                     out, engine, address, workers, plot=plot,
                                     stimulate=bool(stimulate), trials=trials != 1,
                                     amplitude=amplitude is not None, onset=onset is not None,
                                     pulse=pulse is not None, ablate=ablate, knockout=knockout,
                                     drug=drug, spontaneous=spontaneous,
                                     atlas_mode=atlas_mode)  # fmt: skip
        if engine != "local" or address is not None or workers is not None:
            raise DigiwormError("--engine, --address and --workers are for --conditions")
        return _simulate_brain(connectome, neurons, model, _split(stimulate), duration, dt,
                               amplitude, onset, pulse, trials, seed, out, plot,
                               ablate=ablate, knockout=knockout, drug=drug,
                               spontaneous=spontaneous, atlas_mode=atlas_mode)  # fmt: skip
    if neurons is not None or trials != 1 or conditions is not None:
        raise DigiwormError(
            "--neurons, --trials and --conditions are for a connectome file (--connectome FILE)"
        )
    if engine != "local" or address is not None or workers is not None:
        raise DigiwormError("--engine, --address and --workers are for --conditions")
    req = SimulationRequest(
        model=model, stimulate=_split(stimulate), duration_s=duration,
        dt_s=dt,
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


def _simulate_brain(spec, neurons, model, stimulate, duration, dt, amplitude, onset, pulse,
                    trials, seed, out, plot, **worm_only):  # fmt: skip
    """``digiworm simulate --connectome FILE``: a larger brain (digiworm.brains)."""
    from ..app import write_netcdf
    from ..brains._run import load_brain, run_brain

    given = [f"--{k.replace('_mode', '').replace('_', '-')}" for k, v in worm_only.items() if v]
    if given:
        raise DigiwormError(
            f"{', '.join(given)} act on the worm's atlas; a connectome file takes --model, "
            "--stimulate, --duration, --dt, --amplitude, --onset, --pulse, --trials and --seed"
        )
    if plot is not None:
        raise DigiwormError("--plot draws the worm's traces; for a connectome file, open the .nc")
    with console.status("loading the connectome…"):
        brain = load_brain(spec, neurons, seed=seed or 0)
    console.print(f"{brain.source}: {brain.n_neurons:,} neurons, {brain.n_edges:,} connections")
    with console.status(f"simulating {model} (the first run compiles)…"):
        ds = run_brain(brain, model, stimulate=stimulate, duration_s=duration, dt_s=dt,
                       amplitude=amplitude, onset_s=onset, pulse_s=pulse, trials=trials,
                       seed=seed or 0)  # fmt: skip
    write_netcdf(ds, out)
    console.print(f"wrote [bold]{out}[/] ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")


def _brain_conditions(spec, neurons, model, conditions, duration, dt, seed, out, engine,
                      address, workers, **refused):  # fmt: skip
    """``digiworm simulate --connectome FILE --conditions TABLE``: many conditions, one file."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..app import write_netcdf
    from ..brains import run_conditions

    given = [f"--{k.replace('_mode', '').replace('_', '-')}" for k, v in refused.items() if v]
    if given:
        raise DigiwormError(
            f"with --conditions, {', '.join(given)} cannot be given: the table's columns "
            "(stimulate, seed, trials, amplitude) say what each condition does"
        )
    _check_engine(engine, address, workers)
    with Progress(
        TextColumn("conditions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("conditions", total=None)

        def progress(done, total):
            bar.update(task, completed=done, total=total)

        ds = run_conditions(spec, conditions, model=model, duration_s=duration, dt_s=dt,
                            neurons=neurons, graph_seed=seed or 0, engine=engine,
                            address=address, workers=workers, progress=progress)  # fmt: skip
    write_netcdf(ds, out)
    console.print(f"wrote [bold]{out}[/] ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")


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
    from ..models import c302_network, export_neuroml

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

    from ..serve import create_app

    atl = _atlas()
    with console.status("loading the atlas…"):
        atl.load_all()
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]binding to {host}: other machines on the network can reach it[/]")
    console.print(f"digiworm explorer on [bold]http://{host}:{port}/[/] (Ctrl-C stops it)")
    app = create_app(atl, models_dir=models, host=host)
    limit = app.state.limits.max_connections  # more at once are answered 503
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=limit)
