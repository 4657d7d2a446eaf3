"""The worm explorer's web API: the same functions as the CLI, behind validated JSON endpoints.

Every request is checked before any compute (names against the atlas with did-you-mean, numbers
against the limits in :class:`Limits`); a bad request gets a 4xx with a one-line message and,
for names, the suggestions; an unexpected failure gets a 500 without a stack trace. No endpoint
takes or returns a file-system path. Models are built once per (kind, connectome) and shared;
each request then applies its own perturbations to its own copy (models are immutable pytrees),
so concurrent requests cannot see each other's state.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .._errors import DigiwormError, UnknownNameError

__all__ = ["Limits", "SimulateBody", "create_app"]

log = logging.getLogger(__name__)

MODEL_KINDS = ("graded", "linear", "kernel", "conductance")
#: a built-in kind, or ``fitted:NAME`` for ``NAME.dwm`` in the folder given to ``create_app``
MODEL_PATTERN = r"^(graded|linear|kernel|conductance|fitted:[A-Za-z0-9_.-]{1,80})$"
PEPTIDE_LAYER = "ripoll_sanchez_short"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (a local teaching tool, not a batch service)."""

    max_duration_s: float = 120.0
    max_names: int = 40
    max_body_bytes: int = 32_768
    min_dt_s: float = 0.01
    max_jobs: int = 3  # in-silico atlases queued or running at once
    max_conductance_duration_s: float = 40.0  # the conductance level runs ~0.2 s per sim. s


class DrugDose(BaseModel):
    """A drug and its concentration."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=40)
    dose_uM: float = Field(ge=0.0, allow_inf_nan=False)


class SimulateBody(BaseModel):
    """One in-silico experiment (the fields of ``digiworm simulate``)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("graded", pattern=MODEL_PATTERN)
    stimulate: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list)
    ablate: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list)
    knockout: list[Annotated[str, Field(max_length=30)]] = Field(default_factory=list)
    drugs: list[DrugDose] = Field(default_factory=list, max_length=5)
    duration_s: float = Field(30.0, gt=0.0, allow_inf_nan=False)
    onset_s: float = Field(5.0, ge=0.0, allow_inf_nan=False)
    pulse_s: float = Field(0.5, gt=0.0, allow_inf_nan=False)
    amplitude: float | None = Field(None, allow_inf_nan=False)
    dt_s: float = Field(0.02, gt=0.0, allow_inf_nan=False)
    connectome: str = Field("cook2019", max_length=40)


class AtlasBody(BaseModel):
    """The in-silico atlas: every neuron stimulated in turn, under optional perturbations."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("graded", pattern=MODEL_PATTERN)
    ablate: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list)
    knockout: list[Annotated[str, Field(max_length=30)]] = Field(default_factory=list)
    drugs: list[DrugDose] = Field(default_factory=list, max_length=5)
    connectome: str = Field("cook2019", max_length=40)


class CompareBody(BaseModel):
    """Two experiments to compare neuron by neuron."""

    model_config = ConfigDict(extra="forbid")
    a: SimulateBody
    b: SimulateBody


def _error(status: int, message: str, suggestions=()) -> JSONResponse:
    return JSONResponse({"detail": message, "suggestions": list(suggestions)}, status_code=status)


def create_app(atlas=None, limits: Limits | None = None, models_dir=None) -> FastAPI:
    """Return the explorer app.

    ``atlas`` defaults to :func:`digiworm.atlas.load` (on first use). ``models_dir`` is a folder
    of fitted models (``*.dwm``, e.g. from ``digiworm reproduce``) offered as ``fitted:NAME``;
    only their names reach the page.
    """
    limits = Limits() if limits is None else limits
    app = FastAPI(title="digiworm explorer", docs_url=None, redoc_url=None, openapi_url=None)
    state = _State(atlas, _model_files(models_dir))

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > limits.max_body_bytes):
            return _error(413, f"request body over {limits.max_body_bytes} bytes")
        return await call_next(request)

    @app.exception_handler(UnknownNameError)
    async def _unknown(request, exc: UnknownNameError):
        return _error(404 if request.method == "GET" else 400, str(exc), exc.suggestions)

    @app.exception_handler(DigiwormError)
    async def _bad(request, exc: DigiwormError):
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"{where or 'request'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return _error(500, "internal error; the server log has the details")

    static = resources.files("digiworm.serve") / "static"

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(str(static / "index.html"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/api/health")
    def health():
        return {"ok": True}

    @app.get("/api/neurons")
    def neurons():
        return state.neuron_table()

    @app.get("/api/neurons/{name}")
    def neuron(name: str):
        from ..report._card import neuron_card

        atl = state.atlas
        canon = atl.neuron(name)
        card = neuron_card(atl, canon)
        return {"name": canon, **card}

    @app.get("/api/options")
    def options():
        from ..atlas import CONNECTOMES
        from ..experiments._experiments import drug_table

        drugs = drug_table()
        return {
            "models": list(MODEL_KINDS) + [f"fitted:{name}" for name in state.model_files],
            "connectomes": list(CONNECTOMES),
            "drugs": [
                {"name": d, "typical_dose_uM": float(r["typical_dose"])}
                for d, r in drugs.iterrows()
            ],
            "limits": limits.__dict__,
        }

    @app.get("/api/connectome")
    def connectome(
        kind: Literal["chemical", "gap", "peptide"] = "chemical",
        min_weight: Annotated[float, Query(ge=0.0, allow_inf_nan=False)] = 1.0,
        neuron: str | None = None,
        neuron_class: str | None = Query(None, alias="class", max_length=20),
        connectome: str = "cook2019",
    ):
        return state.edges(kind, min_weight, neuron, connectome, neuron_class)

    @app.post("/api/simulate")
    def simulate(body: SimulateBody):
        return state.simulate(body, limits)

    @app.post("/api/compare")
    def compare(body: CompareBody):
        a = state.simulate(body.a, limits)
        b = state.simulate(body.b, limits)
        if a["neurons"] != b["neurons"] or len(a["time_s"]) != len(b["time_s"]):
            raise DigiwormError("the two conditions must share duration and sampling")
        da, db = np.asarray(a["dff"]), np.asarray(b["dff"])
        change = np.nanmax(np.abs(db - da), axis=0)
        order = np.argsort(-np.nan_to_num(change, nan=-1.0))
        top = [
            {"neuron": a["neurons"][i], "max_abs_change": _round(change[i])}
            for i in order[:15]
            if np.isfinite(change[i])
        ]
        return {"a": a, "b": b, "most_changed": top}

    @app.post("/api/jobs", status_code=202)
    def start_job(body: AtlasBody):
        return {"job": state.start_atlas(body, limits)}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str):
        return state.job(job_id).view()

    @app.delete("/api/jobs/{job_id}")
    def cancel_job(job_id: str):
        job = state.job(job_id)
        job.cancel.set()
        return job.view()

    @app.post("/api/export.nc")
    def export(body: SimulateBody):
        data = state.netcdf(body, limits)
        return Response(
            data,
            media_type="application/x-netcdf",
            headers={"Content-Disposition": 'attachment; filename="digiworm_run.nc"'},
        )

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    app.state.explorer = state
    return app


def _round(x, digits: int = 5):
    """Round to ``digits`` significant figures (None for NaN) for compact JSON."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


class _Cancelled(Exception):
    """A job's cancel flag was set."""


@dataclass
class _Job:
    """One in-silico atlas run in the background."""

    id: str
    state: str = "queued"  # queued, running, done, cancelled, failed
    done: int = 0
    total: int = 0
    result: dict | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def view(self) -> dict:
        return {
            "job": self.id, "state": self.state, "done": self.done, "total": self.total,
            "error": self.error, "result": self.result,
        }  # fmt: skip


class _State:
    """The atlas and the built base models, shared by every request (thread-safe)."""

    def __init__(self, atlas=None, model_files=None):
        self._atlas = atlas
        self.model_files = dict(model_files or {})
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str], object] = {}
        self._table = None
        self._jobs: dict[str, _Job] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digiworm-job")

    def job(self, job_id: str) -> _Job:
        with self._lock:
            if job_id not in self._jobs:
                raise HTTPException(404, f"no job {job_id!r}")
            return self._jobs[job_id]

    def start_atlas(self, body: AtlasBody, limits: Limits) -> str:
        if body.model == "conductance":
            raise DigiwormError(
                "the conductance-level atlas takes about 30 min on 2 cores; run it with "
                "`digiworm simulate --atlas --model conductance` or benchmarks/conductance_atlas.py"
            )
        sim = SimulateBody(
            model=body.model, stimulate=["AVAL"], ablate=body.ablate, knockout=body.knockout,
            drugs=body.drugs, connectome=body.connectome, duration_s=35.0,
        )  # fmt: skip
        req = self.request(sim, limits)  # validates every name and dose now
        with self._lock:
            active = [j for j in self._jobs.values() if j.state in ("queued", "running")]
            if len(active) >= limits.max_jobs:
                raise HTTPException(429, f"{len(active)} atlas jobs running; wait or cancel one")
            job = _Job(uuid.uuid4().hex[:12])
            self._jobs[job.id] = job
        self._pool.submit(self._run_atlas, job, req, body.model)
        return job.id

    def _run_atlas(self, job: _Job, req, job_model: str) -> None:
        from .._simulate_cmd import build_model
        from ..simulate import insilico_atlas
        from ..validate import validate_prediction

        def on_batch(done, total):
            job.done, job.total = done, total
            if job.cancel.is_set():
                raise _Cancelled

        try:
            if job.cancel.is_set():
                raise _Cancelled
            job.state, job.total = "running", len(self.atlas.names)
            base = self.base_model(job_model, req.connectome)
            model = build_model(req, self.atlas, base=base)
            amplitude = 40.0 if model.output == "activity" else 1.0
            ds = insilico_atlas(
                model, amplitude=amplitude, baseline_s=req.onset_s, window_s=30.0,
                dt_s=req.dt_s, batch_size=32, on_batch=on_batch,
            )  # fmt: skip
            score = None
            if not (req.ablate or req.drugs) and req.knockout in ((), ("unc-31",)):
                strain = "unc31" if req.knockout else "wt"
                s = validate_prediction(self.atlas, ds, strain)
                score = {
                    "strain": strain,
                    **{k: _round(s["prediction"][k], 3) for k in ("pearson_clipped", "spearman")},
                    "anatomy_pearson_clipped": _round(s["anatomy"]["pearson_clipped"], 3),
                    "noise_ceiling": _round(s["noise_ceiling"]["ceiling"], 3),
                }
            m = ds["dff"].transpose("responding", "stimulated").to_numpy()
            job.result = {
                "neurons": [str(n) for n in ds["stimulated"].to_numpy()],
                "dff": [[_round(v, 3) for v in row] for row in m],
                "score": score,
                "command": command_line(req).replace("--stimulate AVAL", "--atlas"),
            }
            job.state = "done"
        except _Cancelled:
            job.state = "cancelled"
        except DigiwormError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception:  # never a stack trace to the page
            log.exception("atlas job %s failed", job.id)
            job.state, job.error = "failed", "internal error; the server log has the details"

    @property
    def atlas(self):
        with self._lock:
            if self._atlas is None:
                from .. import atlas as _atlas

                self._atlas = _atlas.load()
            return self._atlas

    def neuron_table(self) -> dict:
        if self._table is None:
            atl = self.atlas
            rows = atl.neurons
            measured = atl.functional("wt", kernel_time_s=None)["dff"]
            stimulated = np.isfinite(measured.to_numpy()).any(axis=0)
            names = [str(s) for s in measured["stimulated"].to_numpy()]
            was_stimulated = dict(zip(names, stimulated.tolist()))
            self._table = {
                "neurons": [
                    {
                        "name": n,
                        "class": str(rows.loc[n, "neuron_class"]),
                        "type": str(rows.loc[n, "type"]),
                        "ganglion": str(rows.loc[n, "ganglion"] or "unknown"),
                        "x": _round(rows.loc[n, "x"]),
                        "y": _round(rows.loc[n, "y"]),
                        "z": _round(rows.loc[n, "z"]),
                        "measured": bool(was_stimulated.get(n, False)),
                    }
                    for n in atl.names
                ]
            }
        return self._table

    def base_model(self, kind: str, connectome: str):
        key = (kind, connectome)
        with self._lock:
            model = self._models.get(key)
        if model is None:
            from .._simulate_cmd import SimulationRequest, build_model

            kind = str(self.model_file(kind)) if kind.startswith("fitted:") else kind
            model = build_model(SimulationRequest(model=kind, connectome=connectome), self.atlas)
            with self._lock:
                self._models.setdefault(key, model)
        return model

    def request(self, body: SimulateBody, limits: Limits):
        from .._simulate_cmd import SimulationRequest

        for key in ("stimulate", "ablate", "knockout"):
            if len(getattr(body, key)) > limits.max_names:
                raise DigiwormError(f"{key}: at most {limits.max_names} names per request")
        if body.duration_s > limits.max_duration_s:
            raise DigiwormError(
                f"duration {body.duration_s:g} s is over the explorer's limit of "
                f"{limits.max_duration_s:g} s (use `digiworm simulate` for longer runs)"
            )
        dt_s = body.dt_s
        if body.model == "conductance":
            from .._simulate_cmd import CONDUCTANCE_MAX_DT_S

            if "dt_s" not in body.model_fields_set:
                dt_s = CONDUCTANCE_MAX_DT_S
            if body.duration_s > limits.max_conductance_duration_s:
                raise DigiwormError(
                    f"duration {body.duration_s:g} s is over the explorer's limit of "
                    f"{limits.max_conductance_duration_s:g} s for the conductance level"
                )
        elif dt_s < limits.min_dt_s:
            raise DigiwormError(f"dt {dt_s:g} s is below the limit of {limits.min_dt_s} s")
        model = str(self.model_file(body.model)) if body.model.startswith("fitted:") else body.model
        req = SimulationRequest(
            model=model,
            stimulate=tuple(body.stimulate),
            duration_s=body.duration_s,
            dt_s=dt_s,
            amplitude=body.amplitude,
            onset_s=body.onset_s,
            pulse_s=body.pulse_s,
            ablate=tuple(body.ablate),
            knockout=tuple(body.knockout),
            drugs=tuple((d.name, d.dose_uM) for d in body.drugs),
            connectome=body.connectome,
        )
        return req.check(self.atlas)

    def model_file(self, model: str):
        name = model.split(":", 1)[1]
        if name not in self.model_files:
            raise UnknownNameError("fitted model", name, self.model_files)
        return self.model_files[name]

    def run(self, body: SimulateBody, limits: Limits):
        from .._simulate_cmd import build_model, run_request

        req = self.request(body, limits)
        base = self.base_model(body.model, req.connectome)
        model = build_model(req, self.atlas, base=base)
        return req, run_request(req, self.atlas, progress=False, model=model)

    def simulate(self, body: SimulateBody, limits: Limits) -> dict:
        req, ds = self.run(body, limits)
        dff = ds["dff"].isel(condition=0).transpose("time", "neuron").to_numpy()
        out = {
            "time_s": [_round(t) for t in ds["time"].to_numpy()],
            "neurons": [str(n) for n in ds["neuron"].to_numpy()],
            "dff": [[_round(v, 4) for v in row] for row in dff],
            "stimulated": list(req.stimulate),
            "onset_s": req.onset_s,
            "pulse_s": req.pulse_s,
            "command": command_line(req),
            "measured": self.measured(req, ds),
        }
        return out

    def netcdf(self, body: SimulateBody, limits: Limits) -> bytes:
        import tempfile
        from pathlib import Path

        from .._simulate_cmd import write_netcdf

        _, ds = self.run(body, limits)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.nc"
            write_netcdf(ds, path)  # the CLI's own writer
            return path.read_bytes()

    def measured(self, req, ds) -> dict | None:
        """Return the measured atlas response to the same single stimulation, with the score."""
        if len(req.stimulate) != 1 or req.ablate or req.drugs:
            return None
        if req.knockout not in ((), ("unc-31",)):
            return None
        strain = "unc31" if req.knockout else "wt"
        stim = req.stimulate[0]
        fun = self.atlas.functional(strain, kernel_time_s=None)
        col = fun["dff"].sel(stimulated=stim).to_numpy()
        names = [str(n) for n in fun["responding"].to_numpy()]
        if not np.isfinite(col).any():
            return None
        dff = ds["dff"].isel(condition=0).transpose("time", "neuron")
        t = ds["time"].to_numpy()
        base = dff.to_numpy()[t < req.onset_s].mean(axis=0)
        window = (t >= req.onset_s) & (t <= req.onset_s + 30.0)
        pred = dff.to_numpy()[window].mean(axis=0) - base
        order = [str(n) for n in ds["neuron"].to_numpy()]
        pred = np.array([pred[order.index(n)] for n in names])
        keep = np.isfinite(col) & np.isfinite(pred) & (np.array(names) != stim)
        r = None
        if keep.sum() >= 3 and np.std(pred[keep]) > 0 and np.std(col[keep]) > 0:
            r = _round(np.corrcoef(pred[keep], col[keep])[0, 1], 3)
        return {
            "strain": strain,
            "neurons": [n for n, k in zip(names, keep) if k],
            "measured": [_round(v, 4) for v in col[keep]],
            "predicted": [_round(v, 4) for v in pred[keep]],
            "pearson": r,
            "n": int(keep.sum()),
            "source": "Randi et al. 2023 signal propagation atlas (mean dF/F, 30 s window)",
        }

    def edges(
        self, kind: str, min_weight: float, neuron: str | None, connectome: str, cls=None
    ) -> dict:
        atl = self.atlas
        if kind == "peptide":
            w = atl.extrasynaptic(PEPTIDE_LAYER).to_numpy()
        else:
            from ..atlas import CONNECTOMES

            if connectome not in CONNECTOMES:
                raise UnknownNameError("connectome", connectome, CONNECTOMES)
            w = atl.connectome(connectome, kind).to_numpy()
        w = np.nan_to_num(w, nan=0.0)
        names = list(atl.names)
        if kind == "gap":  # one edge per junction pair
            w = np.triu(np.maximum(w, w.T), 1)
        post, pre = np.nonzero(w >= max(min_weight, 1e-12))
        if neuron is not None:
            i = names.index(atl.neuron(neuron))
            sel = (post == i) | (pre == i)
            post, pre = post[sel], pre[sel]
        if cls is not None:
            classes = atl.neurons.loc[names, "neuron_class"].to_numpy()
            if cls not in set(classes):
                raise UnknownNameError("neuron class", cls, sorted(set(classes)))
            sel = (classes[post] == cls) | (classes[pre] == cls)
            post, pre = post[sel], pre[sel]
        return {
            "kind": kind,
            "edges": [[names[p], names[q], _round(w[q, p], 4)] for q, p in zip(post, pre)],
        }


def _model_files(folder) -> dict:
    """Fitted models in ``folder`` by name (``NAME.dwm``); empty without a folder."""
    if folder is None:
        return {}
    from pathlib import Path

    folder = Path(folder)
    if not folder.is_dir():
        raise DigiwormError(f"models folder {str(folder)!r} does not exist")
    files = {p.stem: p for p in sorted(folder.glob("*.dwm"))}
    if not files:
        raise DigiwormError(f"no fitted models (*.dwm) in {str(folder)!r}")
    return files


def command_line(req) -> str:
    """Return the ``digiworm simulate`` command that reproduces ``req`` (no folder paths)."""
    from pathlib import Path

    model = req.model if req.model in MODEL_KINDS else Path(req.model).name
    parts = ["digiworm simulate", f"--model {model}"]
    if req.stimulate:
        parts.append(f"--stimulate {','.join(req.stimulate)}")
    if req.ablate:
        parts.append(f"--ablate {','.join(req.ablate)}")
    if req.knockout:
        parts.append(f"--knockout {','.join(req.knockout)}")
    for name, dose in req.drugs:
        parts.append(f"--drug {name}:{dose:g}")
    parts += [f"--duration {req.duration_s:g}", f"--dt {req.dt_s:g}"]
    parts += [f"--onset {req.onset_s:g}", f"--pulse {req.pulse_s:g}"]
    if req.amplitude is not None:
        parts.append(f"--amplitude {req.amplitude:g}")
    if req.connectome != "cook2019":
        parts.append(f"--connectome {req.connectome}")
    parts.append("--out run.nc")
    return " ".join(parts)
