"""ElegansBot, the independent body solver digiworm's body is checked against (not a dependency).

ElegansBot (Chung, Chang & Kim 2024, eLife; ``pip install elegansbot``, MIT, in digiworm's test
extra) is a Newtonian rigid-rod worm with masses, driven by target joint angles. Its drag
coefficients are whole-body values in µg/s; per unit length of a 1 mm body that is 10⁻⁶
N·s/m² per unit.
"""

from __future__ import annotations

import os

import numpy as np

from .._errors import DigiwormError

__all__ = ["elegansbot_wave"]


def elegansbot_wave(
    drag_normal_ug_per_s: float,
    drag_tangential_ug_per_s: float,
    frequency_hz: float,
    wavelength_body_lengths: float,
    *,
    n_segments: int = 25,
    amplitude_per_body_length: float = 7.0,
    cycles: float = 3.0,
    dt_s: float = 5e-5,
) -> tuple[float, float]:
    """Run ElegansBot under an imposed travelling wave of joint angles; read its gait.

    The target angle of joint *j* (at ``u = (j+1)/n`` body lengths from the head) is
    ``(A/n) cos(2π(u/λ − f t))``, the body starting on it; ElegansBot's default body (1 mm,
    2 µg, joint stiffness and damping of a 7×10⁻¹⁵ N·m² and 1.25×10⁻¹⁵ N·m²·s body).

    Returns the forward speed (mm/s, along the mean tail-to-head axis, over all cycles but the
    first) and the mid-body (0.1–0.9) amplitude of the achieved joint angles over the imposed.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")  # it imports pyplot
    try:
        import elegansbot
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise DigiwormError("ElegansBot is not installed: pip install elegansbot") from e
    n, f = n_segments, frequency_hz
    u = np.arange(1, n) / n
    amp = amplitude_per_body_length / n

    def target(t):
        return amp * np.cos(2 * np.pi * (u / wavelength_body_lengths - f * t))

    env = elegansbot.Worm(dt=dt_s, n=n, L=1.0, simTime=cycles / f, dt_snapshot=1e-3,
                          bT=drag_normal_ug_per_s, bII=drag_tangential_ug_per_s)  # fmt: skip
    env.theta = target(0.0)
    for _ in range(env.n_snapshot):
        env.act = target(env.t)
        env.steps()
    t, xc, tips = env.t_log, env.xyc_log, env.xy_tip_log
    w = t >= 1 / f - 1e-9
    head = (tips[w, :, 0] - tips[w, :, -1]).mean(axis=0)
    disp = xc[w][-1] - xc[w][0]
    forward = float(disp @ head / np.linalg.norm(head) / (t[w][-1] - t[w][0]))
    phasor = 2 * (env.theta_log[w] * np.exp(2j * np.pi * f * t[w])[:, None]).mean(axis=0)
    mid = (u >= 0.1) & (u <= 0.9)
    return forward, float(np.abs(phasor[mid]).mean() / amp)
