"""Figures of a simulation result (``digiworm simulate --plot``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .._io import write_with

__all__ = ["plot_traces"]


def plot_traces(ds: xr.Dataset, path: Path, n_top: int = 8) -> None:
    """Plot ΔF/F of the stimulated neurons and the strongest responders (PNG/SVG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    if "condition" in ds.dims:
        dff = ds["dff"].isel(condition=0).to_pandas()  # (time, neuron)
        stim = [n for n in ds.attrs.get("stimulated", "").split(",") if n]
        change = (dff - dff.iloc[0]).abs().max().drop(labels=stim, errors="ignore")
        others = list(change.sort_values(ascending=False).head(n_top).index)
        for n in stim:
            ax.plot(dff.index, dff[n], lw=2.5, label=f"{n} (stimulated)")
        for n in others:
            ax.plot(dff.index, dff[n], lw=1, label=n)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("dF/F")
        if stim and "onset_s" in ds.attrs:  # the protocol's own times, not the samples'
            onset, pulse = float(ds.attrs["onset_s"]), float(ds.attrs["pulse_s"])
            ax.axvspan(onset, onset + pulse, color="gold", alpha=0.3, label="stimulus")
        ax.set_title(f"digiworm {ds.attrs.get('command_model', '')} simulation")
        ax.legend(fontsize=7, ncol=2)
    else:
        im = ax.imshow(ds["dff"].to_numpy(), cmap="RdBu_r", aspect="auto")
        vmax = float(np.nanpercentile(np.abs(ds["dff"].to_numpy()), 99)) or 1.0
        im.set_clim(-vmax, vmax)
        ax.set_xlabel("stimulated neuron")
        ax.set_ylabel("responding neuron")
        ax.set_title("in-silico signal propagation atlas (dF/F)")
        fig.colorbar(im, ax=ax)
    fmt = path.suffix.lstrip(".").lower()
    write_with(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight"))
    plt.close(fig)
