"""``simulate``: integrate a model under a protocol, batched over conditions (and models).

One compiled function per shape runs every condition with ``jax.vmap``: a ``lax.scan`` over
save points whose body scans the integration steps between them (checkpointed, so gradients
through long simulations keep memory bounded). Activity models are read out through a calcium
indicator; models identified from imaging (``output == "dff"``) are read out directly.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree

from .._errors import DigiwormError
from ..models import AbstractModel, CalciumIndicator, GCaMP6s
from ._protocol import Noise, Protocol

__all__ = [
    "batch_strategy",
    "model_precision",
    "rest_residual",
    "rest_stability",
    "rest_state",
    "simulate",
    "simulate_arrays",
    "simulate_ensemble",
]

# largest stable lambda*dt on the negative real axis for each explicit method
_STABILITY = {"euler": 2.0, "heun": 2.0, "rk4": 2.785}


def model_precision(model) -> contextlib.AbstractContextManager:
    """Return a context in which JAX computes in the precision of ``model``'s float arrays.

    A model with any float64 array leaf (the kernel model: its kernels cancel large factors)
    gets JAX's 64-bit mode for this thread only (``jax.enable_x64(True)``, a context-scoped,
    thread-local setting); any other model gets a no-op context. The process-wide
    ``jax_enable_x64`` flag is never changed, so a long-running process (``digiworm serve``)
    gives identical answers to identical requests whatever other threads run.

    Parameters
    ----------
    model : pytree
        A model (or any pytree); only its inexact array leaves are looked at.

    Returns
    -------
    contextlib.AbstractContextManager
        ``jax.enable_x64(True)`` or ``contextlib.nullcontext()``.

    Examples
    --------
    >>> import numpy as np
    >>> with model_precision({"g_per_s": np.zeros(3)}):  # a float64 leaf: 64-bit JAX here
    ...     print(jnp.asarray(np.zeros(3)).dtype)
    float64
    """
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    if any(x.dtype in (np.float64, np.complex128) for x in leaves):
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _in_model_precision(fn):
    """Run ``fn(model, ...)`` inside :func:`model_precision` of its first argument."""
    first = next(iter(inspect.signature(fn).parameters))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with model_precision(args[0] if args else kwargs[first]):
            return fn(*args, **kwargs)

    return wrapper


def _steps(total: float, step: float, what: str, unit: str = "s") -> int:
    """Return how many ``step``-long steps make ``total`` (in ``unit``); error unless whole."""
    if not (math.isfinite(total) and math.isfinite(step) and total > 0 and step > 0):
        raise DigiwormError(f"{what}: times must be finite and > 0; got {total!r} and {step!r}")
    n = total / step
    k = round(n)
    if k < 1 or abs(n - k) > 1e-6 * max(1.0, n):
        raise DigiwormError(
            f"{what}: {total:g} {unit} is not a whole number of {step:g} {unit} steps"
        )
    return int(k)


def _check_finite_model(model: AbstractModel) -> None:
    for leaf in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)):
        if not bool(jnp.all(jnp.isfinite(leaf))):
            raise DigiwormError(
                f"{type(model).__name__} has NaN or infinite parameters; fix or rebuild the model"
            )


def _resolve_method(model, method: str | None) -> str:
    """Return the method to use: ``exact`` for linear models, else the model's default for None.

    :func:`_check_args` checks the result against ``model.methods``.
    """
    if model.output == "dff":
        return "exact"
    return model.methods[0] if method is None else method


def _check_args(model, duration_s, dt_s, save_dt_s, method) -> tuple[int, int]:
    for name, value in (("duration", duration_s), ("dt", dt_s), ("save_dt", save_dt_s)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise DigiwormError(f"{name} must be a finite number of seconds > 0; got {value!r}")
    if dt_s >= duration_s:
        raise DigiwormError(f"dt ({dt_s:g} s) must be smaller than the duration ({duration_s:g} s)")
    if save_dt_s < dt_s:
        raise DigiwormError(f"save_dt ({save_dt_s:g} s) must be >= dt ({dt_s:g} s)")
    if method not in model.methods and method != "exact":
        raise DigiwormError(
            f"unknown method {method!r} for {type(model).__name__}; use one of "
            f"{', '.join(model.methods)}"
        )
    if method == "exact" and model.output != "dff":
        raise DigiwormError(
            f"method 'exact' is only for linear models; {type(model).__name__} needs one of "
            f"{', '.join(model.methods)}"
        )
    n_inner = _steps(save_dt_s, dt_s, "save_dt")
    n_save = _steps(duration_s, save_dt_s, "duration")
    rate = model.max_rate()
    if rate is not None and method in _STABILITY:
        rate = float(rate)
        limit = _STABILITY[method] / rate
        if dt_s > limit:
            scale = 10 ** (math.floor(math.log10(limit)) - 2)
            suggestion = math.floor(limit / scale) * scale  # 3 significant digits, rounded down
            raise DigiwormError(
                f"dt = {dt_s:g} s is unstable for this model with method {method!r} (fastest "
                f"rate {rate:.3g} 1/s); use dt <= {suggestion:.3g} s"
            )
    return n_save, n_inner


def _indicator_step(ind: CalciumIndicator, c, a0, a1, dt):
    """Heun step of the indicator with activity interpolated linearly over the step."""
    k1 = ind.vector_field(0.0, c, a0)
    mid = jax.tree_util.tree_map(lambda x, k: x + dt * k, c, k1)
    k2 = ind.vector_field(0.0, mid, a1)
    return jax.tree_util.tree_map(lambda x, p, q: x + 0.5 * dt * (p + q), c, k1, k2)


@_in_model_precision
def rest_state(
    model: AbstractModel,
    dt_s: float = 0.01,
    settle_s: float = 5.0,
    method: str | None = None,
    newton_steps: int = 8,
):
    r"""Return the model's resting state: settle without input, then polish with Newton.

    The model is integrated for ``settle_s`` seconds from ``init_state`` (which brings it into
    the basin of the stable rest), then ``newton_steps`` Newton–Krylov iterations solve
    ``f(y) = 0`` to working precision: each Newton step solves :math:`J\,dx = f` by GMRES with
    Jacobian–vector products (``jax.jvp``), so no Jacobian is ever formed and the cost stays a
    few vector-field evaluations per step at any network size. If Newton does not reduce the
    residual, the settled state is kept.
    """
    n = max(1, round(settle_s / dt_s))
    method = model.methods[0] if method in (None, "exact") else method
    y = _settle(model, model.init_state(), n, dt_s, method)
    return _newton(model, y, newton_steps) if newton_steps else y


def rest_residual(model: AbstractModel, y) -> jax.Array:
    """Return max |dy/dt| at state ``y`` without input (0 at an exact rest)."""
    flat, unravel = ravel_pytree(y)
    zero = jnp.zeros(model.n_neurons, dtype=flat.dtype)
    return jnp.max(jnp.abs(ravel_pytree(model.vector_field(0.0, y, zero))[0]))


def rest_stability(model: AbstractModel, y=None, *, tol: float = 1e-6) -> dict:
    """Return the leading eigenvalue of the model's Jacobian at rest (is the rest stable?).

    ``y`` defaults to :func:`rest_state`. The Jacobian is never formed: ARPACK
    (``scipy.sparse.linalg.eigs``, the eigenvalue of largest real part) runs on
    Jacobian–vector products (``jax.jvp``), so a brain of 10⁵ neurons costs a few hundred
    vector-field evaluations. Returns ``leading_per_s`` (complex, 1/s), ``stable`` (its real
    part < 0), ``time_constant_s`` (−1 / real part: how slowly the slowest mode relaxes, or
    grows if negative) and ``rest_residual`` (max |dy/dt| at ``y``).
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

    y = rest_state(model) if y is None else y
    flat, unravel = ravel_pytree(y)
    if not bool(jnp.all(jnp.isfinite(flat))):
        raise DigiwormError(
            "the state is not finite: no rest was found (settling diverged: a network too "
            "strongly coupled for the settle's step, or with no stable rest)"
        )

    @eqx.filter_jit  # the model and state as arguments: closed over, XLA folds them as constants
    def jv(model, flat, v):
        zero = jnp.zeros(model.n_neurons, dtype=flat.dtype)

        def f(x):
            return ravel_pytree(model.vector_field(0.0, unravel(x), zero))[0]

        return jax.jvp(f, (flat,), (v.astype(flat.dtype),))[1]

    dim = flat.shape[0]

    def matvec(v):
        return np.asarray(jv(model, flat, jnp.asarray(v.real)))

    op = LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)
    if dim < 3:  # ARPACK needs k < dim - 1: a tiny model's full Jacobian
        jac = np.stack([op.matvec(e) for e in np.eye(dim)], axis=1)
        vals = np.linalg.eigvals(jac)
    else:
        try:
            vals = eigs(op, k=1, which="LR", tol=tol, maxiter=50 * dim,
                        return_eigenvectors=False, v0=np.ones(dim))  # fmt: skip
        except ArpackNoConvergence as err:
            raise DigiwormError(
                f"the leading eigenvalue of a {dim:,}-dimensional Jacobian did not converge "
                f"(ARPACK, tol {tol}); pass a larger tol"
            ) from err
    lead = complex(vals[np.argmax(vals.real)])
    return {"leading_per_s": lead, "stable": lead.real < 0,
            "time_constant_s": -1.0 / lead.real if lead.real else float("inf"),
            "rest_residual": float(rest_residual(model, y))}  # fmt: skip


@eqx.filter_jit
def _newton(model, y, steps: int):
    flat, unravel = ravel_pytree(y)
    zero = jnp.zeros(model.n_neurons, dtype=flat.dtype)

    def f(x):
        return ravel_pytree(model.vector_field(0.0, unravel(x), zero))[0]

    def body(_, x):
        fx = f(x)

        def jv(v):
            return jax.jvp(f, (x,), (v,))[1]

        dx, _ = jax.scipy.sparse.linalg.gmres(jv, fx, tol=1e-10, restart=40, maxiter=4)
        return x - dx

    polished = jax.lax.fori_loop(0, steps, body, flat)
    before, after = jnp.max(jnp.abs(f(flat))), jnp.max(jnp.abs(f(polished)))
    better = jnp.isfinite(after) & (after <= before)
    return unravel(jnp.where(better, polished, flat))


@eqx.filter_jit
def _settle(model, y0, n: int, dt: float, method: str):
    step = model.stepper(dt, method)
    zero = jnp.zeros(model.n_neurons, dtype=jax.tree_util.tree_leaves(y0)[0].dtype)

    def body(y, k):
        return step(k * dt, y, zero), None

    return jax.lax.scan(body, y0, jnp.arange(n))[0]


def _condition(model, step, ind, noise, y0, c0, f0, amp, onset, dur, key, n_save, n_inner, dt):
    """Simulate one condition; return (readout, dff, stimulus) at every save point."""
    n = model.n_neurons
    dtype = jax.tree_util.tree_leaves(y0)[0].dtype  # the model's precision sets the input's
    amp = amp.astype(dtype)

    def input_at(k, eta):
        """Input held over step k (protocol + noise) and the noise state it used."""
        u = Protocol.drive(amp, onset, dur, k * dt, dt).astype(dtype)
        if noise is not None:
            z = jax.random.normal(jax.random.fold_in(key, k), (n,), dtype=dtype)
            eta = noise.step(eta, z, dt)
            u = u + eta
        return u, eta

    def one_step(carry, k):
        y, c, eta, u = carry  # u: the input held over this step
        y_new = step(k * dt, y, u)
        if ind is not None:
            c = _indicator_step(ind, c, model.readout(y), model.readout(y_new), dt)
        u_next, eta = input_at(k + 1, eta)
        return (y_new, c, eta, u_next), None

    @jax.checkpoint
    def block(carry, b):
        carry, _ = jax.lax.scan(one_step, carry, b * n_inner + jnp.arange(n_inner))
        return carry

    def record(carry, t):
        y, c, _, u = carry
        out = model.readout(y)
        dff = out if ind is None else jnp.where(jnp.isnan(out), jnp.nan, ind.dff(c[1], f0, t))
        return out, dff, u  # u: the input held over the step that starts at t

    u0, eta0 = input_at(0, jnp.zeros(n, dtype=dtype))
    carry0 = (y0, c0, eta0, u0)

    def outer(carry, b):
        carry = block(carry, b)
        return carry, record(carry, (b + 1) * n_inner * dt)

    _, recs = jax.lax.scan(outer, carry0, jnp.arange(n_save))
    first = record(carry0, 0.0)
    return tuple(jnp.concatenate([f[None], r]) for f, r in zip(first, recs))


@eqx.filter_jit
def _run(model, amplitude, onset_s, duration_s, ind, noise, y0, keys, n_save, n_inner, dt, method):
    # the protocol's arrays only: its labels are static and would retrace per condition name
    step = model.stepper(dt, method)
    if ind is not None:
        rest_activity = model.readout(y0)
        c0 = ind.init(jnp.nan_to_num(rest_activity))
        f0 = c0[1]
    else:
        c0 = f0 = None

    def per_condition(amp, onset, dur, key):
        return _condition(
            model, step, ind, noise, y0, c0, f0, amp, onset, dur, key, n_save, n_inner, dt
        )

    return jax.vmap(per_condition)(amplitude, onset_s, duration_s, keys)


def _indicator_name(indicator) -> str:
    if type(indicator).__name__ == "LinearIndicator":
        return f"linear, identified gain {float(indicator.gain):.4g} dF/F per activity"
    return "GCaMP6s-like (CalciumIndicator)"


def _default_indicator(model):
    """GCaMP6s for activity models; their identified linear readout where they have one."""
    if model.output != "activity":
        return None
    gain = getattr(model, "dff_per_activity", None)
    if gain is not None:
        from ..models import LinearIndicator

        return LinearIndicator(gain)
    return GCaMP6s()


def _prepare(model, protocol, duration_s, dt_s, save_dt_s, method, indicator):
    """Check a run before compute; return ``(method, n_save, indicator)`` resolved."""
    if not isinstance(model, AbstractModel):
        raise DigiwormError(f"model must be a digiworm model; got {type(model).__name__}")
    if protocol.amplitude.shape[1] != model.n_neurons:
        raise DigiwormError(
            f"protocol drives {protocol.amplitude.shape[1]} neurons but the model has "
            f"{model.n_neurons}"
        )
    method = _resolve_method(model, method)
    n_save, _ = _check_args(model, duration_s, dt_s, save_dt_s, method)
    _check_finite_model(model)
    if indicator == "auto":
        indicator = _default_indicator(model)
    if indicator is not None and model.output != "activity":
        raise DigiwormError(f"{type(model).__name__} already outputs dF/F; use indicator=None")
    return method, n_save, indicator


@_in_model_precision
def simulate_arrays(
    model: AbstractModel,
    protocol: Protocol,
    duration_s: float,
    dt_s: float,
    *,
    save_dt_s: float = 0.5,
    method: str | None = None,
    indicator: CalciumIndicator | None = None,
    noise: Noise | None = None,
    key: jax.Array | None = None,
    settle_s: float = 5.0,
):
    """Differentiable core of :func:`simulate`: arrays only, no checks that need concrete values.

    Use it inside ``jax.grad`` / ``jax.jit`` (fitting, sensitivity analysis); it skips the
    stability and NaN checks of :func:`simulate` (run those once outside).

    Returns
    -------
    readout, dff, stimulus : arrays, shape (condition, time, neuron)
        Model readout, ΔF/F (the readout itself when ``indicator`` is None) and the input.
    """
    n_save = _steps(duration_s, save_dt_s, "duration")
    n_inner = _steps(save_dt_s, dt_s, "save_dt")
    method = _resolve_method(model, method)
    keys = jax.random.split(
        key if key is not None else jax.random.PRNGKey(0), protocol.n_conditions
    )
    y0 = (
        rest_state(model, dt_s, settle_s, method)
        if model.output == "activity"
        else model.init_state()
    )
    return _run(
        model, protocol.amplitude, protocol.onset_s, protocol.duration_s, indicator, noise, y0,
        keys, n_save, n_inner, dt_s, method,
    )  # fmt: skip


def simulate(
    model,
    protocol: Protocol,
    duration_s: float,
    dt_s: float | None = None,
    *,
    save_dt_s: float | None = None,
    method: str | None = None,
    indicator: CalciumIndicator | str | None = "auto",
    noise: Noise | None = None,
    key: jax.Array | None = None,
    settle_s: float = 5.0,
    medium=None,
) -> xr.Dataset:
    """Simulate ``model`` under every condition of ``protocol``.

    The one entry point for a brain alone and for a brain in a body: given a
    :class:`~digiworm.body.Worm`, it runs the worm once per condition in ``medium`` (see
    :func:`~digiworm.body.simulate_worm_protocol`; ``dt_s`` is then the body's step, default
    1 ms, the output is saved every brain step, and ``key`` seeds the command switch).

    Parameters
    ----------
    model : AbstractModel or Worm
        Graded network, linear or kernel model (one unbatched model), or a worm.
    protocol : Protocol
        Conditions to run (vmapped).
    duration_s : float
        Simulated time after rest, s.
    dt_s : float, optional
        Integration step, s (must divide ``save_dt_s``; default 0.01 s; a worm's body: 1 ms).
    save_dt_s : float, optional
        Sampling interval of the output, s (default 0.5 s, the atlas's imaging volume period;
        a worm saves every brain step and takes none).
    method : {"heun", "euler", "rk4", "exponential"}, optional
        Fixed-step method: explicit Runge–Kutta for the graded network (default Heun),
        exponential Euler for conductance networks (their only method); linear models step
        exactly. None takes the model's default.
    indicator : CalciumIndicator, "auto" or None
        Indicator for activity models (``"auto"`` = GCaMP6s); must be None for ΔF/F models.
    noise : Noise, optional
        Ornstein–Uhlenbeck input for spontaneous activity (needs ``key``).
    key : jax.random.PRNGKey, optional
        Seed; the result is deterministic given it.
    settle_s : float
        Time run without input before ``t = 0``, then polished to the exact rest by Newton
        iterations (activity models; see :func:`rest_state`).
    medium : digiworm.body.Medium
        A worm's medium (required for a worm; brains alone take none).

    Returns
    -------
    xarray.Dataset, dims (condition, time, neuron)
        ``dff`` (fractional ΔF/F as imaged), ``stimulus`` (input at each sample) and, for
        activity models, ``activity`` (the model's readout in [0, 1]). NaN = ablated neuron.

    Raises
    ------
    DigiwormError
        For a non-positive or non-finite duration/dt, dt >= duration, a dt the model cannot
        integrate stably, NaN parameters, or noise without a key.
    """
    from ..body._worm import Worm

    if isinstance(model, Worm):
        return _simulate_worm(
            model, protocol, duration_s, dt_s, save_dt_s, method, indicator, noise, key, medium
        )
    if medium is not None:
        raise DigiwormError("medium is for a worm (digiworm.body.Worm); a brain alone has no body")
    return _simulate_brain(
        model, protocol, duration_s, 0.01 if dt_s is None else dt_s,
        save_dt_s=0.5 if save_dt_s is None else save_dt_s, method=method,
        indicator=indicator, noise=noise, key=key, settle_s=settle_s,
    )  # fmt: skip


def _simulate_worm(worm, protocol, duration_s, dt_s, save_dt_s, method, indicator, noise, key,
                   medium) -> xr.Dataset:  # fmt: skip
    """:func:`simulate` for a worm: refuse what a worm does not take, then run it."""
    from ..body import Medium
    from ..body._worm import simulate_worm_protocol

    unused = {
        "save_dt_s": save_dt_s is not None, "method": method is not None,
        "indicator": indicator != "auto", "noise": noise is not None,
    }  # fmt: skip
    if any(unused.values()):
        names = ", ".join(k for k, v in unused.items() if v)
        raise DigiwormError(
            f"a worm takes no {names}: it saves every brain step ({worm.brain_dt_s:g} s), "
            "steps its brain with the brain's own method, and its noise is the command "
            "switch's (seeded by key)"
        )
    if not isinstance(medium, Medium):
        raise DigiwormError(
            f"a worm needs a medium, e.g. medium=Medium.agar() or Medium.water(); got {medium!r}"
        )
    if key is None:
        raise DigiwormError("a worm's command switch is noisy: pass key=jax.random.PRNGKey(seed)")
    return simulate_worm_protocol(
        worm, protocol, duration_s, medium, key=key, dt_s=1e-3 if dt_s is None else dt_s
    )


@_in_model_precision
def _simulate_brain(
    model: AbstractModel,
    protocol: Protocol,
    duration_s: float,
    dt_s: float,
    *,
    save_dt_s: float,
    method: str | None,
    indicator,
    noise: Noise | None,
    key: jax.Array | None,
    settle_s: float,
) -> xr.Dataset:
    """:func:`simulate` for a brain alone."""
    method, n_save, indicator = _prepare(
        model, protocol, duration_s, dt_s, save_dt_s, method, indicator
    )
    if noise is not None and key is None:
        raise DigiwormError("noise needs an explicit key=jax.random.PRNGKey(seed)")
    out, dff, stim = simulate_arrays(
        model, protocol, duration_s, dt_s, save_dt_s=save_dt_s, method=method,
        indicator=indicator, noise=noise, key=key, settle_s=settle_s,
    )  # fmt: skip
    coords = {
        "condition": list(protocol.labels),
        "time": np.arange(n_save + 1) * save_dt_s,
        "neuron": list(model.names),
    }
    dims = ("condition", "time", "neuron")
    data = {
        "dff": (dims, np.asarray(dff), {"units": "fractional dF/F"}),
        "stimulus": (
            dims,
            np.asarray(stim),
            {"units": "input (protocol + noise) held over the step starting at each sample"},
        ),
    }
    if model.output == "activity":
        data["activity"] = (dims, np.asarray(out), {"units": "activity phi(V) in [0, 1]"})
    ds = xr.Dataset(data, coords=coords)
    ds["time"].attrs["units"] = "s"
    ds.attrs.update(
        model=type(model).__name__,
        dt_s=dt_s,
        save_dt_s=save_dt_s,
        method=method,
        indicator="none" if indicator is None else _indicator_name(indicator),
        noise="none"
        if noise is None
        else f"OU sigma={float(noise.sigma):g}, tau={float(noise.tau_s):g} s",
    )
    return ds


@_in_model_precision
def stack_models(models, what: str = "models", hint: str = ""):
    """Stack models (any pytrees) along a new leading axis of every array leaf, for a ``vmap``.

    They may differ in their arrays' values only: every array of the same shape, every
    non-array field equal. Otherwise a :class:`DigiwormError` says what differs (``what``
    names the models, ``hint`` what to do instead).
    """
    models = list(models)

    def fail(why):
        tail = f"; {hint}" if hint else ""
        raise DigiwormError(
            f"these {len(models)} {what} differ in more than their arrays' values and cannot run "
            f"in one batch ({why}){tail}"
        )

    def same(a, b) -> bool:
        try:
            return bool(a == b)
        except (ValueError, TypeError):
            return a is b

    def stack(*leaves):
        if any(eqx.is_array(x) for x in leaves):
            shapes = {tuple(np.shape(x)) for x in leaves}
            if len(shapes) > 1:
                fail(f"an array has shapes {shapes}")
            return jnp.stack([jnp.asarray(x) for x in leaves])
        if any(not same(leaf, leaves[0]) for leaf in leaves[1:]):
            fail(f"a non-array field differs: {leaves[0]!r} and others")
        return leaves[0]

    try:
        return jax.tree_util.tree_map(stack, *models)
    except (ValueError, TypeError) as exc:  # the tree structures differ
        fail(exc)


def simulate_ensemble(
    models: AbstractModel,
    protocol: Protocol,
    duration_s: float,
    dt_s: float = 0.01,
    *,
    save_dt_s: float = 0.5,
    method: str | None = None,
    indicator: CalciumIndicator | str | None = "auto",
    settle_s: float = 5.0,
) -> xr.Dataset:
    """Simulate a batch of parameter sets (an ensemble) under every condition of ``protocol``.

    ``models`` is one model whose array leaves carry a leading ``member`` axis (e.g. built with
    ``eqx.filter_vmap`` or by stacking fitted models with ``jax.tree.map(jnp.stack, ...)``);
    static fields (neuron names) are shared. Runs as one ``vmap`` over members of the vmapped
    conditions.

    Returns
    -------
    xarray.Dataset, dims (member, condition, time, neuron)
        ``dff`` and, for activity models, ``activity``.
    """
    leaves = jax.tree_util.tree_leaves(eqx.filter(models, eqx.is_array))
    sizes = {x.shape[0] for x in leaves if x.ndim > 0}
    if len(sizes) != 1:
        raise DigiwormError("ensemble leaves must share one leading member axis")
    n_members = sizes.pop()
    first = jax.tree_util.tree_map(lambda x: x[0] if eqx.is_array(x) else x, models)
    method, n_save, indicator = _prepare(
        first, protocol, duration_s, dt_s, save_dt_s, method, indicator
    )

    def one(model):
        return simulate_arrays(
            model, protocol, duration_s, dt_s, save_dt_s=save_dt_s, method=method,
            indicator=indicator, settle_s=settle_s,
        )  # fmt: skip

    out, dff, _ = eqx.filter_vmap(one)(models)
    dims = ("member", "condition", "time", "neuron")
    coords = {
        "member": np.arange(n_members),
        "condition": list(protocol.labels),
        "time": np.arange(n_save + 1) * save_dt_s,
        "neuron": list(first.names),
    }
    data = {"dff": (dims, np.asarray(dff), {"units": "fractional dF/F"})}
    if first.output == "activity":
        data["activity"] = (dims, np.asarray(out))
    return xr.Dataset(data, coords=coords, attrs={"model": type(first).__name__, "dt_s": dt_s})


def batch_strategy(batch: str = "auto") -> str:
    """Return how a batch of conditions or trials runs: ``"vmap"`` (all at once) or ``"loop"``.

    Used by the screens (a chunk's conditions, neural and behavioural) and by
    :func:`digiworm.brains.simulate_lif` (trials). ``"auto"`` is ``"loop"`` on a CPU and
    ``"vmap"`` on an accelerator. On this project's
    2-core CPU a ``vmap`` over perturbed models ran at 0.19 s per 30 s condition and a loop
    of single-model runs at 0.12 s (``benchmarks/screen_speed.py``): every member brings its
    own weight matrices, so the batch does matrix-vector products one member at a time
    without the single run's optimised kernels. The behavioural read-out's worms batched the
    same way ran at 0.69 s per 10 s condition against the loop's 0.63 s. 32 LIF trials on a
    2,773-neuron fly-like graph took 25 s per simulated second as one ``vmap`` against 19 s
    for 32 single trials (``benchmarks/brain_scale.py``): the step is memory-bound on a CPU.
    An accelerator's batched products are where ``vmap`` should win (not measured here).
    """
    import jax

    if batch not in ("auto", "vmap", "loop"):
        raise DigiwormError(f"batch {batch!r} is not one of auto, vmap, loop")
    if batch == "auto":
        return "loop" if jax.default_backend() == "cpu" else "vmap"
    return batch
