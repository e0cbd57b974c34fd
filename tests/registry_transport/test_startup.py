"""Start-up stays small: the push path speaks HTTP through httpcore alone.

A structural check in a fresh interpreter, not a timing: what is imported is what costs.
httpx (about 35 ms to import) and rich/pygments (which httpx's CLI module pulls in) stay
unloaded. The numbers are in bench/registry_transport.py (re-push, mount-copy).
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import forklift.registry.client.images  # everything `forklift push` needs
from forklift.transports.registry import download, session, transport, upload
from forklift.transports.registry.options import ClientOptions
s = session.Session("127.0.0.1:1", ClientOptions())  # builds its HTTP pool
try:
    s.ping()
except Exception as exc:  # nothing listens there: the request still went through the stack
    print("error:", type(exc).__name__)
s.close()
print("loaded:", sorted({m.split(".")[0] for m in sys.modules} & {"httpx", "rich", "pygments"}))
print("httpcore:", "httpcore" in sys.modules)
"""


def test_the_push_path_does_not_import_httpx_or_rich() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0] == "error: Unreachable"
    assert out[1] == "loaded: []"
    assert out[2] == "httpcore: True"
