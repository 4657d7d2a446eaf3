"""Running a screen: chunks of conditions, batched, written atomically, resumable.

The checked condition table (:func:`~digiworm.screen.check_table`) is cut into chunks of
``chunk_size`` rows. Each chunk's phenotypes are computed and written to
``OUT/chunks/chunk-NNNNN.parquet`` in one atomic step; ``OUT/manifest.json`` records the
table's digest, the read-outs and the settings. A rerun with the same table and settings
skips the chunks already written (and says how many); a different table in the same folder is
refused. An interruption loses at most the chunk in flight. At the end the chunks are joined
into ``OUT/phenotypes.parquet``.

Read-outs (each compared with the wild type of the same model, stimulation, medium and seed):

* ``neural``: the brain model with the row's perturbations is driven at its ``stimulate``
  neurons as ``digiworm simulate`` drives them (the same defaults: 30 s, the model's
  stimulation unit and onset). A neuron's response is its mean ΔF/F after the onset minus the
  value at the onset. Rows sharing a model and a stimulation run one after another through
  one compiled simulator on a CPU, or as one ``vmap`` over the perturbed models
  (:func:`~digiworm.simulate.simulate_ensemble`) on an accelerator (:func:`batch_strategy`).
  Phenotypes:
  ``neural_rms`` (the responses' root mean square over the neurons not stimulated),
  ``neural_change_rms`` (that of the change from the wild type's responses),
  ``neural_corr_wt`` (their Pearson r with the wild type's) and the neuron that changes most
  (``neural_top_neuron``, ``neural_top_change``).
* ``behaviour``: the worm of ``digiworm behave`` (:func:`~digiworm.app.run_behaviour`) for
  ``behaviour_duration_s`` in the row's medium: speed, reverse speed, frequency, wavelength,
  reversals per minute, time backward, co-contraction, ``paralysed`` (speed below
  :data:`PARALYSIS_MM_PER_S`, *assumed*) and the speed's ratio to the wild type's.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import DigiwormError
from .._io import atomic_write_json, write_with
from ..experiments import AMINES, drug_table
from ..simulate import batch_strategy
from ._table import _names, table_digest

__all__ = ["PARALYSIS_MM_PER_S", "READOUTS", "batch_strategy", "chunk_phenotypes", "run_screen"]

READOUTS = ("neural", "behaviour")
#: Speed ratios below this count as this when ranked or compared (a stopped worm's log ratio
#: is not an effect size: every paralysis is the same hit).
RATIO_FLOOR = 1e-3
#: Below this forward speed a worm counts as paralysed (*assumed*: a tenth of crawling).
PARALYSIS_MM_PER_S = 0.02
MANIFEST_VERSION = 1


def run_screen(
    table: pd.DataFrame,
    atlas,
    out_dir,
    *,
    readouts=("neural",),
    chunk_size: int = 64,
    duration_s: float = 30.0,
    behaviour_duration_s: float = 20.0,
    on_chunk=None,
    command: str = "",
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    batch: str = "auto",
    traces: int = 5,
    ensemble: int = 3,
    report: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Run the checked ``table``; return its phenotypes (one row per condition) and a summary.

    ``on_chunk(done_rows, total_rows, skipped)`` is called after each chunk (and once at the
    start with the rows already done); whatever it raises stops the run after a complete chunk.
    ``engine`` ``"local"`` runs the chunks here, one after another; ``"ray"`` sends them to
    ``workers`` Ray actors (default: one per CPU of the cluster) on the cluster at
    ``address`` (None: a local Ray instance; ``"auto"``: the running cluster), each holding
    its own compiled simulators. Both compute every chunk with :func:`chunk_phenotypes`, so
    their phenotypes are the same. ``batch`` sets how a chunk's neural conditions run
    (:func:`batch_strategy`: a loop on a CPU, one ``vmap`` on an accelerator).

    Besides the chunks and ``phenotypes.parquet`` it writes ``dose_response.csv`` (a Hill fit
    per compound, context and phenotype), ``screen.nc`` (the top ``traces`` hits of each
    read-out rerun with their traces; 0: none), ``hit_ensemble.csv`` (the top ``ensemble``
    hits of each read-out rerun on every member of the fitted worm's bootstrap ensemble:
    their effect's spread; :func:`~digiworm.screen.hit_ensemble`), ``report.html``
    (``report=False``: none of these three, as a benchmark wants) and ``summary.json``.
    """
    readouts = tuple(readouts)
    bad = [r for r in readouts if r not in READOUTS]
    if bad or not readouts:
        raise DigiwormError(f"read-outs must be some of {', '.join(READOUTS)}; got {readouts}")
    if engine not in ("local", "ray"):
        raise DigiwormError(f"engine {engine!r} is not one of local, ray")
    strategy = batch_strategy(batch)
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise DigiwormError(f"workers must be a whole number >= 1; got {workers}")
    for what, v in (("traces", traces), ("ensemble", ensemble)):
        if not (isinstance(v, int) and 0 <= v <= 50):
            raise DigiwormError(f"{what} must be a whole number from 0 to 50; got {v}")
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise DigiwormError(f"chunk size must be a whole number >= 1; got {chunk_size}")
    for what, v in (("duration", duration_s), ("behaviour duration", behaviour_duration_s)):
        if not (math.isfinite(v) and v > 0):
            raise DigiwormError(f"{what} must be a number of seconds > 0; got {v}")
    out = Path(out_dir)
    chunks_dir = out / "chunks"
    settings = {"chunk_size": chunk_size, "duration_s": duration_s,
                "behaviour_duration_s": behaviour_duration_s}  # fmt: skip
    # the engine is not a setting: a screen started on one engine may be resumed on the other
    digest = table_digest(table, readouts, settings)
    manifest = out / "manifest.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old.get("digest") != digest:
            raise DigiwormError(
                f"{out} holds another screen (its table or settings differ: digest "
                f"{old.get('digest')} here, {digest} now); use a new --out folder"
            )
    else:
        atomic_write_json(manifest, {
            "version": MANIFEST_VERSION, "digest": digest, "readouts": list(readouts),
            "settings": settings, "rows": len(table), "command": command,
        })  # fmt: skip
    starts = list(range(0, len(table), chunk_size))
    paths = [chunks_dir / f"chunk-{i:05d}.parquet" for i in range(len(starts))]
    done = [p.exists() for p in paths]
    skipped = sum(min(chunk_size, len(table) - s) for s, d in zip(starts, done) if d)
    if on_chunk is not None:
        on_chunk(skipped, len(table), skipped)
    t0 = time.perf_counter()
    ran = 0
    todo = [(path, table.iloc[start : start + chunk_size])
            for start, path, finished in zip(starts, paths, done) if not finished]  # fmt: skip
    if engine == "local":
        refs = _References(atlas, strategy)
        results = (
            (
                path,
                chunk_phenotypes(chunk, atlas, refs, readouts, duration_s, behaviour_duration_s),
            )  # fmt: skip
            for path, chunk in todo
        )
    else:
        from ._ray import ray_results

        # each actor resolves "auto" on its own device (a GPU cluster from a CPU driver)
        results = ray_results(todo, readouts, duration_s, behaviour_duration_s, address, workers,
                              batch)  # fmt: skip
    for path, frame in results:  # each chunk written as soon as it is done
        write_with(path, lambda tmp, f=frame: f.to_parquet(tmp, index=False))
        ran += len(frame)
        if on_chunk is not None:
            on_chunk(skipped + ran, len(table), skipped)
    phenotypes = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    phenotypes = phenotypes.sort_values("row", kind="stable").reset_index(drop=True)
    evidence = drug_table()["evidence"].to_dict()
    phenotypes["drug_evidence"] = phenotypes["drug"].map(lambda d: evidence.get(d, "no drug"))
    write_with(out / "phenotypes.parquet", lambda tmp: phenotypes.to_parquet(tmp, index=False))
    wall = time.perf_counter() - t0
    from ._report import dose_responses, write_hit_traces, write_report

    fits = dose_responses(phenotypes, readouts)
    write_with(out / "dose_response.csv", lambda tmp: fits.to_csv(tmp, index=False))
    summary = {
        "rows": len(table),
        "skipped_rows": skipped,
        "ran_rows": ran,
        "wall_s": wall,
        "conditions_per_s": ran / wall if ran and wall > 0 else None,
        "readouts": list(readouts),
        "engine": engine,
        "batch": strategy,
        "digest": digest,
        "hits": _hits(phenotypes, readouts),
        "ec50s_placed": int(fits["ec50_uM"].notna().sum()) if len(fits) else 0,
        "command": command,
    }
    if report and traces > 0:
        write_hit_traces(out, phenotypes, summary, atlas, duration_s, behaviour_duration_s,
                         k=traces)  # fmt: skip
    spread = None
    if report and ensemble > 0:
        from ._ensemble import hit_ensemble

        spread = hit_ensemble(phenotypes, summary, atlas, duration_s, behaviour_duration_s,
                              k=ensemble)  # fmt: skip
        write_with(out / "hit_ensemble.csv", lambda tmp: spread.to_csv(tmp, index=False))
        summary["hit_ensemble"] = [
            {c: _plain(v) for c, v in rec.items()} for rec in spread.to_dict("records")
        ]
    if report:
        write_report(out, phenotypes, summary, fits, command or "digiworm screen (from Python)",
                     spread=spread)  # fmt: skip
    atomic_write_json(out / "summary.json", summary)
    return phenotypes, summary


def chunk_phenotypes(chunk, atlas, refs, readouts, duration_s, behaviour_duration_s):
    """Return the phenotypes of one chunk of the checked table (its rows, in order)."""
    parts = [chunk.reset_index()]
    if "neural" in readouts:
        parts.append(_neural(chunk, atlas, refs, duration_s))
    if "behaviour" in readouts:
        parts.append(_behaviour(chunk, atlas, refs, behaviour_duration_s))
    return pd.concat([p.reset_index(drop=True) for p in parts], axis=1)


class _References:
    """The base models and the wild-type read-outs, built once per run and shared."""

    def __init__(self, atlas, batch="auto"):
        self.atlas = atlas
        self.batch = batch_strategy(batch)
        self.bases: dict = {}
        self.neural_wt: dict = {}
        self.behaviour_wt: dict = {}

    def base(self, kind):
        from ..app import SimulationRequest, build_model

        if kind not in self.bases:
            self.bases[kind] = build_model(SimulationRequest(model=kind), self.atlas)
        return self.bases[kind]


def _wild_type(**fixed) -> dict:
    """Return a row of the checked table with nothing perturbed (``fixed``: its other columns).

    The wild type has no added neuromodulatory state: a state's row is compared with the
    plain wild type, so the state's own effect shows.
    """
    return {"ablate": "none", "knockout": "none", "drug": "none", "dose_uM": 0.0,
            **{amine: 0.0 for amine in AMINES}, **fixed}  # fmt: skip


def _state(rec) -> tuple[tuple[str, float], ...]:
    return tuple((a, float(rec[a])) for a in AMINES if float(rec[a]) > 0)


def _drugs(rec) -> tuple[tuple[str, float], ...]:
    return () if rec["drug"] == "none" else ((rec["drug"], float(rec["dose_uM"])),)


def _request(rec, duration_s, atlas):
    """Return the ``digiworm simulate`` request of a checked row (the neural read-out's run)."""
    from ..app import SimulationRequest

    return SimulationRequest(
        model=rec["model"], stimulate=_names(rec["stimulate"]), duration_s=duration_s,
        ablate=_names(rec["ablate"]), knockout=_names(rec["knockout"]), drugs=_drugs(rec),
        modulation=_state(rec),
    ).check(atlas)  # fmt: skip


def _behaviour_request(rec, duration_s, atlas):
    """Return the ``digiworm behave`` request of a checked row (the behavioural read-out's run)."""
    from ..app import BehaviourRequest

    return BehaviourRequest(
        model=rec["model"], medium=rec["medium"], duration_s=duration_s,
        ablate=_names(rec["ablate"]), knockout=_names(rec["knockout"]), drugs=_drugs(rec),
        modulation=_state(rec), seed=int(rec["seed"]),
    ).check(atlas)  # fmt: skip


def _neural(chunk: pd.DataFrame, atlas, refs: _References, duration_s) -> pd.DataFrame:
    """Return the neural phenotypes of ``chunk``'s rows (module docstring), in its order."""
    from ..app import build_model
    from ..simulate import model_precision, stack_models

    out = pd.DataFrame(index=range(len(chunk)), columns=[
        "neural_rms", "neural_change_rms", "neural_corr_wt", "neural_top_neuron",
        "neural_top_change"])  # fmt: skip
    position = {row: i for i, row in enumerate(chunk.index)}
    for (kind, stim), group in chunk.groupby(["model", "stimulate"], sort=False):
        base = refs.base(kind)
        reqs = [_request(rec, duration_s, atlas) for _, rec in group.iterrows()]
        with model_precision(base):
            models = [build_model(r, atlas, base=base) for r in reqs]
            if refs.batch == "vmap":
                stacked = stack_models(models, "perturbed models")
                responses = _responses(stacked, reqs[0], len(models))
            else:
                responses = np.stack([_response(m, reqs[0]) for m in models])
            key = (kind, stim)
            if key not in refs.neural_wt:
                wt_req = _request(_wild_type(model=kind, stimulate=stim), duration_s, atlas)
                refs.neural_wt[key] = _response(base, wt_req)
        wt_resp = refs.neural_wt[key]
        names = list(base.names)
        stimulated = [names.index(n) for n in _names(stim)]
        keep = np.ones(len(names), bool)
        keep[stimulated] = False
        for row, resp in zip(group.index, responses):
            both = keep & np.isfinite(resp) & np.isfinite(wt_resp)
            change = np.where(both, resp - wt_resp, np.nan)
            top = int(np.nanargmax(np.abs(change))) if both.any() else None
            out.loc[position[row]] = [
                float(np.sqrt(np.mean(resp[both] ** 2))) if both.any() else math.nan,
                float(np.sqrt(np.mean(change[both] ** 2))) if both.any() else math.nan,
                _pearson(resp[both], wt_resp[both]),
                names[top] if top is not None else None,
                float(change[top]) if top is not None else math.nan,
            ]
    out = out.astype({"neural_rms": float, "neural_change_rms": float, "neural_corr_wt": float,
                      "neural_top_change": float})  # fmt: skip
    return out


def _protocol(model, req):
    """Return the request's stimulation of ``model``, in its unit (as ``digiworm simulate``'s)."""
    from ..app._simulation import stimulation_unit
    from ..simulate import Protocol

    targets = [list(req.stimulate)] if req.stimulate else [[]]
    return Protocol.single(model.names, targets, amplitude=stimulation_unit(model),
                           onset_s=req.onset_s, duration_s=req.pulse_s)  # fmt: skip


def _dff(model, req):
    """One model's ΔF/F ``(time, neuron)`` under the request's stimulation, by ``simulate``."""
    from ..simulate import simulate

    ds = simulate(model, _protocol(model, req), req.duration_s, req.dt_s, save_dt_s=0.5)
    return ds["dff"].isel(condition=0)


def _response(model, req) -> np.ndarray:
    """One model's response ``(neuron,)`` (as :func:`_responses`)."""
    dff = _dff(model, req)
    return _window_response(dff, dff["time"].values, req.onset_s)


def _window_response(dff, t, onset_s) -> np.ndarray:
    at_onset = dff.isel(time=int(np.argmin(np.abs(t - onset_s)))).values
    after = dff.isel(time=t > onset_s + 1e-9).mean("time").values
    return np.asarray(after - at_onset)


def _responses(models, req, n: int) -> np.ndarray:
    """Each member's response ``(member, neuron)``: mean ΔF/F after the onset minus at it."""
    from ..simulate import simulate_ensemble

    protocol = _protocol(_first(models), req)
    ds = simulate_ensemble(models, protocol, req.duration_s, req.dt_s, save_dt_s=0.5)
    resp = _window_response(ds["dff"].isel(condition=0), ds["time"].values, req.onset_s)
    return resp.reshape(n, -1)


def _first(models):
    import jax

    return jax.tree_util.tree_map(lambda x: x[0] if isinstance(x, jax.Array) else x, models)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _behaviour(chunk: pd.DataFrame, atlas, refs: _References, duration_s) -> pd.DataFrame:
    """Return the behavioural phenotypes of ``chunk``'s rows (module docstring), in order.

    Rows sharing model, medium and seed run as one batch (:func:`~digiworm.app.run_behaviours`)
    when the strategy is ``vmap``, one after another otherwise (:func:`batch_strategy`).
    """
    from ..app import run_behaviour, run_behaviours

    keys = ("speed_mm_per_s", "reverse_speed_mm_per_s", "frequency_hz",
            "wavelength_body_lengths", "reversals_per_min", "fraction_backward",
            "co_contraction")  # fmt: skip

    def read(summary):
        return {k: _float(summary.get(k)) for k in keys}

    position = {row: i for i, row in enumerate(chunk.index)}
    rows: list = [None] * len(chunk)
    for key, group in chunk.groupby(["model", "medium", "seed"], sort=False):
        key = (key[0], key[1], int(key[2]))
        recs = [rec for _, rec in group.iterrows()]
        need_wt = key not in refs.behaviour_wt
        if need_wt:
            recs.insert(0, _wild_type(model=key[0], medium=key[1], seed=key[2]))
        reqs = [_behaviour_request(rec, duration_s, atlas) for rec in recs]
        if refs.batch == "vmap":
            got = [read(summary) for _, summary in run_behaviours(reqs, atlas)]
        else:
            got = [read(run_behaviour(req, atlas)[1]) for req in reqs]
        if need_wt:
            refs.behaviour_wt[key] = got.pop(0)
        wt = refs.behaviour_wt[key]
        for row, res in zip(group.index, got):
            res["paralysed"] = bool(res["speed_mm_per_s"] < PARALYSIS_MM_PER_S)
            res["speed_ratio_wt"] = (
                res["speed_mm_per_s"] / wt["speed_mm_per_s"] if wt["speed_mm_per_s"] else math.nan
            )
            rows[position[row]] = res
    return pd.DataFrame(rows)


def _float(v) -> float:
    return float(v) if isinstance(v, (int, float)) else math.nan


#: What ranks the hits of each read-out: the phenotype and how it is scored.
RANK_BY = {
    "neural": ("neural_change_rms", "RMS change of the responses from the wild type's (dF/F)"),
    "behaviour": ("speed_ratio_wt", "|log| of the speed's ratio to the wild type's"),
}


def _hits(phenotypes: pd.DataFrame, readouts, k: int = 10) -> dict:
    """Per read-out, the ``k`` conditions that change most from the wild type, largest first."""
    cols = ["row", "drug", "dose_uM", "drug_evidence", "knockout", "ablate", "stimulate",
            "medium", "model", *AMINES]  # fmt: skip
    out = {}
    for readout in readouts:
        column, how = RANK_BY[readout]
        value = phenotypes[column].astype(float)
        score = np.abs(np.log(value.clip(lower=RATIO_FLOOR))) if readout == "behaviour" else value
        order = score.fillna(-np.inf).sort_values(ascending=False, kind="stable").index[:k]
        out[readout] = {
            "ranked_by": how,
            "hits": [{**{c: _plain(phenotypes.loc[i, c]) for c in cols},
                      column: _plain(phenotypes.loc[i, column])} for i in order],
        }  # fmt: skip
    return out


def _plain(v):
    return v.item() if hasattr(v, "item") else v
