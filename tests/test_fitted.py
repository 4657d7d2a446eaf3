"""The shipped fitted worm: provenance, checksums, and equality with what the pipeline fits.

The files in ``digiworm/models/data/fitted`` come from a full ``digiworm reproduce`` run. This
test refits the final models from the choices recorded in ``provenance.json`` (the
cross-validated unit and ridge) with the current code and default settings, and compares.
Tolerance: the refit is float32 Adam on another machine's BLAS, so steady-state responses must
agree to 1e-3 of their largest entry and the kernel time constants to 2 %.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from digiworm._errors import UnknownNameError
from digiworm.fit import small_signal_response
from digiworm.models import (
    FITTED_MODELS,
    GradedNetwork,
    LinearModel,
    fitted,
    fitted_heldout,
    fitted_provenance,
)


def _steady(model: LinearModel) -> np.ndarray:
    a = np.asarray(model.a_per_s, dtype=float)
    return -np.linalg.solve(a, np.diag(np.asarray(model.b_per_s, dtype=float)))


def test_shipped_models_come_from_a_full_run_with_their_scores():
    prov = fitted_provenance()
    assert prov["quick"] is False and prov["command"] == "digiworm reproduce"
    assert set(prov["files"]) == {f"model_{name}.dwm" for name in FITTED_MODELS}
    for name in FITTED_MODELS:
        model = fitted(name)  # checks the file's checksum against the provenance
        assert len(model.names) == 302
    graded = fitted("graded")
    assert isinstance(graded, GradedNetwork)
    # its identified readout (simulate reads it out with this gain, not GCaMP6s)
    assert graded.dff_per_activity == pytest.approx(prov["readout_gain"]["graded"], rel=1e-6)
    assert isinstance(fitted("linear"), LinearModel)
    for name in ("linear", "graded"):
        assert 0 < prov["heldout"][name]["pearson_clipped"] < prov["noise_ceiling"]
    with pytest.raises(UnknownNameError, match="did you mean"):
        fitted("graded_")
    # the kernel model's couplings are the linear network's: its held-out scores too
    assert fitted_heldout("kernel") == prov["heldout"]["linear"]
    with pytest.raises(UnknownNameError, match="did you mean"):
        fitted_heldout("lineer")


def test_the_ensemble_behind_the_shipped_worm(atlas):
    """The shipped linear worm is the mean of the refitted bootstrap members (cached after the
    first call); each graded member is a working graded network with its own readout gain."""
    from digiworm.reproduce import fitted_ensemble

    members = fitted_ensemble(atlas, "linear")
    assert len(members) == fitted_provenance()["settings"]["linear"]["ensemble_members"]
    mean = np.mean([np.asarray(m.a_per_s, dtype=float) for m in members], axis=0)
    shipped = np.asarray(fitted("linear").a_per_s, dtype=float)
    np.testing.assert_allclose(mean, shipped, atol=1e-5)
    spread = np.std([np.asarray(m.a_per_s, dtype=float) for m in members], axis=0)
    assert spread.max() > 1e-3  # the members differ: there is a spread to report
    graded = fitted_ensemble(atlas, "graded")  # from the cache now
    assert len(graded) == len(members) and isinstance(graded[0], GradedNetwork)
    gains = [g.dff_per_activity for g in graded]
    assert min(gains) < prov_gain() < max(gains) or np.allclose(gains, prov_gain(), rtol=0.05)
    with pytest.raises(UnknownNameError, match="did you mean"):
        fitted_ensemble(atlas, "graded_")


def prov_gain() -> float:
    return fitted_provenance()["readout_gain"]["graded"]


@pytest.mark.slow
def test_shipped_fitted_worm_is_what_the_pipeline_fits(atlas):
    from digiworm.reproduce._final import fit_final_models
    from digiworm.reproduce._pipeline import ReproduceSettings

    prov = fitted_provenance()
    settings = ReproduceSettings()
    # the shipped files were made with today's default settings
    assert prov["settings"] == json.loads(json.dumps(settings.describe()))
    final = prov["final"]["linear"]
    fits = fit_final_models(atlas, settings, final["unit"], final["ridge"])

    shipped, refit = _steady(fitted("linear")), _steady(fits.models["linear"])
    np.testing.assert_allclose(refit, shipped, atol=1e-3 * np.abs(shipped).max())

    def graded_response(model):
        rest = jnp.full(len(model.names), -35.0, dtype=model.v_rest_mV.dtype)  # the fit's rest
        r, _, residual = small_signal_response(model, rest, 20)
        assert float(residual) < 1e-2
        return np.asarray(r, dtype=float)

    shipped, refit = graded_response(fitted("graded")), graded_response(fits.models["graded"])
    np.testing.assert_allclose(refit, shipped, atol=1e-3 * np.abs(shipped).max())
    assert fits.graded.gain == pytest.approx(prov["readout_gain"]["graded"], rel=1e-3)

    a_shipped = np.asarray(fitted("kernel").a_per_s, dtype=float)
    np.testing.assert_allclose(fits.tau_s, -1.0 / np.diag(a_shipped), rtol=0.02)
