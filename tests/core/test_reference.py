"""Image reference normalisation, table-driven.

Expected values follow Docker's documented normalisation (distribution/reference
ParseNormalizedNamed + TagNameOnly): cases written from the grammar, not from
forklift's output.
"""

from __future__ import annotations

import pytest

from forklift.errors import InvalidReference
from forklift.reference import parse_reference

D = "sha256:" + "a" * 64

VALID = [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25"),
    ("library/nginx", "docker.io/library/nginx:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
    ("user/app", "docker.io/user/app:latest"),
    ("user/sub/app:tag", "docker.io/user/sub/app:tag"),
    ("localhost/x", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
    ("localhost:5000/ns/repo:tag", "localhost:5000/ns/repo:tag"),
    ("host:5000/ns/repo:tag", "host:5000/ns/repo:tag"),
    ("registry.example.com/team/app", "registry.example.com/team/app:latest"),
    ("Registry.Example.com/app", "Registry.Example.com/app:latest"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
    ("[::1]:5000/app", "[::1]:5000/app:latest"),
    ("[fe80::1]/app:v", "[fe80::1]/app:v"),
    (f"repo@{D}", f"docker.io/library/repo@{D}"),
    (f"repo:tag@{D}", f"docker.io/library/repo:tag@{D}"),
    (f"host:5000/repo:tag@{D}", f"host:5000/repo:tag@{D}"),
    ("a/b/c/d/e", "docker.io/a/b/c/d/e:latest"),
    ("my_app", "docker.io/library/my_app:latest"),
    ("my__app", "docker.io/library/my__app:latest"),
    ("my-app", "docker.io/library/my-app:latest"),
    ("my---app", "docker.io/library/my---app:latest"),
    ("my.app", "docker.io/library/my.app:latest"),
    ("app:TAG_1.0-rc", "docker.io/library/app:TAG_1.0-rc"),
    ("app:_x", "docker.io/library/app:_x"),
    ("app:" + "t" * 128, "docker.io/library/app:" + "t" * 128),
    ("foo.bar/baz", "foo.bar/baz:latest"),
    ("sub-domain.example.com/x", "sub-domain.example.com/x:latest"),
    ("0.0.0.0:1/x", "0.0.0.0:1/x:latest"),
    ("a" * 64 + "x", "docker.io/library/" + "a" * 64 + "x:latest"),
]

INVALID = [
    ("", "empty"),
    ("Nginx", "lowercase"),
    ("user/App", "lowercase"),
    ("nginx:", "invalid tag"),
    ("nginx:.bad", "invalid tag"),
    ("nginx:-bad", "invalid tag"),
    ("nginx:" + "t" * 129, "invalid tag"),
    ("nginx:tag with space", "whitespace"),
    (" nginx", "whitespace"),
    ("nginx@sha256:abc", "sha256"),
    ("nginx@md5:" + "a" * 32, "unsupported"),
    ("nginx@", "empty digest"),
    ("_app", "invalid path component"),
    ("app_", "invalid path component"),
    ("app..x", "invalid path component"),
    ("app/", "empty path component"),
    ("/app", "empty"),
    ("a//b", "empty path component"),
    ("-host.com/app", "invalid registry host"),
    ("host-.com/app", "invalid registry host"),
    ("host.com:port/app", "invalid registry host"),
    ("a" * 64, "image ID"),
    ("docker.io/" + "a" * 250, "at most 255"),
    ("app@sha256:" + "A" * 64, "sha256"),
    ("ap$p", "invalid path component"),
    ("app:tag:tag", "invalid"),
    ("foo:bar/baz", "invalid registry host"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_references_normalise_like_docker(text: str, expected: str) -> None:
    assert str(parse_reference(text)) == expected


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_references_are_rejected_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert fragment in str(info.value)


def test_at_least_forty_cases() -> None:
    assert len(VALID) + len(INVALID) >= 40


def test_parts_and_familiar_forms() -> None:
    ref = parse_reference("nginx")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (
        "docker.io",
        "library/nginx",
        "latest",
        None,
    )
    assert ref.familiar() == "nginx:latest"
    assert parse_reference("user/app:1").familiar() == "user/app:1"
    assert parse_reference("host:5000/x:1").familiar() == "host:5000/x:1"
    pinned = parse_reference(f"repo:tag@{D}")
    assert pinned.tag == "tag" and str(pinned.digest) == D


def test_no_default_tag_when_asked() -> None:
    assert parse_reference("nginx", default_tag=False).tag is None
    assert parse_reference(f"nginx@{D}").tag is None
