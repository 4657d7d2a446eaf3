"""The fitted worm shipped with digiworm: models identified from the whole wild-type atlas.

The files in ``digiworm/models/data/fitted`` are what ``digiworm reproduce --out DIR`` wrote
into ``DIR`` (``model_NAME.dwm`` and ``provenance.json``: data, settings, the final fits'
choices, held-out scores, package version, file checksums). A test refits them from the
recorded choices and compares, so the shipped worm cannot drift from the code.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from .._errors import DataPackageError, UnknownNameError

__all__ = ["FITTED_MODELS", "fitted", "fitted_dir", "fitted_heldout", "fitted_provenance"]

FITTED_MODELS = ("graded", "linear", "kernel")
"""Names of the shipped fitted models."""


def fitted_dir() -> Path:
    """Return the folder of the shipped fitted models."""
    return Path(str(resources.files("digiworm.models") / "data" / "fitted"))


def fitted_provenance() -> dict:
    """Return the shipped models' provenance (``provenance.json``)."""
    path = fitted_dir() / "provenance.json"
    if not path.is_file():
        raise DataPackageError(
            f"the fitted models' provenance {str(path)!r} is missing: reinstall digiworm, or "
            "run `digiworm reproduce --out DIR` and copy DIR's model_*.dwm and "
            "provenance.json there"
        )
    return json.loads(path.read_text())


def fitted_heldout(name: str) -> dict:
    """Return the held-out scores of the shipped fitted model ``name`` (from the provenance).

    The kernel model's couplings are the linear network's, so its held-out ΔF/F scores are the
    linear network's.
    """
    if name not in FITTED_MODELS:
        raise UnknownNameError("fitted model", name, FITTED_MODELS)
    return fitted_provenance()["heldout"]["graded" if name == "graded" else "linear"]


def fitted(name: str = "graded"):
    """Return the shipped fitted model ``name`` (``graded``, ``linear`` or ``kernel``).

    ``graded``: the graded network built from the linear fit (synapse, gap-junction and
    peptide couplings; :func:`digiworm.fit.graded_from_linear`). ``linear``: the identified
    linear network (unit time constant). ``kernel``: the same couplings with a time constant
    and a readout filter (observed ΔF/F lags activity) fitted to the measured response
    kernels. Their held-out scores are in :func:`fitted_provenance` (``heldout``).
    """
    import jax

    from ._io import load_model

    if name not in FITTED_MODELS:
        raise UnknownNameError("fitted model", name, FITTED_MODELS)
    path = fitted_dir() / f"model_{name}.dwm"
    expected = fitted_provenance()["files"].get(path.name)
    data = path.read_bytes() if path.is_file() else b""
    if expected is None or hashlib.sha256(data).hexdigest() != expected:
        raise DataPackageError(
            f"the shipped fitted model {str(path)!r} is missing or does not match its "
            "provenance checksum: reinstall digiworm"
        )
    with jax.enable_x64(True):  # thread-local: the file's own dtypes are kept
        return load_model(path)
