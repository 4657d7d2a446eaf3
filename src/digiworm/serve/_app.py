"""The worm explorer's web API: the same functions as the CLI, behind validated JSON endpoints.

Every request is checked before any compute (names against the atlas with did-you-mean, numbers
against the limits in :class:`Limits`); a bad request gets a 4xx with a one-line message and,
for names, the suggestions; an unexpected failure gets a 500 without a stack trace. No endpoint
takes a file-system path; the one path returned is a fitted model's, inside the reproduce command
shown to the local user (so that it runs from any folder). Models are built once per (kind,
connectome) and shared; each request then applies its own perturbations to its own copy (models
are immutable pytrees), so concurrent requests cannot see each other's state.

Every request is also bounded before any model is built: by its body's size (counted as it
streams, chunked or not), its lists' lengths, and its integration steps (duration / dt, times the
conditions it runs); run lengths and steps come from small sets so that the compiled programs
stay few; finished atlas jobs are forgotten after a while; and a server bound to this machine
answers only requests addressed to a local host name (no DNS rebinding).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .._errors import DigiwormError, InvalidParameterError, UnknownNameError
from ..app import BEHAVE_KINDS, MODEL_KINDS

__all__ = ["BehaveBody", "Limits", "SimulateBody", "create_app"]

log = logging.getLogger(__name__)

#: a built-in kind, or ``fitted:NAME`` for ``NAME.dwm`` in the folder given to ``create_app``
MODEL_PATTERN = rf"^({'|'.join(MODEL_KINDS)}|fitted:[A-Za-z0-9_.-]{{1,80}})$"
PEPTIDE_LAYER = "ripoll_sanchez_short"
#: Most items in any name list of a body (one per neuron): pydantic refuses longer lists by
#: length, before validating their items. ``Limits.max_names`` is the (smaller) working limit.
MAX_LIST_ITEMS = 302
#: Host names a server bound to this machine answers to (``testserver``: Starlette's TestClient).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]", "testserver")
#: The explorer's sampling interval (the measured atlas's imaging volume period), s.
SAMPLE_S = 0.5


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (a local teaching tool, not a batch service).

    Attributes
    ----------
    max_duration_s : float
        Longest simulated time per condition, s.
    max_names : int
        Most neurons or genes in one list of a request.
    max_body_bytes : int
        Largest request body, bytes (counted as it streams, with or without Content-Length).
    min_dt_s : float
        Finest integration step of the graded, linear, kernel and fitted models, s.
    max_jobs : int
        In-silico atlases queued or running at once.
    max_conductance_duration_s : float
        Longest simulated time of the conductance level (it runs ~0.2 s per simulated s), s.
    max_steps : int
        Most integration steps per condition, ``run length / dt``, any model kind (the default
        is the conductance level's 40 s at 0.0005 s).
    max_total_steps : int
        Most integration steps per request over all its conditions (a compare runs 2, an atlas
        job one per neuron: 302 x 35 s / 0.02 s = 528,500 for the default atlas).
    dt_choices_s : tuple of float
        The integration steps offered for the graded, linear, kernel and fitted models, s
        (each divides the 0.5 s sampling interval); one compiled program per step.
    conductance_dt_choices_s : tuple of float
        The integration steps offered for the conductance level, s.
    run_lengths_s : tuple of float
        Compiled run lengths, s: a run is simulated for the shortest of these that covers the
        duration asked for (beyond the longest, for the next multiple of it), then cut back to
        the duration asked for, so a few compiled programs serve every duration.
    max_kept_jobs : int
        Finished, cancelled or failed atlas jobs kept (the oldest are forgotten first).
    job_ttl_s : float
        How long a finished job's result is kept, s.
    max_connections : int
        Open connections and tasks the server takes at once (``uvicorn`` ``limit_concurrency``;
        more are answered 503).
    behave_durations_s : tuple of float
        The moving worm's run lengths, s (one compiled program each; a run of the two worms
        takes a few seconds per 10 s after the first compile).
    """

    max_duration_s: float = 120.0
    max_names: int = 40
    max_body_bytes: int = 32_768
    min_dt_s: float = 0.01
    max_jobs: int = 3  # in-silico atlases queued or running at once
    max_conductance_duration_s: float = 40.0  # the conductance level runs ~0.2 s per sim. s
    max_steps: int = 80_000
    max_total_steps: int = 600_000
    dt_choices_s: tuple[float, ...] = (0.01, 0.02, 0.025, 0.05, 0.1, 0.125, 0.25, 0.5)
    conductance_dt_choices_s: tuple[float, ...] = (0.0001, 0.00025, 0.0005)
    run_lengths_s: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0, 40.0, 60.0, 90.0, 120.0)
    max_kept_jobs: int = 16
    job_ttl_s: float = 900.0
    max_connections: int = 100
    behave_durations_s: tuple[float, ...] = (10.0, 20.0, 30.0)


class DrugDose(BaseModel):
    """A drug and its concentration."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=40)
    dose_uM: float = Field(ge=0.0, allow_inf_nan=False)


class SimulateBody(BaseModel):
    """One in-silico experiment (the fields of ``digiworm simulate``)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("graded", pattern=MODEL_PATTERN)
    stimulate: list[Annotated[str, Field(max_length=20)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    ablate: list[Annotated[str, Field(max_length=20)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    knockout: list[Annotated[str, Field(max_length=30)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    drugs: list[DrugDose] = Field(default_factory=list, max_length=5)
    duration_s: float = Field(30.0, gt=0.0, allow_inf_nan=False)
    onset_s: float = Field(5.0, ge=0.0, allow_inf_nan=False)
    pulse_s: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    """Default: driven to the end for the fitted worm, 0.5 s for other models."""
    amplitude: float | None = Field(None, allow_inf_nan=False)
    dt_s: float = Field(0.02, gt=0.0, allow_inf_nan=False)
    """Unset: the model's default step (``digiworm.app.default_dt_s``)."""
    connectome: str = Field("cook2019", max_length=40)


class AtlasBody(BaseModel):
    """The in-silico atlas: every neuron stimulated in turn, under optional perturbations."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("graded", pattern=MODEL_PATTERN)
    ablate: list[Annotated[str, Field(max_length=20)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    knockout: list[Annotated[str, Field(max_length=30)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    drugs: list[DrugDose] = Field(default_factory=list, max_length=5)
    connectome: str = Field("cook2019", max_length=40)


class TouchAt(BaseModel):
    """A touch of the moving worm: where, and when in the run."""

    model_config = ConfigDict(extra="forbid")
    where: Literal["anterior", "posterior"]
    at_s: float = Field(ge=0.0, allow_inf_nan=False)


class BehaveBody(BaseModel):
    """The moving worm (the fields of ``digiworm behave``): a wild type and a perturbed worm.

    Both get the medium, the run length, the touches and the seed; the perturbed worm gets the
    ablations, knockouts and drugs (none: only the wild type runs).
    """

    model_config = ConfigDict(extra="forbid")
    model: str = Field("graded", pattern=rf"^({'|'.join(BEHAVE_KINDS)})$")
    medium: str = Field("agar", min_length=1, max_length=24)
    duration_s: float = Field(20.0, gt=0.0, allow_inf_nan=False)
    ablate: list[Annotated[str, Field(max_length=20)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    knockout: list[Annotated[str, Field(max_length=30)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    drugs: list[DrugDose] = Field(default_factory=list, max_length=5)
    touch: list[TouchAt] = Field(default_factory=list, max_length=4)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class CompareBody(BaseModel):
    """Two experiments to compare neuron by neuron."""

    model_config = ConfigDict(extra="forbid")
    a: SimulateBody
    b: SimulateBody


def _error(status: int, message: str, suggestions=()) -> JSONResponse:
    return JSONResponse({"detail": message, "suggestions": list(suggestions)}, status_code=status)


def create_app(
    atlas=None, limits: Limits | None = None, models_dir=None, host: str = "127.0.0.1"
) -> FastAPI:
    """Return the explorer app.

    Parameters
    ----------
    atlas : digiworm.atlas.Atlas, optional
        Defaults to :func:`digiworm.atlas.load` (on first use).
    limits : Limits, optional
        What one request may ask for (default ``Limits()``).
    models_dir : path, optional
        A folder of fitted models (``*.dwm``, e.g. from ``digiworm reproduce``) offered as
        ``fitted:NAME``; only their names reach the page.
    host : str
        The interface the server binds (``digiworm serve --host``). Bound to this machine
        (a loopback address or ``localhost``), the app answers only requests whose ``Host`` is
        a local name (:data:`LOCAL_HOSTS` or ``host`` itself), others get 400: a web page
        elsewhere cannot reach it through DNS rebinding.

    Returns
    -------
    fastapi.FastAPI
        The app; ``app.state.limits`` holds ``limits``.

    Raises
    ------
    InvalidParameterError
        If ``limits.max_names`` exceeds :data:`MAX_LIST_ITEMS`.
    """
    limits = Limits() if limits is None else limits
    if limits.max_names > MAX_LIST_ITEMS:
        raise InvalidParameterError(
            f"Limits.max_names must be at most {MAX_LIST_ITEMS}; got {limits.max_names}"
        )
    app = FastAPI(title="digiworm explorer", docs_url=None, redoc_url=None, openapi_url=None)
    state = _State(atlas, _model_files(models_dir), limits)
    app.add_middleware(_BodyLimit, max_bytes=limits.max_body_bytes)
    if _is_loopback(host):  # added last: the outermost check, before any body is read
        bare = host.strip("[]").lower()
        allowed = sorted({*LOCAL_HOSTS, bare, f"[{bare}]" if ":" in bare else bare})
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed)

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

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():  # browsers ask for it whatever the page says: no 404 in their console
        return FileResponse(str(static / "favicon.svg"), media_type="image/svg+xml")

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
        from ..app import model_evidence
        from ..atlas import CONNECTOMES
        from ..experiments import drug_table

        drugs = drug_table()
        return {
            "models": list(MODEL_KINDS) + [f"fitted:{name}" for name in state.model_files],
            "model_evidence": {kind: model_evidence(kind) for kind in MODEL_KINDS},
            "connectomes": list(CONNECTOMES),
            "drugs": [
                {
                    "name": d,
                    "typical_dose_uM": float(r["typical_dose"]),
                    "class": r["class"],
                    "evidence": r["evidence"],
                    "potency_source": r["potency_source"],
                }
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
    async def simulate(body: SimulateBody):
        state.check_steps([body], limits)  # on the event loop: refused without a worker thread
        return await run_in_threadpool(state.simulate, body, limits)

    @app.post("/api/compare")
    def compare(body: CompareBody):
        state.check_steps([body.a, body.b], limits)  # both bounded before either runs
        a = state.simulate(body.a, limits)
        b = state.simulate(body.b, limits)
        if a["neurons"] != b["neurons"] or len(a["time_s"]) != len(b["time_s"]):
            raise DigiwormError("the two conditions must share duration and sampling")
        ablated = sorted(set(a["ablated"]) | set(b["ablated"]))
        return {"a": a, "b": b, "most_changed": _most_changed(a, b), "ablated": ablated}

    @app.post("/api/behave")
    async def behave(body: BehaveBody):
        from ._behave import behave_view

        return await run_in_threadpool(behave_view, body, state.atlas, limits)

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
    async def export(body: SimulateBody):
        state.check_steps([body], limits)  # on the event loop: refused without a worker thread
        data = await run_in_threadpool(state.netcdf, body, limits)
        return Response(
            data,
            media_type="application/x-netcdf",
            headers={"Content-Disposition": 'attachment; filename="digiworm_run.nc"'},
        )

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    app.state.explorer = state
    app.state.limits = limits
    return app


def _is_loopback(host: str) -> bool:
    """Return True if ``host`` (an interface to bind) is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BodyTooLarge(HTTPException):
    """The request body passed ``Limits.max_body_bytes`` while it streamed in."""

    def __init__(self, limit: int, received: int):
        super().__init__(
            413, f"request body over the limit of {limit} bytes (received {received} so far)"
        )


class _BodyLimit:
    """Pure ASGI middleware: refuse a request body larger than ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before anything is read; any other
    body (chunked, or with a false length) is counted as it streams through ``receive``, and the
    request is refused as soon as the running total passes the limit, so no more than
    ``max_bytes`` plus one chunk is ever read.

    Parameters
    ----------
    app : ASGI app
        The app to wrap.
    max_bytes : int
        Largest body, bytes.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        """Run the request with a byte-counting ``receive``; answer 413 past the limit."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                bad = declared[:20].decode("latin-1")
                return await _error(400, f"Content-Length {bad!r} is not a byte count")(
                    scope, receive, send
                )
            if int(declared) > self.max_bytes:
                message = (
                    f"request body of {int(declared)} bytes is over the limit of "
                    f"{self.max_bytes} bytes"
                )
                return await _error(413, message)(scope, receive, send)
        received = 0
        started = False

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes, received)
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _BodyTooLarge as exc:  # read outside a route's own body parsing
            if started:
                raise
            await _error(413, exc.detail)(scope, receive, send)


def _run_length(duration_s: float, lengths_s: tuple[float, ...]) -> float:
    """Return the compiled run length that covers ``duration_s`` (see ``Limits.run_lengths_s``).

    Examples
    --------
    >>> _run_length(21.0, (10.0, 30.0)), _run_length(30.0, (10.0, 30.0)), _run_length(61.0, (30.0,))
    (30.0, 30.0, 90.0)
    """
    longest = max(lengths_s)
    for length in sorted(lengths_s):
        if length >= duration_s - 1e-9:
            return float(length)
    return float(math.ceil(duration_s / longest - 1e-9) * longest)


def _one_of(value: float, choices: tuple[float, ...]) -> bool:
    return any(math.isclose(value, c, rel_tol=1e-9) for c in choices)


def _round(x, digits: int = 5):
    """Round to ``digits`` significant figures (None for NaN) for compact JSON."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _most_changed(a: dict, b: dict, k: int = 15) -> list[dict]:
    """Return the ``k`` neurons whose dF/F differs most between results ``a`` and ``b``.

    A neuron ablated in either condition has no trace (null) there, so it has no difference and
    is left out; ``ablated`` in the compare response lists them.
    """
    da = np.array(a["dff"], dtype=float)  # null (ablated) -> NaN
    db = np.array(b["dff"], dtype=float)
    diff = np.abs(db - da)
    change = np.where(np.isfinite(diff), diff, -1.0).max(axis=0)
    skip = set(a["ablated"]) | set(b["ablated"])
    order = [i for i in np.argsort(-change, kind="stable") if a["neurons"][i] not in skip]
    return [
        {"neuron": a["neurons"][i], "max_abs_change": _round(change[i])}
        for i in order[:k]
        if change[i] >= 0.0
    ]


_AMPLITUDE_HINT = (
    "use a smaller amplitude (the default is 1, the fitted worm's unit: 1 mV for the graded "
    "network; 40 mV for graded-uncalibrated)"
)


def _check_amplitude(amplitude: float | None) -> None:
    """Refuse an amplitude that the simulation's 32-bit numbers cannot hold (it would overflow)."""
    largest = float(np.finfo(np.float32).max)
    if amplitude is not None and abs(amplitude) > largest:
        raise DigiwormError(
            f"amplitude {amplitude:g} is beyond what the simulation's 32-bit numbers can "
            f"represent (at most {largest:.3g} in size); {_AMPLITUDE_HINT}"
        )


def _check_representable(dff: np.ndarray, names: list[str], req) -> None:
    """Refuse a result with non-finite dF/F outside the ablated neurons (an overflow).

    Sending such values as JSON nulls would look like ablated neurons; name the likely cause.
    """
    live = np.array([n not in set(req.ablate) for n in names])
    bad = ~np.isfinite(dff[:, live])
    if not bad.any():
        return
    n_bad, n_all = int(bad.sum()), int(bad.size)
    if req.amplitude is not None:
        raise DigiwormError(
            f"amplitude {req.amplitude:g} makes the simulation overflow: {n_bad} of {n_all} dF/F "
            f"values are not representable numbers; {_AMPLITUDE_HINT}"
        )
    cause = "the drug doses" if req.drugs else "the settings"
    raise DigiwormError(
        f"the simulation overflowed: {n_bad} of {n_all} dF/F values are not representable "
        f"numbers; check {cause}"
    )


def _notes(req) -> list[str]:
    """Sentences about settings that make part of an experiment do nothing (shown, not refused)."""
    from ..experiments import drug_table

    notes = []
    for name, dose in req.drugs:
        row = drug_table().loc[name]
        if dose == 0.0:
            notes.append(
                f"{name} at 0 µM has no effect: set a dose (typical {row['typical_dose']:g} µM) "
                "to apply it"
            )
        else:  # every result under a drug says how far its potency can be trusted
            notes.append(f"{name}'s potency is {row['evidence']}: {row['potency_source']}")
    dead = [n for n in req.stimulate if n in set(req.ablate)]
    if dead:
        verb, it = ("is", "it") if len(dead) == 1 else ("are", "them")
        note = f"{', '.join(dead)} {verb} ablated, so stimulating {it} drives nothing"
        if len(dead) == len(req.stimulate):
            note += ": no neuron is driven and every trace stays at rest"
        notes.append(note)
    return notes


def _no_measurement(req, atlas) -> str:
    """Why no measured atlas response sits beside this experiment (one sentence)."""
    if req.onset_s <= 0:
        return (
            "No measured response: the atlas's responses are changes from a baseline before "
            "the stimulus, and this run has none (onset 0 s)."
        )
    if len(req.stimulate) != 1:
        return (
            f"No measured response: the atlas stimulated one neuron at a time, this experiment "
            f"stimulates {len(req.stimulate)}."
        )
    if req.ablate or req.drugs:
        return "No measured response: the measured atlases have no ablations or drugs."
    if req.knockout not in ((), ("unc-31",)):
        return "No measured response: the measured atlases are wild type and unc-31 only."
    stim = req.stimulate[0]
    strain = "unc31" if req.knockout else "wt"
    label = {"wt": "wild-type", "unc31": "unc-31"}[strain]
    note = f"{stim} was not stimulated in the measured {label} atlas (Randi et al. 2023)"
    if strain == "unc31":
        wt = atlas.functional("wt", kernel_time_s=None)["dff"].sel(stimulated=stim).to_numpy()
        if np.isfinite(wt).any():
            note += "; it was in the wild-type atlas: clear the knockout to compare with it"
    return note + "."


def _score_basis(kind: str, strain: str, model_path=None) -> dict:
    """Say whether an in-silico atlas score is in-sample, with the held-out score where known.

    A fitted model (``digiworm reproduce`` writes ``model_NAME.dwm``) was fitted on the
    wild-type atlas, so its score against that atlas is in-sample; ``reproduce`` writes the
    cross-validated (held-out) scores into ``scores.json`` beside the model, which is read here.
    The built-in kernel model replays the measured wild-type kernels, so it is in-sample too.
    """
    from ..app import FITTED_KINDS

    out: dict = {"in_sample": False, "basis": None, "heldout": None}
    if kind.startswith("fitted:"):
        out["basis"] = "a fitted model, fitted on the measured wild-type atlas"
    elif kind in FITTED_KINDS:
        out["basis"] = "the shipped fitted worm, fitted on the measured wild-type atlas"
    elif kind == "kernel-atlas":
        out["basis"] = "the measured wild-type response kernels, replayed"
    else:
        return out
    if strain == "wt":
        out["in_sample"] = True
    if model_path is not None:
        out["heldout"] = _heldout_from_provenance(model_path)
    elif kind in FITTED_KINDS:
        out["heldout"] = _heldout_of_shipped(kind)
    return out


def _heldout_of_shipped(kind: str) -> dict:
    """Return the shipped fitted model's held-out score, from its provenance."""
    from ..models import fitted_heldout, fitted_provenance

    prov = fitted_provenance()
    heldout = fitted_heldout(kind)
    folds = prov["settings"]["folds"]
    return {
        "pearson_clipped": _round(heldout["pearson_clipped"], 3),
        "spearman": _round(heldout["spearman"], 3),
        "split": f"{folds}-fold {prov['settings'].get('split', 'class')} split",
        "source": "the shipped models' provenance (digiworm.models.fitted_provenance())",
    }


def _heldout_from_provenance(model_path) -> dict | None:
    """Return a ``reproduce`` model's held-out score from the scores.json beside it, or None."""
    import json
    from pathlib import Path

    path = Path(model_path)
    scores_path = path.with_name("scores.json")
    stem = path.stem.removeprefix("model_")
    try:
        scores = json.loads(scores_path.read_text())
        models = scores["models"]
        # the kernel model's couplings are the linear network's: same held-out dF/F scores
        entry = models.get(stem) or (models.get("linear") if stem == "kernel" else None)
        heldout = entry["heldout"]
        r = _round(heldout["pearson_clipped"], 3)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if r is None:
        return None
    return {
        "pearson_clipped": r,
        "spearman": _round(heldout.get("spearman", float("nan")), 3),
        "split": f"{scores.get('folds', '?')}-fold {scores.get('split', '?')} split",
        "source": "scores.json written by digiworm reproduce beside the model",
    }


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
    finished_s: float | None = None  # time.monotonic() when it ended (done/cancelled/failed)

    def view(self) -> dict:
        return {
            "job": self.id, "state": self.state, "done": self.done, "total": self.total,
            "error": self.error, "result": self.result,
        }  # fmt: skip


class _State:
    """The atlas and the built base models, shared by every request (thread-safe)."""

    def __init__(self, atlas=None, model_files=None, limits: Limits | None = None):
        self._atlas = atlas
        self.model_files = dict(model_files or {})
        self.limits = Limits() if limits is None else limits
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str], object] = {}
        self._table = None
        self._jobs: dict[str, _Job] = {}
        self._evicted: OrderedDict[str, None] = OrderedDict()  # recent ids, for the 404 message
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digiworm-job")

    def job(self, job_id: str) -> _Job:
        with self._lock:
            self._evict()
            if job_id in self._evicted:
                lim = self.limits
                raise HTTPException(
                    404,
                    f"job {job_id!r} was forgotten: finished jobs are kept for "
                    f"{lim.job_ttl_s:g} s, at most {lim.max_kept_jobs} of them; start it again",
                )
            if job_id not in self._jobs:
                raise HTTPException(404, f"no job {job_id[:40]!r}")
            return self._jobs[job_id]

    def _evict(self) -> None:
        """Forget finished jobs past ``job_ttl_s`` or beyond ``max_kept_jobs`` (lock held)."""
        now = time.monotonic()
        ended = {  # id -> when the job ended (its state is set a moment before its time)
            j.id: now if j.finished_s is None else j.finished_s
            for j in self._jobs.values()
            if j.state not in ("queued", "running")
        }
        order = sorted(ended, key=ended.get)  # oldest first
        kept = [i for i in order if now - ended[i] <= self.limits.job_ttl_s]
        stale = [i for i in order if now - ended[i] > self.limits.job_ttl_s]
        stale += kept[: max(0, len(kept) - self.limits.max_kept_jobs)]
        for job_id in stale:
            del self._jobs[job_id]
            self._evicted[job_id] = None
        while len(self._evicted) > 1024:
            self._evicted.popitem(last=False)

    @property
    def n_jobs(self) -> int:
        """Jobs held now (queued, running, and finished ones not yet forgotten)."""
        with self._lock:
            self._evict()
            return len(self._jobs)

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
        n = len(self.atlas.names)
        self.check_steps([sim], limits, conditions=n, what="stimulations", compiled=False)
        req = self.request(sim, limits)  # validates every name and dose now
        with self._lock:
            self._evict()
            active = [j for j in self._jobs.values() if j.state in ("queued", "running")]
            if len(active) >= limits.max_jobs:
                raise HTTPException(429, f"{len(active)} atlas jobs running; wait or cancel one")
            job = _Job(uuid.uuid4().hex[:12])
            self._jobs[job.id] = job
        self._pool.submit(self._run_atlas, job, req, body.model)
        return job.id

    def _run_atlas(self, job: _Job, req, job_model: str) -> None:
        from ..app import build_model, run_request
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
            # every neuron in turn: the run's onset is the baseline, the rest its window
            every = dataclasses.replace(req, stimulate=(), atlas_mode=True)
            ds = run_request(
                every, self.atlas, progress=False, model=model, on_batch=on_batch, batch_size=32
            )
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
                path = self.model_file(job_model) if job_model.startswith("fitted:") else None
                score.update(_score_basis(job_model, strain, path))
            m = ds["dff"].transpose("responding", "stimulated").to_numpy()
            job.result = {
                "neurons": [str(n) for n in ds["stimulated"].to_numpy()],
                "responding": [str(n) for n in ds["responding"].to_numpy()],
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
        finally:
            job.finished_s = time.monotonic()

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
            from ..app import SimulationRequest, build_model

            kind = str(self.model_file(kind)) if kind.startswith("fitted:") else kind
            model = build_model(SimulationRequest(model=kind, connectome=connectome), self.atlas)
            with self._lock:
                self._models.setdefault(key, model)
        return model

    def request(self, body: SimulateBody, limits: Limits):
        from ..app import SimulationRequest

        dt_s = self.check_steps([body], limits)
        if body.model == "conductance":
            choices = limits.conductance_dt_choices_s
        elif dt_s < limits.min_dt_s:
            raise DigiwormError(f"dt {dt_s:g} s is below the limit of {limits.min_dt_s} s")
        else:
            choices = limits.dt_choices_s
        if not _one_of(dt_s, choices):
            level = " for the conductance level" if body.model == "conductance" else ""
            raise DigiwormError(
                f"dt {dt_s:g} s is not one of the explorer's steps{level}: "
                f"{', '.join(f'{c:g}' for c in choices)} s"
            )
        samples = body.duration_s / SAMPLE_S
        if abs(samples - round(samples)) > 1e-6 * max(1.0, samples):
            raise DigiwormError(
                f"duration {body.duration_s:g} s must be a whole number of {SAMPLE_S:g} s "
                f"samples, e.g. {max(1, round(samples)) * SAMPLE_S:g}"
            )
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

    def check_steps(
        self, bodies: list[SimulateBody], limits: Limits, conditions: int = 1,
        what: str = "conditions", compiled: bool = True,
    ) -> float:  # fmt: skip
        """Refuse (422) a request whose integration steps pass the limits; return its dt, s.

        Pure arithmetic, before any name lookup or model build. Each body is one condition run
        ``conditions`` times (an atlas job: once per neuron); its steps are its run length over
        its dt: the compiled run length (:func:`_run_length`), or with ``compiled=False`` (the
        atlas job, one fixed shape) its own duration.

        Raises
        ------
        DigiwormError
            A duration over the explorer's limits (400).
        HTTPException
            422 when one condition's steps pass ``limits.max_steps`` or all conditions' steps
            pass ``limits.max_total_steps``.
        """
        from ..app import default_dt_s

        total, n = 0.0, 0
        for body in bodies:
            for key in ("stimulate", "ablate", "knockout"):
                if len(getattr(body, key)) > limits.max_names:
                    raise DigiwormError(f"{key}: at most {limits.max_names} names per request")
            if body.duration_s > limits.max_duration_s:
                raise DigiwormError(
                    f"duration {body.duration_s:g} s is over the explorer's limit of "
                    f"{limits.max_duration_s:g} s (use `digiworm simulate` for longer runs)"
                )
            dt_s = body.dt_s if "dt_s" in body.model_fields_set else default_dt_s(body.model)
            if body.model == "conductance":
                if body.duration_s > limits.max_conductance_duration_s:
                    raise DigiwormError(
                        f"duration {body.duration_s:g} s is over the explorer's limit of "
                        f"{limits.max_conductance_duration_s:g} s for the conductance level"
                    )
            run_s = body.duration_s
            if compiled:
                run_s = _run_length(body.duration_s, limits.run_lengths_s)
            steps = run_s / dt_s
            if steps > limits.max_steps:
                run = f" (run as {run_s:g} s)" if run_s != body.duration_s else ""
                raise HTTPException(
                    422,
                    f"duration {body.duration_s:g} s{run} / dt {dt_s:g} s is {steps:.3g} "
                    f"integration steps per condition, over the limit of {limits.max_steps} "
                    "(max_steps); use a larger dt or a shorter duration",
                )
            total += steps * conditions
            n += conditions
        if total > limits.max_total_steps:
            raise HTTPException(
                422,
                f"{n} {what} need {total:.6g} integration steps in all, over the limit of "
                f"{limits.max_total_steps} per request (max_total_steps)",
            )
        return dt_s

    def model_file(self, model: str):
        name = model.split(":", 1)[1]
        if name not in self.model_files:
            raise UnknownNameError("fitted model", name, self.model_files)
        return self.model_files[name]

    def run(self, body: SimulateBody, limits: Limits):
        """Run one experiment for its compiled run length; return ``(req, ds)`` cut to its own.

        :func:`~digiworm.app.run_request` runs it in the model's own precision
        (:func:`digiworm.simulate.model_precision`: thread-local, never the process-wide flag).
        """
        from ..app import build_model, run_request

        req = self.request(body, limits)
        base = self.base_model(body.model, req.connectome)
        model = build_model(req, self.atlas, base=base)
        run_s = _run_length(req.duration_s, limits.run_lengths_s)
        run_req = dataclasses.replace(req, duration_s=run_s)
        ds = run_request(run_req, self.atlas, progress=False, model=model)
        keep = int(np.count_nonzero(ds["time"].to_numpy() <= req.duration_s + 1e-9))
        return req, ds.isel(time=slice(0, keep))

    def simulate(self, body: SimulateBody, limits: Limits) -> dict:
        from ..app import model_evidence

        _check_amplitude(body.amplitude)
        req, ds = self.run(body, limits)
        dff = ds["dff"].isel(condition=0).transpose("time", "neuron").to_numpy()
        names = [str(n) for n in ds["neuron"].to_numpy()]
        _check_representable(dff, names, req)
        measured = self.measured(req, ds)
        out = {
            "time_s": [_round(t) for t in ds["time"].to_numpy()],
            "neurons": names,
            "dff": [[_round(v, 4) for v in row] for row in dff],  # null: an ablated neuron
            "stimulated": list(req.stimulate),
            "ablated": list(req.ablate),
            "onset_s": req.onset_s,
            "pulse_s": req.pulse_s,
            "command": command_line(req),
            "measured": measured,
            "measured_note": None if measured else _no_measurement(req, self.atlas),
            "notes": _notes(req),
            "evidence": f"Model parameters: {model_evidence(req.model)}.",
        }
        return out

    def netcdf(self, body: SimulateBody, limits: Limits) -> bytes:
        import tempfile
        from pathlib import Path

        from ..app import write_netcdf

        _, ds = self.run(body, limits)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.nc"
            write_netcdf(ds, path)  # the CLI's own writer
            return path.read_bytes()

    def measured(self, req, ds) -> dict | None:
        """Return the measured atlas response to the same single stimulation, with the score."""
        if len(req.stimulate) != 1 or req.ablate or req.drugs or req.onset_s <= 0:
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
        from ..simulate import response_change

        pred = response_change(ds["dff"].isel(condition=0), req.onset_s).to_numpy()
        order = [str(n) for n in ds["neuron"].to_numpy()]
        pred = np.array([pred[order.index(n)] for n in names], dtype=float)  # no f32 overflow
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
    """Return the ``digiworm simulate`` command that reproduces ``req``, runnable from any folder.

    A fitted model is named by the absolute path of its file: the command is shown to the local
    user of a localhost tool, who can paste it anywhere (no endpoint takes a path as input).
    Numbers are written in full (shortest round-trip form), so the run is the same run.
    """
    import shlex
    from pathlib import Path

    model = req.model if req.model in MODEL_KINDS else str(Path(req.model).resolve())
    parts = ["digiworm simulate", f"--model {shlex.quote(model)}"]
    if req.stimulate:
        parts.append(f"--stimulate {','.join(req.stimulate)}")
    if req.ablate:
        parts.append(f"--ablate {','.join(req.ablate)}")
    if req.knockout:
        parts.append(f"--knockout {shlex.quote(','.join(req.knockout))}")
    for name, dose in req.drugs:
        parts.append(f"--drug {shlex.quote(f'{name}:{_num(dose)}')}")
    parts += [f"--duration {_num(req.duration_s)}", f"--dt {_num(req.dt_s)}"]
    parts += [f"--onset {_num(req.onset_s)}", f"--pulse {_num(req.pulse_s)}"]
    if req.amplitude is not None:
        parts.append(f"--amplitude {_num(req.amplitude)}")
    if req.connectome != "cook2019":
        parts.append(f"--connectome {shlex.quote(req.connectome)}")
    parts.append("--out run.nc")
    return " ".join(parts)


def _num(x: float) -> str:
    """Write ``x`` in its shortest exact form (``30``, ``0.02``, ``1e+300``)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text
