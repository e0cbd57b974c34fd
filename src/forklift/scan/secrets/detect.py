"""Finding secrets in file contents, image config values and layers.

:func:`scan_bytes` applies the rules to one file or value; :class:`LayerSecrets`
collects findings while the scanner streams every layer (so files a later
layer deleted are still read: they are still in the image's bytes) and notes
which later layer deleted or replaced each file; :func:`scan_config` reads the
config's ``Env``, ``Labels`` and each history entry's ``created_by``.

A finding never carries the whole secret: :func:`mask` keeps four characters.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from forklift.oci.config import ImageConfig
from forklift.sbom.model import LayerRef
from forklift.scan.db.model import Severity
from forklift.scan.findings import Secret
from forklift.scan.secrets.rules import (
    ENV_ALLOW,
    ENV_NAME,
    RULES,
    SecretRule,
    applies,
    path_rules,
    placeholder,
    prefilter,
)

#: larger files are not read for secrets (keys, tokens and config files are small)
MAX_FILE = 2 << 20
#: paths never worth reading (documentation, translations, compiled code)
SKIP_PREFIXES = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/locale/",
    "usr/share/i18n/",
    "usr/share/zoneinfo/",
)
SKIP_SUFFIXES = (
    ".mo",
    ".gz",
    ".xz",
    ".bz2",
    ".zst",
    ".png",
    ".jpg",
    ".gif",
    ".pyc",
    ".so",
    ".a",
    ".o",
    ".whl",
    ".jar",
    ".zip",
)


@dataclass(frozen=True)
class Hit:
    rule: SecretRule
    line: int
    text: str  # the line with the secret masked


def mask(secret: bytes) -> str:
    """The first four characters, the rest as asterisks (at most 16 shown)."""
    s = secret.decode("utf-8", "replace")
    keep = s[:4] if len(s) > 8 else s[:1]
    return keep + "*" * min(max(len(s) - len(keep), 4), 16)


def _line(data: bytes, start: int, end: int, secret_span: tuple[int, int]) -> tuple[int, str]:
    line_no = data.count(b"\n", 0, start) + 1
    ls = data.rfind(b"\n", 0, start) + 1
    le = data.find(b"\n", end)
    le = len(data) if le < 0 else le
    a, b = secret_span
    before = data[ls:a].decode("utf-8", "replace")
    after = data[b : min(le, b + 60)].decode("utf-8", "replace") if b <= le else ""
    text = (before[-60:] + mask(data[a:b]) + after).strip()
    return line_no, text


def scan_bytes(data: bytes, path: str = "") -> list[Hit]:
    """Every rule hit in ``data`` (one per line: the first rule in order wins)."""
    special = path_rules(path) if path else ()
    if not special and not prefilter(data):
        return []
    hits: dict[int, Hit] = {}
    for rule in RULES:
        if rule.path is not None and rule not in special:
            continue
        if rule.path is None and not applies(rule, data):
            continue
        if rule.needs is not None and not rule.needs.search(data):
            continue
        for m in rule.regex.finditer(data):
            g = 1 if m.re.groups >= 1 and m.group(1) is not None else 0
            value = m.group(g)
            if placeholder(value):
                continue
            line, text = _line(data, m.start(), m.end(), m.span(g))
            if rule.id == "private-key":
                if not _key_body(data, m.end()):
                    continue  # a mention of the header, not a key
                text = m.group(0).decode("ascii", "replace")
            hits.setdefault(line, Hit(rule, line, text))
    return sorted(hits.values(), key=lambda h: h.line)


def _key_body(data: bytes, end: int) -> bool:
    """A key body (base64, maybe PEM headers, maybe JSON-escaped newlines) and the END line."""
    window = data[end : end + 16384]
    stop = window.find(b"-----END")
    if stop < 40:
        return False
    body = window[:stop]
    return bool(re.fullmatch(rb"(?:[A-Za-z0-9+/=\s:,.-]|\\n)+", body)) and len(body.strip()) >= 40


def wanted(path: str, size: int) -> bool:
    """Whether a file of a layer is worth reading for secrets."""
    if size == 0 or size > MAX_FILE:
        return False
    return not (path.startswith(SKIP_PREFIXES) or path.endswith(SKIP_SUFFIXES))


def fix_for(layer: LayerRef | None, target: str) -> str:
    """How to keep this secret out of the image."""
    rotate = "rotate the credential: anyone with the image has it"
    if target.startswith("config:Env"):
        return f"do not bake it in with ENV; pass it at run time or use RUN --mount=type=secret; {rotate}"
    if target.startswith("config:history"):
        return (
            "build args and RUN command lines are recorded in the image history; "
            f"use 'forklift build --secret' with RUN --mount=type=secret; {rotate}"
        )
    if target.startswith("config:"):
        return f"remove it from the image configuration; {rotate}"
    step = (layer.created_by if layer else "").upper()
    where = f" (Dockerfile line {layer.line})" if layer and layer.line else ""
    if "COPY" in step[:40] or "ADD" in step[:40]:
        return (
            f"the file comes from the build context{where}: add it to .dockerignore "
            f"(deleting it in a later step leaves it in this layer); {rotate}"
        )
    if step:
        return (
            f"a build step wrote it{where}: use RUN --mount=type=secret so it never lands in a "
            f"layer; {rotate}"
        )
    return f"remove the file from the image; {rotate}"


class LayerSecrets:
    """Collects secrets while layers stream by, and what later layers did to each file."""

    def __init__(self, layers: Sequence[LayerRef]) -> None:
        self.layers = tuple(layers)
        self.found: list[Secret] = []
        self._by_path: dict[str, list[int]] = {}

    def _layer(self, index: int) -> LayerRef | None:
        return self.layers[index] if 0 <= index < len(self.layers) else None

    def file(self, layer: int, path: str, data: bytes) -> None:
        """Scan one file of layer ``layer`` (``path`` clean and relative)."""
        hits = scan_bytes(data, path)
        if not hits:
            return
        ref = self._layer(layer)
        for h in hits:
            self._by_path.setdefault(path, []).append(len(self.found))
            self.found.append(
                Secret(
                    rule=h.rule.id,
                    category=h.rule.category,
                    title=h.rule.title,
                    severity=h.rule.severity,
                    target="/" + path,
                    line=h.line,
                    match=h.text,
                    layer=ref,
                    fix=fix_for(ref, "/" + path),
                )
            )

    def _hide(self, layer: int, indexes: list[int]) -> None:
        ref = self._layer(layer)
        for i in indexes:
            s = self.found[i]
            if s.deleted_by is None and s.layer is not None and s.layer.index < layer:
                self.found[i] = replace(s, deleted_by=ref)

    def entry(self, layer: int, path: str) -> None:
        """A member of a later layer: a whiteout or a new copy hides earlier files."""
        if not self._by_path:
            return
        name = posixpath.basename(path)
        parent = posixpath.dirname(path)
        if name == ".wh..wh..opq":
            prefix = parent + "/" if parent else ""
            for p, idx in self._by_path.items():
                if p.startswith(prefix):
                    self._hide(layer, idx)
            return
        if name.startswith(".wh."):
            target = posixpath.join(parent, name[4:])
            for p, idx in self._by_path.items():
                if p == target or p.startswith(target + "/"):
                    self._hide(layer, idx)
            return
        same = self._by_path.get(path)
        if same:
            self._hide(layer, same)


def scan_config(config: ImageConfig | None, layers: Sequence[LayerRef]) -> list[Secret]:
    """Secrets in the image config: Env values, labels, and the build history."""
    if config is None:
        return []
    out: list[Secret] = []

    def add(rule_id: str, category: str, title: str, sev: Severity, target: str, text: str) -> None:
        out.append(
            Secret(rule_id, category, title, sev, target, 0, text, fix=fix_for(None, target))
        )

    cc = config.config
    for i, env in enumerate(cc.env if cc is not None else ()):
        name, _, value = env.partition("=")
        target = f"config:Env[{i}]"
        hits = scan_bytes(env.encode())
        for h in hits:
            add(h.rule.id, h.rule.category, h.rule.title, h.rule.severity, target, h.text)
        secretish = ENV_NAME.match(name) and not ENV_ALLOW.search(name)
        if not hits and value and secretish and not placeholder(value.encode()):
            add(
                "env-secret",
                "ImageConfig",
                f"secret-looking value in ENV {name}",
                Severity.HIGH,
                target,
                f"{name}={mask(value.encode())}",
            )
    for key, value in (cc.labels if cc is not None and cc.labels else {}).items():
        for h in scan_bytes(f"{key}={value}".encode()):
            add(
                h.rule.id,
                h.rule.category,
                h.rule.title,
                h.rule.severity,
                f"config:Labels[{key}]",
                h.text,
            )
    for i, h_entry in enumerate(config.history):
        text = h_entry.created_by or ""
        for h in scan_bytes(text.encode()):
            add(
                h.rule.id,
                h.rule.category,
                h.rule.title,
                h.rule.severity,
                f"config:history[{i}]",
                h.text,
            )
    return out
