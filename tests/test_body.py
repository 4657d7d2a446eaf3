"""The body: a planar rod in resistive drag, checked against physics and against ElegansBot."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digiworm._errors import DigiwormError
from digiworm.body import (
    Body,
    Medium,
    eigenworm_variance,
    gait,
    simulate_body,
    travelling_wave,
)
from digiworm.body._peers import elegansbot_wave

WATER_WAVE = (
    1.76,
    1.5,
)  # Hz, body lengths: swimming (behaviour targets swim_frequency, swim_wavelength)
AGAR_WAVE = (0.30, 0.65)


def _run(body, medium, f, lam, cycles=4, amplitude=7.0, **kw):
    with jax.enable_x64(True):
        wave = travelling_wave(body, amplitude, lam, f)
        traj = simulate_body(body, medium, wave, cycles / abs(f), **kw)
        return traj, gait(traj, body.length_mm, discard_s=1 / abs(f))


def test_isotropic_drag_cannot_move_the_centre_of_mass():
    """With equal normal and tangential drag the total drag force is −C·l·Σ vⱼ, so force balance
    pins the mean of the segment velocities, i.e. the centre of mass: any wave goes nowhere."""
    body = Body(n_segments=24)
    traj, g = _run(body, Medium(1.0, 1.0), 1.0, 0.8, cycles=3, save_every=20)
    assert np.abs(np.asarray(traj.q)[:, :2]).max() < 1e-9
    assert abs(g["forward_mm_per_s"]) < 1e-9


def test_the_wave_direction_sets_the_direction_of_travel_and_mirrors_the_path():
    """A head-to-tail wave drives forward and the same wave run tail to head drives backward
    at the same speed (to 1 %); flipping the curvature's sign mirrors the path exactly."""
    body = Body(n_segments=24)
    water = Medium.water()
    _, fwd = _run(body, water, 1.76, 1.5, save_every=5)
    _, back = _run(body, water, -1.76, 1.5, save_every=5)
    assert fwd["direction"] == "forward" and fwd["wave_direction"] == "head to tail"
    assert back["direction"] == "backward" and back["wave_direction"] == "tail to head"
    assert back["speed_mm_per_s"] == pytest.approx(fwd["speed_mm_per_s"], rel=0.01)
    with jax.enable_x64(True):
        wave = travelling_wave(body, 7.0, 1.5, 1.76)
        a = simulate_body(body, water, wave, 1.0, save_every=50)
        b = simulate_body(body, water, lambda t: -wave(t), 1.0, save_every=50)
    # mirror in the x axis (the default heading): y → −y, ψ → −ψ (mod 2π)
    np.testing.assert_allclose(np.asarray(b.q)[:, 0], np.asarray(a.q)[:, 0], atol=1e-10)
    np.testing.assert_allclose(np.asarray(b.q)[:, 1], -np.asarray(a.q)[:, 1], atol=1e-10)


def test_scaling_drag_stiffness_and_viscosity_together_changes_nothing():
    """Force balance is linear in the drag, stiffness and internal viscosity: scaling all three
    by the same factor leaves the motion unchanged (a viscous fluid of twice water's viscosity
    with a body twice as stiff and viscous moves exactly as in water)."""
    base, double = Body(n_segments=24), Body(n_segments=24, bending_stiffness_Nm2=14e-15,
                                             internal_viscosity_Nm2s=2.5e-15)  # fmt: skip
    a, _ = _run(base, Medium.newtonian(1e-3), 1.76, 1.5, cycles=2, save_every=25)
    b, _ = _run(double, Medium.newtonian(2e-3), 1.76, 1.5, cycles=2, save_every=25)
    np.testing.assert_allclose(np.asarray(b.q), np.asarray(a.q), atol=1e-9)


def test_the_step_has_converged_at_the_default():
    body = Body(n_segments=24)
    for medium, (f, lam) in ((Medium.water(), WATER_WAVE), (Medium.agar(), AGAR_WAVE)):
        _, coarse = _run(body, medium, f, lam, cycles=3, dt_s=1e-3, save_every=10)
        _, fine = _run(body, medium, f, lam, cycles=3, dt_s=2.5e-4, save_every=40)
        assert coarse["speed_mm_per_s"] == pytest.approx(fine["speed_mm_per_s"], rel=5e-3)


def test_a_passive_bent_body_straightens_and_stays_put():
    """No muscles (preferred curvature 0), bent start: the elastic energy falls monotonically
    (dissipation), and with no external force the centre of mass barely moves."""
    body = Body(n_segments=24)
    with jax.enable_x64(True):
        bent = travelling_wave(body, 6.0, 1.0, 0.0)
        psi = jnp.concatenate([jnp.zeros(1), jnp.cumsum(bent(0.0) * body.segment_mm)])
        q0 = jnp.concatenate([jnp.zeros(2), psi])
        traj = simulate_body(body, Medium.water(), lambda t: jnp.zeros(23), 2.0, q0=q0,
                             save_every=20)  # fmt: skip
    bend = np.asarray(traj.curvature_per_mm)
    energy = (bend**2).sum(axis=1)
    assert np.all(np.diff(energy) <= 1e-12) and energy[-1] < 1e-3 * energy[0]
    assert np.linalg.norm(np.asarray(traj.q)[-1, :2]) < 0.05 * body.length_mm


def test_the_gait_read_out_recovers_an_imposed_wave():
    """A body 100× stiffer than the worm's follows its preferred curvature: the read-outs give
    back the imposed frequency, wavelength and amplitude, and two eigenworms hold a pure
    travelling wave."""
    stiff = Body(n_segments=48, bending_stiffness_Nm2=7e-13, internal_viscosity_Nm2s=1.25e-17)
    traj, g = _run(stiff, Medium.agar(), 0.5, 0.65, cycles=3, dt_s=1e-3, save_every=10)
    assert g["frequency_hz"] == pytest.approx(0.5, rel=0.01)
    assert g["wavelength_body_lengths"] == pytest.approx(0.65, rel=0.02)
    assert g["amplitude_per_body_length"] == pytest.approx(7.0, rel=0.03)
    assert eigenworm_variance(traj, 2, discard_s=2.0) > 0.99


@pytest.mark.parametrize(
    "medium, drag, wave",
    [("water", (5.2e3, 5.2e3 / 1.5), WATER_WAVE), ("agar", (1.28e8, 1.28e8 / 40), AGAR_WAVE)],
)
def test_the_body_moves_as_elegansbot_does(medium, drag, wave):
    """Same body (25 segments, bending stiffness 7×10⁻¹⁵ N·m², internal viscosity 1.25×10⁻¹⁵
    N·m²·s), same drag, same imposed joint-angle wave (κL = 7): ElegansBot, a Newtonian
    rigid-rod solver with masses at dt 50 µs, and this overdamped solver at 1 ms agree on the
    forward speed within 3 % and on how much of the imposed bending the body achieves within
    2 %, in water and on agar. Its drag is whole-body µg/s; per unit length (L = 1 mm) that is
    10⁻⁶ N·s/m² per unit."""
    f, lam = wave
    eb_speed, eb_ratio = elegansbot_wave(*drag, f, lam)
    body = Body(n_segments=25)
    ours = Medium(drag[0] * 1e-6, drag[1] * 1e-6, name=medium)
    _, g = _run(body, ours, f, lam, cycles=3, save_every=1)
    assert eb_speed > 0 and g["direction"] == "forward"
    assert g["forward_mm_per_s"] == pytest.approx(eb_speed, rel=0.03)
    assert g["amplitude_per_body_length"] / 7.0 == pytest.approx(eb_ratio, rel=0.02)


def test_bad_input_is_refused_by_name():
    body = Body(n_segments=10)
    with pytest.raises(DigiwormError, match="n_segments"):
        Body(n_segments=2)
    with pytest.raises(DigiwormError, match="bending_stiffness_Nm2"):
        Body(bending_stiffness_Nm2=-1.0)
    with pytest.raises(DigiwormError, match="viscosity"):
        Medium.newtonian(float("nan"))
    with pytest.raises(DigiwormError, match="blend"):
        Medium.between(1.5)
    with pytest.raises(DigiwormError, match="one value per joint"):
        simulate_body(body, Medium.water(), lambda t: jnp.zeros(3), 1.0)
    with pytest.raises(DigiwormError, match="duration_s"):
        simulate_body(body, Medium.water(), travelling_wave(body, 5, 1, 1), -1.0)
    with pytest.raises(DigiwormError, match="wavelength"):
        travelling_wave(body, 5, 0.0, 1)


def test_media_between_water_and_agar_order_their_drag():
    blends = [Medium.between(x) for x in np.linspace(0, 1, 6)]
    normal = [m.drag_normal_Ns_per_m2 for m in blends]
    assert np.all(np.diff(normal) > 0)
    assert normal[0] == pytest.approx(Medium.water().drag_normal_Ns_per_m2)
    assert normal[-1] == pytest.approx(Medium.agar().drag_normal_Ns_per_m2)
    assert Medium.agar().anisotropy == pytest.approx(40.0)
    assert Medium.water().anisotropy == pytest.approx(1.5)


def test_the_behaviour_targets_are_cited_and_consistent():
    from digiworm.body import behaviour_targets

    t = behaviour_targets()
    assert t.index.is_unique and len(t) >= 15
    assert set(t["evidence"]) <= {"measured", "derived", "measured (qualitative)",
                                  "recalled (unverified)"}  # fmt: skip
    assert t["citation"].str.contains(r"\(\d{4}\)").all() and t["doi"].str.startswith("10.").all()
    ranged = t.dropna(subset=["low", "high"])
    assert (ranged["low"] <= ranged["value"]).all() and (ranged["value"] <= ranged["high"]).all()
    assert {"swim_frequency", "crawl_frequency", "crawl_speed", "eigenworms"} <= set(t.index)


def test_a_gait_is_scored_against_the_targets_of_its_medium():
    from digiworm.body import score_behaviour

    scored = score_behaviour({"frequency_hz": 0.3, "speed_mm_per_s": 0.05}, "agar")
    assert set(scored.index) == {"crawl_frequency", "crawl_speed"}
    assert scored.loc["crawl_frequency", "in_range"]
    assert not scored.loc["crawl_speed", "in_range"]
    assert scored.loc["crawl_speed", "relative_difference"] == pytest.approx(0.05 / 0.19 - 1)
    water = score_behaviour({"speed_mm_per_s": 0.35}, "water")
    assert water.loc["swim_speed", "in_range"] is None  # the source gives no range
    with pytest.raises(DigiwormError, match="unknown medium"):
        score_behaviour({}, "mud")


def test_plot_gait_writes_a_figure(tmp_path):
    from digiworm.body import plot_gait

    body = Body(n_segments=12)
    traj, _ = _run(body, Medium.agar(), 0.5, 0.65, cycles=2, save_every=50)
    out = tmp_path / "gait.png"
    plot_gait({"agar": traj, "again": traj}, body.length_mm, out)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(DigiwormError, match="at least one run"):
        plot_gait({}, 1.0, out)


def test_the_closed_form_drag_matrix_equals_the_automatic_jacobians():
    """The drag matrix assembled in closed form (what every step uses) equals the one built
    from jax.jacfwd of the segment centres, for a bent, displaced body in water and on agar,
    at several segment counts."""
    from digiworm.body._rod import _drag_matrix, _drag_matrix_autodiff, initial_coordinates

    with jax.enable_x64(True):
        for n in (4, 25, 48):
            body = Body(n_segments=n)
            kappa = 5.0 * np.sin(2 * np.pi * body.joint_positions() / 0.65)
            q = initial_coordinates(body, jnp.asarray(kappa), heading_rad=0.7)
            q = q.at[:2].set(jnp.array([0.3, -0.2]))
            for medium in (Medium.water(), Medium.agar()):
                fast, ref = _drag_matrix(body, medium, q), _drag_matrix_autodiff(body, medium, q)
                scale = float(jnp.abs(ref).max())
                np.testing.assert_allclose(np.asarray(fast), np.asarray(ref), atol=1e-13 * scale)


def test_tone_stiffens_each_joint_to_the_analytic_equilibrium():
    """A held preferred curvature κ with tone σ per joint: the bending energy
    ½k[(b − lκ)² + σb²] is least at b = lκ/(1 + σ), so the body settles to curvature
    κ/(1 + σ) joint by joint; no tone is the passive body's κ."""
    from digiworm.body._rod import _stepper, initial_coordinates

    body = Body(n_segments=12)
    with jax.enable_x64(True):
        kappa = jnp.asarray(3.0 * np.cos(2 * np.pi * body.joint_positions()))
        tone = jnp.asarray(np.linspace(0.0, 4.0, 11))
        step = jax.jit(_stepper(body, Medium.water(), jnp.float64))
        for sigma, expected in ((None, kappa), (tone, kappa / (1.0 + tone))):
            q = initial_coordinates(body, jnp.zeros(11))

            def run(q, _, sigma=sigma):
                return step(q, kappa, 1e-3, sigma), None

            q, _ = jax.lax.scan(run, q, None, length=20_000)
            np.testing.assert_allclose(np.asarray(body.curvature(q)), np.asarray(expected),
                                       rtol=1e-6, atol=1e-9)  # fmt: skip


def test_a_still_body_has_no_frequency_or_wavelength():
    """A body that does not undulate gives NaN frequency and wavelength and no wave
    direction, rather than the spectrum's noise or an infinite wavelength."""
    body = Body(n_segments=24)
    with jax.enable_x64(True):
        traj = simulate_body(body, Medium.agar(), lambda t: jnp.zeros(23), 3.0)
    g = gait(traj, body.length_mm)
    assert np.isnan(g["frequency_hz"]) and np.isnan(g["wavelength_body_lengths"])
    assert g["wave_direction"] == "none" and g["amplitude_per_body_length"] < 0.1


def test_the_stiffened_hessian_is_the_product_it_replaces():
    """The tone's Hessian, assembled as a tridiagonal block, equals k Dᵀ diag(1 + σ) D."""
    from digiworm.body._rod import _NM2_TO_INTERNAL, _difference, _stepper

    body = Body(n_segments=7)
    with jax.enable_x64(True):
        step = _stepper(body, Medium.water(), jnp.float64)
        q = jnp.asarray(np.random.default_rng(0).normal(size=9))
        kappa = jnp.asarray(np.random.default_rng(1).normal(size=6))
        tone = jnp.asarray(np.linspace(0.5, 2.0, 6))
        d = _difference(7, jnp.float64)
        k = body.bending_stiffness_Nm2 * _NM2_TO_INTERNAL / body.segment_mm
        h = k * d.T @ ((1.0 + tone)[:, None] * d)
        force = -k * d.T @ ((1.0 + tone) * (d @ q) - body.segment_mm * kappa)
        from digiworm.body._rod import _drag_matrix

        a = _drag_matrix(body, Medium.water(), q) + 0.5 * 1e-3 * h
        expected = q + jnp.linalg.solve(a, 1e-3 * force)
        np.testing.assert_allclose(np.asarray(step(q, kappa, 1e-3, tone)), np.asarray(expected),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
