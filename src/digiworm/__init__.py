"""digiworm: a digital C. elegans built bottom up from its measured parts."""

from . import atlas
from ._errors import DigiwormError, UnknownNameError

__version__ = "0.1.0"

__all__ = ["DigiwormError", "UnknownNameError", "__version__", "atlas"]
