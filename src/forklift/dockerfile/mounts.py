"""``RUN --mount=...`` options parsed into :class:`Mount` values (BuildKit semantics).

A mount spec is one CSV record (Go ``encoding/csv`` rules: fields separated by
commas, ``"..."`` quoting with ``""`` for a quote) of ``key=value`` fields plus
the bare words ``ro``/``readonly``, ``rw``/``readwrite`` and ``required``.

Keys: ``type`` (bind, cache, tmpfs, secret, ssh; default bind), ``from``,
``source``/``src``, ``target``/``dst``/``destination``, ``readonly``/``ro``,
``readwrite``/``rw``, ``id``, ``sharing`` (shared, private, locked; cache only),
``required`` (secret and ssh), ``mode`` (octal), ``uid``, ``gid`` (cache,
secret, ssh), ``size`` (tmpfs, e.g. ``64m``), ``env`` (secret: expose as an
environment variable).

Values are expanded with the build's variables before use, except ``from``,
which may not contain variables (BuildKit: "define alias stage instead").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from forklift.dockerfile.gocompat import with_suggestion

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_KEYS = (
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "ro",
    "rw",
    "readwrite",
)
_VARIABLE = re.compile(r"\$.", re.DOTALL)


class MountError(ValueError):
    """A ``--mount`` value is malformed."""


@dataclass(frozen=True)
class Mount:
    """One ``RUN --mount``.

    ``readonly`` defaults to true for bind, secret and ssh mounts and false for
    cache and tmpfs mounts. ``size`` is tmpfs's size limit in bytes. ``id`` is
    the cache id, or the secret/ssh id. ``env`` names the environment variable
    a secret is exposed as.
    """

    type: str = "bind"
    from_: str = ""
    source: str = ""
    target: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    env: str | None = None

    @property
    def secret_id(self) -> str:
        """The secret/ssh id as BuildKit resolves it (``id``, else ``source``, else target's base name)."""
        if self.type == "ssh":
            return self.id or "default"
        ident = self.source or self.id
        if not ident and self.target:
            ident = self.target.rstrip("/").rsplit("/", 1)[-1]
        return ident


def read_csv_record(text: str) -> list[str]:
    """Read one record like Go's ``csv.Reader.Read`` with default settings."""
    if text == "":
        raise MountError("failed to parse csv mounts: EOF")
    text = text.split("\n", 1)[0].rstrip("\r")
    fields: list[str] = []
    pos = 0
    n = len(text)
    while True:
        if pos < n and text[pos] == '"':
            start = pos
            pos += 1
            buf: list[str] = []
            while True:
                q = text.find('"', pos)
                if q < 0:
                    raise MountError(
                        "failed to parse csv mounts: parse error on line 1, column "
                        f'{n + 1}: extraneous or missing " in quoted-field'
                    )
                buf.append(text[pos:q])
                pos = q + 1
                if pos < n and text[pos] == '"':
                    buf.append('"')
                    pos += 1
                    continue
                if pos == n or text[pos] == ",":
                    break
                raise MountError(
                    "failed to parse csv mounts: parse error on line 1, column "
                    f'{pos + 1}: extraneous or missing " in quoted-field'
                )
            del start
            fields.append("".join(buf))
        else:
            comma = text.find(",", pos)
            end = n if comma < 0 else comma
            value = text[pos:end]
            bare = value.find('"')
            if bare >= 0:
                raise MountError(
                    "failed to parse csv mounts: parse error on line 1, column "
                    f'{pos + bare + 1}: bare " in non-quoted-field'
                )
            fields.append(value)
            pos = end
        if pos >= n:
            break
        pos += 1  # the comma
        if pos == n:
            fields.append("")
            break
    return fields


def _parse_bool(key: str, value: str) -> bool:
    # Go's strconv.ParseBool
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _parse_uint(value: str, base: int, what: str) -> int:
    # Go's strconv.ParseUint(value, base, 32): plain digits only (no sign, no
    # "0o" prefix, no underscores).
    digits = "01234567" if base == 8 else "0123456789"
    if not value or any(c not in digits for c in value):
        raise MountError(f"invalid value {value} for {what}")
    result = int(value, base)
    if result >= 1 << 32:
        raise MountError(f"invalid value {value} for {what}")
    return result


_RAM_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_RAM_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?\Z")


def parse_ram_size(value: str) -> int:
    """go-units ``RAMInBytes``: ``64m`` -> 67108864 (binary units, optional ``b``/``ib``)."""
    m = _RAM_SIZE.match(value.strip())
    if m is None:
        raise MountError(f"invalid value for size: {value}")
    return int(float(m.group(1)) * _RAM_UNITS[m.group(2).lower()])


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    """Parse one ``--mount`` value into a :class:`Mount`.

    ``expand`` expands variables in each value (BuildKit expands every value but
    ``from``). Without it values are taken literally.
    """
    fields = read_csv_record(spec)
    values: dict[str, object] = {"type": "bind"}
    ro_auto = True
    for field_text in fields:
        key, eq, value = field_text.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                values["readonly"] = True
                ro_auto = False
                continue
            if key in ("readwrite", "rw"):
                values["readonly"] = False
                ro_auto = False
                continue
            if key == "required":
                if values["type"] in ("secret", "ssh"):
                    values["required"] = True
                    continue
                raise MountError(f"unexpected key '{key}' for mount type '{values['type']}'")
            raise MountError(f"invalid field '{field_text}' must be a key=value pair")
        if key == "from":
            if _VARIABLE.search(value):
                raise MountError(
                    f"'{key}' doesn't support variable expansion, define alias stage instead"
                )
        elif expand is not None:
            value = expand(value)
        mount_type = str(values["type"])
        if key == "type":
            lowered = value.lower()
            if lowered not in MOUNT_TYPES:
                raise MountError(
                    with_suggestion(
                        f'unsupported mount type "{value}"', value, MOUNT_TYPES, case_sensitive=True
                    )
                )
            values["type"] = lowered
        elif key == "from":
            values["from_"] = value
        elif key in ("source", "src"):
            values["source"] = value
        elif key in ("target", "dst", "destination"):
            values["target"] = value
        elif key in ("readonly", "ro"):
            values["readonly"] = _parse_bool(key, value)
            ro_auto = False
        elif key in ("readwrite", "rw"):
            values["readonly"] = not _parse_bool(key, value)
            ro_auto = False
        elif key == "required":
            if mount_type not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            values["required"] = _parse_bool(key, value)
        elif key == "size":
            if mount_type != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            values["size"] = parse_ram_size(value)
        elif key == "id":
            values["id"] = value
        elif key == "sharing":
            lowered = value.lower()
            if lowered not in SHARING_MODES:
                raise MountError(
                    with_suggestion(
                        f'unsupported sharing value "{value}"',
                        value,
                        SHARING_MODES,
                        case_sensitive=True,
                    )
                )
            values["sharing"] = lowered
        elif key == "mode":
            values["mode"] = _parse_uint(value, 8, "mode")
        elif key == "uid":
            values["uid"] = _parse_uint(value, 10, "uid")
        elif key == "gid":
            values["gid"] = _parse_uint(value, 10, "gid")
        elif key == "env":
            if mount_type != "secret":
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            values["env"] = value
        else:
            raise MountError(
                with_suggestion(
                    f"unexpected key '{key}' in '{field_text}'", key, _KEYS, case_sensitive=True
                )
            )
    mount = Mount(**values)  # type: ignore[arg-type]
    return _validate(mount, ro_auto)


def _validate(m: Mount, ro_auto: bool) -> Mount:
    if m.type not in ("secret", "ssh", "cache"):
        for attr in ("mode", "uid", "gid"):
            if getattr(m, attr) is not None:
                raise MountError(f'{attr} not allowed for "{m.type}" type mounts')
    if ro_auto:
        m = _replace(m, readonly=m.type not in ("cache", "tmpfs"))
    if m.type == "secret":
        if m.from_:
            raise MountError("secret mount should not have a from")
        if m.sharing:
            raise MountError("secret mount should not define sharing")
        if not m.source and not m.target and not m.id:
            raise MountError("invalid secret mount. one of source, target required")
        if m.source and m.id:
            raise MountError("both source and id can't be set")
    if m.sharing and m.type != "cache":
        raise MountError(f"invalid cache sharing set for {m.type} mount")
    return m


def _replace(m: Mount, **changes: object) -> Mount:
    from dataclasses import replace

    return replace(m, **changes)  # type: ignore[arg-type]


def mount_from(spec: str) -> str:
    """The ``from=`` of a mount spec as BuildKit reads it at parse time ("" if none).

    At parse time BuildKit only looks at ``from`` (to find stage dependencies) and
    rejects variables in it; every other key is checked when the step runs.
    """
    fields = read_csv_record(spec)
    source = ""
    for field_text in fields:
        key, eq, value = field_text.partition("=")
        if not eq or key.lower() != "from":
            continue
        if _VARIABLE.search(value):
            raise MountError(
                "'from' doesn't support variable expansion, define alias stage instead"
            )
        source = value
    return source
