"""The offline multimodal worm atlas: every dataset on one 302-neuron index, with provenance.

>>> import digiworm
>>> atlas = digiworm.atlas.load()
>>> atlas.neurons.loc["AVAL", "neuron_class"]
'AVA'
"""

from ._atlas import Atlas, check_threshold, load
from ._cache import CACHE_ENV, Cache, CacheEvent, default_cache_dir
from ._expression import THRESHOLDS
from ._functional import DEFAULT_KERNEL_TIME_S, STRAINS, evaluate_kernels
from ._names import gene_of, neuron_class, resolve_neuron, to_canonical
from ._neurons import NEURON_COLUMNS
from ._registry import CONNECTOMES, DATASETS, EXTRASYNAPTIC, DatasetInfo
from ._sources import DataPackageMissing

__all__ = [
    "CACHE_ENV",
    "CONNECTOMES",
    "DATASETS",
    "DEFAULT_KERNEL_TIME_S",
    "EXTRASYNAPTIC",
    "NEURON_COLUMNS",
    "STRAINS",
    "THRESHOLDS",
    "Atlas",
    "Cache",
    "CacheEvent",
    "DataPackageMissing",
    "DatasetInfo",
    "check_threshold",
    "default_cache_dir",
    "evaluate_kernels",
    "gene_of",
    "load",
    "neuron_class",
    "resolve_neuron",
    "to_canonical",
]
