r"""Identify the graded connectome network from stimulation responses (small-signal steady state).

Stimulating neuron *j* with a sustained input *u* moves the graded network
(:class:`~digiworm.models.GradedNetwork`) from its rest :math:`V^*` to a new steady state; for
small *u* the change is linear,

.. math::

    \delta V = -\left(\partial_V G(V^*)\right)^{-1} e_j\, u, \qquad
    \delta a_i = \phi'(V^*_i)\, \delta V_i,

where :math:`G(V) = 0` is the membrane equation with the synaptic and peptide variables at
their equilibria :math:`s_\infty(V), p_\infty(V)` (the steady states of the full system and of
this reduced one coincide). :func:`small_signal_response` computes :math:`V^*` by Newton's
method and the Jacobian by JAX autodiff of the model's own ``vector_field`` — the same code the
simulator integrates — so the fit below differentiates through the model. The measured ΔF/F is
taken as ``gain × δa`` (one positive gain for stimulus amplitude × indicator sensitivity).

:func:`fit_graded` fits, on the per-trial responses with the robust loss:

* every chemical synapse's conductance and every gap junction's (symmetric) conductance on the
  wired edges of the connectome (positive, through a log transform, ridge towards the defaults);
* a signed peptide drive on every pair the extrasynaptic network links (ridge towards 0) —
  which is how a pair with no wire can respond (the connectome is a prior, not a cage);
* the readout gain (positive).

Synapse signs (reversal potentials from the receptor-expression rule) stay fixed. The unc-31
prediction is then the same small-signal response of the fitted network after
``Knockout("unc-31")`` removes the peptide layer.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import DigiwormError
from ..models import GradedNetwork, GradedState
from ._linear_response import TrialTable, trial_table
from ._losses import huber

__all__ = [
    "GradedFit",
    "GradedCV",
    "GradedFitSettings",
    "fit_graded",
    "graded_cross_validation",
    "graded_from_linear",
    "rest_of",
    "small_signal_response",
]


def _reduced_field(model: GradedNetwork, v):
    """Membrane equation G(V) (mV) with s and p at their equilibria for V."""
    dy = model.vector_field(0.0, rest_of(model, v), jnp.zeros_like(v))
    return dy.v_mV * model.tau_m_s


def rest_of(model: GradedNetwork, v_mV) -> GradedState:
    """Return the full state at a rest potential ``v_mV``: s and p at their equilibria."""
    v = jnp.asarray(v_mV, dtype=model.v_rest_mV.dtype)
    phi = model.activation(v)
    s = model.a_r_per_s * phi / (model.a_r_per_s * phi + model.a_d_per_s)
    return GradedState(v, s, phi)


def small_signal_response(model: GradedNetwork, v0=None, newton_steps: int = 8):
    r"""Return ``(R, v_rest, residual)``: steady-state activity change per unit input.

    ``R[i, j]`` is :math:`\partial a_i / \partial u_j` at rest for a sustained input to *j*
    (activity :math:`a = \phi(V)`, input in mV). ``v_rest`` is the network rest found by
    ``newton_steps`` Newton iterations from ``v0`` (default ``model.v_rest_mV``); ``residual``
    is the largest :math:`|G(V^*)|` (mV) left — check it is small before trusting ``R``.
    """
    field = functools.partial(_reduced_field, model)

    def newton(v, _):
        jac = jax.jacfwd(field)(v)
        return v - jnp.linalg.solve(jac, field(v)), None

    start = model.v_rest_mV if v0 is None else v0
    v, _ = jax.lax.scan(newton, start, None, length=newton_steps)
    jac = jax.jacfwd(field)(v)
    n = v.shape[0]
    dv = -jnp.linalg.solve(jac, jnp.eye(n, dtype=v.dtype))
    phi = model.activation(v)
    slope = model.beta_per_mV * phi * (1.0 - phi)
    return slope[:, None] * dv, v, jnp.max(jnp.abs(field(v)))


@dataclass(frozen=True)
class GradedFitSettings:
    """Hyperparameters of :func:`fit_graded`."""

    steps: int = 300
    learning_rate: float = 0.003
    """Adam step; 0.01 makes the wild-type fit's loss jump as the rest shifts."""
    ridge_log_conductance: float = 1e-3
    """Pull of each edge's log(conductance / starting value) towards 0 (mean square). The
    robust loss is ~0.006 on the wild-type atlas, so ridges are set against that scale."""
    ridge_peptide: float = 1e-4
    """Pull of the peptide drive (in units of ``pep_unit_mV``) towards 0 (mean square)."""
    pep_unit_mV: float = 5.0
    scales: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
    """Global multipliers of the default conductances tried as starting points (the one whose
    small-signal response best matches the training trials is kept)."""
    conductance_step: float = 0.1
    """Log-conductances move this much slower than the peptide drives: thousands of synapses
    stepping together (Adam) otherwise shift the rest abruptly."""
    rest_band_mV: float = 10.0
    """Rests may move this far from ``v_rest_mV`` freely; beyond it a quadratic penalty
    (``rest_penalty`` per mV², mean over neurons) keeps the operating point physiological."""
    rest_penalty: float = 1e-3
    newton_steps: int = 3
    """Newton iterations per optimiser step, warm-started from the previous step's rest."""
    huber_delta: float = 0.2

    def __post_init__(self):
        if self.steps < 1 or self.learning_rate <= 0:
            raise DigiwormError("steps must be >= 1 and learning_rate > 0")
        if not self.scales or min(self.scales) <= 0:
            raise DigiwormError(f"scales must be positive; got {self.scales}")


class _Params(eqx.Module):
    log_chem: jax.Array
    log_gap: jax.Array
    pep: jax.Array
    log_gain: jax.Array


def _build(base: GradedNetwork, params: _Params, chem_edges, gap_edges, pep_edges, unit, step):
    g_chem = jnp.where(chem_edges, base.g_chem * jnp.exp(step * params.log_chem), 0.0)
    log_gap = 0.5 * (params.log_gap + params.log_gap.T)  # one conductance per junction
    g_gap = jnp.where(gap_edges, base.g_gap * jnp.exp(step * log_gap), 0.0)
    w_pep = jnp.where(pep_edges, unit * params.pep, 0.0)
    return eqx.tree_at(lambda m: (m.g_chem, m.g_gap, m.w_pep_mV), base, (g_chem, g_gap, w_pep))


@dataclass
class GradedFit:
    """A fitted graded network and its small-signal predictions."""

    model: GradedNetwork
    gain: float
    """Readout gain: predicted ΔF/F = gain × (activity change per mV of input)."""
    loss: np.ndarray
    residual_mV: float
    """Largest |G(V*)| left at the fitted rest (Newton convergence check)."""
    scale: float
    """Global conductance multiplier the fit started from."""
    v_rest_mV: np.ndarray
    """The fitted network's rest (tracked through the fit by warm-started Newton)."""

    def response(self, model: GradedNetwork | None = None) -> np.ndarray:
        """Return the predicted ΔF/F ``[responding, stimulated]`` of ``model`` (default: fitted).

        The rest is found by Newton's method from the fitted network's rest.
        """
        model = self.model if model is None else model
        r, _, residual = small_signal_response(model, jnp.asarray(self.v_rest_mV), 20)
        if not float(residual) < 1e-2:
            raise DigiwormError(
                f"no rest found for the network (|G| = {float(residual):.3g} mV after Newton)"
            )
        return self.gain * np.asarray(r, dtype=float)


def _ls_gain(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.dot(pred, y) / max(float(np.dot(pred, pred)), 1e-30))


def fit_graded(
    base: GradedNetwork,
    trials: np.ndarray | TrialTable,
    *,
    train_cols: np.ndarray | None = None,
    peptide_pairs: np.ndarray | None = None,
    settings: GradedFitSettings = GradedFitSettings(),
) -> GradedFit:
    """Fit ``base``'s conductances, peptide drives and the readout gain to per-trial responses.

    Parameters
    ----------
    base : GradedNetwork
        Starting network (its wired edges and synapse signs define the structure).
    trials : array (responding, stimulated, trial) or TrialTable
        Per-trial ΔF/F (NaN-padded), on ``base.names``, including the stimulated neurons' own
        responses (the diagonal), which identify the readout gain.
    train_cols : int array, optional
        Stimulated columns the loss may use (default: all).
    peptide_pairs : bool array (n, n), optional
        Pairs allowed a peptide drive ``[post, pre]`` (default: where ``base.w_pep_mV`` != 0).
    settings : GradedFitSettings
    """
    table = trials if isinstance(trials, TrialTable) else trial_table(trials, diagonal=True)
    n = len(base.names)
    use = np.ones(table.size, bool) if train_cols is None else np.isin(table.cols, train_cols)
    if not use.any():
        raise DigiwormError("no training trials: train_cols selects no measured stimulation")
    pep = np.asarray(base.w_pep_mV) != 0 if peptide_pairs is None else peptide_pairs
    pep_edges = jnp.asarray(np.asarray(pep, dtype=bool) & ~np.eye(n, dtype=bool))
    zeros = jnp.zeros((n, n), dtype=jnp.float32)
    y = table.values[use]
    best = None
    for scale in settings.scales:  # starting point: a global conductance multiplier
        start = eqx.tree_at(
            lambda m: (m.g_chem, m.g_gap, m.w_pep_mV),
            base,
            (base.g_chem * scale, base.g_gap * scale, zeros),
        )
        r, v, residual = small_signal_response(start)
        if not float(residual) < 1e-3:
            continue
        pred = np.asarray(r)[table.rows[use], table.cols[use]]
        if np.dot(pred, pred) > 1e-20:
            gain = _ls_gain(pred, y)
        else:  # an uncoupled start: scale so a stimulated neuron's own response is 1
            gain = 1.0 / float(np.mean(np.diag(np.asarray(r))))
        sse = float(np.sum((y - gain * pred) ** 2))
        if gain > 0 and (best is None or sse < best[0]):
            best = (sse, scale, start, gain, v)
    if best is None:
        raise DigiwormError(f"no starting scale in {settings.scales} gives a network with a rest")
    _, scale, start, gain0, v0 = best
    chem_edges = jnp.asarray(np.asarray(start.g_chem) > 0)
    gap_edges = jnp.asarray(np.asarray(start.g_gap) > 0)
    params = _Params(zeros, zeros, zeros, jnp.log(jnp.asarray(gain0, jnp.float32)))
    structure = (
        chem_edges, gap_edges, pep_edges, jnp.float32(settings.pep_unit_mV),
        jnp.float32(settings.conductance_step),
    )  # fmt: skip
    params, history, v_fit = _run(
        params, start, structure, v0, jnp.asarray(table.rows), jnp.asarray(table.cols),
        jnp.asarray(table.values, jnp.float32), jnp.asarray(use, jnp.float32),
        settings.ridge_log_conductance, settings.ridge_peptide, settings.rest_band_mV,
        settings.rest_penalty, settings.huber_delta,
        settings.learning_rate, settings.steps, settings.newton_steps,
    )  # fmt: skip
    model = _build(start, params, *structure)
    _, v_rest, residual = small_signal_response(model, v_fit, 20)
    return GradedFit(
        model, float(jnp.exp(params.log_gain)), np.asarray(history), float(residual), scale,
        np.asarray(v_rest),
    )  # fmt: skip


def _objective(params, base, structure, v0, rows, cols, values, weights, ridge_g, ridge_p,
               rest_band, rest_penalty, delta, newton_steps):  # fmt: skip
    model = _build(base, params, *structure)
    r, v, _ = small_signal_response(model, jax.lax.stop_gradient(v0), newton_steps)
    pred = jnp.exp(params.log_gain) * r[rows, cols]
    fit = jnp.sum(weights * huber(values - pred, delta)) / jnp.sum(weights)
    chem_edges, gap_edges, pep_edges, _, step = structure

    def mean_sq(x, mask):
        return jnp.sum(jnp.where(mask, x, 0.0) ** 2) / jnp.maximum(mask.sum(), 1)

    log_chem, log_gap = step * params.log_chem, step * params.log_gap
    penalty = ridge_g * (mean_sq(log_chem, chem_edges) + mean_sq(log_gap, gap_edges))
    excess = jax.nn.relu(jnp.abs(v - base.v_rest_mV) - rest_band)
    rest = rest_penalty * jnp.mean(excess**2)
    return fit + penalty + ridge_p * mean_sq(params.pep, pep_edges) + rest, v


@functools.partial(jax.jit, static_argnames=("delta", "learning_rate", "steps", "newton_steps"))
def _run(params, base, structure, v0, rows, cols, values, weights, ridge_g, ridge_p, rest_band,
         rest_penalty, delta, learning_rate, steps, newton_steps):  # fmt: skip
    opt = optax.adam(learning_rate)
    grad_fn = jax.value_and_grad(_objective, has_aux=True)

    def step(carry, _):
        params, state, v = carry
        (value, v), grad = grad_fn(
            params, base, structure, v, rows, cols, values, weights, ridge_g, ridge_p,
            rest_band, rest_penalty, delta, newton_steps,
        )  # fmt: skip
        updates, state = opt.update(grad, state)
        return (optax.apply_updates(params, updates), state, v), value

    init = (params, opt.init(params), v0)
    (params, _, v), history = jax.lax.scan(step, init, None, length=steps)
    return params, history, v


@dataclass
class GradedCV:
    """Out-of-fold predictions of :func:`graded_cross_validation` (NaN bounds without intervals)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    per_fold: list[dict]


def graded_cross_validation(
    base: GradedNetwork,
    trials: np.ndarray,
    dff: np.ndarray,
    folds,
    *,
    peptide_pairs: np.ndarray,
    settings: GradedFitSettings,
    classes=None,
    level: float | None = None,
    seed: int = 0,
    progress=None,
) -> GradedCV:
    """Fit the graded network without each fold's stimulated columns and predict them.

    Parameters
    ----------
    base : GradedNetwork
        Starting network (see :func:`fit_graded`).
    trials, dff : arrays (n, n, trial) and (n, n)
        Per-trial responses (the diagonal included) and their means.
    folds : list of int arrays
        Held-out stimulated columns of each fold.
    peptide_pairs, settings
        As in :func:`fit_graded`.
    classes : sequence of str, optional
        Neuron classes (needed with ``level``).
    level : float, optional
        Calibrate intervals at this nominal coverage per fold, on a 2-fold inner class split
        of the training columns (noise + misfit, split-conformal; see
        :func:`~digiworm.fit._uncertainty.calibrate`).
    seed : int
        Seed of the inner folds.
    progress : callable, optional
        Called with the fold index before each fold.
    """
    from ._linear_cv import class_folds_within
    from ._uncertainty import calibrate

    names = list(base.names)
    n = len(names)
    table = trial_table(trials, diagonal=True)
    measured_cols = np.flatnonzero(np.isfinite(dff).any(axis=0))
    out = GradedCV(*(np.full((n, n), np.nan) for _ in range(3)), [])

    def fit_on(cols):
        return fit_graded(base, table, train_cols=cols, peptide_pairs=peptide_pairs,
                          settings=settings)  # fmt: skip

    for f, held in enumerate(folds):
        if progress is not None:
            progress(f)
        train_cols = np.setdiff1d(measured_cols, held)
        fit = fit_on(train_cols)
        pred = fit.response()
        out.mean[:, held] = pred[:, held]
        info = {"start_scale": fit.scale, "gain": fit.gain}
        if level is not None:
            inner_oof = np.full((n, n), np.nan)
            for inner in class_folds_within(names, classes, train_cols, 2, seed + f):
                inner_oof[:, inner] = fit_on(np.setdiff1d(train_cols, inner)).response()[:, inner]
            cal = calibrate(dff, inner_oof, trials, train_cols, level=level)
            out.lower[:, held] = (pred - cal.scale * cal.sd)[:, held]
            out.upper[:, held] = (pred + cal.scale * cal.sd)[:, held]
            info.update(interval_scale=cal.scale, misfit_variance=cal.model_var)
        out.per_fold.append(info)
    return out


def graded_from_linear(
    base: GradedNetwork,
    w: np.ndarray,
    unit: float = 1.0,
    *,
    wired: np.ndarray | None = None,
) -> GradedFit:
    r"""Return the graded network whose small-signal steady state is the linear network ``w``.

    The linear model predicts :math:`R = u (I - W)^{-1}` (unit :math:`u`). At an operating
    point :math:`V^*` the graded network's Jacobian is :math:`-(D - M)`, with the input
    conductance :math:`D_i = 1 + \sum_j g^{gap}_{ij} + \sum_j g^{chem}_{ij} s_j + g^{tonic}_i`
    and the coupling

    .. math::

        M_{ij} = g^{gap}_{ij} + g^{chem}_{ij}\, s'_j\, (E_{ij} - V^*_i) + w^{pep}_{ij}\, \phi'_j ,

    so its response to a sustained input at *j* is
    :math:`\delta a = \phi'(V^*)\,(D - M)^{-1} e_j`. This function builds the network with
    :math:`M = D W`, hence

    .. math::

        \delta a = \phi'\, (I - W)^{-1} D^{-1} e_j ,

    the linear network's response with each stimulated column scaled by that neuron's input
    resistance :math:`1/D_j` (a mechanistic effect the linear model leaves out). How:

    * the wired part of ``w`` (the pairs of ``wired``, default ``base``'s own synapses and
      gap junctions) becomes conductances: a gap junction takes the symmetric part
      :math:`\max(0, (W_{ij} + W_{ji}) / 2)` of a gap-wired pair, a chemical synapse the rest of
      the pair's coupling as :math:`|W_{ij}| / (s'_j |E_{ij} - V^*_i|)` with the reversal
      potential of its sign (the fitted sign wins over the receptor rule);
    * what remains of :math:`D W` on every pair (unwired couplings and the wired pairs'
      corrections from :math:`D`) is the signed peptide drive, so ``Knockout("unc-31")``
      removes it;
    * each neuron's leak reversal is set so that :math:`V^*` (``base.v_rest_mV``) is the rest.

    The readout gain is :math:`u\, \mathrm{median}(D) / \mathrm{median}(\phi')`, so columns of
    median input conductance match the linear model's scale; the network carries it as
    ``dff_per_activity``, so :func:`digiworm.simulate.simulate` reads it out in ΔF/F.

    Parameters
    ----------
    base : GradedNetwork
        Supplies the operating point, time constants, synaptic kinetics, activation curve and
        (by default) the wiring; its own conductances and peptide drives are replaced.
    w : array (n, n)
        Linear couplings ``[post, pre]`` (e.g. the fitted linear network's, diagonal 0).
    unit : float
        The linear model's response unit (ΔF/F per unit input).
    wired : (chem, gap) pair of bool arrays (n, n), optional
        Pairs that may carry a chemical synapse / gap junction (default: where ``base``'s
        conductances are non-zero).
    """
    from ..models._graded import E_EXC_MV, E_INH_MV

    w = np.asarray(w, dtype=float)
    n = len(base.names)
    if w.shape != (n, n) or not np.all(np.isfinite(w)):
        raise DigiwormError(f"w must be a finite ({n}, {n}) array; got shape {w.shape}")
    if not unit > 0:
        raise DigiwormError(f"unit must be > 0; got {unit}")
    off = ~np.eye(n, dtype=bool)
    w = np.where(off, w, 0.0)
    if wired is None:
        chem_ok, gap_ok = np.asarray(base.g_chem) > 0, np.asarray(base.g_gap) > 0
    else:
        chem_ok, gap_ok = (np.asarray(x, dtype=bool) for x in wired)
    v = np.asarray(base.v_rest_mV, dtype=float)
    beta = float(base.beta_per_mV)
    a_r, a_d = float(base.a_r_per_s), float(base.a_d_per_s)
    phi = 1.0 / (1.0 + np.exp(-beta * (v - np.asarray(base.v_th_mV, dtype=float))))
    dphi = beta * phi * (1.0 - phi)
    s = a_r * phi / (a_r * phi + a_d)
    ds = a_r * a_d * dphi / (a_r * phi + a_d) ** 2

    gap_ok = gap_ok & gap_ok.T & off
    g_gap = np.where(gap_ok, np.maximum(0.5 * (w + w.T), 0.0), 0.0)
    chem_part = np.where(chem_ok & off, w - g_gap, 0.0)
    e_chem = np.where(chem_part >= 0, E_EXC_MV, E_INH_MV)
    drive = ds[None, :] * np.abs(e_chem - v[:, None])  # coupling per unit conductance
    g_chem = np.abs(chem_part) / drive
    d = 1.0 + g_gap.sum(1) + g_chem @ s + np.asarray(base.g_tonic, dtype=float)
    m_wired = g_gap + g_chem * ds[None, :] * (e_chem - v[:, None])
    w_pep = np.where(off, (d[:, None] * w - m_wired) / dphi[None, :], 0.0)
    gap_current = g_gap @ v - g_gap.sum(1) * v
    chem_current = (g_chem * (e_chem - v[:, None])) @ s
    tonic_current = np.asarray(base.g_tonic) * (np.asarray(base.e_tonic_mV) - v)
    leak_rev = v - gap_current - chem_current - w_pep @ phi - tonic_current

    dtype = base.g_chem.dtype

    def arr(x):
        return jnp.asarray(x, dtype=dtype)

    model = eqx.tree_at(
        lambda m: (m.g_gap, m.g_chem, m.e_chem_mV, m.w_pep_mV, m.v_rest_mV),
        base,
        (arr(g_gap), arr(g_chem), arr(e_chem), arr(w_pep), arr(leak_rev)),
    )
    gain = unit * float(np.median(d)) / float(np.median(dphi))
    model = dataclasses.replace(model, dff_per_activity=gain)  # its identified readout
    _, v_rest, residual = small_signal_response(model, jnp.asarray(v, dtype=dtype), 3)
    return GradedFit(
        model, gain, np.zeros(0), float(residual), 1.0, np.asarray(v_rest, dtype=float)
    )
