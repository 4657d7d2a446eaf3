"""``digiworm reproduce``: atlas → fits → cross-validation → scoreboard → unc-31 → spontaneous.

Everything is computed by :func:`run_reproduce` into a :class:`Reproduction` (plain arrays and
dicts); :func:`write_outputs` writes it (scores.json, predictions.nc, fitted models, report).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .._errors import InvalidParameterError
from ..fit._graded_fit import (
    GradedFitSettings,
    graded_cross_validation,
    graded_from_linear,
    rest_of,
)
from ..fit._kernel_fit import KernelFitSettings, kernel_cross_validation, kernel_scores
from ..fit._linear_cv import (
    PRIOR_RADIUS,
    LinearCVSettings,
    atlas_prior,
    linear_target,
    nested_linear_cv,
)
from ..fit._linear_response import fit_linear_response, response_matrix, trial_table
from ..fit._uncertainty import coverage
from ..simulate import spontaneous_correlation
from ..validate import (
    BASELINES,
    baseline_context,
    check_perturbation,
    cross_validate,
    folds_for,
    score,
    split_half_reliability,
    split_trials,
)
from ..validate._metrics import nanmean, pearson, pearson_clipped, spearman
from ._final import fit_final_models, peptide_pairs, wild_type

__all__ = ["ReproduceSettings", "Reproduction", "run_reproduce"]


@dataclass(frozen=True)
class ReproduceSettings:
    """What ``reproduce`` runs; :meth:`quick` shrinks the expensive parts."""

    folds: int = 5
    linear: LinearCVSettings = LinearCVSettings()
    graded: GradedFitSettings | None = GradedFitSettings()
    """Settings of the direct graded-network fit (None: no graded network at all)."""
    graded_identification: str = "linear"
    """``linear``: each fold's graded network is built from that fold's linear couplings
    (:func:`~digiworm.fit.graded_from_linear`: same small-signal Jacobian, fitted gains as
    synapse and gap conductances, the rest as peptide drive); ``direct``: fitted on its own
    from the default conductances (:func:`~digiworm.fit.fit_graded`, with ``graded``)."""
    graded_intervals: bool = True
    """90 % intervals for the graded network: ``linear`` carries over each fold's linear
    intervals (scaled per column like the prediction); ``direct`` calibrates them by inner
    cross-validation (2 more fits per fold)."""
    graded_peptide_pairs: str = "all"
    """Pairs the graded network's peptide layer may couple: ``all`` (every ordered pair) or an
    extrasynaptic network (``ripoll_sanchez_short|mid|long``)."""
    kernel: KernelFitSettings | None = KernelFitSettings()
    """Settings of the time-constant fit to the response kernels (None: skip it)."""
    neuron_split: bool = True
    seed: int = 0
    quick: bool = False

    @classmethod
    def quick_settings(cls) -> ReproduceSettings:
        """Return the ``--quick`` settings.

        Linear: ridge and unit fixed at 1 (inner CV only calibrates), 2 inner folds, 3 members;
        kernel time constants: 10 steps of 8 stimulated columns, not 80 of 16. The graded
        network is built from the linear fits as in the full run (a direct graded fit,
        ``graded_identification="direct"``, would take 100 optimiser steps instead of 300).
        """
        linear = LinearCVSettings(ridges=(1.0,), units=(1.0,), inner_folds=2, members=3)
        graded = replace(GradedFitSettings(), steps=100)
        kernel = replace(KernelFitSettings(), steps=10, batch=8)
        return cls(linear=linear, graded=graded, kernel=kernel, quick=True)

    def __post_init__(self):
        if self.graded_identification not in ("linear", "direct"):
            raise InvalidParameterError(
                "graded_identification must be 'linear' or 'direct'; got "
                f"{self.graded_identification!r}"
            )

    def describe(self) -> dict:
        lin = self.linear
        return {
            "quick": self.quick,
            "folds": self.folds,
            "split": "class",
            "linear": {
                "ridges": list(lin.ridges),
                "units": list(lin.units),
                "inner_folds": lin.inner_folds,
                "ensemble_members": lin.members,
                "steps": lin.steps,
                "learning_rate": lin.learning_rate,
                "huber_delta": lin.huber_delta,
                "prior": f"signed Cook 2019 connectome scaled to spectral radius {PRIOR_RADIUS}",
                "target": lin.target,
                "feature_steps": lin.feature_steps,
                "feature_learning_rate": lin.feature_learning_rate,
                "interval_level": lin.level,
            },
            "graded": None
            if self.graded is None
            else {
                **asdict(self.graded),
                "identification": self.graded_identification,
                "peptide_pairs": self.graded_peptide_pairs,
                "intervals": self.graded_intervals,
            },
            "kernel": None if self.kernel is None else asdict(self.kernel),
            "seed": self.seed,
        }


@dataclass
class KernelOutcome:
    """The kernel (time-constant) fit: out-of-fold kernels, the final τ and model."""

    times_s: np.ndarray
    measured: np.ndarray
    """Measured kernels ``(responding, stimulated, time)``."""
    oof: dict[str, np.ndarray]
    """Out-of-fold kernels per predictor (model, its per-neuron or shared alternative, tau_1s,
    responder_mean)."""
    tau_s: np.ndarray
    """Time constants of the final fit (every stimulation)."""
    readout_tau_s: np.ndarray | None
    """Readout filter time constants of the final fit (None: first-order units)."""
    model: object
    """The fitted LinearModel (the linear couplings with these time constants)."""


@dataclass
class Reproduction:
    """Everything ``reproduce`` computed, ready to write."""

    names: list[str]
    measured: dict[str, np.ndarray]
    """Measured trial means: ``wt``, ``unc31``."""

    oof: dict[str, np.ndarray] = field(default_factory=dict)
    """Out-of-fold predictions per predictor (class split)."""
    lower: dict[str, np.ndarray] = field(default_factory=dict)
    upper: dict[str, np.ndarray] = field(default_factory=dict)
    unc31: dict[str, np.ndarray] = field(default_factory=dict)
    """unc-31 predictions of the wild-type fit after the knockout."""
    unc31_reference: dict[str, np.ndarray] = field(default_factory=dict)
    """The same fit's wild-type prediction (the 'no change' predictor)."""
    spontaneous: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict[str, object] = field(default_factory=dict)
    """The fitted models (simulator models: LinearModel, GradedNetwork)."""
    calibration: dict[str, list[float]] = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    readout_gain: dict[str, float] = field(default_factory=dict)
    """ΔF/F per unit of each model's readout (graded: activity; linear: 1)."""
    kernel: KernelOutcome | None = None


def _subset(ds):
    keep = [v for v in ("dff", "dff_trials", "n_trials", "q", "q_eq") if v in ds]
    return ds[keep]


def unwired_removed(w: np.ndarray, wired: np.ndarray) -> np.ndarray:
    """Keep only couplings on wired pairs (the linear model's unc-31 reading)."""
    return np.where(wired, w, 0.0)


def _change_scores(pred_change: np.ndarray, measured_change: np.ndarray) -> dict:
    off = ~np.eye(*pred_change.shape, dtype=bool)
    keep = off & np.isfinite(pred_change) & np.isfinite(measured_change)
    p, m = pred_change[keep], measured_change[keep]
    same = np.sign(p) == np.sign(m)
    return {
        "pearson_clipped": pearson_clipped(p, m),
        "pearson_raw": pearson(p, m),
        "spearman": spearman(p, m),
        "sign_accuracy": float(same[np.abs(m) > 0].mean()) if np.any(np.abs(m) > 0) else None,
        "n_pairs": int(keep.sum()),
    }


def run_reproduce(
    atlas, settings: ReproduceSettings, progress: Callable[[str, float], None] | None = None
) -> Reproduction:
    """Run the whole pipeline on the bundled atlas (see the module docstring).

    ``progress(message, fraction_done)`` is called between stages.
    """

    def report(message: str, done: float) -> None:
        if progress is not None:
            progress(message, done)

    names = list(atlas.names)
    n = len(names)
    classes = list(atlas.neurons.loc[names, "neuron_class"])
    wt = wild_type(atlas)
    unc = check_perturbation(_subset(atlas.functional("unc31", kernel_time_s=None)), names)
    dff = wt["dff"].to_numpy()
    trials = wt["dff_trials"].to_numpy()
    off = ~np.eye(n, dtype=bool)
    out = Reproduction(names, {"wt": dff, "unc31": unc["dff"].to_numpy()})

    scores: dict = {"split": "class", "folds": settings.folds, "settings": settings.describe()}

    report("noise ceiling (split-half reliability of the per-trial data)", 0.02)
    scores["noise_ceiling"] = split_half_reliability(trials, mask=off, n_splits=10)
    folds = folds_for(wt, classes, "class", settings.folds, settings.seed)
    scores["clipping"] = "Pearson r on values clipped to their 0.5-99.5 percentiles"

    report("baselines (class split)", 0.05)
    ctx = baseline_context(atlas)
    scores["baselines"] = {}
    for name, fn in BASELINES.items():
        if name == "mirror":
            continue  # meaningless under a class split (the partner is held out too)
        out.oof[name] = cross_validate(lambda train, fn=fn: fn(train, ctx), wt, folds)
        scores["baselines"][name] = score(out.oof[name], wt)

    edges = off.copy()
    lin = settings.linear
    prior, basis = atlas_prior(atlas, lin)

    def target_for(table, cols, unit):
        return linear_target(table, edges, prior, basis, cols, unit, lin)

    cv = nested_linear_cv(
        trials, dff, folds, names, classes, edges, prior, lin,
        progress=lambda m: report(f"linear network, class split: {m}", 0.1), basis=basis,
    )  # fmt: skip
    out.oof["linear"], out.lower["linear"], out.upper["linear"] = cv.mean, cv.lower, cv.upper
    measured_off = np.where(off, dff, np.nan)
    out.calibration["linear"] = cv.calibration_curve(measured_off)
    models = {
        "linear": {
            "heldout": score(cv.mean, wt),
            "coverage90": coverage(measured_off, cv.lower, cv.upper),
            "ridge_chosen_per_fold": cv.ridge,
            "unit_chosen_per_fold": cv.unit,
            "inner_scores_per_fold": cv.inner_scores,
            "interval_scale_per_fold": cv.scale,
            "misfit_variance_per_fold": cv.model_var,
            "calibration": dict(zip(("nominal", "actual"), out.calibration["linear"])),
            "ridge_target": "signed Cook 2019 connectome with one fitted gain per presynaptic "
            "transmitter x receptor-rule sign group and one gap gain (fitted per fold on its "
            "training columns)"
            if basis is not None
            else "signed Cook 2019 connectome",
            "feature_gains_per_fold": [
                dict(zip((*basis.labels, "gap"), g)) for g in cv.feature_gains
            ]
            if basis is not None
            else None,
        }
    }

    unit, ridge = cv.consensus()
    if settings.neuron_split:
        report("per-neuron split: linear network and mirror baseline", 0.45)
        nfolds = folds_for(wt, classes, "neuron", settings.folds, settings.seed)
        ncv = nested_linear_cv(
            trials, dff, nfolds, names, classes, edges, prior, replace(lin, members=1),
            basis=basis,
        )  # fmt: skip
        mirror = cross_validate(lambda train: BASELINES["mirror"](train, ctx), wt, nfolds)
        responder = cross_validate(
            lambda train: BASELINES["responder_mean"](train, ctx), wt, nfolds
        )
        scores["neuron_split"] = {
            "linear": score(ncv.mean, wt),
            "mirror": score(mirror, wt),
            "responder_mean": score(responder, wt),
        }

    report("held-out trials split (half of each pair's trials)", 0.6)
    train_trials, test_trials = split_trials(trials, seed=settings.seed)
    measured_cols = np.flatnonzero(np.isfinite(dff).any(axis=0))
    prior_a, _ = target_for(trial_table(train_trials), measured_cols, unit)
    fit_a = fit_linear_response(
        train_trials, edges, prior=prior_a, ridge=ridge, steps=lin.steps,
        learning_rate=lin.learning_rate, delta=lin.huber_delta, unit=unit,
    )  # fmt: skip
    pred_a = unit * np.asarray(response_matrix(fit_a.w))
    half_a, half_b = nanmean(train_trials), nanmean(test_trials)
    both = off & np.isfinite(half_a) & np.isfinite(half_b)
    model_r = pearson_clipped(pred_a[both], half_b[both])
    repro_r = pearson_clipped(half_a[both], half_b[both])
    models["linear"]["heldout_trials"] = {
        "pearson_clipped_model_vs_test_half": model_r,
        "pearson_clipped_train_half_vs_test_half": repro_r,
        "fraction_of_reproducibility": model_r / repro_r,
        "n_pairs": int(both.sum()),
        "peer": "Creamer, Leifer & Pillow 2024: connectome-constrained LDS at 92% of the "
        "train-test reproducibility (their data and metric)",
    }

    report("final fits on every stimulation", 0.7)
    fits = fit_final_models(atlas, settings, unit, ridge, progress=lambda m: report(m, 0.7))
    final, w_final = fits.ensemble, fits.w
    models["linear"]["final"] = {
        "ridge": ridge, "unit": unit, "spectral_radius": fits.radius,
        "feature_gains": fits.feature_gains,
    }  # fmt: skip
    out.models["linear"] = fits.models["linear"]
    if settings.kernel is not None:
        report("kernel model: time constants from the response kernels (class split)", 0.75)
        out.kernel, models["kernel"] = _kernel(atlas, settings.kernel, cv.w, folds, fits, report)

    report("unc-31: knockout in silico vs the measured mutant", 0.85)
    wired = ctx.weights > 0
    pred_unc = unit * np.asarray(response_matrix(unwired_removed(w_final, wired)))
    pred_wt = final.mean
    out.unc31["linear"] = pred_unc
    out.unc31_reference["linear"] = pred_wt
    unc_scores = {
        "linear_knockout": score(pred_unc, unc),
        "no_change_linear_wt_prediction": score(pred_wt, unc),
        "measured_wt_atlas": score(np.where(np.isfinite(dff), dff, np.nan), unc),
    }
    measured_change = out.measured["unc31"] - dff
    unc_scores["change"] = {
        "linear_knockout": _change_scores(pred_unc - pred_wt, measured_change),
        "definition": "unc31 - wt on pairs measured in both strains; a 'no change' predictor "
        "has no correlation to score",
    }
    unc_scores["model_reading"] = (
        "linear: unc-31 abolishes dense-core-vesicle release, read as removing every fitted "
        "coupling between pairs with no synapse or gap junction (Cook 2019)"
    )
    if settings.graded is not None:
        data = (wt, unc)
        _graded(atlas, settings, out, models, unc_scores, folds, trials, data, report, cv, fits)
    scores["unc31"] = unc_scores

    report("spontaneous activity: predicted correlation matrices", 0.96)
    out.spontaneous["linear"] = spontaneous_correlation(out.models["linear"])
    models["linear"]["spontaneous"] = {
        "note": "correlations of noise-driven activity (independent equal noise per neuron); "
        "no spontaneous recordings are bundled to score them against",
    }
    scores["models"] = models
    out.scores = scores
    return out


def _kernel(atlas, ks: KernelFitSettings, w_folds, folds, fits, report):
    """Class-split CV of the kernel time constants; the final fit is ``fits``'s."""
    fun = atlas.functional("wt")
    kernels, times = fun["kernel"].to_numpy(), fun["time"].to_numpy()
    kcv = kernel_cross_validation(
        w_folds, kernels, times, folds, weights=fun["n_trials"].to_numpy(), settings=ks,
        progress=lambda m: report(f"kernel model, class split: {m}", 0.75),
    )  # fmt: skip
    off = ~np.eye(kernels.shape[0], dtype=bool)
    heldout = {k: kernel_scores(p, kernels, off, times) for k, p in kcv.pred.items()}
    tau, readout = fits.tau_s, fits.readout_tau_s

    def spread(x):
        return {
            "median": float(np.median(x)),
            "p05": float(np.percentile(x, 5)),
            "p95": float(np.percentile(x, 95)),
        }

    scores = {
        "heldout_kernels": heldout,
        "tau_s": spread(tau) | {"per_fold_median": [float(np.median(t)) for t in kcv.tau_s]},
        "readout_tau_s": None if readout is None else spread(readout),
        "note": "the linear network's couplings with "
        + ("one time constant per neuron" if ks.per_neuron else "one time constant shared by "
           "every neuron")
        + (" and a readout filter (observed dF/F lags activity)" if ks.readout else "")
        + " fitted to the shapes of the measured response kernels (Randi et al. 2023), "
        "stimulated neuron clamped; its steady state, and so its held-out dF/F scores, are "
        "the linear model's. Scored on the kernels of held-out stimulations beside the same "
        "dynamics " + ("shared" if ks.per_neuron else "per neuron") + ", the first-order unit "
        "at tau = 1 s, and each responder's mean training kernel.",
    }  # fmt: skip
    outcome = KernelOutcome(times, kernels, kcv.pred, tau, readout, fits.models["kernel"])
    return outcome, scores


def _graded_from_linear_cv(base, linear_cv, folds, n, report):
    """Each fold's graded network built from that fold's linear couplings (no refit).

    Returns the out-of-fold predictions, intervals carried over from the linear model (each
    column's half-widths scaled like its prediction) and per-fold facts.
    """
    mean, lower, upper = (np.full((n, n), np.nan) for _ in range(3))
    per_fold = []
    for f, held in enumerate(folds):
        report(f"graded network from the linear fit: fold {f + 1}/{len(folds)}", 0.86 + 0.01 * f)
        fit = graded_from_linear(base, linear_cv.w[f], linear_cv.unit[f])
        pred = fit.response()
        linear = linear_cv.unit[f] * np.linalg.inv(np.eye(n) - linear_cv.w[f])
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.nanmedian(np.where(np.abs(linear) > 1e-12, pred / linear, np.nan), 0)
        mean[:, held] = pred[:, held]
        lm, ll, lu = (a[:, held] for a in (linear_cv.mean, linear_cv.lower, linear_cv.upper))
        lower[:, held] = pred[:, held] - factor[held] * (lm - ll)
        upper[:, held] = pred[:, held] + factor[held] * (lu - lm)
        per_fold.append({"gain": fit.gain, "rest_residual_mV": fit.residual_mV})
    return mean, lower, upper, per_fold


def _graded(atlas, settings, out, models, unc_scores, folds, trials, data, report, linear_cv, fits):
    """Build the graded network per fold and on everything; its unc-31, spontaneous output."""
    from ..experiments import Knockout
    from ..models import graded_from_atlas

    wt, unc = data
    n = len(out.names)
    dff = out.measured["wt"]
    off = ~np.eye(n, dtype=bool)
    base = graded_from_atlas(atlas, peptides=None)
    final = fits.graded  # the fit on every stimulation (reproduce/_final.py)
    if settings.graded_identification == "linear":
        mean, lower, upper, per_fold = _graded_from_linear_cv(base, linear_cv, folds, n, report)
        out.oof["graded"] = mean
        if settings.graded_intervals:
            out.lower["graded"], out.upper["graded"] = lower, upper
        how = (
            "built from each fold's linear couplings (graded_from_linear): the same "
            "small-signal Jacobian at rest -35 mV, wired couplings as gap-junction and synapse "
            "conductances, the rest of the coupling as signed peptide drive, each stimulated "
            "column scaled by its neuron's input resistance; no refit"
        )
        intervals = "the linear model's calibrated intervals, half-widths scaled per column"
        final_info = {"gain": final.gain, "rest_residual_mV": final.residual_mV}
    else:
        pairs = peptide_pairs(atlas, settings.graded_peptide_pairs, n)
        classes = list(atlas.neurons.loc[out.names, "neuron_class"])
        level = settings.linear.level if settings.graded_intervals else None
        cv = graded_cross_validation(
            base, trials, dff, folds, peptide_pairs=pairs, settings=settings.graded,
            classes=classes, level=level, seed=settings.seed,
            progress=lambda f: report(
                f"graded network, class split: fold {f + 1}/{len(folds)}", 0.86 + 0.01 * f
            ),
        )  # fmt: skip
        out.oof["graded"], per_fold = cv.mean, cv.per_fold
        if settings.graded_intervals:
            out.lower["graded"], out.upper["graded"] = cv.lower, cv.upper
        how = (
            "small-signal steady state of the graded network (Newton rest + autodiff "
            "Jacobian of its vector field), per-synapse conductances, peptide drives, readout "
            "gain"
        )
        intervals = (
            "measurement noise + misfit variance, split-conformal scale from inner "
            "class-split CV (no parameter ensemble)"
        )
        final_info = {
            "gain": final.gain,
            "start_scale": final.scale,
            "rest_residual_mV": final.residual_mV,
            "loss_first_last": [float(final.loss[0]), float(final.loss[-1])],
        }
    out.models["graded"] = final.model
    out.readout_gain["graded"] = final.gain
    pred_wt = final.response()
    knocked = Knockout("unc-31", atlas)(final.model)
    pred_unc = final.response(knocked)
    out.unc31["graded"], out.unc31_reference["graded"] = pred_unc, pred_wt
    unc_scores["graded_knockout"] = score(pred_unc, unc)
    unc_scores["no_change_graded_wt_prediction"] = score(pred_wt, unc)
    unc_scores["change"]["graded_knockout"] = _change_scores(
        pred_unc - pred_wt, out.measured["unc31"] - dff
    )
    out.spontaneous["graded"] = spontaneous_correlation(
        final.model, rest_of(final.model, final.v_rest_mV)
    )
    models["graded"] = {
        "heldout": score(out.oof["graded"], wt),
        "coverage90": coverage(np.where(off, dff, np.nan), out.lower["graded"], out.upper["graded"])
        if settings.graded_intervals
        else None,
        "intervals": intervals
        if settings.graded_intervals
        else "not computed (graded_intervals off)",
        "per_fold": per_fold,
        "final": final_info,
        "fit": how,
    }
