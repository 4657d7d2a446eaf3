"""The parameter check the body's modules share: every number finite, with its sign."""

from __future__ import annotations

import math

import jax

from .._errors import DigiwormError


def check_parameters(obj, *, positive=(), nonnegative=(), finite=()) -> None:
    """Refuse, by name, a parameter of ``obj`` that is not finite or has the wrong sign.

    Traced or array values (a parameter being fitted or batched) are not checked.
    """
    for name in (*positive, *nonnegative, *finite):
        v = getattr(obj, name)
        if isinstance(v, jax.Array):
            continue
        if name in positive:
            ok, valid = math.isfinite(v) and v > 0, "a number > 0"
        elif name in nonnegative:
            ok, valid = math.isfinite(v) and v >= 0, "a number >= 0"
        else:
            ok, valid = math.isfinite(v), "a finite number"
        if not ok:
            raise DigiwormError(f"{name} must be {valid}; got {v}")
