"""Registry error responses -> one-line :class:`~forklift.errors.ForkliftError`s.

Registries explain errors in a JSON body (distribution spec)::

    {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "...", "detail": ...}]}

The body is read only up to a small limit and only its ``code`` and
``message`` reach the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from forklift.errors import InvalidInput, NotFound, RegistryError, TransportError
from forklift.oci import canonical

ERROR_BODY_LIMIT = 64 * 1024


class Unreachable(TransportError):
    """The registry could not be reached at all: its name does not resolve, the
    connection was refused, TLS failed. Another attempt would fail the same way,
    so nothing retries it."""


class RegistryStatusError(RegistryError):
    """A registry answered with an unexpected HTTP status.

    ``status`` is the HTTP status (0 when not from one response) and ``codes``
    the error codes of the body (``DIGEST_INVALID``, ``BLOB_UPLOAD_UNKNOWN``...).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        codes: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.codes = codes


class RateLimited(RegistryStatusError):
    """The registry kept answering 429 Too Many Requests."""


class AuthenticationRequired(RegistryStatusError):
    """The registry wants credentials that forklift does not have (or it rejected them)."""


class Denied(RegistryStatusError):
    """The registry refused access with the credentials given."""


class ServerError(RegistryStatusError):
    """The registry kept failing with 5xx answers."""


@dataclass(frozen=True)
class ErrorInfo:
    """One entry of a registry's ``errors`` array."""

    code: str
    message: str


def parse_error_body(body: bytes) -> list[ErrorInfo]:
    """The ``errors`` of a registry error body; empty if it is not one."""
    if not body or len(body) > ERROR_BODY_LIMIT:
        return []
    try:
        doc = canonical.loads(body, "error body")
    except InvalidInput:
        return []
    items = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        code = item.get("code")
        message = item.get("message")
        out.append(
            ErrorInfo(
                code if isinstance(code, str) else "",
                " ".join(message.split()) if isinstance(message, str) else "",
            )
        )
    return out


def summary(status: int, reason: str, body: bytes) -> str:
    """``CODE: message`` from the body, or the HTTP status line when there is none."""
    infos = parse_error_body(body)
    parts = []
    for info in infos:
        if info.code and info.message:
            parts.append(f"{info.code}: {info.message}")
        elif info.code or info.message:
            parts.append(info.code or info.message)
    if parts:
        return "; ".join(parts)
    text = ""
    if body and len(body) <= 512:
        try:
            text = " ".join(body.decode("utf-8").split())
        except UnicodeDecodeError:
            text = ""
    # a plain-text body such as "404 page not found" is still better than nothing,
    # but an HTML error page is not worth printing
    if text and not text.lstrip().startswith("<"):
        return f"{status} {reason}: {text}" if not text.startswith(str(status)) else text
    return f"{status} {reason}".strip()


def has_code(body: bytes, *codes: str) -> bool:
    """True if the error body carries one of ``codes``."""
    return any(info.code in codes for info in parse_error_body(body))


def error_for_status(
    status: int,
    reason: str,
    body: bytes,
    *,
    registry: str,
    what: str,
    scope: str = "",
    not_found: str | None = None,
    had_credentials: bool = False,
) -> RegistryStatusError | NotFound:
    """The error to raise for an unexpected answer to a request about ``what``."""
    detail = summary(status, reason, body)
    infos = parse_error_body(body)
    codes = tuple(i.code for i in infos if i.code)
    if status == 401:
        hint = (
            f"the registry rejected the stored credentials for {registry}"
            if had_credentials
            else None
        )
        return AuthenticationRequired(
            f"authentication required for {registry}: run forklift login {registry}",
            status=status,
            codes=codes,
            hint=hint,
        )
    if status == 403:
        message = next((i.message for i in infos if i.message), "") or detail
        suffix = f" ({scope})" if scope else ""
        return Denied(f"denied: {message}{suffix}", status=status, codes=codes)
    if status == 404:
        return NotFound(not_found or f"{what} not found in {registry}")
    if status == 429:
        return RateLimited(f"rate limited by {registry} ({what}): {detail}", status=status)
    if status >= 500:
        return ServerError(
            f"{registry}: server error on {what}: {detail}", status=status, codes=codes
        )
    return RegistryStatusError(f"{registry}: {what} failed: {detail}", status=status, codes=codes)
