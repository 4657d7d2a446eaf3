r"""Single-compartment conductance-based neurons built from the channel library.

Per neuron, potential :math:`V` (mV), gates :math:`x` and bulk intracellular Ca²⁺ (mM):

.. math::

    C \dot V &= I_{ext} - \sum_c \bar g_c\, o_c(x)\, (V - E_c), \qquad
    \dot x = (x_\infty(V) - x) / \tau_x(V), \\
    \dot{[Ca]} &= f_{Ca}\, \frac{\max(-I_{Ca}, 0)}{2\, \mathrm{vol}\, F}
        - \frac{[Ca] - [Ca]_{rest}}{\tau_{Ca}},

with :math:`I_{Ca}` the sum of the EGL-19, UNC-2 and CCA-1 currents (pA; inward negative; a net
outward Ca²⁺ current adds no Ca²⁺, as in the XPP scripts of Nicoletti et al. 2019), and
:math:`[Ca]` never below a floor (0 by default). Units: mV, ms, nS, pF, pA, µm³, mM (see
:mod:`._channels`). The pool's constants select the published variants: Nicoletti et al. 2019
(:math:`f_{Ca}` 0.001, τ 50 ms, rest 0.05 µM); the 2024 motor neurons' submembrane shell
(``cadiff.mod``: :math:`f_{Ca}` 1, volume = area × 0.1 µm, τ 1 ms towards 0, floor 0.1 µM);
or a fixed [Ca] (:math:`f_{Ca}` 0: the pool stays at rest, as in the 2024 AIY model, which has
no Ca²⁺ accumulation).

:class:`ConductanceCell` holds any number of cells with their own conductances (a channel a
cell lacks has conductance 0), so one set of arrays serves a reference neuron, a family of
current-clamp conditions or all 302 neurons. The time step is the one NEURON and Jaxley use
for such models: gates advance by the exact exponential update with :math:`V` frozen over the
step (Rush–Larsen), then :math:`V` by backward Euler, which is a linear solve per cell because
every current is linear in :math:`V` at fixed gates; the Ca²⁺ pool by its exact exponential
update at the new currents. First order in ``dt``, stable for any ``dt``; tested against a
stiff reference solver (scipy's Radau) at tight tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import DigiwormError, InvalidParameterError, UnknownNameError
from ._channels import CHANNELS, REVERSAL_mV

__all__ = [
    "CellState",
    "ConductanceCell",
    "cell_from_conductances",
    "resting_potentials",
    "run_current",
]

#: Faraday constant as the scripts write it, C/mmol (so pA / (µm³ · C/mmol) = mM/ms).
FARADAY_C_PER_mmol = 96.485
#: NEURON's Ca²⁺ defaults: [Ca²⁺]o 2 mM, 6.3 °C; RT/2F (mV) with CODATA 2018 constants
CA_OUT_mM = 2.0
NERNST_CA_mV = 1e3 * 8.314462618 * (273.15 + 6.3) / (2 * 96485.33212)


class CellState(eqx.Module):
    """State of :class:`ConductanceCell`: potential (mV), Ca²⁺ (mM), gates by key."""

    v_mV: Float[Array, "*n"]
    ca_mM: Float[Array, "*n"]
    gates: dict[str, Float[Array, "*n"]]


class ConductanceCell(eqx.Module):
    """Single-compartment conductance-based neurons (see the module docstring).

    Parameters
    ----------
    names : tuple of str
        One id per cell (length n).
    channels : tuple of str
        Library channels modelled (the union over cells; order is the current order).
    g_nS : dict
        Maximal conductance per channel, nS, array (n,) each.
    c_pF, vol_um3 : array (n,)
        Membrane capacitance (pF) and the volume of the Ca²⁺ pool (µm³).
    e_leak_mV : array (n,)
        Leak reversal (the library's K⁺, Ca²⁺ and NCA reversals are shared).
    ca_rest_mM, ca_tau_ms, ca_fraction, ca_floor_mM : float
        Resting Ca²⁺, its clearance time constant, the fraction of Ca²⁺ current that stays
        free (0.05 µM, 50 ms and 0.001 in Nicoletti et al. 2019) and the lowest [Ca²⁺] (0).
    ca_reversal : {"fixed", "nernst"}
        Ca²⁺ reversal: the library's 60 mV, or Nernst at the pool's [Ca²⁺] with 2 mM outside
        at 6.3 °C (NEURON's defaults, which the 2024 NEURON models run with wherever a
        mechanism reads or writes [Ca²⁺]i: their ``eca = 60`` is then overridden).
    source : str
        Where the conductances come from (provenance).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    channels: tuple[str, ...] = eqx.field(static=True)
    g_nS: dict[str, Float[Array, " n"]]
    c_pF: Float[Array, " n"]
    vol_um3: Float[Array, " n"]
    e_leak_mV: Float[Array, " n"]
    ca_rest_mM: float = eqx.field(static=True, default=5e-5)
    ca_tau_ms: float = eqx.field(static=True, default=50.0)
    ca_fraction: float = eqx.field(static=True, default=0.001)
    ca_floor_mM: float = eqx.field(static=True, default=0.0)
    ca_reversal: str = eqx.field(static=True, default="fixed")
    source: str = eqx.field(static=True, default="")

    def __check_init__(self):
        for c in self.channels:
            if c not in CHANNELS:
                raise UnknownNameError("channel", c, CHANNELS)
        if set(self.g_nS) != set(self.channels):
            raise InvalidParameterError(
                f"g_nS must have one entry per channel {self.channels}; got {tuple(self.g_nS)}"
            )
        for c in self.channels:
            partner = _partner(c)
            if partner and partner not in self.channels:
                raise InvalidParameterError(
                    f"channel {c!r} needs its Ca2+ partner {partner!r} in channels"
                )

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return len(self.names)

    # -- pieces --------------------------------------------------------------------------------
    def gate_keys(self) -> tuple[str, ...]:
        """Every gate's state key, channel by channel."""
        return tuple(k for c in self.channels for k in CHANNELS[c].keys())

    def e_ca_mV(self, ca):
        """Ca²⁺ reversal (mV): the library's 60 mV, or Nernst at the pool's [Ca²⁺] (mM)."""
        if self.ca_reversal == "fixed":
            return REVERSAL_mV["Ca"]
        return NERNST_CA_mV * jnp.log(CA_OUT_mM / jnp.maximum(ca, 1e-12))

    def reversal_mV(self, channel: str, ca=None):
        """Reversal potential of ``channel`` (mV), per cell for the leak; Ca²⁺ at pool ``ca``."""
        ion = CHANNELS[channel].ion
        if ion == "leak":
            return self.e_leak_mV
        if ion == "Ca":
            return self.e_ca_mV(ca)
        return REVERSAL_mV[ion]

    def rates(self, v, gates: Mapping, ca):
        """Return ``{key: (x_inf, tau_ms)}`` for every gate at potential ``v`` and Ca ``ca``."""
        out = {}
        e_ca = self.e_ca_mV(ca)
        for c in self.channels:
            for gate, value in CHANNELS[c].rates(v, gates, ca, e_ca).items():
                out[f"{c}.{gate}"] = value
        return out

    def conductances(self, gates: Mapping) -> dict[str, Array]:
        """Return the open conductance ``g·o`` of every channel, nS."""
        return {c: self.g_nS[c] * CHANNELS[c].open(gates) for c in self.channels}

    def currents(self, y: CellState) -> dict[str, Array]:
        """Return every channel's current at state ``y``, pA (outward positive)."""
        g = self.conductances(y.gates)
        return {c: g[c] * (y.v_mV - self.reversal_mV(c, y.ca_mM)) for c in self.channels}

    def _ca_influx(self, i_ca):
        """Ca²⁺ gained per ms (mM/ms) from a total Ca²⁺ current ``i_ca`` (pA)."""
        alpha = 1.0 / (2.0 * self.vol_um3 * FARADAY_C_PER_mmol)
        return self.ca_fraction * alpha * jnp.maximum(-i_ca, 0.0)

    def _ca_steady(self, i_ca):
        """Steady pool [Ca²⁺] (mM) under a held Ca²⁺ current ``i_ca`` (pA)."""
        ca = self.ca_rest_mM + self.ca_tau_ms * self._ca_influx(i_ca)
        return jnp.maximum(ca, self.ca_floor_mM)

    def _ca_step(self, ca, i_ca, dt_ms):
        """Exact pool update over ``dt_ms`` with ``i_ca`` held, then the floor."""
        ca_inf = self.ca_rest_mM + self.ca_tau_ms * self._ca_influx(i_ca)
        ca = ca_inf + (ca - ca_inf) * jnp.exp(-dt_ms / self.ca_tau_ms)
        return jnp.maximum(ca, self.ca_floor_mM)

    def _ca_current(self, currents: Mapping):
        total = 0.0
        for c in self.channels:
            if CHANNELS[c].ion == "Ca":
                total = total + currents[c]
        return total

    # -- dynamics --------------------------------------------------------------------------------
    def vector_field(self, t_ms, y: CellState, i_ext_pA) -> CellState:
        """Return ``dy/dt`` per ms under an injected current ``i_ext_pA`` (pA per cell)."""
        r = self.rates(y.v_mV, y.gates, y.ca_mM)
        currents = self.currents(y)
        i_total = sum(currents.values())
        dv = (i_ext_pA - i_total) / self.c_pF
        dca = (
            self._ca_influx(self._ca_current(currents))
            - (y.ca_mM - self.ca_rest_mM) / self.ca_tau_ms
        )
        dca = jnp.where((y.ca_mM <= self.ca_floor_mM) & (dca < 0), 0.0, dca)  # the floor holds
        dgates = {k: (inf - y.gates[k]) / tau for k, (inf, tau) in r.items()}
        return CellState(dv, dca, dgates)

    def step(self, y: CellState, i_ext_pA, dt_ms, g_in=0.0, i_in=0.0) -> CellState:
        """Advance ``y`` by ``dt_ms`` with the injected current held (see module docstring).

        ``g_in`` (nS) and ``i_in`` (pA) describe extra input linear in each cell's potential,
        ``i_in − g_in·V`` (synapses and gap junctions of a network), taken implicitly in V.
        """
        r = self.rates(y.v_mV, y.gates, y.ca_mM)
        gates = {k: inf + (y.gates[k] - inf) * jnp.exp(-dt_ms / tau) for k, (inf, tau) in r.items()}
        g = self.conductances(gates)
        g_total = sum(g.values())
        e = {c: self.reversal_mV(c, y.ca_mM) for c in self.channels}
        ge_total = sum(g[c] * e[c] for c in self.channels)
        lam = self.c_pF / dt_ms
        v = (lam * y.v_mV + ge_total + i_ext_pA + i_in) / (lam + g_total + g_in)
        i_ca = sum(g[c] * (v - e[c]) for c in self.channels if CHANNELS[c].ion == "Ca")
        return CellState(v, self._ca_step(y.ca_mM, i_ca, dt_ms), gates)

    def clamp_step(self, y: CellState, v_mV, dt_ms) -> tuple[CellState, Array]:
        """Advance gates and Ca²⁺ by ``dt_ms`` at a clamped potential.

        Returns the new state and the membrane current (pA, outward positive) that the clamp
        supplies at the end of the step.
        """
        v_mV = jnp.broadcast_to(v_mV, y.v_mV.shape)
        r = self.rates(v_mV, y.gates, y.ca_mM)
        gates = {k: inf + (y.gates[k] - inf) * jnp.exp(-dt_ms / tau) for k, (inf, tau) in r.items()}
        currents = self.currents(CellState(v_mV, y.ca_mM, gates))
        ca = self._ca_step(y.ca_mM, self._ca_current(currents), dt_ms)
        return CellState(v_mV, ca, gates), sum(currents.values())

    def steady_gates(self, v, ca=None) -> dict[str, Array]:
        """Every gate at its steady state at fixed ``v`` (and Ca, default at its steady state)."""
        return self._steady(v, ca)[0]

    def _steady(self, v, ca=None):
        """Return ``(gates, ca)`` at steady state at clamped ``v`` (``ca`` given or solved).

        Rates are evaluated twice first: the second pass gives the SLO complexes their
        partner's steady activation m∞ (a complex reads its partner's gate from the state passed
        in). The Ca²⁺ channels' gates do not depend on [Ca²⁺], so with ``ca=None`` the pool's
        steady state solves ``ca = ca_ss(I_Ca(V, E_Ca(ca)))``: one evaluation with a fixed
        reversal, bisection in log [Ca²⁺] with a Nernst reversal (the right side falls as
        [Ca²⁺] rises, so the root is unique). The gates are then re-evaluated at that [Ca²⁺].
        """
        v = jnp.asarray(v)
        zeros = {k: jnp.zeros_like(v) for k in self.gate_keys()}
        ca0 = jnp.full_like(v, max(self.ca_rest_mM, self.ca_floor_mM, 1e-9)) if ca is None else ca
        gates = {k: inf for k, (inf, _) in self.rates(v, zeros, ca0).items()}
        gates = {k: inf for k, (inf, _) in self.rates(v, gates, ca0).items()}  # SLO sees m_X
        if ca is None:
            g = self.conductances(gates)
            g_ca = sum((g[c] for c in self.channels if CHANNELS[c].ion == "Ca"), jnp.zeros_like(v))

            def pool(c):
                return self._ca_steady(g_ca * (v - self.e_ca_mV(c)))

            if self.ca_reversal == "fixed":
                ca = pool(ca0)
            else:
                lo = jnp.log(ca0)
                hi = jnp.log(jnp.maximum(pool(ca0), ca0))
                for _ in range(60):
                    mid = 0.5 * (lo + hi)
                    above = pool(jnp.exp(mid)) < jnp.exp(mid)  # root below mid
                    lo, hi = jnp.where(above, lo, mid), jnp.where(above, mid, hi)
                ca = jnp.exp(0.5 * (lo + hi))
            gates = {k: inf for k, (inf, _) in self.rates(v, gates, ca).items()}
        return gates, ca

    def steady_state(self, v) -> CellState:
        """Return the state with every gate and the Ca²⁺ pool at steady state at clamped ``v``."""
        v = jnp.broadcast_to(jnp.asarray(v, dtype=float), (self.n_cells,))
        gates, ca = self._steady(v)
        return CellState(v, ca, gates)

    def steady_current(self, v) -> Array:
        """Steady-state membrane current I_ss(V) (pA, outward positive), per cell.

        ``v`` may carry extra leading axes (e.g. a voltage grid of shape (k, n)).
        """
        v = jnp.asarray(v, dtype=float)
        gates, ca = self._steady(v)
        return sum(self.currents(CellState(v, ca, gates)).values())


def _partner(channel: str) -> str | None:
    req = CHANNELS[channel].requires
    if not req:
        return None
    gene = req[0]
    return next(n for n, c in CHANNELS.items() if c.genes == (gene,) and not c.requires)


def cell_from_conductances(
    name: str | tuple[str, ...],
    g_nS: Mapping[str, float | np.ndarray],
    *,
    c_pF,
    vol_um3,
    e_leak_mV=-80.0,
    source: str = "",
    dtype=None,
    **ca_pool,
) -> ConductanceCell:
    """Build a :class:`ConductanceCell` from per-channel conductances (nS).

    ``name`` may be a tuple of ids; each value then is a scalar (shared) or one per cell.
    Unknown channels raise an error naming them; negative or non-finite values raise too.
    ``dtype`` defaults to JAX's default float (float64 once ``jax_enable_x64`` is on).
    ``ca_pool`` passes the pool constants (``ca_rest_mM``, ``ca_tau_ms``, ``ca_fraction``,
    ``ca_floor_mM``) of :class:`ConductanceCell`.
    """
    names = (name,) if isinstance(name, str) else tuple(name)
    n = len(names)

    def arr(x, what):
        a = np.broadcast_to(np.asarray(x, dtype=float), (n,))
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise DigiwormError(f"{what} must be finite and >= 0; got {x!r}")
        return jnp.asarray(a, dtype=dtype)

    for c in g_nS:
        if c not in CHANNELS:
            raise UnknownNameError("channel", c, CHANNELS)
    for what, x in (("capacitance", c_pF), ("Ca pool volume", vol_um3)):
        if np.any(np.asarray(x, dtype=float) <= 0):
            raise DigiwormError(f"{what} must be > 0; got {x!r}")
    channels = tuple(c for c in CHANNELS if c in g_nS)
    return ConductanceCell(
        names=names,
        channels=channels,
        g_nS={c: arr(g_nS[c], f"conductance of {c}") for c in channels},
        c_pF=arr(c_pF, "capacitance"),
        vol_um3=arr(vol_um3, "Ca pool volume"),
        e_leak_mV=jnp.asarray(np.broadcast_to(np.asarray(e_leak_mV, float), (n,)), dtype=dtype),
        source=source,
        **_pool_constants(ca_pool),
    )


_POOL_KEYS = ("ca_rest_mM", "ca_tau_ms", "ca_fraction", "ca_floor_mM", "ca_reversal")


def _pool_constants(ca_pool: Mapping) -> dict:
    unknown = set(ca_pool) - set(_POOL_KEYS)
    if unknown:
        raise DigiwormError(f"unknown Ca2+ pool constants {sorted(unknown)}; valid: {_POOL_KEYS}")
    ca_pool = dict(ca_pool)
    reversal = ca_pool.pop("ca_reversal", "fixed")
    if reversal not in ("fixed", "nernst"):
        raise DigiwormError(f"ca_reversal must be 'fixed' or 'nernst'; got {reversal!r}")
    out = {k: float(v) for k, v in ca_pool.items()}
    for k, v in out.items():
        if not math.isfinite(v) or v < 0 or (k == "ca_tau_ms" and v == 0):
            bound = "> 0" if k == "ca_tau_ms" else ">= 0"
            raise DigiwormError(f"{k} must be finite and {bound}; got {v}")
    return {**out, "ca_reversal": reversal}


def resting_potentials(
    cell: ConductanceCell, v_min: float = -120.0, v_max: float = 60.0, resolution_mV: float = 0.01
) -> list[np.ndarray]:
    """Return each cell's stable resting potentials: zeros of I_ss(V) with dI_ss/dV > 0 (mV).

    I_ss is the closed-form steady-state current (every gate and the Ca²⁺ pool at steady
    state), evaluated on a grid and refined by linear interpolation between grid points. A
    bistable cell has two; the unstable zero between them is left out. Stability here is that
    of the steady-state I–V; slow gates can still oscillate around a zero (check with
    :func:`resting_state`).
    """
    grid = np.arange(v_min, v_max + resolution_mV / 2, resolution_mV)
    v = jnp.asarray(np.repeat(grid[:, None], cell.n_cells, axis=1))
    i = np.asarray(eqx.filter_jit(ConductanceCell.steady_current)(cell, v))
    return [stable_zeros(grid, i[:, j])[0] for j in range(cell.n_cells)]


def stable_zeros(grid: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the upward zero crossings of ``current`` on ``grid`` (stable rests) and slopes.

    Each zero is refined by linear interpolation between its two grid points; the slope is
    that segment's dI/dV.
    """
    idx = np.nonzero((current[:-1] < 0) & (current[1:] >= 0))[0]
    di, dv = current[idx + 1] - current[idx], grid[idx + 1] - grid[idx]
    return grid[idx] - current[idx] * dv / di, di / dv


@eqx.filter_jit
def run_current(model, y0, i_ext, dt_ms, n_inner):
    """Step ``model`` (anything with ``step(y, i_pA, dt_ms)``) under injected currents.

    ``i_ext`` has one row per integration step, held over it; the state is sampled every
    ``n_inner`` steps. Returns ``(final state, (v_mV, ca_mM))`` (differentiable).
    """

    def outer(y, block):
        y, _ = jax.lax.scan(lambda y, i: (model.step(y, i, dt_ms), None), y, block)
        return y, (y.v_mV, y.ca_mM)

    blocks = i_ext.reshape(-1, n_inner, *i_ext.shape[1:])
    return jax.lax.scan(outer, y0, blocks)
