"""In-silico experiments: pure ``Model -> Model`` transforms (ablate, knock out, drug, state)."""

from ._experiments import Ablate, Knockout, Mutant, Stimulate
from ._pharmacology import (
    AMINES,
    EVIDENCE_LEVELS,
    Drug,
    Neuromodulation,
    drug_evidence,
    drug_table,
    monoamine_receptors,
)

__all__ = [
    "AMINES",
    "EVIDENCE_LEVELS",
    "Ablate",
    "Drug",
    "Knockout",
    "Mutant",
    "Neuromodulation",
    "Stimulate",
    "drug_evidence",
    "drug_table",
    "monoamine_receptors",
]
