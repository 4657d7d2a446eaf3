"""Gait adaptation: the same motor circuit and body in media from water to agar.

Worms swim at about 1.8 Hz with a wavelength of about 1.5 body lengths and crawl on agar at
about 0.3 Hz with about 0.65; across media between the two, frequency and wavelength fall
smoothly as the load rises (Berri et al. 2009 HFSP J 3:186; Fang-Yen et al. 2010 PNAS
107:20323). :func:`gait_adaptation` runs the forward stretch-reflex loop
(:func:`~digiworm.body.simulate_reflex`) in each medium and tabulates its gait.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._errors import DigiwormError
from ._muscles import Muscles
from ._readouts import gait
from ._reflex import ReflexCircuit, simulate_reflex
from ._rod import Body, Medium

__all__ = ["adaptation_media", "gait_adaptation"]


def adaptation_media(n: int = 6) -> list[Medium]:
    """Return ``n`` media from water (first) to agar (last), log-evenly blended."""
    if n < 2:
        raise DigiwormError(f"n must be >= 2 media; got {n}")
    return [Medium.between(f) for f in np.linspace(0.0, 1.0, n)]


def gait_adaptation(
    muscles: Muscles,
    circuit: ReflexCircuit,
    media: list[Medium],
    *,
    duration_s: float = 20.0,
    discard_s: float = 8.0,
    body: Body | None = None,
) -> pd.DataFrame:
    """Run the forward loop in each medium; return one row of gait per medium.

    Columns: ``medium``, ``drag_normal_Ns_per_m2``, ``anisotropy``, ``frequency_hz``,
    ``wavelength_body_lengths``, ``forward_mm_per_s``, ``amplitude_per_body_length``. The
    frame's ``attrs["monotonic"]`` says whether frequency and wavelength never rise as the
    normal drag rises.
    """
    if not media:
        raise DigiwormError("gait_adaptation needs at least one medium")
    body = Body() if body is None else body
    rows = []
    for medium in media:
        run = simulate_reflex(body, medium, muscles, circuit, duration_s)
        g = gait(run.body, float(body.length_mm), discard_s=discard_s)
        rows.append({
            "medium": medium.name,
            "drag_normal_Ns_per_m2": float(medium.drag_normal_Ns_per_m2),
            "anisotropy": float(medium.anisotropy),
            "frequency_hz": g["frequency_hz"],
            "wavelength_body_lengths": g["wavelength_body_lengths"],
            "forward_mm_per_s": g["forward_mm_per_s"],
            "amplitude_per_body_length": g["amplitude_per_body_length"],
        })  # fmt: skip
    table = pd.DataFrame(rows).sort_values("drag_normal_Ns_per_m2", kind="stable")
    table = table.reset_index(drop=True)
    falls = [bool(np.all(np.diff(table[c].to_numpy()) <= 1e-9))
             for c in ("frequency_hz", "wavelength_body_lengths")]  # fmt: skip
    table.attrs["monotonic"] = all(falls)
    return table
