"""The top hits' effect sizes on every member of the fitted worm's bootstrap ensemble.

The shipped worm is the mean of the final fit's Bayesian-bootstrap ensemble
(:func:`digiworm.reproduce.fitted_ensemble`). A hit found on it is rerun on each member, with
each member's own wild type, so its effect comes with the spread the data leave in the fitted
parameters: mean, standard deviation and range over the members, and how many members
``agree``: an effect of the shipped worm's sign and at least half its size (the RMS change for
a neural hit; the log of the speed ratio for a behavioural one, a ratio below 0.001 counted as
0.001, so that every paralysis agrees). Rows of another model kind (uncalibrated, a file) have
no ensemble and say so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..experiments import AMINES
from ._run import RATIO_FLOOR

__all__ = ["ENSEMBLE_KINDS", "hit_ensemble"]

#: The model kinds with a fitted ensemble.
ENSEMBLE_KINDS = ("graded", "linear")


def hit_ensemble(phenotypes, summary, atlas, duration_s, behaviour_duration_s, k: int = 5,
                 progress=None) -> pd.DataFrame:  # fmt: skip
    """Rerun the top ``k`` hits of each read-out on every ensemble member; one row per hit.

    Neural hits: ``neural_change_rms`` per member; behavioural hits: ``speed_ratio_wt``. The
    shipped worm's value is the screen's own.
    """
    from ..reproduce import fitted_ensemble

    by_row = phenotypes.set_index("row")
    members: dict[str, list] = {}
    out = []
    for readout, block in summary["hits"].items():
        column = "neural_change_rms" if readout == "neural" else "speed_ratio_wt"
        for hit in block["hits"][:k]:
            rec = by_row.loc[hit["row"]].to_dict()
            base = {"row": hit["row"], "readout": readout, "phenotype": column,
                    **{c: rec[c] for c in ("drug", "dose_uM", "knockout", "ablate", "stimulate",
                                           "medium", "model", *AMINES)},
                    "shipped": float(rec[column])}  # fmt: skip
            if rec["model"] not in ENSEMBLE_KINDS:
                out.append({**base, "note": f"model {rec['model']} has no fitted ensemble"})
                continue
            if rec["model"] not in members:
                members[rec["model"]] = fitted_ensemble(atlas, rec["model"], progress=progress)
            values = np.array([
                _neural(rec, m, atlas, duration_s) if readout == "neural"
                else _behaviour(rec, m, atlas, behaviour_duration_s)
                for m in members[rec["model"]]
            ])  # fmt: skip
            out.append({**base, **_spread(values, base["shipped"], readout)})
    return pd.DataFrame(out)


def _spread(values: np.ndarray, shipped: float, readout: str) -> dict:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"members": 0, "note": "no member gave a finite value"}

    def effect(v):  # neural: the RMS change itself; behaviour: log of the speed ratio
        return v if readout == "neural" else np.log(np.clip(v, RATIO_FLOOR, None))

    ship = effect(np.float64(shipped))
    agree = (np.sign(effect(finite)) == np.sign(ship)) & (np.abs(effect(finite)) >= 0.5 * abs(ship))
    return {"members": int(finite.size), "mean": float(finite.mean()),
            "sd": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
            "low": float(finite.min()), "high": float(finite.max()),
            "agree": int(agree.sum()), "note": ""}  # fmt: skip


def _neural(rec, member, atlas, duration_s) -> float:
    from ..app import build_model
    from ..simulate import model_precision
    from ._run import _names, _request, _response, _wild_type

    req = _request(rec, duration_s, atlas)
    wt_req = _request(_wild_type(model=rec["model"], stimulate=rec["stimulate"]), duration_s,
                      atlas)  # fmt: skip
    with model_precision(member):
        model = build_model(req, atlas, base=member)
        resp, wt = _response(model, req), _response(member, wt_req)
    keep = np.array([n not in set(_names(rec["stimulate"])) for n in member.names])
    both = keep & np.isfinite(resp) & np.isfinite(wt)
    return float(np.sqrt(np.mean((resp[both] - wt[both]) ** 2))) if both.any() else math.nan


def _behaviour(rec, member, atlas, duration_s) -> float:
    from ..app import run_behaviour
    from ._run import _behaviour_request, _wild_type

    wt = _wild_type(model=rec["model"], medium=rec["medium"], seed=rec["seed"])
    _, got = run_behaviour(_behaviour_request(rec, duration_s, atlas), atlas, base=member)
    _, ref = run_behaviour(_behaviour_request(wt, duration_s, atlas), atlas, base=member)
    speed, wt_speed = got.get("speed_mm_per_s"), ref.get("speed_mm_per_s")
    ok = isinstance(speed, float) and isinstance(wt_speed, float) and wt_speed > 0
    return speed / wt_speed if ok else math.nan
