"""The leave-one-neuron-out page: one panel per published neuron, and the table."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .._io import atomic_write_bytes, atomic_write_text  # noqa: E402
from ._atlas_report import _img, _png  # noqa: E402

__all__ = ["cell_validation_figure", "write_cell_validation_report"]

_STYLE = {
    "published": ("k", 1.6, "-"),
    "expression": ("C0", 1.2, "-"),
    "mean_of_others": ("C7", 1.0, "--"),
}


def cell_validation_figure(validation) -> bytes:
    """Return a PNG: each published neuron's largest and most negative steps.

    Each panel shows the published model, its held-out prediction from expression, and the mean
    of the other published models.
    """
    names = list(validation.responses)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.3 * rows), squeeze=False)
    summary = validation.summary()
    for ax, name in zip(axes.ravel(), names):
        resp = validation.responses[name]
        steps = resp["published"].steps_pA
        shown = sorted({int(np.argmax(steps)), int(np.argmin(steps))})
        for label, (color, lw, ls) in _STYLE.items():
            r = resp[label]
            for k, i in enumerate(shown):
                ax.plot(
                    r.time_ms, r.v_mV[i], color=color, lw=lw, ls=ls,
                    label=label.replace("_", " ") if k == 0 else None,
                )  # fmt: skip
        s = summary[name]
        ax.set_title(
            f"{name} ({s['neuron']}): rest error {s['rest_error_mV']:+.1f} mV, "
            f"RMS {s['rms_mV']:.1f} mV\n(mean of others {s['baseline_mean_rms_mV']:.1f}, "
            f"generic {s['baseline_generic_rms_mV']:.1f}; steps "
            f"{', '.join(f'{steps[i]:g}' for i in shown)} pA)",
            fontsize=8,
        )
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("V (mV)")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7, frameon=False)
    fig.suptitle(
        "Held out: each published neuron predicted from its CeNGEN expression, the map "
        "calibrated on the other published models",
        fontsize=10,
    )
    fig.tight_layout()
    return _png(fig)


def knockout_figure(knockouts) -> bytes:
    """Return a PNG: each knockout's change of rest and of the largest step's end.

    Published model against held-out expression cell, one colour per gene.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4))
    genes = list(dict.fromkeys(knockouts.gene))
    colors = dict(zip(genes, plt.cm.tab10(np.linspace(0, 1, 10))))
    for ax, q, what in zip(axes, ("rest_mV", "step_mV"), ("rest", "end of the largest step")):
        x, y = knockouts[f"published_d_{q}"], knockouts[f"predicted_d_{q}"]
        for gene in genes:
            rows = knockouts.gene == gene
            ax.scatter(x[rows], y[rows], s=26, color=colors[gene], label=gene)
        finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)], [-1.0, 1.0]])
        lim = float(np.max(np.abs(finite))) * 1.08
        ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.6)
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel(f"published model: knockout change of {what} (mV)")
        ax.set_ylabel("predicted from expression, held out (mV)")
    axes[0].legend(fontsize=7, frameon=False, ncol=2)
    fig.suptitle(
        "In-silico channel-gene knockouts (steady state; diagonal = agreement)", fontsize=10
    )
    fig.tight_layout()
    return _png(fig)


def population_figure(population) -> bytes:
    """Return a PNG: how the predicted rests, input resistances and prior shares distribute."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist(population.rest_mV.dropna(), bins=30, color="C0")
    axes[0].set_xlabel("lowest stable rest (mV)")
    r_in = population.input_resistance_GOhm
    r_in = r_in[np.isfinite(r_in) & (r_in > 0)]
    axes[1].hist(np.log10(r_in), bins=30, color="C1")
    axes[1].set_xlabel("log10 input resistance at rest (GΩ)")
    axes[2].hist(population.prior_share.dropna(), bins=20, range=(0, 1), color="C2")
    axes[2].set_xlabel("share of resting conductance from prior-only channels")
    for ax in axes:
        ax.set_ylabel("neurons")
    fig.suptitle(
        f"{len(population)} neurons built from expression: {int(population.bistable.sum())} "
        "bistable",
        fontsize=10,
    )
    fig.tight_layout()
    return _png(fig)


def write_cell_validation_report(
    validation, out_dir: str | Path, *, knockouts=None, population=None
) -> Path:
    """Write ``index.html`` (figures and tables) and ``cells.png`` into ``out_dir``.

    ``knockouts`` (:func:`~digiworm.validate.channel_knockouts`) and ``population``
    (:func:`~digiworm.validate.expression_population`) add their sections. Returns the page's
    path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = cell_validation_figure(validation)
    atomic_write_bytes(out / "cells.png", png)
    goals = validation.goals()
    table = validation.table.copy()
    table["stable_rests_mV"] = table["stable_rests_mV"].map(lambda v: ", ".join(map(str, v)))
    caption = (
        "Solid black: the published model; blue: its held-out prediction from expression; "
        "dashed grey: the mean response of the other published models."
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digiworm: cells from expression, held out</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}
table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}</style>
</head><body>
<h1>Genes to physiology: leave-one-neuron-out</h1>
<p>CeNGEN threshold {validation.threshold}; map calibration: {validation.method}. Held out,
rest within 5 mV:
{goals["held_out_rest_within_5mV"]} of {goals["n"]}; current-clamp RMS within 10 mV:
{goals["held_out_rms_within_10mV"]} of {goals["n"]}; median RMS (mV):
{html.escape(", ".join(f"{k} {v:.1f}" for k, v in goals["median_rms_mV"].items()))}.</p>
{_img("cells", png, caption)}
<h2>Scores</h2>{table.to_html(index=False, float_format=lambda x: f"{x:.3g}", escape=True)}
{_knockout_section(knockouts)}{_population_section(population)}
</body></html>"""
    index = out / "index.html"
    atomic_write_text(index, page)
    return index


def _knockout_section(knockouts) -> str:
    if knockouts is None:
        return ""
    from ..validate import knockout_agreement

    agree = knockout_agreement(knockouts)
    cols = ["reference", "gene", "in_published", "expressed", "published_d_rest_mV",
            "predicted_d_rest_mV", "published_d_step_mV", "predicted_d_step_mV",
            "published_rests_wt", "published_rests_ko", "predicted_rests_wt",
            "predicted_rests_ko"]  # fmt: skip
    rest = agree["rest_mV"]
    return f"""<h2>Channel-gene knockouts</h2>
<p>Each gene knocked out of each published model and of its held-out expression cell (the
steady state from the closed-form I–V). Where the published rest moves by at least 1 mV
({rest["n"]} pairs) the prediction has the same sign in {rest["same_sign"]}; Pearson r of the
changes {rest["pearson"]:.2f}. Changes of the number of stable rests: {
        agree["rest_count_changes"]["n"]
    } in the published models, reproduced
{agree["rest_count_changes"]["reproduced"]}.</p>
{_img("knockouts", knockout_figure(knockouts), "Each point is one (neuron, gene) pair.")}
{knockouts[cols].to_html(index=False, float_format=lambda x: f"{x:.3g}", escape=True)}
"""


def _population_section(population) -> str:
    if population is None:
        return ""
    q = population.input_resistance_GOhm.quantile([0.25, 0.5, 0.75])
    flagged = population[population.unmodelled != ""]
    cols = [c for c in ("class", "rest_mV", "rest_sd_mV", "rests", "input_resistance_GOhm",
                        "step_mV", "prior_share", "prior_channels", "unmodelled")
            if c in population.columns]  # fmt: skip
    return f"""<h2>Every neuron from its expression</h2>
<p>{len(population)} neurons; median rest {population.rest_mV.median():.1f} mV; input
resistance at rest {q[0.25]:.2f} / {q[0.5]:.2f} / {q[0.75]:.2f} GΩ (quartiles);
{int(population.bistable.sum())} bistable; median share of the resting conductance from
channels no published model calibrates {population.prior_share.median():.2f};
{len(flagged)} neurons express ion-channel genes with no kinetics in the library.</p>
{_img("population", population_figure(population), "Distributions over the neurons.")}
{population[cols].to_html(float_format=lambda x: f"{x:.3g}", escape=True)}
"""
