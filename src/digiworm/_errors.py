"""Named exceptions and the did-you-mean helper shared by every digiworm entry point."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "DataPackageError",
    "DigiwormError",
    "InsufficientDataError",
    "InvalidParameterError",
    "UnknownNameError",
    "suggest",
]


class DigiwormError(Exception):
    """Base class of digiworm's own errors: always a user-facing, one-line message."""


class InvalidParameterError(DigiwormError, ValueError):
    """A number, array shape or setting outside what a function or model accepts.

    The message names the parameter, the value received and what would be valid. It is a
    :class:`ValueError` too, so code that catches ``ValueError`` keeps working.
    """


class DataPackageError(DigiwormError, ValueError):
    """An installed data package whose contents do not have the layout digiworm reads."""


class InsufficientDataError(DigiwormError, ValueError):
    """Data that cannot support what was asked (e.g. no repeated trials to estimate noise)."""


class UnknownNameError(DigiwormError, ValueError):
    """A neuron, gene, dataset or other name that digiworm does not know.

    Parameters
    ----------
    kind : str
        What was looked up, e.g. ``"neuron"`` or ``"gene"``.
    value : str
        The name as given.
    valid : iterable of str
        Every valid name; the closest few are suggested.
    hint : str, optional
        A sentence appended to the message (e.g. where the valid names are listed).
    """

    def __init__(self, kind: str, value: object, valid: Iterable[str], hint: str = ""):
        self.kind = kind
        self.value = value
        self.suggestions = suggest(str(value), valid)
        message = f"unknown {kind} {str(value)!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(self.suggestions) + "?"
        else:
            message += "."
        if hint:
            message += f" {hint}"
        super().__init__(message)


def _osa_distance(a: str, b: str) -> int:
    """Return the optimal-string-alignment edit distance between ``a`` and ``b``.

    Insertions, deletions, substitutions and transpositions of adjacent characters each cost 1
    (so ``AVLA`` is 1 from ``AVAL``).
    """
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _bare(name: str) -> str:
    return name.replace("-", "").replace("_", "").replace(".", "")


def suggest(value: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` valid names closest to ``value``, ignoring case.

    Candidates are shortlisted by :mod:`difflib` similarity, then ranked by edit distance
    ignoring ``-``, ``_`` and ``.``, then by plain edit distance (transpositions count once),
    preferring candidates of the same length.

    Parameters
    ----------
    value : str
        The misspelt name.
    valid : iterable of str
        Candidate names.
    n : int
        Maximum number of suggestions.

    Returns
    -------
    list of str
        Suggestions in the spelling of ``valid``, best first.

    Examples
    --------
    >>> suggest("AVLA", ["AVAL", "AVAR", "AVBL", "RIML"])
    ['AVAL', 'AVBL', 'AVAR']
    """
    by_upper: dict[str, str] = {}
    for name in valid:
        by_upper.setdefault(name.upper(), name)
    target = value.upper()
    shortlist = difflib.get_close_matches(target, list(by_upper), n=30, cutoff=0.4)
    ranked = sorted(
        shortlist,
        key=lambda c: (
            _osa_distance(_bare(target), _bare(c)),  # unc31 is closest to unc-31
            _osa_distance(target, c),
            abs(len(c) - len(target)),
            -difflib.SequenceMatcher(None, target, c).ratio(),
        ),
    )
    limit = max(2, len(target) // 2)
    return [by_upper[c] for c in ranked if _osa_distance(target, c) <= limit][:n]
