"""The behaviour targets: cited measurements that simulated behaviour is scored against.

``data/behaviour_targets.csv`` holds one row per measurement: the read-out key it scores (as
:func:`~digiworm.body.gait` names them), the medium, the value and its range where the source
gives one, the conditions, the paper and DOI, and the evidence: ``measured`` (a number seen in
the source), ``derived`` (arithmetic on such numbers, said how in the conditions), ``measured
(qualitative)`` (a direction of change; value is a sign or a flag) or ``recalled
(unverified)`` (a commonly quoted value not yet checked against its paper).
"""

from __future__ import annotations

import math
from importlib import resources

import pandas as pd

from .._errors import DigiwormError

__all__ = ["behaviour_targets", "score_behaviour"]

EVIDENCE = ("measured", "derived", "measured (qualitative)", "recalled (unverified)")


def behaviour_targets() -> pd.DataFrame:
    """Return the behaviour targets table, indexed by ``id``."""
    path = resources.files("digiworm.body") / "data" / "behaviour_targets.csv"
    with resources.as_file(path) as p:
        table = pd.read_csv(p, dtype={"medium": str}, keep_default_na=True)
    table["medium"] = table["medium"].fillna("")
    return table.set_index("id")


def score_behaviour(measured: dict, medium: str) -> pd.DataFrame:
    """Score read-outs (``{key: value}``, e.g. :func:`~digiworm.body.gait`'s) in ``medium``.

    One row per numeric target of that medium (or of any medium) whose key is in
    ``measured``: the target, its range, the simulated value, whether it lies in the range
    (``None`` where the source gives no range) and the relative difference from the value.
    """
    table = behaviour_targets()
    media = {m for m in table["medium"] if m}
    if medium not in media:
        raise DigiwormError(f"unknown medium {medium!r}; targets exist for {sorted(media)}")
    rows = []
    for tid, t in table.iterrows():
        if t["medium"] not in ("", medium) or t["key"] not in measured:
            continue
        if t["evidence"] == "measured (qualitative)":
            continue
        x = float(measured[t["key"]])
        has_range = not (math.isnan(t["low"]) or math.isnan(t["high"]))
        rows.append(
            {
                "id": tid,
                "quantity": t["quantity"],
                "key": t["key"],
                "target": float(t["value"]),
                "low": float(t["low"]),
                "high": float(t["high"]),
                "units": t["units"],
                "simulated": x,
                "in_range": bool(t["low"] <= x <= t["high"]) if has_range else None,
                "relative_difference": x / float(t["value"]) - 1.0,
                "evidence": t["evidence"],
                "citation": t["citation"],
            }
        )
    return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()
