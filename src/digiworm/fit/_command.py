"""``digiworm fit``: identify a model from a perturbation dataset, with cross-validated scores."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from .._errors import DigiwormError, InsufficientDataError
from .._io import atomic_write_json
from ..models import linear_from_couplings, save_model
from ..validate import folds_for, score
from ._graded_fit import (
    GradedFitSettings,
    fit_graded,
    graded_cross_validation,
    graded_from_linear,
)
from ._kernel_fit import KernelFit, KernelFitSettings, identify_kernel_taus
from ._linear_cv import (
    PRIOR_RADIUS,
    LinearCVSettings,
    atlas_prior,
    fit_linear_ensemble,
    linear_target,
    nested_linear_cv,
)
from ._linear_response import trial_table
from ._uncertainty import coverage

__all__ = ["FIT_MODELS", "fit_dataset"]

FIT_MODELS = ("linear", "graded", "kernel")


def _trials(ds) -> np.ndarray:
    if "dff_trials" in ds:
        return ds["dff_trials"].to_numpy()
    return ds["dff"].to_numpy()[..., None]  # trial means only: one pseudo-trial per pair


def fit_dataset(
    atlas,
    ds,
    out_dir: Path,
    *,
    model: str = "linear",
    folds: int = 5,
    settings: LinearCVSettings | None = None,
    seed: int = 0,
    kernel_steps: int = KernelFitSettings().steps,
) -> dict:
    r"""Fit ``model`` to ``ds`` (a checked perturbation dataset), write the model and scores.

    The linear model is identified from steady-state responses: ``W`` such that
    :math:`(I - W)^{-1}` matches the per-trial responses (robust loss, ridge towards the scaled
    signed connectome, all off-diagonal couplings allowed: the connectome is a prior, not a
    cage). It is saved as the dynamical :class:`LinearModel` :math:`\dot x = (W - I)x/\tau +
    u/\tau` (:math:`\tau` = 1 s, not identified by steady-state data), whose steady state is
    the mean of a bootstrap ensemble's fits. Scores are out-of-fold over stimulated-neuron
    classes, with the ridge chosen inside each training fold and calibrated 90 % intervals
    (:func:`~digiworm.fit._linear_cv.nested_linear_cv`). Adam moves every coupling by about the
    learning rate per step whatever its gradient, so a large rate or weak ridge drives the
    dense ``W`` past spectral radius 1 (unstable); the defaults keep it near 0.85 on the
    wild-type atlas, and an unstable fit is refused.

    Returns
    -------
    dict
        The scores written to ``out_dir/scores.json``.
    """
    if model not in FIT_MODELS:
        from .._errors import UnknownNameError

        raise UnknownNameError("fit model", model, FIT_MODELS)
    if folds < 2:
        raise DigiwormError(f"folds must be >= 2; got {folds}")
    if model == "graded" and "dff_trials" not in ds:
        steps = GradedFitSettings().steps if settings is None else settings.steps
        return _fit_graded_dataset(atlas, ds, out_dir, folds=folds, seed=seed, steps=steps)
    if model == "kernel" and "kernel" not in ds:
        raise DigiwormError(
            "--model kernel needs response kernels: a 'kernel' variable (responding, "
            "stimulated, time) in the dataset (see digiworm.validate's schema)"
        )
    if "dff_trials" not in ds:
        raise InsufficientDataError(
            f"--model {model} needs per-trial responses (its noise model and 90 % intervals "
            "come from the spread between repeated trials), but the dataset has trial means "
            "only: give 'dff' with dims (responding, stimulated, trial), or 'dff_trials' beside "
            "'dff'; --model graded also fits trial means (directly, not through the linear "
            "network)"
        )
    settings = LinearCVSettings(seed=seed) if settings is None else settings
    names = list(atlas.names)
    n = len(names)
    trials = _trials(ds)
    dff = ds["dff"].to_numpy()
    prior, basis = atlas_prior(atlas, settings)
    edges = ~np.eye(n, dtype=bool)
    classes = list(atlas.neurons.loc[names, "neuron_class"])
    split = folds_for(ds, classes, "class", folds, seed)
    cv = nested_linear_cv(trials, dff, split, names, classes, edges, prior, settings, basis=basis)
    unit, ridge = cv.consensus()
    measured_cols = np.flatnonzero(np.isfinite(dff).any(axis=0))
    table = trial_table(trials)
    target, gains = linear_target(table, edges, prior, basis, measured_cols, unit, settings)
    final = fit_linear_ensemble(
        table, edges, target, measured_cols, ridge, settings, np.random.default_rng(seed + 1),
        unit,
    )  # fmt: skip
    w = final.w.mean(0)
    radius = float(np.max(np.abs(np.linalg.eigvals(w))))
    if not radius < 1.0:
        raise DigiwormError(
            f"the fitted network is unstable (spectral radius {radius:.3f} >= 1); "
            "use larger --ridges"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    off = ~np.eye(n, dtype=bool)
    if model == "graded":
        return _graded_from_linear_dataset(atlas, ds, out_dir, cv, split, w, unit, settings)
    tau_s: float | np.ndarray = 1.0
    readout_tau_s = None
    kernel_result = {}
    if model == "kernel":
        ks = KernelFitSettings(steps=kernel_steps, seed=seed)
        kernel_result, final_kernel = _kernel_fit(ds, cv, split, w, measured_cols, ks)
        tau_s, readout_tau_s = final_kernel.tau_s, final_kernel.readout_tau_s
    fitted = linear_from_couplings(names, w, tau_s=tau_s, unit=unit, readout_tau_s=readout_tau_s)
    save_model(out_dir / f"model_{model}.dwm", fitted)
    result = {
        **kernel_result,
        "model": model,
        "split": "class",
        "folds": folds,
        "heldout": score(cv.mean, ds),
        "coverage90": coverage(np.where(off, dff, np.nan), cv.lower, cv.upper),
        "ridge_chosen_per_fold": cv.ridge,
        "unit_chosen_per_fold": cv.unit,
        "spectral_radius": radius,
        "settings": {
            "ridges": list(settings.ridges),
            "units": list(settings.units),
            "final_unit": unit,
            "inner_folds": settings.inner_folds,
            "ensemble_members": settings.members,
            "steps": settings.steps,
            "learning_rate": settings.learning_rate,
            "huber_delta": settings.huber_delta,
            "final_ridge": ridge,
            "tau_s": 1.0,
            "seed": seed,
            "prior": f"signed Cook 2019, spectral radius {PRIOR_RADIUS}",
            "target": settings.target,
            "feature_gains": gains,
        },
    }
    atomic_write_json(out_dir / "scores.json", result)
    return result


def _kernel_fit(ds, cv, split, w_final, cols, settings) -> tuple[dict, KernelFit]:
    """Time constants from the kernels: class-split CV on the linear folds' couplings, final."""
    kernels = ds["kernel"].to_numpy()
    times = ds["time"].to_numpy()
    weights = ds["n_trials"].to_numpy() if "n_trials" in ds else None
    _, final, heldout = identify_kernel_taus(
        kernels, times, cv.w, split, w_final, cols, weights=weights, settings=settings
    )
    scores = {
        "heldout_kernels": heldout,
        "tau_s_median": float(np.median(final.tau_s)),
        "readout_tau_s_median": None
        if final.readout_tau_s is None
        else float(np.median(final.readout_tau_s)),
        "kernel_settings": asdict(settings),
        "kernel_note": "the linear couplings with a time constant and a readout filter ("
        + ("per neuron" if settings.per_neuron else "shared by every neuron")
        + ") fitted to the kernels' shapes; its held-out dF/F scores are the linear model's "
        "(same steady state)",
    }
    return scores, final


def _fit_graded_dataset(atlas, ds, out_dir: Path, *, folds: int, seed: int, steps: int) -> dict:
    """Class-split CV and final fit of the graded network (see :mod:`._graded_fit`)."""
    from ..models import graded_from_atlas

    names = list(atlas.names)
    n = len(names)
    dff = ds["dff"].to_numpy()
    trials = _trials(ds)
    classes = list(atlas.neurons.loc[names, "neuron_class"])
    split = folds_for(ds, classes, "class", folds, seed)
    base = graded_from_atlas(atlas, peptides=None)
    pairs = ~np.eye(n, dtype=bool)
    settings = GradedFitSettings(steps=steps)
    cv = graded_cross_validation(base, trials, dff, split, peptide_pairs=pairs, settings=settings)
    final = fit_graded(base, trials, peptide_pairs=pairs, settings=settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(out_dir / "model_graded.dwm", final.model)
    result = {
        "model": "graded",
        "identification": "direct: the graded network's own small-signal fit to the trial "
        "means (the dataset has no per-trial values for the linear identification)",
        "split": "class",
        "folds": folds,
        "heldout": score(cv.mean, ds),
        "coverage90": None,
        "readout_gain": final.gain,
        "rest_residual_mV": final.residual_mV,
        "settings": {**asdict(settings), "peptide_pairs": "all", "seed": seed},
    }
    atomic_write_json(out_dir / "scores.json", result)
    return result


def _graded_from_linear_dataset(atlas, ds, out_dir, cv, split, w_final, unit, settings) -> dict:
    """Build the graded network of each fold's linear couplings (``graded_from_linear``)."""
    from ..models import graded_from_atlas

    n = len(atlas.names)
    base = graded_from_atlas(atlas, peptides=None)
    oof = np.full((n, n), np.nan)
    for f, held in enumerate(split):
        oof[:, held] = graded_from_linear(base, cv.w[f], cv.unit[f]).response()[:, held]
    final = graded_from_linear(base, w_final, unit)
    save_model(out_dir / "model_graded.dwm", final.model)
    result = {
        "model": "graded",
        "identification": "from the linear network: each fold's linear couplings as the graded "
        "network's small-signal Jacobian (wired couplings as synapse and gap-junction "
        "conductances, the rest as peptide drive)",
        "split": "class",
        "folds": len(split),
        "heldout": score(oof, ds),
        "linear_heldout": score(cv.mean, ds),
        "coverage90": None,
        "readout_gain": final.gain,
        "rest_residual_mV": final.residual_mV,
        "settings": {**asdict(settings), "final_unit": unit},
    }
    atomic_write_json(out_dir / "scores.json", result)
    return result
