r"""The whole brain at the conductance level: expression-built cells, coupled.

Each of the 302 neurons is its :func:`cells_from_expression` conductance model (channels from
CeNGEN, :mod:`._expression_cells`); they are coupled by the same three layers as the graded
network (:mod:`._graded`), now as currents in pA:

.. math::

    I_i = \sum_j g_{syn} N_{ij} s_j (E_{ij} - V_i) + \sum_j g_{gap} G_{ij} (V_j - V_i)
        + \sum_j w_{pep} P_{ij} p_j,

    \dot s_j = a_r \phi_j (1 - s_j) - a_d s_j, \qquad \tau_{pep} \dot p_j = \phi_j - p_j, \qquad
    \phi_j = 1 / (1 + e^{-\beta (V_j - V^{th}_j)}),

with :math:`N`, :math:`G` the Cook et al. 2019 synapse and gap-junction counts, :math:`E_{ij}`
0 mV or −70 mV by the graded network's transmitter/receptor sign rule, :math:`P` the number of
peptide–receptor pairs of the extrasynaptic network, and each neuron's release threshold
:math:`V^{th}` a fixed offset above its own (lowest) resting potential, since the cells rest at
different potentials. Activity for the calcium indicator is :math:`\phi(V)`.

Coupling strengths are uncalibrated defaults (like the graded network's), chosen so that a
typical neuron's synaptic input conductance stays below its leak; they are the parameters to
identify. Time stepping: :meth:`ConductanceCell.step` with the coupling taken implicitly in each
neuron's own potential (the other neurons' potentials from the start of the step), synaptic and
peptide activations by their exact exponential update at frozen potentials.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._errors import DigiwormError, InvalidParameterError
from ._base import AbstractModel
from ._conductance import CellState, ConductanceCell, resting_potentials
from ._edges import exponential_stepper, gap_coupling, into

__all__ = ["ConductanceNetwork", "ConductanceNetworkState", "conductance_network_from_atlas"]


class ConductanceNetworkState(eqx.Module):
    """State: the cells' (V, Ca²⁺, gates), synaptic activation ``s`` and peptide release ``p``."""

    cell: CellState
    s: Float[Array, " n"]
    p: Float[Array, " n"]

    @property
    def v_mV(self):
        """Membrane potentials, mV."""
        return self.cell.v_mV

    @property
    def ca_mM(self):
        """Intracellular Ca²⁺, mM."""
        return self.cell.ca_mM


class ConductanceNetwork(AbstractModel):
    """Conductance-based whole-brain network (see the module docstring).

    Parameters
    ----------
    names : tuple of str
        Neuron ids, those of ``cells``.
    cells : ConductanceCell
        One cell per neuron, in ``names`` order.
    pre, post : int array (e,)
        Chemical edges; ``g_syn_nS`` (e,) their conductance at full activation, ``e_syn_mV``
        (e,) their reversal.
    gap_a, gap_b : int array (j,)
        Gap-junction pairs (each once); ``g_gap_nS`` (j,) their conductance.
    pep_pre, pep_post : int array (k,)
        Peptide edges; ``w_pep_pA`` (k,) the current at full release (the atlas builder makes
        every edge depolarising: the peptide connectome has no signs).
    v_th_mV : array (n,)
        Release threshold per neuron.
    beta_per_mV, a_r_per_s, a_d_per_s, tau_pep_s : float
        Release slope, synaptic rise and decay rates, peptide time constant.
    alive : bool array (n,)
        False for ablated neurons (reported as NaN).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    cells: ConductanceCell
    pre: Int[Array, " e"]
    post: Int[Array, " e"]
    g_syn_nS: Float[Array, " e"]
    e_syn_mV: Float[Array, " e"]
    gap_a: Int[Array, " j"]
    gap_b: Int[Array, " j"]
    g_gap_nS: Float[Array, " j"]
    pep_pre: Int[Array, " k"]
    pep_post: Int[Array, " k"]
    w_pep_pA: Float[Array, " k"]
    v_th_mV: Float[Array, " n"]
    alive: Bool[Array, " n"]
    beta_per_mV: float = eqx.field(static=True, default=0.125)
    a_r_per_s: float = eqx.field(static=True, default=1.0)
    a_d_per_s: float = eqx.field(static=True, default=5.0)
    tau_pep_s: float = eqx.field(static=True, default=2.0)
    source: str = eqx.field(static=True, default="")
    output: ClassVar[str] = "activity"
    methods: ClassVar[tuple[str, ...]] = ("exponential",)

    def __check_init__(self):
        if tuple(self.names) != tuple(self.cells.names):
            raise InvalidParameterError("names must be the cells' names, in the same order")

    def activation(self, v):
        """Return the release / activity phi(V) of each neuron, in [0, 1]."""
        return jax.nn.sigmoid(self.beta_per_mV * (v - self.v_th_mV))

    def coupling(self, y: ConductanceNetworkState):
        """Return ``(g_in, i_in)``: coupling conductance (nS) and its current at 0 mV (pA)."""
        n = self.n_neurons
        g_syn = self.g_syn_nS * y.s[self.pre]
        g_chem = into(g_syn, self.post, n)
        i_chem = into(g_syn * self.e_syn_mV, self.post, n)
        g_gap, i_gap = gap_coupling(self.g_gap_nS, self.gap_a, self.gap_b, y.cell.v_mV, n)
        i_pep = into(self.w_pep_pA * y.p[self.pep_pre], self.pep_post, n)
        return g_chem + g_gap, i_chem + i_gap + i_pep

    def init_state(self) -> ConductanceNetworkState:
        """Return every cell at its steady state at −70 mV, synapses and peptides at rest."""
        cell = self.cells.steady_state(-70.0)
        phi = self.activation(cell.v_mV)
        s = self.a_r_per_s * phi / (self.a_r_per_s * phi + self.a_d_per_s)
        return ConductanceNetworkState(cell, s, phi)

    def vector_field(self, t, y: ConductanceNetworkState, u) -> ConductanceNetworkState:
        """Return ``dy/dt`` per second under injected current ``u`` (pA per neuron)."""
        g_in, i_in = self.coupling(y)
        v = y.cell.v_mV
        d_cell = self.cells.vector_field(0.0, y.cell, u + i_in - g_in * v)
        phi = self.activation(v)
        ds = self.a_r_per_s * phi * (1.0 - y.s) - self.a_d_per_s * y.s
        dp = (phi - y.p) / self.tau_pep_s
        d_cell = jax.tree_util.tree_map(lambda d: 1e3 * d, d_cell)  # per ms -> per s
        return ConductanceNetworkState(d_cell, ds, dp)

    def step(self, y: ConductanceNetworkState, u, dt_ms) -> ConductanceNetworkState:
        """Advance ``y`` by ``dt_ms`` (see the module docstring)."""
        g_in, i_in = self.coupling(y)
        cell = self.cells.step(y.cell, u, dt_ms, g_in=g_in, i_in=i_in)
        phi = self.activation(y.cell.v_mV)
        dt_s = 1e-3 * dt_ms
        rate = self.a_r_per_s * phi + self.a_d_per_s
        s_inf = self.a_r_per_s * phi / rate
        s = s_inf + (y.s - s_inf) * jnp.exp(-dt_s * rate)
        p = phi + (y.p - phi) * jnp.exp(-dt_s / self.tau_pep_s)
        return ConductanceNetworkState(cell, s, p)

    def stepper(self, dt, method: str = "exponential"):
        """Return ``step(t, y, u)`` advancing ``dt`` seconds (exponential Euler only)."""
        return exponential_stepper(self, dt, method)

    def readout(self, y: ConductanceNetworkState):
        """Return activity phi(V); NaN for ablated neurons."""
        return jnp.where(self.alive, self.activation(y.cell.v_mV), jnp.nan)


def conductance_network_from_atlas(
    atlas,
    connectome: str = "cook2019",
    peptides: str | None = "ripoll_sanchez_short",
    *,
    mapping=None,
    syn_nS: float = 0.01,
    gap_nS: float = 0.01,
    pep_pA: float = 0.05,
    threshold_above_rest_mV: float = 15.0,
    dtype=None,
) -> ConductanceNetwork:
    """Build the 302-neuron conductance network from the atlas (see the module docstring).

    ``syn_nS`` is the conductance per synapse at full activation, ``gap_nS`` per gap junction,
    ``pep_pA`` the current per peptide–receptor pair at full release; all uncalibrated defaults.
    """
    from ._expression_cells import cells_from_expression
    from ._graded import connectome_arrays

    names = list(atlas.names)
    cells = cells_from_expression(atlas, names, mapping, dtype=dtype)
    chem, gap, signs = connectome_arrays(atlas, connectome)
    post, pre = np.nonzero(chem > 0)
    e_syn = np.where(signs[post, pre] > 0, 0.0, -70.0)
    a, b = np.nonzero(np.triu(gap, 1))
    if peptides is None:
        pep = np.zeros((len(names), len(names)))
    else:
        pep = np.nan_to_num(atlas.extrasynaptic(peptides).to_numpy(), nan=0.0)
    pep_post, pep_pre = np.nonzero(pep)
    roots = resting_potentials(cells)
    no_rest = [n for n, r in zip(names, roots) if len(r) == 0]
    if no_rest:
        raise DigiwormError(f"no stable rest for {no_rest[:5]}: cannot place release thresholds")
    rests = np.array([r[0] for r in roots])

    def arr(x):
        return jnp.asarray(x, dtype=cells.c_pF.dtype)

    def idx(x):
        return jnp.asarray(x, dtype=jnp.int32)

    return ConductanceNetwork(
        names=tuple(names),
        cells=cells,
        pre=idx(pre),
        post=idx(post),
        g_syn_nS=arr(syn_nS * chem[post, pre]),
        e_syn_mV=arr(e_syn),
        gap_a=idx(a),
        gap_b=idx(b),
        g_gap_nS=arr(gap_nS * gap[a, b]),
        pep_pre=idx(pep_pre),
        pep_post=idx(pep_post),
        w_pep_pA=arr(pep_pA * pep[pep_post, pep_pre]),
        v_th_mV=arr(rests + threshold_above_rest_mV),
        alive=jnp.ones(len(names), dtype=bool),
        source=f"{cells.source}; {connectome} synapses and gap junctions; peptides {peptides}",
    )
