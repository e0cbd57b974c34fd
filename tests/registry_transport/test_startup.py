"""Start-up stays small: the push path does not load httpx's CLI module (rich, pygments).

A structural check in a fresh interpreter, not a timing: what is imported is what costs.
The numbers are in bench/registry_transport.py (re-push, mount-copy)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import forklift.registry.client.images  # everything `forklift push` needs
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("rich", "pygments"))
print("heavy:", heavy)
print("main-stub-left:", "httpx._main" in sys.modules)
import httpx
from forklift.transports.registry import _httpx
print("stand-in:", httpx.main is _httpx._main)
import httpx._main as real  # the real CLI module still imports on demand
print("real:", real.__name__, hasattr(real, "main") and real.main is not httpx.main)
"""


def test_the_push_path_does_not_import_httpx_cli_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0] == "heavy: []"
    assert out[1] == "main-stub-left: False"
    assert out[2] == "stand-in: True"
    assert out[3] == "real: httpx._main True"
