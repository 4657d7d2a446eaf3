r"""The synthetic study: random against designed stimulation order, refitted after each batch.

Ground truth: a fitted linear network (:class:`~digiworm.models.LinearModel`, steady-state
responses :math:`R = -A^{-1}\mathrm{diag}(b)`) whose neurons' *output gains* are perturbed,
:math:`A_{ij} \to A_{ij} e^{\theta^*_j}` (:math:`i \ne j`), with :math:`\theta^* \sim
N(0, s^2)` drawn per seed — the parameters :mod:`digiworm.design._next` designs for. A trial
stimulates one neuron *j* and records every observed responder's steady response
:math:`R_{ij}(\theta^*)` plus Gaussian trial noise :math:`\sigma_i` (the atlas's responder
noise). After each batch of trials the gains are refitted (MAP: weighted least squares plus
the Gaussian prior :math:`N(0, s_0^2)`, damped Gauss–Newton with closed-form derivatives),
starting from the fitted model :math:`\theta = 0` that the experimenter knows.

Two orders of the same trials are compared: **random** (each trial stimulates a neuron drawn
uniformly) and **designed** (greedy A-optimal: each trial is the one that most reduces the
summed posterior variance of the gains, from the Fisher information at :math:`\theta = 0` —
a locally optimal design, computed before any data, as an experimenter would). Reported: the
gain error and the prediction of the true response matrix against trials, and the trials each
order needs to reach the error random stimulation reaches with its whole budget.

Variants (:func:`design_study` arguments): the designs may also stimulate neuron *sets*
together (a class, a pair; random stays single neurons), optimise the D or V criterion
(``StudySettings.criterion``), and identify other *unknowns* than the output gains —
:func:`wired_couplings`, the strongest single couplings on the wiring diagram's pairs
(:class:`Unknowns`: any parameters each scaling couplings that leave one neuron).

The steady-state derivatives are closed form: with :math:`P = A^{-1} A_{\mathrm{off}}`,
:math:`\partial R_{ij}/\partial\theta_k = -P_{ik} R_{kj}`, so one trial stimulating *j* has
Fisher information :math:`F_j = M_j^T M_j`, :math:`M_j = \mathrm{diag}(\sigma^{-1}_{obs})
P\,\mathrm{diag}(R_{:,j})` (the stimulated neuron's own response excluded), which the greedy
search holds as truncated SVD factors :math:`F_j \approx U_j U_j^T` and updates by the Woodbury
identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .._errors import DigiwormError

__all__ = [
    "StudyProblem",
    "StudySettings",
    "StudyResult",
    "Unknowns",
    "adaptive_run",
    "design_study",
    "fisher_factors",
    "gain_response",
    "greedy_a_order",
    "output_gains",
    "prediction_weight",
    "refit_gains",
    "wired_couplings",
]


@dataclass(frozen=True)
class StudySettings:
    """What :func:`design_study` runs."""

    seeds: int = 5
    max_trials: int = 3000
    checkpoints: int = 12
    """Trial counts at which both orders are refitted (geometric up to ``max_trials``)."""
    first_trials: int = 100
    truth_sd: float = 0.5
    """s.d. of the ground truth's log output gains around the fitted model."""
    prior_sd: float = 0.5
    """s.d. of the experimenter's Gaussian prior on them (the truth's own spread)."""
    energy: float = 0.99
    """Fraction of each Fisher matrix's trace kept by its truncated SVD factor (on the fitted
    worm: rank 19 at 0.99, 76 at 0.999, 130 at 0.9999 of up to 207; the greedy search's cost
    grows with the rank)."""
    max_time_constant_s: float = 30.0
    """Ground truths whose slowest mode relaxes slower than this are drawn again: a steady
    response is what a trial measures, and a network near (or past) instability has none
    within an experiment (with the fitted worm, 2 of the first 5 draws were unstable)."""
    criterion: str = "A"
    """What both designs optimise (:func:`greedy_a_order`): ``A`` (summed variance of the
    parameters: what the study scores), ``D`` or ``V`` (summed predictive variance of every
    scored response)."""
    adaptive: bool = True
    """Also run the adaptive order (refit, recompute the information, design the next block)."""
    batch: int = 20
    """Fewest trials the adaptive design plans at once (a lab's experiment: 10-30 trials)."""
    growth: float = 0.25
    """The adaptive design plans ``max(batch, growth × trials so far)`` trials at once: each
    re-design costs one Fisher computation per candidate, so blocks grow with the data while
    each block still moves the estimate."""

    def __post_init__(self):
        if self.seeds < 1 or self.checkpoints < 2:
            raise DigiwormError(f"need seeds >= 1, checkpoints >= 2; got {self.seeds}, "
                                f"{self.checkpoints}")  # fmt: skip
        if not 1 <= self.first_trials < self.max_trials:
            raise DigiwormError(
                f"need 1 <= first_trials < max_trials; got {self.first_trials}, {self.max_trials}"
            )
        if not (self.truth_sd > 0 and self.prior_sd > 0 and 0 < self.energy <= 1):
            raise DigiwormError("truth_sd and prior_sd must be > 0 and energy in (0, 1]")
        if not self.max_time_constant_s > 0:
            raise DigiwormError(f"max_time_constant_s must be > 0; got {self.max_time_constant_s}")
        if self.criterion not in CRITERIA:
            raise DigiwormError(f"criterion must be one of {', '.join(CRITERIA)}; "
                                f"got {self.criterion!r}")  # fmt: skip
        if self.batch < 1 or not self.growth >= 0:
            raise DigiwormError(f"need batch >= 1 and growth >= 0; got {self.batch}, {self.growth}")

    def trial_grid(self) -> np.ndarray:
        grid = np.geomspace(self.first_trials, self.max_trials, self.checkpoints)
        return np.unique(np.round(grid).astype(int))


def _check_model(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n = a.shape[0]
    if a.shape != (n, n) or b.shape != (n,):
        raise DigiwormError(f"need A (n, n) and b (n,); got {a.shape} and {b.shape}")
    if not np.all(np.linalg.eigvals(a).real < 0):
        raise DigiwormError("the network is unstable (an eigenvalue of A has real part >= 0)")
    return a, b


@dataclass(frozen=True, eq=False)
class Unknowns:
    r"""Which couplings of :math:`A` a study identifies, on a log scale.

    Parameter *k* multiplies the couplings ``A[post[e], pre[e]]`` of the edges *e* with
    ``group[e] == k`` by :math:`e^{\theta_k}`; every edge of a parameter leaves the same
    presynaptic neuron ``source[k]``, so the derivatives stay closed form:
    :math:`\partial R_{il}/\partial\theta_k = -P_{ik} R_{\mathrm{source}_k, l}` with
    :math:`P = A(\theta)^{-1} C`, :math:`C_{ik} = \sum_{e \in k,\ \mathrm{post}_e = i}
    A_e(\theta)`. Build with :func:`output_gains` (one gain per neuron's outputs) or
    :func:`wired_couplings` (single couplings of the wiring diagram).
    """

    post: np.ndarray
    pre: np.ndarray
    group: np.ndarray
    source: np.ndarray
    kind: str
    """``gains`` or ``couplings``."""

    @property
    def size(self) -> int:
        return int(self.source.size)

    def network(self, a: np.ndarray, theta: np.ndarray) -> np.ndarray:
        r"""Return :math:`A(\theta)`."""
        if self.kind == "gains":
            return np.where(np.eye(a.shape[0], dtype=bool), a, a * np.exp(theta)[None, :])
        out = a.copy()
        out[self.post, self.pre] = a[self.post, self.pre] * np.exp(theta[self.group])
        return out

    def coupling(self, a_theta: np.ndarray) -> np.ndarray:
        r"""Return :math:`C` (n × size): each parameter's couplings at :math:`A(\theta)`."""
        if self.kind == "gains":
            return a_theta - np.diag(np.diag(a_theta))
        c = np.zeros((a_theta.shape[0], self.size))
        np.add.at(c, (self.post, self.group), a_theta[self.post, self.pre])
        return c


def output_gains(a: np.ndarray) -> Unknowns:
    """One log gain per neuron scaling all its outgoing couplings (the default unknowns)."""
    n = np.asarray(a).shape[0]
    post, pre = np.nonzero(~np.eye(n, dtype=bool))
    return Unknowns(post, pre, pre, np.arange(n), "gains")


def wired_couplings(a: np.ndarray, support: np.ndarray, k: int) -> Unknowns:
    """Return the ``k`` strongest couplings of ``a`` (by ``|A_ij|``) on the pairs ``support``.

    ``support`` (bool, n × n; rows postsynaptic) marks the pairs the wiring diagram connects;
    each chosen coupling is its own parameter. Fewer than ``k`` wired nonzero couplings: all.
    """
    a = np.asarray(a, dtype=float)
    support = np.asarray(support, dtype=bool)
    n = a.shape[0]
    if support.shape != (n, n):
        raise DigiwormError(f"support must be a ({n}, {n}) boolean matrix; got {support.shape}")
    if k < 1:
        raise DigiwormError(f"k must be >= 1; got {k}")
    post, pre = np.nonzero(support & ~np.eye(n, dtype=bool) & (a != 0))
    if post.size == 0:
        raise DigiwormError("no nonzero coupling of the network lies on the wired pairs")
    top = np.argsort(-np.abs(a[post, pre]), kind="stable")[:k]
    top = top[np.lexsort((post[top], pre[top]))]
    post, pre = post[top], pre[top]
    return Unknowns(post, pre, np.arange(post.size), pre.copy(), "couplings")


def _unknowns(a: np.ndarray, unknowns: Unknowns | None) -> Unknowns:
    return output_gains(a) if unknowns is None else unknowns


def _response(a, b, theta, unknowns):
    a_theta = unknowns.network(a, theta)
    c = unknowns.coupling(a_theta)
    inv = np.linalg.inv(a_theta)
    return -inv * b[None, :], inv @ c, c, inv


def gain_response(a: np.ndarray, b: np.ndarray, theta: np.ndarray,
                  unknowns: Unknowns | None = None):  # fmt: skip
    r"""Return ``(R, P, C)`` at log parameters ``theta``; ``R`` the steady responses.

    :math:`R = -A(\theta)^{-1}\mathrm{diag}(b)`.

    :math:`P = A(\theta)^{-1}C(\theta)` gives the derivatives :math:`\partial R_{ij}/
    \partial\theta_k = -P_{ik}R_{s_k j}` (:class:`Unknowns`; default the output gains, where
    :math:`C = A_{\mathrm{off}}` and :math:`s_k = k`).
    """
    return _response(a, b, np.asarray(theta, float), _unknowns(a, unknowns))[:3]


def fisher_factors(
    a: np.ndarray,
    b: np.ndarray,
    sigma: np.ndarray,
    observed: np.ndarray,
    energy: float = 0.9999,
    sets: list[np.ndarray] | None = None,
    theta: np.ndarray | None = None,
    unknowns: Unknowns | None = None,
) -> np.ndarray:
    r"""Return factors ``U[e]`` (p × r) with ``U[e] @ U[e].T`` ≈ one trial's Fisher ``F_e``.

    The information is that of the model at log parameters ``theta`` (default 0: the fitted
    model) of ``unknowns`` (default: the output gains); the adaptive design recomputes it at
    each refitted estimate.

    Experiment *e* stimulates the neurons ``sets[e]`` together (default: each neuron alone),
    observing the summed response :math:`\sum_{j \in S} R_{:,j}` on the observed responders
    outside the set, so :math:`M_e = \mathrm{diag}(\sigma^{-1}_{obs})\,P\,
    \mathrm{diag}(\sum_{j\in S} R_{s,j})` (:math:`s` the parameters' source neurons). Each
    factor keeps the leading singular
    directions of :math:`M_e` holding ``energy`` of :math:`\mathrm{tr} F_e`; all are
    zero-padded to the largest rank kept.
    """
    a, b = _check_model(a, b)
    n = a.shape[0]
    sets = [np.array([j]) for j in range(n)] if sets is None else _checked_sets(sets, n)
    u = _unknowns(a, unknowns)
    theta = np.zeros(u.size) if theta is None else np.asarray(theta, float)
    r, p, _ = gain_response(a, b, theta, u)
    r = r[u.source]  # the responses each parameter's derivative scales
    rows = np.flatnonzero(np.asarray(observed, bool))  # the readouts: observed responders
    wp = p[rows] / np.asarray(sigma, float)[rows, None]
    factors, ranks = [], []
    # M_e's leading singular directions from the small Gram matrices M_e M_e^T (responders ×
    # responders), a batch of candidates at a time: if M M^T = Q diag(s^2) Q^T then M^T Q =
    # V diag(s) is the factor, with M^T M = (M^T Q)(M^T Q)^T exactly when every direction is
    # kept (the dropped ones hold at most 1 - energy of the trace)
    for start in range(0, len(sets), 32):
        chunk = sets[start : start + 32]
        m = np.stack([wp * r[:, members].sum(1)[None, :] for members in chunk])
        for i, members in enumerate(chunk):  # stimulated neurons' own responses are inputs
            m[i, np.isin(rows, members)] = 0.0
        lam, q = np.linalg.eigh(m @ np.swapaxes(m, 1, 2))
        lam, q = np.clip(lam[:, ::-1], 0.0, None), q[:, :, ::-1]
        for i in range(len(chunk)):
            total = lam[i].sum()
            keep = 1 if total == 0 else int(np.searchsorted(np.cumsum(lam[i]), energy * total) + 1)
            keep = min(keep, lam.shape[1])
            factors.append(m[i].T @ q[i, :, :keep])
            ranks.append(keep)
    out = np.zeros((len(sets), u.size, max(ranks)))
    for e, f in enumerate(factors):
        out[e, :, : f.shape[1]] = f
    return out


def prediction_weight(
    a: np.ndarray,
    b: np.ndarray,
    pairs: np.ndarray,
    theta: np.ndarray | None = None,
    unknowns: Unknowns | None = None,
) -> np.ndarray:
    r"""Return :math:`G^TG` for the predictions :math:`R_{ij}` on ``pairs`` (bool, n × n).

    :math:`\mathrm{tr}(G C G^T) = \mathrm{tr}(C\,G^TG)` is the summed predictive variance of
    those responses under parameter covariance *C* (the V-optimal criterion); *G* is taken at
    ``theta`` (default 0) of ``unknowns`` (default: the output gains).
    """
    a, b = _check_model(a, b)
    u = _unknowns(a, unknowns)
    theta = np.zeros(u.size) if theta is None else np.asarray(theta, float)
    r, p, _ = gain_response(a, b, theta, u)
    r = r[u.source]
    pairs = np.asarray(pairs, bool)
    out = np.zeros((u.size, u.size))
    for j in np.flatnonzero(pairs.any(0)):
        g = p[pairs[:, j]] * r[:, j][None, :]  # rows: d R_ij / d theta for the pairs of column j
        out += g.T @ g
    return out


def _gains(cov, factors, idx, criterion: str = "A", weight=None) -> np.ndarray:
    """Criterion gain of one more trial of each candidate in ``idx`` (Woodbury)."""
    u = factors[idx]  # (c, p, r)
    v = cov @ u  # (c, p, r); batched BLAS, not einsum's unoptimised loops
    m = np.eye(u.shape[2])[None] + np.swapaxes(u, 1, 2) @ v
    if criterion == "D":  # rise of log det information
        return np.linalg.slogdet(m)[1]
    x = np.linalg.solve(m, np.swapaxes(v, 1, 2))  # (c, r, p)
    if weight is not None:  # drop of tr(weight C)
        v = weight @ v
    return np.einsum("cpr,crp->c", v, x)  # drop of tr C


CRITERIA = ("A", "D", "V")


def greedy_a_order(
    factors: np.ndarray,
    prior_precision: np.ndarray,
    k: int,
    criterion: str = "A",
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``k`` trials (candidate indices, repeats allowed) chosen greedily.

    ``criterion``: ``A`` (largest drop of the summed gain variance tr C), ``D`` (largest rise
    of log det information) or ``V`` (largest drop of tr(weight · C): the summed predictive
    variance of the predictions whose :func:`prediction_weight` is ``weight``).

    Lazy evaluation: candidates keep their last computed gain; the best stale one is
    recomputed and taken if it still beats every other stale gain, with a full refresh every
    100 trials. That equals plain greedy when gains only shrink as information grows; the A
    criterion does not guarantee it (it is not submodular), so the tests compare this order
    with :func:`~digiworm.design.greedy_design` on small systems.
    """
    if criterion not in CRITERIA:
        raise DigiwormError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
    if criterion == "V" and weight is None:
        raise DigiwormError("criterion 'V' needs the prediction weight (prediction_weight)")
    if k < 1:
        raise DigiwormError(f"k must be >= 1; got {k}")
    cov = np.linalg.inv(prior_precision)
    n = factors.shape[0]
    wt = weight if criterion == "V" else None

    def gains_of(idx):
        return _gains(cov, factors, idx, criterion, wt)

    gains = gains_of(np.arange(n))
    chosen = []
    for t in range(k):
        if t % 100 == 0 and t:
            gains = gains_of(np.arange(n))
        while True:
            j = int(np.argmax(gains))
            gains[j] = gains_of(np.array([j]))[0]
            if n == 1 or gains[j] >= np.max(np.delete(gains, j)) - 1e-12 * abs(gains[j]):
                break
        u = factors[j]
        v = cov @ u
        cov = cov - v @ np.linalg.solve(np.eye(u.shape[1]) + u.T @ v, v.T)
        cov = 0.5 * (cov + cov.T)
        chosen.append(j)
    return np.asarray(chosen)


def _checked_sets(sets, n: int) -> list[np.ndarray]:
    """Return ``sets`` as index arrays, each non-empty and within ``[0, n)``."""
    sets = [np.asarray(members) for members in sets]
    for members in sets:
        if members.size == 0 or members.min() < 0 or members.max() >= n:
            raise DigiwormError(f"a stimulation set must hold neuron indices in [0, {n})")
    return sets


def _stimuli(sets: list[np.ndarray] | None, n: int) -> np.ndarray | None:
    """Return the indicator matrix (n × experiments) of the neurons each candidate stimulates."""
    if sets is None:
        return None
    out = np.zeros((n, len(sets)))
    for e, members in enumerate(_checked_sets(sets, n)):
        out[members, e] = 1.0
    return out


def _objective(a, b, theta, u, stim, weight, y, precision):
    r, p, c, inv = _response(a, b, theta, u)
    r = r if stim is None else r @ stim
    resid = r - y
    g = weight * resid
    value = 0.5 * np.sum(g * resid) + 0.5 * precision * np.sum(theta**2)
    return value, r, p, c, inv, g


def refit_gains(
    a: np.ndarray,
    b: np.ndarray,
    mean: np.ndarray,
    counts: np.ndarray,
    sigma: np.ndarray,
    observed: np.ndarray,
    prior_sd: float,
    theta0: np.ndarray | None = None,
    max_iter: int = 30,
    sets: list[np.ndarray] | None = None,
    unknowns: Unknowns | None = None,
) -> np.ndarray:
    r"""MAP estimate of the log parameters from mean responses of repeated trials.

    The parameters are ``unknowns`` (default: the output gains, written below; for others
    :math:`P` and the source rows of :math:`R` follow :class:`Unknowns`).

    Minimises :math:`L = \tfrac12\sum_{j}\sum_{i \ne j,\,obs} m_j (R_{ij}(\theta) - \bar
    y_{ij})^2 / \sigma_i^2 + \tfrac12\lVert\theta\rVert^2 / s_0^2` by damped Gauss–Newton
    with closed forms: gradient :math:`\partial L/\partial\theta_k = -\sum_j (A_{\mathrm{off}}^T
    A^{-T} G)_{kj} R_{kj}` (:math:`G` the weighted residuals) and Gauss–Newton matrix

    .. math:: H = Q \odot (R\,\mathrm{diag}(m) R^T) - Z\,\mathrm{diag}(m w) Z^T + I/s_0^2,

    :math:`Q = P^T \mathrm{diag}(w) P`, :math:`Z_{kj} = P_{jk} R_{kj}` (the second term removes
    each stimulated neuron's own response).

    Parameters
    ----------
    mean : array (n, E)
        Mean response of each responder (row) over the trials of each experiment (column):
        stimulating neuron *j* alone (``sets`` None, E = n) or the set ``sets[e]`` together
        (the stimulated neurons' own responses are inputs, left out).
    counts : array (E,)
        Trials per experiment (0: never run).
    """
    a, b = _check_model(a, b)
    n = a.shape[0]
    u = _unknowns(a, unknowns)
    stim = _stimuli(sets, n)
    w = np.asarray(observed, bool) / np.asarray(sigma, float) ** 2
    m = np.asarray(counts, float)
    if stim is None:
        rows_in, cols_in = np.arange(n), np.arange(n)
    else:
        rows_in, cols_in = np.nonzero(stim)
    if m.shape != (n if stim is None else stim.shape[1],) or np.shape(mean) != (n, m.size):
        raise DigiwormError(f"need mean (n, E) and counts (E,) for {m.size} experiments")
    weight = w[:, None] * m[None, :]
    weight[rows_in, cols_in] = 0.0
    y = np.nan_to_num(mean)
    precision = 1.0 / prior_sd**2
    theta = np.zeros(u.size) if theta0 is None else np.asarray(theta0, float).copy()
    value, r, p, c, inv, g = _objective(a, b, theta, u, stim, weight, y, precision)
    damping = 1e-6
    for _ in range(max_iter):
        rs = r[u.source]  # (params, E): the responses each derivative scales
        grad = -np.sum((c.T @ (inv.T @ g)) * rs, axis=1) + precision * theta
        q = p.T @ (w[:, None] * p)
        z = p[rows_in].T * rs[:, cols_in]  # the stimulated neurons' own (left-out) terms
        hess = q * ((rs * m[None, :]) @ rs.T) - (z * (m[cols_in] * w[rows_in])[None, :]) @ z.T
        hess += precision * np.eye(u.size)
        while True:
            step = np.linalg.solve(hess + damping * np.diag(np.diag(hess)), -grad)
            trial = _objective(a, b, theta + step, u, stim, weight, y, precision)
            if trial[0] <= value or damping > 1e6:
                break
            damping *= 10.0
        if trial[0] > value:
            break
        decrease = value - trial[0]
        theta = theta + step
        value, r, p, c, inv, g = trial
        damping = max(damping / 10.0, 1e-9)
        if decrease <= 1e-14 * max(value, 1e-30) or np.max(np.abs(step)) < 1e-9:
            break
    return theta


@dataclass
class StudyResult:
    """Curves of :func:`design_study` and the trials each order needs."""

    curves: pd.DataFrame
    """One row per (seed, order, trials): ``gain_rmse``, ``prediction_r``."""
    needed: pd.DataFrame
    """One row per seed: the target error (random's at the full budget) and the trials
    ``random`` and ``designed`` need to reach it (log-linear interpolation), and their ratio."""
    settings: StudySettings
    designed_counts: np.ndarray
    """Trials per candidate of the designed order at the full budget."""
    adaptive_counts: np.ndarray | None = None
    """Trials per candidate of the adaptive order at the full budget, mean over seeds."""
    candidates: list[str] | None = None
    """Names of the candidates (every neuron, then the sets stimulated together)."""
    set_sizes: list[int] | None = None
    """Neurons each candidate stimulates."""
    unknowns: str = "gains"
    """What was identified (``"302 gains"``, ``"300 couplings"``)."""

    def chosen(self, order: str = "designed", top: int = 10) -> dict:
        """Return the candidates an order ran most and its share of trials on sets of several."""
        counts = self.designed_counts if order == "designed" else self.adaptive_counts
        if counts is None:
            raise DigiwormError(f"the study has no {order!r} counts")
        counts = np.asarray(counts, float)
        names = self.candidates or [str(j) for j in range(counts.size)]
        sizes = np.asarray(self.set_sizes or [1] * counts.size)
        best = np.argsort(-counts, kind="stable")[:top]
        return {
            "trials_on_sets": float(counts[sizes > 1].sum() / counts.sum()),
            "top": [
                {"candidate": names[i], "neurons": int(sizes[i]), "trials": float(counts[i])}
                for i in best
                if counts[i] > 0
            ],  # fmt: skip
        }

    def ratio_by_budget(self, order: str = "designed", against: str = "random") -> pd.DataFrame:
        """Trials ratio (``against`` / ``order``) for targets set at each checkpoint.

        For each seed and each budget *t* of ``against`` (after the first), the target is its
        gain error at *t*; ``order``'s trials to reach it are interpolated. Rows:
        ``random_trials`` (``against``'s trials), ``ratio_mean``, ``ratio_sd``, ``seeds``
        (reaching the target).
        """
        if order not in set(self.curves["order"]) or against not in set(self.curves["order"]):
            raise DigiwormError(f"the study has no order {order!r} or {against!r}")
        rows = []
        for t in sorted(self.curves["trials"].unique())[1:]:
            ratios = []
            for _, g in self.curves.groupby("seed"):
                rnd = g[g["order"] == against].sort_values("trials")
                des = g[g["order"] == order].sort_values("trials")
                target = float(rnd.loc[rnd["trials"] == t, "gain_rmse"].iloc[0])
                needed = _trials_to_reach(des["trials"].to_numpy(), des["gain_rmse"].to_numpy(),
                                          target)  # fmt: skip
                if np.isfinite(needed):
                    ratios.append(t / needed)
            rows.append({"random_trials": int(t),
                         "ratio_mean": float(np.mean(ratios)) if ratios else float("nan"),
                         "ratio_sd": float(np.std(ratios, ddof=1)) if len(ratios) > 1 else 0.0,
                         "seeds": len(ratios)})  # fmt: skip
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        def spread(column: str) -> dict:
            ratio = self.needed[column].to_numpy(dtype=float)
            finite = ratio[np.isfinite(ratio)]
            return {
                "ratio_mean": float(np.mean(finite)) if finite.size else None,
                "ratio_sd": float(np.std(finite, ddof=1)) if finite.size > 1 else None,
                "ratio_min": float(np.min(finite)) if finite.size else None,
                "ratio_max": float(np.max(finite)) if finite.size else None,
                "seeds_reaching_target": int(finite.size),
            }

        out = {
            **spread("ratio"),
            "seeds": int(len(self.needed)),
            "unknowns": self.unknowns,
            "designed_chose": self.chosen("designed"),
            "ratio_by_budget": self.ratio_by_budget().to_dict("records"),
            "settings": asdict(self.settings),
        }
        if "ratio_adaptive" in self.needed:
            out["adaptive"] = {
                **spread("ratio_adaptive"),
                "ratio_by_budget": self.ratio_by_budget("adaptive").to_dict("records"),
            }
            out["adaptive_chose"] = self.chosen("adaptive")
            out["adaptivity_gain"] = {
                **spread("adaptivity_gain"),
                "ratio_by_budget": self.ratio_by_budget("adaptive", "designed").to_dict("records"),
            }
        return out


def _trials_to_reach(trials: np.ndarray, error: np.ndarray, target: float) -> float:
    """First trial count where ``error`` falls to ``target`` (interpolated in log trials)."""
    below = np.flatnonzero(error <= target)
    if below.size == 0:
        return float("nan")
    k = below[0]
    if k == 0:
        return float(trials[0])
    x0, x1 = np.log(trials[k - 1]), np.log(trials[k])
    e0, e1 = error[k - 1], error[k]
    frac = (e0 - target) / (e0 - e1) if e0 != e1 else 1.0
    return float(np.exp(x0 + frac * (x1 - x0)))


def _data(order: np.ndarray, noise: np.ndarray, r_true: np.ndarray, stim=None):
    """Mean response per experiment and trial counts of the trials ``order`` ran.

    ``order`` indexes the columns of ``stim`` (the candidates' stimulated neurons; None:
    single neurons); trial *t* adds the noise ``noise[t]`` whatever it stimulates.
    """
    n = r_true.shape[0]
    size = n if stim is None else stim.shape[1]
    counts = np.bincount(order, minlength=size).astype(float)
    sums = np.zeros((n, size))
    np.add.at(sums.T, order, noise[: len(order)])
    response = r_true if stim is None else r_true @ stim
    return response + sums / np.maximum(counts, 1.0)[None, :], counts


def _information(factors: np.ndarray, counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Prior precision plus the Fisher information of ``counts`` trials of each candidate."""
    used = np.flatnonzero(counts)
    if used.size == 0:
        return prior.copy()
    x = np.concatenate(list(factors[used] * np.sqrt(counts[used])[:, None, None]), axis=1)
    return prior + x @ x.T


@dataclass(frozen=True, eq=False)
class StudyProblem:
    """What one study designs for: the network, its readout, the unknowns, the candidates."""

    a: np.ndarray
    b: np.ndarray
    sigma: np.ndarray
    observed: np.ndarray
    unknowns: Unknowns
    sets: list[np.ndarray] | None = None
    """Candidate experiments (neuron index sets stimulated together); None: single neurons."""

    @property
    def candidates(self) -> int:
        return self.a.shape[0] if self.sets is None else len(self.sets)

    @cached_property
    def stim(self) -> np.ndarray | None:
        return _stimuli(self.sets, self.a.shape[0])

    def factors(self, energy: float, theta: np.ndarray | None = None) -> np.ndarray:
        return fisher_factors(self.a, self.b, self.sigma, self.observed, energy, sets=self.sets,
                              theta=theta, unknowns=self.unknowns)  # fmt: skip

    def weight(self, criterion: str, theta: np.ndarray | None = None) -> np.ndarray | None:
        """Return the V criterion's weight: every scored prediction (observed, off-diagonal)."""
        if criterion != "V":
            return None
        pairs = self.observed[:, None] & ~np.eye(self.a.shape[0], dtype=bool)
        return prediction_weight(self.a, self.b, pairs, theta, self.unknowns)

    def refit(self, order, noise, r_true, prior_sd, theta) -> np.ndarray:
        mean, counts = _data(order, noise, r_true, self.stim)
        return refit_gains(self.a, self.b, mean, counts, self.sigma, self.observed, prior_sd,
                           theta, sets=self.sets, unknowns=self.unknowns)  # fmt: skip


def adaptive_run(problem: StudyProblem, settings, grid, noise, r_true, first, score):
    """Run the adaptive order on one ground truth: refit, re-design, run the next block.

    ``first`` is the fixed design's opening (at the fitted model, with no data, both designs
    choose the same trials). Before each block the parameters are refitted to the trials so
    far, the Fisher information of every candidate is recomputed at that estimate, and the
    block (``max(batch, growth × trials so far)`` trials, ending at the next checkpoint at the
    latest) is chosen greedily by ``settings.criterion`` (sequential conditioning: its trials
    differ as the information they add is accounted for). ``score(t, theta)`` is called at
    each checkpoint ``t`` of ``grid`` with the estimate refitted to the first ``t`` trials.
    Returns the order (indices of the problem's candidates).
    """
    s = settings
    prior = np.eye(problem.unknowns.size) / s.prior_sd**2
    order = np.asarray(first[: min(s.batch, int(grid[0]))], dtype=int)
    theta = np.zeros(problem.unknowns.size)
    for t in grid:
        while len(order) < t:
            theta = problem.refit(order, noise, r_true, s.prior_sd, theta)
            counts = np.bincount(order, minlength=problem.candidates)
            block = min(int(t) - len(order), max(s.batch, int(np.ceil(s.growth * len(order)))))
            factors = problem.factors(s.energy, theta)
            chosen = greedy_a_order(factors, _information(factors, counts, prior), block,
                                    s.criterion, problem.weight(s.criterion, theta))  # fmt: skip
            order = np.concatenate([order, chosen])
        theta = problem.refit(order[:t], noise, r_true, s.prior_sd, theta)
        score(int(t), theta)
    return order


def _settling_truth(a, settings, rng, unknowns: Unknowns | None = None, tries: int = 1000):
    """Draw log parameters around the fit until the network settles within the experiment.

    Returns the parameters and how many draws were refused (their slowest mode relaxed slower
    than ``settings.max_time_constant_s``, or grew).
    """
    u = _unknowns(a, unknowns)
    for redraws in range(tries):
        theta = rng.normal(0.0, settings.truth_sd, u.size)
        lead = np.linalg.eigvals(u.network(a, theta)).real.max()
        if lead < -1.0 / settings.max_time_constant_s:
            return theta, redraws
    raise DigiwormError(
        f"no ground truth within {tries} draws settles faster than "
        f"{settings.max_time_constant_s} s; lower truth_sd or raise max_time_constant_s"
    )


def design_study(
    a: np.ndarray,
    b: np.ndarray,
    sigma: np.ndarray,
    observed: np.ndarray,
    settings: StudySettings | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    sets: dict[str, np.ndarray] | None = None,
    unknowns: Unknowns | None = None,
    names: list[str] | None = None,
) -> StudyResult:
    """Run the random-vs-designed study on the network ``(A, b)`` (see the module docstring).

    Orders: ``random`` (single neurons drawn uniformly), ``designed`` (fixed, from the fitted
    model) and, with ``settings.adaptive``, ``adaptive`` (:func:`adaptive_run`); both designs
    use ``settings.criterion``. Every order of a seed sees the same ground truth (drawn again
    until it settles, :func:`_settling_truth`) and the same trial noise, trial by trial.

    Parameters
    ----------
    a, b : arrays (n, n), (n,)
        The fitted network (``model.a_per_s``, ``model.b_per_s``); stable.
    sigma : array (n,)
        Responder trial noise s.d. (> 0).
    observed : bool array (n,)
        Responders the experiments record.
    sets : dict name -> neuron indices, optional
        Further candidates for the designs besides every neuron alone: neurons stimulated
        together (a class, a pair), named.
    unknowns : Unknowns, optional
        What is identified (default :func:`output_gains`; :func:`wired_couplings`).
    names : list of str, optional
        Neuron names, for the candidates' names in the result.
    """
    s = StudySettings() if settings is None else settings
    a, b = _check_model(a, b)
    n = a.shape[0]
    sigma = np.asarray(sigma, float)
    observed = np.asarray(observed, bool)
    if sigma.shape != (n,) or not np.all(sigma > 0):
        raise DigiwormError(f"sigma must be {n} values > 0")
    if observed.shape != (n,) or not observed.any():
        raise DigiwormError(f"observed must be {n} booleans, at least one True")
    names = [str(j) for j in range(n)] if names is None else [str(x) for x in names]
    if len(names) != n:
        raise DigiwormError(f"names must name the {n} neurons; got {len(names)}")
    candidates, labels = None, list(names)
    if sets:
        candidates = [np.array([j]) for j in range(n)] + [np.asarray(v) for v in sets.values()]
        labels += [str(k) for k in sets]
    u = _unknowns(a, unknowns)
    problem = StudyProblem(a, b, sigma, observed, u, candidates)
    grid = s.trial_grid()
    factors = problem.factors(s.energy)
    if progress is not None:
        progress(f"Fisher factors: rank <= {factors.shape[2]} of {u.size} {u.kind}; greedy "
                 f"{s.criterion}-optimal order over {len(labels)} candidates")  # fmt: skip
    prior = np.eye(u.size) / s.prior_sd**2
    designed = greedy_a_order(factors, prior, int(grid[-1]), s.criterion,
                              problem.weight(s.criterion))  # fmt: skip
    off = ~np.eye(n, dtype=bool)
    scored = off & observed[:, None]
    rows, needed = [], []
    adaptive_counts = np.zeros(len(labels), int)
    for seed in range(s.seeds):
        rng = np.random.default_rng(seed)
        theta_true, redraws = _settling_truth(a, s, rng, u)
        r_true = gain_response(a, b, theta_true, u)[0]
        random_order = rng.integers(0, n, int(grid[-1]))  # single neurons: the first n
        noise = rng.normal(size=(int(grid[-1]), n)) * sigma[None, :]
        errors: dict[str, list[float]] = {}

        def score(name, t, theta, seed=seed, truth=theta_true, r_true=r_true, errors=errors):
            r_hat = gain_response(a, b, theta, u)[0]
            rmse = float(np.sqrt(np.mean((theta - truth) ** 2)))
            pred_r = float(np.corrcoef(r_hat[scored], r_true[scored])[0, 1])
            rows.append({"seed": seed, "order": name, "trials": int(t),
                         "gain_rmse": rmse, "prediction_r": pred_r})  # fmt: skip
            errors.setdefault(name, []).append(rmse)

        for name, order in (("random", random_order), ("designed", designed)):
            theta = np.zeros(u.size)
            for t in grid:
                theta = problem.refit(order[:t], noise, r_true, s.prior_sd, theta)
                score(name, t, theta)
        if s.adaptive:
            order = adaptive_run(problem, s, grid, noise, r_true, designed,
                                 lambda t, theta: score("adaptive", t, theta))  # fmt: skip
            adaptive_counts += np.bincount(order, minlength=len(labels))
        target = errors["random"][-1]
        reach = {k: _trials_to_reach(grid, np.asarray(v), target) for k, v in errors.items()}
        row = {"seed": seed, "truth_redraws": redraws, "target_gain_rmse": float(target), **reach,
               "ratio": reach["random"] / reach["designed"]}  # fmt: skip
        message = f"designed needs {reach['designed']:.0f} trials for random's " \
                  f"{reach['random']:.0f} (ratio {row['ratio']:.2f})"  # fmt: skip
        if s.adaptive:
            row["ratio_adaptive"] = reach["random"] / reach["adaptive"]
            row["adaptivity_gain"] = reach["designed"] / reach["adaptive"]
            message += f"; adaptive {reach['adaptive']:.0f} (ratio {row['ratio_adaptive']:.2f})"
        needed.append(row)
        if progress is not None:
            progress(f"seed {seed + 1}/{s.seeds}: {message}")
    counts = np.bincount(designed, minlength=len(labels))
    sizes = [1] * n + [len(v) for v in (sets or {}).values()]
    return StudyResult(pd.DataFrame(rows), pd.DataFrame(needed), s, counts,
                       adaptive_counts / s.seeds if s.adaptive else None,
                       candidates=labels, set_sizes=sizes,
                       unknowns=f"{u.size} {u.kind}")  # fmt: skip
