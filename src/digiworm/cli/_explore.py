"""``digiworm atlas``, ``neuron`` and ``gene``: what the atlas knows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    refit: bool = typer.Option(
        False,
        "--refit",
        help="With --validate --map fitted: fit the maps now (about 10 min) instead of using "
        "the shipped ones.",
    ),
    maps_out: Path = typer.Option(
        None, "--maps-out", help="With --validate --refit: write the fitted maps to this JSON."
    ),
):
    """Show a neuron card: identity, partners, peptides, channels, measured responses."""
    from ..atlas import check_threshold
    from ..report import neuron_card

    check_threshold(threshold)
    if validate:
        if name is not None or model or knockout or out is not None:
            raise DigiwormError("--validate takes no NAME, --model, --knockout or --out")
        _validate_cells(
            _atlas(), threshold, json_out, report, references, map_method or "fitted", refit,
            maps_out,
        )  # fmt: skip
        return
    if any(v is not None for v in (json_out, report, references, map_method, maps_out)) or refit:
        raise DigiwormError(
            "--json, --report, --references, --map, --refit and --maps-out need --validate"
        )
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


def _validate_cells(atl, threshold, json_out, report, references, method, refit, maps_out):
    from .._io import atomic_write_json
    from ..models import fitted_expression_maps, jackknife_maps, write_expression_maps
    from ..report import write_cell_validation_report
    from ..validate import (
        channel_knockouts,
        expression_population,
        knockout_agreement,
        leave_one_out_cells,
    )

    for flag, path in (("--json", json_out), ("--maps-out", maps_out)):
        if path is not None and path.suffix.lower() != ".json":
            raise DigiwormError(f"{flag} must name a .json file; got {path}")
    if (refit or maps_out is not None) and method != "fitted":
        raise DigiwormError("--refit and --maps-out apply to --map fitted only")
    if maps_out is not None and (not refit or references is not None):
        raise DigiwormError("--maps-out needs --refit over all references (no --references)")
    refs = None if references is None else [r.strip() for r in references.split(",") if r.strip()]
    maps = None
    if method == "fitted" and not refit:
        if threshold != 2:
            raise DigiwormError(
                f"the shipped fitted maps are at threshold 2; add --refit to fit them at "
                f"threshold {threshold} (about 10 min)"
            )
        maps = fitted_expression_maps()
    with console.status("published neurons, held out in turn…") as status:
        result = leave_one_out_cells(
            atl, refs, threshold=threshold, method=method, maps=maps,
            progress=lambda m: status.update(m),
        )  # fmt: skip
    if maps_out is not None:
        write_expression_maps(maps_out, result.maps)
        console.print(f"maps written to [bold]{maps_out}[/]")
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
    held = list(result.responses)
    with console.status("channel-gene knockouts, then every neuron from its expression…"):
        knockouts = channel_knockouts(atl, references=held, maps=result.maps)
        n_loo = sum(r != "all" for r in result.maps)
        ensemble = jackknife_maps(result.maps) if n_loo >= 3 else {}
        population = expression_population(atl, result.maps["all"], ensemble=ensemble)
    _print_knockouts(knockouts)
    agreement = knockout_agreement(knockouts)
    rest = agreement["rest_mV"]
    console.print(
        f"knockouts: where the published rest moves >= 1 mV ({rest['n']} pairs) the held-out "
        f"prediction has the same sign in {rest['same_sign']} (r {rest['pearson']:.2f}); "
        f"bistability changes reproduced {agreement['rest_count_changes']['reproduced']}/"
        f"{agreement['rest_count_changes']['n']}"
    )
    pop = _population_summary(population)
    console.print(
        f"all {pop['n']} neurons from expression: median rest {pop['median_rest_mV']:.1f} mV, "
        f"median input resistance {pop['median_input_resistance_GOhm']:.2f} GΩ, "
        f"{pop['bistable']} bistable, median prior share {pop['median_prior_share']:.2f}, "
        f"{pop['with_unmodelled_channels']} express pore-forming channel genes without kinetics"
    )
    if json_out is not None:
        atomic_write_json(
            json_out,
            {
                "neurons": summary,
                "goals": goals,
                "threshold": threshold,
                "map": method,
                "knockouts": knockouts.to_dict(orient="records"),
                "knockout_agreement": agreement,
                "population": pop,
                "population_neurons": population.reset_index().to_dict(orient="records"),
            },
        )
        console.print(f"scores written to [bold]{json_out}[/]")
    if report is not None:
        page = write_cell_validation_report(
            result, report, knockouts=knockouts, population=population
        )
        console.print(f"report written to [bold]{page}[/]")


def _print_knockouts(knockouts):
    genes = list(dict.fromkeys(knockouts.gene))
    t = Table(
        title="knockouts: change of rest (mV), published model / held-out prediction "
        "(- : the cell has no channel of the gene)",
        title_justify="left",
    )
    t.add_column("published")
    for g in genes:
        t.add_column(g, justify="right")
    for ref, rows in knockouts.groupby("reference", sort=False):
        by = rows.set_index("gene")

        def cell(g, by=by):
            r = by.loc[g]
            pub = f"{r.published_d_rest_mV:+.1f}" if r.in_published else "-"
            pred = f"{r.predicted_d_rest_mV:+.1f}" if r.expressed else "-"
            return f"{pub} / {pred}"

        t.add_row(ref, *(cell(g) for g in genes))
    console.print(t)


def _population_summary(population) -> dict:
    return {
        "n": int(len(population)),
        "median_rest_mV": float(population.rest_mV.median()),
        "median_input_resistance_GOhm": float(population.input_resistance_GOhm.median()),
        "bistable": int(population.bistable.sum()),
        "bistable_neurons": list(population.index[population.bistable]),
        "median_prior_share": float(population.prior_share.median()),
        "with_unmodelled_channels": int((population.unmodelled != "").sum()),
        "median_rest_sd_mV": float(population.rest_sd_mV.median())
        if "rest_sd_mV" in population
        else None,
    }


def _print_neuron_model(atl, canon, knockouts, threshold, out):
    from .._neuron_model import neuron_model_view

    with console.status(f"building {canon}'s conductance model and running a current clamp…"):
        view = neuron_model_view(atl, canon, knockouts=knockouts, threshold=threshold, out=out)
    console.rule(f"[bold]{canon}[/]: conductance model from CeNGEN expression ({view.map_label})")
    t = Table(title=f"channels (capacitance {view.c_pF:.2f} pF)", title_justify="left")
    for col in ("channel", "genes", "TPM", "g (nS)", "jackknife range", "description"):
        t.add_column(
            col, justify="right" if col in ("TPM", "g (nS)", "jackknife range") else "left"
        )
    for row in view.channels.itertuples():
        tpm = "-" if row.channel == "leak" else f"{row.TPM:.0f}"
        g = f"{row.g_nS:.3f}" + (" (prior)" if row.prior else "")
        spread = "-" if np.isnan(row.g_lo_nS) else f"{row.g_lo_nS:.3f}-{row.g_hi_nS:.3f}"
        t.add_row(row.channel, row.genes, tpm, g, spread, row.description)
    console.print(t)
    if view.rest_band_mV is not None:
        lo, hi = view.rest_band_mV
        console.print(f"lowest rest over the jackknife ensemble of maps: {lo:.1f} to {hi:.1f} mV")
    if view.unmodelled:
        console.print("expressed channel genes with no kinetics: " + ", ".join(view.unmodelled))
    for label, rests in view.rests_mV.items():
        kind = "bistable" if len(rests) > 1 else "one rest"
        console.print(f"{label}: rest {', '.join(f'{r:.1f}' for r in rests)} mV ({kind})")
    r = Table(
        title="current clamp, 500 ms steps: peak / end (mV), (jackknife range of the end)",
        title_justify="left",
    )
    r.add_column("step (pA)", justify="right")
    labels = list(dict.fromkeys(view.responses["model"]))
    for label in labels:
        r.add_column(label, justify="right")
    for step, rows in view.responses.groupby("step_pA", sort=True):
        cells = [
            f"{x.peak_mV:.1f} / {x.end_mV:.1f}"
            + ("" if np.isnan(x.end_lo_mV) else f" ({x.end_lo_mV:.0f} to {x.end_hi_mV:.0f})")
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
