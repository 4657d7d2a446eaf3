r"""Drugs and neuromodulatory states as ``Model -> Model`` transforms.

The drug table (``experiments/data/drugs.csv``, :func:`drug_table`) has one row per compound:
its class, ``mode`` (agonist, block, opener, inhibitor of breakdown or reuptake, depleter), its
molecular targets as worm genes, the model action, the potency (``ec50_uM``, ``hill``) with the
work it comes from (``potency_source``) and an ``evidence`` level (``measured``, ``literature
range``, ``assumed``) that every output using the drug carries. A dose :math:`d` (µM) acts
through the Hill fraction :math:`H = d^n / (d^n + EC_{50}^n)`. Actions on the graded network:

* ``scale_transmission:<t>[+<t>...]``: synapses from neurons releasing transmitter *t* are
  multiplied by :math:`1 + E_{max} H` (an acetylcholinesterase or reuptake inhibitor, a
  vesicular-transporter blocker, a broad antagonist);
* ``scale_release``: synapses from neurons expressing a target gene, the same factor;
* ``scale_reception:<t>``: synapses releasing *t* onto neurons expressing a target gene (a
  receptor-specific antagonist);
* ``tonic_conductance``: a conductance :math:`g_{max} H` (relative to leak) to the row's
  reversal in every neuron expressing a target gene (an agonist or a channel opener);
* ``monoamine:<amine>``: the amine applied from outside, acting through every receptor for it
  that a neuron expresses (``monoamine_receptors.csv``: each an excitatory or inhibitory
  conductance :math:`g_{max} H`);
* ``channel_block``: conductance-based models only; the targets' channels blocked by :math:`H`.

:class:`Neuromodulation` sets an internal state: a level in [0, 1] of serotonin, dopamine,
octopamine or tyramine acting on the neurons the Bentley et al. 2016 monoamine network says
receive it, through the receptors each expresses (CeNGEN) with the same signed rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._errors import DigiwormError, UnknownNameError
from ..models import ConductanceCell, ConductanceNetwork, channels_of_gene
from ..models._graded import E_EXC_MV, E_INH_MV
from ._experiments import _expressing, _released, _require_graded, _scale_columns

__all__ = [
    "AMINES",
    "EVIDENCE_LEVELS",
    "Drug",
    "Neuromodulation",
    "drug_evidence",
    "drug_table",
    "monoamine_receptors",
]

#: The evidence levels of a drug's potency, strongest first.
EVIDENCE_LEVELS = ("measured", "literature range", "assumed")
#: The amines of :class:`Neuromodulation` (and of the ``monoamine:`` drug action).
AMINES = ("serotonin", "dopamine", "octopamine", "tyramine")
#: Conductance (relative to leak) of one receptor type at the full level of a state (*assumed*).
STATE_GMAX_REL = 0.5
_DATA = Path(__file__).parent / "data"


@functools.cache
def drug_table() -> pd.DataFrame:
    """Return the curated drug table (``experiments/data/drugs.csv``) indexed by drug."""
    table = pd.read_csv(_DATA / "drugs.csv", dtype={"drug": str}).set_index("drug")
    bad = sorted(set(table["evidence"]) - set(EVIDENCE_LEVELS))
    if bad:
        raise DigiwormError(f"drugs.csv: evidence {bad} not one of {EVIDENCE_LEVELS}")
    return table


@functools.cache
def monoamine_receptors() -> pd.DataFrame:
    """Return the monoamine receptor table: receptor gene, amine, kind, sign, evidence, source."""
    return pd.read_csv(_DATA / "monoamine_receptors.csv").set_index("receptor")


def drug_evidence(drugs) -> dict[str, str]:
    """Return each drug's evidence level and where its potency comes from.

    ``drugs``: names (aliases accepted) or ``(name, dose_uM)`` pairs.
    """
    table = drug_table()
    out = {}
    for item in drugs:
        key = _drug_key(item[0] if isinstance(item, tuple | list) else item, table)
        row = table.loc[key]
        out[key] = f"{row['evidence']}: {row['potency_source']} [{row['citation']}]"
    return out


def _hill(row, dose_uM: float) -> float:
    n = float(row["hill"])
    return dose_uM**n / (dose_uM**n + float(row["ec50_uM"]) ** n)


class Drug(eqx.Module):
    r"""Apply a drug at a dose (µM), with a Hill dose–response :math:`H = d^n/(d^n + EC_{50}^n)`.

    The actions are listed in the module docstring; the row of :func:`drug_table` gives the
    drug's targets, potency and evidence.

    Parameters
    ----------
    name : str
        Drug (``aldicarb``, ``levamisole``, ``ivermectin``, …; aliases accepted).
    dose_uM : float
        Concentration, µM (>= 0, at most 100× the typical assay dose).
    atlas : digiworm.atlas.Atlas
    threshold : int
        CeNGEN threshold for target expression.
    absent : sequence of str
        Genes knocked out: a target among them no longer carries the drug's action (a
        receptor mutant resists its agonist).
    """

    name: str = eqx.field(static=True)
    dose_uM: float = eqx.field(static=True)
    effect: float = eqx.field(static=True)
    targets: tuple[str, ...] = eqx.field(static=True)
    mode: str = eqx.field(static=True)
    evidence: str = eqx.field(static=True)
    _apply: Callable = eqx.field(static=True)

    def __init__(self, name: str, dose_uM: float, atlas, threshold: int = 2, absent=()):
        table = drug_table()
        key = _drug_key(name, table)
        if not (np.isfinite(dose_uM) and dose_uM >= 0):
            raise DigiwormError(f"drug dose must be a finite concentration >= 0 uM; got {dose_uM}")
        row = table.loc[key]
        limit = 100.0 * float(row["typical_dose"])
        if dose_uM > limit:
            raise DigiwormError(
                f"{key} dose {dose_uM:g} uM is above 100x the typical assay dose "
                f"({row['typical_dose']:g} uM); valid range 0-{limit:g} uM"
            )
        h = _hill(row, dose_uM)
        self.name, self.dose_uM, self.effect = key, float(dose_uM), float(h)
        self.mode, self.evidence = str(row["mode"]), str(row["evidence"])
        names = tuple(atlas.names)
        # genes knocked out (``absent``) take the drug's action from the neurons they were in
        targets = [g for g in str(row["target_genes"]).split(";") if g and g not in absent]
        self.targets = tuple(targets)
        action = str(row["action"])
        kind, _, arg = action.partition(":")

        def expressing():
            if not targets:
                return np.zeros(len(names), dtype=bool)
            return np.any([_expressing(atlas, g, names, threshold) for g in targets], axis=0)

        if kind == "scale_transmission":
            transmitters = {_transmitter(t) for t in arg.split("+")}
            hit = np.array([bool(transmitters & rel) for rel in _released(atlas, names)])
            self._apply = _scaled_release(hit, 1.0 + float(row["emax"]) * h)
        elif kind == "scale_release":
            self._apply = _scaled_release(expressing(), 1.0 + float(row["emax"]) * h)
        elif kind == "scale_reception":
            pre = np.array([_transmitter(arg) in rel for rel in _released(atlas, names)])
            self._apply = _scaled_reception(expressing(), pre, 1.0 + float(row["emax"]) * h)
        elif kind == "tonic_conductance":
            g = np.where(expressing(), float(row["gmax_rel"]) * h, 0.0)
            self._apply = _tonic(g, float(row["reversal_mV"]))
        elif kind == "monoamine":
            receptors = _receptor_counts(atlas, arg, names, threshold, receivers=None)
            self._apply = _signed_tonic(receptors, float(row["gmax_rel"]) * h)
        elif kind == "channel_block":
            self._apply = _conductance_only(key)
        else:
            raise DigiwormError(f"drug {key} has action {action!r}, which digiworm cannot apply")

    def __call__(self, model):
        """Return ``model`` under the drug.

        On conductance-based models (:class:`ConductanceCell`, :class:`ConductanceNetwork`) a
        blocking drug whose targets include ion-channel genes with a kinetic model blocks those
        channels (every channel :func:`channels_of_gene` lists) by the fraction :math:`H` of
        its Hill curve — full block at saturation, the table's EC50 as IC50 — in every cell.
        The table's ``emax`` is not used there: for nemadipine-A it is the graded model's
        release effect (−45 %), not the channel block (an assumption on both levels).
        Openers and agonists have no channel rule and are refused there.
        """
        if isinstance(model, ConductanceCell | ConductanceNetwork):
            hit = sorted({c for g in self.targets for c in channels_of_gene(g)})
            if not hit or self.mode != "block":
                why = (
                    f"none of its targets ({', '.join(self.targets)}) is an ion channel with a "
                    "kinetic model"
                    if not hit
                    else f"it is an {self.mode}, and only channel block is modelled there"
                )
                raise DigiwormError(f"{self.name} has no action on a conductance model: {why}")
            cells = model.cells if isinstance(model, ConductanceNetwork) else model
            g = {c: v * (1.0 - self.effect) if c in hit else v for c, v in cells.g_nS.items()}
            cells = eqx.tree_at(lambda m: m.g_nS, cells, g)
            if isinstance(model, ConductanceNetwork):
                return eqx.tree_at(lambda m: m.cells, model, cells)
            return cells
        model = _require_graded(model, f"drug {self.name}")
        return self._apply(model)


class Neuromodulation(eqx.Module):
    """Set an internal neuromodulatory state: levels of serotonin, dopamine, octopamine, tyramine.

    A level in [0, 1] (0: nothing added; 1: the full level, an *assumed* scale) acts on the
    neurons that the Bentley et al. 2016 monoamine network lists as receiving the amine, through
    every receptor for it each expresses (CeNGEN at ``threshold``): each receptor adds a
    conductance ``level`` × :data:`STATE_GMAX_REL`, to 0 mV for an excitatory receptor and to
    the inhibitory reversal for an inhibitory one (:func:`monoamine_receptors`). A fed-like state
    raises serotonin; a starved-like one octopamine and tyramine.

    Parameters
    ----------
    levels : mapping of str to float
        Amine → level.
    atlas : digiworm.atlas.Atlas
    threshold : int
        CeNGEN threshold for receptor expression.
    """

    levels: tuple[tuple[str, float], ...] = eqx.field(static=True)
    _apply: tuple[Callable, ...] = eqx.field(static=True)

    def __init__(self, levels: Mapping[str, float], atlas, threshold: int = 2):
        checked = []
        applies = []
        names = tuple(atlas.names)
        for amine, level in levels.items():
            amine = str(amine).strip().lower()
            if amine not in AMINES:
                raise UnknownNameError("amine", amine, list(AMINES))
            if not (isinstance(level, int | float) and math.isfinite(level) and 0 <= level <= 1):
                raise DigiwormError(f"{amine} level must be a number in [0, 1]; got {level!r}")
            checked.append((amine, float(level)))
            if level > 0:
                receivers = atlas.extrasynaptic("bentley_monoamine", amine).sum("pre") > 0
                receivers = receivers.to_pandas().reindex(list(names)).fillna(False).to_numpy()
                counts = _receptor_counts(atlas, amine, names, threshold, receivers=receivers)
                applies.append(_signed_tonic(counts, float(level) * STATE_GMAX_REL))
        self.levels = tuple(checked)
        self._apply = tuple(applies)

    def __call__(self, model):
        """Return ``model`` in this state (graded networks only)."""
        if not self._apply:
            return model
        model = _require_graded(model, "a neuromodulatory state")
        for apply in self._apply:
            model = apply(model)
        return model


def _transmitter(name: str) -> str:
    return "GABA" if name.strip().lower() == "gaba" else name.strip().lower()


def _receptor_counts(atlas, amine: str, names, threshold: int, receivers) -> dict[int, np.ndarray]:
    """Per sign (+1, -1), how many receptors for ``amine`` each neuron expresses."""
    table = monoamine_receptors()
    rows = table[table["amine"] == amine]
    if rows.empty:
        raise UnknownNameError("amine", amine, sorted(set(table["amine"])))
    counts = {1: np.zeros(len(names)), -1: np.zeros(len(names))}
    for gene, rec in rows.iterrows():
        expressed = _expressing(atlas, gene, names, threshold)
        if receivers is not None:
            expressed = expressed & receivers
        counts[int(rec["sign"])] += expressed
    return counts


def _signed_tonic(counts: dict[int, np.ndarray], g_per_receptor: float):
    excite = _tonic(counts[1] * g_per_receptor, E_EXC_MV)
    inhibit = _tonic(counts[-1] * g_per_receptor, E_INH_MV)
    return lambda m: inhibit(excite(m))


def _drug_key(name: str, table: pd.DataFrame) -> str:
    wanted = name.strip().lower()
    if wanted in table.index:
        return wanted
    for drug, aliases in table["aliases"].fillna("").items():
        if wanted in [a.strip().lower() for a in str(aliases).split(";")]:
            return drug
    raise UnknownNameError(
        "drug", name, list(table.index), hint=f"Modelled drugs: {', '.join(table.index)}."
    )


def _scaled_release(hit: np.ndarray, factor: float):
    def apply(m):
        keep = np.where(hit, max(factor, 0.0), 1.0)
        return eqx.tree_at(lambda m: m.g_chem, m, _scale_columns(m.g_chem, keep))

    return apply


def _scaled_reception(post: np.ndarray, pre: np.ndarray, factor: float):
    scale = np.where(np.outer(post, pre), max(factor, 0.0), 1.0)  # W[post, pre]

    def apply(m):
        return eqx.tree_at(lambda m: m.g_chem, m, m.g_chem * jnp.asarray(scale, m.g_chem.dtype))

    return apply


def _tonic(g: np.ndarray, reversal_mV: float):
    def apply(m):
        add = jnp.asarray(g, dtype=m.g_tonic.dtype)
        total = m.g_tonic + add
        # two tonic conductances in parallel: conductance-weighted reversal
        safe = jnp.where(total > 0, total, 1.0)
        mixed = (m.g_tonic * m.e_tonic_mV + add * reversal_mV) / safe
        rev = jnp.where(total > 0, mixed, m.e_tonic_mV)
        return eqx.tree_at(lambda m: (m.g_tonic, m.e_tonic_mV), m, (total, rev))

    return apply


def _conductance_only(key: str):
    def apply(m):
        raise DigiwormError(
            f"{key} blocks ion channels, which a graded network does not have; use a "
            "conductance-based model (--model conductance)"
        )

    return apply
