"""Receptor genes by transmitter and polarity (Fenyves et al. 2020, sheet "2. Receptor gene table").

Each classical transmitter (acetylcholine, glutamate, GABA) has receptor genes that excite
(cation channels, e.g. glr-1, acr-16, exp-1) or inhibit (anion channels and inhibitory GPCRs,
e.g. avr-14, acc-1, unc-49) the receiving neuron. digiworm's synapse-sign rule counts which of
them the postsynaptic neuron expresses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import xarray as xr

from .._errors import DataPackageError

__all__ = ["build_receptor_polarity"]

_COLUMNS = {
    "Glu Pos": ("glutamate", 1), "Glu Neg": ("glutamate", -1),
    "ACh Pos": ("acetylcholine", 1), "ACh Neg": ("acetylcholine", -1),
    "GABA Pos": ("GABA", 1), "GABA Neg": ("GABA", -1),
}  # fmt: skip


def build_receptor_polarity(path: Path) -> xr.Dataset:
    """Parse the receptor gene table into rows ``(gene, transmitter, polarity ±1)``."""
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = list(wb["2. Receptor gene table"].iter_rows(values_only=True))
    wb.close()
    header = [str(h).strip() if h else "" for h in rows[0]]
    genes, transmitters, polarity = [], [], []
    for col, label in enumerate(header):
        if label not in _COLUMNS:
            continue
        transmitter, sign = _COLUMNS[label]
        for row in rows[1:]:
            value = row[col] if col < len(row) else None
            if value and str(value).strip():
                genes.append(str(value).strip().lower())
                transmitters.append(transmitter)
                polarity.append(sign)
    if set(header) & set(_COLUMNS) != set(_COLUMNS):
        raise DataPackageError(f"receptor gene table lacks columns {set(_COLUMNS) - set(header)}")
    return xr.Dataset(
        {
            "gene": ("receptor", np.asarray(genes)),
            "transmitter": ("receptor", np.asarray(transmitters)),
            "polarity": ("receptor", np.asarray(polarity, dtype=np.int8)),
        },
        attrs={"n_receptors": len(genes)},
    )
