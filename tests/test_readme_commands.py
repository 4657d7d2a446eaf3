"""Every ``digiworm`` command and Python snippet shown in README.md runs, as shown.

The commands are read from the README itself, so a command added there is tested here without
touching this file. Each shell line is split at ``&&`` (installs and the test command itself are
CI's business, see ``.ci/run``); optional ``[...]`` groups are expanded: the command runs once
without them and once with each group (each ``a|b|c`` alternative in turn). Placeholders
(``FILE``, ``DIR``, ...) are replaced by files made in a temporary work folder, and sizes are
shrunk (shorter durations, fewer optimiser steps) where noted in :data:`SHRINK`; nothing else
about a command changes. Each run must exit 0 and write what the README promises. The
``python benchmarks/...`` commands run as subprocesses with ``--smoke`` (every part at tiny
sizes) and ``--out`` in a temporary folder, never over ``benchmarks/results``.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import tiny_reproduce_settings
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


# -- reading the README ------------------------------------------------------------------------
def _shell_lines(text: str) -> list[str]:
    """Every command line of the README's bash blocks: continuations joined, comments dropped."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        pending = ""
        for raw in block.splitlines():
            line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
            if raw.rstrip().endswith("\\"):
                pending += line.rstrip("\\").rstrip() + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if line:
                lines.append(line)
    return lines


def _segments(line: str) -> list[str]:
    """The ``digiworm ...`` and ``python benchmarks/...`` parts of a shell line."""
    parts = [p.strip() for p in line.split("&&")]
    return [p for p in parts if p.startswith("digiworm ") or p.startswith("python benchmarks/")]


def _expand(command: str) -> list[str]:
    """The command without its ``[...]`` groups, then with each group (each alternative)."""
    groups = re.findall(r"\[([^\[\]]+)\]", command)
    base = re.sub(r"\s*\[[^\[\]]+\]", "", command).strip()
    variants = [base]
    for group in groups:
        if re.search(r"\|\s*--", group):  # alternatives of whole options: [--a X|--b Y]
            options = [g.strip() for g in group.split("|")]
        else:  # alternatives of one value: [--model a|b|c]
            tokens = group.split()
            k = next((i for i, t in enumerate(tokens) if "|" in t), None)
            options = (
                [group]
                if k is None
                else [
                    " ".join([*tokens[:k], alt, *tokens[k + 1 :]]) for alt in tokens[k].split("|")
                ]
            )
        variants += [f"{base} {option}" for option in options]
    return variants


def readme_commands() -> list[str]:
    """Every command variant to run, in README order."""
    out = []
    for line in _shell_lines(README):
        for segment in _segments(line):
            out += [v for v in _expand(segment) if v not in out]
    return out


def test_the_readme_parser_finds_the_documented_commands():
    commands = readme_commands()
    subcommands = {shlex.split(c)[1] for c in commands if c.startswith("digiworm ")}
    assert {"atlas", "neuron", "gene", "simulate", "validate", "fit", "reproduce", "design",
            "export", "serve", "behave"} <= subcommands  # fmt: skip
    # optional groups expand: every model kind of simulate, every criterion of design next
    for kind in ("graded", "linear", "kernel", "conductance", "FILE"):
        assert any(f"--model {kind}" in c and c.startswith("digiworm simulate") for c in commands)
    design_next = [c for c in commands if c.startswith("digiworm design next")]
    assert sum("--criterion" in c for c in design_next) == 3
    assert any(c.startswith("digiworm design error") and "--cond COV.npy" in c for c in commands)
    assert _expand("x --a [--b 1|2] [--c D|--e F]") == [
        "x --a", "x --a --b 1", "x --a --b 2", "x --a --c D", "x --a --e F"
    ]  # fmt: skip


# -- running them --------------------------------------------------------------------------------
#: Placeholders in the README and the files of the work folder that stand in for them.
PLACEHOLDERS = {
    "FILE.nc": "trials.nc",  # a per-trial perturbation dataset
    "PRED.nc": "pred.nc",  # a dff(responding, stimulated) prediction
    "COV.npy": "cov.npy",
    "CONDITIONS.csv": "conditions.csv",  # brain conditions: stimulate, seed, trials, amplitude
    "FILE": "digiworm-reproduce/model_linear.dwm",
    "DIR": "out-dir",
}

#: How each command is made small enough for the test suite: options replaced or added.
SHRINK = {
    "simulate": {"--duration": "6"},
    "simulate --atlas": {"--duration": "4", "--stimulate": "AVAL,ASHL,RIML"},
    "simulate --model conductance": {"--duration": "1.5", "--onset": "0.5"},
    "simulate --connectome FILE": {"--duration": "0.2"},
    "fit": {
        "--folds": "2",
        "--steps": "8",
        "--members": "2",
        "--ridges": "1",
        "--kernel-steps": "2",
    },  # fmt: skip
    "design next": {"--k": "3"},
    "behave": {"--duration": "8"},
    "screen": {"--duration": "10"},
    # the fitted map (the default) is run on RMD by test_cell_validation's CLI test; here the
    # cheap ratio map keeps the README's variants fast
    "neuron --validate": {"--references": "RMD", "--map": "ratio"},
}


def _shrunk(argv: list[str]) -> list[str]:
    keys = [argv[0]]
    if argv[0] == "design":
        keys = [f"design {argv[1]}"]
    if argv[0] == "neuron" and "--validate" in argv:
        keys = ["neuron --validate"]
    if argv[0] == "simulate":
        keys += ["simulate --atlas"] if "--atlas" in argv else []
        if "--model" in argv and argv[argv.index("--model") + 1] == "conductance":
            keys += ["simulate --model conductance"]
        if "--connectome" in argv and argv[argv.index("--connectome") + 1].startswith("synth"):
            keys += ["simulate --connectome FILE"]
    argv = list(argv)
    for key in keys:
        for option, value in SHRINK.get(key, {}).items():
            if option in argv:
                argv[argv.index(option) + 1] = value
            else:
                argv += [option, value]
    return argv


def _substitute(command: str) -> list[str]:
    argv = shlex.split(command)
    return [PLACEHOLDERS.get(a, a) for a in argv]


@dataclass
class Workspace:
    """The temporary folder the README's commands run in (as a new user's would)."""

    path: Path


class _TinyReproduceSettings:
    """Stands in for ``ReproduceSettings`` in the CLI: the full and the --quick run, tiny."""

    def __new__(cls):
        return tiny_reproduce_settings(quick=False)

    @staticmethod
    def quick_settings():
        return tiny_reproduce_settings(quick=True)


def _run_cli(argv: list[str], monkeypatch) -> None:
    """Run ``digiworm ARGV`` in-process (shrunk where :data:`SHRINK` and the stand-ins say)."""
    import digiworm.reproduce
    from digiworm.cli import app

    if argv[0] == "reproduce":
        monkeypatch.setattr(digiworm.reproduce, "ReproduceSettings", _TinyReproduceSettings)
    if argv[:2] == ["design", "study"]:
        _tiny_design_study(monkeypatch)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, f"digiworm {' '.join(argv)}\n{result.output}"


QUICKSTART = next(c for c in readme_commands() if c.startswith("digiworm reproduce"))


@pytest.fixture(scope="module")
def workspace(atlas, tmp_path_factory) -> Workspace:
    """A new user's folder after the Quickstart's main job (tiny), plus the placeholder files."""
    path = tmp_path_factory.mktemp("readme")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(path)
        argv = _substitute(QUICKSTART)[1:]
        _run_cli(argv, monkeypatch)
        _expect_outputs(path, argv)
    shutil.copy(path / "digiworm-reproduce" / "predictions.nc", path / "predictions.nc")
    pred = xr.load_dataset(path / "predictions.nc", engine="h5netcdf")
    pred[["dff"]].sel(model="linear", drop=True).to_netcdf(path / "pred.nc", engine="h5netcdf")
    fun = atlas.functional("wt", kernel_time_s=None)
    stim = ["AVAL", "AVAR", "ASHL", "ASHR", "AIYL", "AIYR", "RIML", "RIMR", "AWCL", "AWCR"]
    xr.Dataset({"dff": fun.dff_trials.sel(stimulated=stim)}).to_netcdf(
        path / "trials.nc", engine="h5netcdf"
    )
    x = np.random.default_rng(0).normal(size=(400, 300))
    np.save(path / "cov.npy", x.T @ x / 400)
    pd.DataFrame({"stimulate": ["0;1;2", "3;4", "5"], "seed": [0, 1, 2],
                  "trials": [2, 2, 1]}).to_csv(path / "conditions.csv", index=False)  # fmt: skip
    (path / "out-dir").mkdir()
    return Workspace(path)


def _tiny_design_study(monkeypatch):
    """``design study`` on a few seeds and trials (its own tests check its numbers)."""
    import digiworm.design._report as report
    from digiworm.design import StudySettings

    monkeypatch.setattr(
        report,
        "StudySettings",
        lambda criterion="A", **_: StudySettings(
            seeds=2,
            max_trials=200,
            checkpoints=3,
            first_trials=50,
            batch=50,
            growth=1.0,
            criterion=criterion,
        ),  # two adaptive re-designs per seed
    )
    cases = report._formula_cases
    monkeypatch.setattr(report, "_formula_cases", lambda a, quick, seed: cases(a, True, seed)[:1])


#: What each command must leave behind: {subcommand: check(workspace path, argv)}.
def _expect_outputs(path: Path, argv: list[str]) -> None:
    def option(name):
        return argv[argv.index(name) + 1] if name in argv else None

    if argv[0] == "simulate":
        ds = xr.load_dataset(path / option("--out"), engine="h5netcdf")
        if option("--conditions"):  # a larger brain's table of conditions: a rate each
            table = pd.read_csv(path / option("--conditions"))
            assert ds["rate_hz"].dims == ("condition", "neuron")
            assert ds.sizes["condition"] == len(table)
            for i, cell in enumerate(table["stimulate"]):
                assert (ds["rate_hz"].isel(condition=i).sel(neuron=cell.split(";")) > 50).all()
            assert ds.attrs["engine"] == (option("--engine") or "local")
        elif (option("--connectome") or "").startswith("synthetic-flywire"):  # a larger brain
            stim = option("--stimulate").split(",")
            if option("--model") == "lif":
                assert ds["rate_hz"].dims == ("trial", "neuron")
                assert ds.sizes["trial"] == int(option("--trials") or 1)
                assert (ds["rate_hz"].sel(neuron=stim) > 50).all()  # Poisson-driven, ~150 Hz
            else:
                trace = ds["dff"].sel(neuron=stim[0]).isel(condition=0)
                assert float(np.ptp(trace.to_numpy())) > 0
            assert ds.attrs["edges"] > 10 * ds.attrs["neurons"]
        elif "--atlas" in argv:
            stim = option("--stimulate")
            assert ds["dff"].dims == ("responding", "stimulated")
            assert list(ds["stimulated"].values) == stim.split(",")
            assert np.isfinite(ds["dff"].to_numpy()).all()
            assert all(v is not None for v in ds.attrs.values())
        else:
            assert ds["dff"].dims == ("condition", "time", "neuron")
            assert ds.sizes["neuron"] == 302
            if option("--stimulate"):  # the stimulated neuron moves
                trace = ds["dff"].sel(neuron=option("--stimulate").split(",")[0]).isel(condition=0)
                if option("--ablate") is None:
                    assert float(np.ptp(trace.to_numpy())) > 0
        if option("--plot"):
            assert (path / option("--plot")).read_bytes()[:4] == b"\x89PNG"
    elif argv[0] == "reproduce":
        out = path / (option("--out") or "digiworm-reproduce")
        for name in ("report.html", "scores.json", "predictions.nc", "model_linear.dwm"):
            assert (out / name).is_file(), name
    elif argv[0] == "fit":
        out = path / option("--out")
        model = option("--model") or "linear"
        assert (out / f"model_{model}.dwm").is_file() and (out / "scores.json").is_file()
    elif argv[0] == "export":
        assert list((path / option("--out")).glob("*.xml"))
    elif argv[0] == "atlas" and option("--report"):
        assert (path / option("--report")).is_dir()
    elif argv[0] == "neuron" and option("--out"):
        assert (path / option("--out")).read_bytes()[:4] == b"\x89PNG"
    elif argv[0] == "design" and argv[1] == "plan":
        plan = pd.read_csv(path / option("--out"))
        assert len(plan) == int(option("--budget"))
        assert list(plan["rank"]) == list(range(1, len(plan) + 1))
        assert np.all(np.diff(plan["reduction"]) >= -1e-12)  # uncertainty only falls
        assert plan["improves_most"].notna().any()
        if option("--report"):
            folder = path / option("--report")
            assert (folder / "index.html").is_file()
            assert (folder / "plan.png").read_bytes()[:4] == b"\x89PNG"
    elif argv[0] == "design" and argv[1] == "study":
        import json

        folder = path / (option("--out") or "digiworm-design")
        assert (folder / "report.html").is_file()
        study = json.loads((folder / "study.json").read_text())["random_vs_designed"]
        assert {"adaptive", "adaptivity_gain"} <= set(study)
        assert "adaptive" in {row for row in pd.read_csv(folder / "curves.csv")["order"]}
        assert study["settings"]["criterion"] == (option("--criterion") or "A")
        kind = option("--unknowns") or "gains"
        assert study["unknowns"].endswith(kind) and study["unknowns"].split()[0].isdigit()
        on_sets = study["designed_chose"]["trials_on_sets"]
        assert on_sets == 0 if option("--sets") in (None, "single") else 0 <= on_sets <= 1
    elif argv[0] == "behave" and option("--report"):
        import json

        folder = path / option("--report")
        assert (folder / "index.html").is_file() and (folder / "adaptation.png").is_file()
        summary = json.loads((folder / "summary.json").read_text())
        assert len(summary["perturbations"]) >= 9 and len(summary["adaptation"]) == 6
        assert {p["met"] for p in summary["perturbations"]} <= {True, False, None}
    elif argv[0] == "behave":
        ds = xr.load_dataset(path / option("--out"), engine="h5netcdf")
        assert ds["xy_mm"].dims == ("time", "segment", "xy") and ds.sizes["neuron"] == 302
        assert np.isfinite(ds["xy_mm"].to_numpy()).all()
        if option("--json"):
            import json

            summary = json.loads((path / option("--json")).read_text())
            for key in (
                "frequency_hz",
                "wavelength_body_lengths",
                "speed_mm_per_s",
                "reversals_per_min",
                "body_length_change",
                "scores",
                "evidence",
            ):
                assert key in summary, key
        if option("--plot"):
            assert (path / option("--plot")).read_bytes()[:4] == b"\x89PNG"
        if option("--video"):
            assert (path / option("--video")).read_bytes()[:4] == b"GIF8"
    elif argv[0] == "screen":
        folder = path / option("--out")
        ph = pd.read_parquet(folder / "phenotypes.parquet")
        assert len(ph) == 14 and ph["neural_change_rms"].notna().all()
        assert (folder / "summary.json").is_file() and (folder / "command.txt").is_file()
    elif argv[0] == "validate" and option("--json"):
        assert (path / option("--json")).is_file()


CLI_COMMANDS = [
    c
    for c in readme_commands()
    if c.startswith("digiworm ") and not c.startswith("digiworm serve") and c != QUICKSTART
]


def test_the_quickstart_main_job_ran(workspace):
    """The Quickstart's ``digiworm reproduce`` is the workspace fixture; its outputs load."""
    from digiworm.models import load_model

    out = workspace.path / "digiworm-reproduce"
    assert "Wall time" in (out / "report.html").read_text()
    for name in ("linear", "graded", "kernel"):
        assert load_model(out / f"model_{name}.dwm").names[:2] == ("ADAL", "ADAR")


@pytest.mark.parametrize("command", CLI_COMMANDS)
def test_readme_command_runs(command, workspace, monkeypatch):
    argv = _shrunk(_substitute(command)[1:])
    monkeypatch.chdir(workspace.path)
    if argv[0] == "reproduce" and "--out" not in argv:  # leave the Quickstart's output alone
        monkeypatch.chdir(workspace.path / "out-dir")
    _run_cli(argv, monkeypatch)
    _expect_outputs(Path.cwd(), argv)


SERVE_COMMANDS = [c for c in readme_commands() if c.startswith("digiworm serve")]


@pytest.mark.enable_socket
@pytest.mark.parametrize("command", SERVE_COMMANDS)
def test_readme_serve_command_starts(command, workspace):
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    argv = _substitute(command)[1:]
    if "--port" in argv:  # the README's port may be taken here: any free one
        argv[argv.index("--port") + 1] = port
    else:
        argv += ["--port", port]
    if "--models" in argv:
        argv[argv.index("--models") + 1] = str(workspace.path / "digiworm-reproduce")
    proc = subprocess.Popen(
        [sys.executable, "-m", "digiworm.cli", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workspace.path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "digiworm serve did not answer in 120 s"
                time.sleep(0.5)
        assert health.status_code == 200
        options = httpx.get(f"http://127.0.0.1:{port}/api/options", timeout=10.0).json()
        if "--models" in argv:
            assert any(str(m).startswith("fitted:") for m in options["models"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


# -- the Python snippets ---------------------------------------------------------------------
def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _with_checks(block: str) -> str:
    """Run each line; where the README's comment states a number, check the line against it."""
    out = []
    for line in block.splitlines():
        m = re.match(r"^(\S.*?)\s+#\s*(-?\d+(?:\.\d+)?)\s", line)
        if m and not re.match(r"^[\w.]+\s*=(?!=)", m.group(1)):  # not an assignment
            out.append(f"_readme_states({m.group(1)}, {m.group(2)}, {line!r})")
        else:
            out.append(line)
    return "\n".join(out)


def _readme_states(value, number: float, line: str) -> None:
    """A number in a comment is the value's own (a scalar) or its length (a table)."""
    if np.ndim(value) == 0 and not hasattr(value, "__len__"):
        assert float(value) == pytest.approx(number), line
    else:
        assert len(value) == number, line


def test_readme_numbers_are_checked():
    code = _with_checks("w.sel(pre='AVAL').item()   # 7.0 synapses\natlas.neurons   # 302 x\n")
    assert code.splitlines()[0].startswith("_readme_states(w.sel(pre='AVAL').item(), 7.0,")
    assert code.splitlines()[1].startswith("_readme_states(atlas.neurons, 302,")
    with pytest.raises(AssertionError):
        _readme_states(6.0, 7.0, "x")


def test_readme_python_snippets_run_in_order(atlas, tmp_path, monkeypatch):
    import digiworm.simulate

    blocks = _python_blocks()
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    # the whole in-silico atlas of the snippet, on 3 stimulations (its full run is benchmarked)
    full_atlas = digiworm.simulate.insilico_atlas
    monkeypatch.setattr(
        digiworm.simulate, "insilico_atlas",
        lambda model, neurons=None, **kw: full_atlas(model, ["AVAL", "ASHL", "RIML"], **kw),
    )  # fmt: skip
    namespace: dict = {"_readme_states": _readme_states}
    checked = sum(_with_checks(b).count("_readme_states(") for b in blocks)
    assert checked >= 2  # the README's stated numbers (302 neurons, 7.0 synapses) are checked
    for block in blocks:
        exec(compile(_with_checks(block), "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["atlas_sim"]["dff"].dims == ("responding", "stimulated")
    assert namespace["run"].dff.dims == ("condition", "time", "neuron")
    assert (tmp_path / "c2_export").is_dir()


# -- the in-silico atlas with every model kind (the command crashed for all of them once) -------
@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("graded", []),
        ("linear", []),
        ("kernel", []),
        ("graded-uncalibrated", []),
        ("linear-uncalibrated", []),
        ("kernel-atlas", []),
        ("FILE", []),
        ("conductance", ["--duration", "1.5", "--onset", "0.5", "--stimulate", "AVAL"]),
    ],
)
def test_insilico_atlas_command_for_every_model_kind(model, extra, workspace, monkeypatch):
    from digiworm.cli import app

    monkeypatch.chdir(workspace.path)
    out = f"atlas-{model.lower()}.nc"
    argv = ["simulate", "--atlas", "--model", PLACEHOLDERS.get(model, model), "--out", out]
    argv += extra or ["--duration", "6", "--stimulate", "AVAL,ASHL"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    ds = xr.load_dataset(workspace.path / out, engine="h5netcdf")
    stimulated = argv[argv.index("--stimulate") + 1].split(",")
    assert list(ds["stimulated"].values) == stimulated and ds.sizes["responding"] == 302
    values = ds["dff"].to_numpy()
    assert np.isfinite(values).all() and np.abs(values).max() > 0
    assert ds.attrs["method"] and ds.attrs["onset_s"] == float(
        argv[argv.index("--onset") + 1] if "--onset" in argv else 1.5
    )
    # every attribute is what the run used (none missing or None)
    assert all(v is not None and v != "None" for v in ds.attrs.values())


# -- the benchmarks, each as a smoke run -----------------------------------------------------------
#: The README's benchmark commands (``pip install ...`` parts are CI's business, see the top).
BENCH_COMMANDS = [c for c in readme_commands() if c.startswith("python benchmarks/")]

#: Options each benchmark runs with here besides ``--smoke --out FILE`` (``--smoke`` itself makes
#: every part tiny). A benchmark added to the README needs a line here and in BENCH_CHECKS.
BENCH_ARGS: dict[str, list[str]] = {
    "atlas_load.py": [],
    "simulator.py": [],
    "graded_peers.py": [],
    "c302_peers.py": [],
    "jaxley_compare.py": [],
    "serve_load.py": [],
    "conductance_atlas.py": [],
    "body_peers.py": [],
    "worm_speed.py": [],
    "screen_speed.py": [],
    "brain_scale.py": [],
    "design_ceiling.py": [],
}

#: Optional peers (the ``bench`` extra) without which a benchmark cannot run at all.
BENCH_NEEDS = {"jaxley_compare.py": "jaxley"}


def _finite(*values) -> bool:
    return all(isinstance(v, int | float) and np.isfinite(v) for v in values)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _check_atlas_load(res: dict, stdout: str, out: Path) -> None:
    assert res["datasets"] >= 20 and res["repeat"] == 1
    assert _finite(res["cold_load_s"], res["warm_load_s"], res["ratio_warm_over_cold"])
    assert "warm / cold ratio" in stdout


def _check_simulator(res: dict, stdout: str, out: Path) -> None:
    assert _finite(res["atlas"]["ratio_graded_over_linear"])
    grad = res["gradient"]
    assert grad["grad_finite"] and grad["n_params"] > 0
    assert _finite(grad["loss"], grad["ratio_gradient_over_forward"])
    for sweep in ("scaling_neurons", "scaling_conditions"):  # a sweep: two points at least
        assert len(res[sweep]) >= 2
        assert _finite(*(r["s_per_sim_s_per_condition"] for r in res[sweep]))
    assert out.with_name("scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert "ratio graded / linear" in stdout and "ratio gradient / forward" in stdout


def _check_graded_peers(res: dict, stdout: str, out: Path) -> None:
    rows = res["rows"]
    assert {r["precision"] for r in rows if r["tool"] == "digiworm"} == {"float32", "float64"}
    assert {r["method"] for r in rows if r["tool"] == "scipy"} == {"RK45", "LSODA"}
    assert _finite(*(r["error"] for r in rows), *(r["wall_per_sim_s"] for r in rows))
    # every peer row has its speed ratio against a digiworm run at least as accurate
    assert _finite(*(r["ratio_1c"] for r in rows if r["tool"] != "digiworm"))
    if _installed("brian2"):
        assert any(r["tool"] == "brian2" for r in rows)
    else:  # skipped, visibly
        assert any("brian2" in s for s in res["diagnostics"]["skipped_rows"])
        assert "skipped Brian2 rows" in stdout and "not installed" in stdout


def _check_c302_peers(res: dict, stdout: str, out: Path) -> None:
    rows = res["digiworm"]
    assert {(r["dtype"], r["batch"]) for r in rows} == {
        ("float64", 1), ("float32", 1), ("float32", res["batch"])
    }  # fmt: skip
    assert _finite(*(r["per_condition_per_sim_s"] for r in rows))
    if res["peer"] is None:  # skipped, visibly, with the reason
        assert res["peer_skipped"] and "skipped rows: c302 + NEURON" in stdout
        assert all(r["ratio_neuron_over_digiworm"] is None for r in rows)
    else:
        assert _finite(*(r["ratio_neuron_over_digiworm"] for r in rows))
        assert _finite(*(r["rms_max_mV"] for r in rows if r["dtype"] == "float64"))


def _check_jaxley_compare(res: dict, stdout: str, out: Path) -> None:
    rows = res["rows"]
    assert len(rows) == 3 and _finite(*(r["ratio_jaxley_over_digiworm"] for r in rows))
    assert _finite(*(r[f"{t}_rms_mV"] for r in rows[:2] for t in ("jaxley", "digiworm")))


def _check_serve_load(res: dict, stdout: str, out: Path) -> None:
    good, hostile = res["concurrent"], res["hostile"]
    assert good["all_200"] and good["all_correct"], good
    assert hostile["all_4xx"] and hostile["n"] >= hostile["kinds"], hostile["not_4xx"]
    assert _finite(res["typical_request_s"]["median"], good["per_request_wall_s"]["max"])


def _check_conductance_atlas(res: dict, stdout: str, out: Path) -> None:
    rows = res["rows"]
    assert set(rows) == {"conductance", "conductance_unc31", "graded_defaults"}
    for row in rows.values():
        assert _finite(row["per_condition_per_sim_s"], row["pearson_clipped"], row["ceiling"])
        assert row["n_pairs"] > 0


def _check_body_peers(res: dict, stdout: str, out: Path) -> None:
    assert set(res["cases"]) == {"water", "agar"}
    for row in res["cases"].values():
        peer = row["elegansbot_dt5e-05"]
        assert row["digiworm_speed_mm_per_s"] > 0 and peer["speed_rel_diff"] < 0.1
        assert _finite(row["digiworm_wall_per_sim_s"], row["digiworm_batch_wall_per_sim_s"],
                       peer["ratio_one_worm"], peer["ratio_batch_loop"])  # fmt: skip


def _check_worm_speed(res: dict, stdout: str, out: Path) -> None:
    one, batch, grad = (res["results"][k] for k in ("one_worm", "batched", "gradient"))
    assert _finite(one["wall_per_sim_s"], one["body_and_motor_loop_wall_per_sim_s"],
                   one["brain_alone_wall_per_sim_s"], batch["ratio_loop_over_batched"])  # fmt: skip
    assert batch["worms"] == 2 and _finite(*batch["displacement_mm_range"])
    # autodiff through brain, switch, motor loop, muscles and body agrees with a finite
    # difference (loose: the muscles' saturation makes the loop only piecewise smooth)
    assert all(d < 0.2 for d in grad["relative_difference"]), grad
    seg, peers = res["results"]["segments_24"], res["results"]["peers_and_limits"]
    assert _finite(seg["wall_per_60_sim_s_24"], seg["wall_per_60_sim_s_48"])
    # the worm's brain step and scipy's RK45 both track the Radau reference
    assert [r["tool"].split()[0] for r in peers["brain"]] == ["scipy", "scipy", "digiworm,"]
    assert all(r["error"] < 1e-2 and _finite(r["wall_per_sim_s"]) for r in peers["brain"])
    assert _finite(peers["brain_floor_dense_matvecs_per_sim_s"],
                   peers["body_floor_dense_cholesky_per_sim_s"])  # fmt: skip


def _check_screen_speed(res: dict, stdout: str, out: Path) -> None:
    neural, behaviour = res["results"]["neural"], res["results"]["behaviour"]
    assert neural["conditions"] == 4 and _finite(neural["ratio_loop_over_screen"])
    assert behaviour["conditions"] == 2 and _finite(behaviour["ratio_loop_over_screen"])
    assert _finite(res["results"]["projection"]["million_neural_conditions_hours_this_machine"])
    assert _finite(res["results"]["ray"]["scaling_efficiency"])


def _check_brain_scale(res: dict, stdout: str, out: Path) -> None:
    lif = res["results"]["lif"]
    ours = lif["digiworm"]
    assert _finite(ours["trials_1"]["wall_per_sim_s"], ours["trials_2"]["wall_per_sim_s"])
    assert 100 < ours["trials_1"]["mean_rate_driven_hz"] < 200  # Poisson-driven at 150 Hz
    if _installed("brian2"):  # the peer ran and its driven neurons fire like ours
        assert _finite(lif["brian2_over_digiworm_trials_1"]), lif["brian2"]
        assert 100 < lif["brian2"]["mean_rate_driven_hz"] < 200
    rows = res["results"]["graded_scaling"]
    assert [r["neurons"] for r in rows] == [200, 500]
    assert all(_finite(r["sparse_1_wall_per_sim_s"], r["dense_1_wall_per_sim_s"]) for r in rows)
    assert _finite(res["results"]["worm"]["sparse_over_dense"])
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


#: What each benchmark's ``--out`` file (and output) must hold: check(result, stdout, out path).
def _check_design_ceiling(res: dict, stdout: str, out: Path) -> None:
    assert set(res["points"]) == {"fitted model", "truth seed 0"}
    for rows in res["points"].values():
        assert [r["trials"] for r in rows] == [40, 80]
        for r in rows:  # the optimum can only beat uniform and the greedy order (up to its gap)
            assert r["optimal_monotone"] and r["optimal_gap"] >= -1e-9
            assert r["trace_optimal"] <= r["trace_uniform"] * (1 + 1e-9)
            assert r["ratio_optimal"] >= 1 - 1e-6 and _finite(r["ratio_greedy"])
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


BENCH_CHECKS = {
    "atlas_load.py": _check_atlas_load,
    "simulator.py": _check_simulator,
    "graded_peers.py": _check_graded_peers,
    "c302_peers.py": _check_c302_peers,
    "jaxley_compare.py": _check_jaxley_compare,
    "serve_load.py": _check_serve_load,
    "conductance_atlas.py": _check_conductance_atlas,
    "body_peers.py": _check_body_peers,
    "worm_speed.py": _check_worm_speed,
    "screen_speed.py": _check_screen_speed,
    "brain_scale.py": _check_brain_scale,
    "design_ceiling.py": _check_design_ceiling,
}


def test_every_readme_benchmark_is_declared():
    scripts = {Path(shlex.split(c)[1]).name for c in BENCH_COMMANDS}
    assert len(scripts) >= 7 and scripts == set(BENCH_ARGS) == set(BENCH_CHECKS)
    assert all((ROOT / "benchmarks" / s).is_file() for s in scripts)


@pytest.fixture(scope="module")
def bench_env(atlas, _session_cache_dir) -> dict[str, str]:
    """The environment of a benchmark run: the session's atlas cache, every dataset in it.

    OpenBLAS runs single-threaded: its spinning threads make scipy's Radau reference 6x slower
    when another process shares the two cores (14 s instead of 2 s in graded_peers.py).
    """
    import os

    atlas.load_all()
    return dict(os.environ, DIGIWORM_CACHE_DIR=_session_cache_dir, OPENBLAS_NUM_THREADS="1")


@pytest.mark.parametrize("command", BENCH_COMMANDS)
def test_readme_benchmark_smoke_run(command, bench_env, tmp_path):
    """``python benchmarks/X.py --smoke --out FILE``: exits 0, writes what it promises."""
    import json
    import subprocess
    import sys

    argv = shlex.split(command)[1:]
    script = Path(argv[0]).name
    needs = BENCH_NEEDS.get(script)
    if needs is not None and not _installed(needs):
        pytest.skip(f'{script} needs {needs}, which is not installed (pip install ".[bench]")')
    out = tmp_path / f"{Path(script).stem}.json"
    results = sorted((ROOT / "benchmarks" / "results").iterdir())
    before = {p: p.stat().st_mtime_ns for p in results}
    proc = subprocess.run(
        [sys.executable, *argv, *BENCH_ARGS[script], "--smoke", "--out", str(out)],
        cwd=ROOT, env=bench_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"{command} --smoke\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert {p: p.stat().st_mtime_ns for p in results} == before  # the tracked results untouched
    result = json.loads(out.read_text())
    assert result["smoke"] is True
    BENCH_CHECKS[script](result, proc.stdout, out)
