"""``digiworm fit``: identify a model from a perturbation dataset, with cross-validated scores."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError
from .._io import atomic_write_json
from ..models import LinearModel, save_model
from ..validate import baseline_context, cross_validate, folds_for, score
from ._linear_response import fit_linear_response, response_matrix

__all__ = ["FIT_MODELS", "fit_dataset"]

FIT_MODELS = ("linear",)


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
    steps: int = 300,
    ridge: float = 1.0,
    learning_rate: float = 3e-4,
    tau_s: float = 1.0,
    seed: int = 0,
) -> dict:
    r"""Fit ``model`` to ``ds`` (a checked perturbation dataset), write the model and scores.

    The linear model is identified from steady-state responses: ``W`` such that
    :math:`(I - W)^{-1}` matches the per-trial responses (robust loss, ridge towards the scaled
    signed connectome, all off-diagonal couplings allowed: the connectome is a prior, not a
    cage). It is saved as the dynamical :class:`LinearModel` :math:`\dot x = (W - I)x/\tau +
    u/\tau`, whose steady state is that fit; ``tau_s`` is not identified by steady-state data.
    Scores are out-of-fold over stimulated-neuron classes (see :mod:`digiworm.validate`).
    Adam moves every coupling by about the learning rate per step whatever its gradient, so a
    large rate or weak ridge drives the dense ``W`` past spectral radius 1 (unstable); the
    defaults keep it near 0.9 on the wild-type atlas, and an unstable fit is refused.

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
    names = list(atlas.names)
    n = len(names)
    trials = _trials(ds)
    ctx = baseline_context(atlas)
    rho = np.max(np.abs(np.linalg.eigvals(ctx.signed)))
    prior = ctx.signed * (0.3 / rho)
    edges = ~np.eye(n, dtype=bool)
    classes = list(atlas.neurons.loc[names, "neuron_class"])

    def fit_on(train_mask):
        fit = fit_linear_response(
            trials, edges, train=train_mask, prior=prior, ridge=ridge, steps=steps,
            learning_rate=learning_rate, delta=0.2,
        )  # fmt: skip
        return fit

    split = folds_for(ds, classes, "class", folds, seed)
    oof = cross_validate(
        lambda train: np.asarray(response_matrix(jnp.asarray(fit_on(np.isfinite(train)).w))),
        ds,
        split,
    )
    final = fit_on(None)
    w = final.w
    radius = float(np.max(np.abs(np.linalg.eigvals(w))))
    if not radius < 1.0:
        raise DigiwormError(
            f"the fitted network is unstable (spectral radius {radius:.3f} >= 1); raise --ridge"
        )
    linear = LinearModel(
        names=tuple(names),
        a_per_s=jnp.asarray((w - np.eye(n)) / tau_s, dtype=jnp.float32),
        b_per_s=jnp.asarray(np.full(n, 1.0 / tau_s), dtype=jnp.float32),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(out_dir / "model_linear.dwm", linear)
    result = {
        "model": model,
        "split": "class",
        "folds": folds,
        "heldout": score(oof, ds),
        "spectral_radius": radius,
        "final_loss": float(final.loss[-1]),
        "settings": {
            "steps": steps,
            "ridge": ridge,
            "learning_rate": learning_rate,
            "tau_s": tau_s,
            "seed": seed,
            "huber_delta": 0.2,
            "prior": "signed Cook 2019, spectral radius 0.3",
        },
    }
    atomic_write_json(out_dir / "scores.json", result)
    return result
