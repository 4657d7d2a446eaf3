"""Constraining transforms: fit in unconstrained space, report in physical units.

Each transform maps an unconstrained real ``z`` to a valid parameter value and back
(``forward(inverse(x)) == x``), after the bijector pattern of dynamax and jaxley.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

__all__ = ["Identity", "Positive", "Interval"]


class Identity(eqx.Module):
    """No constraint."""

    def forward(self, z):
        """Return ``z``."""
        return z

    def inverse(self, x):
        """Return ``x``."""
        return x


class Positive(eqx.Module):
    """``x = lo + softplus(z)`` > ``lo`` (time constants, conductances)."""

    lo: float = 0.0

    def forward(self, z):
        """Map unconstrained ``z`` to ``(lo, inf)``."""
        return self.lo + jnp.logaddexp(z, 0.0)

    def inverse(self, x):
        """Map ``x > lo`` back to the unconstrained line."""
        y = jnp.asarray(x) - self.lo
        return y + jnp.log(-jnp.expm1(-y))  # inverse softplus, stable for large y


class Interval(eqx.Module):
    """``x = lo + (hi - lo) sigmoid(z)`` in ``(lo, hi)``."""

    lo: float
    hi: float

    def forward(self, z):
        """Map unconstrained ``z`` to ``(lo, hi)``."""
        return self.lo + (self.hi - self.lo) / (1.0 + jnp.exp(-z))

    def inverse(self, x):
        """Map ``x`` in ``(lo, hi)`` back to the unconstrained line."""
        u = (jnp.asarray(x) - self.lo) / (self.hi - self.lo)
        return jnp.log(u) - jnp.log1p(-u)
