"""Where the installed data packages keep their files, found without importing them.

``wormneuroatlas.NeuroAtlas()`` reaches the network at construction and ``import cect`` pulls in
plotting stacks, so digiworm locates their data folders through the import system's metadata
only and reads the files itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import cache
from pathlib import Path

from .._errors import DigiwormError

__all__ = ["DataPackageMissing", "package_dir", "package_file", "package_version"]


class DataPackageMissing(DigiwormError, FileNotFoundError):
    """A data package (or one of its files) that digiworm reads is not installed."""


@cache
def package_dir(package: str) -> Path:
    """Return the installed folder of ``package`` without executing its ``__init__``.

    Raises
    ------
    DataPackageMissing
        If the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataPackageMissing(
            f"data package {package!r} is not installed; install it with "
            f"`pip install {package}` (digiworm's own install pulls it in)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str) -> Path:
    """Return the path of ``relative`` inside the installed ``package``.

    Raises
    ------
    DataPackageMissing
        If the package or the file is missing.
    """
    path = package_dir(package) / relative
    if not path.is_file():
        raise DataPackageMissing(
            f"{package} {package_version(package)} has no file {relative!r} "
            f"(looked in {path.parent}); reinstall {package}"
        )
    return path


@cache
def package_version(package: str) -> str:
    """Return the installed distribution version of ``package`` (``"unknown"`` if absent)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
