"""Import httpx without its command-line module, which costs more than the rest of it.

``httpx/__init__.py`` ends with ``from ._main import main``: the ``httpx``
console script's module, which imports rich (console, progress, syntax) and
pygments. That is ~30 ms of every ``forklift push``'s start-up for code
forklift never runs. httpx falls back to a stub when that import fails; here
a stub module stands in for ``httpx._main`` only while httpx itself is first
imported, and is removed again, so a later ``import httpx._main`` (the real
``httpx`` script) still gets the real module. Imported first by the package's
``__init__``, so every module of the client sees httpx loaded this way.
"""

from __future__ import annotations

import sys
import types


def _main() -> None:
    raise SystemExit("httpx's command line is not loaded in this process; run the httpx script")


def load_httpx() -> None:
    """Import httpx (once) with a stand-in for its CLI module."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stub = types.ModuleType("httpx._main")
    stub.main = _main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stub
    try:
        import httpx  # noqa: F401
    finally:
        if sys.modules.get("httpx._main") is stub:
            del sys.modules["httpx._main"]


load_httpx()
