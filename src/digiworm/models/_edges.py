"""Sparse coupling on edge lists, shared by the conductance-level networks.

Chemical synapses and gap junctions as index arrays (one entry per edge) summed into their
target neurons with ``segment_sum``: memory and work scale with the number of edges, and the
arrays batch and shard like any other leaf.
"""

from __future__ import annotations

import jax

from .._errors import DigiwormError


def into(values, index, n: int):
    """Sum per-edge ``values`` into their ``index`` neuron (``n`` neurons)."""
    return jax.ops.segment_sum(values, index, num_segments=n)


def gap_coupling(g_nS, a, b, v_mV, n: int):
    """Return ``(g, i)`` of double-sided gap junctions ``a``–``b`` into each neuron.

    ``g`` (nS) is the junction conductance each neuron sees and ``i`` (pA) the current it would
    pass at 0 mV, so the junction current is ``i − g·V``.
    """
    g = into(g_nS, a, n) + into(g_nS, b, n)
    i = into(g_nS * v_mV[b], a, n) + into(g_nS * v_mV[a], b, n)
    return g, i


def exponential_stepper(model, dt, method: str):
    """Return ``step(t, y, u)`` advancing ``dt`` seconds with ``model.step`` (in ms)."""
    if method != "exponential":
        raise DigiwormError(
            f"{type(model).__name__} integrates with its own exponential-Euler step; method "
            f"{method!r} is not available (use method='exponential')"
        )
    dt_ms = 1e3 * dt
    return lambda t, y, u: model.step(y, u, dt_ms)
