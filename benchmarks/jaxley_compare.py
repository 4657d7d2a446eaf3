"""Why digiworm steps its conductance models itself: the same cells in Jaxley, side by side.

Jaxley (differentiable, GPU-ready multi-compartment simulator) is the field's library the
issue asks us to build on unless a measured reason says otherwise. This script runs the same
equations — the AWCon model of Nicoletti et al. 2019, all 16 currents and the Ca²⁺ pool, using
digiworm's channel-library rate functions inside one Jaxley ``Channel`` (Jaxley gives a
channel only its own states, and the SLO currents read their Ca²⁺ partner's gates) — in

* Jaxley 0.14 (``jx.integrate``: exponential-Euler gates, implicit voltage), and
* digiworm (``ConductanceCell.step``: Rush–Larsen gates, backward-Euler voltage),

and reports, for a single cell (the published 20 pA, 500 ms step) and for 302 uncoupled
copies (each a cell of a network of single compartments, the shape of the whole worm):
accuracy against scipy Radau (rtol 1e-9) and wall time per simulated second after
compilation. Coupling is not included: Jaxley 0.14 has no gap-junction type (a gap junction
would be two custom synapses) and no way to add the peptide layer; those are the other
reasons listed in the issue note.

    pip install ".[bench]" && python benchmarks/jaxley_compare.py [--out ...]

Needs Jaxley; without it the script stops and says so. ``--smoke`` runs every row at tiny sizes
(300 ms simulated, the step starting at 200 ms; 8 copies instead of 302): a check that it
works, not a measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AREA_UM2 = 100.0  # any area: densities are g / area, capacitance C / area


def _jaxley_channel(ref):
    import jax.numpy as jnp
    import jaxley as jx

    from digiworm.models._channels import CHANNELS, REVERSAL_mV

    cell = ref.cell()
    chans = cell.channels
    keys = cell.gate_keys()
    to_density = 1e-9 / (AREA_UM2 * 1e-8)  # nS -> S/cm²

    class NicolettiCell(jx.channels.Channel):
        def __init__(self, name=None):
            self.current_is_in_mA_per_cm2 = True
            super().__init__(name)
            self.channel_params = {}
            steady = cell.steady_state(-70.0)
            self.channel_states = {k.replace(".", "_"): float(steady.gates[k][0]) for k in keys}
            self.channel_states["ca_mM"] = float(steady.ca_mM[0])
            self.current_name = "i_nicoletti"

        def _gates(self, states):
            return {k: states[k.replace(".", "_")] for k in keys}

        def update_states(self, states, dt, v, params):
            gates = self._gates(states)
            ca = states["ca_mM"]
            rates = cell.rates(v, gates, ca)
            new = {
                k: inf + (gates[k] - inf) * jnp.exp(-dt / tau) for k, (inf, tau) in rates.items()
            }
            g = cell.conductances(new)
            i_ca = sum(g[c][0] * (v - REVERSAL_mV["Ca"]) for c in chans if CHANNELS[c].ion == "Ca")
            ca_inf = cell.ca_rest_mM + cell.ca_tau_ms * cell._ca_influx(i_ca)[0]
            out = {k.replace(".", "_"): val for k, val in new.items()}
            out["ca_mM"] = ca_inf + (ca - ca_inf) * jnp.exp(-dt / cell.ca_tau_ms)
            return out

        def compute_current(self, states, v, params):
            g = cell.conductances(self._gates(states))
            i = sum(
                g[c][0]
                * (
                    v - cell.reversal_mV(c)[0]
                    if CHANNELS[c].ion == "leak"
                    else v - REVERSAL_mV[CHANNELS[c].ion]
                )
                for c in chans
            )
            return i * to_density  # (nS → S/cm²) × mV = mA/cm²

        def init_state(self, states, v, params, delta_t):
            return {}

    return NicolettiCell


def run(n_cells: int, total_ms: float, dt_ms: float):
    import jax
    import jaxley as jx

    from digiworm.models import reference_cell
    from digiworm.simulate import current_clamp

    ref = reference_cell("AWCon")
    channel = _jaxley_channel(ref)()
    radius = 1.0
    length = AREA_UM2 / (2 * np.pi * radius)
    comp = jx.Compartment()
    module = (
        jx.Network([jx.Cell(jx.Branch(comp, ncomp=1), parents=[-1]) for _ in range(n_cells)])
        if n_cells > 1
        else comp
    )
    module.insert(channel)
    module.set("radius", radius)
    module.set("length", length)
    module.set("capacitance", 100.0 * ref.c_pF / AREA_UM2)  # µF/cm² (1 pF/µm² = 100 µF/cm²)
    module.set("v", -70.0)
    module.init_states()
    stim = jx.step_current(ref.onset_ms, ref.duration_ms, 0.020, dt_ms, total_ms)  # 20 pA in nA
    if n_cells > 1:
        module.cell("all").branch(0).comp(0).stimulate(stim)
        module.cell("all").branch(0).comp(0).record("v", verbose=False)
    else:
        module.stimulate(stim)
        module.record("v", verbose=False)
    sim = jax.jit(lambda: jx.integrate(module, delta_t=dt_ms))
    t0 = time.perf_counter()
    v_jx = np.asarray(sim().block_until_ready())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    v_jx = np.asarray(sim().block_until_ready())
    jx_s = time.perf_counter() - t0

    cell = ref.cell()
    if n_cells > 1:
        from digiworm.models import cell_from_conductances

        cell = cell_from_conductances(
            tuple(f"c{k}" for k in range(n_cells)), ref.g_nS, c_pF=ref.c_pF, vol_um3=ref.vol_um3
        )
    rest = cell.steady_state(-70.0)
    kw = dict(
        onset_ms=ref.onset_ms,
        duration_ms=ref.duration_ms,
        total_ms=total_ms,
        dt_ms=dt_ms,
        save_dt_ms=dt_ms,
        rest=rest,
    )
    current_clamp(cell, [20.0], **kw)  # compile
    t0 = time.perf_counter()
    ds = current_clamp(cell, [20.0], **kw)
    dw_s = time.perf_counter() - t0
    v_dw = ds.v_mV.values[0, :, 0]
    return {
        "jaxley_s": jx_s,
        "jaxley_first_s": first,
        "digiworm_s": dw_s,
        "v_jaxley": v_jx[0, 1 : len(v_dw) + 1],
        "v_digiworm": v_dw,
        "t_ms": ds.time_ms.values,
    }


def reference(total_ms: float, t_eval):
    from digiworm.models import reference_cell
    from digiworm.simulate import reference_solution

    ref = reference_cell("AWCon")
    cell = ref.cell()
    edges = sorted({e for e in (0.0, ref.onset_ms, ref.onset_ms + ref.duration_ms) if e < total_ms})
    edges.append(total_ms)
    segments = [(lo, hi, [20.0 if lo == ref.onset_ms else 0.0]) for lo, hi in zip(edges, edges[1:])]
    return reference_solution(cell.vector_field, cell.steady_state(-70.0), segments, t_eval)[:, 0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total-ms", type=float, help="simulated ms (800; smoke 300)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "jaxley_compare.json"))
    ap.add_argument("--smoke", action="store_true", help="every row at tiny sizes (seconds)")
    a = ap.parse_args()
    if importlib.util.find_spec("jaxley") is None:
        raise SystemExit('jaxley is not installed: pip install ".[bench]" (nothing to compare)')
    a.total_ms = a.total_ms or (300.0 if a.smoke else 800.0)
    n_network = 8 if a.smoke else 302
    import jax

    jax.config.update("jax_enable_x64", True)  # both tools in float64, as the reference
    rows = []
    for n_cells, dt in ((1, 0.025), (1, 0.1), (n_network, 0.025)):
        r = run(n_cells, a.total_ms, dt)
        row = {
            "n_cells": n_cells,
            "dt_ms": dt,
            "jaxley_s_per_sim_s": r["jaxley_s"] / (a.total_ms / 1e3),
            "digiworm_s_per_sim_s": r["digiworm_s"] / (a.total_ms / 1e3),
            "jaxley_compile_s": r["jaxley_first_s"] - r["jaxley_s"],
        }
        if n_cells == 1:
            v_ref = reference(a.total_ms, r["t_ms"])
            for tool in ("jaxley", "digiworm"):
                row[f"{tool}_rms_mV"] = float(np.sqrt(np.mean((r[f"v_{tool}"] - v_ref) ** 2)))
        row["ratio_jaxley_over_digiworm"] = row["jaxley_s_per_sim_s"] / row["digiworm_s_per_sim_s"]
        rows.append(row)
        print(json.dumps(row))
    import jaxley

    from digiworm._io import atomic_write_json

    atomic_write_json(
        a.out,
        {"jaxley": jaxley.__version__, "smoke": a.smoke, "total_ms": a.total_ms, "rows": rows},
    )
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
