"""In-silico experiments as pure ``Model -> Model`` transforms.

``Ablate`` removes neurons; ``Knockout`` removes what a gene does, resolved through the atlas
(its curated role and the neurons that express it); ``Mutant`` composes knockouts. Drugs and
neuromodulatory states are in :mod:`._pharmacology`. Every transform returns a new model and
leaves its input alone; transforms compose by calling one on the output of another.

Knockout rules for the graded network (``model_effect`` of the gene-role table):

* ``dcv_release`` (unc-31, egl-3, egl-21): no dense-core-vesicle release, so the whole peptide
  layer is removed. These genes act in every neuron that makes dense-core vesicles (Speese et
  al. 2007), while single-cell RNA-seq misses them in some neurons (unc-31 is detected in 228 of
  302 at CeNGEN threshold 2), so the rule is pan-neuronal rather than expression-gated;
* ``sv_release`` (unc-13, unc-18, unc-64, …): chemical synapses *from* expressing neurons;
* ``gap_junctions`` (innexins): gap junctions in which either partner expresses the gene;
* ``release:<transmitter>`` (eat-4, unc-17, unc-25, cat-2, tph-1, …): chemical synapses from
  expressing neurons that release that transmitter (a co-releasing neuron loses all its chemical
  output — the model has one synapse per pair); for monoamines only neurons with no classical
  transmitter are affected, since their synapses are the ones the model lets them make;
* ``peptide`` (single neuropeptide genes): the peptide's share of each edge of the peptide
  layer, where the sender expresses the gene and the receiver a receptor it activates
  (Beets et al. 2023 pairs), removed in proportion to the edge's peptide–receptor pairs.

Ion-channel genes act on conductance-based cells (:class:`digiworm.models.ConductanceCell`):
every library channel that needs the gene (:func:`digiworm.models.channels_of_gene`) loses its
conductance, scaled by ``residual``. A single-gene channel or a SLO complex whose Ca²⁺ partner
is knocked out is removed wherever the model has it (the recipe of Nicoletti et al.: set the
conductance to zero); a channel a gene family makes (``CHANNELS[name].genes``: IRK irk-1/2/3,
KCNL kcnl-1..4, NCA unc-77/nca-2, K2P, and the families that share a member's kinetics) loses
the knocked-out member's share of the family's CeNGEN expression in that neuron — except in a
published reference cell, where the current's named gene (the first of the family) takes all
of it.

Other roles (receptors) have no counterpart in the models and raise a clear error rather than
doing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._errors import DigiwormError, UnknownNameError
from ..models import (
    CHANNEL_GENES,
    CHANNELS,
    REFERENCE_CELLS,
    ConductanceCell,
    ConductanceNetwork,
    GradedNetwork,
    KernelModel,
    LinearModel,
    channels_of_gene,
)
from ..models._signs import classical_transmitters

__all__ = ["Ablate", "Knockout", "Mutant", "Stimulate"]

_MONOAMINES = {"dopamine", "serotonin", "tyramine", "octopamine"}


def _mask(names: tuple[str, ...], chosen: Iterable[str]) -> np.ndarray:
    chosen = set(chosen)
    return np.array([n in chosen for n in names])


def _check_neurons(model, neurons: Iterable[str]) -> None:
    """Raise :class:`UnknownNameError` (with suggestions) for a neuron the model lacks."""
    for n in neurons:
        if n not in model.names:
            raise UnknownNameError("neuron", n, model.names)


def _scale_columns(matrix, keep: np.ndarray):
    """Multiply each presynaptic column by ``keep[pre]``."""
    return matrix * jnp.asarray(keep, dtype=matrix.dtype)[None, :]


class Ablate(eqx.Module):
    """Remove neurons: every synapse, gap junction and peptide edge to or from them.

    Parameters
    ----------
    neurons : tuple of str
        Canonical ids (resolve user input with ``atlas.neuron_list``).
    """

    neurons: tuple[str, ...] = eqx.field(static=True, converter=tuple)

    def __call__(self, model):
        """Return ``model`` without the ablated neurons' connections (their output is NaN)."""
        _check_neurons(model, self.neurons)
        gone = _mask(model.names, self.neurons)
        keep = jnp.asarray(~gone)
        both = keep[:, None] & keep[None, :]
        if isinstance(model, GradedNetwork):
            return eqx.tree_at(
                lambda m: (m.g_gap, m.g_chem, m.w_pep_mV, m.g_tonic, m.alive),
                model,
                (
                    jnp.where(both, model.g_gap, 0.0),
                    jnp.where(both, model.g_chem, 0.0),
                    jnp.where(both, model.w_pep_mV, 0.0),
                    jnp.where(keep, model.g_tonic, 0.0),
                    model.alive & keep,
                ),
            )
        if isinstance(model, LinearModel):
            return eqx.tree_at(
                lambda m: (m.a_per_s, m.b_per_s),
                model,
                (jnp.where(both, model.a_per_s, 0.0), jnp.where(keep, model.b_per_s, 0.0)),
            )
        if isinstance(model, ConductanceNetwork):
            syn = keep[model.post] & keep[model.pre]
            gap = keep[model.gap_a] & keep[model.gap_b]
            pep = keep[model.pep_post] & keep[model.pep_pre]
            return eqx.tree_at(
                lambda m: (m.g_syn_nS, m.g_gap_nS, m.w_pep_pA, m.alive),
                model,
                (
                    jnp.where(syn, model.g_syn_nS, 0.0),
                    jnp.where(gap, model.g_gap_nS, 0.0),
                    jnp.where(pep, model.w_pep_pA, 0.0),
                    model.alive & keep,
                ),
            )
        if isinstance(model, KernelModel):
            alive_term = keep[model.post] & keep[model.pre]
            return eqx.tree_at(lambda m: m.factor, model, jnp.where(alive_term, model.factor, 0.0))
        raise DigiwormError(f"Ablate does not know how to act on {type(model).__name__}")


class Stimulate(eqx.Module):
    """Sustained stimulation: a constant drive (mV) into chosen neurons, as a model transform.

    A constant input :math:`u` enters the membrane equation exactly as a shift of the resting
    potential, so the transform adds ``amplitude_mV`` to ``v_rest_mV`` of those neurons (e.g.
    continuous optogenetic depolarisation; negative values hyperpolarise). Pulsed stimulation
    is a :class:`digiworm.simulate.Protocol`, not a model change.
    """

    neurons: tuple[str, ...] = eqx.field(static=True, converter=tuple)
    amplitude_mV: float = eqx.field(static=True, default=10.0)

    def __call__(self, model):
        """Return ``model`` with the constant drive added."""
        model = _require_graded(model, "sustained stimulation")
        _check_neurons(model, self.neurons)
        if not np.isfinite(self.amplitude_mV):
            raise DigiwormError(f"stimulation amplitude must be finite; got {self.amplitude_mV}")
        shift = jnp.asarray(_mask(model.names, self.neurons) * self.amplitude_mV)
        return eqx.tree_at(
            lambda m: m.v_rest_mV, model, model.v_rest_mV + shift.astype(model.v_rest_mV.dtype)
        )


def _require_graded(model, what: str) -> GradedNetwork:
    if not isinstance(model, GradedNetwork):
        raise DigiwormError(
            f"{what} needs a mechanistic model (graded network); {type(model).__name__} has no "
            "synapse identities to act on"
        )
    return model


def _expressing(atlas, gene: str, names, threshold: int) -> np.ndarray:
    expr = atlas.expression(gene, threshold).to_pandas().reindex(list(names))
    return np.nan_to_num(expr.to_numpy(), nan=0.0) > 0


def _released(atlas, names) -> list[set[str]]:
    neurons = atlas.neurons.reindex(list(names))
    out = []
    for wang, fen in zip(neurons["transmitter"], neurons["transmitter_fenyves"]):
        released = set(classical_transmitters(wang, fen))
        released |= {t.lower() for t in (wang or "").split("+") if t.lower() in _MONOAMINES}
        out.append(released)
    return out


class Knockout(eqx.Module):
    """Remove a gene's function in every neuron that expresses it (see module docstring).

    Parameters
    ----------
    gene : str
        Gene name (e.g. ``"unc-31"``); must have a modelled role in the gene-role table.
    atlas : digiworm.atlas.Atlas
        Where expression and roles are looked up.
    threshold : int
        CeNGEN threshold deciding which neurons express the gene (default 2).
    residual : float
        Fraction of function left (0 = null allele, 0.5 = partial loss).
    """

    gene: str = eqx.field(static=True)
    effect: str = eqx.field(static=True)
    expressing: tuple[bool, ...] = eqx.field(static=True)
    residual: float = eqx.field(static=True)
    _apply: Callable = eqx.field(static=True)

    def __init__(self, gene: str, atlas, threshold: int = 2, residual: float = 0.0):
        if not (0.0 <= residual < 1.0):
            raise DigiwormError(f"knockout residual must be in [0, 1); got {residual}")
        gene = atlas.gene(gene)
        roles = atlas.gene_roles
        if gene not in roles.index:
            raise DigiwormError(
                f"gene {gene!r} has no curated role, so a knockout would do nothing; genes with "
                f"a modelled role: {', '.join(sorted(_modelled(roles)))}"
            )
        effect = roles.loc[gene, "model_effect"]
        self.gene, self.effect, self.residual = gene, effect, float(residual)
        names = tuple(atlas.names)
        expressing = _expressing(atlas, gene, names, threshold)
        self.expressing = tuple(bool(x) for x in expressing)
        self._apply = _knockout_rule(gene, effect, atlas, names, expressing, threshold)

    def __call__(self, model):
        """Return ``model`` with the gene's function removed (scaled by ``residual``)."""
        if self.effect == "channel":
            if isinstance(model, ConductanceNetwork):
                cells = self._apply(model.cells, self.residual)
                return eqx.tree_at(lambda m: m.cells, model, cells)
            if not isinstance(model, ConductanceCell):
                raise DigiwormError(
                    f"{self.gene} is an ion channel: knock it out of a conductance-based model "
                    f"(ConductanceCell or ConductanceNetwork), not a {type(model).__name__}"
                )
        elif isinstance(model, ConductanceNetwork) and self.effect == "dcv_release":
            return eqx.tree_at(lambda m: m.w_pep_pA, model, model.w_pep_pA * self.residual)
        else:
            model = _require_graded(model, f"knockout of {self.gene}")
        return self._apply(model, self.residual)


def _modelled(roles: pd.DataFrame) -> list[str]:
    ok = roles["model_effect"].map(_rule_kind).notna()
    return list(roles.index[ok])


def _rule_kind(effect: str) -> str | None:
    if effect in ("dcv_release", "sv_release", "gap_junctions", "peptide", "channel"):
        return effect
    if effect.startswith("release:"):
        return "release"
    return None


def _channel_rule(gene, atlas, threshold):
    """Knockout of an ion-channel gene on a ConductanceCell (see the module docstring)."""
    hit = channels_of_gene(gene)
    if not hit:
        raise DigiwormError(
            f"{gene} is an ion channel with no kinetic model in the channel library; channel "
            f"genes with a model: {', '.join(CHANNEL_GENES)}"
        )
    profiled = {str(g) for g in atlas.dataset("cengen").gene.values}

    def share(channel: str, cell_name: str, g: float) -> float:
        ch = CHANNELS[channel]
        if gene in ch.requires or len(ch.genes) == 1:
            return 1.0
        published = cell_name in REFERENCE_CELLS
        if published and gene == ch.genes[0]:
            return 1.0  # the paper attributes the current to this gene
        neuron = REFERENCE_CELLS[cell_name].neuron if published else cell_name
        if neuron not in atlas.names:
            raise UnknownNameError(
                "neuron",
                neuron,
                atlas.names,
                hint=f"(cell {cell_name!r}: {gene} is one of a family, split by expression)",
            )
        tpm = {
            g: float(np.nan_to_num(atlas.expression(g, threshold).sel(neuron=neuron).item()))
            for g in ch.genes
            if g in profiled
        }
        total = sum(tpm.values())
        if total > 0:
            return tpm.get(gene, 0.0) / total
        if g > 0 and published:
            raise DigiwormError(
                f"{cell_name} carries {channel} but CeNGEN detects none of {', '.join(ch.genes)} "
                f"in {neuron}: cannot tell {gene}'s share of it"
            )
        return 0.0  # an expression-built cell has no conductance there anyway

    def apply(m: ConductanceCell, r: float):
        g = dict(m.g_nS)
        for c in hit:
            if c in g:
                lost = np.array([share(c, n, float(gk)) for n, gk in zip(m.names, g[c])])
                g[c] = g[c] * jnp.asarray(1.0 - (1.0 - r) * lost, dtype=g[c].dtype)
        return eqx.tree_at(lambda m: m.g_nS, m, g)

    return apply


def _knockout_rule(gene, effect, atlas, names, expressing, threshold):
    if effect == "channel":
        return _channel_rule(gene, atlas, threshold)
    kind = _rule_kind(effect)
    if kind is None:
        raise DigiwormError(
            f"gene {gene!r} acts as {effect!r}, which the graded network does not model (ion "
            "channels need the conductance-based level); no silent no-op"
        )
    if not expressing.any():
        raise DigiwormError(f"no neuron expresses {gene!r} at CeNGEN threshold {threshold}")

    if kind == "dcv_release":

        def apply(m, r):
            return eqx.tree_at(lambda m: m.w_pep_mV, m, m.w_pep_mV * r)

    elif kind == "sv_release":

        def apply(m, r):
            keep = np.where(expressing, r, 1.0)
            return eqx.tree_at(lambda m: m.g_chem, m, _scale_columns(m.g_chem, keep))

    elif kind == "gap_junctions":
        pair = expressing[:, None] | expressing[None, :]

        def apply(m, r):
            factor = jnp.asarray(np.where(pair, r, 1.0), dtype=m.g_gap.dtype)
            return eqx.tree_at(lambda m: m.g_gap, m, m.g_gap * factor)

    elif kind == "release":
        transmitter = effect.split(":", 1)[1].lower()
        transmitter = "GABA" if transmitter == "gaba" else transmitter
        released = _released(atlas, names)
        if transmitter in _MONOAMINES:
            hit = [
                e and transmitter in rel and not (rel - _MONOAMINES)
                for e, rel in zip(expressing, released)
            ]
        else:
            hit = [e and transmitter in rel for e, rel in zip(expressing, released)]
        hit = np.array(hit)
        if not hit.any():
            raise DigiwormError(
                f"{gene} removes {transmitter} release, but no {gene}-expressing neuron makes "
                "chemical synapses with that transmitter in the model"
            )

        def apply(m, r):
            keep = np.where(hit, r, 1.0)
            return eqx.tree_at(lambda m: m.g_chem, m, _scale_columns(m.g_chem, keep))

    else:  # single neuropeptide gene
        shares = {}

        def apply(m, r):
            if m.peptide_source is None:
                raise DigiwormError(f"knockout of {gene}: this model has no peptide layer")
            if m.peptide_source not in shares:
                shares[m.peptide_source] = _peptide_share(
                    atlas, gene, names, expressing, threshold, m.peptide_source
                )
            share = shares[m.peptide_source]
            factor = jnp.asarray(1.0 - (1.0 - r) * share, dtype=m.w_pep_mV.dtype)
            return eqx.tree_at(lambda m: m.w_pep_mV, m, m.w_pep_mV * factor)

    return apply


def _peptide_share(atlas, gene, names, expressing, threshold, source) -> np.ndarray:
    """Fraction of each peptide-layer edge carried by ``gene``'s peptides (0..1, [post, pre])."""
    from ..atlas import gene_of

    genes = {str(g) for g in atlas.dataset("cengen").gene.values}
    table = atlas.peptide_gpcr()
    table = table.assign(
        peptide_gene=[gene_of(p, genes) for p in table["peptide"]],
        receptor_gene=[gene_of(r, genes) for r in table["gpcr"]],
    )
    receptors = sorted(set(table.loc[table["peptide_gene"] == gene, "receptor_gene"].dropna()))
    if not receptors:
        raise DigiwormError(f"{gene} has no receptor in the peptide-GPCR table; nothing to remove")
    n_receptors = sum(_expressing(atlas, g, names, threshold).astype(float) for g in receptors)
    total = np.nan_to_num(atlas.extrasynaptic(source).to_numpy(), nan=0.0)
    pairs = n_receptors[:, None] * expressing[None, :].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, np.minimum(pairs / total, 1.0), 0.0)
    return share


class Mutant(eqx.Module):
    """Several knockouts at once (a multiple mutant), applied in order."""

    knockouts: tuple[Knockout, ...]

    def __init__(self, genes: Iterable[str], atlas, threshold: int = 2):
        self.knockouts = tuple(Knockout(g, atlas, threshold) for g in genes)

    def __call__(self, model):
        """Return ``model`` with every knockout applied."""
        for ko in self.knockouts:
            model = ko(model)
        return model
