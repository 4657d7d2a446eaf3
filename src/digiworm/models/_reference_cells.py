"""Published single-neuron conductance models (the reference neurons of the channel library).

AWCon and RMD of Nicoletti et al. 2019 and AIY, AVAL, AVAR, RIM, VA5, VB6 and VD5 of Nicoletti
et al. 2024.

Maximal conductances (nS), capacitance (pF) and Ca²⁺ pool volume (µm³) of the AWCon and RMD
models of Nicoletti et al. 2019 (PLoS ONE 14(7): e0218738), transcribed from the authors'
XPPAUT scripts AWC.ode and RMD.ode (openworm/NicolettiEtAl2019_NeuronModels, commit a6e4498;
``docs/research/nicoletti2019_parameters.md`` §2). The SLO names: ``slo1_unc2`` is the
scripts' ``gbk``, ``slo1_egl19`` ``gslo1``, ``slo2_egl19`` ``gbk2``, ``slo2_unc2`` ``gslo2``;
``kcnl`` is their ``gca``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._errors import UnknownNameError
from ._channels import NICOLETTI_2019, NICOLETTI_2024
from ._conductance import ConductanceCell, cell_from_conductances

__all__ = ["REFERENCE_CELLS", "ReferenceCell", "reference_cell"]


@dataclass(frozen=True)
class ReferenceCell:
    """A published single-neuron model: conductances and the protocol it was shown with."""

    name: str
    neuron: str  # canonical atlas id of a neuron it models
    cengen_class: str
    g_nS: dict
    c_pF: float
    vol_um3: float
    e_leak_mV: float
    steps_pA: tuple[float, ...]
    onset_ms: float
    duration_ms: float
    total_ms: float
    extra_pulses: tuple[tuple[float, float, float], ...]  # (pA, onset ms, duration ms)
    protocol_source: str
    source: str
    #: points of the published model's own traces: (pA, ms from recording start, mV), with the
    #: protocol they were recorded under (step onset, V at t = 0: None = at rest)
    trace_points: tuple[tuple[float, float, float], ...] = ()
    trace_onset_ms: float = 0.0
    trace_v0_mV: float | None = None
    trace_source: str = ""
    #: Ca²⁺ pool constants passed to the cell (default: the 2019 pool)
    ca_pool: dict = field(default_factory=dict)
    #: regression values of the published model: (pA, threshold mV, upward crossing times in ms
    #: after step onset) under the reference's own step protocol, and where they come from
    crossings: tuple[tuple[float, float, tuple[float, ...]], ...] = ()
    crossings_source: str = ""

    def cell(self) -> ConductanceCell:
        """Return the model as a one-cell :class:`ConductanceCell`."""
        return cell_from_conductances(
            self.name,
            self.g_nS,
            c_pF=self.c_pF,
            vol_um3=self.vol_um3,
            e_leak_mV=self.e_leak_mV,
            source=self.source,
            **self.ca_pool,
        )


def _c_pF(cm_uF_per_cm2: float, area_um2: float) -> float:
    """Capacitance (pF) of ``area_um2`` of membrane at ``cm_uF_per_cm2``."""
    return 0.01 * cm_uF_per_cm2 * area_um2


def _shell_um3(area_um2: float, depth_um: float = 0.1) -> float:
    """Volume of cadiff.mod's submembrane shell (µm³)."""
    return area_um2 * depth_um


#: cadiff.mod (Nicoletti et al. 2024 motor neurons): every Ca²⁺ ion stays free in the shell,
#: removal at beta = 1/ms towards 0, never below 0.1 µM
_CADIFF = {"ca_fraction": 1.0, "ca_tau_ms": 1.0, "ca_rest_mM": 0.0, "ca_floor_mM": 1e-4,
           "ca_reversal": "nernst"}  # fmt: skip
_NEURON24 = (
    "NEURON 9.0.2 (dt 0.025 ms) running the authors' NMODL files (martinanicoletti92/"
    "CelegansInterMotorNeuronsModels @5d63ff40) under their drivers' protocol (VB6, VD5: the "
    "drivers' step to the end of the record); 1 s-step traces: tests/data/nicoletti2024_neuron.npz"
)
_MN_STEPS = (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0)
_OMV24 = (
    "OpenWorm model-validation test of the authors' driver, openworm/NicolettiEtAl2024_MN_IN tests/"
)

REFERENCE_CELLS = {
    "AWCon": ReferenceCell(
        name="AWCon",
        neuron="AWCR",  # AWC ON in the atlas (awc_state)
        cengen_class="AWC_ON",
        g_nS={
            "shl1": 2.9,
            "kvs1": 0.8,
            "shk1": 0.1,
            "kqt3": 0.55,
            "egl2": 0.85,
            "irk": 0.65,
            "egl19": 1.55,
            "unc2": 1.0,
            "cca1": 0.7,
            "slo1_unc2": 0.11,
            "slo1_egl19": 0.11,
            "slo2_egl19": 0.1,
            "slo2_unc2": 0.1,
            "kcnl": 0.06,
            "leak": 0.27,
            "nca": 0.055,
        },  # fmt: skip
        c_pF=3.1,
        vol_um3=31.16,
        e_leak_mV=-80.0,
        # Fig 4C of the paper as the NeuroML example builds it: 500 ms steps from 200 ms
        steps_pA=(-4.0, 0.0, 4.0, 8.0, 12.0, 16.0, 20.0),
        onset_ms=200.0,
        duration_ms=500.0,
        total_ms=800.0,
        extra_pulses=(),
        protocol_source="Fig4C_AWCon.net.nml (openworm/NicolettiEtAl2019_NeuronModels)",
        source=NICOLETTI_2019,
        # jNeuroML run of the NeuroML export, steps from 100 ms (a revision of Fig 4C)
        trace_points=(
            (0.0, 600.0, -69.180),
            (-4.0, 600.0, -76.714),
            (4.0, 600.0, -51.763),
            (8.0, 600.0, -47.377),
            (12.0, 600.0, -42.972),
            (16.0, 600.0, -38.403),
            (20.0, 600.0, -33.912),
            (16.0, 127.5, -21.348),
            (20.0, 127.0, -16.627),
        ),  # fmt: skip
        trace_onset_ms=100.0,
        trace_source="openworm/NicolettiEtAl2019_NeuronModels XPP_tests/awc_nml_plots.csv "
        "@b18adfc0",
    ),
    "RMD": ReferenceCell(
        name="RMD",
        neuron="RMDL",
        cengen_class="RMD_LR",
        g_nS={
            "shl1": 2.48,
            "shk1": 1.1,
            "egl36": 1.3,
            "irk": 0.2,
            "egl19": 0.99,
            "unc2": 0.9,
            "cca1": 3.1,
            "slo1_unc2": 0.3,
            "slo1_egl19": 0.3,
            "slo2_egl19": 0.3,
            "slo2_unc2": 0.3,
            "kcnl": 0.06,
            "leak": 0.4,
            "nca": 0.05,
        },  # fmt: skip
        c_pF=1.2,
        vol_um3=5.65,
        e_leak_mV=-80.0,
        # Fig 7B: 50 ms steps from 10 ms, then a -15 pA, 20 ms pulse at 110 ms
        steps_pA=(-2.0, 2.0, 6.0, 10.0),
        onset_ms=10.0,
        duration_ms=50.0,
        total_ms=250.0,
        extra_pulses=((-15.0, 110.0, 20.0),),
        protocol_source="Fig7B_RMD.net.nml (openworm/NicolettiEtAl2019_NeuronModels)",
        source=NICOLETTI_2019,
        # jNeuroML run of the NeuroML export, V(0) = −70 mV, the Fig 7B protocol
        trace_points=(
            (-2.0, 110.0, -69.477),
            (2.0, 110.0, -69.502),
            (6.0, 110.0, -46.116),
            (10.0, 110.0, -46.299),
            (6.0, 150.0, -70.164),
            (10.0, 150.0, -70.273),
            (-2.0, 60.0, -73.469),
            (2.0, 60.0, -64.933),
        ),  # fmt: skip
        trace_onset_ms=10.0,
        trace_v0_mV=-70.0,
        trace_source="openworm/NicolettiEtAl2019_NeuronModels XPP_tests/rmd_nml_plots.csv "
        "@b18adfc0",
    ),
    # Nicoletti et al. 2024: conductances (nS), capacitance and leak reversal of the NEURON
    # drivers of martinanicoletti92/CelegansInterMotorNeuronsModels (AVAL_simulations.py
    # @cfa34a95, AVAR_simulation.py @61953ffd, RIM_simulation.py @8292b8e2); pool volumes from
    # the drivers' ``vol`` (no channel of these three cells reads the pool). Protocols: the
    # drivers' step families, from rest.
    "AVAL": ReferenceCell(
        name="AVAL",
        neuron="AVAL",
        cengen_class="AVA",
        g_nS={"egl19": 0.104385, "leak": 0.150164, "irk": 0.1},
        c_pF=9.660,
        vol_um3=129.6,
        e_leak_mV=-39.0,
        steps_pA=(-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0),
        onset_ms=100.0,
        duration_ms=1000.0,
        total_ms=1300.0,
        extra_pulses=(),
        protocol_source="AVAL_simulation_iclamp.py (steps -30..30 pA, 1 s)",
        source=NICOLETTI_2024,
    ),
    "AVAR": ReferenceCell(
        name="AVAR",
        neuron="AVAR",
        cengen_class="AVA",
        g_nS={
            "egl19": 0.0643372,
            "leak": 0.225225,
            "irk": 0.042079,
            "nca": 0.0493356,
            "unc103": 0.0481669,
        },
        c_pF=8.433,
        vol_um3=129.08,
        e_leak_mV=-37.0,
        steps_pA=(-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0),
        onset_ms=100.0,
        duration_ms=1000.0,
        total_ms=1300.0,
        extra_pulses=(),
        protocol_source="as AVAL (the AVAR current-clamp driver is not in the repository)",
        source=NICOLETTI_2024,
    ),
    "RIM": ReferenceCell(
        name="RIM",
        neuron="RIML",
        cengen_class="RIM",
        g_nS={
            "shl1_2024": 0.9351,
            "egl2": 0.1459,
            "irk": 0.3382,
            "cca1": 0.8734,
            "unc2": 0.1000,
            "egl19": 0.3307,
            "leak": 0.1000,
        },
        c_pF=1.550,
        vol_um3=10.94,
        e_leak_mV=-50.0,
        steps_pA=(-15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0),
        onset_ms=100.0,
        duration_ms=5000.0,
        total_ms=5500.0,
        extra_pulses=(),
        protocol_source="RIM_simulation_iclamp.py (steps -15..35 pA, 5 s)",
        source=NICOLETTI_2024,
        crossings=((30.0, 55.0, (185.475,)),),
        crossings_source=_OMV24 + ".test.rim.mep @655ba56a",
    ),
    # AIY (AIY_simulation_iclamp.py @8e1e43ba): no Ca²⁺ accumulation, so SLO-1 "iso" sees
    # NEURON's default [Ca²⁺]i 0.05 µM throughout; the driver's g0[6] is SHL-1 (2024 kinetics).
    # Here and in the motor neurons a mechanism reads [Ca²⁺]i, so NEURON sets E_Ca by Nernst
    # (2 mM outside, 6.3 °C: 127.6 mV at 0.05 µM) and the drivers' ``eca = 60`` has no effect
    "AIY": ReferenceCell(
        name="AIY",
        neuron="AIYL",
        cengen_class="AIY",
        g_nS={
            "leak": 0.14,
            "slo1_iso": 1.0,
            "kqt1": 0.2,
            "egl19": 0.1,
            "slo1_egl19": 0.92,
            "nca": 0.06,
            "shl1_2024": 0.5,
        },
        c_pF=_c_pF(1.6, 65.89),
        vol_um3=7.42,
        e_leak_mV=-89.57,
        steps_pA=(-15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0),
        onset_ms=100.0,
        duration_ms=5000.0,
        total_ms=5500.0,
        extra_pulses=(),
        protocol_source="AIY_simulation_iclamp.py (steps -15..35 pA, 5 s)",
        source=NICOLETTI_2024,
        trace_points=(
            (-15.0, 1500.0, -128.658),
            (-15.0, 5999.0, -128.656),
            (-10.0, 1500.0, -103.605),
            (-10.0, 5999.0, -103.600),
            (-5.0, 1500.0, -78.718),
            (-5.0, 5999.0, -78.719),
            (0.0, 1500.0, -55.223),
            (0.0, 5999.0, -55.201),
            (5.0, 1500.0, -32.987),
            (5.0, 5999.0, -33.396),
            (10.0, 1500.0, -14.698),
            (10.0, 5999.0, -17.415),
            (15.0, 1500.0, 2.774),
            (15.0, 5999.0, -5.131),
            (20.0, 1500.0, 13.534),
            (20.0, 5999.0, 5.307),
            (25.0, 1500.0, 20.515),
            (25.0, 5999.0, 13.436),
            (30.0, 1500.0, 25.815),
            (30.0, 5999.0, 19.598),
            (35.0, 1500.0, 30.231),
            (35.0, 5999.0, 24.550),
        ),  # fmt: skip
        trace_onset_ms=1000.0,
        trace_v0_mV=-60.0,
        trace_source=_NEURON24,
        ca_pool={"ca_fraction": 0.0, "ca_reversal": "nernst"},
    ),
    # The motor neurons (VA5_simulation.py @6eed51ab, VB6_simulation.py @a6f35962,
    # VD5_simulations.py @c9c67195; iclamp drivers @9078dd1c, @f9332f7c, @5b0db84c): SLO
    # "iso" currents read the submembrane shell of cadiff.mod (0.1 µm deep, 1 ms, floor 0.1 µM)
    "VA5": ReferenceCell(
        name="VA5",
        neuron="VA5",
        cengen_class="VA",
        g_nS={
            "slo2_egl19": 3.0,
            "slo2_iso": 3.0,
            "egl19": 0.15,
            "irk": 1.0,
            "shk1_2024": 0.1,
            "nca": 0.01,
            "leak": 0.1,
        },
        c_pF=_c_pF(1.5, 389.3),
        vol_um3=_shell_um3(389.3),
        e_leak_mV=-70.0,
        steps_pA=_MN_STEPS,
        onset_ms=100.0,
        duration_ms=1000.0,
        total_ms=1300.0,
        extra_pulses=(),
        protocol_source="VA5_simulation_iclamp.py (steps -30..30 pA, 1 s)",
        source=NICOLETTI_2024,
        trace_points=(
            (-30.0, 300.0, -108.129),
            (-30.0, 1099.0, -108.129),
            (-20.0, 300.0, -99.745),
            (-20.0, 1099.0, -99.745),
            (-10.0, 300.0, -90.328),
            (-10.0, 1099.0, -90.328),
            (0.0, 300.0, -75.725),
            (0.0, 1099.0, -75.725),
            (10.0, 300.0, 0.562),
            (10.0, 1099.0, 2.744),
            (20.0, 300.0, 12.300),
            (20.0, 1099.0, 14.472),
            (30.0, 300.0, 19.282),
            (30.0, 1099.0, 21.142),
        ),  # fmt: skip
        trace_onset_ms=100.0,
        trace_source=_NEURON24,
        ca_pool=_CADIFF,
        crossings=((30.0, 20.0, (28.8, 457.5)),),
        crossings_source=_OMV24 + ".test.va5.mep @3918dea3",
    ),
    "VB6": ReferenceCell(
        name="VB6",
        neuron="VB6",
        cengen_class="VB",
        g_nS={
            "slo1_egl19": 0.2,
            "slo2_egl19": 1.75,
            "slo1_unc2": 1.0,
            "slo2_unc2": 1.0,
            "slo1_iso": 1.0,
            "slo2_iso": 2.0,
            "egl19": 0.1,
            "unc2": 0.1,
            "irk": 1.0,
            "shk1_2024": 0.4,
            "nca": 0.03,
            "leak": 0.13,
        },
        c_pF=_c_pF(1.5, 524.64),
        vol_um3=_shell_um3(524.64),
        e_leak_mV=-52.0,
        steps_pA=_MN_STEPS,
        onset_ms=100.0,
        duration_ms=5000.0,  # the driver's default: the step outlasts the record
        total_ms=2000.0,
        extra_pulses=(),
        protocol_source="VB6_simulation_iclamp.py (steps -30..30 pA from 100 ms to the end; "
        "cca1 g = 0)",
        source=NICOLETTI_2024,
        trace_points=(
            (-30.0, 300.0, -103.157),
            (-30.0, 1999.0, -103.157),
            (-20.0, 300.0, -94.725),
            (-20.0, 1999.0, -94.725),
            (-10.0, 300.0, -84.340),
            (-10.0, 1999.0, -84.340),
            (0.0, 300.0, -53.194),
            (0.0, 1999.0, -53.194),
            (10.0, 300.0, -9.312),
            (10.0, 1999.0, -5.865),
            (20.0, 300.0, 1.146),
            (20.0, 1999.0, 11.697),
            (30.0, 300.0, 8.587),
            (30.0, 1999.0, 21.039),
        ),  # fmt: skip
        trace_onset_ms=100.0,
        trace_source=_NEURON24,
        ca_pool=_CADIFF,
        crossings=((30.0, 8.0, (22.125, 137.6)),),
        crossings_source=_OMV24 + ".test.vb6.mep @c6df9c7c",
    ),
    "VD5": ReferenceCell(
        name="VD5",
        neuron="VD5",
        cengen_class="VD",
        g_nS={
            "slo2_egl19": 1.7,
            "slo2_iso": 1.7,
            "egl19": 0.9,
            "cca1": 0.1,
            "irk": 0.7,
            "shk1_2024": 1.2,
            "nca": 0.09,
            "leak": 0.2,
        },
        c_pF=_c_pF(1.0, 351.53),
        vol_um3=_shell_um3(351.53),
        e_leak_mV=-75.0,
        steps_pA=_MN_STEPS,
        onset_ms=100.0,
        duration_ms=5000.0,  # the driver's default: the step outlasts the record
        total_ms=2000.0,
        extra_pulses=(),
        protocol_source="VD5_simulation_iclamp.py (steps -30..30 pA from 100 ms to the end)",
        source=NICOLETTI_2024,
        trace_points=(
            (-30.0, 300.0, -102.039),
            (-30.0, 1999.0, -102.039),
            (-20.0, 300.0, -91.864),
            (-20.0, 1999.0, -91.864),
            (-10.0, 300.0, -78.468),
            (-10.0, 1999.0, -78.468),
            (0.0, 300.0, -44.607),
            (0.0, 1999.0, -44.607),
            (10.0, 300.0, -13.508),
            (10.0, 1999.0, -10.258),
            (20.0, 300.0, -5.769),
            (20.0, 1999.0, 5.911),
            (30.0, 300.0, -0.790),
            (30.0, 1999.0, 18.281),
        ),  # fmt: skip
        trace_onset_ms=100.0,
        trace_source=_NEURON24,
        ca_pool=_CADIFF,
        crossings=((30.0, 5.0, (7.725, 853.0)),),
        crossings_source=_OMV24 + ".test.vd5.mep @c6df9c7c",
    ),
}


def reference_cell(name: str) -> ReferenceCell:
    """Return the published model ``name`` (e.g. AWCon, RMD, VA5); did-you-mean if not."""
    if name not in REFERENCE_CELLS:
        raise UnknownNameError("reference neuron model", name, REFERENCE_CELLS)
    return REFERENCE_CELLS[name]
