"""Behaviour of a whole-worm run (:func:`~digiworm.body.simulate_worm`), read as trackers do.

Direction comes from the body's motion, not from the model's internal state: the centroid's
velocity along the head's direction, averaged over ``smooth_s`` (1 s: about one crawling
cycle, so the lateral sway cancels). A run of one sign shorter than ``min_epoch_s`` joins its
neighbours. A *reversal* is a forward epoch followed by a backward one (Roberts et al. 2016
and Huang et al. 2019 count them so on tracked worms).

Read-outs (:func:`behaviour`): forward and reverse speed over their epochs, reversals per
minute, mean forward run and reversal duration, the gait (:func:`~digiworm.body.gait`) over
the longest forward epoch, the eigenworm variance, the muscles' co-contraction, and for each
touch whether the worm was moving backward within 3 s.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from .._errors import DigiwormError
from ._readouts import eigenworm_variance, gait

__all__ = ["AXIAL_SHORTENING", "animate_worm", "behaviour", "motion_direction", "plot_worm"]

#: Fractional shortening of the body when every muscle contracts on both sides at once
#: (*assumed*: the rod is inextensible, so shortening is read from co-contraction).
AXIAL_SHORTENING = 0.1


def _moving_average(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return x
    kernel = np.ones(n) / n
    pad = np.pad(x, (n // 2, n - 1 - n // 2), mode="edge")
    return np.convolve(pad, kernel, mode="valid")


def _epochs(sign: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """Return the runs ``(start, stop, sign)`` of ``sign`` (±1), short ones merged."""
    changes = np.flatnonzero(np.diff(sign)) + 1
    bounds = np.concatenate([[0], changes, [sign.size]])
    runs = [[int(a), int(b), int(sign[a])] for a, b in zip(bounds[:-1], bounds[1:])]
    merged = True
    while merged and len(runs) > 1:
        merged = False
        k = min(range(len(runs)), key=lambda i: runs[i][1] - runs[i][0])
        if runs[k][1] - runs[k][0] < min_len:
            if k == 0:
                runs[1][0] = runs[0][0]
            else:
                runs[k - 1][1] = runs[k][1]
            del runs[k]
            # join neighbours that now share a sign
            joined = [runs[0]]
            for r in runs[1:]:
                if r[2] == joined[-1][2]:
                    joined[-1][1] = r[1]
                else:
                    joined.append(r)
            runs = joined
            merged = True
    return [tuple(r) for r in runs]


def motion_direction(ds: xr.Dataset, smooth_s: float = 1.0) -> xr.DataArray:
    """Return the smoothed centroid velocity along the head direction (mm/s; forward > 0)."""
    if not (math.isfinite(smooth_s) and smooth_s > 0):
        raise DigiwormError(f"smooth_s must be a number of seconds > 0; got {smooth_s}")
    t = ds["time"].values
    xy = ds["xy_mm"].values
    centroid = xy.mean(axis=1)
    head = xy[:, 0] - xy[:, -1]
    head = head / np.maximum(np.linalg.norm(head, axis=1, keepdims=True), 1e-30)
    vel = np.gradient(centroid, t, axis=0)
    along = (vel * head).sum(axis=1)
    n = max(1, int(round(smooth_s / (t[1] - t[0]))))
    return xr.DataArray(_moving_average(along, n), coords={"time": t}, dims="time",
                        attrs={"units": "mm/s"})  # fmt: skip


def behaviour(
    ds: xr.Dataset, *, discard_s: float = 2.0, smooth_s: float = 1.0, min_epoch_s: float = 1.0
) -> dict:
    """Return the read-outs of a :func:`~digiworm.body.simulate_worm` run (module docstring).

    Keys: ``speed_mm_per_s`` (forward epochs), ``reverse_speed_mm_per_s``,
    ``reversals_per_min``, ``forward_run_s``, ``reversal_s``, ``fraction_backward``, the
    gait's ``frequency_hz``, ``wavelength_body_lengths``, ``amplitude_per_body_length``,
    ``wave_direction`` and ``gait_window_s`` (longest forward epoch), ``eigenworm_variance_4``,
    ``co_contraction`` (mean over rows and time of the smaller of the ventral and dorsal
    activations), ``body_length_change`` (:data:`AXIAL_SHORTENING` × co-contraction: a
    fraction of the length, *assumed* scale), ``touch_reversals`` (one bool per touch) and
    ``touch_length_change`` (per touch: the length change over the 3 s after it minus the 2 s
    before).
    """
    from ._worm import body_trajectory

    t = ds["time"].values
    if not (math.isfinite(discard_s) and 0 <= discard_s < t[-1] - t[0]):
        raise DigiwormError(f"discard_s must be in [0, {t[-1] - t[0]:g}) s; got {discard_s}")
    dt = float(t[1] - t[0])
    v = motion_direction(ds, smooth_s).values
    keep = t >= t[0] + discard_s
    tk, vk = t[keep], v[keep]
    sign = np.where(vk >= 0, 1, -1)
    runs = _epochs(sign, max(1, int(round(min_epoch_s / dt))))
    fwd = [r for r in runs if r[2] > 0]
    back = [r for r in runs if r[2] < 0]
    reversals = sum(1 for a, b in zip(runs[:-1], runs[1:]) if a[2] > 0 and b[2] < 0)
    minutes = (tk[-1] - tk[0] + dt) / 60.0
    in_back = np.zeros(vk.size, bool)
    for a, b, _ in back:
        in_back[a:b] = True

    def mean_len(rs):
        # epochs cut by the window's ends are kept: they bound the mean from below
        return float(np.mean([(b - a) * dt for a, b, _ in rs])) if rs else None

    traj = body_trajectory(ds)
    out = {
        "duration_s": float(t[-1] - t[0] + dt),
        "window_s": float(minutes * 60),
        "speed_mm_per_s": float(vk[~in_back].mean()) if (~in_back).any() else 0.0,
        "reverse_speed_mm_per_s": float(-vk[in_back].mean()) if in_back.any() else None,
        "reversals_per_min": reversals / minutes,
        "forward_run_s": mean_len(fwd),
        "reversal_s": mean_len(back),
        "fraction_backward": float(in_back.mean()),
    }
    longest = max(fwd, key=lambda r: r[1] - r[0], default=None)
    if longest is not None and (longest[1] - longest[0]) * dt >= 3.0:
        a, b = np.flatnonzero(keep)[longest[0]], np.flatnonzero(keep)[longest[1] - 1] + 1
        window = type(traj)(*(x[a:b] for x in traj))
        g = gait(window, float(ds.attrs["body_length_mm"]))
        out.update(
            frequency_hz=g["frequency_hz"],
            wavelength_body_lengths=g["wavelength_body_lengths"],
            amplitude_per_body_length=g["amplitude_per_body_length"],
            wave_direction=g["wave_direction"],
            gait_window_s=g["window_s"],
        )
    else:
        none = ("frequency_hz", "wavelength_body_lengths", "amplitude_per_body_length",
                "wave_direction")  # fmt: skip
        out.update(dict.fromkeys(none), gait_window_s=0.0)
    out["eigenworm_variance_4"] = eigenworm_variance(traj, discard_s=discard_s)
    cc = _co_contraction(ds)
    out["co_contraction"] = float(cc[keep].mean())
    out["body_length_change"] = -AXIAL_SHORTENING * out["co_contraction"]
    out["touch_reversals"] = _touch_reversals(ds, t, v)
    out["touch_length_change"] = [
        float(-AXIAL_SHORTENING * (cc[(t > at) & (t <= at + 3)].mean()
                                   - cc[(t > at - 2) & (t <= at)].mean()))
        for at in _touch_times(ds)
    ]  # fmt: skip
    return out


def _co_contraction(ds: xr.Dataset) -> np.ndarray:
    """Return the co-contraction over time: the rows' mean of min(ventral, dorsal)."""
    a = ds["muscle_activation"].values
    names = [str(m) for m in ds["muscle"].values]
    ventral = np.array([m.startswith("MV") for m in names])
    rows = np.array([int(m[3:]) for m in names])
    per_row = []
    for r in np.unique(rows):
        v = a[:, ventral & (rows == r)].mean(axis=1)
        d = a[:, ~ventral & (rows == r)].mean(axis=1)
        per_row.append(np.minimum(v, d))
    return np.mean(per_row, axis=0)


def _touch_times(ds: xr.Dataset) -> list[float]:
    spec = ds.attrs.get("touch", "")
    return [float(item.partition("@")[2]) for item in filter(None, spec.split(";"))]


def _touch_reversals(ds: xr.Dataset, t: np.ndarray, v: np.ndarray) -> list[bool]:
    """Return, for each touch onset, whether the worm moved backward within 3 s."""
    return [bool((v[(t > at) & (t <= at + 3.0)] < 0).any()) for at in _touch_times(ds)]


def plot_worm(ds: xr.Dataset, path, *, title: str | None = None) -> None:
    """Draw a worm run (PNG/SVG, written atomically).

    The curvature kymograph, the path coloured by direction, and over time the motion, the
    backward gate and the touches.
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._io import write_with

    path = Path(path)
    t = ds["time"].values
    kl = ds["curvature_per_mm"].values * float(ds.attrs["body_length_mm"])
    v = motion_direction(ds).values
    fig = plt.figure(figsize=(11, 6.5), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[2.2, 1], height_ratios=[1.6, 1])
    ax_k = fig.add_subplot(grid[0, 0])
    vmax = float(np.percentile(np.abs(kl), 99)) or 1.0
    im = ax_k.imshow(kl.T, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                     extent=(t[0], t[-1], 1.0, 0.0))  # fmt: skip
    fig.colorbar(im, ax=ax_k, label="curvature κL (ventral +)")
    ax_k.set_ylabel("position (head 0, tail 1)")
    ax_k.set_title(title or f"worm in {ds.attrs.get('medium', '?')}")
    ax_p = fig.add_subplot(grid[:, 1])
    c = ds["xy_mm"].values.mean(axis=1)
    back = v < 0
    ax_p.plot(c[:, 0], c[:, 1], color="0.7", lw=0.8)
    ax_p.scatter(c[back, 0], c[back, 1], s=2, color="tab:red", label="backward")
    ax_p.scatter(c[~back, 0], c[~back, 1], s=2, color="tab:blue", label="forward")
    ax_p.set_aspect("equal", adjustable="datalim")
    ax_p.set_xlabel("x (mm)")
    ax_p.set_ylabel("y (mm)")
    ax_p.legend(loc="best", fontsize=8, markerscale=4)
    ax_v = fig.add_subplot(grid[1, 0], sharex=ax_k)
    ax_v.plot(t, v * 1e3, color="k", lw=1, label="velocity along the head (µm/s)")
    ax_v.axhline(0, color="0.6", lw=0.5)
    ax_v.set_ylabel("µm/s")
    ax_v.set_xlabel("time (s)")
    ax_g = ax_v.twinx()
    ax_g.fill_between(t, 0, ds["backward_gate"].values, color="tab:red", alpha=0.25, lw=0)
    ax_g.set_ylim(0, 1)
    ax_g.set_ylabel("backward gate", color="tab:red")
    for item in filter(None, ds.attrs.get("touch", "").split(";")):
        where, _, at = item.partition("@")
        ax_v.axvline(float(at), color="tab:green", lw=1.2)
        ax_v.text(float(at), ax_v.get_ylim()[1], f" {where} touch", color="tab:green",
                  va="top", fontsize=8)  # fmt: skip
    fmt = path.suffix.lstrip(".").lower()
    write_with(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight"))
    plt.close(fig)


def animate_worm(ds: xr.Dataset, path, *, fps: int = 10, max_frames: int = 400) -> int:
    """Write an animated GIF of a worm run; return the number of frames.

    Each frame draws the body from the simulated coordinates, with every neuron a dot at its
    place along the body coloured by its activity (or ΔF/F), the camera following the
    centroid; the title gives the time, the direction and any touch. Frames are taken every
    ``1/fps`` simulated seconds (real time), at most ``max_frames`` of them.
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from .._io import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise DigiwormError(f"video {str(path)!r} must end in .gif (mp4 would need ffmpeg)")
    if fps < 1 or max_frames < 1:
        raise DigiwormError(f"fps and max_frames must be >= 1; got {fps}, {max_frames}")
    t = ds["time"].values
    step = max(1, int(round(1.0 / (fps * (t[1] - t[0])))))
    frames = np.arange(0, t.size, step)[:max_frames]
    xy = ds["xy_mm"].values
    kind = ds.attrs.get("output_kind", "activity")
    out = np.nan_to_num(ds[kind].values)
    pos = ds["neuron_position"].values
    seg = np.clip(np.round(pos * (xy.shape[1] - 1)).astype(int), 0, xy.shape[1] - 1)
    lo, hi = np.percentile(out, [1, 99])
    v = motion_direction(ds).values
    touches = _touch_times(ds)

    fig, ax = plt.subplots(figsize=(5, 4.4), dpi=80)
    (line,) = ax.plot([], [], color="0.75", lw=9, solid_capstyle="round", zorder=1)
    dots = ax.scatter(xy[0, seg, 0], xy[0, seg, 1], c=out[0], cmap="magma", vmin=lo,
                      vmax=hi if hi > lo else lo + 1, s=9, zorder=2)  # fmt: skip
    (head,) = ax.plot([], [], "o", color="tab:green", ms=5, zorder=3)
    fig.colorbar(dots, ax=ax, shrink=0.7, label=f"neuron {kind}")
    ax.set_aspect("equal")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")

    def draw(i):
        body = xy[i]
        c = body.mean(axis=0)
        line.set_data(body[:, 0], body[:, 1])
        dots.set_offsets(body[seg])
        dots.set_array(out[i])
        head.set_data([body[0, 0]], [body[0, 1]])
        ax.set_xlim(c[0] - 0.7, c[0] + 0.7)
        ax.set_ylim(c[1] - 0.7, c[1] + 0.7)
        touched = [a for a in touches if a <= t[i] < a + 1.0]
        ax.set_title(f"t = {t[i]:5.1f} s   {'backward' if v[i] < 0 else 'forward'}"
                     + ("   touch" if touched else ""))  # fmt: skip
        return line, dots, head

    images = []
    for i in frames:
        draw(i)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3]).quantize(colors=128))
    plt.close(fig)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(round(1000 / fps)), loop=0)  # fmt: skip
    return int(frames.size)
