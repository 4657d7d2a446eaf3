"""The explorer's moving worm: a wild-type worm and a perturbed one, run side by side.

``POST /api/behave`` takes a ``BehaveBody``: the brain, the medium (``water``, ``agar``,
``blend:F`` or a viscosity), a run length from :attr:`Limits.behave_durations_s`, the
perturbed worm's ablations, knockouts and drugs, the touches (both worms get them) and the
seed of the command switch's noise (both worms share it). It runs the worm of ``digiworm
behave`` (:func:`~digiworm.app.run_behaviour`) once or twice and returns what the page
animates: frames of each body's centreline, each neuron's change from the wild type's rest on
a shared scale, the backward gate, the read-outs with their target scores, the evidence of
every assumed part, and the ``digiworm behave`` line that reproduces each run.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .._errors import DigiwormError
from .._io import json_safe

__all__ = ["behave_view"]

#: Frames per second sent to the page (every fourth 20 ms brain step).
FRAME_EVERY = 4
#: The activity scale's quantisation: each change is sent as an integer in [-Q, Q].
Q = 100
#: One behaviour run at a time: two would only share the two cores and compile twice.
_LOCK = threading.Lock()


def behave_view(body, atlas, limits) -> dict:
    """Run ``body``'s worms (wild type, then perturbed if anything is perturbed); see module."""
    from ..app import BehaviourRequest, run_behaviour

    if not any(math.isclose(body.duration_s, d) for d in limits.behave_durations_s):
        raise DigiwormError(
            f"duration {body.duration_s:g} s is not one of the explorer's run lengths "
            f"({', '.join(f'{d:g}' for d in limits.behave_durations_s)} s; `digiworm behave` "
            "runs any length)"
        )
    if len(body.ablate) > limits.max_names or len(body.knockout) > limits.max_names:
        raise DigiwormError(f"at most {limits.max_names} neurons or genes per list")
    common = {
        "model": body.model, "medium": body.medium, "duration_s": float(body.duration_s),
        "touch": tuple((t.where, float(t.at_s)) for t in body.touch), "seed": body.seed,
    }  # fmt: skip
    wild = BehaviourRequest(**common).check(atlas)
    perturbed = BehaviourRequest(
        **common, ablate=tuple(body.ablate), knockout=tuple(body.knockout),
        drugs=tuple((d.name, float(d.dose_uM)) for d in body.drugs),
    ).check(atlas)  # fmt: skip
    requests = {"wild_type": wild}
    if perturbed.ablate or perturbed.knockout or perturbed.drugs:
        requests["perturbed"] = perturbed
    with _LOCK:
        runs = {k: run_behaviour(req, atlas) for k, req in requests.items()}
    first = runs["wild_type"][0]
    rest = first["rest"].values  # the wild type's: both runs' changes on one reference
    scale = _scale([ds for ds, _ in runs.values()], rest)
    return json_safe(
        {  # strict JSON: a NaN read-out (nothing to read) becomes null
            "medium": first.attrs["medium"],
            "duration_s": float(body.duration_s),
            "frame_s": float(first["time"].values[FRAME_EVERY - 1]),
            "time_s": [
                round(float(t), 3) for t in first["time"].values[FRAME_EVERY - 1 :: FRAME_EVERY]
            ],
            "body_length_mm": float(first.attrs["body_length_mm"]),
            "neurons": _neuron_places(atlas, first),
            "activity_scale": {"value": scale, "units": first.attrs["output_kind"], "levels": Q},
            "touch": [{"where": w, "at_s": a} for w, a in common["touch"]],
            "runs": {k: _frames(ds, summary, rest, scale) for k, (ds, summary) in runs.items()},
            "evidence": runs["wild_type"][1]["evidence"],
        }
    )


def _scale(datasets, rest) -> float:
    """Return the 99th percentile of every neuron's change from rest, over both runs (one scale)."""
    changes = [np.abs(ds[ds.attrs["output_kind"]].values - rest) for ds in datasets]
    values = np.concatenate([c[np.isfinite(c)] for c in changes])
    scale = float(np.percentile(values, 99)) if values.size else 0.0
    return scale if scale > 0 else 1.0


def _frames(ds, summary, rest, scale) -> dict:
    out = ds[ds.attrs["output_kind"]].values[FRAME_EVERY - 1 :: FRAME_EVERY]
    change = np.clip(np.rint(Q * (out - rest) / scale), -Q, Q)
    xy = ds["xy_mm"].values[FRAME_EVERY - 1 :: FRAME_EVERY]
    keep = ("speed_mm_per_s", "reverse_speed_mm_per_s", "reversals_per_min", "frequency_hz",
            "wavelength_body_lengths", "fraction_backward", "co_contraction",
            "body_length_change", "touch_reversals")  # fmt: skip
    return {
        "xy_mm": np.round(xy, 3).tolist(),  # 1 µm
        # NaN (an ablated neuron) is sent as null
        "activity": [[None if np.isnan(v) else int(v) for v in row] for row in change],
        "backward_gate": np.round(
            ds["backward_gate"].values[FRAME_EVERY - 1 :: FRAME_EVERY], 3
        ).tolist(),
        "readouts": {k: _round(summary.get(k)) for k in keep},
        "scores": [
            {k: s.get(k) for k in ("quantity", "target", "units", "simulated", "in_range")}
            for s in summary.get("scores", [])
        ],
        "ablated": [n for n in ds.attrs.get("ablated", "").split(",") if n],
        "command": _command(summary["request"]),
    }


def _round(v):
    return round(v, 4) if isinstance(v, float) and math.isfinite(v) else v


def _command(request: dict) -> str:
    parts = ["digiworm behave", f"--model {request['model']}", f"--medium {request['medium']}",
             f"--duration {request['duration_s']:g}"]  # fmt: skip
    if request["ablate"]:
        parts.append("--ablate " + ",".join(request["ablate"]))
    if request["knockout"]:
        parts.append("--knockout " + ",".join(request["knockout"]))
    parts += [f"--drug {d}" for d in request["drug"]]
    parts += [f"--touch {t}" for t in request["touch"]]
    parts.append(f"--seed {request['seed']} --out run.nc --video run.gif")
    return " ".join(parts)


def _neuron_places(atlas, ds) -> list[dict]:
    """Each neuron's place on the drawn body: along it (head 0, tail 1) and across it.

    Across is the atlas's dorsoventral coordinate minus its running median along the body
    (the atlas's worm is curved), scaled to [-1, 1], dorsal positive: a drawing aid, not
    a measurement.
    """
    names = [str(n) for n in ds["neuron"].values]
    along = ds["neuron_position"].values
    z = atlas.neurons.loc[names, "z"].to_numpy(dtype=float)
    order = np.argsort(along, kind="stable")
    local = np.empty_like(z)
    half = 15
    for rank, i in enumerate(order):
        window = order[max(0, rank - half) : rank + half + 1]
        local[i] = np.median(z[window])
    across = z - local
    across = across / max(float(np.max(np.abs(across))), 1e-9)
    return [
        {"name": n, "along": round(float(a), 4), "across": round(float(c), 3)}
        for n, a, c in zip(names, along, across)
    ]
