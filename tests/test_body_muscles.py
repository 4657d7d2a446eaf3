"""Muscles from the neuromuscular connectome, and the body driven through them (open loop)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.body import Body, Medium, gait, muscles_from_atlas, simulate_driven


@pytest.fixture(scope="module")
def muscles(atlas):
    return muscles_from_atlas(atlas)


def _class(atlas, prefix):
    return np.array([n.startswith(prefix) and n[len(prefix) :].isdigit() for n in atlas.names])


def test_transmitters_sign_the_neuromuscular_junctions(atlas, muscles):
    """Cholinergic motor neurons excite, GABAergic D-types inhibit; glutamatergic and
    aminergic senders are left out and listed."""
    exc = np.asarray(muscles.excitatory).sum(axis=0)
    inh = np.asarray(muscles.inhibitory).sum(axis=0)
    names = list(atlas.names)
    for n in ("VB5", "DB3", "DA4", "AS4", "VA5"):
        assert exc[names.index(n)] > 0 and inh[names.index(n)] == 0, n
    for n in ("DD3", "VD6"):
        assert inh[names.index(n)] > 0 and exc[names.index(n)] == 0, n
    assert "DVC" in muscles.unsigned and "VB5" not in muscles.unsigned
    assert len(muscles.names) == 95


def test_the_side_maps_bend_ventral_positive_row_by_row(muscles):
    """All ventral muscles fully on and dorsal off bend every joint ventrally by the maximal
    curvature; one row's dorsal muscles bend only the joints in that row, dorsally. Row 24's
    ventral side has only MVR24 (no MVL24), which then counts fully."""
    body = Body()
    maps = muscles.side_maps(body)
    side = np.asarray(muscles.side)
    ventral = jnp.asarray((side > 0).astype(float))
    k = np.asarray(muscles.bending(ventral, maps)[0])
    np.testing.assert_allclose(k, muscles.max_curvature_per_mm)
    row = np.asarray(muscles.row)
    dorsal_row_10 = jnp.asarray(((side < 0) & (row == 10)).astype(float))
    k10 = np.asarray(muscles.bending(dorsal_row_10, maps)[0])
    u = body.joint_positions()
    in_row = (u >= 9 / 24) & (u < 10 / 24)
    np.testing.assert_allclose(k10[in_row], -muscles.max_curvature_per_mm)
    assert np.all(k10[~in_row] == 0)


def test_activation_follows_its_drive_with_its_time_constant(atlas, muscles):
    """A held drive: the activation relaxes exponentially with tau (0.1 s), exactly."""
    names = list(atlas.names)
    s = jnp.zeros(len(names)).at[names.index("VB5")].set(1.0)
    target = np.clip(np.asarray(muscles.drive(s)), 0, 1)
    assert target.max() > 0
    a = jnp.zeros(len(muscles.names))
    for _ in range(10):
        a = muscles.step(a, s, 0.01)
    np.testing.assert_allclose(np.asarray(a), target * (1 - np.exp(-1.0)), rtol=1e-6)


def _motor_wave(atlas, dorsal, ventral, f, lam):
    """Activity of a travelling wave along the cord: the dorsal class in phase, the ventral
    class and the dorsal inhibitors (DD) in antiphase, the ventral inhibitors (VD) in phase.
    Each neuron's position is the mean position of the muscles it synapses onto."""
    w = atlas.neuromuscular().fillna(0.0).transpose("muscle", "neuron")
    counts = w.values
    pos = (w.position.values[:, None] * counts).sum(0) / np.maximum(counts.sum(0), 1e-12)
    u = jnp.asarray(pos)
    d, v = (jnp.asarray(_class(atlas, p), float) for p in (dorsal, ventral))
    dd, vd = (jnp.asarray(_class(atlas, p), float) for p in ("DD", "VD"))

    def activity(t):
        c = jnp.cos(2 * jnp.pi * (u / lam - f * t))
        return (d + vd) * 0.5 * (1 + c) + (v + dd) * 0.5 * (1 - c)

    return activity


def test_a_b_type_wave_crawls_forward_and_an_a_type_wave_backward(atlas, muscles):
    """Open loop on agar: B-type motor neurons firing in a head-to-tail wave (DB and VB in
    antiphase, cross-inhibited by DD and VD) drive the body forward through their muscles; the
    A-types in a tail-to-head wave drive it backward. The body's own wave runs the same way as
    the neural one."""
    body = Body()
    with jax.enable_x64(True):
        fwd = simulate_driven(body, Medium.agar(), muscles,
                              _motor_wave(atlas, "DB", "VB", 0.3, 0.65), 40 / 3)  # fmt: skip
        back = simulate_driven(body, Medium.agar(), muscles,
                               _motor_wave(atlas, "DA", "VA", -0.3, 0.65), 40 / 3)  # fmt: skip
    g_fwd = gait(fwd.body, body.length_mm, discard_s=10 / 3)
    g_back = gait(back.body, body.length_mm, discard_s=10 / 3)
    assert g_fwd["direction"] == "forward" and g_fwd["wave_direction"] == "head to tail"
    assert g_back["direction"] == "backward" and g_back["wave_direction"] == "tail to head"
    assert g_fwd["frequency_hz"] == pytest.approx(0.3, rel=0.05)
    assert min(g_fwd["speed_mm_per_s"], g_back["speed_mm_per_s"]) > 0.003
    acts = np.asarray(fwd.activation)
    assert acts.min() >= 0 and acts.max() <= 1


def test_silent_motor_neurons_leave_the_body_straight(atlas, muscles):
    body = Body(n_segments=24)
    with jax.enable_x64(True):
        traj = simulate_driven(body, Medium.water(), muscles,
                               lambda t: jnp.zeros(302), 1.0)  # fmt: skip
    assert np.abs(np.asarray(traj.body.curvature_per_mm)).max() == 0
    assert np.abs(np.asarray(traj.activation)).max() == 0
    with pytest.raises(DigiwormError, match="one value per neuron"):
        simulate_driven(body, Medium.water(), muscles, lambda t: jnp.zeros(3), 1.0)


def test_the_drive_gain_scales_the_drive_before_it_saturates(atlas, muscles):
    import equinox as eqx

    names = list(atlas.names)
    s = jnp.zeros(len(names)).at[names.index("VB5")].set(1.0)
    drive = np.asarray(muscles.drive(s))
    doubled = eqx.tree_at(lambda m: m.drive_gain, muscles, 2.0)
    a1 = np.asarray(muscles.step(jnp.zeros(95), s, 10.0))  # 100 tau: at the target
    a2 = np.asarray(doubled.step(jnp.zeros(95), s, 10.0))
    np.testing.assert_allclose(a1, np.clip(drive, 0, 1), atol=1e-12)
    np.testing.assert_allclose(a2, np.clip(2 * drive, 0, 1), atol=1e-12)
    assert a2.max() > a1.max()


def test_the_stretch_reflex_loop_makes_its_own_rhythm_and_it_adapts_to_the_medium(atlas):
    """Boyle, Berri & Cohen's architecture: bistable B-type units pushed by the stretch just
    posterior to them, through the connectome's muscles and the body. Nothing is imposed after
    the start, yet the body undulates, crawls forward on agar and swims forward in water, and
    undulates faster in water than on agar (the direction of gait adaptation, Fang-Yen et al.
    2010). Without the stretch input the units settle and the body stops undulating."""
    import equinox as eqx

    from digiworm.body import reflex_circuit, simulate_reflex

    muscles = muscles_from_atlas(atlas, drive_gain=3.0)
    circuit = reflex_circuit(muscles)
    assert {c for c, _, _ in circuit.unit_of} == {"DB", "VB", "DD", "VD"}
    body = Body()
    gaits, traces = {}, {}
    with jax.enable_x64(True):
        for name, medium in (("agar", Medium.agar()), ("water", Medium.water())):
            run = simulate_reflex(body, medium, muscles, circuit, 20.0)
            gaits[name] = gait(run.body, body.length_mm, discard_s=10.0)
            traces[name] = np.asarray(run.body.curvature_per_mm)[-1000:]
        deaf = eqx.tree_at(lambda c: c.gain, circuit, 0.0)
        still = np.asarray(simulate_reflex(body, Medium.water(), muscles, deaf, 20.0)
                           .body.curvature_per_mm)[-1000:]  # fmt: skip
    for g in gaits.values():
        assert g["direction"] == "forward" and g["amplitude_per_body_length"] > 0.5
    assert gaits["water"]["frequency_hz"] > 1.4 * gaits["agar"]["frequency_hz"]
    assert still.std(axis=0).max() < 0.01 * traces["water"].std(axis=0).max()


def test_bad_muscle_and_circuit_parameters_are_refused_by_name(atlas, muscles):
    from digiworm.body import reflex_circuit

    bad_muscles = (
        (dict(tau_s=0.0), "tau_s"),
        (dict(max_curvature_per_mm=-1.0), "max_curvature_per_mm"),
        (dict(drive_gain=float("nan")), "drive_gain"),
    )
    for bad, name in bad_muscles:
        with pytest.raises(DigiwormError, match=name):
            muscles_from_atlas(atlas, **bad)
    for bad, name in ((dict(tau_s=-0.1), "tau_s"), (dict(gain=float("inf")), "gain"),
                      (dict(field_body_lengths=0.0), "field_body_lengths"),
                      (dict(n_units=1), "n_units")):  # fmt: skip
        with pytest.raises(DigiwormError, match=name):
            reflex_circuit(muscles, **bad)
