"""Brains beyond the worm: any connectome as an edge list, simulated on sparse coupling.

* :func:`load` reads digiworm's edge-list format (CSV or Parquet; :mod:`._connectome` documents
  it) into a :class:`Connectome`, refusing bad rows by number; :func:`from_flywire` maps the
  FlyWire export of Shiu et al. 2024 onto it and :func:`from_atlas` gives the worm's own.
* :func:`flyvis_optic_lobe` is the fly's optic lobe of Lappalainen et al. 2024 (shipped as its
  type-level table, expanded to its 45,669 cells and 1,513,231 connections).
* :func:`synthetic_flywire` draws a graph with the whole fly brain's size and statistics (for
  benchmarks: FlyWire itself cannot be shipped).
* :class:`SparseGradedNetwork` is the worm's graded network on edge lists (equal to the dense
  one, :func:`sparse_from_dense`; from any connectome, :func:`graded_from_connectome`).
* :class:`LIFNetwork` is the leaky integrate-and-fire model of Shiu et al. 2024 on sparse,
  event-driven coupling; :func:`simulate_lif` runs it for batches of trials.
* :func:`run_conditions` runs a table of conditions on one brain, locally or on Ray.
"""

from ._conditions import CONDITION_COLUMNS, read_conditions, run_conditions
from ._connectome import TRANSMITTER_SIGNS, Connectome, from_atlas, from_flywire, load
from ._flyvis import FLYVIS_CITATION, flyvis_optic_lobe
from ._graded import SparseGradedNetwork, graded_from_connectome, sparse_from_dense
from ._lif import SHIU_PARAMS, LIFNetwork, lif_from_connectome, simulate_lif
from ._synthetic import FLYWIRE_TARGETS, synthetic_flywire

__all__ = [
    "CONDITION_COLUMNS",
    "FLYVIS_CITATION",
    "FLYWIRE_TARGETS",
    "SHIU_PARAMS",
    "TRANSMITTER_SIGNS",
    "Connectome",
    "LIFNetwork",
    "SparseGradedNetwork",
    "from_atlas",
    "flyvis_optic_lobe",
    "from_flywire",
    "graded_from_connectome",
    "lif_from_connectome",
    "load",
    "read_conditions",
    "run_conditions",
    "simulate_lif",
    "sparse_from_dense",
    "synthetic_flywire",
]
