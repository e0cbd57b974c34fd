"""Unchanged rebuilds answered from a record, without planning the build again.

A rebuild whose inputs are all as they were when an earlier build of the same
Dockerfile, context and options finished gives the same image, every layer step
CACHED. Finding that out the long way costs a small build most of its time in
start-up: the Dockerfile front end and the builder are most of what ``forklift
build`` imports (Python 3.11 compiles the methods of about a hundred dataclasses
on import). So after a build the CLI records what the build depended on
(:func:`save`), and the next ``forklift build`` checks the record first
(:func:`replay`) and loads the builder only when something differs.

The record holds:

* a key over the Dockerfile's content and every option that shapes the result
  (:func:`replay_key`);
* the lstat of every context path the build looked at: each file and symlink
  COPY, ADD or ``RUN --mount`` selected, every directory it listed (adding,
  removing or renaming an entry changes a directory's mtime and ctime), the
  ignore-file candidates; a path's ctime cannot be set back, so content changed
  with its mtime restored is seen too;
* the manifest digest each image the build used (FROM, ``--from``) had;
* the build-cache entries the steps used, so after ``forklift prune --cache`` the
  steps run again, as they would without the record;
* the result (manifest, config and layer blobs, which must still be stored) and
  the step lines an all-cached build prints.

Anything that cannot be checked this way makes the build ineligible (see
:func:`eligible`): ``--pull``, ``--no-cache``, secrets, named build contexts, a
Dockerfile on standard input, a signature policy in force, outputs other than the
store, and ``ADD`` of a URL (the builder marks those). A path changed while the
build ran (ctime not older than the build's start) is not recorded, as the stat
cache does for racily clean files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import forklift
from forklift.build.cache import BuildCache
from forklift.build.explain import history_id
from forklift.build.options import BuildOptions, BuildResult, StepReport
from forklift.fsutil import atomic_write
from forklift.oci.digest import Digest

if TYPE_CHECKING:
    from forklift.build.progress import BuildProgress
    from forklift.store.store import Store

#: Bumped when the record's meaning changes; older records are then ignored.
FORMAT = 1
#: How old (ns) a path's last change must be, at the build's start, to be recorded
#: (above the kernel's timestamp granularity; the stat cache uses the same margin).
RACY_NS = 50_000_000

#: an lstat as recorded: mode, size, mtime_ns, ctime_ns, inode, device (None: absent)
Signature = list[int] | None


@dataclass(frozen=True)
class ReplayInputs:
    """What one finished build depended on and showed, collected by the builder.

    ``paths`` are absolute; ``shown`` is (progress number, label, status an all-cached
    rebuild shows: ``cached`` or ``done``); ``unsafe`` names an input no record can
    check (empty when there is none).
    """

    paths: tuple[str, ...]
    images: tuple[tuple[str, Digest], ...]
    cache_keys: tuple[str, ...]
    shown: tuple[tuple[int, str, str], ...]
    manifest_media_type: str
    manifest_size: int
    layers: tuple[Digest, ...]
    unsafe: str = ""


def eligible(options: BuildOptions) -> bool:
    """Whether a build with ``options`` can be recorded and replayed at all."""
    return (
        options.output.type == "image"
        and options.dockerfile_text is None
        and options.dockerfile is not None
        and not options.pull
        and not options.no_cache
        and not options.no_cache_filter
        and not options.secrets
        and not options.build_contexts
        and options.image_policy is None
        and options.client_options is None
    )


def replay_key(options: BuildOptions, dockerfile: bytes) -> str:
    """The key of a build: the Dockerfile's content and the options that shape the image.

    Tags are not in it (they name the result, whatever it is) and neither are
    ``jobs`` and ``runtime`` (how steps run, not what they make).
    """
    assert options.dockerfile is not None
    fields: dict[str, Any] = {
        "format": FORMAT,
        "forklift": forklift.__version__,
        "machine": os.uname().machine,
        "context": os.path.realpath(options.context),
        "dockerfile": os.path.realpath(options.dockerfile),
        "dockerfile_sha256": hashlib.sha256(dockerfile).hexdigest(),
        "target": options.target,
        "build_args": sorted(options.build_args.items()),
        "labels": sorted(options.labels.items()),
        "platform": str(options.platform) if options.platform is not None else None,
        "network": options.network,
        "compression": options.compression,
        "source_date_epoch": options.source_date_epoch,
        "rewrite_timestamp": options.rewrite_timestamp,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def record_path(store: Store, options: BuildOptions) -> Path:
    """Where the record of this build (context, Dockerfile, target) lives: one per build."""
    assert options.dockerfile is not None
    name = history_id(options.context, options.dockerfile, options.target)
    return Path(store.home) / "cache" / "noop" / f"{name}.json"


def signature(path: str) -> Signature:
    """The lstat of ``path`` as a record keeps it (None when nothing is there).

    Any other failure (permission denied, I/O error) raises :class:`OSError`.
    """
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def save(
    store: Store,
    options: BuildOptions,
    inputs: ReplayInputs,
    result: BuildResult,
    started_ns: int,
) -> bool:
    """Record a finished build for :func:`replay`; False when it cannot be replayed.

    ``started_ns`` is when the build started (``time.time_ns()``): a path changed
    since then (or within :data:`RACY_NS` before) may have been read before its
    change, so such a build is not recorded.
    """
    if not eligible(options) or inputs.unsafe:
        _forget(store, options)
        return False
    assert options.dockerfile is not None
    try:
        with open(options.dockerfile, "rb") as f:
            dockerfile = f.read()
    except OSError:
        return False
    paths = {os.path.realpath(options.dockerfile): None, **dict.fromkeys(inputs.paths)}
    recorded: list[tuple[str, Signature]] = []
    for path in paths:
        try:
            sig = signature(path)
        except OSError:  # a path that cannot be looked at cannot be checked later
            _forget(store, options)
            return False
        if sig is not None and max(sig[2], sig[3]) >= started_ns - RACY_NS:
            _forget(store, options)  # changed while the build ran: maybe after its read
            return False
        recorded.append((path, sig))
    record = {
        "key": replay_key(options, dockerfile),
        "manifest": {
            "mediaType": inputs.manifest_media_type,
            "digest": str(result.digest),
            "size": inputs.manifest_size,
        },
        "config": str(result.image_id),
        "layers": [str(d) for d in inputs.layers],
        "images": [[name, str(digest)] for name, digest in inputs.images],
        "cache": sorted(set(inputs.cache_keys)),
        "paths": recorded,
        "shown": [[label, status] for _, label, status in sorted(inputs.shown)],
        "steps": [[s.stage, s.instruction, s.line] for s in result.steps],
        "warnings": list(result.warnings),
    }
    data = json.dumps(record, sort_keys=True).encode()
    target = record_path(store, options)
    with contextlib.suppress(OSError):
        if target.read_bytes() == data:
            return True  # a rebuild that changed nothing writes nothing
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data)
    return True


def replay(options: BuildOptions, store: Store, progress: BuildProgress) -> BuildResult | None:
    """The result of the recorded build if every input is unchanged, shown as a rebuild
    shows it and tagged with ``options.tags``; None when the build must really run."""
    if not eligible(options):
        return None
    assert options.dockerfile is not None
    try:
        with open(options.dockerfile, "rb") as f:
            dockerfile = f.read()
        record = json.loads(record_path(store, options).read_bytes())
    except (OSError, ValueError):
        return None
    try:
        if record.get("key") != replay_key(options, dockerfile):
            return None
        for path, sig in record["paths"]:
            if signature(str(path)) != sig:
                return None
        manifest = record["manifest"]
        digest = Digest.parse(manifest["digest"])
        blobs = [digest, Digest.parse(record["config"])]
        blobs.extend(Digest.parse(d) for d in record["layers"])
        images = [(str(name), Digest.parse(d)) for name, d in record["images"]]
        shown = [(str(label), str(status)) for label, status in record["shown"]]
        steps = tuple(StepReport(str(s), str(i), int(n), True) for s, i, n in record["steps"])
        warnings = tuple(str(w) for w in record["warnings"])
        cache_keys = [str(k) for k in record["cache"]]
    except (KeyError, TypeError, ValueError, OSError):
        # a record from another version, damaged, or a path that cannot be looked at now:
        # build for real (which reports what is wrong, if anything is)
        return None
    with store.writing():
        if not _store_has(store, blobs, images, cache_keys):
            return None
        for label, status in shown:
            number = progress.start(label)
            if status == "cached":
                progress.cached(number)
            else:
                progress.done(number)
        for text in warnings:
            progress.warn(text)
        from forklift.oci.descriptor import Descriptor

        desc = Descriptor(str(manifest["mediaType"]), digest, int(manifest["size"]))
        store.add_image(desc, options.tags)
    return BuildResult(
        digest,
        Digest.parse(record["config"]),
        options.tags,
        steps,
        warnings,
        "",
        tuple(images),
    )


def _store_has(
    store: Store,
    blobs: Sequence[Digest],
    images: Iterable[tuple[str, Digest]],
    cache_keys: Iterable[str],
) -> bool:
    """Whether the store still holds the result, the same images under the same names,
    and the cache entries of the recorded build."""
    if not all(store.has_blob(d) for d in blobs):
        return False
    for name, digest in images:
        if store.manifest_digest(name) != digest:
            return False
    cache = BuildCache(store)
    return all(cache.has(key) for key in cache_keys)


def _forget(store: Store, options: BuildOptions) -> None:
    """Remove the record of this build (its last run could not be recorded)."""
    if options.dockerfile is None:
        return
    with contextlib.suppress(OSError):
        record_path(store, options).unlink()
