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

import numpy as np
import xarray as xr

from .._errors import DigiwormError, UnknownNameError

__all__ = [
    "BehaviourRequest",
    "build_worm",
    "parse_medium",
    "parse_touch",
    "run_behaviour",
    "run_behaviours",
]

#: Brain kinds a behaviour run accepts (the conductance network's 0.5 ms step is not wired
#: into the body's loop yet).
BEHAVE_KINDS = ("graded", "linear", "graded-uncalibrated", "linear-uncalibrated")
#: The touch drive is this many times the model's stimulation unit (*assumed*).
TOUCH_UNITS = 10.0


def parse_medium(spec: str):
    """Return the Medium of ``spec``.

    ``water``, ``agar``, ``blend:F`` (water blended into agar, ``F`` from 0 to 1:
    :meth:`~digiworm.body.Medium.between`) or a Newtonian viscosity in Pa·s (e.g. ``0.05``).
    """
    from ..body import Medium

    text = str(spec).strip().lower()
    if text == "water":
        return Medium.water()
    if text == "agar":
        return Medium.agar()
    if text.startswith("blend:"):
        try:
            fraction = float(text.removeprefix("blend:"))
        except ValueError:
            fraction = math.nan
        if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
            raise DigiwormError(
                f"medium {spec!r}: the blend must be a fraction from 0 (water) to 1 (agar), "
                "e.g. blend:0.5"
            )
        return Medium.between(fraction)
    try:
        value = float(text)
    except ValueError:
        raise DigiwormError(
            f"medium {spec!r} is not water, agar, blend:F (0 water to 1 agar) or a viscosity "
            "in Pa s (e.g. 0.05)"
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
    modulation: tuple[tuple[str, float], ...] = ()
    """A neuromodulatory state of the brain: ``(amine, level)`` pairs."""
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
        from ..experiments import Drug

        for name, dose in self.drugs:  # a bad name or dose fails here, before any compute
            Drug(name, dose, atlas)
        if self.modulation:
            from ..experiments import Neuromodulation

            self.modulation = Neuromodulation(dict(self.modulation), atlas).levels
        return self


def run_behaviour(req: BehaviourRequest, atlas, base=None) -> tuple[xr.Dataset, dict]:
    """Build and run the worm of a checked request; return its Dataset and summary.

    The summary holds the read-outs (:func:`~digiworm.body.behaviour`), the scores against
    the cited targets where the medium has some (:func:`~digiworm.body.score_behaviour`), and
    the evidence of every assumed part. ``base``: the unperturbed brain to use instead of the
    request's model kind (e.g. one member of the fitted ensemble).
    """
    import jax

    from ..body import simulate_worm

    worm, medium, amplitude, notes = build_worm(req, atlas, base)
    ds = simulate_worm(worm, medium, req.duration_s, key=jax.random.PRNGKey(req.seed),
                       touch=req.touch, touch_amplitude=amplitude)  # fmt: skip
    return _summarise(req, worm, ds, notes)


def run_behaviours(reqs, atlas, base=None) -> list[tuple[xr.Dataset, dict]]:
    """Run several checked requests as one batch (:func:`~digiworm.body.simulate_worms`).

    The requests must share the model, medium, duration, seed and touches; they differ in
    ablations, knockouts, drugs and states. Each result equals :func:`run_behaviour`'s for
    the same request, to rounding. On a CPU a loop of :func:`run_behaviour` is about as fast
    (``benchmarks/screen_speed.py``); the batch is for accelerators.
    """
    import jax

    from ..body import simulate_worms

    reqs = list(reqs)
    shared = {(r.model, str(r.medium), r.duration_s, r.seed, tuple(r.touch)) for r in reqs}
    if len(shared) != 1:
        raise DigiwormError(
            "a batch of behaviour runs must share model, medium, duration, seed and touches; "
            f"these have {len(shared)} different ones"
        )
    built = [build_worm(r, atlas, base) for r in reqs]
    first = reqs[0]
    runs = simulate_worms([b[0] for b in built], built[0][1], first.duration_s,
                          key=jax.random.PRNGKey(first.seed), touch=first.touch,
                          touch_amplitude=[b[2] for b in built])  # fmt: skip
    return [_summarise(r, b[0], ds, b[3]) for r, b, ds in zip(reqs, built, runs)]


def build_worm(req: BehaviourRequest, atlas, base=None):
    """Return the worm of a checked request, its medium, its touch amplitude and notes.

    The notes say what each perturbation did in the brain and at the neuromuscular junction.
    """
    import equinox as eqx

    from ..body import neuromuscular_perturbation, worm_from_atlas
    from ._simulation import stimulation_unit

    reference, brain, brain_notes = _brain(req, atlas, base)
    # The switch's rest is the unperturbed brain's, so knockouts and drugs reach it.
    worm = worm_from_atlas(atlas, reference).with_brain(brain)
    if req.ablate:
        worm = worm.ablate(req.ablate)
    muscles, junction = neuromuscular_perturbation(worm.muscles, req.knockout, req.drugs)
    worm = eqx.tree_at(lambda w: w.muscles, worm, muscles)
    amplitude = TOUCH_UNITS * stimulation_unit(brain)
    return worm, parse_medium(req.medium), amplitude, {"brain": brain_notes, "junction": junction}


def _summarise(req: BehaviourRequest, worm, ds: xr.Dataset, notes: dict):
    """Read one run's behaviour, score it and gather its evidence; return (ds, summary)."""
    from ..body import behaviour, score_behaviour
    from ..body._behaviour import AXIAL_SHORTENING
    from ..body._worm import WORM_MOTOR_EVIDENCE
    from ..experiments import drug_evidence
    from ._simulation import model_evidence

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
        "motor circuits": {**worm.forward.evidence, "parameters": WORM_MOTOR_EVIDENCE},
        "muscles": dict(worm.muscles.evidence),
        "body": dict(worm.body.evidence),
        "touch": f"assumed: {TOUCH_UNITS:g} x the model's stimulation unit for 1 s",
        "perturbations in the brain": notes["brain"],
        "perturbations at the neuromuscular junction": notes["junction"],
        "drug potencies": drug_evidence(req.drugs),
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
            "state": [f"{a}={v:g}" for a, v in req.modulation],
            "touch": [f"{w}@{t:g}" for w, t in req.touch],
            "seed": req.seed,
        },  # fmt: skip
        **readouts,
        "scores": [] if scores is None or scores.empty else _records(scores),
        "evidence": evidence,
    }
    ds["rest"] = ("neuron", np.asarray(worm.switch.rest))
    ds["rest"].attrs["long_name"] = (
        "the unperturbed brain's output at rest (the switch's reference)"
    )
    ds.attrs["evidence"] = str(evidence)
    ds.attrs["model"] = req.model
    return ds, summary


def _brain(req: BehaviourRequest, atlas, base=None):
    """Return the unperturbed brain, the perturbed one and notes on the perturbations.

    A gene with a rule only at the neuromuscular junction leaves the brain alone, said so.
    """
    from ..body import NMJ_GENES
    from ..experiments import Drug, Knockout
    from ..simulate import model_precision
    from ._simulation import SimulationRequest, build_model

    reference = build_model(SimulationRequest(model=req.model), atlas, base=base)
    changed = SimulationRequest(model=req.model, drugs=req.drugs, modulation=req.modulation)
    brain = (
        build_model(changed, atlas, base=reference, absent=req.knockout)
        if req.drugs or req.modulation
        else reference
    )
    notes = []
    # the drugs' targets: a knocked-out one the brain model cannot knock out is still lost to
    # the drug (``absent`` above), which the notes say
    targets = (
        {t for name, _ in req.drugs for t in Drug(name, 0.0, atlas).targets}
        if req.knockout
        else set()
    )
    with model_precision(brain):
        for gene in req.knockout:
            try:
                brain = Knockout(gene, atlas)(brain)
                notes.append(f"{gene}: knocked out in the brain model")
            except DigiwormError as exc:
                if gene not in NMJ_GENES and gene not in targets:
                    raise
                why = (
                    "; the drugs' action in the brain leaves its neurons" if gene in targets else ""
                )
                notes.append(f"{gene}: no other action in the brain model ({exc}){why}")
    return reference, brain, notes


def _records(scores) -> list[dict]:
    out = []
    for tid, row in scores.iterrows():
        rec = {"id": tid}
        for k, v in row.items():
            rec[k] = None if isinstance(v, float) and math.isnan(v) else v
        out.append(rec)
    return out


#: The perturbations of the behaviour report: label, ablated neurons, knockouts, drugs.
SUITE = (
    ("wild type", (), (), ()),
    ("AVA ablated", ("AVAL", "AVAR"), (), ()),
    ("AVA + AVD ablated", ("AVAL", "AVAR", "AVDL", "AVDR"), (), ()),
    ("AVB + PVC ablated", ("AVBL", "AVBR", "PVCL", "PVCR"), (), ()),
    ("unc-25 (GABA lost)", (), ("unc-25",), ()),
    ("unc-31 (dense-core release lost)", (), ("unc-31",), ()),
    ("levamisole 1 mM", (), (), (("levamisole", 1000.0),)),
    ("unc-29 + levamisole 1 mM", (), ("unc-29",), (("levamisole", 1000.0),)),
    ("aldicarb 1 mM", (), (), (("aldicarb", 1000.0),)),
)
#: Doses (µM) of the in-silico dose–response curves.
DOSES_UM = (0.0, 100.0, 300.0, 1000.0, 3000.0)


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _expectations(runs: dict) -> list[dict]:
    """Score each perturbation against what the papers saw (issue 17's targets 3-5)."""
    wt = runs["wild type"]

    def row(label, expected, source, measured, met):
        return {
            "perturbation": label,
            "expected": expected,
            "source": source,
            "measured": measured,
            "met": met,
        }

    out = []
    ava = runs["AVA ablated"]
    fr, rs = (
        _ratio(ava["forward_run_s"], wt["forward_run_s"]),
        _ratio(ava["reverse_speed_mm_per_s"], wt["reverse_speed_mm_per_s"]),
    )
    out.append(
        row(
            "AVA ablated",
            "forward runs x0.47 (vs sham)",
            "Roberts et al. 2016 eLife 5:e12572",
            f"forward runs x{_fmt(fr)}",
            None if fr is None else bool(fr < 1.0),
        )
    )
    out.append(
        row(
            "AVA ablated",
            "reverse speed x0.24",
            "Roberts et al. 2016 eLife 5:e12572",
            f"reverse speed x{_fmt(rs)}",
            None if rs is None else bool(rs < 0.5),
        )
    )
    both = runs["AVA + AVD ablated"]
    wt_touch = wt["touch_reversals"][:1]
    touched = both["touch_reversals"][:1]
    testable = bool(wt_touch and wt_touch[0])
    out.append(
        row(
            "AVA + AVD ablated",
            "anterior touch no longer reverses; spontaneous "
            "reversals strongly reduced; forward intact",
            "Chalfie et al. 1985 J Neurosci 5:956",
            f"anterior touch reversed: wild type {wt_touch}, ablated {touched}; "
            f"reversals/min {wt['reversals_per_min']:.2f} -> "
            f"{both['reversals_per_min']:.2f}",
            None if not testable else bool(touched and not touched[0]),
        )
    )
    fwd = runs["AVB + PVC ablated"]
    sp = _ratio(fwd["speed_mm_per_s"], wt["speed_mm_per_s"])
    out.append(
        row(
            "AVB + PVC ablated",
            "forward locomotion defective",
            "Chalfie et al. 1985",
            f"forward speed x{_fmt(sp)}",
            bool(sp is not None and sp < 0.5),
        )
    )
    gaba = runs["unc-25 (GABA lost)"]
    shrink = gaba["touch_length_change"][:1]
    base = wt["touch_length_change"][:1]
    out.append(
        row(
            "unc-25 (GABA lost)",
            "head touch shortens the body (shrinker)",
            "McIntire et al. 1993 Nature 364:337",
            f"length change after the anterior touch {shrink} (wild type {base}); "
            f"co-contraction x{_fmt(_ratio(gaba['co_contraction'], wt['co_contraction']))}",
            None if not shrink else bool(shrink[0] < base[0] and shrink[0] < 0),
        )
    )
    u31 = runs["unc-31 (dense-core release lost)"]
    sp = _ratio(u31["speed_mm_per_s"], wt["speed_mm_per_s"])
    out.append(
        row(
            "unc-31 (dense-core release lost)",
            "reduced spontaneous locomotion",
            "Avery et al. 1993 Genetics 134:455",
            f"forward speed x{_fmt(sp)}",
            bool(sp is not None and sp < 0.9),
        )
    )
    for label in ("levamisole 1 mM", "aldicarb 1 mM"):
        r = runs[label]
        sp = _ratio(r["speed_mm_per_s"], wt["speed_mm_per_s"])
        cc = _ratio(r["co_contraction"], wt["co_contraction"])
        out.append(
            row(
                label,
                "hypercontraction and paralysis",
                "Lewis et al. 1980; Mahoney et al. 2006",
                f"speed x{_fmt(sp)}, co-contraction x{_fmt(cc)}",
                bool(sp is not None and sp < 0.2 and cc is not None and cc > 2),
            )
        )
    res = runs["unc-29 + levamisole 1 mM"]
    cc = _ratio(res["co_contraction"], wt["co_contraction"])
    out.append(
        row(
            "unc-29 + levamisole 1 mM",
            "resistant: no hypercontraction",
            "Lewis et al. 1980 Genetics 95:905",
            f"co-contraction x{_fmt(cc)}",
            bool(cc is not None and cc < 1.5),
        )
    )
    return out


def behaviour_suite(
    atlas, model: str = "graded", *, duration_s: float = 120.0, seed: int = 0, progress=None
) -> dict:
    """Run the behaviour report's experiments; return their read-outs and scores.

    Wild type in water and on agar (touched anteriorly at a third of the run and posteriorly
    at two thirds), every :data:`SUITE` perturbation on agar with the same seed and touches,
    levamisole and aldicarb dose–response curves (:data:`DOSES_UM`, runs a quarter as long,
    at least 5 s) and the forward loop across six media from water to agar
    (:func:`~digiworm.body.gait_adaptation`). ``progress(done, total, label)`` is called
    after each.
    """
    from ..body import adaptation_media, gait_adaptation, worm_motor

    touches = (("anterior", round(duration_s / 3, 3)), ("posterior", round(2 * duration_s / 3, 3)))
    plan = [("wild type, water", (), (), (), "water", (), duration_s)]
    plan += [(label, ab, ko, dr, "agar", touches, duration_s) for label, ab, ko, dr in SUITE]
    short = max(5.0, duration_s / 4)
    plan += [
        (f"{drug} {dose:g} uM", (), (), ((drug, dose),) if dose else (), "agar", (), short)
        for drug in ("levamisole", "aldicarb")
        for dose in DOSES_UM
    ]
    keep = ("wild type", "wild type, water", "unc-25 (GABA lost)", "levamisole 1 mM")
    total = len(plan) + 1
    runs, datasets = {}, {}
    for done, (label, ab, ko, dr, medium, touch, seconds) in enumerate(plan, start=1):
        req = BehaviourRequest(
            model=model,
            medium=medium,
            duration_s=seconds,
            ablate=ab,
            knockout=ko,
            drugs=dr,
            touch=touch,
            seed=seed,
        )
        ds, runs[label] = run_behaviour(req.check(atlas), atlas)
        if label in keep:
            datasets[label] = ds
        if progress is not None:
            progress(done, total, label)
    muscles, forward = worm_motor(atlas)
    table = gait_adaptation(
        muscles,
        forward,
        adaptation_media(6),
        duration_s=min(20.0, duration_s),
        discard_s=min(8.0, duration_s / 2),
    )
    if progress is not None:
        progress(total, total, "gait across media")
    return {
        "model": model,
        "duration_s": duration_s,
        "seed": seed,
        "runs": runs,
        "datasets": datasets,
        "adaptation": table,
        "perturbations": _expectations(runs),
    }
