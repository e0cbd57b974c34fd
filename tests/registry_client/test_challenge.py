"""WWW-Authenticate parsing: RFC 7235 challenges as real registries send them."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from forklift.transports.registry.challenge import parse_challenges, quote


def test_docker_hub_style_bearer_with_comma_in_quoted_scope() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull,push"'
    )
    (c,) = parse_challenges(header)
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.docker.io/token"
    assert c.service == "registry.docker.io"
    assert c.scopes == ("repository:library/nginx:pull,push",)


def test_basic_realm() -> None:
    (c,) = parse_challenges('Basic realm="Registry Realm"')
    assert c.scheme == "basic"
    assert c.realm == "Registry Realm"


def test_several_challenges_in_one_header_and_across_headers() -> None:
    got = parse_challenges(
        ['Basic realm="a, b", Bearer realm="https://t/x",service="s"', "Negotiate abc+/="]
    )
    assert [c.scheme for c in got] == ["basic", "bearer", "negotiate"]
    assert got[0].realm == "a, b"
    assert got[1].realm == "https://t/x" and got[1].service == "s"
    assert got[2].token68 == "abc+/="


def test_unquoted_scope_with_comma_is_kept_whole() -> None:
    (c,) = parse_challenges(
        "Bearer realm=https://t/token,service=reg,scope=repository:a/b:pull,push"
    )
    assert c.realm == "https://t/token"
    assert c.scopes == ("repository:a/b:pull,push",)


def test_space_separated_scopes_and_error_code() -> None:
    (c,) = parse_challenges(
        'Bearer realm="r", error="insufficient_scope", '
        'scope="repository:a:pull repository:b:pull,push"'
    )
    assert c.error == "insufficient_scope"
    assert c.scopes == ("repository:a:pull", "repository:b:pull,push")


def test_escapes_case_and_whitespace() -> None:
    (c,) = parse_challenges('  BEARER   Realm = "say \\"hi\\"\\\\" ,  Service="x"  ')
    assert c.scheme == "bearer"
    assert c.realm == 'say "hi"\\'
    assert c.service == "x"


def test_garbage_never_raises() -> None:
    for text in ["", ",,,", "=", '"unterminated', 'Bearer realm="x', "realm=x", "\x00\x01"]:
        parse_challenges(text)
    (c,) = parse_challenges('Bearer realm="open')
    assert c.realm == "open"


_value = st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=40)
_name = st.sampled_from(["realm", "service", "scope", "error", "x-custom"])


@given(params=st.dictionaries(_name, _value, min_size=1, max_size=5))
def test_quoted_params_round_trip(params: dict[str, str]) -> None:
    header = "Bearer " + ", ".join(f"{k}={quote(v)}" for k, v in params.items())
    (c,) = parse_challenges(header)
    assert c.scheme == "bearer"
    assert dict(c.params) == params
