"""The registry ASGI application: routing, the Distribution Spec endpoints, auth, logs, metrics.

``RegistryApp(config)`` is a plain ASGI callable; any ASGI server can run it
(``forklift serve`` uses granian, see :mod:`.runner`). Storage and metadata
come in through the :class:`~.storage.StorageDriver` and
:class:`~.metadata.MetadataStore` interfaces, so other backends plug in
without touching the routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
import traceback
import uuid
from typing import IO, Any
from urllib.parse import quote

from forklift.errors import ForkliftError, InvalidInput
from forklift.oci import Digest, ImageIndex, ImageManifest, parse_manifest
from forklift.oci import mediatypes as mt
from forklift.registry.server import apierrors, names
from forklift.registry.server.apierrors import APIError
from forklift.registry.server.auth import Auth, Identity, Need
from forklift.registry.server.config import ServerConfig
from forklift.registry.server.gc import GCReport, collect
from forklift.registry.server.http import (
    ClientGone,
    FileBody,
    Request,
    Response,
    Scope,
    json_response,
    send_response,
)
from forklift.registry.server.metadata import MetadataStore, NewManifest, SQLiteMetadata
from forklift.registry.server.metrics import Metrics
from forklift.registry.server.storage import FilesystemStorage, StorageDriver
from forklift.registry.server.uploads import UploadEngine

API_VERSION = ("docker-distribution-api-version", "registry/2.0")
# The smallest PATCH chunk we would like (clients may still send less).
CHUNK_MIN = 1 << 20
MAX_PAGE = 10000

_ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?:"
    r"(?P<uploads>blobs/uploads/(?P<uuid>[^/]*))"
    r"|blobs/(?P<digest>[^/]+)"
    r"|manifests/(?P<reference>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|referrers/(?P<subject>[^/]+)"
    r")$"
)
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(";", 1)[0].strip() or None


class RegistryApp:
    """The registry as an ASGI application."""

    def __init__(
        self,
        config: ServerConfig,
        storage: StorageDriver | None = None,
        meta: MetadataStore | None = None,
        access_log: IO[str] | None = None,
    ) -> None:
        self.config = config
        root = config.root
        root.mkdir(parents=True, exist_ok=True)
        self.storage: StorageDriver = storage or FilesystemStorage(root)
        self.meta: MetadataStore = meta or SQLiteMetadata(root / "metadata.db")
        self.auth = Auth(config.auth, root)
        self.uploads = UploadEngine(self.storage, self.meta)
        self.metrics = Metrics()
        self._access_log = access_log
        self._touched: dict[str, float] = {}
        self._gc_task: asyncio.Task[None] | None = None
        self._gc_lock = asyncio.Lock()
        self._stats_cache: tuple[float, dict[str, int]] = (0.0, {})
        self.last_gc: GCReport | None = None
        self.signing: Any = None
        if config.signature_policy is not None:
            from forklift.registry.server.signing import SignaturePolicy

            self.signing = SignaturePolicy(config.signature_policy, root)

    # -- ASGI entry ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.start_background()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.stop_background()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start_background(self) -> None:
        """Start the periodic garbage collector (if an interval is configured)."""
        if self.config.gc.interval > 0 and self._gc_task is None:
            self._gc_task = asyncio.get_running_loop().create_task(self._gc_loop())

    async def stop_background(self) -> None:
        """Stop background work (called on shutdown)."""
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
            self._gc_task = None

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.gc.interval)
            try:
                await self.run_gc(dry_run=False)
            except Exception:
                traceback.print_exc(file=sys.stderr)

    async def run_gc(self, dry_run: bool) -> GCReport:
        """One garbage collection, in a worker thread."""
        gc = self.config.gc
        async with self._gc_lock:
            report = await asyncio.to_thread(
                collect,
                self.storage,
                self.meta,
                grace=gc.grace,
                upload_ttl=gc.upload_ttl,
                untagged=gc.untagged,
                dry_run=dry_run,
            )
        if not dry_run:
            for upload_id in report.uploads:
                self.uploads.forget(upload_id)
            self.metrics.gc_runs += 1
            self.metrics.gc_removed["blob"] += len(report.blobs) + len(report.orphan_files)
            self.metrics.gc_removed["manifest"] += len(report.manifests)
            self.metrics.gc_removed["upload"] += len(report.uploads)
        self.last_gc = report
        return report

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        req = Request(scope, receive)
        identity: Identity | None = None
        self.metrics.in_flight += 1
        try:
            try:
                req.route, resp, identity = await self._dispatch(req)
            except APIError as exc:
                resp = json_response(exc.status, exc.body(), exc.headers)
                resp.head = req.method == "HEAD"
            except ClientGone:
                return
            except ForkliftError as exc:
                err = APIError("UNKNOWN", 500, f"server error: {exc}")
                resp = json_response(500, err.body())
            except Exception:
                traceback.print_exc(file=sys.stderr)
                err = APIError("UNKNOWN", 500, "internal server error")
                resp = json_response(500, err.body())
            resp.headers.append(API_VERSION)
            try:
                sent = await send_response(scope, send, resp)
            except (OSError, RuntimeError):
                sent = 0
        finally:
            self.metrics.in_flight -= 1
        elapsed = time.perf_counter() - start
        self.metrics.observe(req.method, req.route, resp.status, elapsed, req.received, sent)
        if self._access_log is not None:
            self._log(req, req.route, resp.status, elapsed, sent, identity)

    def _log(
        self,
        req: Request,
        route: str,
        status: int,
        elapsed: float,
        sent: int,
        identity: Identity | None,
    ) -> None:
        client = req.scope.get("client") or ("", 0)
        entry = {
            "ts": round(time.time(), 3),
            "remote": client[0],
            "method": req.method,
            "path": req.path,
            "route": route,
            "status": status,
            "bytes_in": req.received,
            "bytes_out": sent,
            "ms": round(elapsed * 1000, 3),
            "user": identity.account if identity else None,
            "agent": req.headers.get("user-agent", ""),
        }
        assert self._access_log is not None
        self._access_log.write(json.dumps(entry, separators=(",", ":")) + "\n")

    # -- routing ---------------------------------------------------------------

    async def _dispatch(self, req: Request) -> tuple[str, Response, Identity | None]:
        path, method = req.path, req.method
        if path.startswith("/v2/") and len(path) > 4:
            if path == "/v2/_catalog":
                req.route = "catalog"
                ident = self._check(req, [Need("registry", "catalog", "*")])
                return "catalog", self.catalog(req, ident), ident
            m = _ROUTE.match(path)
            if m is None:
                raise APIError("NOT_FOUND", 404, "no such endpoint")
            if m.group("reference") is not None:
                req.route = "manifest"
            elif m.group("digest") is not None:
                req.route = "blob"
            elif m.group("uploads") is not None:
                req.route = "upload"
            else:
                req.route = "tags" if m.group("tags") is not None else "referrers"
            name = names.check_repository(m.group("name"))
            if m.group("reference") is not None:
                return await self._manifests(req, name, m.group("reference"))
            if m.group("digest") is not None:
                return await self._blobs(req, name, m.group("digest"))
            if m.group("uploads") is not None:
                return await self._uploads(req, name, m.group("uuid"))
            if m.group("tags") is not None:
                ident = self._check(req, [Need("repository", name, "pull")], method, ("GET",))
                return "tags", self.tags(req, name), ident
            ident = self._check(req, [Need("repository", name, "pull")], method, ("GET",))
            return "referrers", self.referrers(req, name, m.group("subject")), ident
        if path in ("/v2/", "/v2"):
            req.route = "base"
            ident = self._check(req, [], method, ("GET", "HEAD"))
            return "base", json_response(200, b"{}"), ident
        if path == "/healthz":
            self.meta.repo_exists("")  # the database answers
            return "healthz", json_response(200, b'{"status":"ok"}'), None
        if path == "/metrics":
            body = self.metrics.render(self._stats)
            return (
                "metrics",
                Response(200, [("content-type", "text/plain; version=0.0.4")], body),
                None,
            )
        if path == "/token" and self.auth.mode == "token":
            return "token", await self.token(req), None
        raise APIError("NOT_FOUND", 404, "no such endpoint")

    def _stats(self) -> dict[str, int]:
        now = time.monotonic()
        if now - self._stats_cache[0] > 5:
            self._stats_cache = (now, self.meta.stats())
        return self._stats_cache[1]

    def _check(
        self,
        req: Request,
        needs: list[Need],
        method: str | None = None,
        allowed: tuple[str, ...] | None = None,
    ) -> Identity:
        if allowed is not None and method not in allowed:
            raise apierrors.unsupported(f"method {method} not allowed here")
        return self.auth.check(req.headers.get("authorization"), needs, req.base_url)

    # -- manifests -------------------------------------------------------------

    async def _manifests(
        self, req: Request, name: str, reference: str
    ) -> tuple[str, Response, Identity | None]:
        method = req.method
        by_digest = ":" in reference
        if by_digest:
            reference = str(names.parse_digest(reference))
        elif not names.is_tag(reference):
            raise apierrors.manifest_invalid(f"invalid tag {reference[:140]!r}")
        if method in ("GET", "HEAD"):
            ident = self._check(req, [Need("repository", name, "pull")])
            if self.signing is not None and not by_digest:
                await asyncio.to_thread(
                    self.signing.check_pull, self.meta, self.storage, name, reference
                )
            return "manifest", self.get_manifest(req, name, reference, by_digest), ident
        if method == "PUT":
            ident = self._check(
                req, [Need("repository", name, "pull"), Need("repository", name, "push")]
            )
            return "manifest", await self.put_manifest(req, name, reference, by_digest), ident
        if method == "DELETE":
            ident = self._check(req, [Need("repository", name, "delete")])
            return "manifest", self.delete_manifest(name, reference, by_digest), ident
        raise apierrors.unsupported(f"method {method} not allowed on manifests")

    def get_manifest(self, req: Request, name: str, reference: str, by_digest: bool) -> Response:
        """GET/HEAD a manifest by tag or digest: the stored bytes, exactly."""
        rec = self.meta.get_manifest(name, reference, by_digest)
        if rec is None:
            raise apierrors.manifest_unknown(reference)
        accept = req.headers.get("accept")
        if accept:
            wanted = {_media_type(a) for a in accept.split(",")}
            if (
                wanted & mt.MANIFESTS
                and rec.media_type not in wanted
                and not (wanted & {"*/*", "application/*"})
            ):
                # a client that lists manifest types but not this one cannot read it
                raise APIError(
                    "MANIFEST_UNKNOWN",
                    404,
                    f"manifest is {rec.media_type}, which the Accept header does not allow",
                    {"reference": reference},
                )
        headers = [
            ("content-type", rec.media_type),
            ("docker-content-digest", rec.digest),
            ("etag", f'"{rec.digest}"'),
        ]
        return Response(200, headers, rec.body, head=req.method == "HEAD")

    async def put_manifest(
        self, req: Request, name: str, reference: str, by_digest: bool
    ) -> Response:
        """PUT a manifest: validate, check references, store, tag."""
        limit = self.config.max_manifest_size
        declared = req.content_length
        if declared is not None and declared > limit:
            raise apierrors.size_invalid(f"manifest is larger than the {limit}-byte limit", 413)
        body = await req.read(limit)
        if body is None:
            raise apierrors.size_invalid(f"manifest is larger than the {limit}-byte limit", 413)
        content_type = _media_type(req.headers.get("content-type"))
        try:
            manifest = parse_manifest(body, content_type)
        except InvalidInput as exc:
            raise apierrors.manifest_invalid(exc.message) from None
        if by_digest:
            want = Digest.parse(reference)
            got = Digest.of(body, want.algorithm)
            if got != want:
                raise apierrors.digest_invalid(
                    f"manifest digest {got} does not match the reference {want}"
                )
            digest = str(want)
        else:
            digest = str(Digest.of(body))
        blobs: list[tuple[str, int]] = []
        children: list[str] = []
        artifact_type = manifest.artifact_type
        if isinstance(manifest, ImageManifest):
            blobs.append((str(manifest.config.digest), manifest.config.size))
            for layer in manifest.layers:
                if layer.urls and layer.media_type in mt.NONDISTRIBUTABLE:
                    continue  # foreign layers live elsewhere by design
                blobs.append((str(layer.digest), layer.size))
            artifact_type = artifact_type or manifest.config.media_type
        else:
            assert isinstance(manifest, ImageIndex)
            children = [str(m.digest) for m in manifest.manifests]
        new = NewManifest(
            digest=digest,
            media_type=manifest.media_type,
            body=body,
            blobs=tuple(dict.fromkeys(blobs)),
            children=tuple(dict.fromkeys(children)),
            subject=str(manifest.subject.digest) if manifest.subject else None,
            artifact_type=artifact_type,
            annotations=dict(manifest.annotations),
        )
        if self.signing is not None and not by_digest:
            await asyncio.to_thread(
                self.signing.check_push,
                self.meta,
                self.storage,
                name,
                reference,
                Digest.parse(digest),
                manifest,
                len(body),
            )
        result = self.meta.put_manifest(name, new, None if by_digest else reference)
        if result.missing_blobs or result.missing_manifests:
            raise apierrors.manifest_blob_unknown(
                [*result.missing_blobs, *result.missing_manifests]
            )
        if result.wrong_size:
            raise apierrors.manifest_invalid(
                f"descriptor size does not match the stored blob {result.wrong_size[0]}"
            )
        headers = [
            ("location", f"/v2/{name}/manifests/{digest}"),
            ("docker-content-digest", digest),
        ]
        if new.subject:
            headers.append(("oci-subject", new.subject))
        return Response(201, headers)

    def delete_manifest(self, name: str, reference: str, by_digest: bool) -> Response:
        """DELETE a tag (by tag) or a manifest and its tags (by digest)."""
        if not self.config.delete_enabled:
            raise apierrors.unsupported("deletion is disabled on this registry")
        ok = (
            self.meta.delete_manifest(name, reference)
            if by_digest
            else self.meta.delete_tag(name, reference)
        )
        if not ok:
            raise apierrors.manifest_unknown(reference)
        return Response(202)

    # -- blobs -----------------------------------------------------------------

    async def _blobs(
        self, req: Request, name: str, ref: str
    ) -> tuple[str, Response, Identity | None]:
        method = req.method
        digest = names.parse_digest(ref)
        if method in ("GET", "HEAD"):
            ident = self._check(req, [Need("repository", name, "pull")])
            return "blob", self.get_blob(req, name, digest), ident
        if method == "DELETE":
            ident = self._check(req, [Need("repository", name, "delete")])
            if not self.config.delete_enabled:
                raise apierrors.unsupported("deletion is disabled on this registry")
            if not self.meta.unlink_blob(name, str(digest)):
                raise apierrors.blob_unknown(str(digest))
            return "blob", Response(202, [("docker-content-digest", str(digest))]), ident
        raise apierrors.unsupported(f"method {method} not allowed on blobs")

    def _touch(self, digest: str) -> None:
        # Reads restart the GC grace period (a client that saw a blob with HEAD
        # will reference it in a manifest soon); throttled to spare the DB.
        now = time.monotonic()
        last = self._touched.get(digest)
        if last is None or now - last > min(60.0, self.config.gc.grace / 4):
            if len(self._touched) > 100_000:
                self._touched.clear()
            self._touched[digest] = now
            self.meta.touch_blob(digest)

    def get_blob(self, req: Request, name: str, digest: Digest) -> Response:
        """GET/HEAD a blob, honouring a single byte Range."""
        key = str(digest)
        size = self.meta.repo_blob_size(name, key)
        if size is None:
            raise apierrors.blob_unknown(key)
        self._touch(key)
        head = req.method == "HEAD"
        headers = [
            ("content-type", "application/octet-stream"),
            ("docker-content-digest", key),
            ("accept-ranges", "bytes"),
            ("etag", f'"{key}"'),
            ("cache-control", "max-age=31536000"),
        ]
        path = self.storage.local_path(digest)
        if path is None:
            raise APIError("UNSUPPORTED", 500, "storage driver cannot serve files")
        offset, length, status = 0, size, 200
        rng = req.headers.get("range")
        if rng:
            m = _RANGE.match(rng.strip())
            if m and (m.group(1) or m.group(2)):
                first, last = m.group(1), m.group(2)
                if first:
                    offset = int(first)
                    end = min(int(last), size - 1) if last else size - 1
                else:  # suffix range: the last N bytes
                    n = int(last)
                    offset = max(0, size - n)
                    end = size - 1
                if offset >= size or end < offset:
                    raise APIError(
                        "BLOB_UNKNOWN" if size == 0 else "RANGE_INVALID",
                        416,
                        f"range {rng} not satisfiable for a blob of {size} bytes",
                        headers=[("content-range", f"bytes */{size}")],
                    )
                length = end - offset + 1
                status = 206
                headers.append(("content-range", f"bytes {offset}-{end}/{size}"))
        whole = status == 200
        return Response(status, headers, file=FileBody(path, offset, length, whole), head=head)

    # -- uploads ---------------------------------------------------------------

    async def _uploads(
        self, req: Request, name: str, upload_id: str
    ) -> tuple[str, Response, Identity | None]:
        method = req.method
        needs = [Need("repository", name, "pull"), Need("repository", name, "push")]
        ident = self._check(req, needs)
        if not upload_id:
            if method != "POST":
                raise apierrors.unsupported(f"method {method} not allowed here")
            return "upload", await self.start_upload(req, name, ident), ident
        names.check_upload_id(upload_id)
        rec = self.meta.get_upload(upload_id)
        if rec is None or rec.repo != name:
            raise apierrors.blob_upload_unknown(upload_id)
        if method == "PATCH":
            return "upload", await self.patch_upload(req, name, upload_id), ident
        if method == "PUT":
            return "upload", await self.put_upload(req, name, upload_id), ident
        if method == "GET":
            return "upload", self.upload_status(name, upload_id), ident
        if method == "DELETE":
            async with self.uploads.lock(upload_id):
                await self.uploads.cancel(upload_id)
            return "upload", Response(204), ident
        raise apierrors.unsupported(f"method {method} not allowed on uploads")

    def _upload_headers(self, name: str, upload_id: str, size: int) -> list[tuple[str, str]]:
        return [
            ("location", f"/v2/{name}/blobs/uploads/{upload_id}"),
            ("range", f"0-{size - 1 if size > 0 else 0}"),
            ("docker-upload-uuid", upload_id),
        ]

    def _created(self, name: str, digest: Digest) -> Response:
        return Response(
            201,
            [("location", f"/v2/{name}/blobs/{digest}"), ("docker-content-digest", str(digest))],
        )

    async def start_upload(self, req: Request, name: str, ident: Identity) -> Response:
        """POST: mount, monolithic upload, or a new upload session."""
        mount = req.arg("mount")
        if mount is not None:
            try:
                digest = names.parse_digest(mount)
            except APIError:
                digest = None
            source = req.arg("from")
            if digest is not None and source is not None:
                ok_source = names.REPOSITORY.match(source) is not None and self.auth.permits(
                    ident, Need("repository", source, "pull")
                )
                if (
                    ok_source
                    and self.meta.repo_blob_size(source, str(digest)) is not None
                    and self.meta.link_blob(name, str(digest))
                ):
                    return self._created(name, digest)
            elif (
                digest is not None
                and self.auth.mode == "none"
                # automatic content discovery: only when nothing can leak across repositories
                and self.meta.link_blob(name, str(digest))
            ):
                return self._created(name, digest)
        upload_id = str(uuid.uuid4())
        self.meta.create_upload(upload_id, name)
        await asyncio.to_thread(self.storage.create_upload, upload_id)
        want = req.arg("digest")
        if want is not None and mount is None:
            digest = names.parse_digest(want)
            async with self.uploads.lock(upload_id):
                try:
                    n = await self.uploads.append(upload_id, 0, req.stream(), req.content_length)
                    await self.uploads.finish(name, upload_id, digest, n)
                except BaseException:
                    await self.uploads.cancel(upload_id)
                    raise
            return self._created(name, digest)
        headers = self._upload_headers(name, upload_id, 0)
        headers.append(("oci-chunk-min-length", str(CHUNK_MIN)))
        return Response(202, headers)

    def _chunk_range(
        self, req: Request, name: str, upload_id: str, size: int
    ) -> tuple[int | None, bool]:
        """The announced chunk length from Content-Range/Length; 416 if out of order."""
        cr = req.headers.get("content-range")
        if cr:
            m = _CONTENT_RANGE.match(cr.strip())
            if m is None:
                raise apierrors.APIError(
                    "BLOB_UPLOAD_INVALID", 416, f"invalid Content-Range {cr[:64]!r}"
                )
            first, last = int(m.group(1)), int(m.group(2))
            if first != size or last < first:
                raise apierrors.range_invalid(size, f"/v2/{name}/blobs/uploads/{upload_id}")
            length = last - first + 1
            declared = req.content_length
            if declared is not None and declared != length:
                raise apierrors.blob_upload_invalid(
                    f"Content-Length {declared} does not match Content-Range {cr}"
                )
            return length, True
        return req.content_length, False

    async def patch_upload(self, req: Request, name: str, upload_id: str) -> Response:
        """PATCH: append a chunk (or stream the whole blob)."""
        async with self.uploads.lock(upload_id):
            size = await asyncio.to_thread(self.storage.upload_size, upload_id)
            if size is None:
                raise apierrors.blob_upload_unknown(upload_id)
            limit, _ = self._chunk_range(req, name, upload_id, size)
            n = await self.uploads.append(upload_id, size, req.stream(), limit)
            self.meta.touch_upload(upload_id)
            return Response(202, self._upload_headers(name, upload_id, size + n))

    async def put_upload(self, req: Request, name: str, upload_id: str) -> Response:
        """PUT ?digest=: optional last chunk, then verify and commit."""
        want = req.arg("digest")
        if want is None:
            raise apierrors.digest_invalid("the digest query parameter is required")
        digest = names.parse_digest(want)
        async with self.uploads.lock(upload_id):
            size = await asyncio.to_thread(self.storage.upload_size, upload_id)
            if size is None:
                raise apierrors.blob_upload_unknown(upload_id)
            limit, _ = self._chunk_range(req, name, upload_id, size)
            if limit != 0:
                size += await self.uploads.append(upload_id, size, req.stream(), limit)
            await self.uploads.finish(name, upload_id, digest, size)
        return self._created(name, digest)

    def upload_status(self, name: str, upload_id: str) -> Response:
        """GET: how much of the upload the registry has."""
        size = self.storage.upload_size(upload_id)
        if size is None:
            raise apierrors.blob_upload_unknown(upload_id)
        return Response(204, self._upload_headers(name, upload_id, size))

    # -- listings --------------------------------------------------------------

    def _page(self, req: Request) -> tuple[int | None, str | None]:
        raw_n = req.arg("n")
        n: int | None = None
        if raw_n is not None and raw_n != "":
            if not raw_n.isdigit():
                raise APIError(
                    "PAGINATION_NUMBER_INVALID", 400, f"invalid page size n={raw_n[:20]!r}"
                )
            n = min(int(raw_n), MAX_PAGE)
        return n, req.arg("last")

    def _link(self, path: str, n: int, last: str) -> tuple[str, str]:
        return ("link", f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"')

    def tags(self, req: Request, name: str) -> Response:
        """GET tags/list with n/last pagination and a Link header."""
        n, last = self._page(req)
        if not self.meta.repo_exists(name):
            raise apierrors.name_unknown(name)
        headers: list[tuple[str, str]] = []
        if n == 0:
            tags: list[str] = []
        else:
            fetch = None if n is None else n + 1
            tags = self.meta.list_tags(name, fetch, last)
            if n is not None and len(tags) > n:
                tags = tags[:n]
                headers.append(self._link(f"/v2/{name}/tags/list", n, tags[-1]))
        body = json.dumps({"name": name, "tags": tags}).encode()
        return json_response(200, body, headers)

    def catalog(self, req: Request, ident: Identity) -> Response:
        """GET /v2/_catalog: repositories the caller may pull, paginated."""
        n, last = self._page(req)
        headers: list[tuple[str, str]] = []
        repos: list[str] = []
        if n != 0:
            want = n if n is not None else MAX_PAGE
            cursor = last
            while len(repos) <= want:
                batch = self.meta.list_repos(want + 1, cursor)
                if not batch:
                    break
                cursor = batch[-1]
                repos += [
                    r for r in batch if self.auth.permits(ident, Need("repository", r, "pull"))
                ]
                if len(batch) <= want:
                    break
            if n is not None and len(repos) > n:
                repos = repos[:n]
                headers.append(self._link("/v2/_catalog", n, repos[-1]))
        return json_response(200, json.dumps({"repositories": repos}).encode(), headers)

    def referrers(self, req: Request, name: str, subject: str) -> Response:
        """GET referrers/<digest>: an index of the manifests whose subject it is."""
        digest = names.parse_digest(subject)
        artifact_type = req.arg("artifactType")
        found = self.meta.referrers(name, str(digest), artifact_type or None)
        manifests = []
        for r in found:
            entry: dict[str, Any] = {"mediaType": r.media_type, "digest": r.digest, "size": r.size}
            if r.artifact_type:
                entry["artifactType"] = r.artifact_type
            if r.annotations:
                entry["annotations"] = r.annotations
            manifests.append(entry)
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
        ).encode()
        headers = [("content-type", mt.OCI_INDEX)]
        if artifact_type:
            headers.append(("oci-filters-applied", "artifactType"))
        return Response(200, headers, body)

    # -- token endpoint --------------------------------------------------------

    async def token(self, req: Request) -> Response:
        """The built-in Docker token endpoint (GET, and the OAuth2 POST form)."""
        auth_header = req.headers.get("authorization")
        if req.method == "GET":
            service = req.arg("service")
            scopes = [s for v in req.query.get("scope", []) for s in v.split(" ") if s]
        elif req.method == "POST":
            from urllib.parse import parse_qs

            body = await req.read(65536) or b""
            form = parse_qs(body.decode("latin-1"), keep_blank_values=True)
            service = form["service"][0] if form.get("service") else None
            scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
            if (form.get("grant_type") or [""])[0] == "password":
                import base64

                user = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
                auth_header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        else:
            raise apierrors.unsupported(f"method {req.method} not allowed on /token")
        doc = self.auth.issue_token(auth_header, service, scopes)
        return json_response(200, json.dumps(doc).encode())
