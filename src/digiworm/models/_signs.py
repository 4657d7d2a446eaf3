"""Synapse signs from transmitter identity and postsynaptic receptor expression.

The rule (digiworm's, after the NT+R method of Fenyves et al. 2020, with CeNGEN expression):

1. The presynaptic neuron's classical transmitters T ⊆ {acetylcholine, glutamate, GABA} come
   from Wang et al. 2024 (the atlas's ``transmitter`` column), else from Fenyves 2020.
2. For each t in T, the postsynaptic neuron's evidence is the number of excitatory receptor
   genes for t it expresses minus the number of inhibitory ones (CeNGEN TPM > 0 at the chosen
   threshold; receptor lists from Fenyves 2020).
3. The synapse is excitatory if the summed evidence is positive, inhibitory if negative.
4. Ties (including no receptor expressed) fall back on the transmitter: GABA alone →
   inhibitory; acetylcholine or glutamate → excitatory; no classical transmitter (purely
   monoaminergic or unknown) → excitatory.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLASSICAL", "classical_transmitters", "synapse_signs"]

CLASSICAL = ("acetylcholine", "glutamate", "GABA")
_WANG = {"Acetylcholine": "acetylcholine", "Glutamate": "glutamate", "GABA": "GABA"}


def classical_transmitters(wang: str | None, fenyves: str | None) -> tuple[str, ...]:
    """Return a neuron's classical transmitters from its Wang 2024 and Fenyves 2020 entries."""
    found = tuple(_WANG[t] for t in (wang or "").split("+") if t in _WANG)
    if not found:
        found = tuple(t for t in (fenyves or "").split("+") if t in CLASSICAL)
    return found


def synapse_signs(
    transmitters: list[tuple[str, ...]],
    receptor_evidence: dict[str, np.ndarray],
) -> np.ndarray:
    """Return the sign (+1 excitatory, −1 inhibitory) of every possible synapse ``[post, pre]``.

    Parameters
    ----------
    transmitters : list of tuple of str, length n
        Classical transmitters of each (presynaptic) neuron.
    receptor_evidence : dict
        Transmitter → array (n,) of excitatory-minus-inhibitory receptor gene counts expressed
        by each (postsynaptic) neuron.

    Returns
    -------
    numpy.ndarray, shape (n, n), int8
        ``sign[post, pre]``.

    Examples
    --------
    >>> ev = {"acetylcholine": np.array([2, -1]), "glutamate": np.zeros(2),
    ...       "GABA": np.array([0, 0])}
    >>> synapse_signs([("acetylcholine",), ("GABA",)], ev)
    array([[ 1, -1],
           [-1, -1]], dtype=int8)
    """
    n = len(transmitters)
    total = np.zeros((n, n))
    fallback = np.ones(n)
    for pre, ts in enumerate(transmitters):
        for t in ts:
            total[:, pre] += receptor_evidence[t]
        if ts and all(t == "GABA" for t in ts):
            fallback[pre] = -1.0
    sign = np.sign(total)
    sign = np.where(sign == 0, fallback[None, :], sign)
    return sign.astype(np.int8)
