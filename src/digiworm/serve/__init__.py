"""The worm explorer: a local web page over the digiworm API (``digiworm serve``)."""

from ._app import Limits, SimulateBody, create_app

__all__ = ["Limits", "SimulateBody", "create_app"]
