r"""A screen's results for a person: dose–response fits, the top hits' traces, an HTML report.

* :func:`dose_responses` fits a Hill curve to each compound's phenotype against dose, per
  context (every other column of the table held fixed):
  :math:`y(d) = b + A\,d^n / (d^n + EC_{50}^n)`, all four fitted (:math:`b` starts at the
  context's dose-0 value).
  The EC50 comes with a 95 % interval from the fit's covariance (on :math:`\log_{10} EC_{50}`,
  Student's t with the residual degrees of freedom);
  a context needs at least three positive doses and a dose-0 row. A response smaller than
  the phenotype's :data:`FLAT` is reported as no response (no EC50); an EC50 beyond the doses
  tested, and a response that turns back (not monotonic, which no Hill curve describes), are
  flagged.
* the top hits' spread over the fitted ensemble (:mod:`._ensemble`) is shown beside them.
* :func:`write_hit_traces` reruns the top hits of each read-out and keeps their traces, with
  the wild type's, in ``screen.nc`` (bounded: at most ``k`` hits per read-out).
* :func:`write_report` writes ``report.html``: the command, the hit lists with each drug's
  evidence level, the EC50 table, dose–response plots, a compound × phenotype heatmap and
  the drugs' sources.
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings

import numpy as np
import pandas as pd

from .._errors import DigiwormError
from .._io import atomic_write_text, write_with
from ..experiments import AMINES, drug_table

__all__ = ["DOSE_PHENOTYPES", "FLAT", "dose_responses", "fit_hill", "write_hit_traces",
           "write_report"]  # fmt: skip

#: The phenotypes fitted against dose, per read-out.
DOSE_PHENOTYPES = {
    "neural": ("neural_change_rms", "neural_corr_wt"),
    "behaviour": ("speed_ratio_wt", "co_contraction"),
}
#: Per phenotype, a dose effect smaller than this counts as no response (ΔF/F, r, ratio).
FLAT = {"neural_change_rms": 0.01, "neural_corr_wt": 0.01, "speed_ratio_wt": 0.02,
        "co_contraction": 0.02}  # fmt: skip
#: The columns that, held fixed, make one dose–response context.
CONTEXT = ("knockout", "ablate", "stimulate", "medium", "model", "seed", *AMINES)


def _hill(d, b, a, log_ec50, n):
    d = np.asarray(d, float)
    x = np.where(d > 0, (d / 10.0**log_ec50) ** n, 0.0)
    return b + a * x / (1.0 + x)


def fit_hill(doses, values, flat: float = 0.0) -> dict:
    """Fit ``values = b + A H(dose)`` (module docstring); return EC50, its interval and notes.

    ``doses`` must include 0 (the baseline ``b``) and three or more positive doses. A largest
    change from ``b`` below ``flat`` is no response.
    """
    from scipy.optimize import curve_fit

    d = np.asarray(doses, float)
    y = np.asarray(values, float)
    ok = np.isfinite(d) & np.isfinite(y)
    d, y = d[ok], y[ok]
    out = {"ec50_uM": math.nan, "ec50_low_uM": math.nan, "ec50_high_uM": math.nan,
           "hill": math.nan, "effect": math.nan, "baseline": math.nan, "n_doses": 0,
           "note": ""}  # fmt: skip
    positive = np.unique(d[d > 0])
    out["n_doses"] = int(positive.size)
    if not (d == 0).any() or positive.size < 3:
        out["note"] = "needs a dose-0 row and 3 or more positive doses"
        return out
    b = float(np.mean(y[d == 0]))
    out["baseline"] = b
    spread = float(np.max(np.abs(y - b)))
    if spread <= flat:
        out.update(effect=0.0, note="no response over the doses tested")
        return out
    lo, hi = math.log10(positive[0]) - 2.0, math.log10(positive[-1]) + 2.0
    top = y[d == positive[-1]].mean() - b
    start = (b, top if top != 0 else spread, math.log10(np.sqrt(positive[0] * positive[-1])), 1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, cov = curve_fit(
                _hill, d, y, p0=start, maxfev=20000,
                bounds=([-np.inf, -np.inf, lo, 0.3], [np.inf, np.inf, hi, 4.0]),
            )  # fmt: skip
    except (RuntimeError, ValueError) as exc:
        out["note"] = f"the fit did not converge ({exc})"
        return out
    b, a, le, n = (float(v) for v in p)
    se = float(np.sqrt(cov[2, 2])) if y.size > 4 and np.isfinite(cov[2, 2]) else math.inf
    out.update(ec50_uM=10.0**le, hill=n, effect=a, baseline=b)
    if math.isfinite(se):  # Student's t with the fit's residual degrees of freedom
        from scipy.stats import t as student

        q = float(student.ppf(0.975, y.size - 4))
        low, high = (10.0 ** float(np.clip(le + k * q * se, -300, 300)) for k in (-1, 1))
        out.update(ec50_low_uM=low, ec50_high_uM=high)
    notes = []
    if 10.0**le > positive[-1]:
        notes.append("EC50 above the highest dose tested: a lower bound at best")
    elif 10.0**le < positive[0]:
        notes.append("EC50 below the lowest dose tested: an upper bound at best")
    if not math.isfinite(se):
        notes.append("no interval (as many parameters as points, or a singular covariance)")
    means = pd.Series(y).groupby(d).mean().sort_index().to_numpy() - b
    if np.max(np.abs(means)) - abs(means[-1]) > 0.2 * np.max(np.abs(means)):
        notes.append("not monotonic: the response turns back at high doses (no Hill curve)")
    out["note"] = "; ".join(notes)
    return out


def dose_responses(phenotypes: pd.DataFrame, readouts) -> pd.DataFrame:
    """Return one Hill fit per compound, context and phenotype (module docstring)."""
    rows = []
    table = drug_table()
    for readout in readouts:
        for phenotype in DOSE_PHENOTYPES[readout]:
            if phenotype not in phenotypes:
                continue
            drugged = phenotypes[phenotypes["drug"] != "none"]
            for (drug, *context), group in drugged.groupby(["drug", *CONTEXT], sort=False):
                fit = fit_hill(group["dose_uM"], group[phenotype], flat=FLAT[phenotype])
                rows.append({
                    "drug": drug, **dict(zip(CONTEXT, context)), "readout": readout,
                    "phenotype": phenotype, **fit, "evidence": table.loc[drug, "evidence"],
                })  # fmt: skip
    return pd.DataFrame(rows)


def write_hit_traces(out_dir, phenotypes, summary, atlas, duration_s, behaviour_duration_s,
                     k: int = 5) -> str:  # fmt: skip
    """Rerun the top ``k`` hits of each read-out; write their traces and the wild type's.

    ``screen.nc``: ``dff(neural_hit, time, neuron)`` and ``dff_wild_type`` (ΔF/F of the neural
    runs), ``centroid_mm(behaviour_hit, behaviour_time, xy)``, ``backward_gate`` and the wild
    type's (the behavioural runs), with each hit's conditions as coordinates.
    """
    import xarray as xr

    from ..app import build_model, run_behaviour
    from ._run import _behaviour_request, _dff, _References, _request, _wild_type

    parts = {}
    by_row = phenotypes.set_index("row")
    for readout, block in summary["hits"].items():
        hits = [h["row"] for h in block["hits"][:k]]
        if not hits:
            continue
        coords = {c: (f"{readout}_hit", [_text(by_row.loc[r, c]) for r in hits])
                  for c in ("drug", "dose_uM", "knockout", "ablate", "stimulate", "medium",
                            "model", *AMINES)}  # fmt: skip
        coords[f"{readout}_hit"] = hits
        if readout == "neural":
            from ..simulate import model_precision

            refs = _References(atlas)  # each model kind loaded once
            traces, wild = [], []
            for row in hits:
                rec = by_row.loc[row].to_dict()
                base = refs.base(rec["model"])
                for target, which in ((traces, rec), (wild, _wild_type(
                        model=rec["model"], stimulate=rec["stimulate"]))):  # fmt: skip
                    req = _request(which, duration_s, atlas)
                    with model_precision(base):
                        dff = _dff(build_model(req, atlas, base=base), req)
                    target.append(dff.values.astype(np.float32))
            parts["neural"] = xr.Dataset(
                {"dff": (("neural_hit", "time", "neuron"), np.stack(traces)),
                 "dff_wild_type": (("neural_hit", "time", "neuron"), np.stack(wild))},
                coords={**coords, "time": dff["time"].values,
                        "neuron": list(dff["neuron"].values)},
            )  # fmt: skip
        else:
            cent, gate, cent_wt, gate_wt = [], [], [], []
            for row in hits:
                rec = by_row.loc[row].to_dict()
                wt = _wild_type(model=rec["model"], medium=rec["medium"], seed=rec["seed"])
                for which, c_out, g_out in ((rec, cent, gate), (wt, cent_wt, gate_wt)):
                    ds, _ = run_behaviour(
                        _behaviour_request(which, behaviour_duration_s, atlas), atlas
                    )
                    c_out.append(ds["xy_mm"].mean("segment").values.astype(np.float32))
                    g_out.append(ds["backward_gate"].values.astype(np.float32))
            dims = ("behaviour_hit", "behaviour_time")
            parts["behaviour"] = xr.Dataset(
                {"centroid_mm": ((*dims, "xy"), np.stack(cent)),
                 "centroid_wild_type_mm": ((*dims, "xy"), np.stack(cent_wt)),
                 "backward_gate": (dims, np.stack(gate)),
                 "backward_gate_wild_type": (dims, np.stack(gate_wt))},
                coords={**coords, "behaviour_time": ds["time"].values, "xy": ["x", "y"]},
            )  # fmt: skip
    if not parts:
        raise DigiwormError("the screen has no hits to keep traces of")
    merged = xr.merge(list(parts.values()), compat="override")
    merged.attrs.update(digest=summary["digest"], kept=f"the top {k} hits of each read-out",
                        command=summary.get("command", ""))  # fmt: skip
    path = f"{out_dir}/screen.nc"
    write_with(path, lambda tmp: merged.to_netcdf(tmp))
    return path


def _text(v):
    return float(v) if isinstance(v, (int, float, np.floating, np.integer)) else str(v)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _dose_figure(phenotypes, fits, phenotype) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drugs = [d for d in phenotypes["drug"].unique() if d != "none"]
    if not drugs or phenotype not in phenotypes:
        return None
    cols = min(5, len(drugs))
    rows = math.ceil(len(drugs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.6 * rows), squeeze=False,
                             sharey=True, layout="constrained")  # fmt: skip
    stateless = (phenotypes[list(AMINES)] == 0).all(axis=1) & (phenotypes["ablate"] == "none")
    phenotypes = phenotypes[stateless]
    ev = drug_table()["evidence"]
    for ax, drug in zip(axes.flat, drugs):
        sub = phenotypes[phenotypes["drug"] == drug]
        positive = sub["dose_uM"][sub["dose_uM"] > 0]
        floor = positive.min() / 10 if len(positive) else 1.0
        for context, group in sub.groupby("knockout", sort=False):
            g = group.groupby("dose_uM")[phenotype].mean()
            x = np.where(g.index > 0, g.index, floor)
            line = ax.plot(x, g.values, "o", ms=3, label=context)[0]
            fit = fits[(fits["drug"] == drug) & (fits["knockout"] == context)
                       & (fits["phenotype"] == phenotype) & (fits["ablate"] == "none")
                       & (fits[list(AMINES)] == 0).all(axis=1)]  # fmt: skip
            if len(fit) and np.isfinite(fit["ec50_uM"].iloc[0]):
                f = fit.iloc[0]
                xs = np.geomspace(floor, x.max(), 80)
                ax.plot(xs, _hill(xs, f["baseline"], f["effect"], math.log10(f["ec50_uM"]),
                                  f["hill"]), "-", color=line.get_color(), lw=1)  # fmt: skip
        ax.set_xscale("log")
        ax.set_title(f"{drug} ({ev.get(drug, '?')})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(drugs) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel(phenotype, fontsize=8)
    axes[0, 0].legend(fontsize=6, title="knockout", title_fontsize=6)
    fig.suptitle(f"{phenotype} against dose (µM; dose 0 drawn at a tenth of the lowest; "
                 "no ablation or state; one colour per knockout)", fontsize=9)  # fmt: skip
    return _png(fig)


def _heatmap(phenotypes, readouts) -> str | None:
    """Compound × phenotype: the largest change from the dose-0 value, per column's scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plain = phenotypes[(phenotypes["knockout"] == "none") & (phenotypes["ablate"] == "none")]
    plain = plain[(plain[list(AMINES)] == 0).all(axis=1)]
    columns = [p for r in readouts for p in DOSE_PHENOTYPES[r] if p in phenotypes]
    drugs = [d for d in plain["drug"].unique() if d != "none"]
    if not drugs or not columns:
        return None
    wt = phenotypes[phenotypes["drug"] == "none"]
    value = np.full((len(drugs), len(columns)), np.nan)
    for i, drug in enumerate(drugs):
        sub = plain[plain["drug"] == drug]
        for j, col in enumerate(columns):
            base = sub.loc[sub["dose_uM"] == 0, col]
            base = base if len(base) else wt[col]
            change = (sub[col].astype(float) - float(base.astype(float).mean())).abs()
            value[i, j] = change.max() if change.notna().any() else np.nan
    scale = np.nanmax(value, axis=0)
    shown = value / np.where(scale > 0, scale, 1.0)
    fig, ax = plt.subplots(figsize=(1.4 * len(columns) + 2.5, 0.28 * len(drugs) + 1.2))
    im = ax.imshow(shown, aspect="auto", cmap="magma", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(drugs)), drugs, fontsize=7)
    for i in range(len(drugs)):
        for j in range(len(columns)):
            if np.isfinite(value[i, j]):
                ax.text(j, i, f"{value[i, j]:.2g}", ha="center", va="center", fontsize=6,
                        color="white" if shown[i, j] < 0.6 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, label="largest change / column's largest")
    ax.set_title("compound x phenotype (no knockout, ablation or state)", fontsize=9)
    return _png(fig)


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}",
                         na_rep="", escape=True)  # fmt: skip


def write_report(out_dir, phenotypes, summary, fits, command: str, spread=None) -> str:
    """Write ``report.html`` (module docstring); return its path."""
    readouts = summary["readouts"]
    table = drug_table()
    used = [d for d in phenotypes["drug"].unique() if d != "none"]
    sections = [
        f"<h1>digiworm screen</h1><p><code>{html.escape(command)}</code></p>",
        f"<p>{summary['rows']} conditions ({summary['ran_rows']} run in the last call, "
        f"{summary['skipped_rows']} from earlier chunks); read-outs {', '.join(readouts)}; "
        f"engine {summary['engine']}; table digest {summary['digest']}.</p>",
    ]
    assumed = [d for d in used if table.loc[d, "evidence"] != "measured"]
    if assumed:
        sections.append(
            "<p class=warn><b>Evidence.</b> The potencies of "
            f"{html.escape(', '.join(assumed))} are not measured (see the table at the end): "
            "their EC50s and effect sizes are those of the model's assumed pharmacology, not "
            "predictions to trust on their own.</p>"
        )
    for readout, block in summary["hits"].items():
        hits = pd.DataFrame(block["hits"])
        sections.append(f"<h2>Top {readout} hits</h2><p>ranked by the "
                        f"{html.escape(block['ranked_by'])}</p>{_table_html(hits)}")  # fmt: skip
    if spread is not None and len(spread):
        shown = spread.drop(columns=[c for c in AMINES if c in spread])
        sections.append(
            "<h2>Top hits on the fitted ensemble</h2><p>Each hit rerun on every member of the "
            "shipped worm's bootstrap ensemble (each with its own wild type): the spread the "
            "data leave in the fitted parameters. <code>agree</code>: members whose effect has "
            "the shipped worm's sign and at least half its size. The drugs' potencies are a "
            f"separate, larger uncertainty (their evidence above).</p>{_table_html(shown)}"
        )
    if len(fits):
        placed = fits[fits["ec50_uM"].notna()]
        plain = (fits["knockout"] == "none") & (fits["ablate"] == "none")
        plain &= (fits[list(AMINES)] == 0).all(axis=1)
        shown = fits[plain].sort_values(["readout", "phenotype", "ec50_uM"])
        shown = shown.drop(columns=["knockout", "ablate", "seed", *AMINES])
        sections.append(
            "<h2>Dose–response (Hill fits, 95 % intervals)</h2>"
            f"<p>{len(placed)} of {len(fits)} compound × context × phenotype fits placed an "
            "EC50; the rest had no response, too few doses, or no fit. Shown: the contexts "
            "with no knockout, ablation or state; every context is in dose_response.csv.</p>"
            f"{_table_html(shown)}"
        )
    for readout in readouts:
        for phenotype in DOSE_PHENOTYPES[readout]:
            img = _dose_figure(phenotypes, fits, phenotype) if len(fits) else None
            if img:
                sections.append(f"<h3>{phenotype}</h3><img src='{img}'>")
    heat = _heatmap(phenotypes, readouts)
    if heat:
        sections.append(f"<h2>Compound × phenotype</h2><img src='{heat}'>")
    if used:
        sources = table.loc[used, ["class", "mode", "molecular_targets", "evidence",
                                   "potency_source", "citation"]].reset_index()  # fmt: skip
        sections.append(f"<h2>Drugs used and their sources</h2>{_table_html(sources)}")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>digiworm screen</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;font-size:14px}"
        "table{border-collapse:collapse;font-size:12px}td,th{padding:2px 6px;"
        "border-bottom:1px solid #ddd;max-width:30em}.warn{background:#fff4e0;padding:.6em}"
        "img{max-width:100%}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )
    path = f"{out_dir}/report.html"
    atomic_write_text(path, page)
    return path
