"""Any connectome as an edge list: the format, its loader and its checks.

A connectome is two tables:

* **edges** (CSV or Parquet), one row per connection: ``pre``, ``post`` (neuron ids, as in
  the neuron table), ``weight`` (a synapse count or a strength, finite), and optionally
  ``sign`` (+1 excitatory, −1 inhibitory; the weight is then ≥ 0), or ``transmitter`` (turned
  into a sign by :data:`TRANSMITTER_SIGNS` or the caller's own map), and ``kind``
  (``chemical``, the default, or ``electrical`` for a gap junction, listed once per pair and
  conducting both ways). Without ``sign`` or ``transmitter`` the weight carries its own sign.
* **neurons** (optional), one row per neuron: ``id``, ``type``, and optionally ``x``, ``y``,
  ``z``. Without it the neurons are the ids the edges name, sorted.

:func:`load` reads them into a :class:`Connectome` (index arrays, one entry per edge) and
refuses bad rows by number, all at once: ids the neuron table lacks, weights that are NaN or
infinite, negative weights beside a sign, unknown transmitters or kinds, signs other than
±1, self-connected gap junctions and duplicated connections. :func:`from_flywire` maps the
FlyWire export of Shiu et al. (2024) onto it, :func:`from_atlas` gives the worm's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import DigiwormError

__all__ = [
    "TRANSMITTER_SIGNS",
    "Connectome",
    "from_atlas",
    "from_flywire",
    "load",
]

#: Sign of a fast transmitter's synapse when a file gives transmitters instead of signs.
#: Glutamate is inhibitory as in the fly brain model of Shiu et al. 2024 (Nature 634:210),
#: which treats it as acting on GluCl channels; pass ``signs=`` to :func:`load` to differ.
TRANSMITTER_SIGNS = {"acetylcholine": 1, "ach": 1, "gaba": -1, "glutamate": -1, "glu": -1}
KINDS = ("chemical", "electrical")
_SHOWN = 5  # bad rows named per problem


@dataclass(frozen=True)
class Connectome:
    """A connectome as index arrays, one entry per edge (see the module for the format).

    ``pre`` and ``post`` index :attr:`ids`; ``weight`` is signed (its sign is the synapse's);
    ``electrical`` marks gap junctions (one entry per pair, unsigned weight).
    """

    ids: np.ndarray
    types: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    electrical: np.ndarray
    positions: np.ndarray | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def n_neurons(self) -> int:
        return len(self.ids)

    @property
    def n_edges(self) -> int:
        return len(self.pre)

    def chemical(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(pre, post, signed weight)`` of the chemical synapses."""
        keep = ~self.electrical
        return self.pre[keep], self.post[keep], self.weight[keep]

    def gap_junctions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(a, b, weight)`` of the gap junctions (each pair once)."""
        keep = self.electrical
        return self.pre[keep], self.post[keep], self.weight[keep]

    def index(self, neurons) -> np.ndarray:
        """Return the indices of neuron ids; an unknown id fails with the closest ones."""
        from .._errors import UnknownNameError

        lookup = {str(k): i for i, k in enumerate(self.ids)}
        out = []
        for n in neurons:
            if str(n) not in lookup:
                raise UnknownNameError("neuron", str(n), list(lookup))
            out.append(lookup[str(n)])
        return np.asarray(out, dtype=np.int64)

    def summary(self) -> dict:
        """Sizes and weight statistics, for notes and benchmarks."""
        pre, _, w = self.chemical()
        out_deg = np.bincount(pre, minlength=self.n_neurons)
        return {
            "source": self.source,
            "neurons": self.n_neurons,
            "edges": self.n_edges,
            "chemical": int((~self.electrical).sum()),
            "electrical": int(self.electrical.sum()),
            "inhibitory_fraction": float(np.mean(w < 0)) if len(w) else float("nan"),
            "mean_abs_weight": float(np.mean(np.abs(w))) if len(w) else float("nan"),
            "mean_out_degree": float(out_deg.mean()) if self.n_neurons else float("nan"),
            "max_out_degree": int(out_deg.max()) if self.n_neurons else 0,
        }

    def save(self, edges_path, neurons_path) -> None:
        """Write the two tables (Parquet or CSV by suffix), each atomically."""
        from .._io import write_with

        edges = pd.DataFrame({
            "pre": self.ids[self.pre], "post": self.ids[self.post],
            "weight": np.abs(self.weight), "sign": np.where(self.weight < 0, -1, 1),
            "kind": np.where(self.electrical, "electrical", "chemical"),
        })  # fmt: skip
        neurons = pd.DataFrame({"id": self.ids, "type": self.types})
        if self.positions is not None:
            neurons[["x", "y", "z"]] = self.positions
        for table, path in ((edges, Path(edges_path)), (neurons, Path(neurons_path))):
            write_with(path, lambda tmp, t=table, p=path: _write_table(t, tmp, p.suffix))


def _write_table(table: pd.DataFrame, tmp, suffix: str) -> None:
    if suffix == ".parquet":
        table.to_parquet(tmp, index=False)
    elif suffix == ".csv":
        table.to_csv(tmp, index=False)
    else:
        raise DigiwormError(f"a connectome table must be .parquet or .csv; got {suffix!r}")


def _read_table(path, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DigiwormError(f"{what} file {str(path)!r} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise DigiwormError(f"{what} file {str(path)!r} must be .parquet or .csv")


def _rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r + 2) for r in rows[:_SHOWN])  # +2: a header line, counted from 1
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return f"{len(rows)} row(s) (file lines {shown}{more})"


def load(edges, neurons=None, *, signs: dict | None = None, source: str | None = None):
    """Read a connectome in digiworm's edge-list format (module docstring).

    Parameters
    ----------
    edges : path or DataFrame
        The edge table (``.parquet`` or ``.csv``).
    neurons : path or DataFrame, optional
        The neuron table; without it the neurons are the ids the edges name.
    signs : dict, optional
        Transmitter → ±1, in place of :data:`TRANSMITTER_SIGNS` (lower-case names).
    source : str, optional
        Provenance kept on the result (default: the file's name).

    Every problem is reported at once, with the file lines of its first rows.
    """
    e = edges if isinstance(edges, pd.DataFrame) else _read_table(edges, "edge")
    src = source or (Path(edges).name if not isinstance(edges, pd.DataFrame) else "table")
    missing = [c for c in ("pre", "post", "weight") if c not in e.columns]
    if missing:
        raise DigiwormError(
            f"the edge table lacks column(s) {missing}; it needs pre, post, weight and may "
            f"have sign or transmitter, and kind (has {list(e.columns)})"
        )
    problems = []
    if neurons is not None:
        nt = neurons if isinstance(neurons, pd.DataFrame) else _read_table(neurons, "neuron")
        if "id" not in nt.columns:
            raise DigiwormError(f"the neuron table needs an id column (has {list(nt.columns)})")
        ids = nt["id"].to_numpy()
        dup = pd.Index(ids).duplicated()
        if dup.any():
            problems.append(f"neuron ids repeated in the neuron table: {_rows(dup)}")
        types = nt["type"].astype(str).to_numpy() if "type" in nt else np.full(len(ids), "")
        positions = (nt[["x", "y", "z"]].to_numpy(float)
                     if {"x", "y", "z"} <= set(nt.columns) else None)  # fmt: skip
    else:
        ids = np.array(sorted(set(e["pre"]) | set(e["post"]), key=str), dtype=object)
        if all(isinstance(i, (int, np.integer)) for i in ids):
            ids = ids.astype(np.int64)
        types, positions = np.full(len(ids), ""), None
    lookup = pd.Index(ids)
    pre = lookup.get_indexer(e["pre"])
    post = lookup.get_indexer(e["post"])
    for col, idx in (("pre", pre), ("post", post)):
        if (idx < 0).any():
            bad = e[col].to_numpy()[idx < 0][:_SHOWN].tolist()
            problems.append(f"{col} ids not in the neuron table, e.g. {bad}: {_rows(idx < 0)}")
    weight = pd.to_numeric(e["weight"], errors="coerce").to_numpy(float)
    if not np.isfinite(weight).all():
        problems.append(f"weights that are not finite numbers: {_rows(~np.isfinite(weight))}")
    kind = (e["kind"].astype(str).str.lower().to_numpy() if "kind" in e
            else np.full(len(e), "chemical"))  # fmt: skip
    bad_kind = ~np.isin(kind, KINDS)
    if bad_kind.any():
        problems.append(f"kinds other than {', '.join(KINDS)}: {_rows(bad_kind)}")
    electrical = kind == "electrical"
    if "sign" in e and "transmitter" in e:
        problems.append("both sign and transmitter columns: give one of them")
    sign = np.ones(len(e))
    if "sign" in e:
        sign = pd.to_numeric(e["sign"], errors="coerce").to_numpy(float)
        bad = ~np.isin(sign, (-1.0, 1.0))
        if bad.any():
            problems.append(f"signs other than +1 or -1: {_rows(bad)}")
    elif "transmitter" in e:
        table = {k.lower(): v for k, v in (signs or TRANSMITTER_SIGNS).items()}
        names = e["transmitter"].astype(str).str.lower()
        known = names.isin(table).to_numpy() | electrical
        if not known.all():
            problems.append(
                f"transmitters without a sign ({sorted(set(names[~known]))[:_SHOWN]}; known: "
                f"{sorted(table)}; pass signs=): {_rows(~known)}"
            )
        sign = names.map(table).fillna(1).to_numpy(float)
    if "sign" in e or "transmitter" in e:
        negative = weight < 0
        if negative.any():
            problems.append(f"negative weights beside a sign or transmitter: {_rows(negative)}")
    if (electrical & (weight < 0)).any():
        problems.append(f"negative gap-junction weights: {_rows(electrical & (weight < 0))}")
    selfgap = electrical & (pre == post) & (pre >= 0)
    if selfgap.any():
        problems.append(f"gap junctions from a neuron to itself: {_rows(selfgap)}")
    a = np.where(electrical, np.minimum(pre, post), pre)
    b = np.where(electrical, np.maximum(pre, post), post)
    dup = pd.DataFrame({"a": a, "b": b, "k": electrical}).duplicated(keep="first").to_numpy()
    if dup.any():
        problems.append(f"connections listed twice (sum them into one row): {_rows(dup)}")
    if problems:
        raise DigiwormError(f"connectome {src!r} has bad rows:\n  " + "\n  ".join(problems))
    signed = np.where(electrical, np.abs(weight), weight * sign)
    return Connectome(ids=np.asarray(ids), types=np.asarray(types), pre=pre.astype(np.int32),
                      post=post.astype(np.int32), weight=signed, electrical=electrical,
                      positions=positions, source=src)  # fmt: skip


def from_flywire(connectivity, completeness) -> Connectome:
    """Load the FlyWire export of Shiu et al. 2024, downloaded by the user.

    The files are ``Connectivity_783.parquet`` and ``Completeness_783.csv`` of the paper's
    repository (philshiu/Drosophila_brain_model).
    Column mapping: ``Presynaptic_ID`` → pre, ``Postsynaptic_ID`` → post, ``Connectivity``
    (synapse count) → weight, ``Excitatory`` (+1 or −1; glutamate and GABA are −1 there) →
    sign; the completeness table's first column (FlyWire root ids, in the model's index order)
    → the neuron ids. The other columns (``Presynaptic_Index``, ``Postsynaptic_Index``,
    ``Excitatory x Connectivity``) are checked against these when present.
    """
    con = _read_table(connectivity, "FlyWire connectivity")
    comp = pd.read_csv(completeness, index_col=0) if str(completeness).endswith(".csv") else None
    if comp is None:
        raise DigiwormError("the FlyWire completeness table must be the .csv of Shiu et al. 2024")
    need = ["Presynaptic_ID", "Postsynaptic_ID", "Connectivity", "Excitatory"]
    missing = [c for c in need if c not in con.columns]
    if missing:
        raise DigiwormError(
            f"{Path(connectivity).name} lacks FlyWire column(s) {missing} (has "
            f"{list(con.columns)}); expected the Connectivity_783 layout of Shiu et al. 2024"
        )
    edges = pd.DataFrame({"pre": con["Presynaptic_ID"], "post": con["Postsynaptic_ID"],
                          "weight": con["Connectivity"], "sign": con["Excitatory"]})  # fmt: skip
    neurons = pd.DataFrame({"id": comp.index.to_numpy(), "type": ""})
    c = load(edges, neurons, source=f"FlyWire ({Path(connectivity).name})")
    if "Excitatory x Connectivity" in con.columns:
        if not np.allclose(c.weight, con["Excitatory x Connectivity"].to_numpy(float)):
            raise DigiwormError("'Excitatory x Connectivity' disagrees with the signed counts")
    for col, idx in (("Presynaptic_Index", c.pre), ("Postsynaptic_Index", c.post)):
        if col in con.columns and not np.array_equal(con[col].to_numpy(), idx):
            raise DigiwormError(f"{col} disagrees with the completeness table's order")
    return c


def from_atlas(atlas, connectome: str = "cook2019") -> Connectome:
    """Return the worm's connectome in this form, on the atlas's neurons.

    Chemical synapses are signed by digiworm's rule (``connectome_arrays``); gap junctions are
    listed once per pair.
    """
    from ..models._graded import connectome_arrays

    chem, gap, sign = connectome_arrays(atlas, connectome)
    post_c, pre_c = np.nonzero(chem)
    a, b = np.nonzero(np.triu(gap, 1))  # each pair once
    names = np.asarray(atlas.names, dtype=object)
    return Connectome(
        ids=names, types=names.copy(),
        pre=np.concatenate([pre_c, b]).astype(np.int32),
        post=np.concatenate([post_c, a]).astype(np.int32),
        weight=np.concatenate([chem[post_c, pre_c] * sign[post_c, pre_c], gap[a, b]]),
        electrical=np.concatenate([np.zeros(len(pre_c), bool), np.ones(len(a), bool)]),
        source=f"C. elegans ({connectome}, digiworm's sign rule)",
    )  # fmt: skip
