r"""The predicted physiology of every neuron built from its expression, and how much is prior.

:func:`expression_population` builds all 302 neurons from CeNGEN expression with one map
(default: the shipped fitted one) and reads each one's steady state
(:func:`~digiworm.validate.steady_readout`): lowest stable rest, number of stable rests
(bistable cells), input resistance and where a +10 pA step settles. Beside it:

* ``rest_sd_mV``: the spread of that rest over the jackknife ensemble of maps
  (:func:`~digiworm.models.jackknife_maps`), the map's uncertainty carried into the cell;
* ``prior_share``: the fraction of the cell's resting conductance (every channel's
  :math:`\bar g\,o_\infty(V_{rest})`, leak included) carried by channels that no published
  model calibrates (their scale is the prior, :attr:`~digiworm.models.ExpressionMap.prior`),
  so how much of the cell is assumption rather than data;
* ``unmodelled``: the expressed pore-forming ion-channel genes of the curated gene table that
  the channel library has no kinetics for (the DEG/ENaC unc-8, the TRPV osm-9, the CNG tax-4,
  the Kv exp-2 …), with their TPM: currents the cell lacks. Auxiliary subunits of modelled
  channels (unc-36, unc-79, unc-80) are left out (:func:`channel_genes_without_kinetics`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["channel_genes_without_kinetics", "expression_population"]


def expression_population(atlas, mapping=None, *, step_pA: float = 10.0, ensemble=None):
    """Return one row per neuron: predicted rest, bistability, input resistance, prior share.

    Parameters
    ----------
    mapping : ExpressionMap, optional
        Default: :func:`~digiworm.models.fitted_expression_map`.
    step_pA : float
        Current whose steady response is reported as ``step_mV``.
    ensemble : dict of ExpressionMap, optional
        Maps whose spread gives ``rest_sd_mV`` (default: the jackknife ensemble around the
        shipped map; pass ``{}`` to skip).
    """
    import jax.numpy as jnp

    from ..models import cells_from_expression, fitted_expression_map, jackknife_maps
    from ._cell_knockouts import _GRID_MV, _readout

    mapping = fitted_expression_map() if mapping is None else mapping
    ensemble = jackknife_maps() if ensemble is None else ensemble
    names = [n for n in atlas.names if atlas.neurons.loc[n, "cengen_class"]]
    cells = cells_from_expression(atlas, names, mapping)
    grid = jnp.asarray(np.repeat(_GRID_MV[:, None], len(names), 1))
    i = np.asarray(cells.steady_current(grid))
    rows = []
    rests = np.full(len(names), math.nan)
    for j, n in enumerate(names):
        one = _readout(i[:, j], step_pA)
        rests[j] = one["rest_mV"]
        rows.append({"neuron": n, "class": atlas.neurons.loc[n, "neuron_class"]} | one)
    table = pd.DataFrame(rows).set_index("neuron")
    table["bistable"] = table.rests > 1
    # resting conductance by channel: g · o_inf(V_rest), Ca²⁺ pool at its steady state (a cell
    # with no stable rest has no resting conductance: its share is NaN, computed at any V)
    has_rest = np.isfinite(rests)
    v = jnp.asarray(np.where(has_rest, rests, -60.0))
    state = cells.steady_state(v)
    g_open = {c: np.asarray(g) for c, g in cells.conductances(state.gates).items()}
    total = sum(g_open.values())
    prior = sum((g_open[c] for c in g_open if c in mapping.prior), np.zeros(len(names)))
    table["prior_share"] = np.where(
        has_rest & (total > 0), prior / np.maximum(total, 1e-30), math.nan
    )
    table["prior_channels"] = [
        ", ".join(c for c in cells.channels if c in mapping.prior and float(cells.g_nS[c][j]) > 0)
        for j in range(len(names))
    ]
    if ensemble:
        spread = []
        for m in ensemble.values():
            ci = cells_from_expression(atlas, names, m)
            ii = np.asarray(ci.steady_current(grid))
            spread.append([_readout(ii[:, j], step_pA)["rest_mV"]
                           for j in range(len(names))])  # fmt: skip
        table["rest_sd_mV"] = np.nanstd(np.asarray(spread), axis=0)
    table["unmodelled"] = _unmodelled(atlas, names, mapping.threshold)
    return table


def channel_genes_without_kinetics(atlas) -> dict[str, bool]:
    """Return the curated ion-channel genes the library has no kinetics for.

    Maps each gene to whether it is an auxiliary subunit of a modelled channel (``unc-36``,
    the α2δ of the Ca²⁺ channels; ``unc-79``/``unc-80`` of NCA), whose absence from the model
    loses no current of its own, rather than a pore whose current is missing.
    """
    from ..models import CHANNELS

    roles = atlas.gene_roles
    modelled = {g for ch in CHANNELS.values() for g in ch.genes + ch.requires}
    out = {}
    for gene in roles.index[roles["category"] == "ion_channel"]:
        if gene not in modelled:
            family = str(roles.loc[gene, "family"]).lower()
            out[gene] = "auxiliary" in family or "alpha2delta" in family
    return out


def expressed_genes_without_kinetics(atlas, names, threshold) -> list[list[tuple]]:
    """Per neuron, ``(gene, TPM, auxiliary)`` of each expressed channel gene without kinetics.

    The genes are :func:`channel_genes_without_kinetics`'s; one list per name in ``names``.
    """
    genes = channel_genes_without_kinetics(atlas)
    matrix = atlas.expression_matrix(threshold)
    known = {str(g) for g in matrix["gene"].values}
    out = []
    for n in names:
        col = matrix.sel(cengen_class=atlas.neurons.loc[n, "cengen_class"])
        by = dict(zip(col["gene"].to_numpy().tolist(), np.nan_to_num(col.to_numpy()).tolist()))
        tpm = {g: by.get(atlas.gene(g) if g in known else g, 0.0) for g in genes}
        out.append([(g, tpm[g], aux) for g, aux in genes.items() if tpm[g] > 0])
    return out


def _unmodelled(atlas, names, threshold) -> list[str]:
    return [
        ", ".join(f"{g} ({t:.0f} TPM)" for g, t, aux in hits if not aux)
        for hits in expressed_genes_without_kinetics(atlas, names, threshold)
    ]
