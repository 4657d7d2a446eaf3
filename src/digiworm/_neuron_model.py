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
    channels: pd.DataFrame  # channel, genes, TPM, g_nS, description
    unmodelled: list[str]  # expressed ion-channel genes with no kinetics in the library
    rests_mV: dict[str, np.ndarray]  # label -> stable rests
    responses: pd.DataFrame  # label, step_pA, peak_mV, end_mV
    c_pF: float
    reference: str | None  # published model of this neuron, if any
    figure: Path | None


def neuron_model_view(atlas, neuron: str, *, knockouts=(), threshold: int = 2, out=None):
    """Build the expression model of ``neuron`` (and knockouts) and run a current-clamp family.

    With ``out`` a PNG of the traces and steady-state I–V is written there (atomically). Where
    a published model of the neuron exists (AWCR: AWCon, RMDL/RMDR: RMD) it runs beside.
    """
    from ._io import atomic_write_bytes
    from .experiments import Knockout
    from .models import (
        CHANNELS,
        REFERENCE_CELLS,
        calibrate_expression_map,
        cells_from_expression,
        channel_tpm,
    )
    from .simulate import current_clamp, resting_potentials, steady_iv

    if out is not None and Path(out).suffix.lower() != ".png":
        raise DigiwormError(f"--out must name a .png file; got {out}")
    canon = atlas.neuron(neuron)
    mapping = calibrate_expression_map(atlas, threshold=threshold)
    cell = cells_from_expression(atlas, canon, mapping)
    tpm = channel_tpm(atlas, canon, threshold)
    rows = [
        {
            "channel": c,
            "genes": "/".join(CHANNELS[c].genes + CHANNELS[c].requires) or "-",
            "TPM": tpm.get(c, float("nan")),
            "g_nS": float(cell.g_nS[c][0]),
            "prior": c in mapping.prior,
            "description": CHANNELS[c].description,
        }
        for c in cell.channels
    ]
    channels = pd.DataFrame(rows)
    modelled = {g for ch in CHANNELS.values() for g in ch.genes}
    roles = atlas.gene_roles
    unmodelled = []
    for gene in roles.index[roles["category"] == "ion_channel"]:
        if gene in modelled:
            continue
        value = float(np.nan_to_num(atlas.expression(gene, threshold).sel(neuron=canon).item()))
        if value > 0:
            unmodelled.append(f"{gene} ({value:.0f} TPM)")
    cells = {"expression model": cell}
    for gene in knockouts:
        cells[f"{gene} knockout"] = Knockout(gene, atlas, threshold)(cell)
    reference = next((n for n, r in REFERENCE_CELLS.items() if r.neuron == canon), None)
    if reference is None and canon in ("RMDL", "RMDR"):
        reference = "RMD"
    if reference is not None:
        cells[f"published {reference}"] = REFERENCE_CELLS[reference].cell()
    runs, iv, rests, resp = {}, {}, {}, []
    grid = np.arange(-100.0, 40.01, 0.5)
    for label, c in cells.items():
        ds = current_clamp(c, STEPS_PA, onset_ms=100.0, duration_ms=500.0, total_ms=800.0)
        runs[label], iv[label] = ds, steady_iv(c, grid)
        rests[label] = resting_potentials(c)[0]
        v = ds.v_mV.isel(neuron=0)
        during = v.sel(time_ms=slice(100.0, 600.0))
        for step in STEPS_PA:
            resp.append(
                {
                    "model": label,
                    "step_pA": step,
                    "peak_mV": float(during.sel(step_pA=step).max()),
                    "end_mV": float(v.sel(step_pA=step, time_ms=600.0)),
                }
            )
    figure = None
    if out is not None:
        from .report._atlas_report import _png
        from .report._cell_figure import cell_figure

        figure = Path(out)
        title = f"{canon}: current clamp, 500 ms steps (CeNGEN threshold {threshold})"
        atomic_write_bytes(figure, _png(cell_figure(runs, iv, title)))
    return NeuronModelView(
        neuron=canon,
        channels=channels,
        unmodelled=unmodelled,
        rests_mV=rests,
        responses=pd.DataFrame(resp),
        c_pF=float(cell.c_pF[0]),
        reference=reference,
        figure=figure,
    )
