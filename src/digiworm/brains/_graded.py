"""The graded network on edge lists: the worm's equations at any size.

:class:`SparseGradedNetwork` is :class:`~digiworm.models.GradedNetwork`'s model (same
equations, units and defaults; its module docstring has them) with every coupling held as
an edge list and summed with ``segment_sum``, so memory and work grow with the number of
connections rather than N². Dense stays the worm's default (at 302 neurons a matrix product is
fastest); :func:`sparse_from_dense` converts one into the other (equal to rounding, tested) and
:func:`graded_from_connectome` builds one from any :class:`~digiworm.brains.Connectome` with
the graded network's uncalibrated defaults.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError
from ..models._base import AbstractModel
from ..models._graded import (
    E_EXC_MV,
    E_INH_MV,
    GradedState,
    graded_init_state,
    graded_rate_bound,
    graded_vector_field,
)

__all__ = [
    "DENSE_MAX_NEURONS",
    "SparseGradedNetwork",
    "graded_from_connectome",
    "sparse_from_dense",
]

#: Up to this many neurons ``layout="auto"`` builds the dense network. On this project's CPU
#: (benchmarks/brain_scale.py, fly-like graphs of ~109 connections per neuron) dense was faster
#: at 500 neurons and sparse 9 % faster at 1,000 and 3.6x at 3,000.
DENSE_MAX_NEURONS = 800


class SparseGradedNetwork(AbstractModel):
    """Graded network with edge-list coupling (see the module).

    Chemical synapses ``(chem_pre, chem_post, g_chem, e_chem_mV)``, gap junctions
    ``(gap_a, gap_b, g_gap)`` (each pair once; they conduct both ways) and peptide pairs
    ``(pep_pre, pep_post, w_pep_mV)``; the per-neuron fields are as in ``GradedNetwork``.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    chem_pre: jax.Array
    chem_post: jax.Array
    g_chem: jax.Array
    e_chem_mV: jax.Array
    gap_a: jax.Array
    gap_b: jax.Array
    g_gap: jax.Array
    pep_pre: jax.Array
    pep_post: jax.Array
    w_pep_mV: jax.Array
    tau_m_s: jax.Array
    v_rest_mV: jax.Array
    v_th_mV: jax.Array
    tau_pep_s: jax.Array
    a_r_per_s: jax.Array
    a_d_per_s: jax.Array
    beta_per_mV: jax.Array
    g_tonic: jax.Array
    e_tonic_mV: jax.Array
    alive: jax.Array
    connectome_source: str = eqx.field(static=True, default="")
    output: ClassVar[str] = "activity"

    def activation(self, v_mV):
        return jax.nn.sigmoid(self.beta_per_mV * (v_mV - self.v_th_mV))

    def currents(self, y: GradedState) -> dict:
        """Return the input currents (mV) into every neuron: gap, chemical, peptide, tonic."""
        n = len(self.names)
        v, s = y.v_mV, y.s

        def into(values, index):
            return jax.ops.segment_sum(values, index, num_segments=n)

        a, b, g = self.gap_a, self.gap_b, self.g_gap
        gap = into(g * (v[b] - v[a]), a) + into(g * (v[a] - v[b]), b)
        g_s = self.g_chem * s[self.chem_pre]
        chem = into(g_s * self.e_chem_mV, self.chem_post) - into(g_s, self.chem_post) * v
        pep = into(self.w_pep_mV * y.p[self.pep_pre], self.pep_post)
        tonic = self.g_tonic * (self.e_tonic_mV - v)
        return {"gap": gap, "chemical": chem, "peptide": pep, "tonic": tonic}

    def vector_field(self, t, y: GradedState, u) -> GradedState:
        return graded_vector_field(self, y, u)

    def init_state(self) -> GradedState:
        return graded_init_state(self)

    def readout(self, y: GradedState):
        return jnp.where(self.alive, self.activation(y.v_mV), jnp.nan)

    def to_dense(self):
        """Return the same network as a dense :class:`~digiworm.models.GradedNetwork`."""
        from ..models import GradedNetwork

        n = len(self.names)
        dtype = self.g_chem.dtype

        def dense(rows, cols, values):
            m = np.zeros((n, n), dtype=dtype)
            np.add.at(m, (np.asarray(rows), np.asarray(cols)), np.asarray(values))
            return jnp.asarray(m)

        e = np.zeros((n, n), dtype=dtype)
        e[np.asarray(self.chem_post), np.asarray(self.chem_pre)] = np.asarray(self.e_chem_mV)
        gap = dense(self.gap_a, self.gap_b, self.g_gap)
        return GradedNetwork(
            names=self.names, g_gap=gap + gap.T,
            g_chem=dense(self.chem_post, self.chem_pre, self.g_chem), e_chem_mV=jnp.asarray(e),
            w_pep_mV=dense(self.pep_post, self.pep_pre, self.w_pep_mV), tau_m_s=self.tau_m_s,
            v_rest_mV=self.v_rest_mV, v_th_mV=self.v_th_mV, tau_pep_s=self.tau_pep_s,
            a_r_per_s=self.a_r_per_s, a_d_per_s=self.a_d_per_s, beta_per_mV=self.beta_per_mV,
            g_tonic=self.g_tonic, e_tonic_mV=self.e_tonic_mV, alive=self.alive,
            connectome_source=self.connectome_source,
        )  # fmt: skip

    def max_rate(self):
        """Return the dense model's Gershgorin bound (``GradedNetwork.max_rate``) by edges."""
        n = len(self.names)

        def rows(values, index):
            return jax.ops.segment_sum(values, index, num_segments=n)

        gap_rows = rows(self.g_gap, self.gap_a) + rows(self.g_gap, self.gap_b)
        chem_rows = rows(self.g_chem, self.chem_post)
        return graded_rate_bound(
            self, gap_rows, chem_rows, rows(jnp.abs(self.w_pep_mV), self.pep_post)
        )


def sparse_from_dense(model) -> SparseGradedNetwork:
    """Return the edge-list form of a :class:`~digiworm.models.GradedNetwork` (same dtype)."""
    from ..models import GradedNetwork

    if not isinstance(model, GradedNetwork):
        raise DigiwormError(f"sparse_from_dense takes a GradedNetwork; got {type(model).__name__}")
    chem, gap, pep = (np.asarray(x) for x in (model.g_chem, model.g_gap, model.w_pep_mV))
    post_c, pre_c = np.nonzero(chem)
    a, b = np.nonzero(np.triu(gap, 1))
    post_p, pre_p = np.nonzero(pep)
    dtype = model.g_chem.dtype

    def idx(x):
        return jnp.asarray(x, jnp.int32)

    e = np.asarray(model.e_chem_mV)

    def arr(x):
        return jnp.asarray(x, dtype)

    return SparseGradedNetwork(
        names=model.names, chem_pre=idx(pre_c), chem_post=idx(post_c),
        g_chem=arr(chem[post_c, pre_c]), e_chem_mV=arr(e[post_c, pre_c]),
        gap_a=idx(a), gap_b=idx(b), g_gap=arr(gap[a, b]),
        pep_pre=idx(pre_p), pep_post=idx(post_p), w_pep_mV=arr(pep[post_p, pre_p]),
        tau_m_s=model.tau_m_s, v_rest_mV=model.v_rest_mV, v_th_mV=model.v_th_mV,
        tau_pep_s=model.tau_pep_s, a_r_per_s=model.a_r_per_s, a_d_per_s=model.a_d_per_s,
        beta_per_mV=model.beta_per_mV, g_tonic=model.g_tonic, e_tonic_mV=model.e_tonic_mV,
        alive=model.alive, connectome_source=model.connectome_source,
    )  # fmt: skip


def graded_from_connectome(
    connectome,
    *,
    gap_per_junction: float = 0.001,
    chem_per_synapse: float = 0.02,
    tau_m_s: float = 0.1,
    dtype=jnp.float32,
    layout: str = "sparse",
):
    """Build a :class:`SparseGradedNetwork` from a connectome, with the graded defaults.

    The conductance scales, time constants, rest (−35 mV) and activation midpoint (−15 mV)
    are :func:`~digiworm.models.graded_from_atlas`'s *uncalibrated defaults*; a synapse's
    reversal is 0 mV for a positive weight and −48 mV for a negative one; there is no peptide
    layer. The defaults were chosen for the worm: a larger brain's stability at them is not
    checked (``max_rate`` bounds the step).

    ``layout``: ``"sparse"`` (edge lists), ``"dense"`` (a ``GradedNetwork``; N² memory) or
    ``"auto"``: dense up to :data:`DENSE_MAX_NEURONS` neurons, where matrix products were
    faster here (``benchmarks/brain_scale.py``), sparse above.
    """
    if layout not in ("sparse", "dense", "auto"):
        raise DigiwormError(f"layout {layout!r} is not one of sparse, dense, auto")
    if layout == "dense" and connectome.n_neurons > 20_000:
        raise DigiwormError(
            f"a dense network of {connectome.n_neurons:,} neurons needs "
            f"{16 * connectome.n_neurons**2 / 1e9:.0f} GB; use layout='sparse'"
        )
    n = connectome.n_neurons
    pre, post, w = connectome.chemical()
    a, b, g = connectome.gap_junctions()

    def arr(x):
        return jnp.asarray(x, dtype=dtype)

    def idx(x):
        return jnp.asarray(x, jnp.int32)

    empty = np.zeros(0)
    sparse = SparseGradedNetwork(
        names=tuple(str(i) for i in connectome.ids), chem_pre=idx(pre), chem_post=idx(post),
        g_chem=arr(chem_per_synapse * np.abs(w)),
        e_chem_mV=arr(np.where(w > 0, E_EXC_MV, E_INH_MV)),
        gap_a=idx(a), gap_b=idx(b), g_gap=arr(gap_per_junction * g),
        pep_pre=idx(empty), pep_post=idx(empty), w_pep_mV=arr(empty),
        tau_m_s=arr(np.full(n, tau_m_s)), v_rest_mV=arr(np.full(n, -35.0)),
        v_th_mV=arr(np.full(n, -15.0)), tau_pep_s=arr(2.0), a_r_per_s=arr(1.0),
        a_d_per_s=arr(5.0), beta_per_mV=arr(0.125), g_tonic=arr(np.zeros(n)),
        e_tonic_mV=arr(np.zeros(n)), alive=jnp.ones(n, dtype=bool),
        connectome_source=connectome.source,
    )  # fmt: skip
    dense = layout == "dense" or (layout == "auto" and n <= DENSE_MAX_NEURONS)
    return sparse.to_dense() if dense else sparse
