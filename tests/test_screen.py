"""In-silico screens: condition tables, row checks, batched read-outs, resuming, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from digiworm._errors import DigiwormError
from digiworm.screen import check_table, parse_grid, read_table, run_screen

GRID = "drug=none,aldicarb;dose=0,100;knockout=none,unc-31"


def test_a_grid_is_every_combination_with_one_row_for_no_drug():
    t = parse_grid(GRID)
    # none is paired with dose 0 only: (none, 0) and (aldicarb, 0|100), times two knockouts
    assert len(t) == 6 and list(t.index) == [1, 2, 3, 4, 5, 6]
    assert set(zip(t["drug"], t["dose_uM"])) == {("none", "0"), ("aldicarb", "0"),
                                                 ("aldicarb", "100")}  # fmt: skip
    assert (t["stimulate"] == "AVAL").all() and (t["model"] == "graded").all()
    with pytest.raises(DigiwormError, match="unknown screen column 'colour'"):
        parse_grid("colour=red")
    with pytest.raises(DigiwormError, match="given twice"):
        parse_grid("dose=1;dose_uM=2")
    with pytest.raises(DigiwormError, match="COLUMN=VALUE"):
        parse_grid("drug")


def test_every_bad_row_is_named_before_anything_runs(atlas, tmp_path):
    """A table from CSV: missing columns take their defaults; all bad rows are listed with
    their numbers (did-you-mean for names) and nothing is written."""
    csv = tmp_path / "conditions.csv"
    csv.write_text(
        "drug,dose,knockout,ablate,serotonin\n"
        "aldicarb,10,,,\n"  # row 1: fine (blanks are defaults)
        "aldicarbb,10,,,\n"  # row 2: misspelt drug
        "levamisole,-1,,,\n"  # row 3: negative dose
        "none,5,,,\n"  # row 4: a dose of no drug
        ",,unc-311,,\n"  # row 5: unknown gene
        ",,,AVAX,\n"  # row 6: unknown neuron
        "aldicarb,nan,,,\n"  # row 7: NaN dose
        ",,glr-1,,\n"  # row 8: a receptor the graded network does not model
        "4-aminopyridine,100,,,\n"  # row 9: a channel blocker on a model with no channels
        ",,,,2\n"  # row 10: a state's level outside [0, 1]
    )
    table = read_table(csv)
    assert list(table.columns)[:2] == ["drug", "dose_uM"] and len(table) == 10
    with pytest.raises(DigiwormError) as err:
        check_table(table, atlas)
    text = str(err.value)
    assert text.startswith("9 bad row(s) of 10; nothing was run")
    for row, needle in [(2, "aldicarbb"), (3, "-1"), (4, "no drug"), (5, "unc-311"),
                        (6, "AVAX"), (7, "nan"), (8, "glr-1"), (9, "conductance"),
                        (10, "serotonin level")]:  # fmt: skip
        line = next(x for x in text.splitlines() if x.strip().startswith(f"row {row}:"))
        assert needle in line, line
    assert "row 1:" not in text
    assert "AVAR" in text  # the neuron's did-you-mean
    with pytest.raises(DigiwormError, match="must be .csv or .parquet"):
        read_table(tmp_path / "x.txt") if (tmp_path / "x.txt").write_text("a") else None


@pytest.fixture(scope="module")
def small_screen(atlas, tmp_path_factory):
    table = check_table(parse_grid(GRID), atlas)
    out = tmp_path_factory.mktemp("screen")
    phenotypes, summary = run_screen(table, atlas, out, chunk_size=2, duration_s=10.0, ensemble=0)
    return table, out, phenotypes, summary


def test_the_neural_readout_compares_each_row_with_the_wild_type(small_screen, atlas):
    """The unperturbed row matches the wild type (to float32 rounding of the batched run);
    a knockout row changes; a batched row equals the same condition run alone by
    ``digiworm simulate``'s code path."""
    from digiworm.app import SimulationRequest, run_request

    table, out, ph, summary = small_screen
    assert list(ph["row"]) == list(table.index) and (out / "phenotypes.parquet").is_file()
    wt = ph[(ph["drug"] == "none") & (ph["knockout"] == "none")].iloc[0]
    assert wt["neural_change_rms"] < 1e-4 and wt["neural_corr_wt"] > 0.9999
    ko = ph[(ph["drug"] == "none") & (ph["knockout"] == "unc-31")].iloc[0]
    assert ko["neural_change_rms"] > 100 * wt["neural_change_rms"]
    # row 5: aldicarb 100 uM alone, as simulate runs it
    row = ph[(ph["drug"] == "aldicarb") & (ph["dose_uM"] == 100) & (ph["knockout"] == "none")]
    req = SimulationRequest(model="graded", stimulate=("AVAL",), duration_s=10.0,
                            drugs=(("aldicarb", 100.0),)).check(atlas)  # fmt: skip
    ds = run_request(req, atlas, progress=False)
    dff = ds["dff"].isel(condition=0)
    t = ds["time"].values
    resp = (dff.isel(time=t > req.onset_s + 1e-9).mean("time")
            - dff.isel(time=int(np.argmin(np.abs(t - req.onset_s))))).values  # fmt: skip
    keep = np.array([n != "AVAL" for n in ds["neuron"].values])
    rms = float(np.sqrt(np.mean(resp[keep] ** 2)))
    assert float(row["neural_rms"].iloc[0]) == pytest.approx(rms, rel=1e-4)
    hits = summary["hits"]["neural"]["hits"]
    assert hits[0]["neural_change_rms"] >= hits[-1]["neural_change_rms"]
    assert json.loads((out / "summary.json").read_text())["rows"] == 6


def test_hill_fits_recover_a_known_ec50_and_say_when_they_cannot():
    from digiworm.screen import fit_hill

    doses = np.array([0, 1, 3, 10, 30, 100, 300, 1000.0])
    truth = 0.2 + 1.5 * doses**1.5 / (doses**1.5 + 30.0**1.5)
    rng = np.random.default_rng(0)
    fits = [fit_hill(doses, truth + 0.01 * rng.standard_normal(8), flat=0.01) for _ in range(40)]
    covered = np.mean([f["ec50_low_uM"] < 30.0 < f["ec50_high_uM"] for f in fits])
    assert covered >= 0.85  # a 95 % interval covers the truth (40 noisy replicates)
    assert np.median([f["ec50_uM"] for f in fits]) == pytest.approx(30.0, rel=0.05)
    assert np.median([f["hill"] for f in fits]) == pytest.approx(1.5, rel=0.1)
    assert all(f["note"] == "" for f in fits)
    assert np.isnan(fit_hill(doses, np.full(8, 0.3), flat=0.01)["ec50_uM"])
    assert "no response" in fit_hill(doses, np.full(8, 0.3), flat=0.01)["note"]
    assert "3 or more" in fit_hill([0, 1, 2], [0, 1, 2])["note"]
    bump = np.array([0, 0, 0.1, 1, 2, 1.5, 0.5, 0.2])
    assert "not monotonic" in fit_hill(doses, bump)["note"]
    high = 0.2 + 1.0 * doses / (doses + 1e5)
    assert "above the highest dose" in fit_hill(doses, high, flat=1e-4)["note"]


def test_the_report_fits_dose_responses_and_keeps_the_hits_traces(atlas, tmp_path):
    """A dose series of exogenous serotonin, in the plain and a serotonin-raised state:
    the fits, the report, the kept traces, the evidence column, and the state's own effect."""
    import xarray as xr

    grid = "drug=serotonin;dose=0,100,300,1000,3000,10000,30000;serotonin=0,1"
    table = check_table(parse_grid(grid), atlas)
    ph, summary = run_screen(table, atlas, tmp_path, duration_s=10.0, traces=2)
    assert set(ph["drug_evidence"]) == {"assumed"}
    plain = ph[(ph["serotonin"] == 0) & (ph["dose_uM"] == 0)]["neural_change_rms"].iloc[0]
    state = ph[(ph["serotonin"] == 1) & (ph["dose_uM"] == 0)]["neural_change_rms"].iloc[0]
    assert plain < 1e-4 < state  # the state alone changes the responses
    fits = pd.read_csv(tmp_path / "dose_response.csv")
    fit = fits[(fits["serotonin"] == 0) & (fits["phenotype"] == "neural_corr_wt")].iloc[0]
    assert fit["ec50_low_uM"] < fit["ec50_uM"] < fit["ec50_high_uM"]
    assert 100 < fit["ec50_uM"] < 1000 and fit["effect"] < -0.5  # the pattern decorrelates
    assert fit["evidence"] == "assumed" and summary["ec50s_placed"] >= 1
    report = (tmp_path / "report.html").read_text()
    for needle in ("Top neural hits", "Dose–response", "Compound × phenotype", "not measured",
                   "Horvitz et al. 1982", "data:image/png;base64"):  # fmt: skip
        assert needle in report, needle
    spread = pd.read_csv(tmp_path / "hit_ensemble.csv")
    assert len(spread) == 3 and (spread["members"] == 8).all()  # the default: 3 hits, 8 members
    assert (spread["low"] <= spread["mean"]).all() and (spread["mean"] <= spread["high"]).all()
    assert (spread["sd"] > 0).all() and spread["agree"].between(0, 8).all()
    assert "Top hits on the fitted ensemble" in report
    nc = xr.open_dataset(tmp_path / "screen.nc")
    assert nc.sizes["neural_hit"] == 2 and nc.sizes["neuron"] == 302
    top = summary["hits"]["neural"]["hits"][0]["row"]
    assert int(nc["neural_hit"][0]) == top
    assert float(np.abs(nc["dff"][0] - nc["dff_wild_type"][0]).max()) > 0.1
    nc.close()


def test_the_vmap_and_the_loop_strategies_agree(small_screen, atlas, tmp_path):
    """One vmap over the perturbed models (an accelerator's strategy) gives the loop's
    phenotypes (a CPU's) to float32 rounding; a strategy that does not exist is refused."""
    from digiworm.screen import batch_strategy

    table, _, ph, summary = small_screen
    assert summary["batch"] == batch_strategy("auto") == "loop"  # this project's CPU
    vm, summary = run_screen(table, atlas, tmp_path / "vmap", chunk_size=2, duration_s=10.0,
                             batch="vmap", ensemble=0)  # fmt: skip
    assert summary["batch"] == "vmap"
    for col in ("neural_rms", "neural_change_rms", "neural_top_change"):
        np.testing.assert_allclose(vm[col], ph[col], rtol=1e-3, atol=1e-5)
    changed = ph["neural_change_rms"] > 1e-3  # elsewhere the top neuron is rounding's pick
    assert list(vm["neural_top_neuron"][changed]) == list(ph["neural_top_neuron"][changed])
    with pytest.raises(DigiwormError, match="batch 'gpu'"):
        run_screen(table, atlas, tmp_path / "x", batch="gpu")


def test_a_screen_resumes_where_it_stopped_and_refuses_another_table(small_screen, atlas,
                                                                     tmp_path):  # fmt: skip
    table, out, ph, _ = small_screen
    # a rerun of the finished screen runs nothing
    again, summary = run_screen(table, atlas, out, chunk_size=2, duration_s=10.0, ensemble=0)
    assert summary["ran_rows"] == 0 and summary["skipped_rows"] == 6
    pd.testing.assert_frame_equal(again, ph)
    # interrupted after its first chunk: the chunk is kept, the rerun does the rest
    fresh = tmp_path / "interrupted"

    def stop(done, total, skipped):
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_screen(table, atlas, fresh, chunk_size=2, duration_s=10.0, on_chunk=stop,
                   ensemble=0)  # fmt: skip
    assert len(list((fresh / "chunks").glob("*.parquet"))) == 1
    assert not (fresh / "phenotypes.parquet").exists()
    done, summary = run_screen(table, atlas, fresh, chunk_size=2, duration_s=10.0, ensemble=0)
    assert summary["skipped_rows"] == 2 and summary["ran_rows"] == 4
    pd.testing.assert_frame_equal(done, ph)
    with pytest.raises(DigiwormError, match="holds another screen"):
        run_screen(table.iloc[:3], atlas, out, chunk_size=2, duration_s=10.0, ensemble=0)


def test_the_behaviour_readout_finds_levamisole_paralysis(atlas, tmp_path):
    """Levamisole paralyses the worm (assumed scale, docs/body.md); unc-29 resists it."""
    table = check_table(parse_grid("drug=levamisole;dose=0,1000;knockout=none,unc-29"), atlas,
                        ("behaviour",))  # fmt: skip
    ph, summary = run_screen(table, atlas, tmp_path / "b", readouts=("behaviour",),
                             chunk_size=4, behaviour_duration_s=8.0, ensemble=1)  # fmt: skip
    lev = ph[(ph["dose_uM"] == 1000) & (ph["knockout"] == "none")].iloc[0]
    resistant = ph[(ph["dose_uM"] == 1000) & (ph["knockout"] == "unc-29")].iloc[0]
    control = ph[(ph["dose_uM"] == 0) & (ph["knockout"] == "none")].iloc[0]
    assert bool(lev["paralysed"]) and lev["speed_ratio_wt"] < 0.1
    assert not bool(resistant["paralysed"]) and not bool(control["paralysed"])
    assert control["speed_ratio_wt"] == pytest.approx(1.0, rel=1e-6)
    assert summary["hits"]["behaviour"]["hits"][0]["row"] == int(lev["row"])
    # the paralysis holds on every member of the fitted ensemble (it acts at the junction)
    spread = summary["hit_ensemble"][0]
    assert spread["row"] == int(lev["row"]) and spread["members"] == 8
    assert spread["agree"] == 8 and spread["high"] < 0.1
    # the batched strategy runs the chunk's worms in one vmap and reads the same behaviour
    batched, summary = run_screen(table, atlas, tmp_path / "bv", readouts=("behaviour",),
                                  chunk_size=4, behaviour_duration_s=8.0, ensemble=0,
                                  batch="vmap")  # fmt: skip
    assert summary["batch"] == "vmap"
    for col in ("speed_mm_per_s", "co_contraction", "speed_ratio_wt", "frequency_hz"):
        np.testing.assert_allclose(batched[col], ph[col], rtol=1e-4, atol=1e-6, err_msg=col)
    assert (batched["paralysed"] == ph["paralysed"]).all()


def test_the_screen_command_runs_and_refuses_bad_rows(atlas, tmp_path):
    from digiworm.cli import app

    out = tmp_path / "s"
    argv = ["screen", "--grid", "drug=none,aldicarb;dose=0,100", "--out", str(out),
            "--duration", "10", "--chunk", "2"]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "top neural hits" in result.output and "aldicarb 100 uM" in result.output
    assert len(pd.read_parquet(out / "phenotypes.parquet")) == 3
    assert (out / "command.txt").read_text().startswith("digiworm")
    again = CliRunner().invoke(app, argv)
    assert "resuming: 3 of 3 conditions already done" in again.output
    bad = CliRunner().invoke(app, ["screen", "--grid", "drug=aspirinn;dose=1", "--out",
                                   str(tmp_path / "bad")])  # fmt: skip
    assert bad.exit_code == 2 and "row 1" in bad.output and "aspirinn" in bad.output
    assert not (tmp_path / "bad").exists()
    both = CliRunner().invoke(app, ["screen", "--out", str(tmp_path / "x")])
    assert both.exit_code == 2 and "--grid" in both.output
    for extra, needle in ((["--engine", "spark"], "spark"), (["--workers", "2"], "--engine ray"),
                          (["--engine", "ray", "--workers", "0"], ">= 1"),
                          (["--batch", "gpu"], "not one of auto, vmap, loop")):  # fmt: skip
        result = CliRunner().invoke(app, [*argv, *extra])
        assert result.exit_code == 2 and needle in result.output, (extra, result.output)


@pytest.mark.enable_socket  # Ray's local cluster talks over loopback sockets
def test_the_ray_engine_gives_the_local_engines_phenotypes(small_screen, atlas, tmp_path):
    """A local Ray cluster of 2 workers computes the same phenotypes, bit for bit, as the
    local engine; a screen half done by one engine is finished by the other."""
    import shutil

    table, out, ph, _ = small_screen
    by_ray, summary = run_screen(table, atlas, tmp_path / "ray", chunk_size=2, duration_s=10.0,
                                 engine="ray", workers=2, ensemble=0)  # fmt: skip
    assert summary["engine"] == "ray" and summary["ran_rows"] == 6
    pd.testing.assert_frame_equal(by_ray, ph)
    mixed = tmp_path / "mixed"
    shutil.copytree(out, mixed)
    (mixed / "chunks" / "chunk-00001.parquet").unlink()
    (mixed / "phenotypes.parquet").unlink()
    again, summary = run_screen(table, atlas, mixed, chunk_size=2, duration_s=10.0,
                                engine="ray", workers=1, ensemble=0)  # fmt: skip
    assert summary["ran_rows"] == 2 and summary["skipped_rows"] == 4
    pd.testing.assert_frame_equal(again, ph)
    with pytest.raises(DigiwormError, match="engine 'spark'"):
        run_screen(table, atlas, tmp_path / "x", engine="spark")
