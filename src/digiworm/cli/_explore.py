"""``digiworm atlas``, ``neuron`` and ``gene``: what the atlas knows."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .._errors import DigiwormError
from ._common import _atlas, _user_errors, app, console


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
        from ..report import write_atlas_report

        with console.status("drawing the atlas report…"):
            path = write_atlas_report(atl, report)
        console.print(f"report written to [bold]{path}[/]")


# -- digiworm neuron --------------------------------------------------------------------------
@app.command("neuron")
@_user_errors
def neuron_command(
    name: str | None = typer.Argument(
        None, help="Neuron id, e.g. AVAL (case-insensitive); none with --validate."
    ),
    top: int = typer.Option(6, "--top", min=1, max=50, help="Partners listed per row."),
    threshold: int = typer.Option(2, "--threshold", help="CeNGEN threshold 1-4."),
    model: bool = typer.Option(
        False, "--model", help="Show its conductance model from expression and a current clamp."
    ),
    knockout: list[str] = typer.Option(
        [], "--knockout", help="With --model: also run this ion-channel gene knocked out."
    ),
    out: Path = typer.Option(None, "--out", help="With --model: write the figure to this PNG."),
    validate: bool = typer.Option(
        False, "--validate", help="Predict each published neuron from its expression, held out."
    ),
    json_out: Path = typer.Option(None, "--json", help="With --validate: write the scores here."),
    report: Path = typer.Option(
        None, "--report", help="With --validate: write a page with one panel per neuron here."
    ),
    references: str = typer.Option(
        None, "--references", help="With --validate: only these published models (e.g. AWCon,RMD)."
    ),
    map_method: str = typer.Option(
        None,
        "--map",
        help="With --validate: calibrate the expression map by 'fitted' (to the published "
        "steady-state I-V and short current clamps; the default) or 'ratio' (conductance over "
        "TPM).",
    ),
):
    """Show a neuron card: identity, partners, peptides, channels, measured responses."""
    from ..atlas import check_threshold
    from ..report import neuron_card

    check_threshold(threshold)
    if validate:
        if name is not None or model or knockout or out is not None:
            raise DigiwormError("--validate takes no NAME, --model, --knockout or --out")
        _validate_cells(_atlas(), threshold, json_out, report, references, map_method or "fitted")
        return
    if any(v is not None for v in (json_out, report, references, map_method)):
        raise DigiwormError("--json, --report, --references and --map need --validate")
    if name is None:
        raise DigiwormError("give a neuron NAME (e.g. AVAL), or --validate")
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


def _validate_cells(atl, threshold, json_out, report, references, method):
    from .._io import atomic_write_json
    from ..report import write_cell_validation_report
    from ..validate import leave_one_out_cells

    if json_out is not None and json_out.suffix.lower() != ".json":
        raise DigiwormError(f"--json must name a .json file; got {json_out}")
    refs = None if references is None else [r.strip() for r in references.split(",") if r.strip()]
    with console.status("published neurons, held out in turn…") as status:
        result = leave_one_out_cells(
            atl, refs, threshold=threshold, method=method, progress=lambda m: status.update(m)
        )
    t = Table(
        title=f"each published neuron predicted from its expression (map {method} on the others)",
        title_justify="left",
    )
    cols = ("published", "neuron", "rest error (mV)", "RMS (mV)", "RMS in-sample",
            "RMS mean of others", "RMS generic", "R_in (GΩ) pred / pub", "rests")  # fmt: skip
    for col in cols:
        t.add_column(col, justify="left" if col in ("published", "neuron") else "right")
    summary = result.summary()
    for ref, s in summary.items():
        t.add_row(
            ref, s["neuron"], f"{s['rest_error_mV']:+.1f}", f"{s['rms_mV']:.1f}",
            f"{s['in_sample_rms_mV']:.1f}", f"{s['baseline_mean_rms_mV']:.1f}",
            f"{s['baseline_generic_rms_mV']:.1f}",
            f"{s['input_resistance_GOhm']:.2f} / {s['published_input_resistance_GOhm']:.2f}",
            "same count" if s["signature_ok"] else "count differs",
        )  # fmt: skip
    console.print(t)
    goals = result.goals()
    console.print(
        f"held out: rest within 5 mV {goals['held_out_rest_within_5mV']}/{goals['n']}, RMS "
        f"within 10 mV {goals['held_out_rms_within_10mV']}/{goals['n']}; median RMS: "
        + ", ".join(f"{k} {v:.1f} mV" for k, v in goals["median_rms_mV"].items())
    )
    if json_out is not None:
        atomic_write_json(
            json_out,
            {"neurons": summary, "goals": goals, "threshold": threshold, "map": method},
        )
        console.print(f"scores written to [bold]{json_out}[/]")
    if report is not None:
        page = write_cell_validation_report(result, report)
        console.print(f"report written to [bold]{page}[/]")


def _print_neuron_model(atl, canon, knockouts, threshold, out):
    from .._neuron_model import neuron_model_view

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
    from ..atlas import THRESHOLDS, check_threshold

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
