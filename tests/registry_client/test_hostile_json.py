"""JSON nested 100,000 levels deep from a registry: a one-line error, never a crash.

Issue 10, item 5: such a manifest crashed the client with ``internal error:
RecursionError`` (exit 70). A hostile registry on 127.0.0.1 answers one
request of each kind the client parses with deeply nested JSON; the real CLI
must exit 1 with one ``Error:`` line, for every path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from forklift.errors import ForkliftError
from forklift.oci import Digest
from forklift.oci import mediatypes as mt
from forklift.registry.client import RegistryClient
from tests.helpers import Result, run_cli

from .fakes import DEEP_JSON, FakeServer, Reply, Seen
from .images import make_image, sha256

Make = Callable[..., RegistryClient]

JSON = {"Content-Type": "application/json"}
# An error body must fit the client's 64 KiB limit for it to be parsed at all.
DEEP_SMALL = b"[" * 30_000 + b"]" * 30_000
IMAGE = make_image([b"layer bytes"])
DEEP_DIGEST = sha256(DEEP_JSON)


def index_of(child: str) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mt.OCI_MANIFEST,
                "digest": child,
                "size": len(DEEP_JSON),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    return json.dumps(doc).encode()


def manifest_with_config(config: bytes) -> bytes:
    doc = json.loads(IMAGE.manifest)
    doc["config"] = {"mediaType": mt.OCI_CONFIG, "digest": sha256(config), "size": len(config)}
    return json.dumps(doc).encode()


CONFIG_MANIFEST = manifest_with_config(DEEP_JSON)


def respond(seen: Seen, url: str) -> Reply:
    """One repository per path the client parses; each answers deep JSON there."""
    path = seen.path
    if path == "/v2/":
        return Reply(200, JSON, b"{}")
    if path == "/token":
        return Reply(200, JSON, DEEP_JSON)
    if path.startswith("/v2/token/"):
        # a registry whose token service answers deep JSON (realm made absolute below)
        if seen.headers.get("authorization"):
            return Reply(404)
        return Reply(401, {"WWW-Authenticate": f'Bearer realm="{url}/token"'})
    if path == "/v2/deep/manifest/manifests/v1":
        return Reply(200, {"Content-Type": mt.OCI_MANIFEST}, DEEP_JSON)
    if path == "/v2/deep/untyped/manifests/v1":
        return Reply(200, {"Content-Type": "application/json"}, DEEP_JSON)
    if path == "/v2/deep/index/manifests/v1":
        return Reply(200, {"Content-Type": mt.OCI_INDEX}, index_of(DEEP_DIGEST))
    if path == f"/v2/deep/index/manifests/{DEEP_DIGEST}":
        return Reply(200, {"Content-Type": mt.OCI_MANIFEST}, DEEP_JSON)
    if path == "/v2/deep/config/manifests/v1":
        return Reply(200, {"Content-Type": mt.OCI_MANIFEST}, CONFIG_MANIFEST)
    if path == f"/v2/deep/config/blobs/{DEEP_DIGEST}":
        return Reply(200, {"Content-Type": "application/octet-stream"}, DEEP_JSON)
    for layer in IMAGE.layers:
        if path == f"/v2/deep/config/blobs/{layer.digest}":
            return Reply(200, {"Content-Type": "application/octet-stream"}, layer.data)
    if path == "/v2/deep/error/manifests/v1":
        return Reply(400, JSON, DEEP_SMALL)
    if path == "/v2/deep/tags/tags/list":
        return Reply(200, JSON, DEEP_JSON)
    if path == "/v2/_catalog":
        return Reply(200, JSON, DEEP_JSON)
    if path.startswith("/v2/deep/referrers/referrers/"):
        return Reply(200, {"Content-Type": mt.OCI_INDEX}, DEEP_JSON)
    return Reply(404, JSON, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')


@pytest.fixture(scope="module")
def hostile() -> Iterator[FakeServer]:
    url: list[str] = []
    server = FakeServer(lambda seen: respond(seen, url[0]))
    url.append(server.url)
    yield server
    server.stop()


def one_line_error(result: Result) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert "RecursionError" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("pull", "{host}/deep/manifest:v1"), "nested too deeply"),
        (("pull", "{host}/deep/untyped:v1"), "nested too deeply"),
        (("inspect", "--remote", "{host}/deep/manifest:v1"), "nested too deeply"),
        (("pull", "{host}/deep/index:v1"), "nested too deeply"),
        (("inspect", "--remote", "{host}/deep/config:v1"), "nested too deeply"),
        (("pull", "{host}/token/app:v1"), "token service for"),
        (("pull", "{host}/deep/error:v1"), "400"),
        (("tags", "{host}/deep/tags"), "invalid JSON"),
        (("catalog", "{host}"), "invalid JSON"),
    ],
    ids=[
        "manifest",
        "manifest-untyped",
        "inspect-manifest",
        "index-child",
        "inspect-config",
        "token-answer",
        "error-body",
        "tags-list",
        "catalog",
    ],
)
def test_deep_json_from_a_registry_is_a_one_line_error(
    hostile: FakeServer, args: tuple[str, ...], says: str, home: object
) -> None:
    argv = [a.format(host=hostile.host) for a in args]
    line = one_line_error(run_cli(*argv))
    assert says in line


def test_deep_referrers_answer_is_a_one_line_error(hostile: FakeServer, make_client: Make) -> None:
    client = make_client(hostile.host)
    with pytest.raises(ForkliftError) as info:
        client.referrers("deep/referrers", Digest.parse(sha256(b"subject")))
    assert "nested too deeply" in str(info.value)
    assert "\n" not in str(info.value)


def test_deep_error_body_still_names_the_status(hostile: FakeServer, make_client: Make) -> None:
    client = make_client(hostile.host)
    with pytest.raises(ForkliftError) as info:
        client.get_manifest("deep/error", "v1")
    assert "400 Bad Request" in str(info.value)


def test_a_pulled_image_with_a_deep_config_fails_in_one_line_where_it_is_read(
    hostile: FakeServer, home: object, tmp_path: object
) -> None:
    # the pull itself copies verified bytes (as skopeo does): nothing parses the config
    name = f"{hostile.host}/deep/config:v1"
    assert run_cli("pull", "-q", name).returncode == 0
    for args in (("save", "-o", f"{tmp_path}/out.tar", name), ("run", "--rm", name, "true")):
        result = run_cli(*args)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and "nested too deeply" in errors[0], result.stderr
