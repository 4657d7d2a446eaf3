"""Export a digiworm c302-C2 network to NeuroML2 + LEMS, so other simulators can run it.

:func:`export_neuroml` writes three files into a folder:

* ``<name>.components.xml`` — a LEMS ComponentType for the Ca²⁺-dependent inactivation of the
  C2 Ca²⁺ current (NeuroML2 has no core type for it; written here from the equation in
  :mod:`._c302`);
* ``<name>.net.nml`` — NeuroML2 (built with libNeuroML): the channels (core ``ionChannelHH``
  gates), one cell type per distinct set of conductance scales, a ``fixedFactorConcentrationModel``
  Ca²⁺ pool, one population per neuron, graded synapses as ``continuousProjection``s (weight =
  synapse count) and gap junctions as ``electricalProjection``s (weight = the pair's conductance
  over the unit junction conductance), and optional current-clamp ``pulseGenerator``s;
* ``LEMS_<name>.xml`` — a LEMS simulation recording every neuron's V, runnable with
  ``jnml LEMS_<name>.xml`` (jLEMS) or ``jnml LEMS_<name>.xml -neuron`` (NEURON).

Custom component types make schema validation fail (as for c302's own C2 files); jNeuroML runs
them. The tests run the export in jNeuroML and compare with digiworm.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._errors import DigiwormError
from .._io import atomic_write_text
from ._c302 import C302Network

__all__ = ["export_neuroml"]

_COMPONENTS = """<Lems>
    <!-- digiworm: Ca2+-dependent inactivation of the c302 C2 Ca2+ current,
         x = 1 + alpha * (1 / (1 + exp((caHalf - caConc) / k)) - 1) -->
    <ComponentType name="digiwormCaInactivation" extends="baseVoltageConcDepVariable"
                   description="Instantaneous Ca2+-dependent inactivation (c302 parameter set C2)">
        <Parameter name="caHalf" dimension="concentration"/>
        <Parameter name="k" dimension="concentration"/>
        <Parameter name="alpha" dimension="none"/>
        <Dynamics>
            <DerivedVariable name="h" dimension="none"
                             value="1 / (1 + exp((caHalf - caConc) / k))"/>
            <DerivedVariable name="x" dimension="none" exposure="x" value="1 + (h - 1) * alpha"/>
        </Dynamics>
    </ComponentType>
</Lems>
"""


def _f(x) -> str:
    """Return ``x`` as NeuroML wants a number: plain float text at full precision."""
    return repr(float(x))


def _gate(gid, gate, instances):
    tau, mid, scale = gate
    return (
        f'<gateHHtauInf id="{gid}" instances="{instances}">'
        f'<timeCourse type="fixedTimeCourse" tau="{_f(tau)}ms"/>'
        f'<steadyState type="HHSigmoidVariable" rate="1" midpoint="{_f(mid)}mV" '
        f'scale="{_f(scale)}mV"/>'
        "</gateHHtauInf>"
    )


def _channels_xml(p) -> str:
    return "\n".join([
        '<ionChannelPassive id="dw_leak" conductance="10pS"/>',
        f'<ionChannelHH id="dw_kslow" conductance="10pS" species="k">{_gate("n", p.n, 1)}'
        "</ionChannelHH>",
        f'<ionChannelHH id="dw_kfast" conductance="10pS" species="k">{_gate("p", p.p, 4)}'
        f'{_gate("q", p.q, 1)}</ionChannelHH>',
        f'<ionChannelHH id="dw_ca" conductance="10pS" species="ca">{_gate("e", p.e, 2)}'
        f'{_gate("f", p.f, 1)}<gateHHInstantaneous id="h" instances="1">'
        f'<steadyState type="digiwormCaInactivation" caHalf="{_f(p.ca_half_mM)}mM" '
        f'k="{_f(p.ca_k_mM)}mM" alpha="{_f(p.ca_alpha)}"/></gateHHInstantaneous></ionChannelHH>',
        f'<fixedFactorConcentrationModel id="dw_ca_pool" ion="ca" restingConc="0mM" '
        f'decayConstant="{_f(p.ca_decay_ms)}ms" rho="{_f(p.ca_rho)}mol_per_m_per_A_per_s"/>',
    ])  # fmt: skip


def _cell_xml(cid, p, scale) -> str:
    d = float(np.sqrt(p.area_um2 / np.pi))  # sphere of the C2 area (π d²): diameter 5 µm
    dens = [
        ("leak", "dw_leak", p.g_leak_mS_cm2 * scale[0], p.e_leak_mV, "non_specific"),
        ("kslow", "dw_kslow", p.g_kslow_mS_cm2 * scale[1], p.e_kslow_mV, "k"),
        ("kfast", "dw_kfast", p.g_kfast_mS_cm2 * scale[2], p.e_kfast_mV, "k"),
        ("ca", "dw_ca", p.g_ca_mS_cm2 * scale[3], p.e_ca_mV, "ca"),
    ]
    densities = "".join(
        f'<channelDensity id="{i}" ionChannel="{ch}" condDensity="{_f(g)}mS_per_cm2" '
        f'erev="{_f(e)}mV" ion="{ion}"/>'
        for i, ch, g, e, ion in dens
    )
    c_uF_cm2 = 100.0 * p.c_pF / p.area_um2  # 1 pF/µm² = 100 µF/cm²
    return (
        f'<cell id="{cid}"><morphology id="morph_{cid}"><segment id="0" name="soma">'
        f'<proximal x="0" y="0" z="0" diameter="{_f(d)}"/><distal x="0" y="0" z="0" '
        f'diameter="{_f(d)}"/></segment></morphology><biophysicalProperties id="bp_{cid}">'
        f'<membraneProperties>{densities}<spikeThresh value="-55mV"/>'
        f'<specificCapacitance value="{_f(c_uF_cm2)}uF_per_cm2"/>'
        f'<initMembPotential value="{_f(p.v0_mV)}mV"/></membraneProperties>'
        '<intracellularProperties><species id="ca" concentrationModel="dw_ca_pool" ion="ca" '
        'initialConcentration="0mM" initialExtConcentration="2mM"/></intracellularProperties>'
        "</biophysicalProperties></cell>"
    )


def export_neuroml(
    net: C302Network,
    folder,
    *,
    name: str = "digiworm_c2",
    stimuli=(),
    duration_ms: float = 1000.0,
    dt_ms: float = 0.05,
) -> Path:
    """Write ``net`` as NeuroML2 + LEMS into ``folder``; return the LEMS simulation file.

    ``stimuli``: ``(neuron, delay_ms, duration_ms, amplitude_pA)`` current clamps.
    """
    import neuroml
    import neuroml.writers

    if not isinstance(net, C302Network):
        raise DigiwormError(f"NeuroML export covers C302Network; got {type(net).__name__}")
    if not name.isidentifier():
        raise DigiwormError(f"export name must be a plain identifier; got {name!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p = net.params
    names = list(net.names)
    scales = np.asarray(net.g_scale, dtype=float)
    kinds, cell_of = {}, []
    for row in scales:
        key = tuple(np.round(row, 12))
        kinds.setdefault(key, f"dw_c2_cell_{len(kinds)}")
        cell_of.append(kinds[key])

    doc = neuroml.NeuroMLDocument(id=name)
    doc.silent_synapses.append(neuroml.SilentSynapse(id="silent"))
    for sid, (g, erev, vth, delta, k) in (("dw_exc", p.exc), ("dw_inh", p.inh)):
        doc.graded_synapses.append(neuroml.GradedSynapse(
            id=sid, conductance=f"{_f(g)}nS", erev=f"{_f(erev)}mV", Vth=f"{_f(vth)}mV",
            delta=f"{_f(delta)}mV", k=f"{_f(k)}per_ms"))  # fmt: skip
    doc.gap_junctions.append(neuroml.GapJunction(id="dw_gap", conductance=f"{_f(p.gap_nS)}nS"))
    nml_net = neuroml.Network(id="net")
    doc.networks.append(nml_net)
    for n, cell in zip(names, cell_of):
        nml_net.populations.append(neuroml.Population(id=n, component=cell, size=1))
    pre, post = np.asarray(net.pre), np.asarray(net.post)
    for sid, w in (("dw_exc", np.asarray(net.w_exc)), ("dw_inh", np.asarray(net.w_inh))):
        for j, i, weight in zip(pre, post, w):
            if weight <= 0:
                continue
            proj = neuroml.ContinuousProjection(
                id=f"NC_{names[j]}_{names[i]}_{sid}", presynaptic_population=names[j],
                postsynaptic_population=names[i])  # fmt: skip
            proj.continuous_connection_instance_ws.append(neuroml.ContinuousConnectionInstanceW(
                id=0, pre_cell=f"../{names[j]}[0]",
                post_cell=f"../{names[i]}[0]", pre_component="silent",
                post_component=sid, weight=float(weight)))  # fmt: skip
            nml_net.continuous_projections.append(proj)
    for a, b, g in zip(np.asarray(net.gap_a), np.asarray(net.gap_b), np.asarray(net.g_gap_nS)):
        if g <= 0:
            continue
        proj = neuroml.ElectricalProjection(
            id=f"GJ_{names[a]}_{names[b]}", presynaptic_population=names[a],
            postsynaptic_population=names[b])  # fmt: skip
        proj.electrical_connection_instance_ws.append(neuroml.ElectricalConnectionInstanceW(
            id=0, pre_cell=f"../{names[a]}[0]",
            post_cell=f"../{names[b]}[0]", synapse="dw_gap",
            weight=float(g / p.gap_nS)))  # fmt: skip
        nml_net.electrical_projections.append(proj)
    for k, (neuron, delay, dur, amp) in enumerate(stimuli):
        if neuron not in names:
            from .._errors import UnknownNameError

            raise UnknownNameError("neuron", neuron, names)
        pid = f"stim_{k}_{neuron}"
        doc.pulse_generators.append(
            neuroml.PulseGenerator(
                id=pid, delay=f"{_f(delay)}ms", duration=f"{_f(dur)}ms", amplitude=f"{_f(amp)}pA"
            )
        )
        nml_net.explicit_inputs.append(neuroml.ExplicitInput(
            target=f"{neuron}[0]", input=pid))  # fmt: skip

    net_file = folder / f"{name}.net.nml"
    tmp = folder / f".{name}.net.nml.tmp"
    neuroml.writers.NeuroMLWriter.write(doc, str(tmp))
    text = tmp.read_text()
    os.unlink(tmp)
    # channels and cells go in as XML libNeuroML passes through unchanged (a custom gate type)
    cells = "\n".join(_cell_xml(c, p, np.array(k)) for k, c in kinds.items())
    marker = text.index("<silentSynapse")
    text = text[:marker] + _channels_xml(p) + "\n" + cells + "\n    " + text[marker:]
    atomic_write_text(net_file, text)
    atomic_write_text(folder / f"{name}.components.xml", _COMPONENTS)
    columns = "\n".join(f'            <OutputColumn id="{n}" quantity="{n}[0]/v"/>' for n in names)
    lems = f"""<Lems>
    <Target component="sim"/>
    <Include file="Cells.xml"/>
    <Include file="Networks.xml"/>
    <Include file="Simulation.xml"/>
    <Include file="{name}.components.xml"/>
    <Include file="{name}.net.nml"/>
    <Simulation id="sim" length="{_f(duration_ms)}ms" step="{_f(dt_ms)}ms" target="net">
        <OutputFile id="v" fileName="{name}.v.dat">
{columns}
        </OutputFile>
    </Simulation>
</Lems>
"""
    lems_file = folder / f"LEMS_{name}.xml"
    atomic_write_text(lems_file, lems)
    return lems_file
