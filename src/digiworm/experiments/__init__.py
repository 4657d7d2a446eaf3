"""In-silico experiments: pure ``Model -> Model`` transforms (ablate, knock out, drug)."""

from ._experiments import Ablate, Drug, Knockout, Mutant, Stimulate, drug_table

__all__ = ["Ablate", "Drug", "Knockout", "Mutant", "Stimulate", "drug_table"]
