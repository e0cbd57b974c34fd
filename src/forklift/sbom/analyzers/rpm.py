"""rpm: the SQLite rpmdb of current RHEL-family and Fedora images, read with ``sqlite3``.

``rpmdb.sqlite`` (``/var/lib/rpm`` or ``/usr/lib/sysimage/rpm``) keeps one rpm
header per package in ``Packages(hnum, blob)``. A header blob is an index of
``(tag, type, offset, count)`` entries over a data store (rpm's header
format, big-endian); :func:`parse_header` reads the tags an inventory needs,
including the file list (``DIRNAMES``/``BASENAMES``/``DIRINDEXES``).

The database is opened in memory (``sqlite3`` ``deserialize``); a non-empty
``-wal`` file beside it is applied to it in memory first (:mod:`.sqlite_wal`),
so nothing is written to disk. The Berkeley DB (``Packages``) and NDB (``Packages.db``)
formats of older images are reported as not readable.
"""

from __future__ import annotations

import posixpath
import sqlite3
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, distro_qualifier, purl
from forklift.sbom.analyzers.sqlite_wal import apply_wal
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

DIRS = ("var/lib/rpm", "usr/lib/sysimage/rpm")
SQLITE = "rpmdb.sqlite"
WAL = "rpmdb.sqlite-wal"
OLD_FORMATS = {"Packages": "Berkeley DB", "Packages.db": "NDB"}

# header tags (rpmtag.h)
NAME, VERSION, RELEASE, EPOCH, SUMMARY = 1000, 1001, 1002, 1003, 1004
VENDOR, LICENSE, ARCH, SOURCERPM = 1011, 1014, 1022, 1044
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
MODULARITYLABEL = 5096
# header types
_INT8, _INT16, _INT32, _INT64 = 2, 3, 4, 5
_STRING, _BIN, _STRING_ARRAY, _I18NSTRING = 6, 7, 8, 9
_WANTED = frozenset(
    {NAME, VERSION, RELEASE, EPOCH, VENDOR, LICENSE, ARCH, SOURCERPM, DIRINDEXES, BASENAMES,
     DIRNAMES, MODULARITYLABEL}
)  # fmt: skip
_INT_FORMATS = {_INT8: "b", _INT16: "h", _INT32: "i", _INT64: "q"}
_INT_SIZES = {_INT8: 1, _INT16: 2, _INT32: 4, _INT64: 8}

# os-release ID -> purl namespace, as the rpm purl convention names vendors
_NAMESPACES = {"rhel": "redhat", "amzn": "amazon", "ol": "oracle", "sles": "suse",
               "opensuse-leap": "opensuse", "opensuse-tumbleweed": "opensuse"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RpmRecord:
    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str = ""
    license: str = ""
    vendor: str = ""
    source_rpm: str = ""
    modularity_label: str = ""
    files: tuple[str, ...] = ()

    @property
    def evr(self) -> str:
        """``[epoch:]version-release`` (the epoch only when set)."""
        vr = f"{self.version}-{self.release}" if self.release else self.version
        return f"{self.epoch}:{vr}" if self.epoch is not None else vr

    def source(self) -> tuple[str, str]:
        """Source package name and ``version-release`` from ``SOURCERPM``."""
        srpm = self.source_rpm
        for suffix in (".src.rpm", ".nosrc.rpm"):
            if srpm.endswith(suffix):
                srpm = srpm[: -len(suffix)]
                break
        else:
            return self.name, f"{self.version}-{self.release}"
        parts = srpm.rsplit("-", 2)
        if len(parts) != 3:
            return self.name, f"{self.version}-{self.release}"
        return parts[0], f"{parts[1]}-{parts[2]}"


def parse_header(blob: bytes) -> dict[int, Any]:
    """The wanted tags of an rpm header blob (as the rpmdb stores it: no lead, no magic)."""
    if len(blob) < 8:
        raise ValueError("rpm header shorter than its counts")
    il, dl = struct.unpack_from(">II", blob, 0)
    start = 8 + 16 * il
    if il > 0xFFFF or start + dl > len(blob):
        raise ValueError(f"rpm header counts ({il} entries, {dl} bytes) exceed the blob")
    store = blob[start : start + dl]
    out: dict[int, Any] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if tag not in _WANTED:
            continue
        if offset < 0 or offset > dl:
            raise ValueError(f"rpm header tag {tag}: offset outside the data")
        if kind in (_STRING, _I18NSTRING, _STRING_ARRAY):
            n = 1 if kind == _STRING else count
            values = []
            pos = offset
            for _ in range(n):
                end = store.find(b"\x00", pos)
                if end < 0:
                    raise ValueError(f"rpm header tag {tag}: unterminated string")
                values.append(store[pos:end].decode("utf-8", "replace"))
                pos = end + 1
            out[tag] = values if kind == _STRING_ARRAY else values[0]
        elif kind in _INT_FORMATS:
            size = _INT_SIZES[kind] * count
            if offset + size > dl:
                raise ValueError(f"rpm header tag {tag}: integers outside the data")
            out[tag] = list(struct.unpack_from(f">{count}{_INT_FORMATS[kind]}", store, offset))
    return out


def record_from_header(h: dict[int, Any]) -> RpmRecord:
    """An :class:`RpmRecord` from parsed header tags."""
    files: list[str] = []
    dirs, bases, idx = h.get(DIRNAMES, []), h.get(BASENAMES, []), h.get(DIRINDEXES, [])
    if len(bases) == len(idx):
        for base, i in zip(bases, idx, strict=True):
            if 0 <= i < len(dirs):
                files.append(dirs[i] + base)
    epoch = h.get(EPOCH)
    return RpmRecord(
        name=h.get(NAME, ""),
        version=h.get(VERSION, ""),
        release=h.get(RELEASE, ""),
        epoch=epoch[0] if epoch else None,
        arch=h.get(ARCH, ""),
        license=h.get(LICENSE, ""),
        vendor=h.get(VENDOR, ""),
        source_rpm=h.get(SOURCERPM, ""),
        modularity_label=h.get(MODULARITYLABEL, ""),
        files=tuple(files),
    )


def _records(conn: sqlite3.Connection) -> list[RpmRecord]:
    out = []
    for (blob,) in conn.execute("SELECT blob FROM Packages ORDER BY hnum"):
        rec = record_from_header(parse_header(bytes(blob)))
        if rec.name and rec.name != "gpg-pubkey":  # imported signing keys, not software
            out.append(rec)
    return out


def read_rpmdb(data: bytes, wal: bytes = b"") -> list[RpmRecord]:
    """Every package of an rpmdb.sqlite held in memory (``wal``: its write-ahead log)."""
    if not data.startswith(b"SQLite format 3\x00"):
        raise ValueError("not an SQLite database")
    # the log's committed pages applied in memory: nothing is written to disk, so a
    # killed process leaves nothing behind
    buf = bytearray(apply_wal(data, wal) if wal else data)
    # A WAL-mode database (header bytes 18-19 = 2) cannot be deserialized as is; with
    # the log applied the image is complete, so mark it as a rollback-journal database.
    if buf[18:20] == b"\x02\x02":
        buf[18:20] = b"\x01\x01"
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(bytes(buf))
        return _records(conn)
    finally:
        conn.close()


class RpmAnalyzer(PackageAnalyzer):
    name = "rpm"
    os_level = True
    paths = frozenset(f"{d}/{n}" for d in DIRS for n in (SQLITE, WAL, *OLD_FORMATS))
    keep_history = True
    max_size = 512 << 20

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        base = posixpath.basename(info.path)
        if base in OLD_FORMATS:
            return ("old", OLD_FORMATS[base])
        data = stream.read()
        if base == WAL:
            return ("wal", data) if data else None
        if not data.startswith(b"SQLite format 3\x00"):
            raise ValueError("not an SQLite database")
        return ("db", data)

    def summarize(self, value: object) -> object:
        kind, data = cast(tuple[str, Any], value)
        if kind != "db":
            return None
        return {(r.name, r.arch): r.evr for r in read_rpmdb(data)}

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        wals = {posixpath.dirname(f.info.path): f.value[1] for f in found if f.value[0] == "wal"}  # type: ignore[index]
        namespace = _NAMESPACES.get(ctx.os.id, ctx.os.id) if ctx.os is not None else ""
        distro = distro_qualifier(ctx.os)
        out: list[Package] = []
        for f in found:
            kind, data = cast(tuple[str, Any], f.value)
            if kind == "old":
                ctx.warn(
                    f"{f.info.abspath}: rpm database in the {data} format is not readable "
                    "(only the SQLite rpmdb of RHEL 9 / Fedora 33 and later is)"
                )
                continue
            if kind != "db":
                continue
            try:
                records = read_rpmdb(data, wals.get(posixpath.dirname(f.info.path), b""))
            except (ValueError, sqlite3.DatabaseError, struct.error) as e:
                ctx.warn(f"{f.info.abspath}: not a readable rpm database ({e})")
                continue
            for rec in records:
                layer = f.info.layer
                for older, summary in reversed(f.history):
                    if (
                        not isinstance(summary, dict)
                        or summary.get((rec.name, rec.arch)) != rec.evr
                    ):
                        break
                    layer = older
                src_name, src_version = rec.source()
                vr = f"{rec.version}-{rec.release}" if rec.release else rec.version
                extra = [(k, v) for k, v in (("vendor", rec.vendor), ("source-rpm", rec.source_rpm),
                         ("modularity-label", rec.modularity_label)) if v]  # fmt: skip
                out.append(
                    Package(
                        name=rec.name,
                        version=rec.evr,
                        ecosystem=Ecosystem.RPM,
                        purl=purl(
                            "rpm",
                            rec.name,
                            vr,
                            namespace or None,
                            {
                                "arch": rec.arch,
                                "epoch": str(rec.epoch) if rec.epoch is not None else "",
                                "distro": distro,
                            },
                        ),
                        layer=ctx.layer(layer),
                        source_name=src_name,
                        source_version=src_version,
                        arch=rec.arch,
                        licenses=licenses.unique([rec.license]) if rec.license else (),
                        location=f.info.abspath,
                        files=rec.files,
                        extra=tuple(extra),
                    )
                )
        return out
