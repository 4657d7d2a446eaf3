"""One behaviour run (``digiworm behave``): a brain in a body, from request to read-outs.

A :class:`BehaviourRequest` names the brain (a model kind or file, as ``digiworm simulate``
takes), the medium, the run's length, the perturbations and the touches. :meth:`check`
validates all of it against the atlas before anything is built; :func:`run_behaviour` builds
the worm (:func:`~digiworm.body.worm_from_atlas`), runs it and reads its behaviour, scored
against the cited targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import xarray as xr

from .._errors import DigiwormError, UnknownNameError

__all__ = ["BehaviourRequest", "parse_medium", "parse_touch", "run_behaviour"]

#: Brain kinds a behaviour run accepts (the conductance network's 0.5 ms step is not wired
#: into the body's loop yet).
BEHAVE_KINDS = ("graded", "linear", "graded-uncalibrated", "linear-uncalibrated")
#: The touch drive is this many times the model's stimulation unit (*assumed*).
TOUCH_UNITS = 10.0


def parse_medium(spec: str):
    """``water``, ``agar`` or a Newtonian viscosity in Pa·s (e.g. ``0.05``) → a Medium."""
    from ..body import Medium

    text = str(spec).strip().lower()
    if text == "water":
        return Medium.water()
    if text == "agar":
        return Medium.agar()
    try:
        value = float(text)
    except ValueError:
        raise DigiwormError(
            f"medium {spec!r} is not water, agar or a viscosity in Pa s (e.g. 0.05)"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise DigiwormError(f"medium viscosity must be a number of Pa s > 0; got {spec!r}")
    return Medium.newtonian(value)


def parse_touch(spec: str) -> tuple[str, float]:
    """``anterior@10`` → ``("anterior", 10.0)``."""
    from ..body import TOUCH_NEURONS

    where, sep, at = spec.partition("@")
    where = where.strip().lower()
    if not sep:
        raise DigiwormError(f"touch {spec!r} must be WHERE@SECONDS, e.g. anterior@10")
    if where not in TOUCH_NEURONS:
        raise UnknownNameError("touch", where, list(TOUCH_NEURONS))
    try:
        seconds = float(at)
    except ValueError:
        raise DigiwormError(f"touch time {at!r} in {spec!r} is not a number of seconds") from None
    return where, seconds


@dataclass
class BehaviourRequest:
    """Everything ``digiworm behave`` was asked for, validated by :meth:`check`."""

    model: str = "graded"
    medium: str = "agar"
    duration_s: float = 60.0
    ablate: tuple[str, ...] = ()
    knockout: tuple[str, ...] = ()
    drugs: tuple[tuple[str, float], ...] = ()
    touch: tuple[tuple[str, float], ...] = ()
    seed: int = 0

    def check(self, atlas) -> BehaviourRequest:
        """Validate names, media and times before any compute; return self."""
        from pathlib import Path

        if self.model not in BEHAVE_KINDS and not Path(self.model).is_file():
            raise DigiwormError(
                f"model {self.model!r} is neither one of {', '.join(BEHAVE_KINDS)} nor an "
                "existing model file"
            )
        parse_medium(self.medium)
        if not (math.isfinite(self.duration_s) and 5.0 <= self.duration_s <= 3600.0):
            raise DigiwormError(
                f"duration must be from 5 to 3600 s (the gait needs a few cycles); got "
                f"{self.duration_s}"
            )
        for where, at in self.touch:
            if not (math.isfinite(at) and 0 <= at < self.duration_s):
                raise DigiwormError(
                    f"touch {where}@{at:g} is outside the run [0, {self.duration_s:g}) s"
                )
        self.ablate = tuple(atlas.neuron_list(list(self.ablate)))
        self.knockout = tuple(atlas.gene(g) for g in self.knockout)
        return self


def run_behaviour(req: BehaviourRequest, atlas) -> tuple[xr.Dataset, dict]:
    """Build and run the worm of a checked request; return its Dataset and summary.

    The summary holds the read-outs (:func:`~digiworm.body.behaviour`), the scores against
    the cited targets where the medium has some (:func:`~digiworm.body.score_behaviour`), and
    the evidence of every assumed part.
    """
    import equinox as eqx
    import jax

    from ..body import (
        behaviour,
        neuromuscular_perturbation,
        score_behaviour,
        simulate_worm,
        worm_from_atlas,
    )
    from ..body._behaviour import AXIAL_SHORTENING
    from ._simulation import SimulationRequest, build_model, model_evidence

    brain_req = SimulationRequest(model=req.model, knockout=req.knockout, drugs=req.drugs)
    brain = build_model(brain_req, atlas)
    worm = worm_from_atlas(atlas, brain)
    if req.ablate:
        worm = worm.ablate(req.ablate)
    muscles, junction = neuromuscular_perturbation(worm.muscles, req.knockout, req.drugs)
    worm = eqx.tree_at(lambda w: w.muscles, worm, muscles)
    medium = parse_medium(req.medium)
    unit = 40.0 if req.model.endswith("uncalibrated") else 1.0
    ds = simulate_worm(
        worm, medium, req.duration_s, key=jax.random.PRNGKey(req.seed), touch=req.touch,
        touch_amplitude=TOUCH_UNITS * unit,
    )  # fmt: skip
    readouts = behaviour(ds)
    target_medium = {"water": "water", "agar": "agar"}.get(str(req.medium).strip().lower())
    scores = (
        score_behaviour({k: v for k, v in readouts.items() if isinstance(v, float)}, target_medium)
        if target_medium
        else None
    )
    evidence = {
        "brain": model_evidence(req.model),
        "command switch": dict(worm.switch.evidence),
        "motor circuits": dict(worm.forward.evidence),
        "muscles": dict(worm.muscles.evidence),
        "body": dict(worm.body.evidence),
        "touch": f"assumed: {TOUCH_UNITS:g} x the model's stimulation unit for 1 s",
        "perturbations at the neuromuscular junction": junction,
        "body length": f"assumed: full co-contraction shortens the body by "
        f"{AXIAL_SHORTENING:.0%} (the rod is inextensible)",
    }
    summary = {
        "request": {
            "model": req.model,
            "medium": req.medium,
            "duration_s": req.duration_s,
            "ablate": list(req.ablate),
            "knockout": list(req.knockout),
            "drug": [f"{n}:{d:g}" for n, d in req.drugs],
            "touch": [f"{w}@{t:g}" for w, t in req.touch],
            "seed": req.seed,
        },  # fmt: skip
        **readouts,
        "scores": [] if scores is None or scores.empty else _records(scores),
        "evidence": evidence,
    }
    ds.attrs["evidence"] = str(evidence)
    ds.attrs["model"] = req.model
    return ds, summary


def _records(scores) -> list[dict]:
    out = []
    for tid, row in scores.iterrows():
        rec = {"id": tid}
        for k, v in row.items():
            rec[k] = None if isinstance(v, float) and math.isnan(v) else v
        out.append(rec)
    return out
