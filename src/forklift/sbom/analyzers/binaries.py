"""Executables that say what they were built from: Go build info and cargo-auditable data.

* Go (1.18 and later write it inline; older toolchains through pointers, read
  when the whole binary is in memory): the ``.go.buildinfo`` section, or the
  16-byte-aligned ``\\xff Go buildinf:`` header where section headers are
  stripped. It holds the Go version and the module list that ``go version -m``
  prints: the main module, every dependency (with ``=>`` replacements) and
  build settings.
* Rust built with ``cargo auditable``: the ``.dep-v0`` section, zlib-compressed
  JSON listing every crate (``name``, ``version``, ``source``, ``kind``).

Binaries up to :data:`IN_MEMORY` bytes are read whole and their section table
parsed; larger ones are scanned as a stream for the Go header (inline form
only), so memory stays bounded whatever the binary's size.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from forklift.sbom.analyzers import elf
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

GO_MAGIC = b"\xff Go buildinf:"
IN_MEMORY = 64 << 20
_CHUNK = 1 << 20
_ALIGN = 16


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str
    sum: str = ""
    replaced_by: GoModule | None = None


@dataclass(frozen=True)
class GoBuildInfo:
    """What ``go version -m`` prints for a binary."""

    go_version: str
    path: str = ""
    main: GoModule | None = None
    deps: tuple[GoModule, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RustCrate:
    name: str
    version: str
    source: str = ""
    kind: str = "runtime"
    root: bool = False


@dataclass(frozen=True)
class BinaryFindings:
    go: GoBuildInfo | None = None
    rust: tuple[RustCrate, ...] = field(default=())


# -- Go ---------------------------------------------------------------------------


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint in Go build info")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _inline_strings(data: bytes, pos: int) -> tuple[str, str]:
    n, pos = _uvarint(data, pos)
    version = data[pos : pos + n]
    pos += n
    m, pos = _uvarint(data, pos)
    mod = data[pos : pos + m]
    if len(version) != n or len(mod) != m:
        raise ValueError("truncated Go build info")
    return version.decode("utf-8", "replace"), mod.decode("utf-8", "replace")


def _pointer_strings(header: bytes, image: elf.Elf) -> tuple[str, str]:
    ptr_size = header[14]
    if ptr_size not in (4, 8):
        raise ValueError(f"Go build info pointer size {ptr_size}")
    order: Literal["big", "little"] = "big" if header[15] & 1 else "little"

    def ptr(raw: bytes) -> int:
        return int.from_bytes(raw[:ptr_size], order)

    def string_at(addr: int) -> str:
        hdr = image.read_at(addr, 2 * ptr_size)
        if hdr is None:
            raise ValueError("Go build info points outside the binary")
        data = image.read_at(ptr(hdr), ptr(hdr[ptr_size:]))
        if data is None:
            raise ValueError("Go build info string outside the binary")
        return data.decode("utf-8", "replace")

    return string_at(ptr(header[16:])), string_at(ptr(header[16 + ptr_size :]))


def _unframe(mod: str) -> str:
    # The linker wraps module info in 16-byte sentinels; Go strips them this way.
    if len(mod) >= 33 and mod[-17] == "\n":
        return mod[16:-16]
    return ""


def parse_modinfo(go_version: str, mod: str) -> GoBuildInfo:
    """The module lines (``path``, ``mod``, ``dep``, ``=>``, ``build``) of Go build info."""
    path = ""
    main: GoModule | None = None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    for line in mod.split("\n"):
        cols = line.split("\t")
        kind = cols[0]
        if kind == "path" and len(cols) >= 2:
            path = cols[1]
        elif kind in ("mod", "dep") and len(cols) >= 3:
            m = GoModule(cols[1], cols[2], cols[3] if len(cols) > 3 else "")
            if kind == "mod":
                main = m
            else:
                deps.append(m)
        elif kind == "=>" and len(cols) >= 3:
            repl = GoModule(cols[1], cols[2], cols[3] if len(cols) > 3 else "")
            if deps:
                deps[-1] = GoModule(deps[-1].path, deps[-1].version, deps[-1].sum, repl)
            elif main is not None:
                main = GoModule(main.path, main.version, main.sum, repl)
        elif kind == "build" and len(cols) >= 2:
            key, _, value = cols[1].partition("=")
            settings.append((key, value))
    return GoBuildInfo(go_version, path, main, tuple(deps), tuple(settings))


def go_buildinfo(image: elf.Elf) -> GoBuildInfo | None:
    """Go build info of an ELF binary held in memory, if it is a Go binary."""
    data = image.section(".go.buildinfo")
    if data is None or not data.startswith(GO_MAGIC):
        data = None
        raw = bytes(image.data) if isinstance(image.data, memoryview) else image.data
        pos = raw.find(GO_MAGIC)
        while pos >= 0 and pos % _ALIGN:
            pos = raw.find(GO_MAGIC, pos + 1)
        if pos < 0:
            return None
        data = raw[pos : pos + (4 << 20)]
    if len(data) < 32:
        raise ValueError("truncated Go build info header")
    if data[15] & 2:
        version, mod = _inline_strings(data, 32)
    else:
        version, mod = _pointer_strings(data, image)
    return parse_modinfo(version, _unframe(mod))


def go_buildinfo_stream(head: bytes, stream: BinaryIO) -> GoBuildInfo | None:
    """Go build info found by scanning a binary too large to hold (inline form only)."""
    buf = head
    base = 0  # file offset of buf[0]
    while True:
        start = 0
        while True:
            pos = buf.find(GO_MAGIC, start)
            if pos < 0:
                break
            if (base + pos) % _ALIGN == 0:
                window = buf[pos:]
                while len(window) < (4 << 20):
                    more = stream.read(_CHUNK)
                    if not more:
                        break
                    window += more
                if len(window) < 32:
                    raise ValueError("truncated Go build info header")
                if not window[15] & 2:
                    raise ValueError(
                        "Go build info of a pre-1.18 toolchain in a binary over 64 MiB"
                    )
                version, mod = _inline_strings(window, 32)
                return parse_modinfo(version, _unframe(mod))
            start = pos + 1
        chunk = stream.read(_CHUNK)
        if not chunk:
            return None
        keep = buf[-(len(GO_MAGIC) - 1) :]
        base += len(buf) - len(keep)
        buf = keep + chunk


# -- Rust --------------------------------------------------------------------------


def parse_dep_v0(section: bytes) -> tuple[RustCrate, ...]:
    """cargo-auditable's ``.dep-v0``: zlib-compressed JSON ``{"packages": [...]}``."""
    z = zlib.decompressobj()
    raw = z.decompress(section, 8 << 20)  # the format caps the JSON at 8 MiB
    doc = json.loads(raw)
    packages = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(packages, list):
        raise ValueError(".dep-v0 has no package list")
    out = []
    for p in packages:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise ValueError(".dep-v0 package without a name")
        out.append(
            RustCrate(
                p["name"],
                str(p.get("version", "")),
                str(p.get("source", "")),
                str(p.get("kind", "runtime")),
                bool(p.get("root", False)),
            )
        )
    return tuple(out)


# -- the analyzer -------------------------------------------------------------------


class BinaryAnalyzer(PackageAnalyzer):
    name = "binary"
    executables = True
    max_size = 0  # streams: any size

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        head = stream.read(4)
        if head != elf.MAGIC:
            return None
        if info.size > IN_MEMORY:
            go = go_buildinfo_stream(head, stream)
            return BinaryFindings(go=go) if go is not None else None
        data = head + stream.read(info.size - 4)
        image = elf.parse(data)
        go = go_buildinfo(image)
        dep = image.section(".dep-v0")
        rust = parse_dep_v0(dep) if dep is not None else ()
        if go is None and not rust:
            return None
        return BinaryFindings(go=go, rust=rust)

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        out: list[Package] = []
        for f in found:
            v: BinaryFindings = f.value  # type: ignore[assignment]
            layer = ctx.layer(f.info.layer)
            if v.go is not None:
                out.extend(_go_packages(v.go, f, layer))
            for crate in v.rust:
                extra = [("source", crate.source)] if crate.source else []
                if crate.kind != "runtime":
                    extra.append(("kind", crate.kind))
                out.append(
                    Package(
                        name=crate.name,
                        version=crate.version,
                        ecosystem=Ecosystem.CARGO,
                        purl=purl("cargo", crate.name, crate.version),
                        layer=layer,
                        location=f.info.abspath,
                        extra=tuple(extra),
                    )
                )
        return out


def _go_purl(path: str, version: str) -> str:
    namespace, _, name = path.rpartition("/")
    return purl("golang", name, "" if version == "(devel)" else version, namespace or None)


def _go_packages(info: GoBuildInfo, f: Found, layer: object) -> list[Package]:
    out = []
    toolchain = ("go-toolchain", info.go_version)
    modules = ([info.main] if info.main is not None else []) + list(info.deps)
    for i, m in enumerate(modules):
        # A replacement by another module is what was built; one by a local directory
        # (``=> ./shout``) has no version of its own, so the required one names it.
        repl = m.replaced_by
        local = repl is not None and repl.path.startswith(("./", "../", "/"))
        eff = repl if repl is not None and not local else m
        extra = [toolchain]
        if i == 0 and info.main is not None:
            extra.append(("main-module", "true"))
            extra.extend((f"build:{k}", v) for k, v in info.settings)
        if repl is not None:
            extra.append(("replacement", f"{m.path} {m.version} => {repl.path} {repl.version}"))
        if eff.sum:
            extra.append(("h1", eff.sum))
        out.append(
            Package(
                name=eff.path,
                version=eff.version,
                ecosystem=Ecosystem.GOLANG,
                purl=_go_purl(eff.path, eff.version),
                layer=layer,  # type: ignore[arg-type]
                location=f.info.abspath,
                extra=tuple(extra),
            )
        )
    if info.go_version.startswith("go"):
        version = info.go_version.split()[0]  # "go1.22.1 X:boringcrypto" -> "go1.22.1"
        out.append(
            Package(
                name="stdlib",
                version=version,
                ecosystem=Ecosystem.GOLANG,
                purl=purl("golang", "stdlib", version[2:]),
                layer=layer,  # type: ignore[arg-type]
                location=f.info.abspath,
                extra=(toolchain,),
            )
        )
    return out
