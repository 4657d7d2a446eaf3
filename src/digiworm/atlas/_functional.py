r"""The signal propagation atlas (Randi et al. 2023) on the canonical neuron index.

``funatlas.h5`` (wormneuroatlas) holds, per strain (``wt``, ``unc31``), matrices indexed
``[responding, stimulated]``: trial-mean ΔF/F (fractional, 0–30 s after the stimulation),
per-trial values, trial counts, the FDR q of a response and q of a confident absence
(``q_eq``), and fitted response kernels. A kernel is stored as rows ``[g, factor, power_t,
branch]``; it is evaluated as

.. math:: h_{ij}(t) = \sum_k c_k\, t^{p_k} e^{-g_k t},\qquad t \ge 0 \text{ in s},

which reduces to a sum of exponentials since every ``power_t`` is 0 in the shipped data. The
response of neuron *i* to activity :math:`s_j` of the stimulated neuron *j* is
:math:`\int_0^\infty h_{ij}(\tau)\, s_j(t-\tau)\, d\tau`. Factors can be large with cancelling
signs, so kernels are evaluated in float64.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from .._errors import DataPackageError, InvalidParameterError
from ._names import to_canonical

__all__ = ["STRAINS", "build_functional", "evaluate_kernels", "kernel_dataarray"]

STRAINS = ("wt", "unc31")
#: Default kernel time grid, s: 0–30 s at the ≈0.5 s imaging volume period.
DEFAULT_KERNEL_TIME_S = np.arange(0.0, 30.0 + 1e-9, 0.5)


def evaluate_kernels(
    g: np.ndarray,
    factor: np.ndarray,
    start: np.ndarray,
    nterms: np.ndarray,
    t: np.ndarray,
    power_t: np.ndarray | None = None,
) -> np.ndarray:
    r"""Evaluate sum-of-exponential kernels :math:`h(t)=\sum_k c_k t^{p_k} e^{-g_k t}` (float64).

    Parameters
    ----------
    g : array, shape (term,)
        Decay rates, 1/s, of all kernels' terms laid end to end.
    factor : array, shape (term,)
        Amplitudes :math:`c_k` (ΔF/F per unit input per s).
    start : int array, shape (...)
        Index in ``g`` of each kernel's first term.
    nterms : int array, shape (...)
        Number of terms of each kernel; 0 means no kernel (result NaN).
    t : array, shape (time,)
        Non-negative times, s.
    power_t : array, shape (term,), optional
        Powers :math:`p_k` of t (default all 0).

    Returns
    -------
    numpy.ndarray, shape (..., time)
        Kernel values, float64; NaN where ``nterms == 0``.

    Raises
    ------
    ValueError
        If any time is negative or not finite, or the shapes disagree.

    Examples
    --------
    >>> evaluate_kernels(np.array([1.0, 2.0]), np.array([3.0, -3.0]),
    ...                  np.array([0]), np.array([2]), np.array([0.0, np.log(2)]))
    array([[0.  , 0.75]])
    """
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InvalidParameterError(
            f"kernel times must be a 1-D array of finite values >= 0 s; got {t!r}"
        )
    g = np.asarray(g, dtype=np.float64)
    factor = np.asarray(factor, dtype=np.float64)
    start = np.asarray(start, dtype=np.int64)
    nterms = np.asarray(nterms, dtype=np.int64)
    if g.shape != factor.shape or start.shape != nterms.shape:
        raise InvalidParameterError(
            f"g {g.shape} and factor {factor.shape} must match, and start {start.shape} "
            f"and nterms {nterms.shape} must match"
        )
    terms = factor[:, None] * np.exp(-g[:, None] * t[None, :])
    if power_t is not None:
        power_t = np.asarray(power_t, dtype=np.float64)
        terms = terms * np.where(power_t[:, None] == 0, 1.0, t[None, :] ** power_t[:, None])
    out = np.full(start.shape + t.shape, np.nan)
    flat_start, flat_n = start.ravel(), nterms.ravel()
    have = flat_n > 0
    if have.any() and t.size:
        s, n = flat_start[have], flat_n[have]
        order = np.argsort(s, kind="stable")
        s_sorted, n_sorted = s[order], n[order]
        if np.any(s_sorted[1:] != s_sorted[:-1] + n_sorted[:-1]) or (
            s_sorted[0] != 0 or s_sorted[-1] + n_sorted[-1] != g.size
        ):
            raise DataPackageError(
                "kernel segments (start, nterms) must tile the term arrays exactly"
            )
        # each kernel summed on its own segment (no running sum across kernels), so large
        # cancelling factors of one kernel never leak rounding error into another
        seg = np.empty((s.size, t.size))
        seg[order] = np.add.reduceat(terms, s_sorted, axis=0)
        out.reshape(-1, t.size)[have] = seg
    return out


def _pad_trials(values: np.ndarray, index_rows, index_cols, n: int) -> np.ndarray:
    lengths = np.vectorize(len, otypes=[np.int64])(values)
    out = np.full((n, n, max(int(lengths.max()), 1)), np.nan)
    for (r, c), k in np.ndenumerate(lengths):
        if k and index_rows[r] >= 0 and index_cols[c] >= 0:
            out[index_rows[r], index_cols[c], :k] = values[r, c]
    return out


def build_functional(path: Path, names: list[str], strain: str) -> xr.Dataset:
    """Parse one strain of ``funatlas.h5`` onto the canonical index (302; CAN never measured)."""
    n = len(names)
    index = {name: i for i, name in enumerate(names)}
    with h5py.File(path, "r") as h5:
        raw_ids = [x.decode() for x in h5["neuron_ids"][:]]
        where = np.array([index.get(to_canonical(r, index), -1) for r in raw_ids])
        unmapped = [r for r, w in zip(raw_ids, where) if w < 0]
        ok = where >= 0
        grp = h5[strain]

        def square(key: str, fill, dtype) -> np.ndarray:
            out = np.full((n, n), fill, dtype=dtype)
            out[np.ix_(where[ok], where[ok])] = grp[key][:][np.ix_(ok, ok)]
            return out

        dff = square("dFF", np.nan, np.float64)
        q = square("q", np.nan, np.float64)
        q_eq = square("q_eq", np.nan, np.float64)
        occ = square("occ1", 0, np.int64)
        trials = _pad_trials(grp["dFF_all"][:], where, where, n)
        kernels = grp["kernels"][:]
        q_eq_th = float(grp["q_eq_th"][()])

    start = np.zeros((n, n), dtype=np.int64)
    nterms = np.zeros((n, n), dtype=np.int64)
    rows = []
    offset = 0
    for (r, c), k in np.ndenumerate(kernels):
        if len(k) and where[r] >= 0 and where[c] >= 0:
            terms = np.asarray(k, dtype=np.float64).reshape(-1, 4)
            if np.any(terms[:, 3] != 0):
                raise DataPackageError(
                    "funatlas kernel with branch != 0: digiworm cannot evaluate it"
                )
            start[where[r], where[c]] = offset
            nterms[where[r], where[c]] = len(terms)
            rows.append(terms[:, :3])
            offset += len(terms)
    params = np.concatenate(rows) if rows else np.zeros((0, 3))

    dims = ("responding", "stimulated")
    ds = xr.Dataset(
        {
            "dff": (dims, dff, {"units": "fractional dF/F, mean over trials, 0-30 s window"}),
            "dff_trials": (
                dims + ("trial",),
                trials,
                {"units": "fractional dF/F per trial; NaN pads unequal trial counts"},
            ),
            "n_trials": (
                dims,
                occ,
                {
                    "units": "count",
                    "long_name": "occ1 of funatlas.h5: stimulations in which the pair was "
                    "observed; dff_trials may hold fewer values (12% of wild-type pairs)",
                },
            ),
            "q": (dims, q, {"long_name": "FDR q of a response"}),
            "q_eq": (dims, q_eq, {"long_name": "q of a confident absence of response"}),
            "kernel_start": (dims, start),
            "kernel_nterms": (dims, nterms),
            "kernel_g": ("term", params[:, 0], {"units": "1/s"}),
            "kernel_factor": ("term", params[:, 1]),
            "kernel_power_t": ("term", params[:, 2]),
        },
        coords={"responding": names, "stimulated": names},
    )
    measured = np.isfinite(dff)
    covered = measured.any(axis=0) | measured.any(axis=1)
    ds.attrs.update(
        strain=strain,
        q_eq_th=q_eq_th,
        n_mapped=int(ok.sum()),
        unmapped=",".join(unmapped),
        never_measured=",".join(name for name, c in zip(names, covered) if not c),
        orientation="[responding, stimulated]: response of row to stimulation of column",
    )
    return ds


def kernel_dataarray(ds: xr.Dataset, t: np.ndarray) -> xr.DataArray:
    """Evaluate a functional-atlas Dataset's kernels at times ``t`` (s): (resp, stim, time)."""
    values = evaluate_kernels(
        ds["kernel_g"].values,
        ds["kernel_factor"].values,
        ds["kernel_start"].values,
        ds["kernel_nterms"].values,
        t,
        power_t=ds["kernel_power_t"].values,
    )
    return xr.DataArray(
        values,
        dims=("responding", "stimulated", "time"),
        coords={"responding": ds.responding, "stimulated": ds.stimulated, "time": np.asarray(t)},
        attrs={"units": "kernel h(t), dF/F per unit input per s; time in s", "dtype": "float64"},
    )
