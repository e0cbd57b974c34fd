"""The OCI data model: strict parsing with field paths, canonical output, platforms."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forklift.errors import DigestMismatch, InvalidDigest, InvalidInput, SizeMismatch
from forklift.oci import mediatypes as mt
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, Hasher, VerifyingReader
from forklift.oci.manifest import ImageIndex, ImageManifest, parse_manifest
from forklift.oci.platform import Platform, best_match

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_digest_of_matches_hashlib() -> None:
    assert str(Digest.of(b"")) == EMPTY
    assert Digest.of(b"abc", "sha512").hex == hashlib.sha512(b"abc").hexdigest()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sha256:" + "A" * 64, "lower-case hex"),
        ("sha256:" + "a" * 63, "64"),
        ("sha512:" + "a" * 64, "128"),
        ("md5:" + "a" * 32, "unsupported"),
        ("sha256", "algorithm:hex"),
        ("", "algorithm:hex"),
        ("sha256:" + "g" * 64, "hex"),
    ],
)
def test_bad_digests_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(InvalidDigest) as info:
        Digest.parse(text)
    assert fragment in str(info.value)


@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=700))
def test_streaming_hasher_equals_one_shot(data: bytes, chunk: int) -> None:
    h = Hasher()
    for i in range(0, len(data), chunk):
        h.update(data[i : i + chunk])
    assert h.digest() == Digest.of(data)
    assert h.size == len(data)


def test_verifying_reader_rejects_wrong_bytes_at_eof() -> None:
    import io

    good = b"hello world"
    reader = VerifyingReader(io.BytesIO(good), Digest.of(good), len(good))
    assert reader.read() == good
    bad = VerifyingReader(io.BytesIO(b"hello worle"), Digest.of(good), len(good))
    with pytest.raises(DigestMismatch):
        while bad.read(4):
            pass
    short = VerifyingReader(io.BytesIO(b"hello"), Digest.of(good), len(good))
    with pytest.raises(SizeMismatch):
        while short.read(4):
            pass
    long = VerifyingReader(io.BytesIO(good + b"!"), Digest.of(good), len(good))
    with pytest.raises(SizeMismatch):
        long.read()


def _manifest_doc(**overrides: object) -> dict:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": EMPTY, "size": 0},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": EMPTY, "size": 0}],
    }
    doc.update(overrides)
    return doc


def test_manifest_keeps_its_bytes_so_the_digest_survives() -> None:
    raw = json.dumps(_manifest_doc(), indent=3).encode()
    m = parse_manifest(raw)
    assert isinstance(m, ImageManifest)
    assert m.to_bytes() == raw
    assert m.digest == Digest.of(raw)


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (
            _manifest_doc(mediaType="application/vnd.example.unknown+json"),
            "unknown manifest media type",
        ),
        (_manifest_doc(schemaVersion=1), "schema 1"),
        (_manifest_doc(schemaVersion=3), "schemaVersion"),
        (
            _manifest_doc(layers=[{"mediaType": mt.OCI_LAYER, "digest": "sha256:zz", "size": 1}]),
            "layers[0].digest",
        ),
        (
            _manifest_doc(layers=[{"mediaType": mt.OCI_LAYER, "digest": EMPTY, "size": -1}]),
            "layers[0].size",
        ),
        (_manifest_doc(layers=[{"mediaType": mt.OCI_LAYER, "digest": EMPTY}]), "layers[0].size"),
        (
            _manifest_doc(config={"mediaType": "not a type", "digest": EMPTY, "size": 0}),
            "config.mediaType",
        ),
        (_manifest_doc(layers="x"), "layers"),
        ({"schemaVersion": 2}, "neither an image manifest nor an index"),
    ],
)
def test_manifest_errors_name_the_field(doc: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_manifest(json.dumps(doc).encode())
    assert fragment in str(info.value)


def test_invalid_json_says_where() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_manifest(b'{"schemaVersion": 2,')
    assert "line 1" in str(info.value)


def test_declared_media_type_must_agree() -> None:
    raw = json.dumps(_manifest_doc()).encode()
    with pytest.raises(InvalidInput):
        parse_manifest(raw, mt.DOCKER_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert isinstance(parse_manifest(index, mt.DOCKER_MANIFEST_LIST), ImageIndex)
    with pytest.raises(InvalidInput):
        parse_manifest(index, mt.OCI_MANIFEST)


def test_descriptor_embedded_data_is_checked() -> None:
    import base64

    ok = {
        "mediaType": mt.OCI_EMPTY,
        "digest": str(Digest.of(b"{}")),
        "size": 2,
        "data": base64.b64encode(b"{}").decode(),
    }
    assert Descriptor.from_json(ok).data == b"{}"
    bad = dict(ok, data=base64.b64encode(b"[]").decode())
    with pytest.raises(InvalidInput, match="embedded data"):
        Descriptor.from_json(bad)


def test_config_round_trip_keeps_unknown_fields_and_types() -> None:
    doc = {
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "container_config": {"Hostname": "x"},
        "config": {
            "Env": ["PATH=/bin", "A=1"],
            "Cmd": [],
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"a": "b"},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000, "Retries": 3},
            "Shell": ["/bin/bash", "-c"],
            "Memory": 0,
        },
        "rootfs": {"type": "layers", "diff_ids": [EMPTY]},
        "history": [{"created_by": "x", "empty_layer": True}],
    }
    cfg = ImageConfig.from_json(doc)
    assert cfg.config.cmd == ()  # an empty Cmd is not "no Cmd"
    assert cfg.config.entrypoint is None
    assert cfg.config.env_dict() == {"PATH": "/bin", "A": "1"}
    back = cfg.to_json()
    assert back["container_config"] == {"Hostname": "x"}
    assert back["config"]["Memory"] == 0
    assert back["config"]["Healthcheck"]["Interval"] == 30000000000
    assert ImageConfig.from_json(back) == cfg
    assert cfg.to_bytes() == ImageConfig.from_json(json.loads(cfg.to_bytes())).to_bytes()


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"architecture": "amd64", "os": "linux", "config": {"Env": "PATH=/bin"}}, "config.Env"),
        ({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["a", 1]}}, "config.Cmd[1]"),
        (
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": ["x"]},
            },
            "rootfs.diff_ids[0]",
        ),
        (
            {"architecture": "amd64", "os": "linux", "history": [{"empty_layer": "yes"}]},
            "history[0].empty_layer",
        ),
    ],
)
def test_config_errors_name_the_field(doc: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        ImageConfig.from_json(doc)
    assert fragment in str(info.value)


def test_config_bytes_are_canonical() -> None:
    cfg = ImageConfig(architecture="amd64", os="linux")
    raw = cfg.to_bytes()
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("linux/arm64", "linux/arm64/v8", True),
        ("linux/aarch64", "linux/arm64/v8", True),
        ("linux/amd64", "linux/amd64/v1", True),
        ("linux/x86_64", "linux/amd64", True),
        ("linux/arm", "linux/arm/v7", True),
        ("linux/arm/v6", "linux/arm/v7", False),
        ("linux/amd64", "windows/amd64", False),
        ("linux/amd64", "linux/arm64", False),
    ],
)
def test_platform_matching(a: str, b: str, same: bool) -> None:
    assert Platform.parse(a).matches(Platform.parse(b)) is same


def test_best_match_prefers_exact_then_compatible_variant() -> None:
    cands = [
        Platform.parse("linux/arm/v5"),
        Platform.parse("linux/arm/v6"),
        Platform.parse("linux/amd64"),
    ]
    assert best_match(cands, Platform.parse("linux/amd64")) == 2
    assert best_match(cands, Platform.parse("linux/arm/v7")) == 1
    assert best_match(cands, Platform.parse("linux/arm64")) is None


@pytest.mark.parametrize("bad", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_bad_platform_strings(bad: str) -> None:
    with pytest.raises(InvalidInput):
        Platform.parse(bad)
