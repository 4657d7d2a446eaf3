"""Figures of conductance-based cells: current-clamp families beside the steady-state I–V."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["cell_figure", "reference_figure"]


def cell_figure(
    runs: dict, iv: dict, title: str, points: dict | None = None, bands: dict | None = None
):
    """Return a figure: one current-clamp panel per run, then every run's steady-state I–V.

    Parameters
    ----------
    runs : dict of label -> xarray.Dataset
        :func:`digiworm.simulate.current_clamp` outputs of one cell each.
    iv : dict of label -> xarray.DataArray
        :func:`digiworm.simulate.steady_iv` of the same cells.
    title : str
    points : dict of label -> [(pA, ms, mV), ...], optional
        Published values drawn as black circles on the run with that label.
    bands : dict of label -> (low, high), optional
        Arrays (step, time): an uncertainty band shaded around the run with that label, for
        its smallest and largest steps (all of them overlap).
    """
    n = len(runs)
    fig, axes = plt.subplots(1, n + 1, figsize=(4.3 * (n + 1), 3.6), squeeze=False)
    axes = axes[0]
    for ax, (label, ds) in zip(axes, runs.items()):
        v = ds.v_mV.isel(neuron=0)
        colors = plt.cm.viridis(np.linspace(0, 0.9, v.sizes["step_pA"]))
        band = (bands or {}).get(label)
        for k, (color, step) in enumerate(zip(colors, v.step_pA.values)):
            ax.plot(v.time_ms, v.sel(step_pA=step), color=color, lw=1.1, label=f"{step:g} pA")
            if band is not None and k in (0, v.sizes["step_pA"] - 1):  # the extremes only
                ax.fill_between(v.time_ms, band[0][k], band[1][k], color=color, alpha=0.18, lw=0)
        for _step, t, mv in (points or {}).get(label, []):
            ax.plot(t, mv, "o", mfc="none", mec="k", ms=6)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("V (mV)")
        ax.legend(fontsize=7, frameon=False, loc="upper right")
    ax = axes[-1]
    for label, curve in iv.items():
        ax.plot(curve.v_mV, curve.isel(neuron=0), lw=1.4, label=label)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("V (mV)")
    ax.set_ylabel("steady-state current (pA)")
    ax.set_title("steady-state I–V (zeros with positive slope = rests)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    lo, hi = np.nanpercentile(np.concatenate([c.values.ravel() for c in iv.values()]), [2, 98])
    ax.set_ylim(min(lo, -5.0), max(hi, 5.0))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def reference_figure(name: str):
    """Return the figure of published model ``name`` under the protocol of its reference trace.

    Its own traces (lines) with the published model's trace points (black circles; see
    :attr:`digiworm.models.ReferenceCell.trace_points`), and its steady-state I–V.
    """
    from ..models._reference_cells import reference_cell
    from ..simulate import reference_trace_run, steady_iv

    ref = reference_cell(name)
    run = reference_trace_run(ref, save_dt_ms=0.25)
    iv = steady_iv(ref.cell(), np.arange(-100.0, 40.01, 0.25))
    from ..models._channels import NICOLETTI_2024

    paper = "Nicoletti et al. 2024" if ref.source == NICOLETTI_2024 else "Nicoletti et al. 2019"
    title = f"{name} ({paper}): digiworm" + (
        " (lines) vs the published model's traces (circles)" if ref.trace_points else ""
    )
    return cell_figure({name: run}, {name: iv}, title, points={name: list(ref.trace_points)})
