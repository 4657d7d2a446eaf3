r"""The fitted expression maps shipped with digiworm, and their leave-one-out uncertainty.

:func:`fit_expression_map` takes about a minute and a half per map, so the maps that the
expression-built cells use by default are fitted once and shipped in
``digiworm/models/data/expression_maps.json``: ``all`` (fitted to all nine published
models) and, for each published model *r*, the map fitted to the other eight (``without r``),
which is what predicts *r* held out. The file records the fit's settings, the digiworm
version and the data versions; a test refits the ``all`` map with today's code and compares.
Remake it with ``digiworm neuron --validate --refit --maps-out FILE``.

**Uncertainty.** The nine leave-one-out maps :math:`\theta_{(i)}` (log channel scales, log
leak per pF, leak reversal, log capacitance and pool volume) give the jackknife covariance
:math:`\hat\Sigma = \tfrac{n-1}{n}\sum_i (\theta_{(i)}-\bar\theta)(\theta_{(i)}-\bar\theta)^T`.
:func:`jackknife_maps` returns the *n* maps :math:`\theta_c + \sqrt{n-1}\,(\theta_{(i)}-\bar\theta)`
around a centre :math:`\theta_c`, whose covariance (over the *n*) is exactly :math:`\hat\Sigma`,
correlations between channels included; the cells they build give a band around a prediction.
A channel that only one published model expresses falls back to the prior in the map without
that model, so its spread is large, as it should be.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

from .._errors import DataPackageError, DigiwormError, UnknownNameError
from ._expression_cells import ExpressionMap, fit_expression_map, fit_neuron_effects
from ._reference_cells import REFERENCE_CELLS

__all__ = [
    "EXPRESSION_MAPS_FILE",
    "fit_expression_maps",
    "fit_settings",
    "fitted_expression_map",
    "fitted_expression_maps",
    "jackknife_maps",
    "read_expression_maps",
    "write_expression_maps",
]

EXPRESSION_MAPS_FILE = "expression_maps.json"
ALL = "all"


def _maps_path() -> Path:
    return Path(str(resources.files("digiworm.models") / "data" / EXPRESSION_MAPS_FILE))


def fit_expression_maps(
    atlas,
    *,
    threshold: int = 2,
    progress: Callable[[str], None] | None = None,
    **settings,
) -> dict[str, ExpressionMap]:
    """Fit the ``all`` map and, for each published model, the map fitted without it.

    ``settings`` go to :func:`fit_expression_map` unchanged. The ``all`` map then gets its
    neuron effects (:func:`fit_neuron_effects`, default settings); the leave-one-out maps,
    which only predict held-out neurons from their shared part, get none.
    """
    refs = tuple(REFERENCE_CELLS)
    maps = {}
    for k, name in enumerate((ALL, *refs)):
        if progress is not None:
            progress(f"fitting the expression map {name if name == ALL else 'without ' + name} "
                     f"({k + 1}/{len(refs) + 1})")  # fmt: skip
        others = None if name == ALL else tuple(r for r in refs if r != name)
        maps[name] = fit_expression_map(atlas, others, threshold=threshold, **settings)
    if progress is not None:
        progress("fitting each published neuron's departure from the 'all' map")
    maps[ALL] = fit_neuron_effects(atlas, maps[ALL])
    return maps


def fit_settings() -> dict:
    """Return today's settings of :func:`fit_expression_map` (its defaults and protocol)."""
    import inspect

    from . import _expression_cells as ec

    def defaults(f):
        return {
            k: p.default
            for k, p in inspect.signature(f).parameters.items()
            if p.kind is p.KEYWORD_ONLY and k != "targets"
        }

    return defaults(fit_expression_map) | {
        "neuron_effects": defaults(fit_neuron_effects),
        "transient_protocol_ms": list(ec.TRANSIENT_PROTOCOL_MS),
        "transient_dt_ms": ec.TRANSIENT_DT_MS,
        "fit_grid_mV": [float(ec.FIT_GRID_MV[0]), float(ec.FIT_GRID_MV[-1])],
    }


def write_expression_maps(path, maps: dict[str, ExpressionMap], settings: dict | None = None):
    """Write ``maps`` (from :func:`fit_expression_maps`) with their provenance, atomically.

    ``settings`` (default :func:`fit_settings`) records how they were fitted.
    """
    from importlib.metadata import version

    from .._io import atomic_write_json

    missing = [n for n in (ALL, *REFERENCE_CELLS) if n not in maps]
    if missing:
        raise DigiwormError(f"the maps lack {missing}: write all of fit_expression_maps' output")
    thresholds = {m.threshold for m in maps.values()}
    atomic_write_json(
        path,
        {
            "made_with": {
                "digiworm": version("digiworm"),
                "expression": _cengen_source(),
                "threshold": thresholds.pop() if len(thresholds) == 1 else sorted(thresholds),
                "settings": fit_settings() if settings is None else dict(settings),
            },
            "maps": {name: m.to_dict() for name, m in maps.items()},
        },
    )


def _cengen_source() -> str:
    from ..atlas._registry import DATASETS

    return DATASETS["cengen"].source


def read_expression_maps(path) -> tuple[dict[str, ExpressionMap], dict]:
    """Return the maps and the ``made_with`` record of a :func:`write_expression_maps` file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        maps = {name: ExpressionMap.from_dict(m) for name, m in data["maps"].items()}
    except (OSError, ValueError, KeyError) as e:
        raise DataPackageError(
            f"cannot read the expression maps {str(path)!r} ({e}): reinstall digiworm, or "
            "remake them with `digiworm neuron --validate --refit --maps-out FILE`"
        ) from e
    return maps, data.get("made_with", {})


def fitted_expression_maps() -> dict[str, ExpressionMap]:
    """Return the shipped maps: ``all`` and one per published model (fitted without it)."""
    return read_expression_maps(_maps_path())[0]


def fitted_expression_map(threshold: int = 2) -> ExpressionMap:
    """Return the shipped map fitted to all nine published models (CeNGEN ``threshold`` 2).

    The shipped maps are fitted at threshold 2; another threshold is refused with the way to
    get such a map (:func:`~digiworm.models.fit_expression_map`).
    """
    m = fitted_expression_maps()[ALL]
    if threshold != m.threshold:
        raise DigiwormError(
            f"the shipped expression map is fitted at CeNGEN threshold {m.threshold}, not "
            f"{threshold}: fit one with digiworm.models.fit_expression_map(atlas, "
            f"threshold={threshold}) (about 1.5 min) and pass it as the mapping"
        )
    return m


def _vector(m: ExpressionMap, channels: list[str]) -> np.ndarray:
    return np.array(
        [math.log(m.scale_nS[c]) for c in channels]
        + [math.log(m.leak_nS_per_pF), m.e_leak_mV, math.log(m.c_pF), math.log(m.vol_um3)]
    )


def _from_vector(template: ExpressionMap, channels: list[str], x: np.ndarray, name: str):
    n = len(channels)
    return replace(
        template,
        scale_nS={c: float(math.exp(x[i])) for i, c in enumerate(channels)},
        leak_nS_per_pF=float(math.exp(x[n])),
        e_leak_mV=float(x[n + 1]),
        c_pF=float(math.exp(x[n + 2])),
        vol_um3=float(math.exp(x[n + 3])),
        method=f"{template.method}, jackknife member {name}",
    )


def jackknife_maps(
    maps: dict[str, ExpressionMap] | None = None, centre: str = ALL
) -> dict[str, ExpressionMap]:
    r"""Return the jackknife ensemble of maps around ``maps[centre]`` (see the module docstring).

    Parameters
    ----------
    maps : dict, optional
        ``all`` and the leave-one-out maps (default: the shipped ones).
    centre : str
        ``all``, or a published model's name: the ensemble then sits around the map fitted
        without it (the held-out prediction's band).

    Returns
    -------
    dict
        One map per leave-one-out map, keyed by the published model it left out.
    """
    maps = fitted_expression_maps() if maps is None else maps
    loo = {n: m for n, m in maps.items() if n != ALL}
    if len(loo) < 3:
        raise DigiwormError(f"the jackknife needs at least 3 leave-one-out maps; got {len(loo)}")
    if centre not in maps:
        raise UnknownNameError("expression map", centre, maps)
    channels = sorted(set.intersection(*(set(m.scale_nS) for m in maps.values())))
    theta = np.stack([_vector(m, channels) for m in loo.values()])
    n = len(loo)
    spread = math.sqrt(n - 1) * (theta - theta.mean(axis=0))
    base = _vector(maps[centre], channels)
    return {
        name: _from_vector(maps[centre], channels, base + d, name) for name, d in zip(loo, spread)
    }
