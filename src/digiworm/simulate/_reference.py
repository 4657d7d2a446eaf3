"""An independent reference solution for validating the fixed-step integrators.

scipy's Radau (implicit, order 5, adaptive) on a model's own ``vector_field``, restarted at every
edge of a piecewise-constant drive so no step straddles a jump. It shares nothing with the
steppers it checks but the equations, so agreement at tight tolerance tests the scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.integrate import solve_ivp

from .._errors import DigiwormError

__all__ = ["reference_solution"]


def reference_solution(
    vector_field: Callable,
    y0,
    segments: Sequence[tuple[float, float, object]],
    t_eval,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-11,
) -> np.ndarray:
    """Solve ``dy/dt = vector_field(t, y, u)`` with Radau over piecewise-constant inputs.

    Parameters
    ----------
    vector_field : callable
        ``(t, y, u) -> dy/dt`` on the state pytree ``y`` (e.g. ``model.vector_field``), in the
        time unit of ``segments``.
    y0 : pytree
        Initial state.
    segments : sequence of (start, end, u)
        Consecutive intervals covering the run, each with the input held over it.
    t_eval : array
        Times to report (each inside some segment's (start, end]).

    Returns
    -------
    array (len(t_eval), n_state)
        The raveled state (``jax.flatten_util.ravel_pytree`` order) at each time in ``t_eval``.
    """
    t_eval = np.asarray(t_eval, dtype=float)
    for (_, b, _), (a, _, _) in zip(segments[:-1], segments[1:]):
        if a != b:
            raise DigiwormError(f"segments must be consecutive; a gap or overlap at {b} / {a}")
    flat, unravel = ravel_pytree(y0)

    def f(x, u):
        return ravel_pytree(vector_field(0.0, unravel(x), u))[0]

    f_jit, jac = jax.jit(f), jax.jit(jax.jacfwd(f))
    x, out = np.asarray(flat), []
    for a, b, u in segments:
        u = jnp.asarray(u)
        te = t_eval[(t_eval > a) & (t_eval <= b)]
        sol = solve_ivp(
            lambda t, x, u=u: np.asarray(f_jit(x, u)),
            (a, b),
            x,
            method="Radau",
            t_eval=te,
            rtol=rtol,
            atol=atol,
            jac=lambda t, x, u=u: np.asarray(jac(x, u)),
        )
        if not sol.success:
            raise DigiwormError(f"reference solver failed on ({a}, {b}): {sol.message}")
        x = sol.y[:, -1]
        out.append(sol.y.T)
    return np.concatenate(out)
