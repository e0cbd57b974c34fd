"""The registry ASGI application: routing, the Distribution Spec endpoints, auth, logs, metrics.

``RegistryApp(config)`` is a plain ASGI callable; any ASGI server can run it
(``forklift serve`` uses granian, see :mod:`.runner`). Storage and metadata
come in through the :class:`~.storage.StorageDriver` and
:class:`~.metadata.MetadataStore` interfaces, so other backends plug in
without touching the routes.

The event loop only does quick work: routing, reads of the metadata store
(indexed lookups) and sending. Whatever blocks runs elsewhere: storage calls
and metadata writes on worker threads, bcrypt on the auth pool
(:mod:`.auth`), garbage collection on its own thread with its own database
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import sys
import time
import traceback
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlencode

from forklift.errors import ForkliftError, InvalidDigest, InvalidInput
from forklift.oci import Digest, ImageIndex, ImageManifest, parse_manifest
from forklift.oci import mediatypes as mt
from forklift.oci.digest import ALGORITHMS
from forklift.registry.server import apierrors, names, ranges
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
from forklift.registry.server.storage import FilesystemStorage, LocalBlobFiles, StorageDriver
from forklift.registry.server.uploads import UploadEngine

T = TypeVar("T")

API_VERSION = ("docker-distribution-api-version", "registry/2.0")
# The smallest PATCH chunk we would like (clients may still send less).
CHUNK_MIN = 1 << 20
MAX_PAGE = 10000
# An answer given before the request body was read (401, 404, 416, 413...) is
# sent after reading and dropping up to this much of the body, so the client
# can reuse the connection; a longer body gets "Connection: close" instead.
DRAIN_LIMIT = 64 << 20
# ?tag= parameters accepted on one manifest PUT
MAX_TAG_PARAMS = 256
_READ_CHUNK = 1 << 20

_ROUTE = re.compile(
    r"/v2/(?P<name>.+?)/(?:"
    r"(?P<uploads>blobs/uploads/(?P<uuid>[^/]*))"
    r"|blobs/(?P<digest>[^/]+)"
    r"|manifests/(?P<reference>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|referrers/(?P<subject>[^/]+)"
    r")"
)
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(";", 1)[0].strip() or None


def _timestamp() -> str:
    """Now in RFC 3339, UTC, milliseconds: ``2026-12-06T20:35:31.123Z``."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _algorithm(req: Request, param: str = "digest-algorithm") -> str:
    """The digest algorithm a client asked for with ``?digest-algorithm=`` (sha256 default)."""
    algorithm = req.arg(param) or "sha256"
    if algorithm not in ALGORITHMS:
        raise apierrors.digest_invalid(
            f"unsupported digest algorithm {algorithm[:32]!r} (supported: sha256, sha512)"
        )
    return algorithm


class RegistryApp:
    """The registry as an ASGI application."""

    def __init__(
        self,
        config: ServerConfig,
        storage: StorageDriver | None = None,
        meta: MetadataStore | None = None,
        access_log: IO[str] | None = None,
    ) -> None:
        config.check()
        self.config = config
        root = config.root
        root.mkdir(parents=True, exist_ok=True)
        self.storage: StorageDriver = storage or FilesystemStorage(root)
        self.meta: MetadataStore = meta or SQLiteMetadata(root / "metadata.db")
        self._files = self.storage if isinstance(self.storage, LocalBlobFiles) else None
        self.auth = Auth(config.auth, root)
        self.uploads = UploadEngine(self.storage, self.meta)
        self.metrics = Metrics()
        self._access_log = access_log
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[Any]] = set()
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
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self.auth.close()

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.gc.interval)
            try:
                await self.run_gc(dry_run=False)
            except Exception:
                traceback.print_exc(file=sys.stderr)

    async def run_gc(self, dry_run: bool) -> GCReport:
        """One garbage collection, on a worker thread (with its own database connection)."""
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

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (storage, metadata writes) on a worker thread."""
        return await asyncio.to_thread(fn, *args)

    def _spawn(self, work: Awaitable[Any]) -> None:
        """Fire-and-forget background work, kept referenced until it finishes."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
            if not req.body_done:
                # answered before the whole body arrived: read the rest, or the
                # client's next request on this connection would start mid-body
                try:
                    drained = await req.drain(DRAIN_LIMIT)
                except ClientGone:
                    return
                if not drained:
                    resp.headers.append(("connection", "close"))
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
            "ts": _timestamp(),
            "remote": client[0],
            "method": req.method,
            "path": req.path,
            # the raw query (n/last of a listing, digest of an upload's end, mount's from)
            "query": req.scope.get("query_string", b"").decode("latin-1"),
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
        path = req.path
        if path.startswith("/v2/") and len(path) > 4:
            if path == "/v2/_catalog":
                req.route = "catalog"
                ident = await self._check(req, [Need("registry", "catalog", "*")])
                return "catalog", self.catalog(req, ident), ident
            m = _ROUTE.fullmatch(path)
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
            pull = [Need("repository", name, "pull")]
            if m.group("tags") is not None:
                ident = await self._check(req, pull, ("GET",))
                return "tags", self.tags(req, name), ident
            ident = await self._check(req, pull, ("GET",))
            return "referrers", self.referrers(req, name, m.group("subject")), ident
        if path in ("/v2/", "/v2"):
            req.route = "base"
            ident = await self._check(req, [], ("GET", "HEAD"))
            return "base", json_response(200, b"{}"), ident
        if path == "/healthz":
            req.route = "healthz"
            self.meta.repo_exists("")  # the database answers
            return "healthz", json_response(200, b'{"status":"ok"}'), None
        if path == "/metrics" and self.config.metrics.enabled:
            req.route = "metrics"
            metrics_user = await self._check_metrics(req)
            stats = await self._stats()
            body = self.metrics.render(lambda: stats)
            return (
                "metrics",
                Response(200, [("content-type", "text/plain; version=0.0.4")], body),
                metrics_user,
            )
        if path == "/token" and self.auth.mode == "token":
            req.route = "token"
            return "token", await self.token(req), None
        raise APIError("NOT_FOUND", 404, "no such endpoint")

    async def _stats(self) -> dict[str, int]:
        now = time.monotonic()
        if now - self._stats_cache[0] > 5:
            self._stats_cache = (now, await self._blocking(self.meta.stats))
        return self._stats_cache[1]

    async def _check(
        self,
        req: Request,
        needs: list[Need],
        allowed: tuple[str, ...] | None = None,
        also_ask: tuple[Need, ...] = (),
    ) -> Identity:
        if allowed is not None and req.method not in allowed:
            raise apierrors.unsupported(f"method {req.method} not allowed here")
        return await self.auth.check(
            req.headers.get("authorization"), needs, req.base_url, also_ask
        )

    async def _check_metrics(self, req: Request) -> Identity | None:
        """``/metrics`` is open unless ``metrics.auth``: then Basic credentials of a listed user."""
        mcfg = self.config.metrics
        if not mcfg.auth:
            return None
        challenge = 'Basic realm="forklift metrics"'
        header = req.headers.get("authorization") or ""
        user = await self.auth.basic_user(header) if header else None
        if user is None:
            raise apierrors.unauthorized(challenge)
        if mcfg.accounts and user not in mcfg.accounts:
            raise apierrors.denied()
        return Identity(user)

    # -- manifests -------------------------------------------------------------

    async def _manifests(
        self, req: Request, name: str, reference: str
    ) -> tuple[str, Response, Identity | None]:
        method = req.method
        by_digest = ":" in reference
        try:
            if by_digest:
                reference = str(Digest.parse(reference))
            elif not names.is_tag(reference):
                raise APIError("TAG_INVALID", 400, f"invalid tag {reference[:140]!r}")
        except (InvalidDigest, APIError) as exc:
            if method in ("GET", "HEAD", "DELETE"):
                # a reference that cannot exist is simply not there (as distribution's router)
                raise apierrors.manifest_unknown(reference[:200]) from None
            if isinstance(exc, InvalidDigest):
                raise apierrors.digest_invalid(exc.message) from None
            raise
        if method in ("GET", "HEAD"):
            ident = await self._check(req, [Need("repository", name, "pull")])
            if self.signing is not None and not by_digest:
                await asyncio.to_thread(
                    self.signing.check_pull, self.meta, self.storage, name, reference
                )
            return "manifest", self.get_manifest(req, name, reference, by_digest), ident
        if method == "PUT":
            ident = await self._check(
                req, [Need("repository", name, "pull"), Need("repository", name, "push")]
            )
            return "manifest", await self.put_manifest(req, name, reference, by_digest), ident
        if method == "DELETE":
            ident = await self._check(req, [Need("repository", name, "delete")])
            return "manifest", await self.delete_manifest(name, reference, by_digest), ident
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

    def _tag_params(self, req: Request, by_digest: bool) -> list[str]:
        """The ``?tag=`` parameters of a PUT by digest, validated."""
        tags = req.query.get("tag", []) if by_digest else []
        if len(tags) > MAX_TAG_PARAMS:
            raise APIError("TAG_INVALID", 414, f"at most {MAX_TAG_PARAMS} tags per request")
        for tag in tags:
            if not names.is_tag(tag):
                raise APIError("TAG_INVALID", 400, f"invalid tag {tag[:140]!r}")
        return list(dict.fromkeys(tags))

    async def put_manifest(
        self, req: Request, name: str, reference: str, by_digest: bool
    ) -> Response:
        """PUT a manifest: validate, check references, store, tag (also every ``?tag=``)."""
        tags = self._tag_params(req, by_digest)
        algorithm = "sha256" if by_digest else _algorithm(req)
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
            digest = str(Digest.of(body, algorithm))
            tags.insert(0, reference)
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
        if self.signing is not None:
            # every tag this PUT sets, the path's or ?tag= ones, passes the policy
            for tag in tags:
                await asyncio.to_thread(
                    self.signing.check_push,
                    self.meta,
                    self.storage,
                    name,
                    tag,
                    Digest.parse(digest),
                    manifest,
                    len(body),
                )

        def store() -> Any:
            return self.meta.put_manifest(name, new, tags, sparse=self.config.sparse_index)

        result = await self._blocking(store)
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
        if by_digest:
            headers += [("oci-tag", tag) for tag in tags]
        return Response(201, headers)

    async def delete_manifest(self, name: str, reference: str, by_digest: bool) -> Response:
        """DELETE a tag (by tag) or a manifest and its tags (by digest)."""
        if not self.config.delete_enabled:
            raise apierrors.unsupported("deletion is disabled on this registry")
        delete = self.meta.delete_manifest if by_digest else self.meta.delete_tag
        if not await self._blocking(delete, name, reference):
            raise apierrors.manifest_unknown(reference)
        return Response(202)

    # -- blobs -----------------------------------------------------------------

    async def _blobs(
        self, req: Request, name: str, ref: str
    ) -> tuple[str, Response, Identity | None]:
        method = req.method
        digest = names.parse_digest(ref)
        if method in ("GET", "HEAD"):
            ident = await self._check(req, [Need("repository", name, "pull")])
            return "blob", self.get_blob(req, name, digest), ident
        if method == "DELETE":
            ident = await self._check(req, [Need("repository", name, "delete")])
            if not self.config.delete_enabled:
                raise apierrors.unsupported("deletion is disabled on this registry")
            if not await self._blocking(self.meta.unlink_blob, name, str(digest)):
                raise apierrors.blob_unknown(str(digest))
            return "blob", Response(202, [("docker-content-digest", str(digest))]), ident
        raise apierrors.unsupported(f"method {method} not allowed on blobs")

    def _touch(self, digest: str) -> None:
        # Reads restart the GC grace period (a client that saw a blob with HEAD
        # will reference it in a manifest soon); throttled to spare the DB, and
        # written in the background.
        now = time.monotonic()
        last = self._touched.get(digest)
        if last is None or now - last > min(60.0, self.config.gc.grace / 4):
            if len(self._touched) > 100_000:
                self._touched.clear()
            self._touched[digest] = now
            self._spawn(self._blocking(self.meta.touch_blob, digest))

    def get_blob(self, req: Request, name: str, digest: Digest) -> Response:
        """GET/HEAD a blob, honouring ``Range`` (one range, or several as multipart)."""
        key = str(digest)
        size = self.meta.repo_blob_size(name, key)
        if size is None:
            raise apierrors.blob_unknown(key)
        self._touch(key)
        head = req.method == "HEAD"
        headers = [
            ("docker-content-digest", key),
            ("accept-ranges", "bytes"),
            ("etag", f'"{key}"'),
            ("cache-control", "max-age=31536000"),
        ]
        wanted: list[ranges.ByteRange] | None = None
        rng = req.headers.get("range")
        if rng:
            try:
                wanted = ranges.parse(rng, size)
            except ranges.Unsatisfiable:
                raise APIError(
                    "BLOB_UNKNOWN" if size == 0 else "RANGE_INVALID",
                    416,
                    f"range {rng[:100]} not satisfiable for a blob of {size} bytes",
                    headers=[("content-range", f"bytes */{size}")],
                ) from None
        if wanted is not None and len(wanted) > 1:
            boundary = uuid.uuid4().hex
            pieces, total = ranges.multipart(wanted, size, boundary, "application/octet-stream")
            headers.insert(0, ("content-type", f"multipart/byteranges; boundary={boundary}"))
            stream = self._multipart_stream(digest, pieces)
            return Response(206, headers, stream=stream, length=total, head=head)
        headers.insert(0, ("content-type", "application/octet-stream"))
        offset, length, status = 0, size, 200
        if wanted is not None:
            offset, length, status = wanted[0].first, wanted[0].length, 206
            headers.append(("content-range", wanted[0].content_range(size)))
        path = self._files.local_path(digest) if self._files is not None else None
        if path is not None:
            whole = status == 200
            return Response(status, headers, file=FileBody(path, offset, length, whole), head=head)
        stream = self._blob_stream(digest, offset, length)
        return Response(status, headers, stream=stream, length=length, head=head)

    async def _blob_stream(
        self, digest: Digest, offset: int, length: int
    ) -> AsyncGenerator[bytes, None]:
        """``length`` bytes of a blob from ``offset``, read on worker threads."""
        f = await self._blocking(self.storage.open_blob, digest, offset)
        try:
            left = length
            while left > 0:
                data = await self._blocking(f.read, min(_READ_CHUNK, left))
                if not data:
                    return
                left -= len(data)
                yield data
        finally:
            await self._blocking(f.close)

    async def _multipart_stream(
        self, digest: Digest, pieces: list[tuple[bytes, ranges.ByteRange | None]]
    ) -> AsyncGenerator[bytes, None]:
        for literal, part in pieces:
            yield literal
            if part is not None:
                async for data in self._blob_stream(digest, part.first, part.length):
                    yield data

    # -- uploads ---------------------------------------------------------------

    async def _uploads(
        self, req: Request, name: str, upload_id: str
    ) -> tuple[str, Response, Identity | None]:
        method = req.method
        needs = [Need("repository", name, "pull"), Need("repository", name, "push")]
        source = req.arg("from") if not upload_id and req.arg("mount") is not None else None
        # a mount also needs pull on the source: ask for it in the token challenge
        # (as distribution does), so a client that follows the challenge can mount
        also = (
            (Need("repository", source, "pull"),)
            if source and names.REPOSITORY.fullmatch(source) and source != name
            else ()
        )
        ident = await self._check(req, needs, also_ask=also)
        if not upload_id:
            if method != "POST":
                raise apierrors.unsupported(f"method {method} not allowed here")
            return "upload", await self.start_upload(req, name, ident, needs), ident
        names.check_upload_id(upload_id)
        rec = self.meta.get_upload(upload_id)
        if rec is None or rec.repo != name:
            raise apierrors.blob_upload_unknown(upload_id)
        if method == "PATCH":
            return "upload", await self.patch_upload(req, name, upload_id), ident
        if method == "PUT":
            return "upload", await self.put_upload(req, name, upload_id), ident
        if method == "GET":
            return "upload", await self.upload_status(name, upload_id), ident
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

    async def _try_mount(
        self, req: Request, name: str, ident: Identity, needs: list[Need], mount: str
    ) -> bool:
        """Cross-repository mount: from ``?from=``, or (if enabled) any readable repository.

        False means "upload it instead" (202). A caller with a token of this
        registry that lacks ``pull`` on the source although the rules would
        grant it gets a 401 asking for it, and mounts on the retry.
        """
        try:
            digest = str(Digest.parse(mount))
        except InvalidDigest:
            return False
        source = req.arg("from")
        if source is not None:
            if not names.REPOSITORY.fullmatch(source):
                return False
            if self.meta.repo_blob_size(source, digest) is None:
                return False
            if not self.auth.permits(ident, Need("repository", source, "pull")):
                self.auth.ask_for_more(
                    ident, needs, [Need("repository", source, "pull")], req.base_url
                )
                return False
        elif not self.config.auth.mounts_without_from:
            return False
        elif self.auth.mode != "none":
            # automatic content discovery: only from a repository the caller may read
            holders = self.meta.blob_repos(digest, 100)
            if not any(self.auth.permits(ident, Need("repository", r, "pull")) for r in holders):
                wanted = [Need("repository", r, "pull") for r in holders if r != name]
                self.auth.ask_for_more(ident, needs, wanted, req.base_url)
                return False
        return bool(await self._blocking(self.meta.link_blob, name, digest))

    async def start_upload(
        self, req: Request, name: str, ident: Identity, needs: list[Need]
    ) -> Response:
        """POST: mount, monolithic upload, or a new upload session."""
        mount = req.arg("mount")
        if mount is not None and await self._try_mount(req, name, ident, needs, mount):
            return self._created(name, Digest.parse(mount))
        algorithm = _algorithm(req)
        want = req.arg("digest") if mount is None else None
        digest = names.parse_digest(want) if want is not None else None
        upload_id = str(uuid.uuid4())
        await self._blocking(self.meta.create_upload, upload_id, name)
        await self._blocking(self.storage.create_upload, upload_id)
        self.uploads.set_algorithm(upload_id, digest.algorithm if digest else algorithm)
        if digest is not None:
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
            m = _CONTENT_RANGE.fullmatch(cr.strip())
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
            size = await self._blocking(self.storage.upload_size, upload_id)
            if size is None:
                raise apierrors.blob_upload_unknown(upload_id)
            limit, _ = self._chunk_range(req, name, upload_id, size)
            n = await self.uploads.append(upload_id, size, req.stream(), limit)
            await self._blocking(self.meta.touch_upload, upload_id)
            return Response(202, self._upload_headers(name, upload_id, size + n))

    async def put_upload(self, req: Request, name: str, upload_id: str) -> Response:
        """PUT ?digest=: optional last chunk, then verify and commit."""
        want = req.arg("digest")
        if want is None:
            raise apierrors.digest_invalid("the digest query parameter is required")
        digest = names.parse_digest(want)
        async with self.uploads.lock(upload_id):
            size = await self._blocking(self.storage.upload_size, upload_id)
            if size is None:
                raise apierrors.blob_upload_unknown(upload_id)
            limit, _ = self._chunk_range(req, name, upload_id, size)
            if limit != 0:
                size += await self.uploads.append(upload_id, size, req.stream(), limit)
            await self.uploads.finish(name, upload_id, digest, size)
        return self._created(name, digest)

    async def upload_status(self, name: str, upload_id: str) -> Response:
        """GET: how much of the upload the registry has."""
        size = await self._blocking(self.storage.upload_size, upload_id)
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

    def _link(self, path: str, n: int, last: str, **extra: str) -> tuple[str, str]:
        query = urlencode({**extra, "n": n, "last": last}, quote_via=quote, safe="")
        return ("link", f'<{path}?{query}>; rel="next"')

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
            if len(repos) > want:
                repos = repos[:want]
                headers.append(self._link("/v2/_catalog", want, repos[-1]))
        return json_response(200, json.dumps({"repositories": repos}).encode(), headers)

    def referrers(self, req: Request, name: str, subject: str) -> Response:
        """GET referrers/<digest>: an index of the manifests whose subject it is, paginated.

        Pages are in digest order; ``n`` (at most MAX_PAGE, the default) and
        ``last`` work as for tags, and a ``Link`` header names the next page.
        """
        digest = names.parse_digest(subject)
        artifact_type = req.arg("artifactType") or None
        n, last = self._page(req)
        want = n if n is not None else MAX_PAGE
        found = (
            self.meta.referrers(name, str(digest), artifact_type, want + 1, last) if want else []
        )
        headers = [("content-type", mt.OCI_INDEX)]
        if len(found) > want:
            found = found[:want]
            extra = {"artifactType": artifact_type} if artifact_type else {}
            headers.append(
                self._link(f"/v2/{name}/referrers/{digest}", want, found[-1].digest, **extra)
            )
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
        # bcrypt and signing: on the auth pool, never on the event loop
        doc = await self.auth.run_blocking(self.auth.issue_token, auth_header, service, scopes)
        return json_response(200, json.dumps(doc).encode())
