r"""Identified linear dynamical model and the measured-kernel model.

:class:`LinearModel` is the continuous-time linear system

.. math:: \dot x = A x + B \odot u, \qquad y = x,

whose state is read directly as ΔF/F (it is identified from imaging data, so no indicator
model is applied). Optionally each neuron's observed ΔF/F lags its activity through a
first-order readout filter, :math:`\tau^{o}_i \dot y_i = x_i - y_i` (identified from the
response kernels: :func:`digiworm.fit.fit_kernel_taus`); the filter has unit gain, so the steady
state is the same. It is stepped exactly under a zero-order-hold input:
:math:`x_{k+1} = e^{A\Delta t} x_k + A^{-1}(e^{A\Delta t} - I) B \odot u_k`, from one matrix
exponential of the augmented system (Van Loan 1978).

:class:`KernelModel` uses the Randi et al. 2023 response kernels as the simulator: the
response of *i* to the activity :math:`u_j` of a stimulated neuron *j* is
:math:`\sum_j \int_0^\infty h_{ij}(\tau) u_j(t-\tau)\, d\tau` with
:math:`h_{ij}(t) = \sum_k c_k e^{-g_k t}`. Each exponential term is a first-order filter
:math:`\dot y_k = -g_k y_k + c_k u_{j(k)}`, stepped exactly; a neuron's output is the sum of
its terms plus its own input (the stimulated neuron shows the activity it is driven with).
Pairs the atlas never measured contribute nothing (the model cannot know them).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, Float, Int

from .._errors import InvalidParameterError
from ._base import AbstractModel

__all__ = [
    "KernelModel",
    "LinearModel",
    "kernel_from_atlas",
    "linear_from_atlas",
    "linear_from_couplings",
]


class LinearModel(AbstractModel):
    r"""Continuous linear model :math:`\dot x = A x + B \odot u` read out as ΔF/F.

    Parameters
    ----------
    names : tuple of str
        Neuron ids (n).
    a_per_s : array (n, n)
        System matrix, 1/s, ``[post, pre]``.
    b_per_s : array (n,)
        Input gain per neuron (ΔF/F per unit input per s).
    readout_tau_s : array (n,), optional
        Time constant of each neuron's readout filter, s: the state is then activity and
        observed ΔF/F, ``2n`` numbers (``[x, y]``), and :meth:`readout` returns ``y``.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    a_per_s: Float[Array, "n n"]
    b_per_s: Float[Array, " n"]
    readout_tau_s: Float[Array, " n"] | None = None
    output: ClassVar[str] = "dff"

    def __check_init__(self):
        n = len(self.names)
        if self.a_per_s.shape[-2:] != (n, n) or self.b_per_s.shape[-1:] != (n,):
            raise InvalidParameterError(
                f"a_per_s must be ({n}, {n}) and b_per_s ({n},); got "
                f"{self.a_per_s.shape} and {self.b_per_s.shape}"
            )
        tau = self.readout_tau_s
        if tau is not None and tau.shape[-1:] != (n,):
            raise InvalidParameterError(f"readout_tau_s must be ({n},); got {tau.shape}")

    def system(self) -> Float[Array, "m m"]:
        """Return the whole state's system matrix.

        The state has ``m`` = n numbers, or 2n with the readout filter, whose matrix is
        ``[[A, 0], [diag(1/τᵒ), -diag(1/τᵒ)]]``; the input drives the first n.
        """
        if self.readout_tau_s is None:
            return self.a_per_s
        rate = jnp.diag(1.0 / self.readout_tau_s).astype(self.a_per_s.dtype)
        top = jnp.concatenate([self.a_per_s, jnp.zeros_like(self.a_per_s)], axis=1)
        return jnp.concatenate([top, jnp.concatenate([rate, -rate], axis=1)], axis=0)

    def init_state(self) -> Float[Array, " m"]:
        """Return rest, x = 0 (and y = 0)."""
        size = len(self.names) * (1 if self.readout_tau_s is None else 2)
        return jnp.zeros(size, dtype=self.a_per_s.dtype)

    def vector_field(self, t, y, u):
        r"""Return :math:`A x + B \odot u` (and the readout filter's :math:`(x - y)/\tau^o`)."""
        drive = self.b_per_s * u
        if self.readout_tau_s is not None:
            drive = jnp.concatenate([drive, jnp.zeros_like(drive)])
        return self.system() @ y + drive

    def readout(self, y):
        """Return ΔF/F: the state itself, or the readout filter's output."""
        return y if self.readout_tau_s is None else y[len(self.names) :]

    def discretize(self, dt: float) -> tuple[Float[Array, "m m"], Float[Array, " m n"]]:
        """Return ``(Phi, Gamma)`` with ``x' = Phi x + Gamma (B ⊙ u)`` exact for held ``u``.

        ``Gamma`` maps the n inputs' drive into the whole state.
        """
        a = self.system()
        m, n = a.shape[-1], self.a_per_s.shape[-1]
        aug = jnp.zeros((m + n, m + n), dtype=a.dtype)
        aug = aug.at[:m, :m].set(a).at[:n, m:].set(jnp.eye(n, dtype=aug.dtype))
        e = jsl.expm(aug * dt)
        return e[:m, :m], e[:m, m:]

    def stepper(self, dt, method: str = "exact"):
        """Return the exact zero-order-hold step (``method`` is ignored: it is exact)."""
        phi, gamma = self.discretize(dt)
        return lambda t, y, u: phi @ y + gamma @ (self.b_per_s * u)


class KernelModel(AbstractModel):
    """The measured response kernels as a simulator (see module docstring).

    Parameters
    ----------
    names : tuple of str
        Neuron ids (n).
    g_per_s, factor : array (term,)
        Decay rate (1/s) and amplitude of every exponential term.
    post, pre : int array (term,)
        Responding and stimulated neuron index of each term.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    g_per_s: Float[Array, " term"]
    factor: Float[Array, " term"]
    post: Int[Array, " term"] = eqx.field(converter=jnp.asarray)
    pre: Int[Array, " term"] = eqx.field(converter=jnp.asarray)
    output: ClassVar[str] = "dff"

    def init_state(self):
        """Return rest: every filter at zero, and no input held."""
        return jnp.zeros_like(self.g_per_s), jnp.zeros(len(self.names), self.g_per_s.dtype)

    def vector_field(self, t, y, u):
        """Return :math:`-g_k y_k + c_k u_{pre(k)}` (stiff: g reaches 10⁴ 1/s)."""
        filters, _ = y
        return -self.g_per_s * filters + self.factor * u[self.pre], jnp.zeros_like(u)

    def readout(self, y):
        """Return every neuron's ΔF/F: its summed filter outputs plus its own held input."""
        filters, held = y
        return jax.ops.segment_sum(filters, self.post, num_segments=len(self.names)) + held

    def stepper(self, dt, method: str = "exact"):
        """Return the exact zero-order-hold step of every exponential filter."""
        rate = self.g_per_s * dt
        decay = jnp.exp(-rate)
        small = rate < 1e-6
        gain = jnp.where(small, dt, -jnp.expm1(-rate) / jnp.where(small, 1.0, self.g_per_s))

        def step(t, y, u):
            filters, _ = y
            return decay * filters + self.factor * gain * u[self.pre], u

        return step


def linear_from_atlas(
    atlas,
    connectome: str = "cook2019",
    *,
    tau_s: float = 1.0,
    spectral_radius: float = 0.8,
    input_gain: float = 1.0,
    dtype=jnp.float32,
) -> LinearModel:
    r"""Build the connectome's linear model :math:`\tau \dot x = -x + W x + b\,u`.

    ``W`` is the signed connectome (chemical counts with the receptor-rule sign, plus gap
    junctions as positive coupling), scaled so its spectral radius is ``spectral_radius`` < 1
    (a stable network). It is the anatomy-only linear baseline; ``digiworm fit`` identifies a
    linear model from the data instead.
    """
    from ._graded import connectome_arrays

    if not 0 <= spectral_radius < 1:
        raise InvalidParameterError(
            f"spectral_radius must be in [0, 1) for stability; got {spectral_radius}"
        )
    chem, gap, sign = connectome_arrays(atlas, connectome)
    w = chem * sign + gap
    radius = np.max(np.abs(np.linalg.eigvals(w)))
    w = w * (spectral_radius / radius) if radius > 0 else w
    n = w.shape[0]
    return LinearModel(
        names=tuple(atlas.names),
        a_per_s=jnp.asarray((w - np.eye(n)) / tau_s, dtype=dtype),
        b_per_s=jnp.asarray(np.full(n, input_gain / tau_s), dtype=dtype),
    )


def kernel_from_atlas(atlas, strain: str = "wt", dtype=jnp.float64) -> KernelModel:
    """Build a :class:`KernelModel` from the functional atlas's fitted kernels.

    Only off-diagonal kernels are used (a stimulated neuron's own trace is its input).
    Kernels have large cancelling factors: keep ``dtype`` float64 unless you have checked
    float32 against it. The arrays are made in ``dtype`` whatever the process-wide
    ``jax_enable_x64`` flag (64-bit mode is entered for this thread only, and left again);
    :func:`digiworm.simulate.simulate` then runs a float64 model in float64 the same way
    (:func:`digiworm.simulate.model_precision`).
    """
    fun = atlas.functional(strain, kernel_time_s=None)
    start = fun["kernel_start"].to_numpy()
    count = fun["kernel_nterms"].to_numpy()
    g = fun["kernel_g"].to_numpy()
    c = fun["kernel_factor"].to_numpy()
    post, pre, idx = [], [], []
    for i, j in zip(*np.nonzero(count)):
        if i == j:
            continue
        k = np.arange(start[i, j], start[i, j] + count[i, j])
        k = k[c[k] != 0]  # a lone [1, 0, 0, 0] row means h = 0
        idx.append(k)
        post.append(np.full(k.size, i))
        pre.append(np.full(k.size, j))
    idx = np.concatenate(idx)
    with jax.enable_x64(True):  # thread-local: the dtype asked for, never a global switch
        return KernelModel(
            names=tuple(atlas.names),
            g_per_s=jnp.asarray(g[idx], dtype=dtype),
            factor=jnp.asarray(c[idx], dtype=dtype),
            post=np.concatenate(post).astype(np.int32),
            pre=np.concatenate(pre).astype(np.int32),
        )


def linear_from_couplings(
    names,
    w,
    tau_s: float | np.ndarray = 1.0,
    unit: float = 1.0,
    dtype=jnp.float32,
    readout_tau_s: np.ndarray | None = None,
) -> LinearModel:
    r"""Return the :class:`LinearModel` :math:`\tau_i\dot x_i = [(W - I)x]_i + \mathrm{unit}\,u_i`.

    Its steady-state response to a sustained unit input at *j* is column *j* of
    ``unit`` × :math:`(I - W)^{-1}` (what :func:`digiworm.fit.fit_linear_response`
    identifies), whatever the time constants ``tau_s`` (one for all neurons, or one each:
    :func:`digiworm.fit.fit_kernel_taus` identifies them from the response kernels) and the
    readout filters ``readout_tau_s`` (one per neuron, or none: ΔF/F is the activity).
    """
    w = np.asarray(w, dtype=float)
    n = len(names)
    if w.shape != (n, n):
        raise InvalidParameterError(f"couplings must be ({n}, {n}) for {n} neurons; got {w.shape}")
    tau = np.asarray(tau_s, dtype=float)
    tau = np.full(n, float(tau)) if tau.ndim == 0 else tau
    if tau.shape != (n,):
        raise InvalidParameterError(f"tau_s must be a number or ({n},); got shape {tau.shape}")
    if not np.all(tau > 0) or not unit > 0:
        raise InvalidParameterError(f"tau_s and unit must be > 0; got {tau.min():g}, {unit}")
    if readout_tau_s is not None:
        readout_tau_s = np.asarray(readout_tau_s, dtype=float)
        good = np.isfinite(readout_tau_s) & (readout_tau_s > 0)
        if readout_tau_s.shape != (n,) or not np.all(good):
            raise InvalidParameterError(
                f"readout_tau_s must be ({n},) finite time constants > 0 s; got shape "
                f"{readout_tau_s.shape}, values {np.min(readout_tau_s, initial=np.inf):g} to "
                f"{np.max(readout_tau_s, initial=-np.inf):g}"
            )
    return LinearModel(
        names=tuple(names),
        a_per_s=jnp.asarray((w - np.eye(n)) / tau[:, None], dtype=dtype),
        b_per_s=jnp.asarray(unit / tau, dtype=dtype),
        readout_tau_s=None if readout_tau_s is None else jnp.asarray(readout_tau_s, dtype=dtype),
    )
