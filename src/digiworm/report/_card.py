"""The neuron card: everything the atlas knows about one neuron, as plain data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..atlas import gene_of

__all__ = ["neuron_card"]

CARD_CONNECTOMES = ("cook2019", "white1986", "witvliet2021_8")


def _ranked(values: pd.Series, n: int, fmt: str = "{:g}", signed: bool = False) -> str:
    values = values.dropna()
    key = values.abs() if signed else values
    keep = key[key > 0].sort_values(ascending=False).head(n).index
    return ", ".join(f"{k} ({fmt.format(values[k])})" for k in keep) or "none"


def _peptide_genes(atlas) -> tuple[list[str], list[str]]:
    genes = {str(g) for g in atlas.dataset("cengen").gene.values}
    table = atlas.peptide_gpcr()
    peptides = sorted({g for p in table["peptide"] if (g := gene_of(p, genes))})
    receptors = sorted({g for r in table["gpcr"] if (g := gene_of(r, genes))})
    return peptides, receptors


def neuron_card(atlas, neuron: str, top: int = 6, threshold: int = 2) -> dict:
    """Collect a neuron's identity, partners, peptides, channels and measured responses.

    Parameters
    ----------
    atlas : digiworm.atlas.Atlas
    neuron : str
        Canonical id (already resolved).
    top : int
        Entries listed per row.
    threshold : int
        CeNGEN threshold (1-4) for expression.

    Returns
    -------
    dict
        ``{"identity": {field: value}, "sections": {title: {label: text}}}``.
    """
    row = atlas.neurons.loc[neuron]
    identity = {
        "class": row.neuron_class,
        "type": row.type,
        "ganglion": row.ganglion or "unknown",
        "left/right partner": row.bilateral_partner or "-",
        "dorsal/ventral partner": row.dv_partner or "-",
        "transmitter (Wang 2024)": (row.transmitter or "none assigned").replace("+", ", "),
        "transmitter (Fenyves 2020)": (row.transmitter_fenyves or "none given").replace("+", ", "),
        "CeNGEN type": row.cengen_class or "not profiled",
        "soma position (x, y, z)": f"({row.x:.3f}, {row.y:.3f}, {row.z:.3f}) atlas units",
    }
    if row.awc_state:
        identity["AWC state"] = f"{row.awc_state} (AWCL=OFF, AWCR=ON convention)"
    sections: dict[str, dict[str, str]] = {}

    chem, gap = {}, {}
    for name in CARD_CONNECTOMES:
        c = atlas.connectome(name, "chemical").to_pandas()
        g = atlas.connectome(name, "gap").to_pandas()
        if np.isnan(c.loc[neuron, neuron]):
            chem[name] = "not in this reconstruction"
            continue
        chem[f"inputs from ({name})"] = _ranked(c.loc[neuron], top)
        chem[f"outputs to ({name})"] = _ranked(c[neuron], top)
        gap[name] = _ranked(g.loc[neuron], top)
    sections["Chemical synapses (synapse counts)"] = chem
    sections["Gap junctions (counts)"] = gap

    expr = atlas.expression_matrix(threshold)
    cls = row.cengen_class
    if cls:
        profile = expr.sel(cengen_class=cls).to_pandas()
        roles = atlas.gene_roles
        peptides, receptors = _peptide_genes(atlas)
        channels = [g for g in roles.index[roles.category == "ion_channel"] if g in profile.index]
        sections[f"Expression (CeNGEN threshold {threshold}, TPM)"] = {
            "ion channels": _ranked(profile[channels], top, "{:.0f}"),
            "neuropeptide genes": _ranked(profile[peptides], top, "{:.0f}"),
            "peptide receptors": _ranked(profile[receptors], top, "{:.0f}"),
        }
    pep = atlas.extrasynaptic("ripoll_sanchez_short").to_pandas()
    sections["Neuropeptide connectome (Ripoll-Sanchez 2023, short range)"] = {
        "senders to it": f"{int((pep.loc[neuron] > 0).sum())} neurons; "
        + _ranked(pep.loc[neuron], top),
        "receivers from it": f"{int((pep[neuron] > 0).sum())} neurons; "
        + _ranked(pep[neuron], top),
    }

    fun = atlas.functional("wt", kernel_time_s=None)
    dff = fun["dff"].to_pandas()
    sig = fun["q"].to_pandas() < 0.05
    drives = dff[neuron].where(sig[neuron]).drop(neuron)
    driven = dff.loc[neuron].where(sig.loc[neuron]).drop(neuron)
    sections["Functional atlas (Randi 2023, wild type, q < 0.05, dF/F)"] = {
        "stimulating it drives": f"{int(drives.notna().sum())} of "
        f"{int(dff[neuron].drop(neuron).notna().sum())} measured; "
        + _ranked(drives, top, "{:+.2f}", signed=True),
        "it responds to": f"{int(driven.notna().sum())} of "
        f"{int(dff.loc[neuron].drop(neuron).notna().sum())} measured; "
        + _ranked(driven, top, "{:+.2f}", signed=True),
    }
    return {"identity": identity, "sections": sections}
