r"""OpenWorm c302 parameter set C2 in digiworm: the field's reference conductance network.

Every neuron is the same single-compartment cell (c302 ``GenericNeuronCell`` of set C, with
C2's values): leak, a slow and a fast (inactivating) K⁺ current and a Ca²⁺ current whose
inactivation depends on intracellular Ca²⁺ (after Boyle & Cohen 2008), with fixed reversals,

.. math::

    C \dot V = g_L (E_L - V) + g_{Ks}\, n\, (E_{Ks} - V) + g_{Kf}\, p^4 q\, (E_{Kf} - V)
        + g_{Ca}\, e^2 f\, h_{Ca}\, (E_{Ca} - V) + I_{syn} + I_{gap} + I_{ext},

each gate :math:`\dot x = (x_\infty(V) - x)/\tau_x` with a logistic :math:`x_\infty` and a
constant :math:`\tau_x`; :math:`h_{Ca} = 1 + \alpha (h_\infty([Ca]) - 1)` is instantaneous and
:math:`\dot{[Ca]} = \rho\, I_{Ca}/A - [Ca]/\tau_{Ca}` (inward current positive; the time step
floors it at 0 as c302 does).
Chemical synapses are c302's graded synapses: per presynaptic neuron and synapse class,
:math:`s_\infty = 1/(1 + e^{(V_{th} - V_{pre})/\delta})`,
:math:`\dot s = k (s_\infty - s)/(1 - s_\infty)`, and the current into *i* is
:math:`\sum_j N_{ij}\, g\, s_j (E - V_i)` with :math:`N` the synapse count; gap junctions pass
:math:`\sum_j G_{ij} (V_j - V_i)` with :math:`G_{ij} = g_{gap} (N_{ij} + N_{ji})` (c302 puts each
listed junction on both cells, and its table lists most junctions in both directions).

Values: c302 0.12.1 ``parameters_C2.py`` and ``cell_C.xml`` (Gleeson et al. 2018, Phil Trans R
Soc B 373: 20170379), read from the installed package (``docs/research/c302_C2.md`` has every
one with its file). Connectome: c302's default, the legacy OpenWorm spreadsheet
(CElegansNeuronTables.xls) as cect caches it; every chemical synapse whose class does not
contain GABA is excitatory, as c302 decides. Units: mV, ms, nS, pF, pA, mM.

Time stepping (:meth:`C302Network.stepper`): gates and synaptic activations by their exact
exponential update at frozen potentials, then :math:`V` by backward Euler in its own
conductances with the other neurons' potentials from the start of the step (as NEURON reads
them through ``POINTER vpeer``), then Ca²⁺ exactly. The time in :meth:`vector_field` and the
simulator is in seconds, as everywhere in digiworm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._errors import InvalidParameterError, UnknownNameError
from ._base import AbstractModel
from ._edges import exponential_stepper, gap_coupling, into

__all__ = ["C2", "C2Parameters", "C302Network", "C302State", "c302_connectome", "c302_network"]

C302_CITATION = (
    "Gleeson P, Lung D, Grosu R, Hasani R, Larson SD (2018) c302: a multiscale framework for "
    "modelling the nervous system of Caenorhabditis elegans. Phil Trans R Soc B 373: 20170379 "
    "(parameter set C2 of the c302 0.12.1 package)"
)


@dataclass(frozen=True)
class C2Parameters:
    """Every number of c302 parameter set C2 for neurons (see ``docs/research/c302_C2.md``)."""

    area_um2: float = float(np.pi * 5.0**2)  # 5 µm sphere
    c_pF: float = float(5.0 * np.pi * 5.0**2 * 1e-2)  # 5 µF/cm² × area
    v0_mV: float = -60.0
    g_leak_mS_cm2: float = 0.002
    g_kslow_mS_cm2: float = 0.45833751019872582
    g_kfast_mS_cm2: float = 0.042711643917483308
    g_ca_mS_cm2: float = 1.812775772264702
    e_leak_mV: float = -60.0
    e_kslow_mV: float = -60.0
    e_kfast_mV: float = -70.0
    e_ca_mV: float = 10.0
    # gates: (tau_ms, midpoint_mV, scale_mV); x_inf = 1/(1 + exp(-(V - midpoint)/scale))
    n: tuple = (25.0007, 19.8741, 15.8512)
    p: tuple = (2.25518, -8.05232, 7.42636)
    q: tuple = (149.963, -15.6456, -9.97468)
    e: tuple = (0.100027, -3.3568, 6.74821)
    f: tuple = (150.88, 25.1815, -5.03176)
    ca_half_mM: float = 6.41889e-8
    ca_k_mM: float = -1.00056e-8
    ca_alpha: float = 0.282473
    ca_decay_ms: float = 13.811870945509265
    ca_rho: float = 0.000238919  # mol m⁻¹ A⁻¹ s⁻¹; with pA/µm² = A/m² → mM/ms ×1e-3
    # graded synapses: (g per synapse nS, erev mV, vth mV, delta mV, k 1/ms)
    exc: tuple = (0.49, -10.0, 0.0, 5.0, 0.5)
    inh: tuple = (0.29, -70.0, 0.0, 5.0, 0.015)
    gap_nS: float = 0.01252

    def conductances_nS(self) -> dict[str, float]:
        """Maximal conductances of the four currents, nS (density × area)."""
        to_nS = self.area_um2 * 1e-2  # mS/cm² × µm² → nS
        return {
            "leak": self.g_leak_mS_cm2 * to_nS,
            "kslow": self.g_kslow_mS_cm2 * to_nS,
            "kfast": self.g_kfast_mS_cm2 * to_nS,
            "ca": self.g_ca_mS_cm2 * to_nS,
        }


C2 = C2Parameters()


def _inf(v, gate):
    _, mid, scale = gate
    return jax.nn.sigmoid((v - mid) / scale)


class C302State(eqx.Module):
    """State of :class:`C302Network`: V (mV), gates, Ca²⁺ (mM), synaptic activations."""

    v_mV: Float[Array, " n"]
    n: Float[Array, " n"]
    p: Float[Array, " n"]
    q: Float[Array, " n"]
    e: Float[Array, " n"]
    f: Float[Array, " n"]
    ca_mM: Float[Array, " n"]
    s_exc: Float[Array, " n"]
    s_inh: Float[Array, " n"]


class C302Network(AbstractModel):
    """c302 parameter set C2 network (see the module docstring).

    Connections are stored as edge lists (the connectome is 4 % dense; a sparse sum costs a
    twentieth of a dense product per step). :meth:`matrices` returns dense ``[post, pre]`` views.

    Parameters
    ----------
    names : tuple of str
    pre, post : int array (e,)
        Chemical edges (one per ordered pair with any synapse).
    w_exc, w_inh : array (e,)
        Excitatory / inhibitory synapse counts of each edge.
    gap_a, gap_b : int array (j,)
        Gap-junction pairs (each unordered pair once).
    g_gap_nS : array (j,)
        Conductance of each pair, nS.
    g_scale : array (n, 4)
        Per-neuron multiplier of the leak, slow K⁺, fast K⁺ and Ca²⁺ conductances (1 = C2;
        knockouts and drugs act here).
    params : C2Parameters
    """

    names: tuple[str, ...] = eqx.field(static=True)
    pre: Int[Array, " e"]
    post: Int[Array, " e"]
    w_exc: Float[Array, " e"]
    w_inh: Float[Array, " e"]
    gap_a: Int[Array, " j"]
    gap_b: Int[Array, " j"]
    g_gap_nS: Float[Array, " j"]
    g_scale: Float[Array, "n 4"]
    params: C2Parameters = eqx.field(static=True, default=C2)
    connectome_source: str = eqx.field(static=True, default="")
    output: ClassVar[str] = "activity"
    methods: ClassVar[tuple[str, ...]] = ("exponential",)

    def __check_init__(self):
        n = len(self.names)
        if self.g_scale.shape[-2:] != (n, 4):
            raise InvalidParameterError(f"g_scale must be ({n}, 4); got {self.g_scale.shape}")
        for a, b in (("pre", "w_exc"), ("post", "w_inh"), ("gap_a", "g_gap_nS")):
            if getattr(self, a).shape[-1:] != getattr(self, b).shape[-1:]:
                raise InvalidParameterError(f"{a} and {b} must have one entry per edge")

    def matrices(self) -> dict[str, np.ndarray]:
        """Dense ``[post, pre]`` views: synapse counts ``exc``, ``inh``; gap conductance ``gap``."""
        n = self.n_neurons
        out = {k: np.zeros((n, n)) for k in ("exc", "inh", "gap")}
        post, pre = np.asarray(self.post), np.asarray(self.pre)
        np.add.at(out["exc"], (post, pre), np.asarray(self.w_exc))
        np.add.at(out["inh"], (post, pre), np.asarray(self.w_inh))
        a, b, g = np.asarray(self.gap_a), np.asarray(self.gap_b), np.asarray(self.g_gap_nS)
        np.add.at(out["gap"], (a, b), g)
        np.add.at(out["gap"], (b, a), g)
        return out

    def _g(self):
        g = self.params.conductances_nS()
        scale = self.g_scale
        return (g["leak"] * scale[:, 0], g["kslow"] * scale[:, 1], g["kfast"] * scale[:, 2],
                g["ca"] * scale[:, 3])  # fmt: skip

    def _h_ca(self, ca):
        p = self.params
        h_inf = jax.nn.sigmoid((ca - p.ca_half_mM) / p.ca_k_mM)  # k < 0: falls with Ca
        return 1.0 + (h_inf - 1.0) * p.ca_alpha

    def _syn_inf(self, v, syn):
        _, _, vth, delta, _ = syn
        return jax.nn.sigmoid((v - vth) / delta)

    def _ca_gain(self):
        # d[Ca]/dt (mM/ms) per pA of inward Ca²⁺ current: rho [A⁻¹ m⁻¹ mol s⁻¹] × I/A
        return self.params.ca_rho * 1e-3 / self.params.area_um2

    def coupling(self, y: C302State):
        """Return ``(g_in, i_in)`` of the synapses and gap junctions into each neuron.

        ``g_in`` is their conductance (nS) and ``i_in`` the current they would pass at 0 mV
        (pA), so the coupling current is ``i_in − g_in·V``.
        """
        p, n = self.params, self.n_neurons
        g_exc = p.exc[0] * into(self.w_exc * y.s_exc[self.pre], self.post, n)
        g_inh = p.inh[0] * into(self.w_inh * y.s_inh[self.pre], self.post, n)
        g_gap, i_gap = gap_coupling(self.g_gap_nS, self.gap_a, self.gap_b, y.v_mV, n)
        g_in = g_exc + g_inh + g_gap
        i_in = g_exc * p.exc[1] + g_inh * p.inh[1] + i_gap
        return g_in, i_in

    # -- dynamics --------------------------------------------------------------------------------
    def init_state(self) -> C302State:
        """Return c302's initial state: V = −60 mV, gates at steady state, Ca²⁺ and s at 0."""
        p = self.params
        v = jnp.full(self.n_neurons, p.v0_mV, dtype=self.g_scale.dtype)
        zero = jnp.zeros_like(v)
        return C302State(v, _inf(v, p.n), _inf(v, p.p), _inf(v, p.q), _inf(v, p.e), _inf(v, p.f),
                         zero, zero, zero)  # fmt: skip

    def intrinsic(self, y: C302State):
        """Return ``(g, ge)``: intrinsic open conductance (nS) and Σ g·E (pA) per neuron."""
        p = self.params
        gl, gks, gkf, gca = self._g()
        g_ks = gks * y.n
        g_kf = gkf * y.p**4 * y.q
        g_ca = gca * y.e**2 * y.f * self._h_ca(y.ca_mM)
        g = gl + g_ks + g_kf + g_ca
        ge = gl * p.e_leak_mV + g_ks * p.e_kslow_mV + g_kf * p.e_kfast_mV + g_ca * p.e_ca_mV
        return g, ge, g_ca

    def vector_field(self, t, y: C302State, u) -> C302State:
        """Return ``dy/dt`` per second for input current ``u`` (pA per neuron)."""
        p = self.params
        g, ge, g_ca = self.intrinsic(y)
        g_in, i_in = self.coupling(y)
        v = y.v_mV
        dv = (ge - g * v + i_in - g_in * v + u) / p.c_pF
        dgate = {k: (_inf(v, getattr(p, k)) - getattr(y, k)) / getattr(p, k)[0] for k in "npqef"}
        i_ca = g_ca * (p.e_ca_mV - v)
        dca = self._ca_gain() * i_ca - y.ca_mM / p.ca_decay_ms
        ds = {}
        for name, syn in (("s_exc", p.exc), ("s_inh", p.inh)):
            inf = self._syn_inf(v, syn)
            ds[name] = syn[4] * (inf - getattr(y, name)) / jnp.maximum(1.0 - inf, 1e-4)
        per_ms = C302State(dv, dgate["n"], dgate["p"], dgate["q"], dgate["e"], dgate["f"], dca,
                           ds["s_exc"], ds["s_inh"])  # fmt: skip
        return jax.tree_util.tree_map(lambda d: 1e3 * d, per_ms)

    def step(self, y: C302State, u, dt_ms) -> C302State:
        """Advance ``y`` by ``dt_ms`` (see the module docstring for the scheme)."""
        p = self.params
        v = y.v_mV
        gates = {
            k: _inf(v, getattr(p, k)) + (getattr(y, k) - _inf(v, getattr(p, k)))
            * jnp.exp(-dt_ms / getattr(p, k)[0])
            for k in "npqef"
        }  # fmt: skip
        syn = {}
        for name, par in (("s_exc", p.exc), ("s_inh", p.inh)):
            inf = self._syn_inf(v, par)
            rate = par[4] / jnp.maximum(1.0 - inf, 1e-12)
            syn[name] = inf + (getattr(y, name) - inf) * jnp.exp(-dt_ms * rate)
        mid = C302State(v, gates["n"], gates["p"], gates["q"], gates["e"], gates["f"], y.ca_mM,
                        syn["s_exc"], syn["s_inh"])  # fmt: skip
        g, ge, g_ca = self.intrinsic(mid)
        g_in, i_in = self.coupling(mid)
        lam = p.c_pF / dt_ms
        v_new = (lam * v + ge + i_in + u) / (lam + g + g_in)
        i_ca = g_ca * (p.e_ca_mV - v_new)
        ca_inf = jnp.maximum(self._ca_gain() * i_ca * p.ca_decay_ms, 0.0)
        ca = ca_inf + (y.ca_mM - ca_inf) * jnp.exp(-dt_ms / p.ca_decay_ms)
        return eqx.tree_at(lambda s: (s.v_mV, s.ca_mM), mid, (v_new, jnp.maximum(ca, 0.0)))

    def stepper(self, dt, method: str = "exponential"):
        """Return ``step(t, y, u)`` advancing ``dt`` seconds (method: ``exponential`` only)."""
        return exponential_stepper(self, dt, method)

    def readout(self, y: C302State):
        """Return activity in [0, 1]: the excitatory release ``s_inf(V)`` of each neuron."""
        return self._syn_inf(y.v_mV, self.params.exc)


def _spreadsheet_path():
    from ..atlas._sources import package_dir

    return package_dir("cect") / "cache" / "SpreadsheetDataReader.json"


def c302_connectome(names=None):
    """Return ``(names, n_exc, n_inh, n_gap)`` of c302's default connectome, ``[post, pre]``.

    Read from cect's cache of the legacy OpenWorm spreadsheet (the table c302 uses by default).
    ``n_gap`` is the symmetric count n_AB + n_BA that c302's double-sided junctions add up to.
    With ``names`` the matrices are restricted to those neurons (in that order).
    """
    from ..atlas._neurons import _canonical_names

    data = json.loads(_spreadsheet_path().read_text())
    nodes = list(data["nodes"])
    canonical = _canonical_names()[0]
    wanted = canonical if names is None else list(names)
    for n in wanted:
        if n not in canonical:
            raise UnknownNameError("neuron", n, canonical)
    # neurons the table never connects (CANL, CANR) are in c302's network with no synapses
    rows = [nodes.index(n) if n in nodes else -1 for n in wanted]
    sub = {}
    for k, v in data["connections"].items():
        full = np.asarray(v, dtype=float)
        m = np.zeros((len(wanted), len(wanted)))
        ok = np.array([r >= 0 for r in rows])
        idx = np.array([r for r in rows if r >= 0], dtype=int)
        m[np.ix_(ok, ok)] = full[np.ix_(idx, idx)]
        sub[k] = m
    gap = sub.pop("Generic_GJ")  # [pre, post]
    inh = sum(v for k, v in sub.items() if "GABA" in k)
    exc = sum(v for k, v in sub.items() if "GABA" not in k)
    n_gap = gap + gap.T
    np.fill_diagonal(n_gap, 0.0)  # a self-junction passes no current
    return tuple(wanted), exc.T, inh.T, n_gap


def c302_network(names=None, *, params: C2Parameters = C2, dtype=None) -> C302Network:
    """Build the c302 C2 network on ``names`` (default: all 302 neurons in the atlas's order)."""
    names, exc, inh, gap = c302_connectome(names)
    post, pre = np.nonzero((exc > 0) | (inh > 0))
    a, b = np.nonzero(np.triu(gap, 1))

    def arr(x):
        return jnp.asarray(x, dtype=dtype)

    return C302Network(
        names=names,
        pre=jnp.asarray(pre, dtype=jnp.int32),
        post=jnp.asarray(post, dtype=jnp.int32),
        w_exc=arr(exc[post, pre]),
        w_inh=arr(inh[post, pre]),
        gap_a=jnp.asarray(a, dtype=jnp.int32),
        gap_b=jnp.asarray(b, dtype=jnp.int32),
        g_gap_nS=arr(params.gap_nS * gap[a, b]),
        g_scale=arr(np.ones((len(names), 4))),
        params=params,
        connectome_source="c302 default (OpenWorm CElegansNeuronTables.xls via cect)",
    )
