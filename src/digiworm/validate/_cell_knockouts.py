r"""In-silico channel-gene knockouts: cells predicted from expression beside the published ones.

For each published model *r* and channel gene *g*, :func:`channel_knockouts` knocks *g* out
(:class:`~digiworm.experiments.Knockout`: the conductance of every channel *g* makes is removed,
a family channel in proportion to *g*'s share of the family's transcripts) of

* the published model of *r* (what the authors' fitted cell predicts for the mutant), and
* the cell built from *r*'s expression with the map fitted *without* *r* (held out),

and reads each cell's steady state before and after, from the closed-form steady-state I–V
:math:`I_{ss}(V)` (every gate and the Ca²⁺ pool at steady state):

* ``rest_mV``: the lowest stable rest (zero of :math:`I_{ss}` with positive slope);
* ``rests``: how many stable rests (two: bistable);
* ``input_resistance_GOhm``: :math:`1/I_{ss}'` at that rest;
* ``step_mV``: where the largest step of *r*'s published protocol settles from that rest, the
  first :math:`V` above the rest with :math:`I_{ss}(V)` equal to the injected current (a cell
  that fires repetitively oscillates about it instead).

A knockout's effect is the mutant minus the wild type of the same cell. Where the published
model has no channel of *g* its effect is 0; where the expression cell has none (CeNGEN
detects no transcript of *g* in *r*'s class) the prediction is 0, which is a statement about
expression, and ``expressed`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._errors import DigiwormError, UnknownNameError

__all__ = ["KNOCKOUT_GENES", "channel_knockouts", "knockout_agreement", "steady_readout"]

#: The channel genes of issue 16's knockout table.
KNOCKOUT_GENES = (
    "shk-1", "egl-19", "unc-2", "cca-1", "slo-1", "slo-2", "egl-36", "irk-1", "unc-77",
)  # fmt: skip

_GRID_MV = np.arange(-120.0, 120.0 + 1e-9, 0.05)


def steady_readout(cell, step_pA: float) -> dict:
    """Return the steady-state readout of one-cell ``cell`` (see the module docstring)."""
    import jax.numpy as jnp

    if cell.n_cells != 1:
        raise DigiwormError(f"steady_readout takes one cell; got {cell.n_cells}")
    return _readout(np.asarray(cell.steady_current(jnp.asarray(_GRID_MV[:, None])))[:, 0], step_pA)


def _readout(i: np.ndarray, step_pA: float) -> dict:
    """:func:`steady_readout` of one cell's steady-state current ``i`` on ``_GRID_MV``."""
    from ..models._conductance import stable_zeros

    zeros, slopes = stable_zeros(_GRID_MV, i)
    if zeros.size == 0:
        return {"rest_mV": math.nan, "rests": 0, "input_resistance_GOhm": math.nan,
                "step_mV": math.nan}  # fmt: skip
    rest, slope = float(zeros[0]), float(slopes[0])
    above = np.nonzero((_GRID_MV > rest) & (i >= step_pA))[0]
    step = float(_GRID_MV[above[0]]) if above.size else math.nan
    return {
        "rest_mV": rest,
        "rests": int(zeros.size),
        "input_resistance_GOhm": 1.0 / slope if slope > 0 else math.inf,
        "step_mV": step,
    }


def channel_knockouts(
    atlas,
    genes: Sequence[str] = KNOCKOUT_GENES,
    references: Sequence[str] | None = None,
    *,
    maps: dict | None = None,
) -> pd.DataFrame:
    """Knock each gene out of each published model and of its held-out expression cell.

    Parameters
    ----------
    genes : sequence of str
        Ion-channel genes with a kinetic model (default :data:`KNOCKOUT_GENES`).
    references : sequence of str, optional
        Published models (default: all nine).
    maps : dict, optional
        Expression maps keyed by the published model each leaves out (default: the shipped
        fitted ones, :func:`~digiworm.models.fitted_expression_maps`).

    Returns
    -------
    pandas.DataFrame
        One row per (reference, gene): for ``published`` and ``predicted`` the wild-type
        readout, the mutant's, and the effects ``d_rest_mV``, ``d_step_mV``,
        ``d_input_resistance_GOhm``, ``rests_wt`` / ``rests_ko``; ``in_published`` and
        ``expressed`` say whether each cell has a channel of the gene at all.
    """
    from ..experiments import Knockout
    from ..models import REFERENCE_CELLS, cells_from_expression, fitted_expression_maps
    from ..models._channels import channels_of_gene

    refs = list(REFERENCE_CELLS) if references is None else list(references)
    for r in refs:
        if r not in REFERENCE_CELLS:
            raise UnknownNameError("reference neuron model", r, REFERENCE_CELLS)
    maps = fitted_expression_maps() if maps is None else maps
    missing = [r for r in refs if r not in maps]
    if missing:
        raise DigiwormError(f"no held-out expression map for {missing}; maps given: {list(maps)}")
    knockouts = {}
    for g in genes:
        ko = Knockout(g, atlas, maps[refs[0]].threshold)
        if ko.effect != "channel":
            raise DigiwormError(
                f"{g} is not an ion-channel gene (its modelled effect: {ko.effect})"
            )
        knockouts[ko.gene] = ko
    rows = []
    for r in refs:
        ref = REFERENCE_CELLS[r]
        step = float(np.max(ref.steps_pA))
        cells = {
            "published": ref.cell(),
            "predicted": cells_from_expression(atlas, ref.neuron, maps[r], neuron_effects=False),
        }
        wt = {k: steady_readout(c, step) for k, c in cells.items()}
        for gene, ko in knockouts.items():
            hit = channels_of_gene(gene)
            row = {"reference": r, "neuron": ref.neuron, "gene": gene, "step_pA": step}
            for k, cell in cells.items():
                has = any(float(np.asarray(cell.g_nS[c])[0]) > 0 for c in hit if c in cell.g_nS)
                mutant = steady_readout(ko(cell), step)
                row["in_published" if k == "published" else "expressed"] = has
                row[f"{k}_rest_wt_mV"] = wt[k]["rest_mV"]
                row[f"{k}_rest_ko_mV"] = mutant["rest_mV"]
                row[f"{k}_rests_wt"] = wt[k]["rests"]
                row[f"{k}_rests_ko"] = mutant["rests"]
                for q in ("rest_mV", "step_mV", "input_resistance_GOhm"):
                    row[f"{k}_d_{q}"] = mutant[q] - wt[k][q]
            rows.append(row)
    return pd.DataFrame(rows)


def knockout_agreement(table: pd.DataFrame, min_effect_mV: float = 1.0) -> dict:
    """Summarise how often the predicted knockouts agree with the published models' ones.

    Over (reference, gene) pairs where the published model's rest or step moves by at least
    ``min_effect_mV``: the fraction where the predicted change has the same sign, and the
    Pearson correlation of predicted and published changes; and how many pairs the published
    model calls a change in the number of stable rests (bistability gained or lost) that the
    prediction reproduces.
    """
    out = {}
    for q in ("rest_mV", "step_mV"):
        pub, pred = table[f"published_d_{q}"], table[f"predicted_d_{q}"]
        ok = pub.abs() >= min_effect_mV
        ok &= np.isfinite(pub) & np.isfinite(pred)
        same = np.sign(pub[ok]) == np.sign(pred[ok])
        r = float(np.corrcoef(pub[ok], pred[ok])[0, 1]) if ok.sum() > 2 else math.nan
        out[q] = {"n": int(ok.sum()), "same_sign": int(same.sum()), "pearson": r}
    changed = table.published_rests_ko != table.published_rests_wt
    reproduced = changed & (table.predicted_rests_ko - table.predicted_rests_wt
                            == table.published_rests_ko - table.published_rests_wt)  # fmt: skip
    out["rest_count_changes"] = {"n": int(changed.sum()), "reproduced": int(reproduced.sum())}
    return out
