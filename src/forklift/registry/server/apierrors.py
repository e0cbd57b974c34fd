"""The error responses of the OCI Distribution Spec.

Every failure a client can cause is an :class:`APIError`: a spec error code, an
HTTP status and a one-line message. The app turns it into the spec's JSON body
``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

import json
from typing import Any


class APIError(Exception):
    """A client-visible registry error (spec code + HTTP status)."""

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        detail: Any = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or []

    def body(self) -> bytes:
        """The spec's JSON error document for this error."""
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()


def blob_unknown(digest: str) -> APIError:
    return APIError("BLOB_UNKNOWN", 404, "blob unknown to registry", {"digest": digest})


def blob_upload_unknown(upload: str) -> APIError:
    return APIError("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry", {"id": upload})


def blob_upload_invalid(message: str) -> APIError:
    return APIError("BLOB_UPLOAD_INVALID", 400, message)


def digest_invalid(message: str) -> APIError:
    return APIError("DIGEST_INVALID", 400, message)


def manifest_unknown(reference: str) -> APIError:
    return APIError("MANIFEST_UNKNOWN", 404, "manifest unknown", {"reference": reference})


def manifest_invalid(message: str) -> APIError:
    return APIError("MANIFEST_INVALID", 400, message)


def manifest_blob_unknown(digests: list[str]) -> APIError:
    return APIError(
        "MANIFEST_BLOB_UNKNOWN",
        400,
        f"manifest references {len(digests)} unknown blob(s): {', '.join(digests[:3])}",
        {"digests": digests},
    )


def name_invalid(message: str) -> APIError:
    return APIError("NAME_INVALID", 400, message)


def name_unknown(name: str) -> APIError:
    return APIError("NAME_UNKNOWN", 404, "repository name not known to registry", {"name": name})


def size_invalid(message: str, status: int = 400) -> APIError:
    return APIError("SIZE_INVALID", status, message)


def unsupported(message: str, status: int = 405) -> APIError:
    return APIError("UNSUPPORTED", status, message)


def denied(message: str = "requested access to the resource is denied") -> APIError:
    return APIError("DENIED", 403, message)


def unauthorized(challenge: str, detail: Any = None) -> APIError:
    return APIError(
        "UNAUTHORIZED",
        401,
        "authentication required",
        detail,
        headers=[("www-authenticate", challenge)],
    )


def range_invalid(size: int, location: str) -> APIError:
    """416 for a chunk that does not start where the upload ends."""
    end = size - 1 if size > 0 else 0
    return APIError(
        "BLOB_UPLOAD_INVALID",
        416,
        f"chunk out of order: the upload holds {size} bytes, the next chunk must start there",
        headers=[("location", location), ("range", f"0-{end}")],
    )
