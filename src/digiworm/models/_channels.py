r"""Ion-channel library of *C. elegans* neurons: gate kinetics tied to genes.

Kinetics and reference conductances of the single-neuron models of Nicoletti et al. 2019
(PLoS ONE 14(7): e0218738, "Biophysical modeling of C. elegans neurons: single ion currents
and whole-cell dynamics of AWCon and RMD"), transcribed from the authors' XPPAUT scripts
``AWC.ode`` and ``RMD.ode`` in the public repository openworm/NicolettiEtAl2019_NeuronModels
(commit a6e4498; see ``docs/research/nicoletti2019_parameters.md`` for every parameter with its
source line and the points that needed interpretation).

Units follow those scripts: membrane potential mV, time ms, conductance nS, current pA,
capacitance pF, bulk intracellular Ca²⁺ mM, nanodomain Ca²⁺ µM.

Every gate relaxes to its steady state, :math:`\dot x = (x_\infty(V) - x)/\tau_x(V)`, and a
channel passes :math:`I = \bar g\, o(x)\,(V - E_{ion})` with open fraction :math:`o`. The four
SLO (BK-type) currents are complexes of a SLO channel with the Ca²⁺ channel that feeds its
nanodomain (EGL-19 or UNC-2); they read the partner's gates, so a complex needs both genes.

Genes of a family with no kinetics of their own share a member's (kvs-2 → KVS-1, shw-3 → EGL-36,
kqt-1/kqt-2 → KQT-3, irk-2 → IRK), a prior until their own are transcribed; two-pore K⁺ genes
(twk-18, twk-7, twk-40, unc-58, egl-23) make a passive K⁺ current, which is what a K2P channel
is to first order. Their conductances come only from the expression map.

A channel is a row of :data:`CHANNELS`: name, the genes that make its pore (any one member of
a family), its ion, its gates, the partner genes a complex ``requires``, a rate function
``rates(v, state, ca_mM, e_ca=None) -> {gate: (x_inf, tau_ms)}`` (``e_ca``, the Ca²⁺ reversal
in mV, matters only to the SLO complexes' nanodomain; None means the library's 60 mV) and an
open-fraction function ``open(state) -> o``. ``state`` maps ``"<channel>.<gate>"`` to arrays,
so one function serves one cell or a whole network of cells (any batch shape).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import jax.numpy as jnp

__all__ = [
    "CHANNELS",
    "CHANNEL_GENES",
    "NICOLETTI_2019",
    "NICOLETTI_2024",
    "REVERSAL_mV",
    "Channel",
    "ca_nanodomain_uM",
    "channel",
    "channels_of_gene",
]

NICOLETTI_2019 = (
    "Nicoletti M, Loppini A, Chiodo L, Folli V, Ruocco G, Filippi S (2019) Biophysical modeling "
    "of C. elegans neurons: single ion currents and whole-cell dynamics of AWCon and RMD. "
    "PLoS ONE 14(7): e0218738 (parameters from openworm/NicolettiEtAl2019_NeuronModels AWC.ode, "
    "RMD.ode)"
)

NICOLETTI_2024 = (
    "Nicoletti M, Chiodo L, Loppini A, Liu Q, Folli V, Ruocco G, Filippi S (2024) Biophysical "
    "modeling of the whole-cell dynamics of C. elegans motor and interneurons families. PLoS ONE "
    "19(3): e0298105 (NEURON files of martinanicoletti92/CelegansInterMotorNeuronsModels)"
)

#: Reversal potentials (mV) of AWC.ode and RMD.ode (identical in both).
REVERSAL_mV = {"K": -80.0, "Ca": 60.0, "leak": -80.0, "NCA": 30.0}


def _sig(x):
    """Logistic 1/(1 + e^(−x)), written with exp of the argument as the scripts do."""
    return 1.0 / (1.0 + jnp.exp(-x))


@dataclasses.dataclass(frozen=True)
class Channel:
    """One current of the library (see the module docstring)."""

    name: str
    genes: tuple[str, ...]
    ion: str
    gates: tuple[str, ...]
    rates: Callable
    open: Callable
    description: str
    requires: tuple[str, ...] = ()
    variant_of: str | None = None
    source: str = NICOLETTI_2019

    def keys(self) -> tuple[str, ...]:
        """State keys of this channel's gates, ``"<name>.<gate>"``."""
        return tuple(f"{self.name}.{g}" for g in self.gates)


# -- voltage-gated K⁺ channels ----------------------------------------------------------------
def _shl1(v, s, ca, e_ca=None):
    # Kv4/Shal A-type; m³(0.7 hf + 0.3 hs); every τ scaled by cshal = 0.1
    m_inf = _sig((v - 11.2 + 18.0) / 14.1)
    tau_m = 0.1 * (
        13.8 / (jnp.exp(-(v + 17.5165) / 12.9213) + jnp.exp((v + 3.7082) / 6.4876)) + 1.8849
    )
    h_inf = _sig(-(v + 33.1 + 18.0) / 8.3)
    tau_hf = 0.1 * (539.1584 * _sig(-(v + 28.1990) / 4.9199) + 27.2811)
    tau_hs = 0.1 * (8422.0 * _sig(-(v + 37.7391) / 6.3785) + 118.8983)
    return {"m": (m_inf, tau_m), "hf": (h_inf, tau_hf), "hs": (h_inf, tau_hs)}


def _shl1_2024(v, s, ca, e_ca=None):
    # 2024 variant (shl1.mod of Nicoletti et al. 2024): m¹, 0.8 fast, τm/2, τhf/3, τhs unscaled
    m_inf = _sig((v - 10.26 + 10.0) / 16.25)
    tau_m = (13.8 / (jnp.exp(-(v + 40.0) / 12.9213) + jnp.exp((v + 40.0) / 6.4876)) + 1.8849) / 2
    h_inf = _sig(-(v + 40.0 + 10.0) / 8.3)
    tau_hf = (539.1584 * _sig(-(v + 60.0) / 4.9199) + 27.2811) / 3.0
    tau_hs = 8422.0 * _sig(-(v + 60.0) / 6.3785) + 118.8983
    return {"m": (m_inf, tau_m), "hf": (h_inf, tau_hf), "hs": (h_inf, tau_hs)}


def _unc103(v, s, ca, e_ca=None):
    # ERG-type (unc103.mod of Nicoletti et al. 2024); both τ are products of two terms
    m_inf = _sig((v + 15.1) / 7.85)
    h_inf = _sig(-(v + 48.0) / 28.0)
    tau_m = (87.4088 * _sig(-(v + 28.3339) / 13.0998) + 0.2562) * (
        87.4088 * _sig((v + 28.3339) / 13.0998) + 0.2562
    )
    tau_h = (8.1559 * _sig(-(v + 25.2890) / 29.5074) + 0.2300) * (
        8.1559 * _sig((v + 25.2890) / 29.5074) + 0.2300
    )
    return {"m": (m_inf, tau_m), "h": (h_inf, tau_h)}


def _kvs1(v, s, ca, e_ca=None):
    m_inf = _sig((v - 57.1 + 30.0) / 25.0)
    tau_m = (30.0 * _sig(-(v - 18.1232) / 20.0) + 1.0) / 10.0
    h_inf = _sig(-(v - 47.3 + 30.0) / 11.1)
    tau_h = 0.1 * (88.4715 * _sig(-(v - 50.0) / 15.0) + 53.4060)
    return {"m": (m_inf, tau_m), "h": (h_inf, tau_h)}


def _shk1(v, s, ca, e_ca=None):
    # Kv1/Shaker; slow inactivation with a constant 1.4 s time constant
    m_inf = _sig((v - 20.4) / 7.7)
    x = v + 33.741611800716130
    tau_m = (
        26.571450568169027 / (jnp.exp(-x / 15.364937728953288) + jnp.exp(x / 15.757936311607475))
        + 1.990037272604829
    )
    h_inf = _sig(-(v + 6.95) / 5.8)
    return {"m": (m_inf, tau_m), "h": (h_inf, jnp.full_like(v, 1400.0))}


def _shk1_2024(v, s, ca, e_ca=None):
    # 2024 variant (shk1.mod): activation from Liu et al. 2018 (V½ 2 mV, slope 10 mV)
    out = _shk1(v, s, ca)
    out["m"] = (_sig((v - 2.0) / 10.0), out["m"][1])
    return out


def _kqt3(v, s, ca, e_ca=None):
    # KCNQ; (0.3 mf + 0.7 ms)·w·s, the slow-τ terms are base-10 powers
    m_inf = _sig((v + 12.6726 + 10.0) / 15.8008)
    tau_mf = 0.1 * 395.3 / (1.0 + ((v + 38.1) / 33.59) ** 2)
    tau_ms = 0.1 * (
        5503.0
        - 5345.4 / (1.0 + 10.0 ** (-0.02827 * (-23.9 - v)))
        - 4590.6 / (1.0 + 10.0 ** (-0.0357 * (v + 14.15)))
    )
    w_inf = 0.49 + 0.51 * _sig(-(v + 1.084) / 28.78)
    tau_w = 0.1 * (5.44 + 29.2 / (1.0 + ((v + 48.09) / 48.83) ** 2))
    s_inf = 0.34 + 0.66 * _sig(-(v + 45.3) / 12.3)
    return {
        "mf": (m_inf, tau_mf),
        "ms": (m_inf, tau_ms),
        "w": (w_inf, tau_w),
        "s": (s_inf, jnp.full_like(v, 500.0)),
    }


def _kqt1(v, s, ca, e_ca=None):
    # KCNQ1-type (kqt1.mod of Nicoletti et al. 2024); m·s, s∞ is the sum of two sigmoids
    m_inf = _sig((v + 17.6053) / 9.5843)
    tau_m = 895.9 * _sig((v + 18.01) / 31.04) + 10.0
    s_inf = 0.41 * _sig(-(v + 86.84) / 15.05) + 0.59 * _sig(-(v - 70.13) / 13.37)
    tau_s = 1077.0 + 185845.0 / (1.0 + ((v - 39.44) / 7.34) ** 2)
    return {"m": (m_inf, tau_m), "s": (s_inf, tau_s)}


def _egl2(v, s, ca, e_ca=None):
    # EAG
    m_inf = _sig((v + 6.8594) / 14.9131)
    tau_m = 0.5 * (16.78 * _sig(-(v + 122.5682) / 13.7976) + 8.0969)
    return {"m": (m_inf, tau_m)}


def _egl36(v, s, ca, e_ca=None):
    # Kv3/Shaw; three activation gates with constant τ, weights 0.31/0.36/0.39 as published
    m_inf = _sig((v - 63.0) / 28.5)
    return {g: (m_inf, jnp.full_like(v, t)) for g, t in (("m1", 355.0), ("m2", 63.0), ("m3", 13.0))}


def _irk(v, s, ca, e_ca=None):
    # inward rectifier: m∞ falls with V (the +30 mV shift is in the scripts)
    m_inf = _sig(-(v + 52.0 + 30.0) / 13.0)
    tau_m = (
        17.0752 / (jnp.exp(-(v + 17.8258) / 20.3154) + jnp.exp((v + 43.4414) / 11.1691)) + 3.8329
    )
    return {"m": (m_inf, tau_m)}


# -- voltage-gated Ca²⁺ channels --------------------------------------------------------------
def _egl19(v, s, ca, e_ca=None):
    # L-type; h∞ is U-shaped and may exceed 1 far from rest (as published)
    m_inf = _sig((v - 5.6 + 10.0) / 7.5)
    tau_m = (
        2.3359
        + 2.9324 * jnp.exp(-(((v - 5.2357 + 10.0) / 6.0) ** 2))
        + 1.8739 * jnp.exp(-(((v - 1.3930 + 10.0) / 30.0) ** 2))
    )
    h_inf = (1.4314 * _sig((v - 24.8573 + 10.0) / 11.9541) + 0.1427) * (
        5.9589 * _sig(-(v + 10.5428 + 10.0) / 8.0552) + 0.6038
    )
    tau_h = 0.4 * (
        0.55 * 81.1179 * _sig(-(v + 22.9723 + 10.0) / 5.0)
        + 43.0937
        + 0.9 * 40.4885 * _sig(-(v - 28.7251 + 10.0) / 3.7125)
    )
    return {"m": (m_inf, tau_m), "h": (h_inf, tau_h)}


def _unc2(v, s, ca, e_ca=None):
    # P/Q-type
    m_inf = _sig((v + 12.17 + 25.0) / 3.97)
    x = v + 8.1761 + 30.0
    tau_m = 3.0 * (1.4969 / (jnp.exp(-x / 9.0753) + jnp.exp(x / 15.3456)) + 0.1029)
    h_inf = _sig(-(v + 52.47 + 25.0) / 5.6)
    tau_h = 1.7 * (
        83.8037 * _sig(-(v - 52.8997 + 30.0) / 3.4557)
        + 72.0995 * _sig((v - 23.9009 + 30.0) / 3.5903)
    )
    return {"m": (m_inf, tau_m), "h": (h_inf, tau_h)}


def _cca1(v, s, ca, e_ca=None):
    # T-type; m²h
    m_inf = _sig((v + 42.65 + 15.0) / (1.7 * 1.4))
    tau_m = 0.5 * (40.0 * _sig((v + 62.5393 + 30.0) / (-12.4758 * 1.7)) + 0.6947)
    h_inf = _sig(-(v + 58.0 + 15.0) / (7.0 * 1.15))
    tau_h = 0.08 * (280.0 * _sig(-(v + 60.7312 + 15.0) / (8.5224 * 1.1)) + 19.7456)
    return {"m": (m_inf, tau_m), "h": (h_inf, tau_h)}


# -- Ca²⁺ nanodomain and the SLO complexes -------------------------------------------------------
_NANO = {"r_m": 13e-9, "d_m2_per_s": 250e-12, "faraday": 96485.0, "kb": 500e6, "b": 30e-6,
         "background_uM": 0.05, "g_single_S": 40e-12}  # fmt: skip


def ca_nanodomain_uM(v, e_ca=None):
    r"""Ca²⁺ (µM) at the mouth of an open Ca²⁺ channel at potential ``v`` (mV).

    ``e_ca`` is the Ca²⁺ reversal (mV; default the library's 60 mV).

    Steady-state point-source diffusion with buffering (Nicoletti et al. 2019, S1 File):
    :math:`|g_{sc}(V-E_{Ca})| / (8\pi r D F)\, e^{-r/\sqrt{D/(k_b B)}}` plus a 0.05 µM background.
    """
    p = _NANO
    e_ca = REVERSAL_mV["Ca"] if e_ca is None else e_ca
    flux = jnp.abs(p["g_single_S"] * (v - e_ca) * 1e-3)
    length = math.sqrt(p["d_m2_per_s"] / (p["kb"] * p["b"]))
    decay = math.exp(-p["r_m"] / length)
    scale = 1.0 / (8.0 * math.pi * p["r_m"] * p["d_m2_per_s"] * p["faraday"])
    return flux * scale * decay * 1e3 + p["background_uM"]


# SLO rate parameters (wom, wyx, kyx, nyx, wop, wxy, kxy, nxy), GA-fitted in the 2019 scripts
_SLO = {
    "slo1": (3.152961, 0.012643, 34.338784, 0.000100, 0.156217, -0.027527, 55.726816, 1.299198),
    "slo2": (0.896395, 0.019405, 3294.553404, 0.000010, 0.026719, -0.024123, 93.449423, 1.835067),
}


def _slo_complex(slo: str, partner: str) -> Callable:
    wom, wyx, kyx, nyx, wop, wxy, kxy, nxy = _SLO[slo]
    partner_rates = {"egl19": _egl19, "unc2": _unc2}[partner]

    def rates(v, s, ca, e_ca=None):
        m_inf_x, tau_x = partner_rates(v, s, ca)["m"]
        alpha = m_inf_x / tau_x
        beta = 1.0 / tau_x - alpha
        cao = ca_nanodomain_uM(v, e_ca)
        cac = _NANO["background_uM"]
        kcm = wom * jnp.exp(-wyx * v) / (1.0 + (cac / kyx) ** nyx)
        kom = wom * jnp.exp(-wyx * v) / (1.0 + (cao / kyx) ** nyx)
        kop = wop * jnp.exp(-wxy * v) / (1.0 + (kxy / cao) ** nxy)
        den = (kop + kom) * (kcm + alpha) + beta * kcm
        m_x = s[f"{partner}.m"]
        return {"m": (m_x * kop * (alpha + beta + kcm) / den, (alpha + beta + kcm) / den)}

    return rates


# SLO-1 rate parameters of the 2024 files: kxy 55.726186 where the 2019 scripts have 55.726816
_SLO_2024 = {"slo1": _SLO["slo1"][:6] + (55.726186, _SLO["slo1"][7]), "slo2": _SLO["slo2"]}


def _slo_bulk(slo: str) -> Callable:
    """Return the rates of a SLO channel gated by bulk Ca²⁺ (slo1iso/slo2iso.mod, 2024)."""
    wom, wyx, kyx, nyx, wop, wxy, kxy, nxy = _SLO_2024[slo]
    s0 = 1.0 / (wyx - wxy)

    def rates(v, s, ca, e_ca=None):
        ca_uM = ca * 1e3
        high = 1.0 + (kxy / ca_uM) ** nxy
        v0 = s0 * (math.log(wom / wop) + jnp.log(high) - jnp.log(1.0 + (ca_uM / kyx) ** nyx))
        m_inf = _sig((v - v0) / s0)
        return {"m": (m_inf, jnp.exp(wxy * v) / wop * high * m_inf)}

    return rates


def _kcnl(v, s, ca, e_ca=None):
    # SK-type, activated by bulk Ca²⁺ (half activation 0.33 µM), τ 6.3 ms
    return {"m": (ca / (0.00033 + ca), jnp.full_like(v, 6.3))}


def _none(v, s, ca, e_ca=None):
    return {}


def _one(s):
    return 1.0


_DEFS = (
    ("shl1", ("shl-1",), "K", ("m", "hf", "hs"), _shl1,
     lambda s: s["shl1.m"] ** 3 * (0.7 * s["shl1.hf"] + 0.3 * s["shl1.hs"]),
     "SHL-1 Kv4 (A-type) K+ current"),
    ("shl1_2024", ("shl-1",), "K", ("m", "hf", "hs"), _shl1_2024,
     lambda s: s["shl1_2024.m"] * (0.8 * s["shl1_2024.hf"] + 0.2 * s["shl1_2024.hs"]),
     "SHL-1 Kv4 current, 2024 kinetics (Nicoletti et al. 2024)", (), "shl1"),
    ("shk1_2024", ("shk-1",), "K", ("m", "h"), _shk1_2024,
     lambda s: s["shk1_2024.m"] * s["shk1_2024.h"],
     "SHK-1 Kv1 current, 2024 kinetics (Nicoletti et al. 2024)", (), "shk1"),
    ("unc103", ("unc-103",), "K", ("m", "h"), _unc103,
     lambda s: s["unc103.m"] * s["unc103.h"], "UNC-103 ERG K+ current (Nicoletti et al. 2024)"),
    ("kvs1", ("kvs-1", "kvs-2"), "K", ("m", "h"), _kvs1,
     lambda s: s["kvs1.m"] * s["kvs1.h"], "KVS-1 K+ current (kvs-2 shares its kinetics)"),
    ("shk1", ("shk-1",), "K", ("m", "h"), _shk1,
     lambda s: s["shk1.m"] * s["shk1.h"], "SHK-1 Kv1 (Shaker) K+ current"),
    ("kqt3", ("kqt-3", "kqt-1", "kqt-2"), "K", ("mf", "ms", "w", "s"), _kqt3,
     lambda s: (0.3 * s["kqt3.mf"] + 0.7 * s["kqt3.ms"]) * s["kqt3.w"] * s["kqt3.s"],
     "KQT-3 KCNQ K+ current (kqt-1, kqt-2 share its kinetics)"),
    ("kqt1", ("kqt-1",), "K", ("m", "s"), _kqt1, lambda s: s["kqt1.m"] * s["kqt1.s"],
     "KQT-1 KCNQ K+ current, its own kinetics (Nicoletti et al. 2024)", (), "kqt3"),
    ("egl2", ("egl-2",), "K", ("m",), _egl2, lambda s: s["egl2.m"], "EGL-2 EAG K+ current"),
    ("egl36", ("egl-36", "shw-3"), "K", ("m1", "m2", "m3"), _egl36,
     lambda s: 0.31 * s["egl36.m1"] + 0.36 * s["egl36.m2"] + 0.39 * s["egl36.m3"],
     "EGL-36 Kv3 (Shaw) K+ current (shw-3 shares its kinetics)"),
    ("irk", ("irk-1", "irk-2", "irk-3"), "K", ("m",), _irk, lambda s: s["irk.m"],
     "IRK inward-rectifier K+ current (IRK-1/3 in Nicoletti et al. 2019 Fig 1; irk-2 shares it)"),
    ("egl19", ("egl-19",), "Ca", ("m", "h"), _egl19,
     lambda s: s["egl19.m"] * s["egl19.h"], "EGL-19 L-type Ca2+ current"),
    ("unc2", ("unc-2",), "Ca", ("m", "h"), _unc2,
     lambda s: s["unc2.m"] * s["unc2.h"], "UNC-2 P/Q-type Ca2+ current"),
    ("cca1", ("cca-1",), "Ca", ("m", "h"), _cca1,
     lambda s: s["cca1.m"] ** 2 * s["cca1.h"], "CCA-1 T-type Ca2+ current"),
    ("slo1_egl19", ("slo-1",), "K", ("m",), _slo_complex("slo1", "egl19"),
     lambda s: s["slo1_egl19.m"] * s["egl19.h"], "SLO-1 BK current fed by EGL-19", ("egl-19",)),
    ("slo1_unc2", ("slo-1",), "K", ("m",), _slo_complex("slo1", "unc2"),
     lambda s: s["slo1_unc2.m"] * s["unc2.h"], "SLO-1 BK current fed by UNC-2", ("unc-2",)),
    ("slo2_egl19", ("slo-2",), "K", ("m",), _slo_complex("slo2", "egl19"),
     lambda s: s["slo2_egl19.m"] * s["egl19.h"], "SLO-2 current fed by EGL-19", ("egl-19",)),
    ("slo2_unc2", ("slo-2",), "K", ("m",), _slo_complex("slo2", "unc2"),
     lambda s: s["slo2_unc2.m"] * s["unc2.h"], "SLO-2 current fed by UNC-2", ("unc-2",)),
    ("slo1_iso", ("slo-1",), "K", ("m",), _slo_bulk("slo1"), lambda s: s["slo1_iso.m"],
     "SLO-1 BK current gated by bulk Ca2+ (Nicoletti et al. 2024)", (), "slo1_egl19"),
    ("slo2_iso", ("slo-2",), "K", ("m",), _slo_bulk("slo2"), lambda s: s["slo2_iso.m"],
     "SLO-2 current gated by bulk Ca2+ (Nicoletti et al. 2024)", (), "slo2_egl19"),
    ("kcnl", ("kcnl-1", "kcnl-2", "kcnl-3", "kcnl-4"), "K", ("m",), _kcnl,
     lambda s: s["kcnl.m"], "KCNL SK-type Ca2+-activated K+ current (kcnl-1/4)"),
    ("nca", ("unc-77", "nca-2"), "NCA", (), _none, _one,
     "NCA Na+ leak (NALCN: unc-77/nca-1 and nca-2; the scripts name no gene)"),
    ("k2p", ("twk-18", "twk-7", "twk-40", "unc-58", "egl-23"), "K", (), _none, _one,
     "K2P (TWK) background K+ current, passive (no gating)"),
    ("leak", (), "leak", (), _none, _one, "passive leak (no gene)"),
)  # fmt: skip

#: The library, keyed by channel name.
CHANNELS: Mapping[str, Channel] = {
    d[0]: Channel(
        *d[:6],
        description=d[6],
        requires=d[7] if len(d) > 7 else (),
        variant_of=d[8] if len(d) > 8 else None,
        source=NICOLETTI_2024 if len(d) > 8 or d[0] == "unc103" else NICOLETTI_2019,
    )
    for d in _DEFS
}

#: Every gene some channel needs.
CHANNEL_GENES: tuple[str, ...] = tuple(
    sorted({g for c in CHANNELS.values() for g in c.genes + c.requires})
)


def channel(name: str) -> Channel:
    """Return the library channel ``name`` (did-you-mean error if unknown)."""
    from .._errors import UnknownNameError

    if name not in CHANNELS:
        raise UnknownNameError("channel", name, CHANNELS)
    return CHANNELS[name]


def channels_of_gene(gene: str) -> tuple[str, ...]:
    """Return the channels that need ``gene`` (empty when the library has no model of it).

    That is every channel whose pore ``genes`` include it (a family entry such as IRK,
    irk-1/irk-3, is made by any member) and every complex that ``requires`` it (a SLO current
    needs its Ca²⁺-channel partner).
    """
    return tuple(n for n, c in CHANNELS.items() if gene in c.genes or gene in c.requires)
