"""SLSA provenance v1 for ``forklift build --provenance``, and the post-build signing steps.

The predicate (https://slsa.dev/provenance/v1) records:

* ``buildDefinition.buildType``: forklift's Dockerfile build type;
* ``externalParameters``: the Dockerfile path, target, platform and the build
  args that are not secrets (names containing PASSWORD, SECRET, TOKEN, KEY,
  CREDENTIAL and the proxy args are left out: BuildKit also keeps proxy args out
  of its records; secrets proper never are build args, they come with ``--secret``);
* ``resolvedDependencies``: the Dockerfile (sha256 of its bytes), the build
  context (a digest over its files, see :func:`context_digest`) and every base
  image and ``COPY --from``/``--mount from`` image, by manifest digest;
* ``runDetails``: the builder id (``urn:forklift:builder:<version>``), the
  invocation id, start and finish times.

The statement is attached to the built image in the store as an OCI 1.1
referrer (a BuildKit-style in-toto layer), so ``forklift push`` carries it; with
``--sign-key`` the image is signed for each of its tags and the provenance
(and any SBOM attached to the image) become signed DSSE attestations too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forklift.errors import ForkliftError, UsageError
from forklift.oci import canonical
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.reference import Reference, parse_reference
from forklift.store.store import Store

BUILD_TYPE = "urn:forklift:buildtype:dockerfile:v1"
SLSA_V1 = "https://slsa.dev/provenance/v1"
INTOTO = "application/vnd.in-toto+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
_SECRET_NAME = re.compile(r"PASSW(OR)?D|SECRET|TOKEN|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
_PROXY = {
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
}


def _time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public_build_args(args: dict[str, str]) -> dict[str, str]:
    """Build args fit to publish: without secret-looking names and proxy settings."""
    return {k: v for k, v in sorted(args.items()) if k not in _PROXY and not _SECRET_NAME.search(k)}


def context_digest(context: str, dockerfile: str | None) -> Digest:
    """A digest of the build context as the build saw it (``.dockerignore`` applied).

    sha256 over one line per entry, in the walker's order:
    ``<path> NUL <kind> NUL <mode> NUL <sha256 of content or link target>`` + newline.
    """
    from forklift.dockerfile.context import walk_context
    from forklift.dockerfile.ignore import IgnoreMatcher, find_ignore_file

    ignore = find_ignore_file(context, dockerfile)
    matcher = IgnoreMatcher.from_file(ignore) if ignore is not None else None
    outer = hashlib.sha256()
    for path, kind, entry in walk_context(context, matcher):
        st = entry.stat(follow_symlinks=False)
        if kind == "f":
            h = hashlib.sha256()
            with open(entry.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            content = h.hexdigest()
        elif kind == "l":
            content = hashlib.sha256(os.readlink(entry.path).encode()).hexdigest()
        else:
            content = ""
        outer.update(f"{path}\0{kind}\0{st.st_mode & 0o7777:o}\0{content}\n".encode())
    return Digest.parse(f"sha256:{outer.hexdigest()}")


def provenance_predicate(
    options: Any,
    store: Store,
    *,
    started: dt.datetime,
    finished: dt.datetime,
    images: Sequence[tuple[str, Digest]] = (),
) -> dict[str, Any]:
    """The SLSA v1 predicate of a finished build (see the module doc)."""
    from forklift import __version__

    path = options.dockerfile or os.path.join(options.context, "Dockerfile")
    raw = (
        options.dockerfile_text.encode()
        if options.dockerfile_text is not None
        else Path(path).read_bytes()
    )
    deps: list[dict[str, Any]] = [
        {
            "uri": "forklift:dockerfile",
            "name": os.path.basename(path),
            "digest": {"sha256": hashlib.sha256(raw).hexdigest()},
        },
        {
            "uri": "forklift:context",
            "digest": {"sha256": context_digest(options.context, path).hex},
        },
    ]
    # the images the build used, with the digests it used (the builder's BuildResult.images)
    for name, digest in images:
        ref = parse_reference(name)
        deps.append(
            {
                "uri": f"pkg:docker/{ref.name}@{digest}",
                "name": name,
                "digest": {digest.algorithm: digest.hex},
            }
        )
    external: dict[str, Any] = {
        "dockerfile": os.path.basename(path),
        "buildArgs": public_build_args(dict(options.build_args)),
    }
    if options.target:
        external["target"] = options.target
    if options.platform is not None:
        external["platform"] = str(options.platform)
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {"compression": options.compression or "none"},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": f"urn:forklift:builder:{__version__}"},
            "metadata": {
                "invocationId": str(uuid.uuid4()),
                "startedOn": _time(started),
                "finishedOn": _time(finished),
            },
        },
    }


def attach_provenance(store: Store, image: Any, name: str, predicate: dict[str, Any]) -> Any:
    """Attach the unsigned in-toto statement to the stored image, as BuildKit lays it out."""
    from forklift.sign import dsse, layout

    subject = Descriptor(image.descriptor.media_type, image.digest, image.descriptor.size)
    statement = dsse.statement(name, image.digest, SLSA_V1, predicate)
    layer = Descriptor.of(INTOTO, statement, annotations={PREDICATE_ANNOTATION: SLSA_V1})
    built = layout.referrer_manifest(
        subject, INTOTO, (layer,), (statement,), annotations={PREDICATE_ANNOTATION: SLSA_V1}
    )
    with store.writing():
        for blob in built.blobs:
            store.put_blob(blob)
        return store.attach(image.digest, built.raw)


def _sbom_attachments(store: Store, digest: Digest) -> list[tuple[str, Any]]:
    """SBOM documents attached to the image (SPDX or CycloneDX referrers), as JSON."""
    out = []
    for att in store.referrers(digest):
        kind = (att.artifact_type or "").lower()
        if "spdx" not in kind and "cyclonedx" not in kind:
            continue
        manifest = store.get_manifest(att.digest)
        layers = getattr(manifest, "layers", ())
        if not layers:
            continue
        try:
            doc = canonical.loads(store.read_blob(layers[0].digest), f"SBOM {att.digest}")
        except ForkliftError:
            continue
        out.append(("spdxjson" if "spdx" in kind else "cyclonedx", doc))
    return out


def after_build(
    store: Store,
    options: Any,
    result: Any,
    *,
    provenance: bool,
    sign_key: Any = None,
    started: dt.datetime,
    finished: dt.datetime | None = None,
) -> list[str]:
    """``build --provenance`` / ``--sign-key``: what to record and sign once the image is built.

    Returns lines to show. Signatures name each tag of the build (``-t``), so
    ``--sign-key`` needs at least one.
    """
    from forklift.sign import dsse
    from forklift.sign.signing import attest_image, sign_image
    from forklift.sign.targets import Target
    from forklift.transports.layout import StoreSource

    if options.output.type != "image" and (provenance or sign_key is not None):
        raise UsageError(
            "--provenance and --sign-key need the image in the store (--output type=image)"
        )
    image = store.resolve(str(result.digest))
    tags: tuple[Reference, ...] = tuple(result.tags)
    if sign_key is not None and not tags:
        raise UsageError("--sign-key signs the image for its names: give it one with -t NAME")
    lines = []
    predicate = None
    name = tags[0].name if tags else str(image.digest)
    if provenance:
        predicate = provenance_predicate(
            options,
            store,
            started=started,
            finished=finished or dt.datetime.now(dt.UTC),
            images=result.images,
        )
        att = attach_provenance(store, image, name, predicate)
        lines.append(f"Recorded SLSA provenance ({att.digest})")
    if sign_key is None:
        return lines
    desc = Descriptor(image.descriptor.media_type, image.digest, image.descriptor.size)
    for tag in tags:
        with StoreSource(store, str(image.digest)) as src:
            target = Target(src, image.digest, desc, tag, "store", store)
            sign_image(target, sign_key)
        lines.append(f"Signed {tag.familiar()} ({image.digest})")
    with StoreSource(store, str(image.digest)) as src:
        target = Target(src, image.digest, desc, tags[0], "store", store)
        if predicate is not None:
            attest_image(target, sign_key, predicate, SLSA_V1)
            lines.append("Signed the provenance attestation")
        for kind, doc in _sbom_attachments(store, image.digest):
            attest_image(target, sign_key, doc, dsse.predicate_type(kind))
            lines.append(f"Signed the SBOM attestation ({kind})")
    return lines
