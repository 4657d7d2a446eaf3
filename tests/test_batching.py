"""Batching: ensembles equal loops, shapes compile once, sustained stimulation is a transform."""

from __future__ import annotations

import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digiworm import DigiwormError
from digiworm.experiments import Stimulate
from digiworm.models import graded_from_atlas
from digiworm.simulate import Protocol, simulate, simulate_ensemble


@pytest.fixture(scope="module")
def members(atlas):
    return [graded_from_atlas(atlas, chem_per_synapse=c) for c in (0.01, 0.02, 0.04)]


def test_ensemble_equals_loop(members):
    stacked = jax.tree_util.tree_map(
        lambda *x: jnp.stack(x) if eqx.is_array(x[0]) else x[0], *members
    )
    protocol = Protocol.single(members[0].names, ["ASHL", ["AVAL", "AVAR"]], onset_s=1.0)
    ens = simulate_ensemble(stacked, protocol, 4.0, 0.02, settle_s=4.0)
    assert float(ens.dff.sel(condition="ASHL", neuron="ASHL").max()) > 0.05  # it was stimulated
    assert ens.dff.dims == ("member", "condition", "time", "neuron")
    for k, model in enumerate(members):
        one = simulate(model, protocol, 4.0, 0.02, settle_s=4.0)
        np.testing.assert_allclose(ens.dff.isel(member=k), one.dff, rtol=1e-5, atol=1e-7)
    # members really differ (the ensemble did not collapse onto one parameter set)
    assert float(np.abs(ens.dff.isel(member=0) - ens.dff.isel(member=2)).max()) > 1e-3


def test_same_shapes_compile_once(members, caplog):
    model = members[1]
    p1 = Protocol.single(model.names, ["ASHL", "AIYL"], amplitude=30.0)
    p2 = Protocol.single(model.names, ["RIML", "AVAL"], amplitude=20.0, onset_s=1.0)
    simulate(model, p1, 3.0, 0.02, settle_s=2.0)  # warm up this shape
    with jax.log_compiles(), caplog.at_level(logging.WARNING, logger="jax"):
        caplog.clear()
        simulate(model, p2, 3.0, 0.02, settle_s=2.0)  # same shapes, new values
        compiled = [r.getMessage() for r in caplog.records if "_run" in r.getMessage()]
    assert compiled == []
    with jax.log_compiles(), caplog.at_level(logging.WARNING, logger="jax"):
        caplog.clear()
        simulate(model, p2, 3.5, 0.02, settle_s=2.0)  # a longer run is a new shape
        compiled = [r.getMessage() for r in caplog.records if "_run" in r.getMessage()]
    assert compiled, "a new number of time steps must compile a new program"


def test_sustained_stimulation_equals_a_constant_input(members):
    model = members[1]
    stim = Stimulate(["ASHL"], 12.0)(model)
    i = model.names.index("ASHL")
    assert float(stim.v_rest_mV[i]) == pytest.approx(float(model.v_rest_mV[i]) + 12.0)
    # a constant protocol input from t = 0 onwards is the same equation
    p_const = Protocol.single(model.names, ["ASHL"], amplitude=12.0, onset_s=0.0,
                              duration_s=1000.0)  # fmt: skip
    none = Protocol.single(model.names, [[]])
    a = simulate(stim, none, 3.0, 0.02, settle_s=3.0, indicator=None)
    settled = simulate(model, p_const, 3.0, 0.02, settle_s=3.0, indicator=None)
    # both are driven by +12 mV in ASHL; the first also settled under it, so compare the ends
    np.testing.assert_allclose(a.activity.isel(time=-1), settled.activity.isel(time=-1), atol=2e-3)
    with pytest.raises(DigiwormError, match="finite"):
        Stimulate(["ASHL"], float("nan"))(model)
