"""The tar codec: header bytes by hand, round trips, other writers' tars, malformed input."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forklift.errors import InvalidInput
from forklift.layers import EntryType, LayerEntry, TarReader
from forklift.layers.tarformat import END_OF_ARCHIVE, encode_header, padding


def archive(*members: tuple[LayerEntry, bytes]) -> bytes:
    out = bytearray()
    for entry, data in members:
        out += encode_header(entry) + data + bytes(padding(len(data)))
    return bytes(out + END_OF_ARCHIVE)


def read_all(data: bytes) -> list[tuple[LayerEntry, bytes]]:
    reader = TarReader(io.BytesIO(data), "test")
    return [(e, reader.read()) for e in reader]


def test_ustar_header_fields_by_offset() -> None:
    entry = LayerEntry("etc/hosts", EntryType.FILE, mode=0o640, uid=7, gid=8, size=5, mtime=100)
    block = encode_header(entry)
    assert len(block) == 512  # no PAX header needed
    assert block[0:100].rstrip(b"\0") == b"etc/hosts"
    assert block[100:108] == b"0000640\0"
    assert block[108:116] == b"0000007\0"
    assert block[116:124] == b"0000010\0"
    assert block[124:136] == b"00000000005\0"
    assert block[136:148] == b"00000000144\0"
    assert block[156:157] == b"0"
    assert block[257:265] == b"ustar\x0000"
    # POSIX checksum: sum of all bytes with the checksum field read as spaces.
    expected = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    assert int(block[148:154], 8) == expected
    assert block[154:156] == b"\0 "


def test_directory_names_end_with_slash_and_long_names_use_pax() -> None:
    long = "d/" + "n" * 150
    header = encode_header(LayerEntry(long, EntryType.DIR, mode=0o755))
    assert header[156:157] == b"x"  # a PAX header comes first
    records = header[512 : 512 + int(header[124:135], 8)]
    # "<len> path=<value>\n" where <len> counts the whole record, itself included.
    text = records.decode()
    length, rest = text.split(" ", 1)
    assert int(length) == len(records)
    assert rest == f"path={long}/\n"
    assert header[-512 + 156 : -512 + 157] == b"5"


def test_pax_records_are_sorted_and_deterministic() -> None:
    entry = LayerEntry(
        "f",
        EntryType.FILE,
        uid=10**9,
        gid=10**9 + 1,
        xattrs=(("user.b", b"2"), ("user.a", b"1")),
    )
    one = encode_header(entry)
    assert one == encode_header(entry)
    records = one[512 : 512 + int(one[124:135], 8)].split(b"\n")[:-1]
    keys = [r.split(b" ", 1)[1].split(b"=", 1)[0] for r in records]
    assert keys == sorted(keys)
    assert b"SCHILY.xattr.user.a" in keys and b"uid" in keys and b"gid" in keys


names = st.lists(
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs",), blacklist_characters="/\x00", min_codepoint=32
        ),
        min_size=1,
        max_size=40,
    ).filter(lambda s: s not in (".", "..")),
    min_size=1,
    max_size=8,
).map("/".join)

entries = st.builds(
    LayerEntry,
    path=names,
    type=st.sampled_from(list(EntryType)),
    mode=st.integers(0, 0o7777),
    uid=st.integers(0, 2**40),
    gid=st.integers(0, 2**40),
    mtime=st.integers(-(2**40), 2**40),
    linkname=st.text(max_size=200).filter(lambda s: "\x00" not in s),
    uname=st.text(max_size=40).filter(lambda s: "\x00" not in s),
    gname=st.text(max_size=40).filter(lambda s: "\x00" not in s),
    devmajor=st.integers(0, 4095),
    devminor=st.integers(0, 2**20),
    xattrs=st.dictionaries(
        st.text(
            alphabet=st.characters(blacklist_characters="=\n\x00", blacklist_categories=("Cs",)),
            min_size=1,
            max_size=20,
        ).map(lambda s: "user." + s),
        st.binary(max_size=64),
        max_size=3,
    ).map(lambda d: tuple(sorted(d.items()))),
)


def _normalised(entry: LayerEntry, data: bytes) -> LayerEntry:
    # What a reader can know: hard link targets are paths (cleaned), devices only
    # carry numbers on device entries, only regular files have a size.
    from dataclasses import replace

    from forklift.layers import clean_path

    devices = entry.type in (EntryType.CHAR, EntryType.BLOCK)
    return replace(
        entry,
        size=len(data) if entry.type is EntryType.FILE else 0,
        linkname=clean_path(entry.linkname) if entry.type is EntryType.HARDLINK else entry.linkname,
        devmajor=entry.devmajor if devices else 0,
        devminor=entry.devminor if devices else 0,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(entries, st.binary(max_size=1500)), min_size=1, max_size=5))
def test_round_trip_through_our_reader(members: list[tuple[LayerEntry, bytes]]) -> None:
    fixed = []
    for entry, data in members:
        body = data if entry.type is EntryType.FILE else b""
        fixed.append((_normalised(entry, body), body))
    got = read_all(archive(*fixed))
    assert got == fixed


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(entries, st.binary(max_size=600)), min_size=1, max_size=4))
def test_python_tarfile_reads_what_we_write(members: list[tuple[LayerEntry, bytes]]) -> None:
    fixed = []
    for entry, data in members:
        body = data if entry.type is EntryType.FILE else b""
        fixed.append((_normalised(entry, body), body))
    with tarfile.open(
        fileobj=io.BytesIO(archive(*fixed)), mode="r:", errors="surrogateescape"
    ) as tf:
        infos = tf.getmembers()
        assert len(infos) == len(fixed)
        for info, (entry, body) in zip(infos, fixed, strict=True):
            assert info.name.rstrip("/") == entry.path
            assert info.type == entry.type.value.encode()
            assert (info.uid, info.gid, int(info.mtime)) == (entry.uid, entry.gid, entry.mtime)
            assert info.mode == entry.mode
            if entry.type is EntryType.FILE:
                f = tf.extractfile(info)
                assert f is not None and f.read() == body
            if entry.type in (EntryType.SYMLINK, EntryType.HARDLINK):
                assert info.linkname == entry.linkname
            for key, value in entry.xattrs:
                raw = info.pax_headers["SCHILY.xattr." + key]
                assert raw.encode("utf-8", "surrogateescape") == value


def test_reads_gnu_format_long_names_and_base256_ids() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("a/" + "L" * 200)
        info.size = 3
        info.uid = 8**8  # too big for octal: tarfile writes GNU base-256
        tf.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("b")
        link.type = tarfile.SYMTYPE
        link.linkname = "t" * 150  # GNU 'K' long link
        tf.addfile(link)
    (e1, d1), (e2, _) = read_all(buf.getvalue())
    assert (e1.path, e1.uid, d1) == ("a/" + "L" * 200, 8**8, b"abc")
    assert (e2.type, e2.linkname) == (EntryType.SYMLINK, "t" * 150)


def test_reads_ustar_prefix_and_pax_global_headers() -> None:
    buf = io.BytesIO()
    name = "p" * 120 + "/file"  # fits ustar only by using the 155-byte prefix
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo(name)
        tf.addfile(info)
    assert buf.getvalue()[345 : 345 + 120] == b"p" * 120  # the prefix really was used
    assert read_all(buf.getvalue())[0][0].path == name

    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uname": "globaluser"}
    ) as tf:
        tf.addfile(tarfile.TarInfo("x"))
        tf.addfile(tarfile.TarInfo("y"))
    got = read_all(buf.getvalue())
    assert [e.uname for e, _ in got] == ["globaluser", "globaluser"]


def test_reads_gnu_tar_posix_output_with_fractional_mtimes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    import os

    os.utime(src / "f", ns=(0, 1_700_000_000_987_654_321))
    out = subprocess.run(
        ["tar", "--format=posix", "-C", str(src), "-cf", "-", "f"], check=True, capture_output=True
    ).stdout
    [(entry, data)] = read_all(out)
    assert (entry.path, entry.mtime, data) == ("f", 1_700_000_000, b"x")


def test_end_without_zero_blocks_is_accepted() -> None:
    data = archive((LayerEntry("f", EntryType.FILE, size=2), b"hi"))[: -len(END_OF_ARCHIVE)]
    assert [e.path for e, _ in read_all(data)] == ["f"]


def _single() -> bytes:
    return archive((LayerEntry("file", EntryType.FILE, size=700), b"z" * 700))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:100] + b"X" + b[101:], "checksum"),
        (lambda b: b[:800], "truncated"),
        (lambda b: b[:300], "partial header"),
        (lambda b: b[:156] + b"S" + b[157:], "checksum"),
    ],
    ids=["flipped-byte", "data-cut", "header-cut", "type-changed-without-checksum"],
)
def test_malformed_archives_raise_invalid_input(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=message):
        read_all(mutate(_single()))


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def test_sparse_and_unknown_types_are_refused_clearly() -> None:
    base = bytearray(encode_header(LayerEntry("s", EntryType.FILE)))
    base[156:157] = b"S"
    with pytest.raises(InvalidInput, match="sparse files are not supported"):
        read_all(_with_checksum(base) + END_OF_ARCHIVE)
    base[156:157] = b"Q"
    with pytest.raises(InvalidInput, match="unsupported tar entry type 'Q'"):
        read_all(_with_checksum(base) + END_OF_ARCHIVE)


def test_malformed_pax_record_is_invalid_input() -> None:
    records = b"99 path=short\n"  # length claims more than there is
    pax = bytearray(encode_header(LayerEntry("PaxHeaders/x", EntryType.FILE, size=len(records))))
    pax[156:157] = b"x"
    data = _with_checksum(pax) + records + bytes(padding(len(records)))
    data += encode_header(LayerEntry("x", EntryType.FILE)) + END_OF_ARCHIVE
    with pytest.raises(InvalidInput, match="malformed PAX record"):
        read_all(data)


def test_unread_data_is_skipped_and_offsets_counted() -> None:
    data = archive(
        (LayerEntry("a", EntryType.FILE, size=1000), b"a" * 1000),
        (LayerEntry("b", EntryType.FILE, size=3), b"bbb"),
    )
    reader = TarReader(io.BytesIO(data))
    seen = []
    for entry in reader:
        seen.append(entry.path)
        if entry.path == "b":
            assert reader.read() == b"bbb"
    reader.drain()
    assert seen == ["a", "b"]
    assert reader.offset == len(data)


def test_signed_checksum_variant_is_accepted() -> None:
    block = bytearray(encode_header(LayerEntry("cafe-old", EntryType.FILE)))
    # Rewrite as an old writer would: non-ASCII name bytes, checksum over signed chars.
    block[0:8] = b"caf\xe9-old"
    block[148:156] = b" " * 8
    signed = sum(b - 256 if b >= 128 else b for b in block)
    block[148:156] = b"%06o\0 " % signed
    [(entry, _)] = read_all(bytes(block) + END_OF_ARCHIVE)
    assert entry.path == "caf\udce9-old"  # the raw byte, kept (surrogateescape)


@given(body=st.binary(min_size=504, max_size=504), signed=st.booleans(), off=st.integers(-3, 3))
def test_header_checksum_matches_the_spec_sums(body: bytes, signed: bool, off: int) -> None:
    # POSIX: the sum of the header's bytes with the checksum field read as eight spaces;
    # old writers summed signed chars. Any other stored value is not a header.
    from forklift.layers.tarformat import header_checksum_ok

    def total(with_sign: bool) -> int:
        return sum((b - 256 if with_sign and b >= 128 else b) for b in body) + 8 * 32

    value = total(signed) + off
    if value < 0:
        return
    block = body[:148] + b"%06o\0 " % value + body[148:]
    assert header_checksum_ok(block) == (value in (total(False), total(True)))
