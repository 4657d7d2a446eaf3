"""What every command shares: the Typer app, the consoles, user-error handling, the atlas."""

from __future__ import annotations

import functools
import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler

from .._errors import DigiwormError

app = typer.Typer(
    name="digiworm",
    help="A digital C. elegans built bottom up: atlas, models, experiments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# tables are wide: outside a terminal (pipes, CI logs) render at 160 columns, not rich's 80
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

ADULT_CONNECTOMES = ("cook2019", "white1986", "witvliet2021_8")


def _user_errors(func):
    """Turn digiworm's user-facing errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DigiwormError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(code=2) from None

    return wrapper


def _check_engine(engine: str, address, workers) -> None:
    """Refuse a distributed-engine choice that cannot run (``--engine``, ``--address``, ...)."""
    if engine not in ("local", "ray"):
        raise DigiwormError(f"engine {engine!r} is not one of local, ray")
    if engine == "local" and (address is not None or workers is not None):
        raise DigiwormError("--address and --workers are for --engine ray")
    if workers is not None and workers < 1:
        raise DigiwormError(f"--workers must be >= 1; got {workers}")


def _atlas():
    from .. import atlas

    return atlas.load()


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log cache activity.")):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
    )
