#!/usr/bin/env python
"""c302 parameter-set C2 reference probe (offline): generate -> jNeuroML NEURON export -> nrnivmodl -> run.

Purpose
-------
Produce reference membrane-potential traces from the *original* c302 C2 model, simulated in NEURON,
that digiworm tests can compare against (see docs/research/c302_C2.md for the equations).

Tested with (2 CPU box, offline):
    c302 0.12.1, cect 0.3.5, pyNeuroML 1.3.22 (ships jNeuroML-0.14.0-jar-with-dependencies.jar),
    libNeuroML 0.6.7, neuron 9.0.2 (pip wheel; provides `nrnivmodl`), OpenJDK 17, gcc.

Usage (from the repo root, venv active: `source .venv/bin/activate`)
-----
    # small circuit (7 neurons, chemical exc + inh graded synapses + gap junctions, 2 current clamps)
    python docs/research/c302_C2_probe.py small --outdir /tmp/c302_C2_small
    # full 302-neuron C2 network, no muscles, 1 s at dt = 0.05 ms (timing benchmark)
    python docs/research/c302_C2_probe.py full  --outdir /tmp/c302_C2_full --duration 1000 --dt 0.05
    # optional: re-integrate the equations of c302_C2.md with scipy and compare with the small NEURON run
    python docs/research/c302_C2_probe.py check --outdir /tmp/c302_C2_small

Outputs (in --outdir)
-------
    <ref>.net.nml / LEMS_<ref>.xml      NeuroML2 network + LEMS simulation file written by c302
    LEMS_<ref>_nrn.py, *.hoc, *.mod     NEURON code exported by jNeuroML (`jnml LEMS_<ref>.xml -neuron`)
    x86_64/                             mechanisms compiled by nrnivmodl (NEURON auto-loads from cwd)
    <ref>.dat                           jNeuroML-style text output: col0 = t [s], then v [V] per cell
                                        (cells in sorted name order, as in LEMS <OutputFile id="neurons_v">)
    <ref>.activity.dat                  same layout, [Ca2+]_i in mM (= mol/m^3) per cell
    time.dat                            t [s]
    <ref>_traces.npz                    full-precision copy: t_ms, cells (names), V_mV [n_t, n_cells],
                                        ca_mM [n_t, n_cells], plus dt_ms, duration_ms
    <ref>_timing.json                   wall seconds for each stage

Notes
-----
* c302 writes LEMS with `step="<dt>ms"`; jNeuroML's NEURON export uses NEURON's fixed-step default integrator
  (h.run(), backward Euler since secondorder=0; channel/synapse states use `METHOD cnexp`), h.dt = dt.
  Recording happens every step (vector length tstop/dt + 1, t = 0 included).
* `jnml -neuron -run -compile` would do export+compile+run in one go; here the stages are split to time them.
* pyneuroml's jnml is invoked as `java -Xmx<mem> -jar .../jNeuroML-0.14.0-jar-with-dependencies.jar`; no network
  access is needed (NeuroML2 core types are inside the jar). c302.generate(...) skips schema validation for C2.
"""

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

# The 7 cells of the small circuit. All connections among them in c302's default connectome
# (cect.readers.SpreadsheetDataReader, i.e. the legacy OpenWorm CElegansNeuronTables.xls):
#  - gap junctions: AVAL<->AVAR (5 each direction), AVAL<->PVCL (2 each direction), AVBL<->AVBR (3 each direction)
#  - excitatory (non-GABA: Glutamate, FMRFamide, ...) graded synapses, e.g. AVDL->AVAR (19), PVCL->AVBR (12)
#  - inhibitory (GABA) graded synapses from DVC: DVC->AVAL (5), DVC->AVAR (7), DVC->AVBL (1)
SMALL_CELLS = ["AVAL", "AVAR", "AVBL", "AVBR", "AVDL", "DVC", "PVCL"]

# Current clamps for the small circuit: (cell, delay, duration, amplitude) in NeuroML units
SMALL_STIMS = [
    ("AVBL", "100ms", "400ms", "4pA"),
    ("DVC", "300ms", "400ms", "4pA"),
]

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(cmd, cwd, log):
    """Run a command, tee-less: capture output to a log file, raise on failure."""
    t0 = time.time()
    with open(log, "w") as f:
        r = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    dt = time.time() - t0
    if r.returncode != 0:
        with open(log) as f:
            sys.stderr.write(f.read()[-4000:])
        raise RuntimeError("command failed (%s): %s" % (r.returncode, " ".join(cmd)))
    return dt


def generate(mode, ref, outdir, duration, dt):
    """Stage 1: build the NeuroML2 network + LEMS file with c302 (parameter set C2)."""
    import c302
    import neuroml.writers as writers

    params = getattr(importlib.import_module("c302.parameters_C2"), "ParameterisedModel")()

    if mode == "small":
        # cells_to_stimulate=[] -> no 'offset_current' inputs (the C2 offset current is 0 pA anyway).
        # muscles_to_include=[] (also the default) -> neurons only.
        nml_doc = c302.generate(
            ref,
            params,
            cells=SMALL_CELLS,
            cells_to_stimulate=[],
            muscles_to_include=[],
            duration=duration,
            dt=dt,
            target_directory=outdir,
            verbose=False,
        )
        # Add pulse-generator current clamps (NeuroML <pulseGenerator>, current injected into the soma).
        for cell, delay, dur, amp in SMALL_STIMS:
            c302.add_new_input(nml_doc, cell, delay, dur, amp, params)
        # c302.generate already wrote the files; re-write the .net.nml now that inputs were added
        # (the LEMS file only references the network file, so it needs no change).
        writers.NeuroMLWriter.write(nml_doc, os.path.join(outdir, ref + ".net.nml"))
    else:
        # Full network: cells=None -> all 302 neurons (c302 adds unconnected herm neurons too),
        # muscles_to_include=[] -> no body-wall muscles. As in c302_Full.py, drive PLML/PLMR with the
        # 'unphysiological_offset_current' so the network is not silent (timing barely depends on it).
        params.set_bioparameter("unphysiological_offset_current", "5pA", "probe", "0")
        params.set_bioparameter("unphysiological_offset_current_del", "50 ms", "probe", "0")
        params.set_bioparameter("unphysiological_offset_current_dur", "900 ms", "probe", "0")
        c302.generate(
            ref,
            params,
            cells=None,
            cells_to_stimulate=["PLML", "PLMR"],
            muscles_to_include=[],
            duration=duration,
            dt=dt,
            target_directory=outdir,
            verbose=False,
        )


def export_neuron(ref, outdir, max_memory):
    """Stage 2: jNeuroML converts LEMS/NeuroML -> NEURON python + hoc + NMODL (no compile, no run)."""
    from pyneuroml import pynml

    ok = pynml.run_lems_with_jneuroml_neuron(
        "LEMS_%s.xml" % ref,
        nogui=True,
        only_generate_scripts=True,  # -> `jnml LEMS_x.xml -neuron -nogui`
        compile_mods=False,
        exec_in_dir=outdir,
        max_memory=max_memory,
        exit_on_fail=False,
    )
    if not ok:
        raise RuntimeError("jnml -neuron export failed")


RUNNER = r'''
# Auto-written by c302_C2_probe.py: runs the jNeuroML-generated NEURON model and saves full-precision traces.
import json, sys, time
import numpy as np
t0 = time.time()
from neuron import h            # picks up ./x86_64 (nrnivmodl output) automatically
import LEMS_{ref}_nrn as m
ns = m.NeuronSimulation(tstop={duration}, dt={dt}, seed=123456789, abs_tol=None, rel_tol=None)
t1 = time.time()
h.run()                          # fixed step, h.dt = dt (what ns.run() does, minus the quit())
t2 = time.time()
cells = {cells!r}
V = np.array([np.array(getattr(h, "v_%s_v_neurons_v" % c).to_python()) for c in cells]).T         # mV
Ca = np.array([np.array(getattr(h, "v_%s_v_neurons_activity" % c).to_python()) for c in cells]).T  # mM
t = np.array(h.v_time.to_python())                                                                   # ms
np.savez_compressed("{ref}_traces.npz", t_ms=t, cells=np.array(cells), V_mV=V, ca_mM=Ca,
                    dt_ms={dt}, duration_ms={duration})
json.dump(dict(nrn_setup_s=t1 - t0, nrn_run_s=t2 - t1), open("{ref}_nrn_timing.json", "w"))
print("NEURON setup %.2f s, run %.2f s" % (t1 - t0, t2 - t1))
ns.sim_end = time.time()
ns.save_results()                # also writes the jNeuroML-style .dat files (SI units, %e precision); calls quit()
'''


def lems_output_cells(lems_path):
    """Cell order of the <OutputFile id="neurons_v"> columns (c302: sorted cell names)."""
    with open(lems_path) as f:
        txt = f.read()
    block = txt.split('<OutputFile id="neurons_v"')[1].split("</OutputFile>")[0]
    return re.findall(r'<OutputColumn id="([^"]+)_v" quantity="', block)


def check_against_equations(outdir, ref="c302_C2_probe"):
    """Optional: re-integrate the C2 equations *as written in docs/research/c302_C2.md* with scipy (LSODA,
    tight tolerances) on the generated small network and report the deviation from the NEURON traces.
    Observed (dt = 0.05 ms NEURON): max |dV| <= ~0.6 mV during fast transitions, median ~1e-3 mV; [Ca] within 1 %."""
    from scipy.integrate import solve_ivp

    d = np.load(os.path.join(outdir, "%s_traces.npz" % ref))
    cells = [str(c) for c in d["cells"]]
    N = len(cells)
    ix = {c: i for i, c in enumerate(cells)}
    with open(os.path.join(outdir, "%s.net.nml" % ref)) as f:
        nml = f.read()
    # connection weights = number of synapses from the connectome; matrices are [post, pre]
    G = np.zeros((N, N))
    We = np.zeros((N, N))
    Wi = np.zeros((N, N))
    pat_gj = (r'electricalConnectionInstanceW id="\d+" preCell="../(\w+)/0/\w+" postCell="../(\w+)/0/\w+" '
              r'synapse="\w+" weight="([\d.eE+-]+)"')
    for pre, post, w in re.findall(pat_gj, nml):
        # each listed GJ puts g*w*(vpeer - v) on BOTH cells (NeuroML electricalProjection semantics)
        G[ix[post], ix[pre]] += float(w)
        G[ix[pre], ix[post]] += float(w)
    pat_ch = (r'continuousConnectionInstanceW id="\d+" preCell="../(\w+)/0/\w+" postCell="../(\w+)/0/\w+" '
              r'preComponent="silent" postComponent="(\w+)" weight="([\d.eE+-]+)"')
    for pre, post, syn, w in re.findall(pat_ch, nml):
        (We if syn.endswith("exc_syn") else Wi)[ix[post], ix[pre]] += float(w)

    A = np.pi * 5.0**2                                 # um^2 (sphere d = 5 um; NEURON: cylinder L = diam = 5 um)
    C = 5e-6 * A * 1e-8 * 1e12                         # pF   (5 uF/cm^2)
    gd = lambda mS_cm2: mS_cm2 * 1e-3 * A * 1e-8 * 1e9  # total conductance in nS
    gL, gKs, gKf, gCa = gd(0.002), gd(0.45833751019872582), gd(0.042711643917483308), gd(1.812775772264702)
    EL, EKs, EKf, ECa = -60.0, -60.0, -70.0, 10.0
    sig = lambda V, mid, sc: 1.0 / (1.0 + np.exp(-(V - mid) / sc))
    rho_eff = 2.38919e-4 * 1e-3 / A                    # (mM/ms) per pA of inward Ca current
    tauCa = 13.811870945509265
    ge, Ee, ke, gi, Ei, ki, Vth, delta, gGJ = 0.49, -10.0, 0.5, 0.29, -70.0, 0.015, 0.0, 5.0, 0.01252
    stims = [(ix[c], float(de[:-2]), float(du[:-2]), float(am[:-2])) for c, de, du, am in SMALL_STIMS]

    def rhs(t, y):
        V, n, p, q, e, f, ca, se, si = y.reshape(9, N)
        hq = 1.0 / (1.0 + np.exp((6.41889e-8 - ca) / -1.00056e-8))
        hf = 1.0 + (hq - 1.0) * 0.282473
        I = (gKs * n * (EKs - V) + gKf * p**4 * q * (EKf - V) + gL * (EL - V))
        ICa = gCa * e**2 * f * hf * (ECa - V)
        inf = 1.0 / (1.0 + np.exp((Vth - V) / delta))  # presynaptic activation
        one_m = np.maximum(1.0 - inf, 1e-12)
        dse = np.where(1.0 - inf > 1e-4, ke * (inf - se) / one_m, 0.0)
        dsi = np.where(1.0 - inf > 1e-4, ki * (inf - si) / one_m, 0.0)
        Isyn = (We @ se) * ge * (Ee - V) + (Wi @ si) * gi * (Ei - V) + gGJ * (G @ V - G.sum(1) * V)
        Ist = np.zeros(N)
        for i, de, du, am in stims:
            if de <= t < de + du:
                Ist[i] += am
        return np.concatenate([
            (I + ICa + Isyn + Ist) / C,
            (sig(V, 19.8741, 15.8512) - n) / 25.0007,
            (sig(V, -8.05232, 7.42636) - p) / 2.25518,
            (sig(V, -15.6456, -9.97468) - q) / 149.963,
            (sig(V, -3.3568, 6.74821) - e) / 0.100027,
            (sig(V, 25.1815, -5.03176) - f) / 150.88,
            rho_eff * ICa - ca / tauCa,
            dse, dsi])

    V0 = np.full(N, -60.0)
    y0 = np.concatenate([V0, sig(V0, 19.8741, 15.8512), sig(V0, -8.05232, 7.42636), sig(V0, -15.6456, -9.97468),
                         sig(V0, -3.3568, 6.74821), sig(V0, 25.1815, -5.03176), np.zeros(3 * N)])
    t = d["t_ms"]
    sol = solve_ivp(rhs, (0, t[-1]), y0, t_eval=t, method="LSODA", max_step=0.05, rtol=1e-8, atol=1e-10)
    err = np.abs(sol.y[:N].T - d["V_mV"])
    ca_rel = np.abs(sol.y[6 * N:7 * N].T - d["ca_mM"]).max(0) / d["ca_mM"].max(0)
    for i, c in enumerate(cells):
        print("  %-5s max|dV| %.3f mV, median %.4f mV, max rel d[Ca] %.3f" % (c, err[:, i].max(),
                                                                          np.median(err[:, i]), ca_rel[i]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["small", "full", "check"],
                    help="check: compare an existing small run (--outdir) with scipy integration of the documented equations")
    ap.add_argument("--outdir", default=None)
    ap.add_argument("--duration", type=float, default=None, help="ms (small: 800, full: 1000)")
    ap.add_argument("--dt", type=float, default=0.05, help="ms")
    ap.add_argument("--max-memory", default="2G", help="java -Xmx for jnml")
    a = ap.parse_args()
    if a.mode == "check":
        check_against_equations(os.path.abspath(a.outdir or "/tmp/c302_C2_probe"))
        return

    duration = a.duration or (800.0 if a.mode == "small" else 1000.0)
    ref = "c302_C2_probe" if a.mode == "small" else "c302_C2_full"
    outdir = os.path.abspath(a.outdir or "/tmp/%s" % ref)
    os.makedirs(outdir, exist_ok=True)
    # c302/LEMS want plain numbers: duration/dt go verbatim into <Simulation length=.. step=..>
    dur_s = int(duration) if float(duration).is_integer() else duration
    dt_s = a.dt

    timing = {}
    t0 = time.time()
    generate(a.mode, ref, outdir, dur_s, dt_s)
    timing["c302_generate_s"] = time.time() - t0

    t0 = time.time()
    export_neuron(ref, outdir, a.max_memory)
    timing["jnml_neuron_export_s"] = time.time() - t0

    # nrnivmodl from the neuron pip wheel (in the venv's bin/), needs a C compiler (gcc)
    nrnivmodl = os.path.join(os.path.dirname(sys.executable), "nrnivmodl")
    if not os.path.exists(nrnivmodl):
        nrnivmodl = "nrnivmodl"
    timing["nrnivmodl_s"] = sh([nrnivmodl], outdir, os.path.join(outdir, "nrnivmodl.log"))

    cells = lems_output_cells(os.path.join(outdir, "LEMS_%s.xml" % ref))
    with open(os.path.join(outdir, "run_%s.py" % ref), "w") as f:
        f.write(RUNNER.format(ref=ref, duration=dur_s, dt=dt_s, cells=cells))
    timing["nrn_total_process_s"] = sh(
        [sys.executable, "run_%s.py" % ref], outdir, os.path.join(outdir, "nrn_run.log")
    )
    with open(os.path.join(outdir, "%s_nrn_timing.json" % ref)) as f:
        timing.update(json.load(f))
    timing["generate_plus_compile_s"] = (
        timing["c302_generate_s"] + timing["jnml_neuron_export_s"] + timing["nrnivmodl_s"]
        + timing["nrn_setup_s"]
    )
    timing["run_s_per_simulated_s"] = timing["nrn_run_s"] / (duration / 1000.0)
    timing.update(dict(n_cells=len(cells), duration_ms=duration, dt_ms=a.dt))
    with open(os.path.join(outdir, "%s_timing.json" % ref), "w") as f:
        json.dump(timing, f, indent=1)

    d = np.load(os.path.join(outdir, "%s_traces.npz" % ref))
    print("outdir:", outdir)
    print("cells (%d): %s" % (len(cells), " ".join(cells[:12]) + (" ..." if len(cells) > 12 else "")))
    print("traces: t %s, V %s" % (d["t_ms"].shape, d["V_mV"].shape))
    if a.mode == "small":
        for i, c in enumerate(cells):
            v = d["V_mV"][:, i]
            print("  %-5s V0=%7.2f  min=%7.2f  max=%7.2f  end=%7.2f mV" % (c, v[0], v.min(), v.max(), v[-1]))
    print(json.dumps(timing, indent=1))


if __name__ == "__main__":
    main()
