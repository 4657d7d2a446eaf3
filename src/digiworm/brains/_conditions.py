"""Many conditions on one larger brain, on this machine or spread over a Ray cluster.

A conditions table (CSV, Parquet or a DataFrame) has one row per condition:

``stimulate`` (required)
    The neuron ids stimulated together, separated by ``;`` or spaces (empty: none).
``seed`` (default 0)
    Seeds the LIF model's Poisson input (the graded model is deterministic).
``trials`` (default 1)
    LIF trials of the condition (the graded model takes 1).
``amplitude`` (default: the model's own)
    The graded pulse in mV, or the LIF Poisson rate in Hz.

:func:`run_conditions` runs every row with :func:`~digiworm.brains.run_brain` and keeps one
number per neuron and condition, so that thousands of conditions on 10⁵ neurons fit in memory:
the LIF rate (mean over trials, and its s.d.) or the graded response (the signed peak of ΔF/F).
``engine="ray"`` sends the rows to Ray actors (one CPU each) that load the brain once and keep
their compiled simulators; each row is seeded by its own ``seed``, so both engines give the
same numbers (tested). On a cluster every node must see the connectome file (or use the
shipped ``flyvis`` or ``synthetic-flywire`` brains).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .._errors import DigiwormError

__all__ = ["CONDITION_COLUMNS", "read_conditions", "run_conditions"]

#: The conditions table's columns and their defaults (None: required).
CONDITION_COLUMNS = {"stimulate": None, "seed": 0, "trials": 1, "amplitude": float("nan")}


def _ids(cell) -> list[str]:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    return [s for s in re.split(r"[;\s]+", str(cell).strip()) if s]


def read_conditions(table, connectome, model: str) -> pd.DataFrame:
    """Return the checked conditions of ``table`` (a path or a DataFrame) for ``connectome``.

    Every problem is reported at once, each with its file lines (the header is line 1):
    unknown columns, unknown neuron ids (with the closest ones), seeds and trial counts that are
    not whole numbers, trials other than 1 for the graded model, and amplitudes that are not
    finite positive numbers.
    """
    from .._errors import UnknownNameError

    if isinstance(table, (str, Path)):
        path = Path(table)
        if not path.is_file():
            raise DigiwormError(f"conditions file {str(path)!r} does not exist")
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    elif isinstance(table, pd.DataFrame):
        frame = table.copy()
    else:
        raise DigiwormError(f"conditions must be a CSV/Parquet path or a DataFrame; got {table!r}")
    unknown = [c for c in frame.columns if c not in CONDITION_COLUMNS]
    if unknown:
        raise UnknownNameError("conditions column", unknown[0], list(CONDITION_COLUMNS))
    if "stimulate" not in frame.columns:
        raise DigiwormError("the conditions table lacks its 'stimulate' column")
    if frame.empty:
        raise DigiwormError("the conditions table has no rows")
    for col, default in CONDITION_COLUMNS.items():
        if col not in frame.columns:
            frame[col] = default
    frame = frame.reset_index(drop=True)
    known = {str(k) for k in connectome.ids}
    problems: dict[str, list[int]] = {}
    missing: list[str] = []

    def bad(what: str, i: int) -> None:
        problems.setdefault(what, []).append(i + 2)

    stimulate = []
    for i, cell in enumerate(frame["stimulate"]):
        ids = _ids(cell)
        gone = [s for s in ids if s not in known]
        if gone:
            missing.extend(gone)
            bad(f"neuron ids not in the brain, e.g. {gone[:3]}", i)
        stimulate.append(";".join(ids))
    for col in ("seed", "trials"):
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        for i, v in enumerate(values):
            if not (math.isfinite(v) and v == int(v) and v >= (1 if col == "trials" else 0)):
                bad(f"{col} not a whole number >= {1 if col == 'trials' else 0}", i)
            elif col == "trials" and model == "graded" and v != 1:
                bad("trials other than 1 (the graded model is deterministic)", i)
    amplitude = pd.to_numeric(frame["amplitude"], errors="coerce").to_numpy(dtype=float)
    for i, (raw, v) in enumerate(zip(frame["amplitude"], amplitude)):
        given = not (raw is None or (isinstance(raw, float) and math.isnan(raw)))
        if given and not (math.isfinite(v) and v > 0):
            bad("amplitude not a finite number > 0", i)
    if problems:
        lines = "; ".join(f"{what} (file lines {', '.join(map(str, rows[:10]))}"
                          f"{' ...' if len(rows) > 10 else ''})"
                          for what, rows in problems.items())  # fmt: skip
        hint = ""
        if missing:
            import difflib

            close = difflib.get_close_matches(missing[0], sorted(known), n=3)
            hint = f" (closest to {missing[0]!r}: {', '.join(close) or 'none'})"
        raise DigiwormError(f"bad conditions: {lines}{hint}")
    seed, trials = frame["seed"].astype(int), frame["trials"].astype(int)
    return pd.DataFrame(
        {"stimulate": stimulate, "seed": seed, "trials": trials, "amplitude": amplitude}
    )


def _summarise(ds: xr.Dataset, model: str) -> dict:
    """One number per neuron (and its spread): the LIF rate or the graded peak response."""
    if model == "lif":
        rate = ds["rate_hz"].to_numpy()
        sd = rate.std(axis=0, ddof=1) if rate.shape[0] > 1 else np.full(rate.shape[1], np.nan)
        return {"value": rate.mean(axis=0), "spread": sd}
    dff = ds["dff"].to_numpy()[0]  # (time, neuron)
    peak = dff[np.abs(dff).argmax(axis=0), np.arange(dff.shape[1])]
    return {"value": peak, "spread": np.full(dff.shape[1], np.nan)}


def _run_row(connectome, model, net, row: dict, duration_s, dt_s) -> dict:
    from ._run import run_brain

    amplitude = None if math.isnan(row["amplitude"]) else float(row["amplitude"])
    ds = run_brain(connectome, model, stimulate=_ids(row["stimulate"]), duration_s=duration_s,
                   dt_s=dt_s, amplitude=amplitude, trials=int(row["trials"]),
                   seed=int(row["seed"]), net=net)  # fmt: skip
    return _summarise(ds, model)


def _actor_class(ray):
    @ray.remote(num_cpus=1)
    class BrainWorker:
        """One worker: the brain and its network, built once, and its compiled simulators."""

        def __init__(self, spec, neurons, graph_seed, model, x64):
            import jax

            jax.config.update("jax_enable_x64", x64)
            from ._run import build_brain_model, load_brain

            self.brain = load_brain(spec, neurons, seed=graph_seed)
            self.model = model
            self.net = build_brain_model(self.brain, model)

        def run(self, row, duration_s, dt_s):
            return _run_row(self.brain, self.model, self.net, row, duration_s, dt_s)

    return BrainWorker


def run_conditions(
    spec,
    conditions,
    *,
    model: str = "lif",
    duration_s: float = 1.0,
    dt_s: float | None = None,
    neurons=None,
    graph_seed: int = 0,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    progress=None,
) -> xr.Dataset:
    """Run every condition of ``conditions`` on the brain ``spec`` names; return one Dataset.

    ``spec`` is what ``digiworm simulate --connectome`` takes (an edge-list file with
    ``neurons``, ``flyvis[:EXTENT]`` or ``synthetic-flywire[:SCALE]``, drawn with
    ``graph_seed``). Returns ``rate_hz`` and ``rate_sd_hz`` (LIF) or ``peak_dff`` (graded),
    each ``(condition, neuron)``, with the table's columns as coordinates of ``condition``.
    ``progress(done, total)`` is called after each condition.
    """
    import jax

    from ._run import BRAIN_MODELS, build_brain_model, load_brain

    if model not in BRAIN_MODELS:
        from .._errors import UnknownNameError

        raise UnknownNameError("model for a connectome file", model, list(BRAIN_MODELS))
    if engine not in ("local", "ray"):
        raise DigiwormError(f"engine {engine!r} is not one of local, ray")
    if workers is not None and (engine != "ray" or workers < 1):
        raise DigiwormError("workers is for engine='ray' and must be >= 1")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise DigiwormError(f"duration must be a number of seconds > 0; got {duration_s}")
    brain = load_brain(spec, neurons, seed=graph_seed)
    table = read_conditions(conditions, brain, model)
    rows = table.to_dict("records")
    results: list[dict] = []
    if engine == "local":
        net = build_brain_model(brain, model)  # once: every row runs on the same network
        for i, row in enumerate(rows):
            results.append(_run_row(brain, model, net, row, duration_s, dt_s))
            if progress is not None:
                progress(i + 1, len(rows))
    else:
        from .._ray import import_ray, ray_session

        import_ray()
        with ray_session(address) as ray:
            from ray.util import ActorPool

            n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            worker = _actor_class(ray)
            x64 = bool(jax.config.jax_enable_x64)
            path = None if neurons is None else str(Path(neurons).resolve())
            spec_ = str(Path(spec).resolve()) if Path(str(spec)).is_file() else str(spec)
            pool = ActorPool([worker.remote(spec_, path, graph_seed, model, x64)
                              for _ in range(min(n, len(rows)))])  # fmt: skip
            jobs = pool.map(lambda a, row: a.run.remote(row, duration_s, dt_s), rows)
            for i, res in enumerate(jobs):
                results.append(res)
                if progress is not None:
                    progress(i + 1, len(rows))
    value = np.stack([r["value"] for r in results])
    spread = np.stack([r["spread"] for r in results])
    coords = {"condition": np.arange(len(rows)), "neuron": [str(i) for i in brain.ids],
              **{col: ("condition", table[col].to_numpy()) for col in table.columns}}  # fmt: skip
    if model == "lif":
        data = {"rate_hz": (("condition", "neuron"), value),
                "rate_sd_hz": (("condition", "neuron"), spread)}  # fmt: skip
    else:
        data = {"peak_dff": (("condition", "neuron"), value)}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"connectome": brain.source, "model": model, "duration_s": duration_s,
                     "engine": engine, "neurons": brain.n_neurons, "edges": brain.n_edges,
                     "evidence": "; ".join(brain.notes) or "as the file gives it"})  # fmt: skip
    if model == "lif":
        ds["rate_hz"].attrs["long_name"] = "spike rate, mean over the condition's trials"
        ds["rate_sd_hz"].attrs["long_name"] = "s.d. of the rate over trials (NaN for 1 trial)"
    else:
        ds["peak_dff"].attrs["long_name"] = "signed peak of the calcium signal over the run"
    return ds
