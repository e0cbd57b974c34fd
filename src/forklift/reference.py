"""Image references, normalised exactly as Docker does.

``nginx`` -> ``docker.io/library/nginx:latest``; ``host:5000/ns/repo:tag``;
``repo@sha256:...``; ``repo:tag@sha256:...``. Grammar (distribution/reference)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path
    domain     := host [":" port]     host: DNS name, IPv4 or [IPv6]
    path       := component ("/" component)*
    component  := [a-z0-9]+ ((?:[._]|__|-+) [a-z0-9]+)*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

The name (domain + path) is at most 255 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forklift.errors import InvalidDigest, InvalidReference
from forklift.oci.digest import Digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_HEX64 = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True, order=True)
class Reference:
    """A normalised image reference. ``tag`` and ``digest`` may both be set."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``domain/path``, e.g. ``docker.io/library/nginx``."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        """The repository path within its registry, e.g. ``library/nginx``."""
        return self.path

    @property
    def familiar_name(self) -> str:
        """The short name docker shows: ``nginx``, ``user/app``, ``host:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_REPO_PREFIX) and path.count("/") == 1:
                path = path[len(OFFICIAL_REPO_PREFIX) :]
            return path
        return self.name

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + str(self.digest)
        return out

    def familiar(self) -> str:
        """The whole reference in docker's short form (``nginx:latest``)."""
        out = self.familiar_name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + str(self.digest)
        return out

    def with_tag(self, tag: str) -> Reference:
        _check_tag(tag, tag)
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: Digest) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    @property
    def tagged_name(self) -> str:
        """``name:tag`` (the tag being ``latest`` when none was given)."""
        return f"{self.name}:{self.tag or DEFAULT_TAG}"


def _check_tag(tag: str, text: str) -> None:
    if not _TAG.fullmatch(tag):
        raise InvalidReference(
            f"invalid reference {text!r}: invalid tag {tag!r} "
            "(up to 128 of letters, digits, '_', '.', '-'; not starting with '.' or '-')"
        )


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's rule: the first component is a registry host only if it looks like one."""
    first, sep, rest = name.partition("/")
    if not sep or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise an image reference.

    With ``default_tag`` (the default), a reference with neither tag nor digest
    gets the tag ``latest``, as ``docker pull nginx`` does.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReference("invalid reference: empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(f"invalid reference {text!r}: contains whitespace")
    if _HEX64.fullmatch(text):
        raise InvalidReference(
            f"invalid reference {text!r}: a 64-character hex string is an image ID, not a name"
        )
    remainder, at, digest_text = text.partition("@")
    digest = None
    if at:
        if not digest_text:
            raise InvalidReference(f"invalid reference {text!r}: empty digest after '@'")
        try:
            digest = Digest.parse(digest_text)
        except InvalidDigest as exc:
            raise InvalidReference(f"invalid reference {text!r}: {exc.message}") from None
    # A tag is after the last ':' that comes after the last '/' (a ':' before it is a port).
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    name = remainder
    if colon > slash:
        name, tag = remainder[:colon], remainder[colon + 1 :]
        _check_tag(tag, text)
    if not name:
        raise InvalidReference(f"invalid reference {text!r}: empty repository name")
    domain, path = _split_domain(name)
    if not _HOST.fullmatch(domain):
        raise InvalidReference(f"invalid reference {text!r}: invalid registry host {domain!r}")
    if not path:
        raise InvalidReference(f"invalid reference {text!r}: empty repository path")
    for component in path.split("/"):
        if not component:
            raise InvalidReference(f"invalid reference {text!r}: empty path component in {path!r}")
        if not _COMPONENT.fullmatch(component):
            if component.lower() != component and _COMPONENT.fullmatch(component.lower()):
                raise InvalidReference(
                    f"invalid reference {text!r}: repository name must be lowercase ({component!r})"
                )
            raise InvalidReference(
                f"invalid reference {text!r}: invalid path component {component!r} "
                "(lower-case letters and digits, separated by '.', '_', '__' or '-')"
            )
    full = f"{domain}/{path}"
    if len(full) > NAME_MAX:
        raise InvalidReference(
            f"invalid reference {text!r}: repository name is {len(full)} characters "
            f"(at most {NAME_MAX})"
        )
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def is_valid_repository(path: str) -> bool:
    """True if ``path`` is a valid repository path (as registries check names)."""
    return (
        bool(path)
        and len(path) <= NAME_MAX
        and all(_COMPONENT.fullmatch(c) for c in path.split("/"))
    )
