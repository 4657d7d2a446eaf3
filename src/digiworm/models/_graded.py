r"""Connectome-constrained graded (non-spiking) network with a neuropeptide layer.

Most *C. elegans* neurons signal with graded potentials (Goodman et al. 1998). The model
follows Wicks et al. 1996 and Kunert et al. 2014: per neuron *i*, membrane potential
:math:`V_i` (mV), presynaptic activation :math:`s_i` and peptide release :math:`p_i`,

.. math::

    \tau_i \dot V_i &= (V^{rest}_i - V_i)
        + \sum_j g^{gap}_{ij} (V_j - V_i)
        + \sum_j g^{chem}_{ij} s_j (E_{ij} - V_i)
        + \sum_j w^{pep}_{ij} p_j
        + g^{tonic}_i (E^{tonic}_i - V_i) + u_i(t),

    \dot s_i &= a_r \phi(V_i) (1 - s_i) - a_d s_i, \qquad
    \tau_{pep} \dot p_i = \phi(V_i) - p_i, \qquad
    \phi(V) = 1 / (1 + e^{-\beta (V - V^{th})}).

Conductances are relative to each neuron's leak conductance (dimensionless), so currents and
the optogenetic input :math:`u` are in mV (current × leak resistance). Gap junctions are
symmetric (:math:`g^{gap}_{ij} = g^{gap}_{ji}`) and conserve charge between the two
neurons. Matrices are ``[post, pre]``. Activity for the calcium indicator is
:math:`a_i = \phi(V_i)`.

Default constants (Kunert, Shlizerman & Kutz 2014, PLoS Comput Biol 10:e1003484): membrane
time constant 0.1 s (C = 1 pF, leak 10 pS), rest −35 mV, excitatory reversal 0 mV, inhibitory
−48 mV, :math:`a_r` = 1 s⁻¹, :math:`a_d` = 5 s⁻¹, :math:`\beta` = 0.125 mV⁻¹. The activation
midpoint sits 20 mV above rest (φ = 0.076 at rest), so neurons release little until
depolarised (digiworm's choice; Kunert et al. place it at each neuron's network equilibrium).
The per-synapse conductance scales and the peptide gain are *uncalibrated defaults* meant to
be identified from data (``digiworm fit``), chosen small enough that the network is stable
and not stiff
(Kunert's 100 pS per synapse is 10× the leak and makes the system stiff).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from .._errors import InvalidParameterError
from ._base import AbstractModel
from ._signs import classical_transmitters, synapse_signs

__all__ = ["GradedNetwork", "GradedState", "connectome_arrays", "graded_from_atlas"]

E_EXC_MV = 0.0
E_INH_MV = -48.0


class GradedState(eqx.Module):
    """State of a :class:`GradedNetwork`: potential (mV), synaptic and peptide activation."""

    v_mV: Float[Array, " n"]
    s: Float[Array, " n"]
    p: Float[Array, " n"]


class GradedNetwork(AbstractModel):
    """Graded whole-brain network (see module docstring for the equations and units).

    Parameters
    ----------
    names : tuple of str
        Neuron ids, length n.
    g_gap : array (n, n)
        Gap-junction conductance relative to leak, symmetric, zero diagonal.
    g_chem : array (n, n)
        Chemical synapse conductance relative to leak, ``[post, pre]``, >= 0.
    e_chem_mV : array (n, n)
        Reversal potential of each synapse, mV.
    w_pep_mV : array (n, n)
        Signed peptidergic drive at full release, mV, ``[post, pre]``.
    tau_m_s, v_rest_mV, v_th_mV : array (n,)
        Membrane time constant (s), resting potential (mV), activation midpoint (mV).
    tau_pep_s, a_r_per_s, a_d_per_s, beta_per_mV : float
        Peptide time constant (s), synaptic rise and decay rates (1/s), activation slope.
    g_tonic, e_tonic_mV : array (n,)
        Tonic conductance (relative to leak) and its reversal (mV), e.g. from a drug.
    alive : bool array (n,)
        False for ablated neurons (their output is reported as NaN).
    connectome_source, peptide_source : str
        Atlas datasets the synapses and the peptide layer were built from (provenance).
    dff_per_activity : float, optional
        An identified ΔF/F readout: ΔF/F per unit change of activity, as a network identified
        from its small-signal response has (:func:`digiworm.fit.graded_from_linear`).
        :func:`digiworm.simulate.simulate` then reads it out through
        :class:`~digiworm.models.LinearIndicator` with this gain instead of GCaMP6s. None: no
        identified readout (GCaMP6s with its assumed calcium scale).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    g_gap: Float[Array, "n n"]
    g_chem: Float[Array, "n n"]
    e_chem_mV: Float[Array, "n n"]
    w_pep_mV: Float[Array, "n n"]
    tau_m_s: Float[Array, " n"]
    v_rest_mV: Float[Array, " n"]
    v_th_mV: Float[Array, " n"]
    tau_pep_s: Float[Array, ""]
    a_r_per_s: Float[Array, ""]
    a_d_per_s: Float[Array, ""]
    beta_per_mV: Float[Array, ""]
    g_tonic: Float[Array, " n"]
    e_tonic_mV: Float[Array, " n"]
    alive: Bool[Array, " n"]
    connectome_source: str = eqx.field(static=True, default="")
    peptide_source: str | None = eqx.field(static=True, default=None)
    dff_per_activity: float | None = eqx.field(static=True, default=None)
    output: ClassVar[str] = "activity"

    def __check_init__(self):
        n = len(self.names)
        gain = self.dff_per_activity
        if gain is not None and not (np.isfinite(gain) and gain > 0):
            raise InvalidParameterError(f"dff_per_activity must be finite and > 0; got {gain}")
        gap = self.g_gap
        if not isinstance(gap, jax.core.Tracer) and gap.ndim >= 2:
            gap = np.asarray(gap)
            if not np.allclose(gap, np.swapaxes(gap, -1, -2), rtol=1e-6, atol=0.0):
                raise InvalidParameterError(
                    "g_gap must be symmetric: a gap junction conducts both ways"
                )
        for field in ("g_gap", "g_chem", "e_chem_mV", "w_pep_mV"):
            shape = getattr(self, field).shape
            if shape[-2:] != (n, n):
                raise InvalidParameterError(f"{field} must be (n, n) = ({n}, {n}); got {shape}")
        for field in ("tau_m_s", "v_rest_mV", "v_th_mV", "g_tonic", "e_tonic_mV", "alive"):
            shape = getattr(self, field).shape
            if shape[-1:] != (n,):
                raise InvalidParameterError(
                    f"{field} must have {n} entries (one per neuron); got {shape}"
                )

    # -- the model ---------------------------------------------------------------------------
    def activation(self, v_mV: Float[Array, " n"]) -> Float[Array, " n"]:
        r"""Return :math:`\phi(V)`, the graded release / activity in [0, 1]."""
        return jax.nn.sigmoid(self.beta_per_mV * (v_mV - self.v_th_mV))

    def currents(self, y: GradedState) -> dict[str, Float[Array, " n"]]:
        """Return the input currents (mV) into every neuron: gap, chemical, peptide, tonic."""
        v = y.v_mV
        gap = self.g_gap @ v - jnp.sum(self.g_gap, axis=-1) * v
        chem = (self.g_chem * self.e_chem_mV) @ y.s - (self.g_chem @ y.s) * v
        pep = self.w_pep_mV @ y.p
        tonic = self.g_tonic * (self.e_tonic_mV - v)
        return {"gap": gap, "chemical": chem, "peptide": pep, "tonic": tonic}

    def vector_field(self, t, y: GradedState, u) -> GradedState:
        """Return ``dy/dt`` for state ``y`` with optogenetic input ``u`` (mV per neuron)."""
        return graded_vector_field(self, y, u)

    def init_state(self) -> GradedState:
        """Return the uncoupled rest (V = V_rest, s and p at their equilibria)."""
        return graded_init_state(self)

    def readout(self, y: GradedState) -> Float[Array, " n"]:
        r"""Return activity :math:`\phi(V)`; NaN for ablated neurons."""
        return jnp.where(self.alive, self.activation(y.v_mV), jnp.nan)

    def max_rate(self):
        r"""Gershgorin bound on the fastest rate (1/s) of the linearised membrane equation.

        Synaptic activation is bounded by its ceiling :math:`a_r/(a_r + a_d)` (reached at
        :math:`\phi = 1` from rest), so chemical conductance counts at most that fraction.
        The peptide layer couples the membrane to the slow release states :math:`p`; their
        loop is bounded by the spectral radius of the 2 × 2 matrix of block norms (Feingold
        & Varga 1962): membrane :math:`m`, membrane ← release
        :math:`b = \max_i \sum_j |w^{pep}_{ij}| / \tau_i`, release ← membrane
        :math:`c = (\beta / 4) / \tau_{pep}` (the steepest activation slope) and release
        decay :math:`d = 1/\tau_{pep}`: :math:`(m + d + \sqrt{(m - d)^2 + 4bc}) / 2`.
        """
        rows = (jnp.sum(self.g_gap, -1), jnp.sum(self.g_chem, -1),
                jnp.sum(jnp.abs(self.w_pep_mV), -1))  # fmt: skip
        return graded_rate_bound(self, *rows)


def graded_rate_bound(model, gap_rows, chem_rows, pep_abs_rows):
    """Return :meth:`GradedNetwork.max_rate` from each neuron's summed couplings.

    ``gap_rows``, ``chem_rows`` and ``pep_abs_rows`` are the row sums of the gap, chemical and
    absolute peptide couplings into each neuron, however the network holds them (dense or
    edge-list).
    """
    s_max = model.a_r_per_s / (model.a_r_per_s + model.a_d_per_s)
    g_in = 1.0 + 2.0 * gap_rows + s_max * chem_rows + model.g_tonic
    membrane = jnp.max(g_in / model.tau_m_s)
    b = jnp.max(pep_abs_rows / model.tau_m_s)
    c = model.beta_per_mV / 4.0 / model.tau_pep_s
    d = 1.0 / model.tau_pep_s
    loop = 0.5 * (membrane + d + jnp.sqrt((membrane - d) ** 2 + 4.0 * b * c))
    return jnp.maximum(loop, model.a_r_per_s + model.a_d_per_s)


def graded_vector_field(model, y: GradedState, u) -> GradedState:
    """Return the graded equations' ``dy/dt`` (dense or edge-list coupling alike).

    ``model`` has ``currents`` and ``activation`` and the per-neuron fields of
    :class:`GradedNetwork`.
    """
    i = model.currents(y)
    dv = model.v_rest_mV - y.v_mV + i["gap"] + i["chemical"] + i["peptide"] + i["tonic"] + u
    phi = model.activation(y.v_mV)
    ds = model.a_r_per_s * phi * (1.0 - y.s) - model.a_d_per_s * y.s
    dp = (phi - y.p) / model.tau_pep_s
    return GradedState(dv / model.tau_m_s, ds, dp)


def graded_init_state(model) -> GradedState:
    """Return a graded model's uncoupled rest (V = V_rest, s and p at their equilibria)."""
    phi = model.activation(model.v_rest_mV)
    s = model.a_r_per_s * phi / (model.a_r_per_s * phi + model.a_d_per_s)
    return GradedState(model.v_rest_mV, s, phi)


def _receptor_evidence(atlas, names, threshold: int) -> dict[str, np.ndarray]:
    """Excitatory-minus-inhibitory receptor genes expressed by each neuron, per transmitter."""
    polarity = atlas.receptor_polarity()
    expr = atlas.expression_matrix(threshold).to_pandas()  # [cengen_class, gene]
    classes = atlas.neurons.loc[list(names), "cengen_class"]
    evidence = {}
    for transmitter, rows in polarity.groupby("transmitter"):
        genes = [g for g in rows["gene"] if g in expr.columns]
        signs = rows.set_index("gene").loc[genes, "polarity"].to_numpy(dtype=float)
        per_class = (expr[genes].to_numpy() > 0).astype(float) @ signs
        lookup = dict(zip(expr.index, per_class))
        evidence[transmitter] = np.array([lookup.get(c, 0.0) if c else 0.0 for c in classes])
    return evidence


def connectome_arrays(atlas, connectome: str = "cook2019", threshold: int = 2):
    """Return ``(chem, gap, sign)`` ``[post, pre]`` arrays on the atlas's neuron order.

    Counts of neurons a reconstruction does not cover are 0; ``gap`` is symmetric with a zero
    diagonal; ``sign`` is ±1 from the receptor-expression rule (:mod:`._signs`).
    """
    names = tuple(atlas.names)
    chem = np.nan_to_num(atlas.connectome(connectome, "chemical").to_numpy(), nan=0.0)
    gap = np.nan_to_num(atlas.connectome(connectome, "gap").to_numpy(), nan=0.0)
    np.fill_diagonal(gap, 0.0)
    gap = 0.5 * (gap + gap.T)  # sources are symmetric; guard against rounding
    neurons = atlas.neurons.loc[list(names)]
    transmitters = [
        classical_transmitters(w, f)
        for w, f in zip(neurons["transmitter"], neurons["transmitter_fenyves"])
    ]
    signs = synapse_signs(transmitters, _receptor_evidence(atlas, names, threshold))
    return chem, gap, signs


def graded_from_atlas(
    atlas,
    connectome: str = "cook2019",
    peptides: str | None = "ripoll_sanchez_short",
    *,
    gap_per_junction: float = 0.001,
    chem_per_synapse: float = 0.02,
    pep_per_pair_mV: float = 0.01,
    tau_m_s: float = 0.1,
    tau_pep_s: float = 2.0,
    threshold: int = 2,
    dtype=jnp.float32,
) -> GradedNetwork:
    """Build a :class:`GradedNetwork` on all 302 neurons from the atlas.

    Parameters
    ----------
    atlas : digiworm.atlas.Atlas
    connectome : str
        Chemical and gap-junction source (``cook2019`` or any Witvliet stage, …). Neurons a
        reconstruction does not cover get no synapses (NaN counts are read as 0).
    peptides : str or None
        Extrasynaptic network for the peptide layer (``ripoll_sanchez_short|mid|long``), or
        None for no peptide layer.
    gap_per_junction, chem_per_synapse : float
        Conductance per gap junction / synapse (count), relative to leak.
    pep_per_pair_mV : float
        Peptide drive per peptide–receptor pair at full release, mV (positive: excitatory).
    tau_m_s, tau_pep_s : float
        Membrane and peptide time constants, s.
    threshold : int
        CeNGEN threshold for the receptor-expression sign rule (see :mod:`._signs`).
    dtype
        Floating dtype of the parameters (float32 for bulk simulation).
    """
    from ..atlas import check_threshold

    threshold = check_threshold(threshold)
    names = tuple(atlas.names)
    n = len(names)
    chem, gap, signs = connectome_arrays(atlas, connectome, threshold)
    e_chem = np.where(signs > 0, E_EXC_MV, E_INH_MV)
    if peptides is None:
        pep = np.zeros((n, n))
    else:
        pep = np.nan_to_num(atlas.extrasynaptic(peptides).to_numpy(), nan=0.0)

    def arr(x):
        return jnp.asarray(x, dtype=dtype)

    return GradedNetwork(
        names=names,
        g_gap=arr(gap_per_junction * gap),
        g_chem=arr(chem_per_synapse * chem),
        e_chem_mV=arr(e_chem),
        w_pep_mV=arr(pep_per_pair_mV * pep),
        tau_m_s=arr(np.full(n, tau_m_s)),
        v_rest_mV=arr(np.full(n, -35.0)),
        v_th_mV=arr(np.full(n, -15.0)),
        tau_pep_s=arr(tau_pep_s),
        a_r_per_s=arr(1.0),
        a_d_per_s=arr(5.0),
        beta_per_mV=arr(0.125),
        g_tonic=arr(np.zeros(n)),
        e_tonic_mV=arr(np.zeros(n)),
        alive=jnp.ones(n, dtype=bool),
        connectome_source=connectome,
        peptide_source=peptides,
    )
