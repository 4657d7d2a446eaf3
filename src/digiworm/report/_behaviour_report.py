"""The behaviour report (``digiworm behave --report DIR``), one self-contained page.

It holds the targets, the kymographs, the gait across media, the perturbation phenotypes and
the dose–response curves.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .._io import atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: E402
from ._atlas_report import _img  # noqa: E402

__all__ = ["write_behaviour_report"]

_STYLE = """body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 1em}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}
.yes{background:#e3f4e3}.no{background:#f8e0e0}.na{background:#eee}"""


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _kymographs(datasets: dict) -> bytes:
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6),
                             squeeze=False, layout="constrained")  # fmt: skip
    for ax, (label, ds) in zip(axes[0], datasets.items()):
        t = ds["time"].values
        kl = ds["curvature_per_mm"].values * float(ds.attrs["body_length_mm"])
        vmax = float(np.percentile(np.abs(kl), 99)) or 1.0
        ax.imshow(kl.T, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                  extent=(t[0], t[-1], 1.0, 0.0))  # fmt: skip
        back = ds["backward_gate"].values > 0.5
        if back.any():
            ax.fill_between(t, 0, 0.04, where=back, color="k", step="mid")
        for item in filter(None, ds.attrs.get("touch", "").split(";")):
            ax.axvline(float(item.partition("@")[2]), color="tab:green", lw=1)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("position (head 0, tail 1)")
    return _png(fig)


def _adaptation(table: pd.DataFrame) -> bytes:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    c = table["drag_normal_Ns_per_m2"]
    panels = (("frequency_hz", "frequency (Hz)", (1.55, 2.02), (0.264, 0.355)),
              ("wavelength_body_lengths", "wavelength (L)", (1.3, 1.6), (0.6, 0.7)),
              ("forward_mm_per_s", "forward speed (mm/s)", (0.3, 0.4), (0.156, 0.236)))  # fmt: skip
    for ax, (col, label, water, agar) in zip(axes, panels):
        ax.plot(c, table[col], "o-", color="k", label="digiworm")
        ax.fill_between([c.iloc[0] * 0.7, c.iloc[0] * 1.4], *water, color="tab:blue",
                        alpha=0.25, label="water (measured)")  # fmt: skip
        ax.fill_between([c.iloc[-1] * 0.7, c.iloc[-1] * 1.4], *agar, color="tab:orange",
                        alpha=0.25, label="agar (measured)")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("normal drag C⊥ (N·s/m²)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    return _png(fig)


def _dose_response(runs: dict) -> bytes:
    from ..app._behaviour import DOSES_UM

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for drug, colour in (("levamisole", "tab:purple"), ("aldicarb", "tab:red")):
        rows = [runs[f"{drug} {d:g} uM"] for d in DOSES_UM]
        x = np.maximum(np.asarray(DOSES_UM), 10.0)
        axes[0].plot(x, [r["speed_mm_per_s"] for r in rows], "o-", color=colour, label=drug)
        axes[1].plot(x, [r["co_contraction"] for r in rows], "o-", color=colour, label=drug)
    for ax, label in zip(axes, ("forward speed (mm/s)", "co-contraction")):
        ax.set_xscale("log")
        ax.set_xlabel("dose (µM; 0 drawn at 10)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    return _png(fig)


def _met(value) -> str:
    if value is None:
        return '<td class="na">not testable</td>'
    return '<td class="yes">yes</td>' if value else '<td class="no">no</td>'


def _range(score: dict) -> str:
    if score["low"] is None or score["high"] is None:
        return ""
    return f"{score['low']:.3g}–{score['high']:.3g}"


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else html.escape(str(value))


def _targets_table(runs: dict) -> str:
    rows = [(medium, score)
            for label, medium in (("wild type, water", "water"), ("wild type", "agar"))
            for score in runs[label]["scores"]]  # fmt: skip
    body = "".join(
        f"<tr><td>{m}</td><td>{html.escape(s['quantity'])}</td><td>{s['target']:.3g}</td>"
        f"<td>{_range(s)}</td><td>{s['simulated']:.3g}</td>{_met(s['in_range'])}"
        f"<td>{s['relative_difference']:+.0%}</td><td>{html.escape(s['evidence'])}</td>"
        f"<td>{html.escape(s['citation'])}</td></tr>"
        for m, s in rows
    )
    return (
        "<table><tr><th>medium</th><th>quantity</th><th>target</th><th>range</th>"
        "<th>digiworm</th><th>in range</th><th>difference</th><th>evidence</th>"
        f"<th>source</th></tr>{body}</table>"
    )


def _phenotypes(runs: dict) -> str:
    from ..app._behaviour import SUITE

    keys = ("speed_mm_per_s", "reverse_speed_mm_per_s", "reversals_per_min", "forward_run_s",
            "reversal_s", "frequency_hz", "co_contraction", "body_length_change",
            "touch_reversals")  # fmt: skip
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = ""
    for label, *_ in SUITE:
        r = runs[label]
        cells = "".join(f"<td>{_cell(r[k])}</td>" for k in keys)
        body += f"<tr><td>{html.escape(label)}</td>{cells}</tr>"
    return f"<table><tr><th>agar</th>{head}</tr>{body}</table>"


def write_behaviour_report(suite: dict, out_dir: str | Path) -> Path:
    """Write ``index.html``, its figures and ``summary.json`` into ``out_dir``.

    ``suite`` is :func:`~digiworm.app.behaviour_suite`'s result. Returns the page's path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = suite["runs"]
    figures = {
        "kymographs": (_kymographs(suite["datasets"]),
                       "Curvature (κL, ventral red) over time and body position; black ticks at "
                       "the top: backward; green lines: touches."),
        "adaptation": (_adaptation(suite["adaptation"]),
                       "The forward loop alone, from water (left) to agar (right): frequency, "
                       "wavelength and speed; shaded: the measured ranges."),
        "dose_response": (_dose_response(runs),
                          "In-silico dose–response at steady state (EC50s and scales assumed)."),
    }  # fmt: skip
    for name, (png, _) in figures.items():
        atomic_write_bytes(out / f"{name}.png", png)
    table = suite["adaptation"]
    perturbations = "".join(
        f"<tr><td>{html.escape(p['perturbation'])}</td><td>{html.escape(p['expected'])}</td>"
        f"<td>{html.escape(p['measured'])}</td>{_met(p['met'])}"
        f"<td>{html.escape(p['source'])}</td></tr>"
        for p in suite["perturbations"]
    )
    evidence = runs["wild type"]["evidence"]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digiworm: behaviour</title>
<style>{_STYLE}</style></head><body>
<h1>Behaviour: the {html.escape(suite["model"])} brain in a body</h1>
<p>Runs of {suite["duration_s"]:g} s (seed {suite["seed"]}); the perturbations on agar with
the same noise and touches as the wild type. Every motor and switch parameter is assumed or
chosen by a scan (evidence below); the targets are the cited measurements of
<code>behaviour_targets()</code>.</p>
<h2>Wild type against the measured targets</h2>{_targets_table(runs)}
<h2>Gait across media</h2>
<p>Frequency and wavelength {
        "fall monotonically" if table.attrs["monotonic"] else "do <b>not</b> fall monotonically"
    } as the drag rises.</p>
{_img("adaptation", *figures["adaptation"])}
{table.to_html(index=False, float_format=lambda x: f"{x:.3g}")}
<h2>Kymographs</h2>{_img("kymographs", *figures["kymographs"])}
<h2>Perturbations against the papers</h2>
<table><tr><th>perturbation</th><th>expected</th><th>digiworm</th><th>met</th>
<th>source</th></tr>{perturbations}</table>
<h3>Phenotypes</h3>{_phenotypes(runs)}
<h2>Dose–response</h2>{_img("dose_response", *figures["dose_response"])}
<h2>Evidence</h2><pre>{html.escape(json.dumps(evidence, indent=1))}</pre>
</body></html>"""
    index = out / "index.html"
    atomic_write_text(index, page)
    summary = {k: v for k, v in suite.items() if k not in ("datasets", "adaptation")}
    summary["adaptation"] = table.to_dict(orient="records")
    summary["adaptation_monotonic"] = bool(table.attrs["monotonic"])
    atomic_write_json(out / "summary.json", summary)
    return index
