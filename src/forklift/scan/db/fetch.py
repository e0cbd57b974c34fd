"""Downloading a source: resumable, size-checked, optionally digest-pinned.

A download goes to ``<db dir>/downloads/<hash of the URL>.part``. If the
connection breaks, the next attempt asks for the rest with ``Range`` (a server
that answers 200 instead starts it over). The transfer is complete only when
the byte count matches ``Content-Length`` (or the total of ``Content-Range``);
a URL ending in ``#sha256=<hex>`` must also hash to that digest. TLS uses the
system trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured) and proxies
come from ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, as for registries.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag

from forklift.errors import DigestMismatch, TransportError

ATTEMPTS = 4
CHUNK = 1 << 20


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size: int


def _pinned(url: str) -> tuple[str, str | None]:
    base, frag = urldefrag(url)
    if frag.startswith("sha256="):
        return base, frag[len("sha256=") :].lower()
    return url, None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def download(
    url: str,
    directory: Path,
    *,
    timeout: float = 60.0,
    attempts: int = ATTEMPTS,
    progress: Callable[[int, int | None], None] | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``directory``; resume a partial file left by an earlier try."""
    from forklift.transports.registry import httpclient as http

    retried: tuple[type[Exception], ...] = (*http.HTTP_ERRORS, _Short)

    real, want = _pinned(url)
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(real.encode()).hexdigest()[:32]
    part = directory / f"{name}.part"
    last_error = ""
    ctx = ssl.create_default_context()
    with http.HttpClient(
        ssl_context=ctx,
        timeout=http.Timeout(connect=30.0, read=timeout, write=timeout, pool=timeout),
        headers={"User-Agent": "forklift"},
    ) as client:
        for attempt in range(attempts):
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with client.send("GET", real, headers=headers, follow_redirects=True) as resp:
                    if resp.status_code == 416 and have:
                        part.unlink()  # our partial file is not a prefix of theirs
                        continue
                    if resp.status_code not in (200, 206):
                        raise TransportError(
                            f"{real}: HTTP {resp.status_code} {resp.reason_phrase}"
                        )
                    total: int | None = None
                    if resp.status_code == 206:
                        cr = resp.headers.get("content-range", "")
                        start = cr.split(" ", 1)[-1].split("-", 1)[0]
                        if not start.isdigit() or int(start) != have:
                            part.unlink(missing_ok=True)
                            continue
                        if "/" in cr and cr.rsplit("/", 1)[1].isdigit():
                            total = int(cr.rsplit("/", 1)[1])
                        mode = "ab"
                    else:
                        have = 0
                        length = resp.headers.get("content-length")
                        total = int(length) if length and length.isdigit() else None
                        mode = "wb"
                    with open(part, mode) as out:
                        for chunk in resp.iter_raw():
                            out.write(chunk)
                            have += len(chunk)
                            if progress is not None:
                                progress(have, total)
                        out.flush()
                        os.fsync(out.fileno())
                    if total is not None and have != total:
                        raise _Short(f"got {have} of {total} bytes")
            except retried as exc:
                last_error = str(exc) or type(exc).__name__
                time.sleep(min(0.2 * 2**attempt, 2.0))
                continue
            digest = _sha256(part)
            if want is not None and digest != want:
                part.unlink(missing_ok=True)
                raise DigestMismatch(f"{real}: content is sha256:{digest}, expected sha256:{want}")
            done = directory / f"{name}.done"
            os.replace(part, done)
            return Downloaded(done, digest, done.stat().st_size)
    raise TransportError(
        f"{real}: download incomplete after {attempts} attempts ({last_error})",
        hint="the partial file is kept; the next 'forklift db update' resumes it",
    )


class _Short(Exception):
    """The body ended before the length the server announced."""
