r"""Identify the linear network's time constants from the measured response kernels.

The steady-state identification (:func:`~digiworm.fit.fit_linear_response`) fixes the couplings
``W`` but not the speed of the network. The signal propagation atlas also gives each measured
pair's response *kernel* :math:`h_{ij}(t)` (Randi et al. 2023): the response of *i* per unit
activity of the stimulated neuron *j*, :math:`\Delta F_i(t) = \int h_{ij}(\tau) s_j(t-\tau)
d\tau`. In the linear network

.. math:: \tau_i \dot x_i = -x_i + \sum_k W_{ik} x_k

with the stimulated neuron's activity imposed (clamped to :math:`s_j`), the kernel is the
impulse response of the rest of the network,

.. math:: h_{rj}(t) = \left[e^{A_{rr} t} A_{rj}\right], \qquad A = \mathrm{diag}(1/\tau)(W - I),

where ``r`` are all neurons but *j*: direct partners respond at once and decay with their own
time constant, indirect ones rise later. :func:`clamped_kernels` integrates it (RK4, every
stimulated column of a batch at once, the clamped neuron's row masked) and :func:`fit_kernel_taus`
fits the time constants (through an interval transform, so each stays in ``[tau_min,
tau_max]``) by gradient descent through that simulation on minibatches of stimulated columns,
with a shape loss and trial-count weights. The couplings stay those of the steady-state fit:
time constants are properties of the responding neurons, so they carry over to stimulations
never seen (what the class-split cross-validation tests).

**Readout filter** (``KernelFitSettings.readout``, the default). The measured kernels are
ΔF/F of a calcium indicator: 61 % of the nonzero ones start at 0 and their median peak is at
0.5 s, which a first-order unit (whose direct partners jump at t = 0+) cannot make. Each
neuron's observed response therefore lags its activity through a first-order filter,
:math:`\tau^o_i \dot y_i = x_i - y_i`, and the kernel is :math:`y`. The filter has unit gain, so
the steady state is unchanged; its time constant is fitted beside the τ. By default one τ and
one τᵒ are shared by every neuron (``KernelFitSettings.per_neuron``). On the inner class folds
the readout filter raised the median held-out shape r from 0.25 to 0.42 (per neuron) and 0.44
(shared); see ``docs/fidelity.md``.

The fitted model is :class:`~digiworm.models.LinearModel` with
:math:`A = \mathrm{diag}(1/\tau)(W - I)`, :math:`B = \mathrm{unit}/\tau` and the readout
filters: the same steady state as the linear model, with identified dynamics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import DigiwormError
from ..validate import pearson_clipped
from ._transforms import Interval

__all__ = [
    "KernelCV",
    "KernelFit",
    "KernelFitSettings",
    "clamped_kernels",
    "fit_kernel_taus",
    "identify_kernel_taus",
    "kernel_cross_validation",
    "kernel_scores",
    "responder_mean_kernels",
]


@dataclass(frozen=True)
class KernelFitSettings:
    """Hyperparameters of the time-constant fit."""

    steps: int = 80
    learning_rate: float = 0.1
    batch: int = 16
    """Stimulated columns per gradient step. On a wild-type fold, 80 steps of 16 columns at
    rate 0.1 (17 s) and 150 steps of 32 at 0.05 (46 s) gave the same held-out scores."""
    dt_s: float = 0.125
    """RK4 step; the kernels are sampled every 0.5 s (the imaging volume period)."""
    tau_min_s: float = 0.25
    tau_max_s: float = 30.0
    ridge_log_tau: float = 1e-3
    """Pull of log τ towards log(1 s): neurons that never respond keep τ near 1 s."""
    readout: bool = True
    """Fit the readout filter τᵒ too (from 0.5 s, in ``[tau_min_s, tau_max_s]``); False: ΔF/F
    is the activity (the first-order model)."""
    per_neuron: bool = False
    """One τ (and τᵒ) per neuron instead of one shared by all. Shared won on the inner class
    folds (median held-out shape r 0.44 vs 0.42, peak within 1 s 0.68 vs 0.65): per-neuron
    time constants fitted to other stimulations do not carry over to a held-out class."""
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1:
            raise DigiwormError(f"steps and batch must be >= 1; got {self.steps}, {self.batch}")
        if not 0 < self.tau_min_s < 1.0 < self.tau_max_s:
            raise DigiwormError(
                f"need 0 < tau_min_s < 1 s < tau_max_s; got {self.tau_min_s}, {self.tau_max_s}"
            )
        if not 0 < self.dt_s <= self.tau_min_s:
            raise DigiwormError(
                f"dt_s must lie in (0, tau_min_s = {self.tau_min_s}]; got {self.dt_s}"
            )


def _check_grid(times_s) -> tuple[float, int]:
    t = np.asarray(times_s, dtype=float)
    if t.ndim != 1 or t.size < 2 or t[0] != 0 or not np.all(np.isfinite(t)):
        raise DigiwormError(f"kernel times must be a 1-D grid starting at 0 s; got {t!r}")
    step = t[1] - t[0]
    if step <= 0 or not np.allclose(np.diff(t), step, rtol=1e-6, atol=1e-9):
        raise DigiwormError("kernel times must be evenly spaced and increasing")
    return float(step), t.size


def _substeps(step: float, dt_s: float) -> int:
    k = round(step / dt_s)
    if k < 1 or abs(k * dt_s - step) > 1e-9 * step:
        raise DigiwormError(f"dt_s ({dt_s:g} s) must divide the output spacing ({step:g} s)")
    return k


@functools.partial(jax.jit, static_argnames=("n_times", "substeps"))
def _clamped(w, tau, cols, dt, n_times: int, substeps: int, readout_tau=None):
    n = w.shape[0]
    a = (w - jnp.eye(n, dtype=w.dtype)) / tau[:, None]
    b = cols.shape[0]
    mask = jnp.ones((n, b), w.dtype).at[cols, jnp.arange(b)].set(0.0)
    x0 = mask * a[:, cols]  # the impulse at t = 0+: x_r jumps by A_rj
    filtered = readout_tau is not None

    def f(state):
        if not filtered:
            return (mask * (a @ state[0]),)
        x, y = state
        return mask * (a @ x), (x - y) / readout_tau[:, None]

    def rk4(state, _):
        def ahead(k, h):
            return jax.tree.map(lambda s, d: s + h * d, state, k)

        k1 = f(state)
        k2 = f(ahead(k1, 0.5 * dt))
        k3 = f(ahead(k2, 0.5 * dt))
        k4 = f(ahead(k3, dt))
        new = jax.tree.map(
            lambda s, d1, d2, d3, d4: s + dt / 6.0 * (d1 + 2.0 * d2 + 2.0 * d3 + d4),
            state, k1, k2, k3, k4,
        )  # fmt: skip
        return new, None

    def save(state, _):
        state = jax.lax.scan(rk4, state, None, length=substeps)[0]
        return state, state[-1]  # the readout's output (the activity without a filter)

    start = (x0, jnp.zeros_like(x0)) if filtered else (x0,)  # x has jumped; the readout not
    _, xs = jax.lax.scan(save, start, None, length=n_times - 1)
    return jnp.concatenate([start[-1][None], xs], axis=0)  # (time, n, batch)


def clamped_kernels(w, tau_s, cols, times_s, dt_s: float = 0.125, readout_tau_s=None):
    r"""Return the kernels :math:`h_{ij}(t)` of the linear network, stimulated columns clamped.

    Parameters
    ----------
    w : array (n, n)
        Couplings ``W[post, pre]``.
    tau_s : array (n,)
        Time constant of every neuron, s.
    cols : int array (batch,)
        Stimulated neurons.
    times_s : array (time,)
        Evenly spaced output times from 0 s.
    dt_s : float
        RK4 step; must divide the output spacing.
    readout_tau_s : array (n,), optional
        Each neuron's readout filter time constant, s: the kernel is then the filtered
        activity (0 at t = 0). Default: the activity itself.

    Returns
    -------
    array (time, n, batch)
        ``out[k, i, b]`` = kernel of *i* for stimulation of ``cols[b]`` at ``times_s[k]``
        (0 for the clamped neuron itself).
    """
    step, n_times = _check_grid(times_s)
    substeps = _substeps(step, dt_s)
    tau = jnp.asarray(tau_s)
    readout = None if readout_tau_s is None else jnp.asarray(readout_tau_s, tau.dtype)
    if not bool(jnp.all(tau > 0)) or (readout is not None and not bool(jnp.all(readout > 0))):
        raise DigiwormError("time constants must all be > 0 s")
    w = jnp.asarray(w)
    return _clamped(w, tau, jnp.asarray(cols), dt_s, n_times, substeps, readout)


@dataclass
class KernelFit:
    """Fitted time constants (the couplings are the steady-state fit's)."""

    tau_s: np.ndarray
    loss: list[float]
    readout_tau_s: np.ndarray | None = None
    """Each neuron's readout filter, s (None: ΔF/F is the activity)."""

    def predict(self, w, cols, times_s, dt_s: float = 0.125) -> np.ndarray:
        """Return predicted kernels ``(responding, len(cols), time)`` for stimulated ``cols``."""
        k = clamped_kernels(w, self.tau_s, cols, times_s, dt_s, self.readout_tau_s)
        return np.moveaxis(np.asarray(k), 0, -1)


def _shape_loss(pred, target, weight):
    """Weighted mean over pairs of 1 - r, r the correlation of two time courses (last axis)."""
    pc = pred - pred.mean(-1, keepdims=True)
    tc = target - target.mean(-1, keepdims=True)
    r = (pc * tc).sum(-1) * jax.lax.rsqrt((pc**2).sum(-1) * (tc**2).sum(-1) + 1e-20)
    return jnp.sum(weight * (1.0 - r)) / jnp.maximum(jnp.sum(weight), 1e-12)


_ADAM = optax.scale_by_adam()
_READOUT_START_S = 0.5
"""Where the readout filters start: the kernels' median peak time (0.5 s)."""


def _kernel_loss(z, bcols, w, data, wts, dt, lo, hi, ridge, n_times, substeps):
    n = w.shape[0]
    transform = Interval(lo, hi)
    tau = jnp.broadcast_to(transform.forward(z["tau"]), (n,))
    readout = z.get("readout")
    readout = None if readout is None else jnp.broadcast_to(transform.forward(readout), (n,))
    pred = jnp.moveaxis(_clamped(w, tau, bcols, dt, n_times, substeps, readout), 0, -1)
    return _shape_loss(pred, data[:, bcols], wts[:, bcols]) + ridge * jnp.mean(jnp.log(tau) ** 2)


@functools.partial(jax.jit, static_argnames=("n_times", "substeps"))
def _update(z, state, bcols, lr, w, data, wts, dt, lo, hi, ridge, *, n_times, substeps):
    """One Adam step (compiled once per shape, reused by every fit)."""
    val, g = jax.value_and_grad(_kernel_loss)(
        z, bcols, w, data, wts, dt, lo, hi, ridge, n_times, substeps
    )
    upd, state = _ADAM.update(g, state, z)
    return jax.tree.map(lambda p, u: p - lr * u, z, upd), state, val


def fit_kernel_taus(
    w: np.ndarray,
    kernels: np.ndarray,
    times_s,
    train_cols: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    settings: KernelFitSettings | None = None,
    shared: bool | None = None,
) -> KernelFit:
    """Fit the time constants (one shared by all, or one per neuron) to the kernels' time courses.

    With ``settings.readout`` each neuron's readout filter (or one shared) is fitted too.

    The loss is the weighted mean of 1 − r over training pairs with a nonzero measured kernel,
    r the correlation between the predicted and measured time courses: the time constants set
    the *shape* of the responses; their amplitude is the steady-state fit's business (the
    kernels' amplitudes are heavy-tailed, up to 10² times their median). Gradient descent
    (Adam) through the RK4 simulation of :func:`clamped_kernels` on minibatches of stimulated
    columns; τ through an interval transform, with a weak pull of log τ towards log 1 s.

    Parameters
    ----------
    w : array (n, n)
        Couplings ``W[post, pre]`` (fixed here).
    kernels : array (responding, stimulated, time)
        Measured kernels; NaN where a pair has none. The diagonal is ignored.
    times_s : array (time,)
        Their time grid (evenly spaced from 0 s).
    train_cols : int array
        Stimulated columns to fit on.
    weights : array (responding, stimulated), optional
        Pair weights (e.g. trial counts); default 1 for every measured pair.
    shared : bool, optional
        Fit one time constant (and readout filter) for every neuron instead of one each;
        default ``not settings.per_neuron``.
    """
    s = KernelFitSettings() if settings is None else settings
    w = np.asarray(w, float)
    n = w.shape[0]
    if w.shape != (n, n) or kernels.shape[:2] != (n, n):
        raise DigiwormError(
            f"w must be square and kernels (n, n, time) on the same neurons; got {w.shape} "
            f"and {kernels.shape}"
        )
    step, n_times = _check_grid(times_s)
    if kernels.shape[2] != n_times:
        raise DigiwormError(f"kernels have {kernels.shape[2]} times; the grid has {n_times}")
    substeps = _substeps(step, s.dt_s)
    train_cols = np.asarray(train_cols)
    finite = np.nan_to_num(kernels)
    usable = np.isfinite(kernels).all(-1) & ~np.eye(n, dtype=bool) & (finite.std(-1) > 0)
    cols = train_cols[usable[:, train_cols].any(0)]
    if cols.size == 0:
        raise DigiwormError("no training column has a nonzero measured kernel to fit")
    wts = np.where(usable, 1.0 if weights is None else np.asarray(weights, float), 0.0)
    data = jnp.asarray(finite, jnp.float32)
    wts_j = jnp.asarray(wts, jnp.float32)
    w_j = jnp.asarray(w, jnp.float32)
    transform = Interval(s.tau_min_s, s.tau_max_s)
    size = 1 if (not s.per_neuron if shared is None else shared) else n
    z = {"tau": jnp.full(size, transform.inverse(1.0), jnp.float32)}
    if s.readout:
        z["readout"] = jnp.full(size, transform.inverse(_READOUT_START_S), jnp.float32)
    rng = np.random.default_rng(s.seed)
    batch = min(s.batch, cols.size)

    state = _ADAM.init(z)
    lr = jnp.float32(s.learning_rate)
    args = (w_j, data, wts_j, s.dt_s, s.tau_min_s, s.tau_max_s, s.ridge_log_tau)
    losses = []
    for _ in range(s.steps):
        bcols = jnp.asarray(rng.choice(cols, batch, replace=False))
        z, state, val = _update(z, state, bcols, lr, *args, n_times=n_times, substeps=substeps)
        losses.append(float(val))

    def values(key):
        return np.broadcast_to(np.asarray(transform.forward(z[key]), float), (n,)).copy()

    return KernelFit(values("tau"), losses, values("readout") if s.readout else None)


def responder_mean_kernels(kernels: np.ndarray, train_cols: np.ndarray) -> np.ndarray:
    """Baseline: each responding neuron's mean kernel over the training stimulations.

    Returns ``(responding, time)``; zero for a neuron with no training kernel.
    """
    n = kernels.shape[0]
    sub = np.where(np.eye(n, dtype=bool)[..., None], np.nan, kernels)[:, train_cols]
    finite = np.isfinite(sub)
    total = np.where(finite, sub, 0.0).sum(1)
    count = finite.sum(1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def kernel_scores(pred: np.ndarray, measured: np.ndarray, mask: np.ndarray, times_s) -> dict:
    """Score predicted against measured kernels ``(responding, stimulated, time)`` on ``mask``.

    * ``pearson_clipped``: Pearson r over every (pair, time) value, each side clipped to its
      own 0.5–99.5 percentiles (the kernels are heavy-tailed), as the scoreboard does;
    * ``shape_r_median``: median, over pairs with a nonzero measured kernel, of the correlation
      between predicted and measured time courses (the shape, whatever the amplitude);
    * ``peak_within_1s``: fraction of those pairs whose predicted and measured peaks (largest
      absolute value) lie within 1 s of each other.
    """
    t = np.asarray(times_s, float)
    m = mask & np.isfinite(measured).all(-1) & np.isfinite(pred).all(-1)
    p, y = pred[m], measured[m]  # (pairs, time)
    if p.shape[0] < 3:
        raise DigiwormError(f"only {p.shape[0]} kernels to score; need >= 3")
    out = {"pearson_clipped": pearson_clipped(p.ravel(), y.ravel()), "n_pairs": int(p.shape[0])}
    nz = (np.abs(y).max(-1) > 0) & (p.std(-1) > 0) & (y.std(-1) > 0)
    pn, yn = p[nz], y[nz]
    out["n_nonzero"] = int(nz.sum())
    if nz.any():
        pz = (pn - pn.mean(-1, keepdims=True)) / pn.std(-1, keepdims=True)
        yz = (yn - yn.mean(-1, keepdims=True)) / yn.std(-1, keepdims=True)
        out["shape_r_median"] = float(np.median((pz * yz).mean(-1)))
        peak_p, peak_y = t[np.abs(pn).argmax(-1)], t[np.abs(yn).argmax(-1)]
        out["peak_within_1s"] = float(np.mean(np.abs(peak_p - peak_y) <= 1.0 + 1e-9))
    return out


@dataclass
class KernelCV:
    """Out-of-fold kernel predictions of :func:`kernel_cross_validation`."""

    pred: dict[str, np.ndarray]
    """``(responding, stimulated, time)`` per predictor: ``model`` (the settings' fit), its
    alternative (``per_neuron`` for a shared model, ``shared`` for a per-neuron one),
    ``tau_1s`` (first order, τ = 1 s) and ``responder_mean``."""
    tau_s: list[np.ndarray] = field(default_factory=list)
    """The model's time constants per fold."""
    readout_tau_s: list[np.ndarray | None] = field(default_factory=list)
    """The model's readout filters per fold (None without them)."""


def kernel_cross_validation(
    w_folds: Sequence[np.ndarray],
    kernels: np.ndarray,
    times_s,
    folds: Sequence[np.ndarray],
    *,
    weights: np.ndarray | None = None,
    settings: KernelFitSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> KernelCV:
    """Predict each held-out fold's kernels from time constants fitted on the other columns.

    ``w_folds[f]`` are the couplings fitted without fold *f*'s stimulations (the linear
    cross-validation's), so nothing of a held-out column is seen. Beside the model: the same
    dynamics per neuron (or shared, if the model is per neuron), the first-order unit at
    τ = 1 s everywhere (the speed the steady-state fit assumes), and each responder's mean
    training kernel.
    """
    s = KernelFitSettings() if settings is None else settings
    n = kernels.shape[0]
    measured_cols = np.flatnonzero(np.isfinite(kernels).all(-1).any(0))
    other = "shared" if s.per_neuron else "per_neuron"
    names = ("model", other, "tau_1s", "responder_mean")
    out = KernelCV({k: np.full(kernels.shape, np.nan) for k in names})
    for f, held in enumerate(folds):
        train = np.setdiff1d(measured_cols, held)
        held = np.asarray(held)
        w = w_folds[f]
        fit = fit_kernel_taus(w, kernels, times_s, train, weights=weights, settings=s)
        alt = fit_kernel_taus(
            w, kernels, times_s, train, weights=weights, settings=s, shared=s.per_neuron
        )
        out.pred["model"][:, held] = fit.predict(w, held, times_s, s.dt_s)
        out.pred[other][:, held] = alt.predict(w, held, times_s, s.dt_s)
        out.pred["tau_1s"][:, held] = KernelFit(np.ones(n), []).predict(w, held, times_s, s.dt_s)
        out.pred["responder_mean"][:, held] = responder_mean_kernels(kernels, train)[:, None]
        out.tau_s.append(fit.tau_s)
        out.readout_tau_s.append(fit.readout_tau_s)
        if progress is not None:
            message = f"fold {f + 1}/{len(folds)}: median tau {np.median(fit.tau_s):.2f} s"
            if fit.readout_tau_s is not None:
                message += f", readout {np.median(fit.readout_tau_s):.2f} s"
            progress(message)
    return out


def identify_kernel_taus(
    kernels: np.ndarray,
    times_s,
    w_folds: Sequence[np.ndarray],
    folds: Sequence[np.ndarray],
    w_final: np.ndarray,
    cols: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    settings: KernelFitSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[KernelCV, KernelFit, dict]:
    """Class-split CV of the time constants, the final fit on ``cols``, and held-out scores.

    Returns ``(cv, final, heldout)``: :func:`kernel_cross_validation`'s predictions, the fit of
    ``w_final`` on every column in ``cols``, and :func:`kernel_scores` of each predictor on
    the off-diagonal pairs.
    """
    cv = kernel_cross_validation(
        w_folds, kernels, times_s, folds, weights=weights, settings=settings, progress=progress
    )
    final = fit_kernel_taus(w_final, kernels, times_s, cols, weights=weights, settings=settings)
    off = ~np.eye(kernels.shape[0], dtype=bool)
    heldout = {k: kernel_scores(p, kernels, off, times_s) for k, p in cv.pred.items()}
    return cv, final, heldout
