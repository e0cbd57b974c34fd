"""Just enough of ELF to find named sections and map virtual addresses (no external library).

Go's ``.go.buildinfo`` and cargo-auditable's ``.dep-v0`` are plain sections;
the old pointer form of Go build info needs an address-to-offset mapping,
which section headers give as well.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\x7fELF"


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    addr: int
    offset: int
    size: int
    nobits: bool


@dataclass(frozen=True)
class Elf:
    """The section table of an ELF image held in memory."""

    data: bytes | memoryview
    little: bool
    bits: int
    sections: tuple[Section, ...]

    def section(self, name: str) -> bytes | None:
        """A section's bytes (None when absent or not stored in the file)."""
        for s in self.sections:
            if s.name == name and not s.nobits:
                if s.offset + s.size > len(self.data):
                    raise ValueError(f"section {name} lies outside the file")
                return bytes(self.data[s.offset : s.offset + s.size])
        return None

    def read_at(self, addr: int, size: int) -> bytes | None:
        """``size`` bytes at virtual address ``addr``, if a stored section holds them."""
        for s in self.sections:
            if not s.nobits and s.addr and s.addr <= addr and addr + size <= s.addr + s.size:
                start = s.offset + (addr - s.addr)
                if start + size > len(self.data):
                    return None
                return bytes(self.data[start : start + size])
        return None


def parse(data: bytes | memoryview) -> Elf:
    """Parse the ELF header and section headers of a whole file held in memory."""
    if bytes(data[:4]) != MAGIC or len(data) < 52:
        raise ValueError("not an ELF file")
    klass, encoding = data[4], data[5]
    if klass not in (1, 2) or encoding not in (1, 2):
        raise ValueError("unknown ELF class or encoding")
    little = encoding == 1
    e = "<" if little else ">"
    if klass == 2:
        if len(data) < 64:
            raise ValueError("truncated ELF header")
        shoff, shentsize, shnum, shstrndx = (
            struct.unpack_from(e + "Q", data, 0x28)[0],
            *struct.unpack_from(e + "HHH", data, 0x3A),
        )
        fmt, width = e + "IIQQQQIIQQ", 64
    else:
        shoff = struct.unpack_from(e + "I", data, 0x20)[0]
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x2E)
        fmt, width = e + "IIIIIIIIII", 40
    if shoff == 0 or shnum == 0:
        return Elf(data, little, 64 if klass == 2 else 32, ())
    if shentsize < width or shoff + shnum * shentsize > len(data) or shnum > 65535:
        raise ValueError("section headers lie outside the file")
    raw = []
    for i in range(shnum):
        f = struct.unpack_from(fmt, data, shoff + i * shentsize)
        # (name, type, flags, addr, offset, size, ...)
        raw.append((f[0], f[1], f[3], f[4], f[5]))
    names = b""
    if shstrndx < len(raw):
        _, _, _, off, size = raw[shstrndx]
        names = bytes(data[off : off + size])
    sections = []
    for name_off, kind, addr, off, size in raw:
        end = names.find(b"\x00", name_off)
        name = names[name_off:end].decode("ascii", "replace") if end >= 0 else ""
        sections.append(Section(name, addr, off, size, kind == 8))  # SHT_NOBITS
    return Elf(data, little, 64 if klass == 2 else 32, tuple(sections))
