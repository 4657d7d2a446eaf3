"""``digiworm validate`` and the perturbation-file schema."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from digiworm import UnknownNameError
from digiworm.cli import app
from digiworm.validate import SchemaError, check_perturbation, load_perturbation

runner = CliRunner()


@pytest.fixture(scope="module")
def measured(atlas):
    return atlas.functional("wt", kernel_time_s=None)


def _write(tmp_path, ds, name="pred.nc"):
    path = tmp_path / name
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_the_measured_atlas_scores_perfectly_against_itself(atlas, measured, tmp_path):
    path = _write(tmp_path, xr.Dataset({"dff": measured.dff}))
    out = tmp_path / "scores.json"
    result = runner.invoke(app, ["validate", str(path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["prediction"]["pearson_clipped"] == pytest.approx(1.0)
    assert scores["prediction"]["sign_accuracy"] == pytest.approx(1.0)
    assert scores["anatomy"]["pearson_clipped"] < 0.12
    assert 0.5 < scores["noise_ceiling"]["ceiling"] < 0.62


def test_a_subset_file_with_other_spellings_is_placed_on_the_atlas(atlas, measured, tmp_path):
    sub = measured.dff.sel(responding=["AVAL", "AWCR", "VB1"], stimulated=["ASHL", "AWCL"])
    sub = sub.assign_coords(responding=["aval", "AWCON", "VB01"], stimulated=["ASHL", "AWCOFF"])
    ds = check_perturbation(xr.Dataset({"dff": sub}), atlas.names)
    assert ds.dff.shape == (302, 302)
    assert ds.dff.sel(responding="AWCR", stimulated="AWCL").item() == pytest.approx(
        measured.dff.sel(responding="AWCR", stimulated="AWCL").item(), nan_ok=True
    )
    assert np.isnan(ds.dff.sel(responding="RIML", stimulated="ASHL"))


def test_per_trial_files_give_means_and_counts(atlas):
    trials = np.array([[[1.0, 3.0, np.nan]], [[np.nan, np.nan, np.nan]]])  # (2 resp, 1 stim, 3)
    ds = xr.Dataset(
        {"dff": (("responding", "stimulated", "trial"), trials)},
        coords={"responding": ["AVAL", "AVAR"], "stimulated": ["ASHL"]},
    )
    out = check_perturbation(ds, atlas.names)
    assert out.dff.sel(responding="AVAL", stimulated="ASHL").item() == pytest.approx(2.0)
    assert out.n_trials.sel(responding="AVAL", stimulated="ASHL").item() == 2
    assert np.isnan(out.dff.sel(responding="AVAR", stimulated="ASHL"))


def _bad(kind):
    coords = {"responding": ["AVAL", "AVAR"], "stimulated": ["ASHL", "ASHR"]}
    dff = (("responding", "stimulated"), np.ones((2, 2)))
    if kind == "no_dff":
        return xr.Dataset({"x": dff}, coords=coords)
    if kind == "dims":
        return xr.Dataset({"dff": (("a", "b"), np.ones((2, 2)))})
    if kind == "unknown":
        return xr.Dataset({"dff": dff}, coords={**coords, "responding": ["AVLA", "AVAR"]})
    if kind == "nan":
        return xr.Dataset({"dff": (dff[0], np.full((2, 2), np.nan))}, coords=coords)
    if kind == "negative":
        return xr.Dataset({"dff": dff, "n_trials": (dff[0], -np.ones((2, 2)))}, coords=coords)
    if kind == "q":
        return xr.Dataset({"dff": dff, "q": (dff[0], np.full((2, 2), 2.0))}, coords=coords)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "error", "needle"),
    [
        ("no_dff", SchemaError, "no variable 'dff'"),
        ("dims", SchemaError, "must have dims"),
        ("unknown", UnknownNameError, "did you mean AVAL"),
        ("nan", SchemaError, "all NaN"),
        ("negative", SchemaError, "negative"),
        ("q", SchemaError, "[0, 1]"),
    ],
)
def test_schema_errors(atlas, tmp_path, kind, error, needle):
    path = _write(tmp_path, _bad(kind))
    with pytest.raises(error, match=None) as info:
        load_perturbation(path, atlas.names)
    assert needle in str(info.value)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output


def test_missing_and_unreadable_files(atlas, tmp_path):
    for path, needle in ((tmp_path / "none.nc", "does not exist"), (tmp_path, "does not exist")):
        result = runner.invoke(app, ["validate", str(path)])
        assert result.exit_code == 2 and needle in result.output
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not netcdf")
    result = runner.invoke(app, ["validate", str(junk)])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_trial_means_with_per_trial_values_keep_both(atlas, measured):
    ds = check_perturbation(measured[["dff", "dff_trials", "q", "q_eq"]], atlas.names)
    assert ds.dff_trials.dims == ("responding", "stimulated", "trial")
    np.testing.assert_array_equal(ds.dff_trials.to_numpy(), measured.dff_trials.to_numpy())
    bad = measured[["dff"]].assign(dff_trials=measured.dff_trials.rename(trial="rep"))
    with pytest.raises(SchemaError, match="dff_trials"):
        check_perturbation(bad, atlas.names)


def test_a_file_with_several_models_asks_for_the_model_flag(atlas, measured, tmp_path):
    dff = xr.concat([measured["dff"], 2 * measured["dff"]], dim="model")
    path = _write(tmp_path, xr.Dataset({"dff": dff.assign_coords(model=["linear", "graded"])}))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # no traceback
    assert "--model NAME" in result.output and "linear, graded" in result.output
    assert runner.invoke(app, ["validate", str(path), "--model", "graded"]).exit_code == 0
    wrong = runner.invoke(app, ["validate", str(path), "--model", "linaer"])
    assert wrong.exit_code == 2 and "did you mean linear" in wrong.output


def test_pairs_whose_split_halves_disagree_have_no_ceiling_and_no_crash(atlas, tmp_path):
    # the unc-31 atlas's responses to the first four neurons: split halves do not agree
    names = atlas.names
    rng = np.random.default_rng(0)
    dff = xr.DataArray(rng.normal(size=(302, 4)), dims=("responding", "stimulated"),
                       coords={"responding": names, "stimulated": names[:4]})  # fmt: skip
    path = _write(tmp_path, xr.Dataset({"dff": dff}))
    result = runner.invoke(app, ["validate", str(path), "--strain", "unc31", "--json",
                                 str(tmp_path / "s.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no ceiling" in result.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["noise_ceiling"]["ceiling"] == 0 and scores["fraction_of_ceiling"] is None
