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


def write_cell_validation_report(validation, out_dir: str | Path) -> Path:
    """Write ``index.html`` (figure and table) and ``cells.png`` into ``out_dir``.

    Returns the page's path.
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
</body></html>"""
    index = out / "index.html"
    atomic_write_text(index, page)
    return index
