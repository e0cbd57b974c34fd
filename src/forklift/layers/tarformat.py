"""The tar format as layers use it: POSIX ustar headers plus PAX extended records.

Writing (:func:`encode_header`) is deterministic: a header depends only on the
:class:`LayerEntry`, never on the clock, the host or a counter. Fields that do
not fit ustar (long or non-ASCII names, big sizes and ids, xattrs) go into a
PAX ``x`` record set with sorted keys, as Go's ``archive/tar`` (and so Docker,
containerd and BuildKit) does.

Reading (:class:`TarReader`) streams: it never seeks, so it works on a
decompressing pipe. It understands ustar, PAX (local and global), GNU long
names and base-256 numbers, which covers tars written by Docker, BuildKit,
containerd, GNU tar, bsdtar and Python's ``tarfile``. Malformed input raises
:class:`InvalidInput` naming the archive and the byte offset.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import math
import struct
import urllib.parse
from collections.abc import Iterator
from typing import BinaryIO

from forklift.errors import InvalidInput
from forklift.layers.entry import EntryType, LayerEntry, clean_path

BLOCK = 512
#: What ends every archive forklift writes (two zero blocks; no padding to a
#: 10 KiB record, like Go's archive/tar, so digests match the usual tools').
END_OF_ARCHIVE = bytes(2 * BLOCK)
_ZERO_BLOCK = bytes(BLOCK)

_USTAR_MAGIC = b"ustar\x0000"
# mode, uid, gid (8 bytes each at 100), then size (12, skipped) and mtime (12)
_PLAIN_FIELDS = struct.Struct("8s8s8s12x12s")
_DEVICE_FIELDS = struct.Struct("8s8s")  # devmajor, devminor at 329
_GNU_MAGIC = b"ustar  \x00"
_PAX_PREFIX = "SCHILY.xattr."
_LIBARCHIVE_PREFIX = "LIBARCHIVE.xattr."

# Largest values the octal ustar fields hold (n-1 digits + NUL).
_MAX_OCTAL_8 = 8**7 - 1
_MAX_OCTAL_12 = 8**11 - 1

_TYPES: dict[bytes, EntryType] = {
    b"0": EntryType.FILE,
    b"\x00": EntryType.FILE,
    b"7": EntryType.FILE,  # "contiguous file": a regular file everywhere that matters
    b"1": EntryType.HARDLINK,
    b"2": EntryType.SYMLINK,
    b"3": EntryType.CHAR,
    b"4": EntryType.BLOCK,
    b"5": EntryType.DIR,
    b"6": EntryType.FIFO,
}


def padding(size: int) -> int:
    """Zero bytes that follow ``size`` bytes of member data to reach a block boundary."""
    return -size % BLOCK


# --------------------------------------------------------------------------- writing


def _base256(value: int, width: int) -> bytes:
    # GNU extension for numbers octal cannot hold: high bit set, big-endian.
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def _placeholder(name: bytes, width: int = 100) -> bytes:
    # What old (pre-PAX) readers see when the real name lives in a PAX record.
    return bytes(b if 32 <= b < 127 else 0x5F for b in name[: width - 1])


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8") + b"=" + value + b"\n"
    # The length prefix counts itself, so grow it until it is stable.
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode("ascii") + body


def encode_pax(records: dict[str, bytes]) -> bytes:
    """Serialise PAX records, keys sorted so the bytes are deterministic."""
    return b"".join(_pax_record(k, records[k]) for k in sorted(records))


# name mode uid gid size mtime chksum typeflag linkname magic+version uname gname
# devmajor devminor prefix (pad); "Ns" fields are NUL-padded (or cut) by struct.
_USTAR = struct.Struct("100s8s8s8s12s12s8s1s100s8s32s32s8s8s155s12x")


def _header_block(
    *,
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    typeflag: bytes,
    linkname: bytes = b"",
    uname: bytes = b"",
    gname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
) -> bytes:
    block = bytearray(
        _USTAR.pack(
            name,
            b"%07o" % mode,
            b"%07o" % uid,
            b"%07o" % gid,
            b"%011o" % size,
            b"%011o" % mtime,
            b"        ",
            typeflag,
            linkname,
            _USTAR_MAGIC,
            uname,
            gname,
            b"%07o" % devmajor if devmajor <= _MAX_OCTAL_8 else _base256(devmajor, 8),
            b"%07o" % devminor if devminor <= _MAX_OCTAL_8 else _base256(devminor, 8),
            b"",
        )
    )
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def encode_header(entry: LayerEntry) -> bytes:
    """The header block(s) for ``entry``: an optional PAX header, then the ustar header.

    Data (for regular files) and its padding are the caller's to write.
    """
    pax: dict[str, bytes] = {}
    is_dir = entry.type is EntryType.DIR
    name = entry.path.encode("utf-8", "surrogateescape") + (b"/" if is_dir else b"")
    if len(name) > 100 or not name.isascii():
        pax["path"] = name
        name = _placeholder(name) + (b"/" if is_dir else b"")
        name = name[-100:] if len(name) > 100 else name
    linkname = entry.linkname.encode("utf-8", "surrogateescape")
    if len(linkname) > 100 or not linkname.isascii():
        pax["linkpath"] = linkname
        linkname = _placeholder(linkname)
    uname = entry.uname.encode("utf-8", "surrogateescape")
    if len(uname) > 31 or not uname.isascii():
        pax["uname"] = uname
        uname = _placeholder(uname, 32)
    gname = entry.gname.encode("utf-8", "surrogateescape")
    if len(gname) > 31 or not gname.isascii():
        pax["gname"] = gname
        gname = _placeholder(gname, 32)
    uid, gid, size, mtime = entry.uid, entry.gid, entry.size, entry.mtime
    if not 0 <= uid <= _MAX_OCTAL_8:
        pax["uid"] = b"%d" % uid
        uid = 0
    if not 0 <= gid <= _MAX_OCTAL_8:
        pax["gid"] = b"%d" % gid
        gid = 0
    if size > _MAX_OCTAL_12:
        pax["size"] = b"%d" % size
        size = 0
    if not 0 <= mtime <= _MAX_OCTAL_12:
        pax["mtime"] = b"%d" % mtime
        mtime = 0
    for key, value in entry.xattrs:
        if "=" in key or "\n" in key or not key:
            raise InvalidInput(
                f"extended attribute {key!r} of {entry.path!r} cannot be stored in a tar PAX record"
            )
        pax[_PAX_PREFIX + key] = value
    ustar = _header_block(
        name=name,
        mode=entry.mode & 0o7777,
        uid=uid,
        gid=gid,
        size=size if entry.type is EntryType.FILE else 0,
        mtime=mtime,
        typeflag=entry.type.value.encode("ascii"),
        linkname=linkname,
        uname=uname,
        gname=gname,
        devmajor=entry.devmajor,
        devminor=entry.devminor,
    )
    if not pax:
        return ustar
    records = encode_pax(pax)
    base = entry.path.rsplit("/", 1)[-1].encode("utf-8", "surrogateescape")
    pax_header = _header_block(
        name=_placeholder(b"PaxHeaders/" + base),
        mode=0o644,
        uid=0,
        gid=0,
        size=len(records),
        mtime=0,
        typeflag=b"x",
    )
    return pax_header + records + bytes(padding(len(records))) + ustar


# --------------------------------------------------------------------------- reading


def _parse_number(field: bytes) -> int | None:
    """A numeric header field (octal or GNU base-256); None if it is not a number."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:  # negative base-256: two's complement over the whole field
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstring(field: bytes) -> bytes:
    return field.split(b"\x00", 1)[0]


_HIGH_BYTES = bytes(range(128, 256))


def header_checksum_ok(block: bytes) -> bool:
    """Whether a 512-byte block is a tar header whose checksum field matches its bytes."""
    if len(block) != BLOCK or block == _ZERO_BLOCK:
        return False
    stored = _parse_number(block[148:156])
    if stored is None:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored == unsigned:
        return True
    # Some old writers summed signed chars; that variant counts too. Bytes >= 128 are
    # counted in C (what translate deletes), not one by one: this runs for every header.
    rest = block[:148] + block[156:]
    high = len(rest) - len(rest.translate(None, _HIGH_BYTES))
    return stored == unsigned - 256 * high


class TarReader:
    """Iterate the members of a tar stream without extracting them.

    ``for entry in reader`` yields :class:`LayerEntry` values; while an entry is
    current, :meth:`read` / :meth:`readinto` return its data. Moving to the
    next entry skips whatever data was not read. ``label`` names the archive
    in error messages.
    """

    def __init__(self, stream: BinaryIO, label: str = "tar archive") -> None:
        self._f = stream
        self.label = label
        self.offset = 0  # bytes of the tar stream consumed so far
        self._remaining = 0  # unread data bytes of the current member
        self._pad = 0
        self._member = ""
        self._globals: dict[str, bytes] = {}
        self.ended = False  # saw the end-of-archive marker

    # -- low level

    def _fail(self, what: str, offset: int | None = None) -> InvalidInput:
        at = self.offset if offset is None else offset
        return InvalidInput(f"{self.label}: {what} (at byte {at} of the tar stream)")

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            chunks = [data]
            got = len(data)
            while got < n and data:
                data = self._f.read(n - got)
                chunks.append(data)
                got += len(data)
            if got < n:
                raise self._fail(f"truncated archive: {what} ends after {got} of {n} bytes")
            data = b"".join(chunks)
        self.offset += n
        return data

    def _skip(self, n: int, what: str) -> None:
        while n > 0:
            chunk = self._f.read(min(n, 1 << 20))
            if not chunk:
                raise self._fail(f"truncated archive: {what} ends early")
            n -= len(chunk)
            self.offset += len(chunk)

    def _finish_member(self) -> None:
        if self._remaining or self._pad:
            self._skip(self._remaining + self._pad, f"data of member {self._member!r}")
            self._remaining = self._pad = 0

    # -- member data

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all if negative) of the current member's data."""
        if n < 0 or n > self._remaining:
            n = self._remaining
        if n == 0:
            return b""
        data = self._read_exact(n, f"data of member {self._member!r}")
        self._remaining -= n
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        """Read the current member's data into ``buf``; 0 when it is exhausted."""
        view = memoryview(buf).cast("B")
        want = min(len(view), self._remaining)
        if want == 0:
            return 0
        readinto = getattr(self._f, "readinto", None)
        got = 0
        while got < want:
            if readinto is not None:
                n = readinto(view[got:want])
            else:
                chunk = self._f.read(want - got)
                n = len(chunk)
                view[got : got + n] = chunk
            if not n:
                raise self._fail(f"truncated archive: data of member {self._member!r} ends early")
            got += n
        self.offset += got
        self._remaining -= got
        return got

    def drain(self) -> None:
        """Read the stream to its end (after the archive), e.g. so a digest can be checked."""
        self._finish_member()
        while chunk := self._f.read(1 << 20):
            self.offset += len(chunk)

    # -- headers

    def __iter__(self) -> Iterator[LayerEntry]:
        while True:
            self._finish_member()
            entry = self._next_entry()
            if entry is None:
                return
            yield entry  # type: ignore[misc]

    def headers(self) -> Iterator[tuple[str, EntryType, int, int, str]]:
        """``(path, type, size, mode, linkname)`` of each member: iteration for scanners.

        Cheaper than full :class:`LayerEntry` values: owners, times, device numbers
        and xattrs of plain members are neither decoded nor checked. Paths and
        hard-link targets are clean, as in ``LayerEntry``; ``read`` works as usual.
        """
        while True:
            self._finish_member()
            entry = self._next_entry(lean=True)
            if entry is None:
                return
            if isinstance(entry, LayerEntry):
                yield entry.path, entry.type, entry.size, entry.mode, entry.linkname
            else:
                yield entry

    def _parse_pax(self, data: bytes, offset: int) -> dict[str, bytes]:
        records: dict[str, bytes] = {}
        pos = 0
        while pos < len(data):
            if data[pos] == 0:  # some writers pad the record area with NULs
                break
            space = data.find(b" ", pos)
            if space < 0 or not data[pos:space].isdigit():
                raise self._fail("malformed PAX record length", offset)
            length = int(data[pos:space])
            record = data[pos : pos + length]
            if length <= space - pos + 1 or len(record) != length or not record.endswith(b"\n"):
                raise self._fail("malformed PAX record", offset)
            key, eq, value = record[space - pos + 1 : -1].partition(b"=")
            if not eq:
                raise self._fail("PAX record without '='", offset)
            try:
                records[key.decode("utf-8")] = value
            except UnicodeDecodeError:
                raise self._fail("PAX record key is not UTF-8", offset) from None
            pos += length
        return records

    def _pax_int(self, records: dict[str, bytes], key: str, offset: int) -> int | None:
        raw = records.get(key)
        if raw is None or raw == b"":
            return None
        if not raw.isdigit():
            raise self._fail(f"PAX record {key}={_text(raw)!r} is not a number", offset)
        return int(raw)

    def _pax_mtime(self, raw: bytes, offset: int) -> int:
        try:
            return math.floor(decimal.Decimal(raw.decode("ascii")))
        except (decimal.InvalidOperation, UnicodeDecodeError, ValueError, OverflowError):
            raise self._fail(f"PAX record mtime={_text(raw)!r} is not a time", offset) from None

    def _next_entry(
        self, lean: bool = False
    ) -> LayerEntry | tuple[str, EntryType, int, int, str] | None:
        if self.ended:
            return None
        local: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            start = self.offset
            block = self._f.read(BLOCK)
            if len(block) < BLOCK:
                rest = self._f.read(BLOCK - len(block)) if block else b""
                block += rest
                if not block:
                    # EOF at a header boundary without the end marker: accepted,
                    # like Go's archive/tar, unless a PAX/long-name header dangles.
                    if local or long_name is not None or long_link is not None:
                        raise self._fail("truncated archive: extended header without its member")
                    self.ended = True
                    return None
                if len(block) < BLOCK:
                    raise self._fail("truncated archive: partial header block")
            self.offset += BLOCK
            if block == _ZERO_BLOCK:
                self.ended = True
                return None
            if not header_checksum_ok(block):
                raise self._fail("corrupt tar header (checksum mismatch)", start)
            typeflag = block[156:157]
            size = _parse_number(block[124:136])
            if size is None or size < 0:
                raise self._fail("invalid size field in tar header", start)
            if typeflag in (b"x", b"g"):
                data = self._read_exact(size, "PAX header")
                self._skip(padding(size), "PAX header")
                records = self._parse_pax(data, start)
                if typeflag == b"x":
                    local.update(records)
                else:
                    self._globals.update(records)
                continue
            if typeflag in (b"L", b"K"):
                data = _cstring(self._read_exact(size, "GNU long name"))
                self._skip(padding(size), "GNU long name")
                if typeflag == b"L":
                    long_name = data
                else:
                    long_link = data
                continue
            if lean and not local and not self._globals and long_name is None and long_link is None:
                header = self._plain_header(block, typeflag, size)
                if header is not None:
                    return header
            return self._make_entry(block, typeflag, size, local, long_name, long_link, start)

    def _plain_header(
        self, block: bytes, typeflag: bytes, size: int
    ) -> tuple[str, EntryType, int, int, str] | None:
        """What :meth:`headers` yields for a plain member; None to take the general path."""
        etype = _TYPES.get(typeflag)
        if etype is None or typeflag == b"\x00":
            return None
        raw = block[100:108].rstrip(b"\x00 ").lstrip(b" ")
        if not raw.isdigit():
            return None  # empty, signed, base-256...: the general path decides
        try:
            mode = int(raw, 8)
        except ValueError:
            return None
        name = block[0:100].split(b"\x00", 1)[0]
        if block[257:265] == _USTAR_MAGIC and block[345] != 0:
            name = block[345:500].split(b"\x00", 1)[0] + b"/" + name
        raw_name = name.decode("utf-8", "surrogateescape")
        self._member = raw_name
        link = block[157:257].split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
        if etype is EntryType.FILE:
            self._remaining = size
            self._pad = -size % BLOCK
        else:
            self._remaining = self._pad = 0
            size = 0
            if etype is EntryType.HARDLINK:
                link = clean_path(link)
        return clean_path(raw_name), etype, size, mode & 0o7777, link

    def _plain_entry(self, block: bytes, typeflag: bytes, size: int) -> LayerEntry | None:
        """The common member (no PAX records, no GNU long names, plain octal fields), quickly.

        Returns None for anything unusual, which :meth:`_make_entry`'s general path then
        reads (with its checks and error messages), so results never differ.
        """
        etype = _TYPES.get(typeflag)
        if etype is None or typeflag == b"\x00":
            return None
        try:
            mode, uid, gid, mtime = (
                int(f.rstrip(b"\x00 ").lstrip(b" ") or b"0", 8)
                for f in _PLAIN_FIELDS.unpack_from(block, 100)
            )
            ustar = block[257:262] == b"ustar"
            if ustar:
                devmajor, devminor = (
                    int(f.rstrip(b"\x00 ").lstrip(b" ") or b"0", 8)
                    for f in _DEVICE_FIELDS.unpack_from(block, 329)
                )
            else:
                devmajor = devminor = 0
        except ValueError:
            return None  # base-256, garbage after a NUL, ...: the general path decides
        if min(uid, gid, devmajor, devminor) < 0:
            return None
        name = _cstring(block[0:100])
        if block[257:265] == _USTAR_MAGIC:
            prefix = _cstring(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        raw_name = _text(name)
        self._member = raw_name
        has_data = etype is EntryType.FILE
        self._remaining = size if has_data else 0
        self._pad = padding(size) if has_data else 0
        link = _text(_cstring(block[157:257]))
        device = etype is EntryType.CHAR or etype is EntryType.BLOCK
        return LayerEntry(
            path=clean_path(raw_name),
            type=etype,
            mode=mode & 0o7777,
            uid=uid,
            gid=gid,
            size=size if has_data else 0,
            mtime=mtime,
            linkname=clean_path(link) if etype is EntryType.HARDLINK else link,
            uname=_text(_cstring(block[265:297])) if ustar else "",
            gname=_text(_cstring(block[297:329])) if ustar else "",
            devmajor=devmajor if device else 0,
            devminor=devminor if device else 0,
        )

    def _make_entry(
        self,
        block: bytes,
        typeflag: bytes,
        size: int,
        local: dict[str, bytes],
        long_name: bytes | None,
        long_link: bytes | None,
        start: int,
    ) -> LayerEntry:
        if not local and not self._globals and long_name is None and long_link is None:
            entry = self._plain_entry(block, typeflag, size)
            if entry is not None:
                return entry
        pax = {**self._globals, **local}
        magic = block[257:265]
        name = _cstring(block[0:100])
        if magic == _USTAR_MAGIC:
            prefix = _cstring(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        if long_name is not None:
            name = long_name
        if pax.get("path"):
            name = pax["path"]
        linkname = _cstring(block[157:257])
        if long_link is not None:
            linkname = long_link
        if pax.get("linkpath"):
            linkname = pax["linkpath"]
        raw_name = _text(name)
        self._member = raw_name
        if typeflag == b"S" or any(k.startswith("GNU.sparse.") for k in pax):
            raise self._fail(f"member {raw_name!r}: sparse files are not supported", start)
        etype = _TYPES.get(typeflag)
        if etype is None:
            raise self._fail(
                f"member {raw_name!r}: unsupported tar entry type {typeflag.decode('latin-1')!r}",
                start,
            )
        if etype is EntryType.FILE and typeflag == b"\x00" and name.endswith(b"/"):
            etype = EntryType.DIR  # pre-POSIX tars mark directories only by the slash

        pax_size = self._pax_int(pax, "size", start)
        if pax_size is not None:
            size = pax_size
        fields: dict[str, int] = {}
        for field, lo, hi in (("uid", 108, 116), ("gid", 116, 124), ("mtime", 136, 148)):
            number = _parse_number(block[lo:hi])
            if number is None:
                raise self._fail(f"member {raw_name!r}: invalid {field} field", start)
            fields[field] = number
        mode = _parse_number(block[100:108])
        devmajor = _parse_number(block[329:337]) if magic[:5] == b"ustar" else 0
        devminor = _parse_number(block[337:345]) if magic[:5] == b"ustar" else 0
        if mode is None or devmajor is None or devminor is None:
            raise self._fail(f"member {raw_name!r}: invalid mode or device field", start)
        uid = self._pax_int(pax, "uid", start)
        gid = self._pax_int(pax, "gid", start)
        if min(fields["uid"], fields["gid"], devmajor, devminor, size) < 0:
            raise self._fail(f"member {raw_name!r}: negative number in tar header", start)
        mtime = fields["mtime"]
        if pax.get("mtime"):
            mtime = self._pax_mtime(pax["mtime"], start)
        uname = pax.get("uname") or (_cstring(block[265:297]) if magic[:5] == b"ustar" else b"")
        gname = pax.get("gname") or (_cstring(block[297:329]) if magic[:5] == b"ustar" else b"")

        xattrs: dict[str, bytes] = {}
        for key, value in pax.items():
            if key.startswith(_LIBARCHIVE_PREFIX):
                xname = urllib.parse.unquote(key[len(_LIBARCHIVE_PREFIX) :])
                try:
                    xattrs[xname] = base64.b64decode(value + b"=" * (-len(value) % 4))
                except binascii.Error:
                    raise self._fail(f"member {raw_name!r}: bad {key} record", start) from None
        for key, value in pax.items():  # SCHILY wins when a writer stored both
            if key.startswith(_PAX_PREFIX):
                xattrs[key[len(_PAX_PREFIX) :]] = value

        has_data = etype is EntryType.FILE
        self._remaining = size if has_data else 0
        self._pad = padding(size) if has_data else 0
        link = _text(linkname)
        return LayerEntry(
            path=clean_path(raw_name),
            type=etype,
            mode=mode & 0o7777,
            uid=fields["uid"] if uid is None else uid,
            gid=fields["gid"] if gid is None else gid,
            size=size if has_data else 0,
            mtime=mtime,
            linkname=clean_path(link) if etype is EntryType.HARDLINK else link,
            uname=_text(uname),
            gname=_text(gname),
            devmajor=devmajor if etype in (EntryType.CHAR, EntryType.BLOCK) else 0,
            devminor=devminor if etype in (EntryType.CHAR, EntryType.BLOCK) else 0,
            xattrs=tuple(sorted(xattrs.items())),
        )
