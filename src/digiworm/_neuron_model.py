"""``digiworm neuron NAME --model``: a neuron's conductance model, its channels and responses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import DigiwormError

__all__ = ["NeuronModelView", "neuron_model_view"]

STEPS_PA = (-4.0, 0.0, 4.0, 8.0, 12.0, 16.0, 20.0)


@dataclass
class NeuronModelView:
    """What ``digiworm neuron NAME --model`` shows."""

    neuron: str
    channels: pd.DataFrame  # channel, genes, TPM, g_nS, g_lo_nS, g_hi_nS, prior, description
    unmodelled: list[str]  # expressed ion-channel genes with no kinetics in the library
    rests_mV: dict[str, np.ndarray]  # label -> stable rests
    responses: pd.DataFrame  # model, step_pA, peak_mV, end_mV, end_lo_mV, end_hi_mV
    c_pF: float
    reference: str | None  # published model of this neuron, if any
    figure: Path | None
    map_label: str = ""
    """Which expression map built the cell (held out where a published model exists)."""
    rest_band_mV: tuple[float, float] | None = None
    """Range of the lowest rest over the jackknife ensemble of maps."""


MODEL_LABEL = "expression model"


def neuron_model_view(
    atlas, neuron: str, *, knockouts=(), threshold: int = 2, out=None, band: bool = True
):
    """Build the expression model of ``neuron`` (and knockouts) and run a current-clamp family.

    The cell is built with the shipped fitted map (:func:`~digiworm.models.fitted_expression_maps`);
    where a published model of the neuron exists (AWCR: AWCon, RMDL/RMDR: RMD, AIYL/AIYR: AIY,
    …) with the map fitted *without* it, so what is shown beside the published model is a
    held-out prediction. With ``band`` the cells of the jackknife ensemble of maps around that
    map (:func:`~digiworm.models.jackknife_maps`) run too, and their range is the uncertainty
    band of each trace and of every conductance. With ``out`` a PNG of the traces and
    steady-state I–V is written there (atomically).
    """
    from ._io import atomic_write_bytes
    from .experiments import Knockout
    from .models import (
        CHANNELS,
        REFERENCE_CELLS,
        cells_from_expression,
        channel_tpm,
        fitted_expression_maps,
        jackknife_maps,
    )
    from .simulate import current_clamp, resting_potentials, steady_iv
    from .validate._cell_population import expressed_genes_without_kinetics

    if out is not None and Path(out).suffix.lower() != ".png":
        raise DigiwormError(f"--out must name a .png file; got {out}")
    canon = atlas.neuron(neuron)
    maps = fitted_expression_maps()
    if threshold != maps["all"].threshold:
        raise DigiwormError(
            f"the shipped expression maps are fitted at CeNGEN threshold "
            f"{maps['all'].threshold}, not {threshold}; for another threshold fit one in Python "
            f"(digiworm.models.fit_expression_map(atlas, threshold={threshold}), about 1.5 min) "
            "and build the cell with cells_from_expression"
        )
    reference = next((n for n, r in REFERENCE_CELLS.items() if r.neuron == canon), None)
    if reference is None:  # a neuron of the same CeNGEN class has the same expression cell
        cls = atlas.neurons.loc[canon, "cengen_class"]
        reference = next(
            (n for n, r in REFERENCE_CELLS.items()
             if cls and atlas.neurons.loc[r.neuron, "cengen_class"] == cls),
            None,
        )  # fmt: skip
    centre = reference if reference is not None else "all"
    mapping = maps[centre]
    map_label = (
        f"map fitted without {reference} (held out)" if reference else "map fitted to all nine"
    )
    # from the shared map: held out, not even the effect of another published model of the
    # class (AVAR's in AVAL's map); outside the published classes no effect applies anyway
    cell = cells_from_expression(atlas, canon, mapping, neuron_effects=False)
    ensemble = (
        [
            cells_from_expression(atlas, canon, m, neuron_effects=False)
            for m in jackknife_maps(maps, centre).values()
        ]
        if band
        else []
    )
    tpm = channel_tpm(atlas, canon, threshold)
    rows = []
    for c in cell.channels:
        spread = [float(e.g_nS[c][0]) if c in e.g_nS else 0.0 for e in ensemble]
        rows.append(
            {
                "channel": c,
                "genes": "/".join(CHANNELS[c].genes + CHANNELS[c].requires) or "-",
                "TPM": tpm.get(c, float("nan")),
                "g_nS": float(cell.g_nS[c][0]),
                "g_lo_nS": min(spread) if spread else float("nan"),
                "g_hi_nS": max(spread) if spread else float("nan"),
                "prior": c in mapping.prior,
                "description": CHANNELS[c].description,
            }
        )
    channels = pd.DataFrame(rows)
    unmodelled = [
        f"{gene} ({value:.0f} TPM{', auxiliary' if auxiliary else ''})"
        for gene, value, auxiliary in expressed_genes_without_kinetics(atlas, [canon], threshold)[0]
    ]
    cells = {MODEL_LABEL: cell}
    for gene in knockouts:
        cells[f"{gene} knockout"] = Knockout(gene, atlas, threshold)(cell)
    if reference is not None:
        cells[f"published {reference}"] = REFERENCE_CELLS[reference].cell()

    def clamp(c):
        return current_clamp(c, STEPS_PA, onset_ms=100.0, duration_ms=500.0, total_ms=800.0)

    runs, iv, rests, resp = {}, {}, {}, []
    grid = np.arange(-100.0, 40.01, 0.5)
    for label, c in cells.items():
        runs[label], iv[label] = clamp(c), steady_iv(c, grid)
        rests[label] = resting_potentials(c)[0]
    bands, rest_band = {}, None
    if ensemble:
        members = [clamp(e).v_mV.isel(neuron=0) for e in ensemble]
        stacked = np.stack([m.to_numpy() for m in members])
        bands[MODEL_LABEL] = (np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0))
        lows = [r[0] for r in (resting_potentials(e)[0] for e in ensemble) if len(r)]
        rest_band = (float(min(lows)), float(max(lows))) if lows else None
    end_index = int(np.argmin(np.abs(runs[MODEL_LABEL].time_ms.to_numpy() - 600.0)))
    for label, ds in runs.items():
        v = ds.v_mV.isel(neuron=0)
        during = v.sel(time_ms=slice(100.0, 600.0))
        for k, step in enumerate(STEPS_PA):
            row = {
                "model": label,
                "step_pA": step,
                "peak_mV": float(during.sel(step_pA=step).max()),
                "end_mV": float(v.sel(step_pA=step, time_ms=600.0)),
                "end_lo_mV": float("nan"),
                "end_hi_mV": float("nan"),
            }
            if label in bands:
                row["end_lo_mV"] = float(bands[label][0][k, end_index])
                row["end_hi_mV"] = float(bands[label][1][k, end_index])
            resp.append(row)
    figure = None
    if out is not None:
        from .report._atlas_report import _png
        from .report._cell_figure import cell_figure

        figure = Path(out)
        title = f"{canon}: current clamp, 500 ms steps; {map_label}"
        if bands:
            title += ", band: jackknife range of the map"
        atomic_write_bytes(figure, _png(cell_figure(runs, iv, title, bands=bands)))
    return NeuronModelView(
        neuron=canon,
        channels=channels,
        unmodelled=unmodelled,
        rests_mV=rests,
        responses=pd.DataFrame(resp),
        c_pF=float(cell.c_pF[0]),
        reference=reference,
        figure=figure,
        map_label=map_label,
        rest_band_mV=rest_band,
    )
