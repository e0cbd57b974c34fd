"""Hand-made layer tarballs for the runtime tests (built with tarfile, not forklift's writer)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.runtime.snapshots import LayerRef
from forklift.store import Store


@dataclass(frozen=True)
class Member:
    """One tar member: a dir (``data`` None, name ending in /), a file, or a symlink (``link``)."""

    name: str
    data: bytes | None = b""
    mode: int = 0o644
    link: str | None = None


def layer_tar(members: list[Member]) -> bytes:
    """An uncompressed PAX tar of ``members``, in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name.rstrip("/"))
            info.mtime = 1_700_000_000
            if m.link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = m.link
                info.mode = 0o777
                tf.addfile(info)
            elif m.name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            else:
                data = m.data or b""
                info.size = len(data)
                info.mode = m.mode
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def add_layer(store: Store, members: list[Member]) -> LayerRef:
    """Store ``members`` as a gzip layer blob; the ref carries its hand-computed diff ID."""
    tar = layer_tar(members)
    diff_id = Digest("sha256", hashlib.sha256(tar).hexdigest())
    blob = gzip.compress(tar, mtime=0)
    digest = store.put_blob(blob)
    return LayerRef(Descriptor(mt.OCI_LAYER_GZIP, digest, len(blob)), diff_id)


def ref_to_json(ref: LayerRef) -> str:
    assert ref.blob is not None
    return json.dumps({"blob": ref.blob.to_json(), "diff_id": str(ref.diff_id)})


def ref_from_json(text: str) -> LayerRef:
    value = json.loads(text)
    return LayerRef(Descriptor.from_json(value["blob"]), Digest.parse(value["diff_id"]))
