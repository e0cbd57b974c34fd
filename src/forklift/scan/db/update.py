"""``forklift db update``: fetch or import sources, build a new database, swap it in.

Every download and every parse happens before anything is replaced: the new
database is written to a temporary file beside the old one (sources not named
in this update are copied over unchanged) and renamed into place at the end.
Any error (network, truncated file, corrupt zip, bad JSON) leaves the old
database exactly as it was. One update at a time: an exclusive lock
(``db/update.lock``) serialises them; scans read the file without locking (the
rename is atomic and an open database keeps reading the file it opened).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forklift.errors import InvalidInput, NotFound
from forklift.fsutil import FileLock
from forklift.scan.db import fetch, osv, sources
from forklift.scan.db.index import Builder, Imported, default_path, install
from forklift.scan.db.sources import SourceSpec


@dataclass(frozen=True)
class UpdateResult:
    path: Path
    imported: tuple[Imported, ...]
    kept: tuple[str, ...]


def _hash_local(path: Path) -> str:
    if path.is_dir():
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _materialise(
    spec: SourceSpec, downloads: Path, progress: Callable[[str], None] | None
) -> list[tuple[str, Path, str]]:
    """(origin, local path, sha256) for each location of ``spec``, downloading URLs."""
    out: list[tuple[str, Path, str]] = []
    for loc in spec.locations:
        if sources.is_url(loc):
            if progress is not None:
                progress(f"downloading {spec.name} from {loc}")
            got = fetch.download(loc, downloads)
            path, digest = got.path, got.sha256
        else:
            path = Path(loc).expanduser()
            if not path.exists():
                raise NotFound(f"--source {spec.name}: {loc} does not exist")
            digest = _hash_local(path)
        if spec.kind == "osv" and path.is_file():
            with open(path, "rb") as f:
                is_zip = f.read(2) == b"PK"
            if is_zip:
                osv.check_zip(path)  # every member's CRC, before anything is replaced
            elif sources.is_url(loc):
                raise InvalidInput(f"{loc}: not a zip archive (an OSV all.zip was expected)")
        out.append((loc, path, digest))
    return out


def update(
    specs: list[SourceSpec] | None = None,
    *,
    path: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> UpdateResult:
    """Import ``specs`` (default: every default source) into the database at ``path``."""
    target = path or default_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    specs = specs if specs is not None else sources.default_specs()
    with FileLock(target.parent / "update.lock").exclusive():
        local = {s.name: _materialise(s, target.parent / "downloads", progress) for s in specs}
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".vuln.", suffix=".db.tmp")
        os.close(fd)
        os.unlink(tmp_name)
        tmp = Path(tmp_name)
        builder = Builder(tmp)
        try:
            names = {s.name for s in specs}
            kept: list[str] = []
            if target.is_file():

                def keep(name: str) -> bool:
                    if name in names:
                        return False
                    kept.append(name)
                    return True

                builder.copy_sources(target, keep)
            imported = []
            for spec in specs:
                files = local[spec.name]
                if progress is not None:
                    progress(f"importing {spec.name}")
                origin = " ".join(loc for loc, _, _ in files)
                digest = ",".join(d for _, _, d in files if d)

                def advisories(files: list[tuple[str, Path, str]] = files, spec: SourceSpec = spec):  # type: ignore[no-untyped-def]
                    for _, p, _ in files:
                        yield from sources.read(spec.kind, spec.name, p)

                imported.append(
                    builder.add_source(spec.name, spec.kind, origin, digest, advisories())
                )
            builder.finish()
            install(tmp, target)
        except BaseException:
            builder.abort()
            tmp.unlink(missing_ok=True)
            raise
        for _, p, _ in (x for files in local.values() for x in files):
            if p.parent == target.parent / "downloads":
                p.unlink(missing_ok=True)
    return UpdateResult(target, tuple(imported), tuple(kept))
