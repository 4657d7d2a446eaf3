"""Canonical neuron names: classes, partners, and the mapping of every source's spellings.

Canonical ids are the 302 hermaphrodite neuron names (White et al. 1986) as spelt by cect's
``PREFERRED_HERM_NEURON_NAMES``. AWC is kept as AWCL/AWCR; the signal propagation atlas's
AWCON/AWCOFF follow wormneuroatlas's stated convention AWCL→AWCOFF, AWCR→AWCON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .._errors import UnknownNameError

__all__ = [
    "ALIASES",
    "DV_CLASSES",
    "bilateral_partner",
    "cengen_class",
    "dv_partner",
    "gene_of",
    "natural_key",
    "neuron_class",
    "resolve_neuron",
    "to_canonical",
]

#: Spellings used by data sources for canonical neurons (upper case → canonical).
ALIASES: dict[str, str] = {
    "AWCON": "AWCR",
    "AWCOFF": "AWCL",
    "AWCOF": "AWCL",  # funatlas.h5 stores ids as 5-byte strings, truncating AWCOFF
    "AWC_ON": "AWCR",
    "AWC_OFF": "AWCL",
}

#: Classes whose members differ by a dorsal/ventral letter before any L/R suffix.
DV_CLASSES: tuple[str, ...] = (
    "CEP", "IL1", "IL2", "OLQ", "RMD", "RME", "SAA", "SAB", "SIA", "SIB", "SMB", "SMD",
    "URA", "URY",
)  # fmt: skip

_NUMBERED = re.compile(r"^(AS|DA|DB|DD|VA|VB|VC|VD)0*(\d+)$")


def natural_key(name: str) -> tuple:
    """Sort key ordering ``VA2`` before ``VA10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def neuron_class(name: str, names: Iterable[str]) -> str:
    """Return the anatomical class of a canonical neuron (White et al. 1986 classes).

    Parameters
    ----------
    name : str
        Canonical neuron id, e.g. ``"AVAL"``.
    names : iterable of str
        All canonical ids (to know which L/R partners exist).

    Returns
    -------
    str
        Class name, e.g. ``"AVA"``; numbered motor neurons map to their letters (``VA12`` →
        ``VA``); dorsal/ventral members join their class (``SMDDL`` → ``SMD``).

    Examples
    --------
    >>> neuron_class("SMDDL", ["SMDDL", "SMDDR", "SMDVL", "SMDVR"])
    'SMD'
    >>> neuron_class("VA12", ["VA12"])
    'VA'
    """
    match = _NUMBERED.match(name)
    if match:
        return match.group(1)
    names = set(names)
    stem = name
    if name[-1] in "LR" and name[:-1] + ("R" if name[-1] == "L" else "L") in names:
        stem = name[:-1]
    if stem[:-1] in DV_CLASSES and stem[-1] in "DV":
        stem = stem[:-1]
    return stem


def bilateral_partner(name: str, names: Iterable[str]) -> str | None:
    """Return the left/right partner of ``name`` (``AVAL`` → ``AVAR``), or None."""
    if name[-1] not in "LR":
        return None
    other = name[:-1] + ("R" if name[-1] == "L" else "L")
    return other if other in set(names) else None


def dv_partner(name: str, names: Iterable[str]) -> str | None:
    """Return the dorsal/ventral partner (``SMDDL`` → ``SMDVL``, ``RMED`` → ``RMEV``), or None."""
    names = set(names)
    for cls in DV_CLASSES:
        if name.startswith(cls) and len(name) > len(cls) and name[len(cls)] in "DV":
            rest = name[len(cls) + 1 :]
            other = cls + ("V" if name[len(cls)] == "D" else "D") + rest
            return other if other in names else None
    return None


def cengen_class(name: str, cls: str, cengen_ids: Sequence[str]) -> str | None:
    """Return the CeNGEN (Taylor et al. 2021) cell type that profiles neuron ``name``.

    CeNGEN resolves some classes finer than anatomy (ASEL/ASER, AWC_ON/AWC_OFF, IL2_DV/IL2_LR,
    RMD_DV/RMD_LR, RME_DV/RME_LR, DA9, VA12, DB01, VB01, VB02, VC_4_5) and pools others (VD_DD).
    Returns None when no profiled type covers the neuron.
    """
    ids = set(cengen_ids)
    number = _NUMBERED.match(name)
    if number:
        letters, idx = number.group(1), int(number.group(2))
        special = {
            ("DA", 9): "DA9", ("VA", 12): "VA12", ("DB", 1): "DB01", ("VB", 1): "VB01",
            ("VB", 2): "VB02", ("VC", 4): "VC_4_5", ("VC", 5): "VC_4_5",
        }  # fmt: skip
        candidate = special.get((letters, idx), "VD_DD" if letters in ("VD", "DD") else letters)
    elif name in ("AWCL", "AWCR"):
        candidate = {"AWCL": "AWC_OFF", "AWCR": "AWC_ON"}[name]
    elif name in ids:
        candidate = name  # ASEL, ASER
    elif cls in ("IL2", "RMD", "RME"):
        body = name[len(cls) :]
        candidate = f"{cls}_DV" if body[:1] in ("D", "V") else f"{cls}_LR"
    else:
        candidate = cls
    return candidate if candidate in ids else None


def to_canonical(raw: str, canonical: Iterable[str]) -> str | None:
    """Map one source spelling to a canonical id, or None if it is not one of the 302 neurons.

    Handles case, surrounding blanks, the AWC ON/OFF spellings and zero-padded numbers
    (``VB01`` → ``VB1``).
    """
    canonical = canonical if isinstance(canonical, (set, frozenset, dict)) else set(canonical)
    name = str(raw).strip().upper()
    name = ALIASES.get(name, name)
    number = _NUMBERED.match(name)
    if number:
        name = number.group(1) + str(int(number.group(2)))
    return name if name in canonical else None


def resolve_neuron(raw: str, canonical: Sequence[str]) -> str:
    """Return the canonical id for a user-typed neuron name.

    Raises
    ------
    UnknownNameError
        If ``raw`` names none of the 302 neurons; the message suggests the closest ids.
    """
    name = to_canonical(raw, canonical)
    if name is None:
        raise UnknownNameError(
            "neuron", raw, canonical, hint="Neuron ids are the 302 hermaphrodite names, e.g. AVAL."
        )
    return name


def gene_of(product: str, genes: set[str]) -> str | None:
    """Map a peptide or receptor isoform name to its gene (``NLP-13-1`` → ``nlp-13``), or None.

    Trailing isoform numbers (``-1``, ``-2a``) are dropped one at a time until the name is one
    of ``genes`` (lower-case gene names).

    Examples
    --------
    >>> gene_of("NLP-13-1", {"nlp-13", "flp-1"}), gene_of("NPR-1", {"nlp-13", "flp-1"})
    ('nlp-13', None)
    """
    name = product.strip().lower()
    while name not in genes and re.search(r"-\d+[a-z]?$", name):
        name = re.sub(r"-\d+[a-z]?$", "", name)
    return name if name in genes else None
