"""c302 parameter set C2 in digiworm, cross-checked against c302 run in NEURON (float64).

The reference (tests/data/c302_C2_small_neuron.npz) is c302 0.12.1's own C2 network of seven
neurons (AVAL, AVAR, AVBL, AVBR, AVDL, DVC, PVCL: excitatory and inhibitory graded synapses and
three gap-junction pairs, 4 pA into AVBL 100–500 ms and into DVC 300–700 ms) exported by
jNeuroML and run in NEURON 9.0.2 at dt 0.05 ms (docs/research/c302_C2_probe.py small).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.models import C2, c302_connectome, c302_network
from digiworm.simulate import Protocol, run_currents, simulate

pytestmark = pytest.mark.usefixtures("x64")

REFERENCE = Path(__file__).parent / "data" / "c302_C2_small_neuron.npz"


def _stimuli(cells, dt_ms, total_ms):
    t = (np.arange(round(total_ms / dt_ms)) + 0.5) * dt_ms  # NEURON tests pulses at t + dt/2
    u = np.zeros((t.size, len(cells)))
    for cell, onset, duration, amp in (("AVBL", 100.0, 400.0, 4.0), ("DVC", 300.0, 400.0, 4.0)):
        u[(t >= onset) & (t < onset + duration), cells.index(cell)] = amp
    return u


def test_small_circuit_matches_c302_in_neuron():
    ref = np.load(REFERENCE)
    cells = [str(c) for c in ref["cells"]]
    net = c302_network(cells)
    dt = float(ref["dt_ms"])
    ds = run_currents(net, _stimuli(cells, dt, 800.0), dt_ms=dt, save_dt_ms=0.5)
    np.testing.assert_allclose(ds.time_ms, ref["t_ms"])
    err = ds.v_mV.values - ref["v_mV"]
    rms = np.sqrt(np.mean(err**2, axis=0))
    assert np.all(rms < 0.1), dict(zip(cells, rms))  # issue goal: < 1 mV RMS
    assert np.max(np.abs(err)) < 0.5
    # the circuit does something: AVBL drives the group up, DVC's GABA synapses pull it down
    v = ds.v_mV.to_pandas()
    assert v.loc[200.0, "AVAL"] > -20.0 and v.loc[600.0, "AVAL"] < -65.0
    ca_ref = ref["ca_mM"].max(axis=0)
    np.testing.assert_allclose(ds.ca_mM.values.max(axis=0), ca_ref, rtol=0.02)


def test_connectome_orientation_and_gap_junction_doubling():
    names, exc, inh, gap = c302_connectome(["AVAL", "AVAR", "AVDL", "DVC"])
    i = {n: k for k, n in enumerate(names)}
    assert exc[i["AVAR"], i["AVDL"]] == 19  # AVDL -> AVAR, [post, pre]
    assert exc[i["AVDL"], i["AVAR"]] == 1
    assert inh[i["AVAR"], i["DVC"]] == 7  # DVC is GABAergic in c302's table
    assert gap[i["AVAL"], i["AVAR"]] == gap[i["AVAR"], i["AVAL"]] == 10  # 5 listed each way
    full = c302_connectome()
    assert len(full[0]) == 302
    assert full[1].sum() + full[2].sum() == 5936 + 529  # neuron-to-neuron chemical synapses


def test_cell_constants_follow_parameter_set_c2():
    g = C2.conductances_nS()
    assert C2.c_pF == pytest.approx(3.92699, rel=1e-5)
    assert g["ca"] == pytest.approx(1.423751, rel=1e-5)
    assert g["kslow"] == pytest.approx(0.359977, rel=1e-5)


def test_simulate_runs_c302_with_its_own_method():
    net = c302_network(["AVAL", "AVAR", "AVBL", "AVBR", "PVCL"])
    protocol = Protocol.single(net.names, ["AVBL"], amplitude=4.0, onset_s=0.05, duration_s=0.1)
    out = simulate(net, protocol, 0.2, dt_s=5e-5, save_dt_s=0.01, settle_s=0.5, indicator=None)
    act = out["dff"].sel(condition="AVBL")
    assert float(act.sel(neuron="AVBL").max()) > 0.5 > float(act.sel(neuron="AVBL")[0])
    with pytest.raises(DigiwormError, match="exponential"):
        simulate(net, protocol, 0.2, dt_s=5e-5, save_dt_s=0.01, method="heun")


def _jnml(lems: Path, java: str) -> None:
    """Run a LEMS file in jNeuroML (jLEMS) in its own folder."""
    import subprocess

    from pyneuroml.pynml import get_path_to_jnml_jar

    cmd = [java, "-Xmx1G", "-Djava.awt.headless=true", "-jar", get_path_to_jnml_jar(),
           lems.name, "-nogui"]  # fmt: skip
    subprocess.run(cmd, cwd=lems.parent, check=True, capture_output=True, timeout=600)


def test_neuroml_export_runs_in_jneuroml_and_agrees(tmp_path, java):
    from digiworm.models import export_neuroml

    net = c302_network(["AVAL", "AVAR", "AVBL", "AVBR", "DVC"])
    stimuli = [("AVBL", 20.0, 100.0, 4.0), ("DVC", 60.0, 100.0, 4.0)]
    lems = export_neuroml(net, tmp_path, stimuli=stimuli, duration_ms=200.0, dt_ms=0.05)
    _jnml(lems, java)
    out = np.loadtxt(tmp_path / "digiworm_c2.v.dat")
    t_ms, v_mV = out[:, 0] * 1e3, out[:, 1:] * 1e3
    dt = 0.05
    t = (np.arange(4000) + 0.5) * dt
    u = np.zeros((t.size, 5))
    for name, onset, duration, amp in stimuli:
        u[(t >= onset) & (t < onset + duration), list(net.names).index(name)] = amp
    ds = run_currents(net, u, dt_ms=dt, save_dt_ms=dt)
    mine = ds.v_mV.values
    ref = v_mV[1 : 1 + len(mine)]  # jLEMS writes t = 0 first
    np.testing.assert_allclose(t_ms[1 : 1 + len(mine)], ds.time_ms.values, atol=1e-6)
    rms = np.sqrt(np.mean((mine - ref) ** 2, axis=0))
    assert np.all(rms < 1.0), dict(zip(net.names, rms))  # jLEMS steps forward Euler
    assert np.ptp(ref[:, 2]) > 30.0  # the export does something: AVBL is driven up


def test_export_command_writes_files_and_refuses_bad_stimuli(atlas, tmp_path):
    from typer.testing import CliRunner

    from digiworm.cli import app

    runner = CliRunner()
    out = tmp_path / "c2"
    ok = runner.invoke(
        app,
        [
            "export",
            "--out",
            str(out),
            "--neurons",
            "aval,avar,avbl",
            "--stimulate",
            "AVBL:10:50:4",
            "--duration-ms",
            "100",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert {p.name for p in out.iterdir()} == {
        "digiworm_c2.net.nml",
        "digiworm_c2.components.xml",
        "LEMS_digiworm_c2.xml",
    }
    net = (out / "digiworm_c2.net.nml").read_text()
    assert 'population id="AVBL"' in net and 'pulseGenerator id="stim_0_AVBL"' in net
    bad = runner.invoke(app, ["export", "--out", str(tmp_path / "x"), "--stimulate", "AVBL:10"])
    assert bad.exit_code == 2 and "NEURON:DELAY_MS" in bad.output
    bad = runner.invoke(app, ["export", "--out", str(tmp_path / "y"), "--neurons", "AVLA"])
    assert bad.exit_code == 2 and "AVAL" in bad.output
