"""``digiworm neuron NAME --model``: channels, rests, current clamp, figure, errors."""

from __future__ import annotations

from typer.testing import CliRunner

from digiworm.cli import app

runner = CliRunner()


def test_neuron_model_shows_channels_and_runs_a_clamp(atlas, tmp_path):
    out = tmp_path / "rmd.png"
    result = runner.invoke(
        app, ["neuron", "rmdl", "--model", "--knockout", "cca-1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = result.output
    for expected in ("shl1", "egl19", "cca-1 knockout", "published RMD", "bistable"):
        assert expected in text
    # RMD is a published model: its cell is built with the map fitted without it, with a band
    assert "map fitted without RMD (held out)" in text
    assert "jackknife range" in text and "lowest rest over the jackknife ensemble" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_neuron_model_errors_name_the_bad_value(atlas, tmp_path):
    result = runner.invoke(app, ["neuron", "AVAL", "--model", "--knockout", "exp-2"])
    assert result.exit_code == 2 and "exp-2" in result.output and "no kinetic" in result.output
    result = runner.invoke(app, ["neuron", "AVAL", "--knockout", "shk-1"])
    assert result.exit_code == 2 and "--model" in result.output
    result = runner.invoke(app, ["neuron", "AVAL", "--model", "--out", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and ".png" in result.output
    assert not (tmp_path / "x.jpg").exists()


def test_reference_figures_draw(atlas):
    from digiworm.report._cell_figure import reference_figure

    fig = reference_figure("RMD")
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 4 + 8  # four steps and the eight published points


def test_the_model_view_band_brackets_the_prediction(atlas):
    from digiworm._neuron_model import MODEL_LABEL, neuron_model_view

    view = neuron_model_view(atlas, "AIYR")  # AIY's class: the held-out map of AIY
    assert view.reference == "AIY" and "without AIY" in view.map_label
    g = view.channels
    assert (g.g_lo_nS <= g.g_hi_nS).all() and (g.g_hi_nS > 0).all()
    lo, hi = view.rest_band_mV
    assert lo <= hi
    ends = view.responses[view.responses.model == MODEL_LABEL]
    assert (ends.end_lo_mV <= ends.end_hi_mV).all()
    # a neuron of no published class: the map fitted to all nine
    view = neuron_model_view(atlas, "ASHL", band=False)
    assert view.reference is None and view.map_label == "map fitted to all nine"
    assert view.rest_band_mV is None and view.channels.g_lo_nS.isna().all()
