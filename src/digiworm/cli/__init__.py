"""The ``digiworm`` command line, one module per command group.

User errors (unknown neuron, gene, dataset, out-of-range option) exit with code 2 and one line
on stderr naming the bad value and what would be valid; no tracebacks. The commands call the
library and its application layer (:mod:`digiworm.app`), as the explorer does.
"""

from __future__ import annotations

# isort: off
# the command modules register their commands on import, in the order of the help listing
from . import _explore, _simulate, _behave, _screen, _fit, _design  # noqa: F401

# isort: on
from ._common import app, console, err_console

__all__ = ["app", "console", "err_console", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``digiworm`` console script."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:  # typer exits through SystemExit
        return int(exc.code or 0)
    return 0
