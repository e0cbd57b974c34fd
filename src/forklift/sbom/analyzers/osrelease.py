"""Which distribution an image is: ``/etc/os-release``, then ``/etc/debian_version``, ``/etc/alpine-release``.

Also remembers the top-level directory symlinks (``/bin -> usr/bin`` on
merged-/usr systems), so that a file a package database lists as ``/bin/x``
is recognised at ``/usr/bin/x``.
"""

from __future__ import annotations

import posixpath
from typing import BinaryIO

from forklift.sbom.fsview import Analyzer, FileInfo, Found
from forklift.sbom.model import OSInfo

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines with shell quoting, as os-release(5) defines them."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote = value[0]
            value = value[1:-1]
            if quote == '"':
                out_chars: list[str] = []
                i = 0
                while i < len(value):
                    ch = value[i]
                    if ch == "\\" and i + 1 < len(value) and value[i + 1] in '"\\$`':
                        out_chars.append(value[i + 1])
                        i += 2
                        continue
                    out_chars.append(ch)
                    i += 1
                value = "".join(out_chars)
        out[key.strip()] = value
    return out


class OSReleaseAnalyzer(Analyzer):
    name = "os-release"
    paths = frozenset(
        {*OS_RELEASE, "etc/debian_version", "etc/alpine-release", "etc/redhat-release", *TOP_LINKS}
    )
    symlinks = True
    max_size = 1 << 20

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        if info.path in TOP_LINKS:
            return None
        return stream.read().decode("utf-8", "replace")

    def read_link(self, info: FileInfo) -> object | None:
        return ("link", info.link)

    @staticmethod
    def links(found: list[Found]) -> dict[str, str]:
        """Top-level symlinks: ``{"bin": "usr/bin"}`` (targets made relative to the root)."""
        out: dict[str, str] = {}
        for f in found:
            v = f.value
            if f.info.path in TOP_LINKS and isinstance(v, tuple):
                target = posixpath.normpath(posixpath.join("/", v[1])).lstrip("/")
                if target and target != f.info.path:
                    out[f.info.path] = target
        return out

    @staticmethod
    def os_info(found: list[Found]) -> OSInfo | None:
        """The distribution, from the files found (symlinked os-release followed)."""
        by_path = {f.info.path: f.value for f in found}

        def text(path: str, depth: int = 0) -> str | None:
            v = by_path.get(path)
            if isinstance(v, tuple) and depth < 8:
                target = posixpath.normpath(posixpath.join("/", posixpath.dirname(path), v[1]))
                return text(target.lstrip("/"), depth + 1)
            return v if isinstance(v, str) else None

        for path in OS_RELEASE:
            content = text(path)
            if content is None:
                continue
            fields = parse_os_release(content)
            if fields.get("ID"):
                return OSInfo(
                    id=fields["ID"].lower(),
                    version_id=fields.get("VERSION_ID", ""),
                    codename=fields.get("VERSION_CODENAME", ""),
                    pretty_name=fields.get("PRETTY_NAME", ""),
                )
        debian = text("etc/debian_version")
        if debian is not None:
            version = debian.strip()
            return OSInfo(id="debian", version_id=version.split(".")[0] if version[:1].isdigit() else version,
                          pretty_name=f"Debian {version}")  # fmt: skip
        alpine = text("etc/alpine-release")
        if alpine is not None:
            version = alpine.strip()
            return OSInfo(id="alpine", version_id=version, pretty_name=f"Alpine Linux v{version}")
        return None
