r"""The worm's body: a planar chain of rigid segments in an overdamped, resistive medium.

The body of length :math:`L` is ``n_segments`` rigid segments of length :math:`l = L/n`. Its
generalised coordinates are the centre of mass :math:`(X, Y)` (mm) and each segment's tangent
angle :math:`\psi_j` (rad; the tangent points from head to tail, segment 0 at the head). The
segment centres are :math:`c_{j+1} = c_j + \tfrac{l}{2}(t_j + t_{j+1})`, shifted so that their
mean is :math:`(X, Y)`. Joint :math:`j` (between segments *j* and *j+1*) bends by
:math:`\psi_{j+1} - \psi_j`, which is :math:`l\kappa_j` for the body curvature
:math:`\kappa_j` there.

**Forces.** At worm Reynolds numbers inertia is negligible (the inertial time is below 1 ms in
water), so the body moves where the forces balance:

.. math:: A(q)\,\dot q = -\nabla_q U(q, t), \qquad
          U = \tfrac{k}{2}\sum_j \left(\psi_{j+1}-\psi_j - l\kappa^0_j(t)\right)^2,

where :math:`\kappa^0(t)` is the preferred (muscle-set) curvature, :math:`k = EI/l` the joint
stiffness from the bending stiffness :math:`EI`, and the drag matrix
:math:`A = \sum_j J_j^T l\,(C_\parallel t_j t_j^T + C_\perp n_j n_j^T) J_j +
\mathrm{diag}(C_\perp l^3/12)_\psi + c\,D^T D` collects resistive-force-theory drag on every
segment (per unit length, :math:`C_\perp` normal and :math:`C_\parallel` tangential, with
:math:`J_j = \partial c_j/\partial q`), the rotational drag of each segment, and the body's
internal viscosity (:math:`c = \eta/l` on the joints' bending rates, :math:`D` the difference
of neighbouring angles). This is the rigid-segment discretisation of ElegansBot (Chung, Chang
& Kim 2024, eLife 13:RP92562) without its masses, and the planar visco-elastic rod with
resistive drag of Boyle, Berri & Cohen (2012, Front Comput Neurosci 6:10) with the bending
written as a joint spring.

**Integration.** The stiffness matrix :math:`H = \nabla^2 U = k D^T D` is constant, so each step
solves :math:`(A(q_n) + \tfrac{\Delta t}{2} H)\,\Delta q = -\Delta t\,\nabla U(q_n,
t_n + \tfrac{\Delta t}{2})`: linearly implicit (stable however stiff the body is against the
medium, as in water with little internal viscosity) and second order in the elastic part.

Units inside: mm, s and µg (so force in pN); the public parameters carry their SI units in
their names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError

__all__ = [
    "Body",
    "BodyTrajectory",
    "Medium",
    "simulate_body",
    "travelling_wave",
]

# SI → the body's internal units (mm, s, µg)
_NM2_TO_INTERNAL = 1e18  # N·m² → µg·mm³/s²
_NS_PER_M2_TO_INTERNAL = 1e6  # N·s/m² → µg/(mm·s)


class Medium(eqx.Module):
    """Resistive drag per unit length of body: normal and tangential coefficients (N·s/m²).

    Use the constructors: :meth:`water`, :meth:`agar`, :meth:`newtonian` (a fluid of given
    viscosity) or :meth:`between` (a log-linear blend of water and agar).
    """

    drag_normal_Ns_per_m2: float
    drag_tangential_Ns_per_m2: float
    name: str = eqx.field(static=True, default="medium")

    def __check_init__(self):
        for what, v in (("normal", self.drag_normal_Ns_per_m2),
                        ("tangential", self.drag_tangential_Ns_per_m2)):  # fmt: skip
            if not (isinstance(v, jax.Array) or (math.isfinite(v) and v > 0)):
                raise DigiwormError(f"the {what} drag must be a finite number > 0; got {v}")

    @property
    def anisotropy(self):
        r"""Drag anisotropy :math:`K = C_\perp / C_\parallel`."""
        return self.drag_normal_Ns_per_m2 / self.drag_tangential_Ns_per_m2

    @classmethod
    def newtonian(cls, viscosity_Pa_s: float, anisotropy: float = 1.5) -> Medium:
        r"""Return a Newtonian fluid: :math:`C_\perp = 5.2\,\mu`, :math:`C_\parallel = C_\perp/K`.

        The factor 5.2 gives ElegansBot's water coefficients (C⊥ 5.2 mN·s/m² at 1 mPa·s).
        Slender-body resistive-force theory for a body 1 mm long and 80 µm wide gives
        :math:`4\pi/(\ln(2L/d) + 1/2) \approx 2.9`, so the factor is known to within about
        2× (a literature range, not a measurement). :math:`K` ≈ 1.4 was measured for swimming
        worms (Sznitman et al. 2010); Boyle, Berri & Cohen (2012) use 1.6.
        """
        if not (math.isfinite(viscosity_Pa_s) and viscosity_Pa_s > 0):
            raise DigiwormError(f"viscosity must be a number of Pa·s > 0; got {viscosity_Pa_s}")
        c_n = 5.2 * viscosity_Pa_s
        return cls(c_n, c_n / anisotropy, name=f"newtonian {viscosity_Pa_s:g} Pa·s")

    @classmethod
    def water(cls) -> Medium:
        """Water at 20 °C (1 mPa·s): C⊥ 5.2, C∥ 3.47 mN·s/m² (K = 1.5)."""
        w = cls.newtonian(1e-3)
        return cls(w.drag_normal_Ns_per_m2, w.drag_tangential_Ns_per_m2, name="water")

    @classmethod
    def agar(cls, anisotropy: float = 40.0) -> Medium:
        """Return an agar surface: C⊥ = 128 N·s/m², C∥ = C⊥/K, K = 40 by default.

        Boyle, Berri & Cohen (2012) and ElegansBot use K = 40 with these coefficients; Shen et
        al. (2012, arXiv:1112.1118) measure K ≈ 10 for crawling, so K is a parameter.
        """
        if not (math.isfinite(anisotropy) and anisotropy >= 1):
            raise DigiwormError(f"anisotropy must be a number >= 1; got {anisotropy}")
        return cls(128.0, 128.0 / anisotropy, name="agar" if anisotropy == 40.0 else
                   f"agar (K {anisotropy:g})")  # fmt: skip

    @classmethod
    def between(cls, fraction: float) -> Medium:
        """Blend water (0) into agar (1), log-linearly in each drag coefficient."""
        if not (0.0 <= fraction <= 1.0):
            raise DigiwormError(f"the blend fraction must be in [0, 1]; got {fraction}")
        w, a = cls.water(), cls.agar()
        n = math.exp((1 - fraction) * math.log(w.drag_normal_Ns_per_m2)
                     + fraction * math.log(a.drag_normal_Ns_per_m2))  # fmt: skip
        t = math.exp((1 - fraction) * math.log(w.drag_tangential_Ns_per_m2)
                     + fraction * math.log(a.drag_tangential_Ns_per_m2))  # fmt: skip
        return cls(n, t, name=f"water-agar blend {fraction:g}")


class Body(eqx.Module):
    """The body's geometry and material (see the module docstring).

    Defaults: 1 mm long in 48 segments (Boyle, Berri & Cohen 2012); bending stiffness
    7×10⁻¹⁵ N·m², the Young's modulus of 3.77 kPa measured by Sznitman et al. (2010) times the
    second moment of area of an 80 µm-wide body (7.6×10⁻¹⁵; ElegansBot uses 7.0×10⁻¹⁵);
    internal viscosity 1.25×10⁻¹⁵ N·m²·s, ElegansBot's (a bending relaxation time of 0.18 s;
    an *assumed* value, see :attr:`evidence`).
    """

    n_segments: int = eqx.field(static=True, default=48)
    length_mm: float = 1.0
    bending_stiffness_Nm2: float = 7.0e-15
    internal_viscosity_Nm2s: float = 1.25e-15

    #: Evidence level of each parameter (DESIGN: assumed numbers say so).
    evidence = {
        "length_mm": "measured (adult, ~1 mm)",
        "bending_stiffness_Nm2": "literature (Sznitman et al. 2010: E = 3.77 kPa)",
        "internal_viscosity_Nm2s": "assumed (ElegansBot's default)",
    }

    def __check_init__(self):
        if self.n_segments < 3:
            raise DigiwormError(f"n_segments must be >= 3; got {self.n_segments}")
        for what in ("length_mm", "bending_stiffness_Nm2", "internal_viscosity_Nm2s"):
            v = getattr(self, what)
            if not isinstance(v, jax.Array) and not (math.isfinite(v) and v > 0):
                raise DigiwormError(f"{what} must be a finite number > 0; got {v}")

    @property
    def segment_mm(self):
        """Length of one segment (mm)."""
        return self.length_mm / self.n_segments

    def joint_positions(self) -> np.ndarray:
        """Position of each joint along the body, head 0 to tail 1 (body lengths)."""
        return np.arange(1, self.n_segments) / self.n_segments

    def centres(self, q):
        """Segment centres ``(segment, 2)`` (mm) of the coordinates ``q = (X, Y, ψ...)``."""
        psi = q[2:]
        t = jnp.stack([jnp.cos(psi), jnp.sin(psi)], axis=-1)
        steps = 0.5 * self.segment_mm * (t[:-1] + t[1:])
        rel = jnp.concatenate([jnp.zeros((1, 2), q.dtype), jnp.cumsum(steps, axis=0)])
        return rel - rel.mean(axis=0) + q[:2]

    def curvature(self, q):
        """Curvature at each joint (1/mm): the bend between neighbouring segments over ``l``."""
        return jnp.diff(q[2:]) / self.segment_mm


def _centre_weights(n: int, seg: float) -> np.ndarray:
    r"""Return ``W`` with :math:`\partial c_j/\partial\psi_k = W_{jk}\,\hat n_k`.

    :math:`\hat n_k = (-\sin\psi_k, \cos\psi_k)`: the centres' dependence on the angles,
    from :math:`c_{j+1} = c_j + \tfrac{l}{2}(t_j + t_{j+1})` minus the mean over segments.
    """
    j, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = 0.5 * seg * ((k < j).astype(float) + ((k >= 1) & (k <= j)).astype(float))
    return m - m.mean(axis=0, keepdims=True)


def _drag_coefficients(medium: Medium):
    """Return the normal and tangential drag per unit length in internal units."""
    return (medium.drag_normal_Ns_per_m2 * _NS_PER_M2_TO_INTERNAL,
            medium.drag_tangential_Ns_per_m2 * _NS_PER_M2_TO_INTERNAL)  # fmt: skip


def _rotational_and_internal(body: Body, c_n, dtype):
    """Return the rotational drag of each segment plus the internal viscosity's matrix."""
    n, seg = body.n_segments, body.segment_mm
    diff = _difference(n, dtype)
    eta = body.internal_viscosity_Nm2s * _NM2_TO_INTERNAL / seg
    rotational = jnp.zeros((n + 2,), dtype).at[2:].set(c_n * seg**3 / 12.0)
    return jnp.diag(rotational) + eta * diff.T @ diff


def _drag_matrix(body: Body, medium: Medium, q):
    r"""Return A(q) (module docstring), assembled in closed form from :func:`_centre_weights`.

    With :math:`J_j = [I_2,\; W_{j\cdot}\hat n_\cdot]`, the angle block of
    :math:`\sum_j l\,J_j^T (C_\parallel t_j t_j^T + C_\perp n_j n_j^T) J_j` is
    :math:`l\,[C_\perp (W^TW)\circ\cos(\psi_k-\psi_m) + (C_\parallel - C_\perp) S^TS]`
    with :math:`S_{jk} = W_{jk}\sin(\psi_j - \psi_k)`; equal to the automatic Jacobian's
    assembly to rounding (a test checks) and 2–3× cheaper.
    """
    n, seg = body.n_segments, body.segment_mm
    c_n, c_t = _drag_coefficients(medium)
    w = jnp.asarray(_centre_weights(n, seg), q.dtype)
    psi = q[2:]
    t = jnp.stack([jnp.cos(psi), jnp.sin(psi)], axis=-1)
    normal = jnp.stack([-jnp.sin(psi), jnp.cos(psi)], axis=-1)
    dpsi = psi[:, None] - psi[None, :]
    s = w * jnp.sin(dpsi)  # tangential velocity of centre j per unit rate of angle k
    angles = seg * (c_n * (w.T @ w) * jnp.cos(dpsi) + (c_t - c_n) * s.T @ s)
    centre = seg * (c_n * n * jnp.eye(2, dtype=q.dtype) + (c_t - c_n) * t.T @ t)
    mixed = seg * (c_n * (w.sum(axis=0)[:, None] * normal).T + (c_t - c_n) * t.T @ s)
    translational = jnp.block([[centre, mixed], [mixed.T, angles]])
    return translational + _rotational_and_internal(body, c_n, q.dtype)


def _drag_matrix_autodiff(body: Body, medium: Medium, q):
    """Return A(q) assembled from ``jax.jacfwd`` of the centres (the reference for tests)."""
    seg = body.segment_mm
    c_n, c_t = _drag_coefficients(medium)
    jac = jax.jacfwd(body.centres)(q)  # (segment, 2, coordinate)
    psi = q[2:]
    t = jnp.stack([jnp.cos(psi), jnp.sin(psi)], axis=-1)
    jt = jnp.einsum("sa,sac->sc", t, jac)  # tangential velocity per unit q̇
    translational = seg * (
        c_n * jnp.einsum("sac,sad->cd", jac, jac) + (c_t - c_n) * jnp.einsum("sc,sd->cd", jt, jt)
    )
    return translational + _rotational_and_internal(body, c_n, q.dtype)


def _difference(n: int, dtype):
    """Return the matrix taking ``q`` to the joints' bends ``ψ_{j+1} − ψ_j``, ``(n−1, n+2)``."""
    d = np.zeros((n - 1, n + 2))
    idx = np.arange(n - 1)
    d[idx, idx + 3] = 1.0
    d[idx, idx + 2] = -1.0
    return jnp.asarray(d, dtype)


class BodyTrajectory(NamedTuple):
    """What :func:`simulate_body` returns (saved samples)."""

    t_s: jax.Array
    """Sample times ``(time,)``, s."""
    q: jax.Array
    """Coordinates ``(time, 2 + segment)``: centre of mass (mm) and tangent angles (rad)."""
    xy_mm: jax.Array
    """Segment centres ``(time, segment, 2)``, mm; segment 0 is the head."""
    curvature_per_mm: jax.Array
    """Curvature at each joint ``(time, joint)``, 1/mm."""


def travelling_wave(
    body: Body, amplitude_per_body_length: float, wavelength_body_lengths: float,
    frequency_hz: float,
) -> Callable:  # fmt: skip
    r"""Return the preferred curvature :math:`\kappa^0(u, t) = (A/L)\cos(2\pi(u/\lambda - f t))`.

    ``u`` is the joint's position from the head (body lengths); with ``frequency_hz`` > 0 the
    wave runs from head to tail, which drives the worm forward. The result maps ``t_s`` to
    the curvature at every joint (1/mm).
    """
    for what, v in (("wavelength_body_lengths", wavelength_body_lengths),
                    ("amplitude_per_body_length", amplitude_per_body_length),
                    ("frequency_hz", frequency_hz)):  # fmt: skip
        if not math.isfinite(v):
            raise DigiwormError(f"{what} must be finite; got {v}")
    if wavelength_body_lengths <= 0:
        raise DigiwormError(f"wavelength_body_lengths must be > 0; got {wavelength_body_lengths}")
    u = jnp.asarray(body.joint_positions())
    amp = amplitude_per_body_length / body.length_mm

    def kappa(t_s):
        return amp * jnp.cos(2 * jnp.pi * (u / wavelength_body_lengths - frequency_hz * t_s))

    return kappa


def simulate_body(
    body: Body,
    medium: Medium,
    curvature: Callable,
    duration_s: float,
    *,
    dt_s: float = 1e-3,
    save_every: int = 10,
    q0=None,
    heading_rad: float = 0.0,
) -> BodyTrajectory:
    r"""Move ``body`` in ``medium`` with its preferred curvature ``curvature(t_s)`` (1/mm).

    Parameters
    ----------
    curvature : callable
        Maps time (s) to the preferred curvature at each of the ``n_segments − 1`` joints
        (1/mm), e.g. :func:`travelling_wave`, or the muscles' output; it must be traceable by
        JAX.
    duration_s, dt_s : float
        Simulated time and integration step (s).
    save_every : int
        Keep every ``save_every``-th step (and the start).
    q0 : array, optional
        Starting coordinates ``(2 + n_segments,)``; default: the preferred shape at ``t = 0``
        with its centre of mass at the origin and the head towards ``heading_rad`` (the
        tangent, head to tail, points the other way).
    """
    n_save = _n_saves(duration_s, dt_s, save_every)
    n = body.n_segments
    k0 = jnp.asarray(curvature(0.0))
    if k0.shape != (n - 1,):
        raise DigiwormError(
            f"curvature(t) must give one value per joint, shape ({n - 1},); got {k0.shape}"
        )
    q0 = initial_coordinates(body, k0, heading_rad) if q0 is None else q0
    q0 = _checked_q0(body, q0, k0.dtype)
    saved = _integrate(body, medium, curvature, q0, dt_s, save_every, n_save)
    return trajectory(body, q0, saved, save_every * dt_s)


def _n_saves(duration_s, dt_s, save_every) -> int:
    """Check a run's times; return how many samples it saves after the start."""
    if not (math.isfinite(duration_s) and duration_s > 0 and math.isfinite(dt_s) and dt_s > 0):
        raise DigiwormError(f"duration_s and dt_s must be > 0; got {duration_s}, {dt_s}")
    if save_every < 1:
        raise DigiwormError(f"save_every must be >= 1; got {save_every}")
    return int(round(duration_s / dt_s)) // save_every


def _scan_saving(step, carry, save_every: int, n_save: int, keep):
    """Run the scan body ``step`` ``save_every × n_save`` times from ``carry``.

    Returns ``keep(carry)`` after every ``save_every`` steps, stacked along a first axis.
    """

    def save(c, _):
        c, _ = jax.lax.scan(step, c, None, length=save_every)
        return c, keep(c)

    return jax.lax.scan(save, carry, None, length=n_save)[1]


def initial_coordinates(body: Body, kappa, heading_rad: float = 0.0):
    """Return the coordinates of the shape of curvature ``kappa`` (1/mm per joint).

    Its centre of mass is at the origin and its head towards ``heading_rad``.
    """
    bends = jnp.concatenate([jnp.zeros(1), jnp.cumsum(kappa * body.segment_mm)])
    psi = heading_rad + jnp.pi + bends - bends.mean()
    return jnp.concatenate([jnp.zeros(2, psi.dtype), psi])


def _checked_q0(body: Body, q0, dtype):
    q0 = jnp.asarray(q0, dtype=dtype)
    if q0.shape != (body.n_segments + 2,):
        raise DigiwormError(f"q0 must have shape ({body.n_segments + 2},); got {q0.shape}")
    return q0


def trajectory(body: Body, q0, saved, every_s: float) -> BodyTrajectory:
    """Assemble a :class:`BodyTrajectory` from the start and the saved coordinates."""
    q = jnp.concatenate([q0[None], saved])
    return BodyTrajectory(
        t_s=jnp.arange(q.shape[0]) * every_s,
        q=q,
        xy_mm=jax.vmap(body.centres)(q),
        curvature_per_mm=jax.vmap(body.curvature)(q),
    )


def _stepper(body: Body, medium: Medium, dtype):
    r"""Return ``step(q, kappa, dt_s, tone=None)``, one linearly implicit step.

    ``kappa`` is the preferred curvature (1/mm per joint) at the step's middle. ``tone``
    (per joint, ≥ 0, default 0) stiffens each joint towards straight: the bending energy is
    :math:`\tfrac{k}{2}\sum_j [(b_j - l\kappa_j)^2 + \sigma_j b_j^2]` with the bends
    :math:`b_j`, so a held curvature :math:`\kappa_j` bends the joint only to
    :math:`\kappa_j / (1 + \sigma_j)` (antagonist muscles' shared tone: co-contraction).
    """
    n = body.n_segments
    diff = _difference(n, dtype)
    k = body.bending_stiffness_Nm2 * _NM2_TO_INTERNAL / body.segment_mm
    passive = k * diff.T @ diff

    joint = np.arange(n - 1) + 2  # the angle of the segment before each joint, in q

    def step(q, kappa, dt_s, tone=None):
        bends = diff @ q
        a = _drag_matrix(body, medium, q) + 0.5 * dt_s * passive  # symmetric positive definite
        if tone is None:
            force = -k * diff.T @ (bends - body.segment_mm * kappa)
        else:
            # the tone's extra stiffness k Dᵀ diag(σ) D is tridiagonal in the angles: added
            # entry by entry, not as a product of matrices
            sigma = jnp.broadcast_to(tone, bends.shape)
            force = -k * diff.T @ ((1.0 + sigma) * bends - body.segment_mm * kappa)
            c = 0.5 * dt_s * k * sigma
            a = (a.at[joint, joint].add(c).at[joint + 1, joint + 1].add(c)
                 .at[joint, joint + 1].add(-c).at[joint + 1, joint].add(-c))  # fmt: skip
        return q + jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), dt_s * force)

    return step


@eqx.filter_jit
def _integrate(body, medium, curvature, q0, dt_s, save_every, n_save):
    body_step = _stepper(body, medium, q0.dtype)

    def step(carry, _):
        q, t = carry
        return (body_step(q, curvature(t + 0.5 * dt_s), dt_s), t + dt_s), None

    start = (q0, jnp.zeros((), q0.dtype))
    return _scan_saving(step, start, save_every, n_save, lambda c: c[0])
