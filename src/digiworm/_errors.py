"""Named exceptions and the did-you-mean helper shared by every digiworm entry point."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["DigiwormError", "UnknownNameError", "suggest"]


class DigiwormError(Exception):
    """Base class of digiworm's own errors: always a user-facing, one-line message."""


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
        if hint:
            message += f" {hint}"
        super().__init__(message)


def suggest(value: str, valid: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Return up to ``n`` valid names closest to ``value``, ignoring case.

    Parameters
    ----------
    value : str
        The misspelt name.
    valid : iterable of str
        Candidate names.
    n : int
        Maximum number of suggestions.
    cutoff : float
        Minimum :class:`difflib.SequenceMatcher` ratio in [0, 1] for a suggestion.

    Returns
    -------
    list of str
        Suggestions in the spelling of ``valid``, best first.

    Examples
    --------
    >>> suggest("AVLA", ["AVAL", "AVAR", "AVBL", "RIML"])
    ['AVAL', 'AVAR', 'AVBL']
    """
    by_upper: dict[str, str] = {}
    for name in valid:
        by_upper.setdefault(name.upper(), name)
    matches = difflib.get_close_matches(value.upper(), list(by_upper), n=n, cutoff=cutoff)
    return [by_upper[m] for m in matches]
