"""forklift's loggers, with the set-up a front end asks for applied on first use.

Importing :mod:`logging` costs a few milliseconds, which commands that never
log (``forklift images``, ``version``) should not pay at every start. A front
end (the CLI) hands its set-up to :func:`configure`; it runs at once when
``logging`` is loaded already, else when a forklift module first asks
:func:`get` for a logger. Modules that log take their logger from :func:`get`
(at import when they import ``logging``'s users anyway, else where they log).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

_pending: Callable[[], None] | None = None


def configure(setup: Callable[[], None]) -> None:
    """Run ``setup`` (which configures :mod:`logging`) now if logging is loaded, else
    before the first :func:`get`."""
    global _pending
    if "logging" in sys.modules:
        _pending = None
        setup()
    else:
        _pending = setup


def get(name: str) -> logging.Logger:
    """The logger ``name`` (``forklift.*``), after the front end's set-up."""
    import logging

    global _pending
    setup, _pending = _pending, None
    if setup is not None:
        setup()
    return logging.getLogger(name)
