"""Behaviour read off a body trajectory, as people measure it on tracked worms.

* centroid speed and direction: the centre of mass's net displacement over the window, and
  its sign along the body's mean tail-to-head axis (forward > 0);
* undulation frequency: the peak of the mid-body curvature's power spectrum, placed between
  the bins by the parabola through the peak and its neighbours;
* wavelength: one over the slope of the curvature wave's phase along the body, at that
  frequency, over the middle of the body (0.1–0.9 body lengths), in body lengths;
* achieved amplitude: the curvature's amplitude at that frequency, times the body length
  (below :data:`STILL_AMPLITUDE` the body is still: no frequency, wavelength or direction);
* eigenworms: the fraction of the tangent-angle variance that the first four principal
  shapes hold (≈ 95 % on real worms; Stephens et al. 2008, PLoS Comput Biol 4:e1000028).
"""

from __future__ import annotations

import numpy as np

from .._errors import DigiwormError
from ._rod import BodyTrajectory

__all__ = ["STILL_AMPLITUDE", "eigenworm_variance", "gait", "plot_gait"]

#: Below this mid-body curvature amplitude (per body length) the body does not undulate: its
#: frequency and wavelength are NaN and its wave direction "none". Crawling and swimming worms
#: reach 5–10 (Fang-Yen et al. 2010); this is 1–2 % of that.
STILL_AMPLITUDE = 0.1


def _window(traj: BodyTrajectory, discard_s: float):
    t = np.asarray(traj.t_s)
    keep = t >= t[0] + discard_s - 1e-9
    if keep.sum() < 8:
        raise DigiwormError(
            f"discard_s {discard_s} leaves {int(keep.sum())} samples of {t.size}: need 8 or more"
        )
    return keep


def gait(traj: BodyTrajectory, length_mm: float, *, discard_s: float = 0.0) -> dict:
    """Return the gait of ``traj`` after ``discard_s`` seconds.

    Keys: ``speed_mm_per_s`` (net centroid speed), ``forward_mm_per_s`` (its signed component
    along the head direction), ``direction`` (``forward``/``backward``), ``frequency_hz``,
    ``wavelength_body_lengths``, ``amplitude_per_body_length`` (mid-body curvature amplitude
    × L) and ``window_s``. Read the wavelength over whole cycles: pass a window that holds an
    integer number of them for an exact spectrum.
    """
    keep = _window(traj, discard_s)
    t = np.asarray(traj.t_s)[keep]
    q = np.asarray(traj.q)[keep]
    xy = np.asarray(traj.xy_mm)[keep]
    kappa = np.asarray(traj.curvature_per_mm)[keep]
    span = t[-1] - t[0]
    disp = q[-1, :2] - q[0, :2]
    head = (xy[:, 0] - xy[:, -1]).mean(axis=0)
    head = head / max(np.linalg.norm(head), 1e-30)
    forward = float(disp @ head / span)

    n_joint = kappa.shape[1]
    u = np.arange(1, n_joint + 1) / (n_joint + 1)
    mid = (u >= 0.1) & (u <= 0.9)
    dt = t[1] - t[0]
    centred = kappa - kappa.mean(axis=0)
    power = np.abs(np.fft.rfft(centred[:, mid], axis=0)) ** 2
    freqs = np.fft.rfftfreq(t.size, dt)
    total = power.sum(axis=1)
    peak = int(np.argmax(total[1:])) + 1
    f = float(freqs[peak])
    if peak + 1 < total.size:  # between the bins: the parabola through the peak's neighbours
        lo, mid_p, hi = total[peak - 1 : peak + 2]
        curve = lo - 2 * mid_p + hi
        if curve < 0:
            f += float(0.5 * (lo - hi) / curve * (freqs[1] - freqs[0]))
    phasor = (centred * np.exp(2j * np.pi * f * t)[:, None]).mean(axis=0) * 2
    phase = np.unwrap(np.angle(phasor[mid]))
    slope = np.polyfit(u[mid], phase, 1)[0]  # rad per body length
    # e^{+i2πft} picks the phase of cos(2π(u/λ − ft)) as +2πu/λ: a head-to-tail wave has slope > 0
    amplitude = float(np.abs(phasor[mid]).mean() * length_mm)
    still = amplitude < STILL_AMPLITUDE or slope == 0
    return {
        "speed_mm_per_s": float(np.linalg.norm(disp) / span),
        "forward_mm_per_s": forward,
        "direction": "forward" if forward > 0 else "backward",
        "frequency_hz": float("nan") if still else f,
        "wavelength_body_lengths": float("nan") if still else float(2 * np.pi / abs(slope)),
        "wave_direction": "none" if still else "head to tail" if slope > 0 else "tail to head",
        "amplitude_per_body_length": amplitude,
        "window_s": float(span),
    }


def eigenworm_variance(traj: BodyTrajectory, modes: int = 4, *, discard_s: float = 0.0) -> float:
    """Fraction of the tangent-angle variance in the first ``modes`` principal shapes.

    The tangent angles are taken relative to their mean along the body (rotation removed), as
    Stephens et al. (2008) do. A body whose shape never changes has no posture variance: NaN.
    """
    keep = _window(traj, discard_s)
    psi = np.asarray(traj.q)[keep, 2:]
    psi = np.unwrap(psi, axis=1)
    psi = psi - psi.mean(axis=1, keepdims=True)
    psi = psi - psi.mean(axis=0)
    s = np.linalg.svd(psi, compute_uv=False) ** 2
    if modes < 1 or modes > s.size:
        raise DigiwormError(f"modes must be from 1 to {s.size}; got {modes}")
    return float(s[:modes].sum() / s.sum()) if s.sum() > 0 else float("nan")


def plot_gait(runs: dict, length_mm: float, path) -> None:
    """Plot each run's curvature kymograph and centroid path side by side (PNG/SVG, atomic).

    ``runs`` maps a label to a :class:`BodyTrajectory`; one column per run: the curvature
    (κL, ventral positive) over time and body position, and the centre of mass's path.
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._io import write_with

    if not runs:
        raise DigiwormError("plot_gait needs at least one run")
    path = Path(path)
    fig, axes = plt.subplots(
        2, len(runs), figsize=(4.6 * len(runs), 6.5), squeeze=False,
        gridspec_kw={"height_ratios": [2, 1]}, layout="constrained",
    )  # fmt: skip
    for k, (label, traj) in enumerate(runs.items()):
        t = np.asarray(traj.t_s)
        kl = np.asarray(traj.curvature_per_mm) * length_mm
        vmax = float(np.percentile(np.abs(kl), 99)) or 1.0
        im = axes[0, k].imshow(kl.T, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                               extent=(t[0], t[-1], 1.0, 0.0))  # fmt: skip
        axes[0, k].set_title(label)
        axes[0, k].set_xlabel("time (s)")
        if k == 0:
            axes[0, k].set_ylabel("position (head 0, tail 1)")
        fig.colorbar(im, ax=axes[0, k], label="curvature κL (ventral +)")
        q = np.asarray(traj.q)
        axes[1, k].plot(q[:, 0], q[:, 1], lw=1)
        axes[1, k].plot(q[-1, 0], q[-1, 1], "o", ms=4)
        axes[1, k].set_aspect("equal", adjustable="datalim")
        axes[1, k].set_xlabel("x (mm)")
        if k == 0:
            axes[1, k].set_ylabel("y (mm)")
    fmt = path.suffix.lstrip(".").lower()
    write_with(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight"))
    plt.close(fig)
