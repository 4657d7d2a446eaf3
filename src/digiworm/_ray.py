"""A Ray session for digiworm's distributed engines (the screens, brain conditions)."""

from __future__ import annotations

import contextlib
import os
import warnings

from ._errors import DigiwormError

__all__ = ["import_ray", "ray_session"]


def import_ray():
    """Return the ``ray`` module, or fail saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DigiwormError(
            "the Ray engine needs Ray: pip install 'digiworm[distributed]' (or 'ray>=2.40')"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None):
    """Connect to Ray (``address``: ``"auto"``, ``HOST:PORT`` or None for a local cluster).

    A session this call starts is shut down when the block ends; one already running (a
    caller's) is left as it was. ``DIGIWORM_CACHE_DIR`` travels to the workers.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        env = {k: os.environ[k] for k in ("DIGIWORM_CACHE_DIR",) if k in os.environ}
        with warnings.catch_warnings():
            # Ray starts its own services by fork + exec; JAX's warning about a fork of a
            # multithreaded process (a child that goes on running Python) does not apply
            warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env} if env else None)  # fmt: skip
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
