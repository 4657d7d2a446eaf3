"""``report.html`` of ``digiworm reproduce``: the scoreboard as figures and tables."""

from __future__ import annotations

import html
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .._errors import InvalidParameterError  # noqa: E402
from .._io import atomic_write_text  # noqa: E402
from ..report._atlas_report import _img, _png, _type_ticks, type_order  # noqa: E402
from ..validate._metrics import clip_percentiles  # noqa: E402

__all__ = ["write_report"]

METRICS = ("pearson_clipped", "spearman", "sign_accuracy", "auroc")


def _measured_cols(measured: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isfinite(measured).any(axis=0))


def _fig_matrices(result, atlas) -> bytes:
    order = type_order(atlas.neurons)
    idx = np.array([result.names.index(n) for n in order])
    measured = result.measured["wt"][np.ix_(idx, idx)]
    panels = [("measured (wild type)", measured)]
    panels += [(f"{m}: out-of-fold", result.oof[m][np.ix_(idx, idx)]) for m in result.models]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 6))
    axes = np.atleast_1d(axes)
    for ax, (title, mat) in zip(axes, panels):
        shown = np.where(np.isfinite(measured), mat, np.nan)  # only measured pairs
        lim = np.nanpercentile(np.abs(shown), 99) or 1.0
        cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
        im = ax.imshow(shown, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        _type_ticks(ax, atlas.neurons, order)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("stimulated")
        ax.set_ylabel("responding")
        fig.colorbar(im, ax=ax, shrink=0.7, label="dF/F")
    return _png(fig)


def _fig_scatter(result) -> bytes:
    measured = result.measured["wt"]
    off = ~np.eye(len(measured), dtype=bool)
    models = list(result.models)
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.8), squeeze=False)
    for ax, m in zip(axes[0], models):
        pred = result.oof[m]
        keep = off & np.isfinite(measured) & np.isfinite(pred)
        x, y = clip_percentiles(pred[keep]), clip_percentiles(measured[keep])
        ax.scatter(x, y, s=3, alpha=0.25, c="C0")
        s = result.scores["models"][m]["heldout"]
        ax.set_title(
            f"{m}: held-out r = {s['pearson_clipped']:.3f} (clipped), Spearman "
            f"{s['spearman']:.3f}, n = {s['n_pairs']}",
            fontsize=9,
        )
        ax.set_xlabel("predicted dF/F (out of fold, clipped 0.5–99.5 pct)")
        ax.set_ylabel("measured dF/F (clipped 0.5–99.5 pct)")
        ax.axhline(0, c="0.7", lw=0.5)
        ax.axvline(0, c="0.7", lw=0.5)
    return _png(fig)


def _fig_bars(result) -> bytes:
    scores = result.scores
    rows = [(m, scores["models"][m]["heldout"], "C0") for m in result.models]
    rows += [(b, s, "0.6") for b, s in scores["baselines"].items()]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(16, 3.8))
    labels = [r[0] for r in rows]
    for ax, metric in zip(axes, METRICS):
        values = [r[1][metric] if r[1][metric] is not None else np.nan for r in rows]
        ax.barh(labels, values, color=[r[2] for r in rows])
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=10)
        if metric == "pearson_clipped":
            c = scores["noise_ceiling"]["ceiling"]
            ax.axvline(c, color="C3", ls="--", label=f"noise ceiling {c:.2f}")
            ax.axvline(0.9 * c, color="C3", ls=":", label=f"goal 0.9×ceiling {0.9 * c:.2f}")
            ax.legend(fontsize=7, loc="lower right")
        if metric in ("sign_accuracy", "auroc"):
            ax.axvline(0.5, color="0.3", lw=0.6)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.suptitle("Held-out scores, 5-fold split by stimulated class (blue: models)", fontsize=10)
    return _png(fig)


def _fig_calibration(result) -> bytes:
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], c="0.6", lw=0.8, label="perfect calibration")
    for m, (nominal, actual) in result.calibration.items():
        ax.plot(nominal, actual, "o-", label=m)
    ax.set_xlabel("nominal coverage of the prediction interval")
    ax.set_ylabel("actual coverage on held-out pairs")
    ax.set_xlim(0.4, 1)
    ax.set_ylim(0.4, 1)
    ax.legend(fontsize=8)
    return _png(fig)


def _fig_unc31(result) -> bytes:
    wt, unc = result.measured["wt"], result.measured["unc31"]
    off = ~np.eye(len(wt), dtype=bool)
    models = list(result.unc31)
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.8), squeeze=False)
    for ax, m in zip(axes[0], models):
        change = result.unc31[m] - result.unc31_reference[m]
        measured = unc - wt
        keep = off & np.isfinite(measured) & np.isfinite(change)
        ax.scatter(clip_percentiles(change[keep]), clip_percentiles(measured[keep]), s=3,
                   alpha=0.3)  # fmt: skip
        s = result.scores["unc31"]["change"][f"{m}_knockout"]
        ax.set_title(
            f"{m}: predicted vs measured change wt → unc-31\nr = {s['pearson_clipped']:.3f} "
            f"clipped, n = {s['n_pairs']} pairs measured in both",
            fontsize=9,
        )
        ax.set_xlabel("predicted change (knockout − wild-type prediction)")
        ax.set_ylabel("measured change (unc-31 − wild type)")
    return _png(fig)


def _fig_spontaneous(result, atlas) -> bytes:
    order = type_order(atlas.neurons)
    idx = np.array([result.names.index(n) for n in order])
    models = list(result.spontaneous)
    fig, axes = plt.subplots(1, len(models), figsize=(6.2 * len(models), 6), squeeze=False)
    for ax, m in zip(axes[0], models):
        c = result.spontaneous[m][np.ix_(idx, idx)].copy()
        np.fill_diagonal(c, np.nan)
        lim = np.nanpercentile(np.abs(c), 99) or 1.0
        im = ax.imshow(c, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        _type_ticks(ax, atlas.neurons, order)
        ax.set_title(f"{m}: predicted correlation of noise-driven activity", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.7)
    return _png(fig)


def _fig_traces(result, atlas) -> bytes | None:
    from ..simulate import Protocol, simulate

    models = result.models
    if not models:
        return None
    wt = result.measured["wt"]
    counts = np.isfinite(wt).sum(axis=0)
    j = int(np.argmax(counts))
    stim = result.names[j]
    col = np.where(np.arange(len(wt)) == j, np.nan, wt[:, j])
    top = np.argsort(-np.nan_to_num(np.abs(col)))[:6]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
    for ax, (name, model) in zip(axes[0], models.items()):
        protocol = Protocol.single(model.names, [stim], amplitude=1.0, onset_s=2.0,
                                   duration_s=30.0)  # fmt: skip
        rate = model.max_rate()  # None for exact (matrix-exponential) steppers
        dt = 0.02 if rate is None else 0.2 / max(10, int(np.ceil(0.2 * float(rate))))
        ds = simulate(model, protocol, 40.0, dt, save_dt_s=0.2)
        var = "activity" if "activity" in ds else "dff"
        gain = result.readout_gain.get(name, 1.0)
        for k, i in enumerate(top):
            trace = ds[var].isel(condition=0).sel(neuron=result.names[i]).to_numpy()
            ax.plot(ds["time"], gain * (trace - trace[0]), c=f"C{k}", label=result.names[i])
            ax.axhline(wt[i, j], c=f"C{k}", ls=":", lw=0.8)
        unit = "1 mV" if var == "activity" else "a unit"
        ax.set_title(f"{name}: {unit} sustained input to {stim} from t = 2 s (in-sample fit)"
                     "\n(dotted: measured mean dF/F of the same pairs)", fontsize=9)  # fmt: skip
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"predicted dF/F ({var} change × fitted gain {gain:.3g})")
        ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def _fig_kernels(result) -> bytes:
    """Held-out kernels of example pairs, the fitted time constants, and the kernel scores."""
    k = result.kernel
    names, t = result.names, k.times_s
    meas, pred, flat = k.measured, k.oof["model"], k.oof["tau_1s"]
    off = ~np.eye(len(names), dtype=bool)
    usable = off & np.isfinite(meas).all(-1) & np.isfinite(pred).all(-1)
    amp = np.where(usable, np.nan_to_num(np.abs(meas)).max(-1), 0.0)
    # typical strong responses: the pairs just below the 99th percentile of amplitude
    cut = np.percentile(amp[amp > 0], 99)
    flat_idx = np.argsort(-np.where(amp <= cut, amp, 0.0), axis=None)[:6]
    fig, axes = plt.subplots(
        1, 8, figsize=(24, 3.2), gridspec_kw={"width_ratios": [1] * 6 + [1.2, 1.6]}
    )
    for ax, flat_i in zip(axes[:6], flat_idx):
        i, j = np.unravel_index(flat_i, amp.shape)
        scale = np.abs(meas[i, j]).max() or 1.0
        ax.plot(t, meas[i, j] / scale, "k", lw=1.5, label="measured")
        for curve, style, lab in ((pred, "C0", "fitted"), (flat, "C1--", "first order, τ = 1 s")):
            c = curve[i, j]
            ax.plot(t, c / (np.abs(c).max() or 1.0), style, lw=1, label=lab)
        ax.set_title(f"{names[j]} → {names[i]}", fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_xlim(0, 15)
    axes[0].set_ylabel("kernel / its peak")
    axes[0].legend(fontsize=7)
    if np.ptp(k.tau_s) > 0:
        axes[6].hist(np.log10(k.tau_s), bins=30, color="C0")
        axes[6].set_xlabel("log10 τ (s), final fit")
        axes[6].set_ylabel("neurons")
    else:  # one shared unit: its own impulse response (activity, and the readout's lag)
        tau = float(k.tau_s[0])
        tt = np.linspace(0.0, 10.0, 401)
        x = np.exp(-tt / tau) / tau
        axes[6].plot(tt, x / x.max(), "C1--", lw=1, label=f"activity, τ = {tau:.2f} s")
        if k.readout_tau_s is not None:
            tau_o = float(k.readout_tau_s[0])
            y = (
                tt * np.exp(-tt / tau)  # the limit of equal time constants
                if abs(tau - tau_o) < 1e-9
                else (np.exp(-tt / tau) - np.exp(-tt / tau_o)) / (tau - tau_o)
            )
            axes[6].plot(tt, y / y.max(), "C0", lw=1.5, label=f"readout, τᵒ = {tau_o:.2f} s")
        axes[6].set_xlabel("time (s)")
        axes[6].set_title("one unit's impulse response, final fit", fontsize=9)
        axes[6].legend(fontsize=7)
    scores = result.scores["models"]["kernel"]["heldout_kernels"]
    keys = list(scores)
    x = np.arange(len(keys))
    for off_x, metric, col in ((-0.2, "pearson_clipped", "C0"), (0.0, "shape_r_median", "C2"),
                               (0.2, "peak_within_1s", "C3")):  # fmt: skip
        axes[7].bar(x + off_x, [scores[q].get(metric, np.nan) for q in keys], 0.2, color=col,
                    label=metric)  # fmt: skip
    axes[7].set_xticks(x, keys, fontsize=8, rotation=20)
    axes[7].legend(fontsize=7)
    axes[7].set_title("held-out kernel scores", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _table(result) -> str:
    s = result.scores
    cols = (*METRICS, "scale_ratio", "n_pairs")  # scale: median |pred|/|measured|, q < 0.05
    head = "".join(f"<th>{m}</th>" for m in cols)

    def row(name, d, extra=""):
        cells = "".join(
            f"<td>{d[m]:.3f}</td>" if isinstance(d.get(m), float) else f"<td>{d.get(m)}</td>"
            for m in cols
        )
        return f"<tr><td>{html.escape(name)}{extra}</td>{cells}</tr>"

    rows = [row(m, s["models"][m]["heldout"], " (model)") for m in result.models]
    rows += [row(b, v) for b, v in s["baselines"].items()]
    return f"<table><tr><th>predictor</th>{head}</tr>{''.join(rows)}</table>"


def write_report(result, atlas, out_dir: Path, wall_s: float) -> Path:
    """Write ``report.html`` (self-contained, figures inline) into ``out_dir``.

    ``wall_s`` is the run's wall time (s) printed in the header.
    """
    if not (isinstance(wall_s, int | float) and math.isfinite(wall_s) and wall_s >= 0):
        raise InvalidParameterError(
            f"wall_s must be a finite number of seconds >= 0; got {wall_s!r}"
        )
    s = result.scores
    c = s["noise_ceiling"]
    figures = [
        ("bars", _fig_bars(result), "Held-out scores of every model and baseline, with the "
         "noise ceiling and the goal (0.9 × ceiling)."),
        ("scatter", _fig_scatter(result), "Held-out predictions vs measurements."),
        ("matrices", _fig_matrices(result, atlas), "Measured and out-of-fold predicted "
         "response matrices (rows respond to columns; grey: not measured)."),
        ("calibration", _fig_calibration(result), "Calibration of the prediction intervals "
         "on held-out pairs (each level calibrated inside the training folds)."),
        ("unc31", _fig_unc31(result), "unc-31: change predicted by knocking out dense-core "
         "vesicle release in the wild-type fit vs the measured change."),
        ("spontaneous", _fig_spontaneous(result, atlas), "Predicted correlations of "
         "spontaneous (noise-driven) activity."),
    ]  # fmt: skip
    if result.kernel is not None:
        caption = (
            "Kernel model: held-out response kernels (each curve over its own peak; stimulated "
            "neuron clamped) of strong pairs, the fitted time constants, and held-out kernel "
            "scores beside the alternative (per-neuron or shared) dynamics, the first-order "
            "unit at τ = 1 s and each responder's mean kernel."
        )
        figures.append(("kernels", _fig_kernels(result), caption))
    traces = _fig_traces(result, atlas)
    if traces is not None:
        figures.append(("traces", traces, "Example traces of the fitted models."))
    unc = s["unc31"]
    unc_rows = "".join(
        f"<tr><td>{html.escape(k)}</td>"
        + "".join(f"<td>{v.get(m, float('nan')):.3f}</td>" for m in METRICS)
        + "</tr>"
        for k, v in unc.items()
        if isinstance(v, dict) and "auroc" in v
    )
    lin = s["models"].get("linear", {})
    trials = lin.get("heldout_trials", {})
    neuron = s.get("neuron_split", {})
    neuron_rows = "".join(
        f"<tr><td>{k}</td><td>{v['pearson_clipped']:.3f}</td><td>{v['spearman']:.3f}</td></tr>"
        for k, v in neuron.items()
    )
    kernel_html = ""
    if "kernel" in s["models"]:
        ks = s["models"]["kernel"]
        kmetrics = ("pearson_clipped", "shape_r_median", "peak_within_1s", "n_pairs")
        krows = "".join(
            f"<tr><td>{html.escape(k)}</td>"
            + "".join(f"<td>{v.get(m, float('nan')):.3g}</td>" for m in kmetrics)
            + "</tr>"
            for k, v in ks["heldout_kernels"].items()
        )
        kernel_html = (
            "<h2>Kernel model (held-out response kernels, class split)</h2><table><tr>"
            "<th>predictor</th>" + "".join(f"<th>{m}</th>" for m in kmetrics) + "</tr>"
            f"{krows}</table><p>{html.escape(ks['note'])} Fitted time constants: median "
            f"{ks['tau_s']['median']:.2f} s (5–95%: {ks['tau_s']['p05']:.2f}–"
            f"{ks['tau_s']['p95']:.2f} s)."
            + (
                ""
                if ks.get("readout_tau_s") is None
                else f" Readout filters: median {ks['readout_tau_s']['median']:.2f} s (5–95%: "
                f"{ks['readout_tau_s']['p05']:.2f}–{ks['readout_tau_s']['p95']:.2f} s)."
            )
            + "</p>"
        )
    body = "\n".join(_img(name, png, cap) for name, png, cap in figures)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digiworm reproduce</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
img{{max-width:100%}}figcaption{{font-size:13px;color:#555}}</style></head><body>
<h1>digiworm reproduce</h1>
<p>Models fitted to the wild-type signal propagation atlas (Randi et al. 2023) and scored on
stimulations they never saw: {s["folds"]}-fold cross-validation split by stimulated neuron
class (left/right and dorsal/ventral members held out together). Pearson r is computed on
values clipped to their 0.5–99.5 percentiles. Noise ceiling (split-half reliability
{c["r_half_clipped"]:.3f}, Spearman–Brown {c["reliability"]:.3f}, square root):
<b>{c["ceiling"]:.3f}</b>. Wall time {wall_s:.0f} s
{"(quick run)" if s["settings"]["quick"] else ""}.</p>
<h2>Scoreboard (held-out, class split)</h2>{_table(result)}
<p>Linear network: coverage of the nominal 90% intervals on held-out pairs
<b>{lin.get("coverage90", float("nan")):.3f}</b>. Held-out trials split: model vs test half
r = {trials.get("pearson_clipped_model_vs_test_half", float("nan")):.3f}, train half vs test
half r = {trials.get("pearson_clipped_train_half_vs_test_half", float("nan")):.3f}
({trials.get("fraction_of_reproducibility", float("nan")):.0%} of the reproducibility; Creamer,
Leifer &amp; Pillow 2024 report 92% for their connectome-constrained LDS on their data).</p>
<h2>Per-neuron split</h2><table><tr><th>predictor</th><th>pearson_clipped</th>
<th>spearman</th></tr>{neuron_rows}</table>
<h2>unc-31 (never fitted)</h2><table><tr><th>predictor</th>
{"".join(f"<th>{m}</th>" for m in METRICS)}</tr>{unc_rows}</table>
<p>{html.escape(str(unc.get("model_reading", "")))}</p>
{kernel_html}
{body}
</body></html>"""
    path = Path(out_dir) / "report.html"
    atomic_write_text(path, page)
    return path
