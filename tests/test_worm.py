"""The whole worm: brain, command switch, motor circuits, muscles and body; its read-outs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from digiworm._errors import DigiwormError
from digiworm.body import (
    Body,
    CommandSwitch,
    Medium,
    behaviour,
    gait,
    muscles_from_atlas,
    reflex_circuit,
    simulate_reflex,
    simulate_worm,
    worm_from_atlas,
)
from digiworm.body._behaviour import _epochs

pytestmark = pytest.mark.usefixtures("x64")


@pytest.fixture(scope="module")
def worm(atlas):
    from digiworm.models import fitted

    return worm_from_atlas(atlas, fitted("graded"))


def _forced(worm, bias):
    """The worm with its switch held on one side (no noise, a strong bias)."""
    return eqx.tree_at(lambda w: (w.switch.bias, w.switch.noise), worm, (bias, 0.0))


def test_the_backward_circuit_crawls_backward_with_a_tail_to_head_wave(atlas):
    """The A-type circuit is the B-type one mirrored: pushed by the stretch anterior to each
    unit, it makes a tail-to-head wave and the worm crawls backward on agar."""
    muscles = muscles_from_atlas(atlas, drive_gain=3.0)
    circuit = reflex_circuit(muscles, "backward")
    classes = {cls for cls, _, _ in circuit.unit_of}
    assert classes == {"DA", "VA", "DD", "VD"}
    run = simulate_reflex(Body(), Medium.agar(), muscles, circuit, 12.0)
    g = gait(run.body, 1.0, discard_s=6.0)
    assert g["direction"] == "backward" and g["wave_direction"] == "tail to head"
    with pytest.raises(DigiwormError, match="direction"):
        reflex_circuit(muscles, "sideways")


def test_command_shares_come_from_the_connectome(worm):
    """AVA makes most of the A-types' command input (Cook et al. 2019 synapses + gap
    junctions), AVB most of the B-types'; ablating AVA leaves the rest's share."""
    names = list(worm.names)
    back = np.asarray(worm.backward_share)
    fwd = np.asarray(worm.forward_share)
    assert back.sum() == pytest.approx(1.0) and fwd.sum() == pytest.approx(1.0)
    ava = back[[names.index("AVAL"), names.index("AVAR")]].sum()
    avb = fwd[[names.index("AVBL"), names.index("AVBR")]].sum()
    assert ava > 0.5 and avb > 0.5
    ablated = worm.ablate(["AVAL", "AVAR"])
    share_f, share_b = (float(x) for x in ablated.command_shares())
    assert share_f == pytest.approx(1.0) and share_b == pytest.approx(1 - ava)
    # the switch averages only the backward command neurons still alive
    w = np.asarray(ablated.switch.backward)
    assert w[names.index("AVAL")] == 0 and w.sum() == pytest.approx(1.0)
    with pytest.raises(DigiwormError, match="not neurons"):
        worm.ablate(["NOPE"])


def test_a_perturbed_brain_is_seen_against_the_wild_types_rest(worm, atlas):
    """with_brain keeps the switch's rest, so a knockout's shift of the command neurons at
    rest reaches the switch (built around the knocked-out brain it would be subtracted away);
    ablations already made stay made; a brain of other neurons is refused."""
    from digiworm.experiments import Knockout
    from digiworm.simulate import rest_state

    knocked = Knockout(atlas.gene("unc-31"), atlas)(worm.brain)
    at_rest = knocked.readout(rest_state(knocked, dt_s=worm.brain_dt_s))
    perturbed = worm.with_brain(knocked)
    assert eqx.tree_equal(perturbed.brain, knocked)
    assert np.array_equal(np.asarray(perturbed.switch.rest), np.asarray(worm.switch.rest))
    assert abs(float(perturbed.switch.drive(at_rest))) > 1e-3
    rebuilt = worm_from_atlas(atlas, knocked)
    assert abs(float(rebuilt.switch.drive(at_rest))) < 1e-9
    no_ava = worm.ablate(["AVAL", "AVAR"]).with_brain(knocked)
    ava = list(worm.names).index("AVAL")
    assert float(no_ava.alive[ava]) == 0
    assert np.isnan(float(no_ava.brain.readout(rest_state(no_ava.brain, dt_s=0.02))[ava]))
    with pytest.raises(DigiwormError, match="302 neurons"):
        worm.with_brain(SimpleNamespace(names=("AVAL", "AVAR")))


def test_the_switch_picks_the_direction_and_ablation_weakens_it(worm):
    """Held forward the worm crawls forward; held backward it crawls backward; without AVA
    (most of the A-types' command input) it reverses more slowly; without AVB and PVC it
    cannot crawl forward."""
    medium = Medium.agar()
    key = jax.random.PRNGKey(0)
    fwd = behaviour(simulate_worm(_forced(worm, -3.0), medium, 12.0, key=key))
    back = behaviour(simulate_worm(_forced(worm, 3.0), medium, 12.0, key=key))
    assert fwd["fraction_backward"] == 0 and fwd["speed_mm_per_s"] > 0.01
    assert fwd["wave_direction"] == "head to tail" and fwd["reversals_per_min"] == 0
    assert back["fraction_backward"] > 0.8 and back["reverse_speed_mm_per_s"] > 0.005
    no_ava = _forced(worm.ablate(["AVAL", "AVAR"]), 3.0)
    slow = behaviour(simulate_worm(no_ava, medium, 12.0, key=key))
    assert (slow["reverse_speed_mm_per_s"] or 0.0) < 0.6 * back["reverse_speed_mm_per_s"]
    no_fwd = _forced(worm.ablate(["AVBL", "AVBR", "PVCL", "PVCR"]), -3.0)
    stuck = behaviour(simulate_worm(no_fwd, medium, 12.0, key=key))
    assert stuck["speed_mm_per_s"] < 0.1 * fwd["speed_mm_per_s"]


def test_the_switch_alone_reverses_at_the_calibrated_rate():
    """With the command neurons at rest the switch's noise alone makes reversals: its
    parameters were chosen so that they come about 2.3 times a minute and last about 1.9 s
    (Roberts et al. 2016), so this checks the calibration, in sample."""
    n = 1
    sw = CommandSwitch(backward=jnp.zeros(n), forward=jnp.zeros(n), rest=jnp.zeros(n))
    dt, steps = 0.02, 50_000  # 1000 s per walk

    def walk(key):
        xi = jax.random.normal(key, (steps,))
        return jax.lax.scan(lambda r, x: (sw.step(r, jnp.zeros(n), dt, x),) * 2, -1.0, xi)[1]

    r = np.asarray(jax.vmap(walk)(jax.random.split(jax.random.PRNGKey(7), 8)))
    rates, lengths = [], []
    for trace in r:  # backward once r passes +0.3, forward again below -0.3
        state, on = False, np.zeros(trace.size, bool)
        for i, x in enumerate(trace):
            state = (x > 0.3) if not state else not (x < -0.3)
            on[i] = state
        starts = np.count_nonzero(np.diff(on.astype(int)) == 1)
        rates.append(starts / (steps * dt / 60))
        lengths.append(on.sum() * dt / max(starts, 1))
    assert 1.6 <= np.mean(rates) <= 4.0
    assert 1.0 <= np.mean(lengths) <= 3.0


def test_touch_drives_its_receptors_and_is_checked(worm):
    """An anterior touch drives ALM and AVM for its length; the brain's output of those
    receptors rises then. Touches outside the run or elsewhere are refused by name."""
    ds = simulate_worm(worm, Medium.agar(), 6.0, key=jax.random.PRNGKey(1),
                       touch=(("anterior", 2.0),), touch_amplitude=10.0)  # fmt: skip
    on = ds["touch"].values > 0
    assert on.sum() == 50 and set(np.unique(ds["touch"].values[on])) == {3}
    alm = ds[ds.attrs["output_kind"]].sel(neuron="ALML").values
    assert alm[on].mean() > alm[ds["time"].values < 2.0].mean() + 1e-3
    assert ds["xy_mm"].dims == ("time", "segment", "xy")
    with pytest.raises(DigiwormError, match="outside the run"):
        simulate_worm(worm, Medium.agar(), 6.0, key=jax.random.PRNGKey(1),
                      touch=(("anterior", 7.0),))  # fmt: skip
    with pytest.raises(DigiwormError, match="dorsal"):
        simulate_worm(worm, Medium.agar(), 6.0, key=jax.random.PRNGKey(1),
                      touch=(("dorsal", 1.0),))  # fmt: skip


def _track(velocity_mm_per_s: np.ndarray, dt: float = 0.02) -> xr.Dataset:
    """A straight body pointing along +x whose centroid moves with the given velocity."""
    n_seg = 8
    x = np.concatenate([[0.0], np.cumsum(velocity_mm_per_s[1:] * dt)])
    body_x = -np.linspace(0, 1, n_seg)
    xy = np.zeros((x.size, n_seg, 2))
    xy[:, :, 0] = x[:, None] + body_x[None, :] + 0.5
    t = (np.arange(x.size) + 1) * dt
    return xr.Dataset(
        {
            "xy_mm": (("time", "segment", "xy"), xy),
            "angle_rad": (("time", "segment"), np.full((x.size, n_seg), np.pi)),
            "curvature_per_mm": (("time", "joint"), np.zeros((x.size, n_seg - 1))),
            "muscle_activation": (("time", "muscle"), np.zeros((x.size, 2))),
        },
        coords={"time": t, "muscle": ["MVL01", "MDL01"]},
        attrs={"body_length_mm": 1.0, "touch": "anterior@5"},
    )


def test_reversals_are_read_from_the_motion():
    """Forward 10 s, backward 3 s, a 0.2 s forward flicker, backward 1 s more, forward 6 s: one
    reversal lasting 4.2 s (the flicker is shorter than an epoch), speeds as moved; the
    touch at 5 s is not followed by backward motion within 3 s."""
    dt = 0.02
    pieces = [(10.0, 0.2), (3.0, -0.1), (0.2, 0.2), (1.0, -0.1), (6.0, 0.2)]
    v = np.concatenate([np.full(int(round(d / dt)), s) for d, s in pieces])
    out = behaviour(_track(v, dt), discard_s=0.0, smooth_s=0.1)
    assert out["reversals_per_min"] == pytest.approx(60 / 20.2, rel=0.02)
    assert out["reversal_s"] == pytest.approx(4.2, abs=0.15)
    assert out["speed_mm_per_s"] == pytest.approx(0.2, rel=0.05)
    assert out["reverse_speed_mm_per_s"] == pytest.approx(0.1 - 0.3 * 0.2 / 4.2, rel=0.1)
    assert out["touch_reversals"] == [False]
    assert _epochs(np.array([1, 1, 1, -1, 1, 1, -1, -1, -1]), 2) == [(0, 6, 1), (6, 9, -1)]


def test_behave_cli_writes_the_run_and_refuses_bad_input(tmp_path, atlas):
    from digiworm.cli import app

    out, summary = tmp_path / "w.nc", tmp_path / "w.json"
    argv = ["behave", "--duration", "8", "--medium", "water", "--touch", "posterior@3",
            "--ablate", "AVAL", "--out", str(out), "--json", str(summary)]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    s = json.loads(summary.read_text())
    assert s["request"]["ablate"] == ["AVAL"] and s["request"]["touch"] == ["posterior@3"]
    assert len(s["touch_reversals"]) == 1 and s["body_length_change"] <= 0
    assert any(r["id"] == "swim_frequency" for r in s["scores"])
    assert "assumed" in json.dumps(s["evidence"])
    ds = xr.load_dataset(out, engine="h5netcdf")
    assert ds.attrs["ablated"] == "AVAL" and ds.attrs["medium"] == "water"
    bad = {
        "honey": ["--medium", "honey"],
        "-1": ["--medium", "-1"],
        "blend:1.5": ["--medium", "blend:1.5"],
        "sideways": ["--touch", "sideways@2"],
        "outside the run": ["--touch", "anterior@70"],
        "AVAX": ["--ablate", "AVAX"],
        "conductance": ["--model", "conductance"],
        "duration": ["--duration", "1"],
    }
    for needle, extra in bad.items():
        result = CliRunner().invoke(app, ["behave", "--out", str(tmp_path / "x.nc"), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert needle in result.output, (extra, result.output)


def test_neuromuscular_rules_follow_the_genes_and_drugs(worm):
    """GABA loss removes inhibition; each AChR class carries its (assumed) share of the
    evoked drive; levamisole drives every muscle through the L-AChR only, so L-AChR mutants
    resist it; aldicarb raises the evoked drive and adds tonic drive; genes and drugs without
    a rule at the junction are said to act on the brain only."""
    from digiworm.body import L_ACHR_SHARE, neuromuscular_perturbation

    m = worm.muscles
    gaba, _ = neuromuscular_perturbation(m, ("unc-25",))
    assert float(gaba.inhibitory_gain) == 0 and float(gaba.excitatory_gain) == 1
    l_lost, _ = neuromuscular_perturbation(m, ("unc-29",))
    assert float(l_lost.excitatory_gain) == pytest.approx(1 - L_ACHR_SHARE)
    both, _ = neuromuscular_perturbation(m, ("unc-29", "acr-16"))
    assert float(both.excitatory_gain) == 0
    lev, _ = neuromuscular_perturbation(m, (), (("levamisole", 500.0),))
    assert float(lev.tonic) == pytest.approx(0.5)  # at the table's (assumed) EC50
    resistant, _ = neuromuscular_perturbation(m, ("lev-1",), (("levamisole", 500.0),))
    assert float(resistant.tonic) == 0
    ald, effects = neuromuscular_perturbation(m, ("unc-31",), (("aldicarb", 1000.0),))
    assert ald.excitatory_gain > 1 and ald.tonic > 0
    assert effects[0] == {"perturbation": "unc-31", "at the junction": "no rule (brain only)"}
    assert "assumed" in effects[1]["evidence"]
    with pytest.raises(DigiwormError, match="dose"):
        neuromuscular_perturbation(m, (), (("levamisole", -1.0),))


def test_levamisole_contracts_both_sides_and_gaba_loss_co_contracts(worm):
    """Crawling forward, levamisole raises the co-contraction of dorsal and ventral muscles
    several-fold (the hypercontraction of the assay), the body shortens and the worm stops;
    an unc-29 worm is unaffected by it and keeps moving; losing GABA (unc-25) raises
    co-contraction too (the shrinker's direction, McIntire et al. 1993)."""
    from digiworm.body import neuromuscular_perturbation

    forced = _forced(worm, -3.0)

    def run(knockout=(), drugs=()):
        m, _ = neuromuscular_perturbation(worm.muscles, knockout, drugs)
        ds = simulate_worm(eqx.tree_at(lambda w: w.muscles, forced, m), Medium.agar(), 8.0,
                           key=jax.random.PRNGKey(0))  # fmt: skip
        return behaviour(ds, discard_s=3.0)

    wt, lev = run(), run(drugs=(("levamisole", 1000.0),))
    unc29, unc29_lev = run(("unc-29",)), run(("unc-29",), (("levamisole", 1000.0),))
    assert lev["co_contraction"] > 4 * wt["co_contraction"]
    assert lev["body_length_change"] < wt["body_length_change"] < 0
    assert unc29_lev["co_contraction"] == pytest.approx(unc29["co_contraction"], rel=1e-6)
    assert lev["speed_mm_per_s"] < 0.1 * wt["speed_mm_per_s"]
    # unc-29 crawls (slower: half its evoked drive is gone), with levamisole or without
    assert unc29_lev["speed_mm_per_s"] == pytest.approx(unc29["speed_mm_per_s"], rel=1e-6)
    assert unc29_lev["speed_mm_per_s"] > 0.1 * wt["speed_mm_per_s"]
    assert run(("unc-25",))["co_contraction"] > 2 * wt["co_contraction"]


def test_gait_adaptation_tabulates_the_loop_from_water_to_agar(atlas):
    """The same loop swims faster than it crawls (the direction of gait adaptation); the
    media run from water to agar by rising normal drag, and the table says whether its
    frequency and wavelength fall monotonically."""
    from digiworm.body import adaptation_media, gait_adaptation

    media = adaptation_media(3)
    assert media[0].name == Medium.between(0.0).name
    assert media[0].drag_normal_Ns_per_m2 == pytest.approx(Medium.water().drag_normal_Ns_per_m2)
    assert media[-1].drag_normal_Ns_per_m2 == pytest.approx(Medium.agar().drag_normal_Ns_per_m2)
    muscles = muscles_from_atlas(atlas, drive_gain=3.0)
    table = gait_adaptation(muscles, reflex_circuit(muscles), [media[-1], media[0]],
                            duration_s=12.0, discard_s=6.0)  # fmt: skip
    assert list(table["drag_normal_Ns_per_m2"]) == sorted(table["drag_normal_Ns_per_m2"])
    assert table["frequency_hz"].iloc[0] > 1.2 * table["frequency_hz"].iloc[-1]
    assert isinstance(table.attrs["monotonic"], bool)
    with pytest.raises(DigiwormError, match="media"):
        adaptation_media(1)


def test_behave_drives_touch_in_the_unit_simulate_uses(atlas):
    """The touch's drive is the brain's stimulation unit (the one `digiworm simulate` uses):
    1 for the identified worm and for a linear model, 40 mV for an unidentified graded one."""
    from digiworm.app._simulation import stimulation_unit
    from digiworm.models import fitted, graded_from_atlas, linear_from_atlas

    assert stimulation_unit(fitted("graded")) == 1.0
    assert stimulation_unit(linear_from_atlas(atlas)) == 1.0
    assert stimulation_unit(graded_from_atlas(atlas)) == 40.0


def test_simulate_is_the_one_entry_point_for_a_worm(worm):
    """digiworm.simulate runs a worm once per protocol condition (vmapped, paired noise): the
    unstimulated condition is simulate_worm's run; driving AVA turns the worm backward for
    the pulse (ChR2 in AVA starts reversals: Guo et al. 2009 Nat Methods 6:891), driving AVB
    does not; what a worm does not take is refused by name."""
    from digiworm.simulate import Protocol, simulate

    key = jax.random.PRNGKey(0)
    protocol = Protocol.single(
        worm.names, [[], ["AVAL", "AVAR"], ["AVBL", "AVBR"]], amplitude=100.0, onset_s=2.0,
        duration_s=4.0, labels=["none", "AVA", "AVB"],
    )  # fmt: skip
    ds = simulate(worm, protocol, 8.0, medium=Medium.agar(), key=key)
    assert list(ds["condition"].values) == ["none", "AVA", "AVB"]
    assert ds["xy_mm"].dims == ("condition", "time", "segment", "xy")
    alone = simulate_worm(worm, Medium.agar(), 8.0, key=key)
    np.testing.assert_allclose(
        ds["xy_mm"].sel(condition="none").values, alone["xy_mm"].values, atol=1e-6
    )
    gate = ds["backward_gate"].sel(time=slice(3.0, 6.0)).mean("time")
    assert float(gate.sel(condition="AVA")) > 0.7
    assert float(gate.sel(condition="AVB")) < 0.1 and float(gate.sel(condition="none")) < 0.3
    stim = ds["stimulus"].sel(condition="AVA", neuron="AVAL")
    assert float(stim.sel(time=3.0)) == pytest.approx(100.0) and float(stim.sel(time=7.0)) == 0
    with pytest.raises(DigiwormError, match="needs a medium"):
        simulate(worm, protocol, 8.0, key=key)
    with pytest.raises(DigiwormError, match="PRNGKey"):
        simulate(worm, protocol, 8.0, medium=Medium.agar())
    with pytest.raises(DigiwormError, match="takes no save_dt_s, noise"):
        simulate(worm, protocol, 8.0, medium=Medium.agar(), key=key, save_dt_s=0.5,
                 noise=object())  # fmt: skip
    with pytest.raises(DigiwormError, match="no body"):
        simulate(worm.brain, protocol, 8.0, medium=Medium.agar())


def test_perturbed_worms_run_as_one_batch(worm, atlas):
    """simulate_worms runs worms that differ in their arrays (an ablation, a drug at the
    junction, a stronger touch) in one vmap, each from its own rest with the shared noise:
    each run is simulate_worm's on that worm; worms of different make are refused."""
    from digiworm.body import neuromuscular_perturbation, simulate_worms
    from digiworm.models import fitted

    muscles, _ = neuromuscular_perturbation(worm.muscles, (), (("levamisole", 300.0),))
    worms = [worm, worm.ablate(["AVAL", "AVAR"]), eqx.tree_at(lambda w: w.muscles, worm, muscles)]
    key, touch = jax.random.PRNGKey(3), (("anterior", 1.0),)
    runs = simulate_worms(worms, Medium.agar(), 4.0, key=key, touch=touch,
                          touch_amplitude=[10.0, 10.0, 30.0])  # fmt: skip
    for w, amp, got in zip(worms, (10.0, 10.0, 30.0), runs):
        ref = simulate_worm(w, Medium.agar(), 4.0, key=key, touch=touch, touch_amplitude=amp)
        for var in ("xy_mm", "muscle_activation", "command", ref.attrs["output_kind"]):
            np.testing.assert_allclose(got[var], ref[var], rtol=1e-7, atol=1e-9, err_msg=var)
        assert got.attrs == ref.attrs
    # the three really differ (the batch is not one worm three times)
    assert not np.allclose(runs[0]["xy_mm"], runs[2]["xy_mm"], atol=1e-3)
    assert runs[1].attrs["ablated"] == "AVAL,AVAR"
    linear = worm_from_atlas(atlas, fitted("linear"))
    with pytest.raises(DigiwormError, match="cannot run in one batch"):
        simulate_worms([worm, linear], Medium.agar(), 1.0, key=key)
    with pytest.raises(DigiwormError, match="at least one worm"):
        simulate_worms([], Medium.agar(), 1.0, key=key)
