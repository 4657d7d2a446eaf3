"""Stimulation protocols: which neurons are driven, when, how hard, for each condition."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import DigiwormError

__all__ = ["DEFAULT_PULSE_S", "Noise", "Protocol"]

#: Default optogenetic pulse, s: brief single-neuron activation (digiworm's assumption for
#: Randi et al. 2023's targeted two-photon stimulation; set it to your protocol).
DEFAULT_PULSE_S = 0.5


class Protocol(eqx.Module):
    """Square-pulse stimulation of a batch of conditions.

    Condition ``c`` drives neuron ``i`` with ``amplitude[c, i]`` during
    ``[onset_s[c], onset_s[c] + duration_s[c])``. The unit of the amplitude is the model's
    input unit (mV for the graded network; ΔF/F of the stimulated neuron for the kernel model).

    Parameters
    ----------
    amplitude : array (condition, neuron)
    onset_s, duration_s : array (condition,)
    labels : tuple of str
        One name per condition (e.g. the stimulated neuron).
    """

    amplitude: Float[Array, "condition neuron"]
    onset_s: Float[Array, " condition"]
    duration_s: Float[Array, " condition"]
    labels: tuple[str, ...] = eqx.field(static=True)

    def __check_init__(self):
        c = len(self.labels)
        if self.amplitude.ndim != 2 or self.amplitude.shape[0] != c:
            raise DigiwormError(
                f"protocol amplitude must be (condition, neuron) with {c} conditions; "
                f"got shape {self.amplitude.shape}"
            )
        if self.onset_s.shape != (c,) or self.duration_s.shape != (c,):
            raise DigiwormError(f"onset_s and duration_s must have {c} entries (one per condition)")

    @property
    def n_conditions(self) -> int:
        """Number of conditions."""
        return len(self.labels)

    @staticmethod
    def drive(amplitude, onset_s, duration_s, t0, dt):
        """Return the input of one condition averaged over the step ``[t0, t0 + dt)``.

        Averaging the square pulse over the step makes the zero-order-hold input exact in
        its integral even when a pulse edge falls inside a step.
        """
        lo = jnp.maximum(t0, onset_s)
        hi = jnp.minimum(t0 + dt, onset_s + duration_s)
        return amplitude * (jnp.maximum(hi - lo, 0.0) / dt)

    @classmethod
    def single(
        cls,
        names: Sequence[str],
        targets: Sequence[Sequence[str]] | Sequence[str],
        amplitude: float = 15.0,
        onset_s: float = 5.0,
        duration_s: float = DEFAULT_PULSE_S,
        labels: Sequence[str] | None = None,
    ) -> Protocol:
        """Build one condition per entry of ``targets`` (a neuron or a list of neurons).

        Parameters
        ----------
        names : sequence of str
            The model's neuron ids.
        targets : sequence
            Per condition, a neuron id or a list of ids stimulated together (``[]`` = none).
        amplitude : float
            Drive of each stimulated neuron.
        onset_s, duration_s : float
            Pulse start and length, s.
        labels : sequence of str, optional
            Condition names (default: the targets joined with '+', or 'none').
        """
        check_pulse(onset_s, duration_s)
        index = {n: i for i, n in enumerate(names)}
        rows = []
        for target in targets:
            group = [target] if isinstance(target, str) else list(target)
            row = np.zeros(len(names))
            for t in group:
                if t not in index:
                    from .._errors import UnknownNameError

                    raise UnknownNameError("neuron", t, names)
                row[index[t]] = amplitude
            rows.append(row)
        if labels is None:
            labels = [(t if isinstance(t, str) else "+".join(t)) or "none" for t in targets]
        c = len(rows)
        return cls(
            amplitude=jnp.asarray(np.array(rows).reshape(c, len(names))),
            onset_s=jnp.full(c, float(onset_s)),
            duration_s=jnp.full(c, float(duration_s)),
            labels=tuple(str(label) for label in labels),
        )

    @classmethod
    def each_neuron(cls, names: Sequence[str], neurons: Sequence[str] | None = None, **kwargs):
        """One condition per neuron, stimulating it alone (the in-silico atlas protocol)."""
        return cls.single(names, list(neurons if neurons is not None else names), **kwargs)


def check_pulse(onset_s: float, duration_s: float) -> None:
    """Raise a clear error for a negative onset or a non-positive / non-finite pulse."""
    if not np.isfinite(onset_s) or onset_s < 0:
        raise DigiwormError(f"stimulation onset must be a finite time >= 0 s; got {onset_s}")
    if not np.isfinite(duration_s) or duration_s <= 0:
        raise DigiwormError(f"stimulation duration must be finite and > 0 s; got {duration_s}")


class Noise(eqx.Module):
    r"""Ornstein–Uhlenbeck input per neuron, for spontaneous activity.

    :math:`d\eta = -\eta/\tau\, dt + \sigma \sqrt{2/\tau}\, dW`, stationary s.d. :math:`\sigma`
    (input units, mV for the graded network), stepped exactly.

    Parameters
    ----------
    sigma : float
        Stationary standard deviation.
    tau_s : float
        Correlation time, s (> 0).
    """

    sigma: Float[Array, ""]
    tau_s: Float[Array, ""]

    def __init__(self, sigma: float = 2.0, tau_s: float = 0.5):
        if not (np.isfinite(sigma) and sigma >= 0):
            raise DigiwormError(f"noise sigma must be finite and >= 0; got {sigma}")
        if not (np.isfinite(tau_s) and tau_s > 0):
            raise DigiwormError(f"noise tau_s must be finite and > 0 s; got {tau_s}")
        self.sigma = jnp.asarray(sigma, dtype=float)
        self.tau_s = jnp.asarray(tau_s, dtype=float)

    def step(self, eta, z, dt):
        """Advance the OU process exactly by ``dt`` given standard normal draws ``z``."""
        decay = jnp.exp(-dt / self.tau_s)
        return eta * decay + self.sigma * jnp.sqrt(1.0 - decay**2) * z
