r"""Saving and loading models: a JSON header (class, neurons, shapes) plus equinox leaves.

A file is ``b"DIGIWORM-MODEL\n"``, one line of JSON, then ``eqx.tree_serialise_leaves``
output. The header carries everything needed to rebuild the model's skeleton, so a file loads
without the code that built it (no pickles). Writes are atomic.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError
from .._io import atomic_write_bytes
from ._graded import GradedNetwork
from ._linear import KernelModel, LinearModel

__all__ = ["load_model", "save_model"]

MAGIC = b"DIGIWORM-MODEL\n"
_CLASSES = {cls.__name__: cls for cls in (GradedNetwork, LinearModel, KernelModel)}
_STATIC = {"GradedNetwork": ("connectome_source", "peptide_source", "dff_per_activity")}


def save_model(path: str | os.PathLike[str], model) -> Path:
    """Write ``model`` to ``path`` atomically; return the path."""
    name = type(model).__name__
    if name not in _CLASSES:
        raise DigiwormError(f"cannot save a {name}; savable models: {', '.join(_CLASSES)}")
    leaves = {k: [list(v.shape), str(v.dtype)] for k, v in _array_fields(model).items()}
    header = {
        "class": name,
        "names": list(model.names),
        "arrays": leaves,
        "static": {k: getattr(model, k) for k in _STATIC.get(name, ())},
        "digiworm_format": 1,
    }
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    buffer.write(json.dumps(header).encode() + b"\n")
    eqx.tree_serialise_leaves(buffer, model)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _array_fields(model) -> dict[str, jax.Array]:
    return {
        f: getattr(model, f)
        for f in model.__dataclass_fields__
        if isinstance(getattr(model, f, None), (jax.Array, np.ndarray))
    }


def load_model(path: str | os.PathLike[str]):
    """Load a model written by :func:`save_model`.

    Raises
    ------
    DigiwormError
        If the file is missing, not a digiworm model, or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise DigiwormError(f"model file {str(path)!r} does not exist")
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise DigiwormError(f"{str(path)!r} is not a digiworm model file (no header)")
    stream = io.BytesIO(data[len(MAGIC) :])
    try:
        header = json.loads(stream.readline())
        cls = _CLASSES[header["class"]]
        arrays = {
            k: jnp.zeros(tuple(shape), dtype=jnp.dtype(dtype))
            for k, (shape, dtype) in header["arrays"].items()
        }
        skeleton = cls(names=tuple(header["names"]), **arrays, **header.get("static", {}))
        return eqx.tree_deserialise_leaves(stream, skeleton)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise DigiwormError(f"{str(path)!r} is a corrupt digiworm model file: {exc}") from exc
