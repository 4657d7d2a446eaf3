"""A screen's condition table: from a grid, a CSV or a Parquet file; checked row by row.

One row is one in-silico experiment. Columns (any may be missing; defaults in brackets):

* ``drug`` [``none``] and ``dose_uM`` [0] (alias ``dose``): a compound of
  :func:`~digiworm.experiments.drug_table` and its concentration;
* ``knockout`` [``none``]: genes, several joined by ``+`` (``unc-31+egl-3``);
* ``ablate`` [``none``]: neurons, joined by ``+``;
* ``stimulate`` [``AVAL``]: the neurons driven for the neural read-out, joined by ``+``;
* ``medium`` [``agar``]: the behavioural read-out's medium (``digiworm behave --medium``);
* ``model`` [``graded``]: the brain (a model kind of ``digiworm simulate``);
* ``seed`` [0]: the behavioural run's switch noise;
* ``serotonin``, ``dopamine``, ``octopamine``, ``tyramine`` [0]: a neuromodulatory state, each
  amine's level in [0, 1] (:class:`~digiworm.experiments.Neuromodulation`), so the same drug
  in a fed-like (serotonin) and a starved-like (octopamine, tyramine) state is one more column.

:func:`parse_grid` expands ``"drug=aldicarb,levamisole;dose=0,10,100;knockout=none,unc-31"``
into every combination, except that ``drug=none`` is paired only with dose 0 (a dose of no
drug is one condition, not several). :func:`check_table` validates every row against the atlas
before anything runs and reports all bad rows at once, each with its row number.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path

import pandas as pd

from .._errors import DigiwormError
from ..experiments import AMINES

__all__ = ["COLUMNS", "check_table", "parse_grid", "read_table", "table_digest"]

#: The table's columns and their defaults.
COLUMNS = {
    "drug": "none",
    "dose_uM": 0.0,
    "knockout": "none",
    "ablate": "none",
    "stimulate": "AVAL",
    "medium": "agar",
    "model": "graded",
    "seed": 0,
    **{amine: 0.0 for amine in AMINES},
}
ALIASES = {"dose": "dose_uM"}
#: Most rows one screen takes (a local machine; a million-row screen is a Ray job's).
MAX_ROWS = 1_000_000


def _column(name: str) -> str:
    lower = {c.lower(): c for c in COLUMNS}
    text = str(name).strip().lower()
    key = ALIASES.get(text, lower.get(text))
    if key is None:
        raise DigiwormError(
            f"unknown screen column {name!r}; columns are {', '.join(COLUMNS)} (dose = dose_uM)"
        )
    return key


def parse_grid(spec: str) -> pd.DataFrame:
    """Expand ``"col=v1,v2;col=v3"`` into the table of every combination (module docstring)."""
    axes: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, sep, values = part.partition("=")
        if not sep or not values.strip():
            raise DigiwormError(f"grid part {part!r} must be COLUMN=VALUE[,VALUE...]")
        key = _column(name)
        if key in axes:
            raise DigiwormError(f"grid column {key!r} is given twice")
        axes[key] = [v.strip() for v in values.split(",") if v.strip()]
    if not axes:
        raise DigiwormError(f"the grid {spec!r} names no column")
    rows = []
    for combo in itertools.product(*axes.values()):
        row = dict(zip(axes, combo))
        no_drug = str(row.get("drug", "none")).lower() == "none"
        if no_drug and "dose_uM" in row and _number(row["dose_uM"]) != 0:
            continue
        rows.append(row)
    if len(rows) > MAX_ROWS:
        raise DigiwormError(f"the grid makes {len(rows)} conditions; at most {MAX_ROWS}")
    return _complete(pd.DataFrame(rows))


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_table(path) -> pd.DataFrame:
    """Read a condition table from ``.csv`` or ``.parquet``."""
    path = Path(path)
    if not path.is_file():
        raise DigiwormError(f"condition table {str(path)!r} does not exist")
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    elif path.suffix.lower() in (".parquet", ".pq"):
        table = pd.read_parquet(path)
    else:
        raise DigiwormError(f"condition table {path.name!r} must be .csv or .parquet")
    table = table.rename(columns={c: _column(c) for c in table.columns})
    if len(table) > MAX_ROWS:
        raise DigiwormError(f"the table has {len(table)} rows; at most {MAX_ROWS}")
    if table.empty:
        raise DigiwormError(f"condition table {path.name!r} has no rows")
    return _complete(table)


def _complete(table: pd.DataFrame) -> pd.DataFrame:
    """Add the missing columns with their defaults; order the columns; number the rows."""
    table = table.copy()
    for key, default in COLUMNS.items():
        if key not in table.columns:
            table[key] = default
        else:
            table[key] = table[key].map(lambda v, d=default: d if _blank(v) else v)
    table = table[list(COLUMNS)].reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="row")
    return table


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _names(cell) -> tuple[str, ...]:
    text = str(cell).strip()
    if text.lower() in ("", "none"):
        return ()
    return tuple(p.strip() for p in text.replace(",", "+").split("+") if p.strip())


def check_table(table: pd.DataFrame, atlas, readouts=("neural",)) -> pd.DataFrame:
    """Validate every row; return the table with canonical names and numbers.

    Raises one :class:`~digiworm.DigiwormError` listing every bad row (its number and what is
    wrong, with suggestions for names) before anything runs.
    """
    from ..app import BEHAVE_KINDS, MODEL_KINDS, parse_medium
    from ..experiments import Drug

    errors: list[str] = []
    out = []
    applies: dict[tuple[str, str], str | None] = {}  # (model, gene) -> why not, or None
    acts: dict[tuple[str, str], str | None] = {}  # (model, drug) -> why not, or None
    bases: dict = {}  # model kind -> its unperturbed model, built (loaded) once

    def base(model: str):
        from ..app import SimulationRequest, build_model

        if model not in bases:
            bases[model] = build_model(SimulationRequest(model=model), atlas)
        return bases[model]

    def drug_acts(model: str, drug) -> None:
        """Refuse a drug with no action on the row's model (a channel blocker on a graded one)."""
        if (model, drug.name) not in acts:
            try:
                drug(base(model))
                acts[model, drug.name] = None
            except DigiwormError as exc:
                acts[model, drug.name] = str(exc)
        if acts[model, drug.name] is not None:
            raise DigiwormError(acts[model, drug.name])

    def knockout_applies(model: str, gene: str) -> None:
        """Refuse a gene the model has no mechanism for (known before anything runs)."""
        from ..body import NMJ_GENES
        from ..experiments import Knockout

        if (model, gene) not in applies:
            try:
                Knockout(gene, atlas)(base(model))
                applies[model, gene] = None
            except DigiwormError as exc:  # a junction-only gene still acts on a worm's muscles
                junction = "behaviour" in readouts and gene in NMJ_GENES
                applies[model, gene] = None if junction else str(exc)
        if applies[model, gene] is not None:
            raise DigiwormError(applies[model, gene])

    for row, rec in table.iterrows():
        try:
            dose = _number(rec["dose_uM"])
            drug = str(rec["drug"]).strip()
            if not (math.isfinite(dose) and dose >= 0):
                raise DigiwormError(f"dose {rec['dose_uM']!r} must be a number of uM >= 0")
            if drug.lower() == "none":
                if dose != 0:
                    raise DigiwormError(f"dose {dose:g} uM given with no drug")
                drug = "none"
            else:
                drug = Drug(drug, dose, atlas)
            seed = _number(rec["seed"])
            if not (math.isfinite(seed) and seed >= 0 and seed == int(seed)):
                raise DigiwormError(f"seed {rec['seed']!r} must be a whole number >= 0")
            model = str(rec["model"]).strip()
            kinds = BEHAVE_KINDS if "behaviour" in readouts else MODEL_KINDS
            if model not in kinds or model == "conductance":
                raise DigiwormError(f"model {model!r} is not one of {', '.join(kinds)}")
            if not isinstance(drug, str):
                drug_acts(model, drug)
                drug = drug.name
            levels = {}
            for amine in AMINES:
                level = _number(rec[amine])
                if not (math.isfinite(level) and 0 <= level <= 1):
                    raise DigiwormError(f"{amine} level {rec[amine]!r} must be a number in [0, 1]")
                levels[amine] = level
            medium = str(rec["medium"]).strip()
            if "behaviour" in readouts:
                parse_medium(medium)
            knockout = tuple(atlas.gene(g) for g in _names(rec["knockout"]))
            for gene in knockout:
                knockout_applies(model, gene)
            ablate = tuple(atlas.neuron_list(list(_names(rec["ablate"]))))
            stimulate = tuple(atlas.neuron_list(list(_names(rec["stimulate"]))))
            if "neural" in readouts and not stimulate:
                raise DigiwormError("the neural read-out needs a neuron to stimulate")
        except DigiwormError as exc:
            errors.append(f"row {row}: {exc}")
            continue
        out.append({
            "drug": drug, "dose_uM": dose, "knockout": "+".join(knockout) or "none",
            "ablate": "+".join(ablate) or "none", "stimulate": "+".join(stimulate) or "none",
            "medium": medium, "model": model, "seed": int(seed), **levels,
        })  # fmt: skip
    if errors:
        shown = errors[:20]
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise DigiwormError(
            f"{len(errors)} bad row(s) of {len(table)}; nothing was run:\n  "
            + "\n  ".join(shown)
            + more
        )
    checked = pd.DataFrame(out, index=table.index)
    return checked


def table_digest(table: pd.DataFrame, readouts, settings: dict) -> str:
    """Return a hash of the checked table, the read-outs and the settings (for resuming)."""
    h = hashlib.sha256()
    h.update(table.to_csv().encode())
    h.update(",".join(sorted(readouts)).encode())
    h.update(repr(sorted(settings.items())).encode())
    return h.hexdigest()[:16]
