"""``forklift scan``: the pipeline from an image (or directory, or SBOM) to a result.

1. One streamed pass over the layers feeds both the inventory's final
   filesystem view (``forklift.sbom``) and, when secrets are scanned, the
   secret rules, which read every layer's files, deleted ones included.
2. The inventory is matched against the local database (``match``).
3. Filters, in Trivy's order: package types, severities, ``--ignore-unfixed``,
   the ignore file and the VEX document (those two are kept as *suppressed*).
4. Findings are grouped into targets (the OS, each language, each secret file)
   for the reporters.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from forklift.errors import UsageError
from forklift.layers.entry import EntryType
from forklift.oci.platform import Platform
from forklift.sbom.model import Ecosystem, Inventory, Package
from forklift.scan.db.index import Database, default_path
from forklift.scan.db.model import Severity
from forklift.scan.findings import ScanResult, Secret, Suppressed, Target, Vulnerability
from forklift.scan.ignore import IgnoreRules
from forklift.scan.match import match_inventory
from forklift.scan.secrets.detect import LayerSecrets, scan_config, wanted
from forklift.scan.vex import SUPPRESSING, VexDocument

SCANNERS = ("vuln", "secret")
#: how much of a file is read to tell text from binary (secrets are looked for in text)
BINARY_PEEK = 8192


class _Prefixed:
    """A member's data: what the secret scan already read, then the rest from the tar."""

    def __init__(self, head: bytes, reader: object) -> None:
        self.head = io.BytesIO(head)
        self.reader = reader

    def read(self, n: int) -> bytes:
        data = self.head.read(n)
        if len(data) < n:
            data += self.reader.read(n - len(data))  # type: ignore[attr-defined]
        return data


PKG_TYPES = ("os", "library")
DAY = 86400.0

_LANG = {
    Ecosystem.PYPI: ("Python", "python-pkg"),
    Ecosystem.NPM: ("Node.js", "node-pkg"),
    Ecosystem.GOLANG: ("Go", "gobinary"),
    Ecosystem.MAVEN: ("Java", "jar"),
    Ecosystem.CARGO: ("Rust", "rustbinary"),
    Ecosystem.GEM: ("Ruby", "gemspec"),
    Ecosystem.COMPOSER: ("PHP", "composer"),
    Ecosystem.NUGET: (".NET", "dotnet-core"),
}
#: ecosystems whose packages are grouped per file (each binary or archive its own target)
_PER_FILE = (Ecosystem.GOLANG, Ecosystem.CARGO, Ecosystem.MAVEN)


@dataclass(frozen=True)
class ScanOptions:
    """What to scan and what to report (the CLI flags, as data)."""

    scanners: frozenset[str] = frozenset(SCANNERS)
    pkg_types: frozenset[str] = frozenset(PKG_TYPES)
    severities: frozenset[Severity] = frozenset(Severity)
    ignore_unfixed: bool = False
    ignore: IgnoreRules | None = None
    vex: VexDocument | None = None
    db_path: Path | None = None
    db_max_age: float = 7 * DAY  # seconds; older gives a warning
    platform: Platform | str | None = None
    warnings: tuple[str, ...] = field(default=())


def _open_db(options: ScanOptions) -> tuple[Database | None, list[str]]:
    if "vuln" not in options.scanners:
        return None, []
    db = Database.open(options.db_path or default_path())
    warnings = []
    age = db.oldest_import()
    if age is not None and age > options.db_max_age:
        warnings.append(
            f"the vulnerability database is {age / DAY:.1f} days old (more than --db-max-age "
            f"{options.db_max_age / DAY:g} days): run 'forklift db update'"
        )
    return db, warnings


def _os_name(inv: Inventory) -> str:
    os_ = inv.os
    if os_ is None:
        return "unknown OS"
    name = f"{os_.id} {os_.version_id}".strip()
    return f"{name} ({os_.codename})" if os_.codename else name


def _targets(
    inv: Inventory, vulns: list[Vulnerability], secrets: list[Secret], options: ScanOptions
) -> list[Target]:
    by_key: dict[tuple[str, str, str], list[Vulnerability]] = {}
    counts: dict[tuple[str, str, str], int] = {}

    def key(p: Package) -> tuple[str, str, str]:
        if p.ecosystem.is_os:
            return (_os_name(inv), "os-pkgs", inv.os.id if inv.os else "unknown")
        name, kind = _LANG.get(p.ecosystem, (p.ecosystem.value, p.ecosystem.value))
        if p.ecosystem in _PER_FILE and p.location:
            return (p.location.lstrip("/"), "lang-pkgs", kind)
        return (name, "lang-pkgs", kind)

    if "vuln" in options.scanners:
        for p in inv.packages:
            k = key(p)
            if _wanted_type(p, options):
                counts[k] = counts.get(k, 0) + 1
                by_key.setdefault(k, [])
        for v in vulns:
            by_key.setdefault(key(v.package), []).append(v)
    out = [
        Target(k[0], k[1], k[2], tuple(sorted(vs, key=_vuln_order)), packages=counts.get(k, 0))
        for k, vs in sorted(by_key.items(), key=lambda kv: (kv[0][1] != "os-pkgs", kv[0][0]))
    ]
    by_file: dict[str, list[Secret]] = {}
    for s in secrets:
        by_file.setdefault(
            s.target.split("[", 1)[0] if s.target.startswith("config:") else s.target, []
        ).append(s)
    for name, ss in sorted(by_file.items()):
        out.append(Target(name, "secret", "", secrets=tuple(ss)))
    return out


def _vuln_order(v: Vulnerability) -> tuple[str, int, str]:
    return (v.package.name, -v.severity.rank, v.id)


def _wanted_type(p: Package, options: ScanOptions) -> bool:
    return ("os" if p.ecosystem.is_os else "library") in options.pkg_types


def finish(
    inv: Inventory,
    artifact: str,
    artifact_type: str,
    options: ScanOptions,
    db: Database | None,
    secrets: list[Secret],
    warnings: list[str],
    image_config: dict[str, object] | None = None,
) -> ScanResult:
    """Match, filter and group: the result of a scan of ``inv``."""
    vulns = match_inventory(db, inv) if db is not None else []
    vulns = [v for v in vulns if _wanted_type(v.package, options)]
    suppressed: list[Suppressed] = []
    image_ids = tuple(x for x in (inv.target, inv.digest, inv.config_digest) if x)
    kept: list[Vulnerability] = []
    for v in vulns:
        if v.severity not in options.severities:
            continue
        if options.ignore_unfixed and v.status.unfixed:
            continue
        rule = options.ignore.match(v) if options.ignore is not None else None
        if rule is not None:
            suppressed.append(Suppressed(v, f"ignored by {rule.where}", rule.statement))
            continue
        st = options.vex.applies(v, image_ids) if options.vex is not None else None
        if st is not None and st.status in SUPPRESSING:
            why = st.justification or st.impact
            suppressed.append(Suppressed(v, f"VEX {st.status} ({options.vex.source})", why))  # type: ignore[union-attr]
            continue
        kept.append(v)
    kept_secrets: list[Secret] = []
    for s in secrets:
        if s.severity not in options.severities:
            continue
        rule = options.ignore.match(s) if options.ignore is not None else None
        if rule is not None:
            suppressed.append(Suppressed(s, f"ignored by {rule.where}", rule.statement))
            continue
        kept_secrets.append(s)
    return ScanResult(
        artifact=artifact,
        artifact_type=artifact_type,
        inventory=inv,
        targets=tuple(_targets(inv, kept, kept_secrets, options)),
        suppressed=tuple(suppressed),
        warnings=tuple([*options.warnings, *warnings, *inv.warnings]),
        db_built_at=db.built_at if db is not None else "",
        created_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        image_config=image_config or {},
    )


def scan_image(
    name: str,
    options: ScanOptions | None = None,
    *,
    store: object | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """Scan the image ``name`` (any transport name forklift opens)."""
    from forklift.analyze.source import open_image, verified_blob
    from forklift.layers import open_layer
    from forklift.layers.tarformat import TarReader
    from forklift.sbom.analyzers import default_analyzers
    from forklift.sbom.fsview import FinalView, LayerFeeder
    from forklift.sbom.inventory import image_inventory, layer_refs

    options = options or ScanOptions()
    db, warnings = _open_db(options)
    want_secrets = "secret" in options.scanners
    with open_image(name, platform=options.platform, store=store) as (src, image):
        refs = layer_refs(image)
        view = FinalView(default_analyzers())
        found = LayerSecrets(refs) if want_secrets else None
        for i, desc in enumerate(image.layers):
            if progress is not None:
                progress(i, len(image.layers))
            feeder = LayerFeeder(view, i)
            blob = verified_blob(src, desc)
            label = f"layer {desc.digest}"
            try:
                reader = TarReader(open_layer(blob, label), label)  # type: ignore[arg-type]
                buffered: list[_Prefixed | None] = [None]

                def members(
                    reader: TarReader = reader,
                    i: int = i,
                    buffered: list[_Prefixed | None] = buffered,
                ) -> Iterator[tuple[str, EntryType, int, int, str]]:
                    for header in reader.headers():
                        path, kind, size = header[0], header[1], header[2]
                        buffered[0] = None
                        if found is not None:
                            found.entry(i, path)
                            if kind is EntryType.FILE and wanted(path, size):
                                head = reader.read(min(size, BINARY_PEEK))
                                if b"\0" in head:  # a binary: not read further for secrets
                                    buffered[0] = _Prefixed(head, reader)
                                else:
                                    data = head + reader.read(size - len(head))
                                    found.file(i, path, data)
                                    buffered[0] = _Prefixed(data, reader)
                        yield header

                def read(
                    n: int, reader: TarReader = reader, buffered: list[_Prefixed | None] = buffered
                ) -> bytes:
                    b = buffered[0]
                    return b.read(n) if b is not None else reader.read(n)

                feeder.feed(members(), read)
                reader.drain()
                blob.verify_rest()
            finally:
                close = getattr(blob._raw, "close", None)
                if close is not None:
                    close()
            if feeder.pending:  # hard links to files the first pass did not keep
                blob = verified_blob(src, desc)
                try:
                    reader = TarReader(open_layer(blob, label), label)  # type: ignore[arg-type]
                    feeder.resolve(reader.headers(), reader.read)
                    reader.drain()
                    blob.verify_rest()
                finally:
                    close = getattr(blob._raw, "close", None)
                    if close is not None:
                        close()
        inv = image_inventory(image, view, with_files=False)
        secrets = list(found.found) if found is not None else []
        if want_secrets:
            secrets.extend(scan_config(image.config, refs))
        config = _config_summary(image)
    return finish(inv, name, "container_image", options, db, secrets, warnings, config)


def _config_summary(image: object) -> dict[str, object]:
    cfg = getattr(image, "config", None)
    if cfg is None:
        return {}
    return {
        "architecture": cfg.architecture,
        "os": cfg.os,
        "diff_ids": [str(d) for d in cfg.diff_ids],
        "created": cfg.created or "",
    }


def scan_rootfs(directory: str, options: ScanOptions | None = None) -> ScanResult:
    """Scan a root filesystem directory (symlinks are not followed)."""
    from forklift.sbom.inventory import inventory_rootfs

    options = options or ScanOptions()
    if not os.path.isdir(directory):
        raise UsageError(f"--rootfs {directory}: not a directory")
    db, warnings = _open_db(options)
    inv = inventory_rootfs(directory, with_files=False)
    secrets: list[Secret] = []
    if "secret" in options.scanners:
        found = LayerSecrets(())
        root = os.path.abspath(directory)
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir
            if not rel_dir:
                dirnames[:] = [d for d in dirnames if d not in ("proc", "sys", "dev")]
            for f in filenames:
                full = os.path.join(dirpath, f)
                rel = f"{rel_dir}/{f}" if rel_dir else f
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or not wanted(rel, st.st_size):
                    continue
                try:
                    with open(full, "rb") as fh:
                        data = fh.read(st.st_size)
                except OSError:
                    continue
                found.file(-1, rel, data)
        secrets = [replace(s, fix=s.fix) for s in found.found]
    return finish(inv, os.path.abspath(directory), "filesystem", options, db, secrets, warnings)


def scan_sbom(path: Path, options: ScanOptions | None = None) -> ScanResult:
    """Scan the packages an SBOM lists (no secrets: an SBOM has no file contents)."""
    from forklift.scan.sbomread import read_sbom

    options = options or ScanOptions()
    db, warnings = _open_db(options)
    inv = read_sbom(path)
    return finish(inv, str(path), "sbom", options, db, [], warnings)
