"""The final fits of ``reproduce``: every model on the whole wild-type atlas.

:func:`fit_final_models` is the one place the shipped fitted worm
(:func:`digiworm.models.fitted`) comes from: ``reproduce`` calls it with the unit and ridge its
cross-validation chose, and a test calls it again with the choices recorded in the shipped
provenance and compares (so the shipped files cannot drift from the code).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from .._io import write_with
from ..fit._graded_fit import GradedFit, fit_graded, graded_from_linear
from ..fit._kernel_fit import fit_kernel_taus
from ..fit._linear_cv import (
    LinearEnsemble,
    atlas_prior,
    fit_linear_ensemble,
    linear_target,
)
from ..fit._linear_response import trial_table
from ..models import linear_from_couplings

__all__ = ["FinalFits", "fit_final_models", "fitted_ensemble", "peptide_pairs", "wild_type"]


def wild_type(atlas):
    """Return the wild-type perturbation data ``reproduce`` fits (checked, trials included)."""
    from ..validate import check_perturbation

    ds = atlas.functional("wt", kernel_time_s=None)
    keep = [v for v in ("dff", "dff_trials", "n_trials", "q", "q_eq") if v in ds]
    return check_perturbation(ds[keep], list(atlas.names))


def peptide_pairs(atlas, which: str, n: int) -> np.ndarray:
    """Return the pairs a directly fitted graded network may give a peptide drive.

    ``all``: every off-diagonal pair; else the pairs of that extrasynaptic network
    (``ripoll_sanchez_short|mid|long``).
    """
    off = ~np.eye(n, dtype=bool)
    if which == "all":
        return off
    return (np.nan_to_num(atlas.extrasynaptic(which).to_numpy(), nan=0.0) > 0) & off


@dataclass
class FinalFits:
    """Models fitted on every measured stimulation, and what the scoreboard reports of them."""

    models: dict[str, object]
    """``linear`` (LinearModel), ``graded`` (GradedNetwork), ``kernel`` (LinearModel with
    fitted time constants); the last two only where the settings ask for them."""
    ensemble: LinearEnsemble
    w: np.ndarray
    """Ensemble-mean couplings (the linear model's)."""
    feature_gains: dict[str, float] | None
    graded: GradedFit | None
    tau_s: np.ndarray | None
    readout_tau_s: np.ndarray | None = None
    """The kernel model's readout filters (None without the kernel fit or its readout)."""

    @property
    def radius(self) -> float:
        return float(np.max(np.abs(np.linalg.eigvals(self.w))))


def _final_ensemble(atlas, settings, unit: float, ridge: float):
    """Fit the final bootstrap ensemble of the linear network on every stimulation (seeded)."""
    n = len(atlas.names)
    wt = wild_type(atlas)
    dff, trials = wt["dff"].to_numpy(), wt["dff_trials"].to_numpy()
    lin = settings.linear
    edges = ~np.eye(n, dtype=bool)
    prior, basis = atlas_prior(atlas, lin)
    table = trial_table(trials)
    cols = np.flatnonzero(np.isfinite(dff).any(axis=0))
    target, gains = linear_target(table, edges, prior, basis, cols, unit, lin)
    rng = np.random.default_rng(settings.seed + 1)
    ensemble = fit_linear_ensemble(table, edges, target, cols, ridge, lin, rng, unit)
    return ensemble, gains, trials, cols


def fitted_ensemble(atlas, kind: str = "graded", progress=None) -> list:
    """Return the shipped worm's bootstrap ensemble: one ``kind`` model per member.

    The shipped ``linear`` and ``graded`` models are built from the *mean* of the final
    linear fit's Bayesian-bootstrap ensemble (``ensemble_members`` of the provenance); this
    refits that ensemble with the recorded choices (deterministic: the same seed) and builds
    each member's model the way the shipped one was built (:func:`graded_from_linear` for
    ``graded``), so an effect can be read on every member and given a spread. The members'
    couplings are cached in the user cache (``$DIGIWORM_CACHE_DIR``), keyed by the shipped
    files' checksums; the first call takes about 15 s here, each graded member 2 s more.
    """
    from .._errors import DigiwormError, UnknownNameError
    from ..atlas._cache import default_cache_dir
    from ..models import fitted_provenance, graded_from_atlas
    from ._pipeline import ReproduceSettings

    if kind not in ("graded", "linear"):
        raise UnknownNameError("ensemble model", kind, ["graded", "linear"])
    prov = fitted_provenance()
    settings = ReproduceSettings()
    if prov["settings"] != json.loads(json.dumps(settings.describe())):
        raise DigiwormError(
            "the shipped worm was fitted with other settings than today's defaults; rerun "
            "`digiworm reproduce` to refit it before asking for its ensemble"
        )
    final = prov["final"]["linear"]
    key = hashlib.sha256(json.dumps(prov["files"], sort_keys=True).encode()).hexdigest()[:16]
    path = default_cache_dir() / f"fitted_ensemble.{key}.npy"
    if path.is_file():
        w = np.load(path)
    else:
        if progress is not None:
            progress("refitting the shipped worm's bootstrap ensemble (cached afterwards)")
        ensemble = _final_ensemble(atlas, settings, final["unit"], final["ridge"])[0]
        w = np.asarray(ensemble.w)
        path.parent.mkdir(parents=True, exist_ok=True)

        def save(tmp):
            with open(tmp, "wb") as f:
                np.save(f, w)

        write_with(path, save)
    names = list(atlas.names)
    if kind == "linear":
        return [linear_from_couplings(names, wk, unit=final["unit"]) for wk in w]
    base = graded_from_atlas(atlas, peptides=None)
    return [graded_from_linear(base, wk, final["unit"]).model for wk in w]


def fit_final_models(atlas, settings, unit: float, ridge: float, progress=None) -> FinalFits:
    """Fit every model of ``settings`` (a ``ReproduceSettings``) on the whole wild-type atlas.

    ``unit`` and ``ridge`` are the linear fit's cross-validated choices. Deterministic for
    given settings (the bootstrap uses ``settings.seed + 1``).
    """
    from ..models import graded_from_atlas

    def report(message: str) -> None:
        if progress is not None:
            progress(message)

    names = list(atlas.names)
    n = len(names)
    report("final linear ensemble on every stimulation")
    ensemble, gains, trials, cols = _final_ensemble(atlas, settings, unit, ridge)
    w = ensemble.w.mean(0)
    models: dict[str, object] = {"linear": linear_from_couplings(names, w, unit=unit)}
    graded = None
    if settings.graded is not None:
        report("graded network on every stimulation")
        base = graded_from_atlas(atlas, peptides=None)
        if settings.graded_identification == "linear":
            graded = graded_from_linear(base, w, unit)
        else:
            pairs = peptide_pairs(atlas, settings.graded_peptide_pairs, n)
            graded = fit_graded(base, trials, peptide_pairs=pairs, settings=settings.graded)
        models["graded"] = graded.model
    tau = readout = None
    if settings.kernel is not None:
        report("kernel model: time constants on every stimulation")
        fun = atlas.functional("wt")
        kernels, times = fun["kernel"].to_numpy(), fun["time"].to_numpy()
        fit = fit_kernel_taus(
            w, kernels, times, cols, weights=fun["n_trials"].to_numpy(), settings=settings.kernel
        )
        tau, readout = np.asarray(fit.tau_s), fit.readout_tau_s
        models["kernel"] = linear_from_couplings(
            names, w, tau_s=tau, unit=unit, readout_tau_s=readout
        )
    return FinalFits(models, ensemble, w, gains, graded, tau, readout)
