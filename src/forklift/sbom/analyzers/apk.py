"""apk: ``/lib/apk/db/installed`` (Alpine, Wolfi, Chainguard).

The database is one stanza per package of ``X:value`` lines: ``P`` name, ``V``
version, ``A`` architecture, ``o`` origin (the source package), ``L`` licence,
``U`` URL, ``m`` maintainer, ``c`` aports commit, and the files as ``F:`` (a
directory) followed by ``R:`` (a file in it). Layers are attributed as for
dpkg: the oldest layer from which on the database lists the same version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, distro_qualifier, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

INSTALLED = "lib/apk/db/installed"


@dataclass(frozen=True, slots=True)
class ApkRecord:
    """One package of an apk database."""

    name: str
    version: str
    arch: str = ""
    origin: str = ""
    license: str = ""
    url: str = ""
    maintainer: str = ""
    commit: str = ""
    files: tuple[str, ...] = ()


def parse_installed(text: str) -> list[ApkRecord]:
    """Every package of an apk ``installed`` database, in order."""
    out: list[ApkRecord] = []
    fields: dict[str, str] = {}
    files: list[str] = []
    directory = ""

    def flush() -> None:
        if not fields and not files:
            return
        if not fields.get("P"):
            raise ValueError("package stanza without a P: (name) line")
        out.append(
            ApkRecord(
                name=fields["P"],
                version=fields.get("V", ""),
                arch=fields.get("A", ""),
                origin=fields.get("o", ""),
                license=fields.get("L", ""),
                url=fields.get("U", ""),
                maintainer=fields.get("m", ""),
                commit=fields.get("c", ""),
                files=tuple(files),
            )
        )

    for line in text.split("\n"):
        if not line.strip():
            flush()
            fields, files, directory = {}, [], ""
            continue
        if len(line) < 2 or line[1] != ":":
            raise ValueError(f"line is not 'X:value': {line[:60]!r}")
        key, value = line[0], line[2:]
        if key == "F":
            directory = value
        elif key == "R":
            files.append(f"/{directory}/{value}" if directory else f"/{value}")
        elif key not in fields:
            fields[key] = value
    flush()
    return out


class ApkAnalyzer(PackageAnalyzer):
    name = "apk"
    os_level = True
    paths = frozenset({INSTALLED})
    keep_history = True

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        return parse_installed(stream.read().decode("utf-8", "replace"))

    def summarize(self, value: object) -> object:
        return {r.name: r.version for r in value}  # type: ignore[attr-defined]

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        out: list[Package] = []
        distro = distro_qualifier(ctx.os)
        namespace = ctx.os.id if ctx.os is not None else "alpine"
        for f in found:
            for rec in f.value:  # type: ignore[attr-defined]
                layer = f.info.layer
                for older, summary in reversed(f.history):
                    if not isinstance(summary, dict) or summary.get(rec.name) != rec.version:
                        break
                    layer = older
                extra = [(k, v) for k, v in (("url", rec.url), ("commit", rec.commit),
                                             ("maintainer", rec.maintainer)) if v]  # fmt: skip
                out.append(
                    Package(
                        name=rec.name,
                        version=rec.version,
                        ecosystem=Ecosystem.APK,
                        purl=purl(
                            "apk",
                            rec.name,
                            rec.version,
                            namespace,
                            {
                                "arch": rec.arch,
                                "distro": distro,
                                "upstream": rec.origin if rec.origin != rec.name else "",
                            },
                        ),
                        layer=ctx.layer(layer),
                        source_name=rec.origin or rec.name,
                        source_version=rec.version,
                        arch=rec.arch,
                        licenses=licenses.unique([rec.license]) if rec.license else (),
                        location=f.info.abspath,
                        files=rec.files,
                        extra=tuple(extra),
                    )
                )
        return out
