"""Start real registries for tests and benches: forklift serve and CNCF distribution."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
FORKLIFT = [sys.executable, "-m", "forklift"]


@dataclass
class Server:
    """A running registry process."""

    kind: str
    host: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    scheme: str = "http"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful anything."""
        self.proc.kill()
        self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _wait(server: Server, timeout: float = 20, verify: bool | ssl.SSLContext = False) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.kind} exited early:\n{server.log_text()[-3000:]}")
        try:
            httpx.get(f"{server.url}/v2/", timeout=1, verify=verify)
            return server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"{server.kind} did not start:\n{server.log_text()[-3000:]}")


def start_forklift(
    root: Path,
    *args: str,
    port: int | None = None,
    log: Path | None = None,
    verify: bool | ssl.SSLContext = False,
) -> Server:
    """``forklift serve --root ROOT --addr 127.0.0.1:PORT ARGS`` as a subprocess.

    With no ``port``, a free one is picked; if another process grabs it first
    (a race between tests running in parallel), a new one is tried.
    """
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        chosen = port or free_port()
        logfile = log or root.parent / f"{root.name}-serve-{chosen}.log"
        cmd = [*FORKLIFT, "serve", "--root", str(root), "--addr", f"127.0.0.1:{chosen}", *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        scheme = "https" if "--tls-cert" in args else "http"
        server = Server("forklift", f"127.0.0.1:{chosen}", root, proc, logfile, scheme)
        try:
            return _wait(server, verify=verify)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_distribution(root: Path, htpasswd: Path | None = None) -> Server:
    """CNCF distribution (/usr/bin/docker-registry) with a generated config."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    auth = ""
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"{auth}"
    )
    log = root / "registry.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["/usr/bin/docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    return _wait(Server("distribution", f"127.0.0.1:{port}", root, proc, log))
