r"""Spontaneous activity of a model at rest: the stationary correlations of noise-driven activity.

Around a stable rest :math:`y^*`, a model driven by small white-noise input :math:`u = \xi`
(independent, equal variance per neuron) behaves like its linearisation
:math:`\dot{\delta y} = A\,\delta y + B\,\xi` with :math:`A = \partial f/\partial y` and
:math:`B = \partial f/\partial u`. The stationary covariance solves the Lyapunov equation
:math:`A\Sigma + \Sigma A^T + B B^T = 0`, and the readout (activity) covariance is
:math:`C \Sigma C^T` with :math:`C = \partial\,\mathrm{readout}/\partial y`. Its correlation does
not depend on the noise level. Jacobians come from JAX autodiff of the model's own
``vector_field`` and ``readout``; the Lyapunov equation is solved by SciPy (Bartels–Stewart).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax.flatten_util import ravel_pytree

from .._errors import DigiwormError

__all__ = ["spontaneous_correlation"]


def spontaneous_correlation(model, state=None) -> np.ndarray:
    """Return the correlation matrix ``(neuron, neuron)`` of noise-driven activity at rest.

    Parameters
    ----------
    model : AbstractModel
        Any digiworm model (graded, linear, ...).
    state : pytree, optional
        The rest to linearise about (default: :func:`~digiworm.simulate.rest_state`).

    Raises
    ------
    DigiwormError
        If the rest is unstable (no stationary activity) or not a rest.
    """
    from ._simulate import rest_residual, rest_state

    if state is None:
        state = rest_state(model)
    residual = float(rest_residual(model, state))
    if not residual < 1e-3:
        raise DigiwormError(f"the state is not a rest (max |dy/dt| = {residual:.3g})")
    flat, unravel = ravel_pytree(state)
    flat = flat.astype(jnp.float64) if jax.config.jax_enable_x64 else flat
    n = model.n_neurons
    zero = jnp.zeros(n, dtype=flat.dtype)

    def field(x, u):
        return ravel_pytree(model.vector_field(0.0, unravel(x), u))[0]

    a = np.asarray(jax.jacfwd(field, argnums=0)(flat, zero), dtype=float)
    b = np.asarray(jax.jacfwd(field, argnums=1)(flat, zero), dtype=float)
    c = np.asarray(jax.jacfwd(lambda x: model.readout(unravel(x)))(flat), dtype=float)
    if np.max(np.linalg.eigvals(a).real) >= 0:
        raise DigiwormError("the rest is unstable: no stationary spontaneous activity")
    sigma = scipy.linalg.solve_continuous_lyapunov(a, -b @ b.T)
    cov = c @ sigma @ c.T
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.outer(sd, sd)
