"""Version comparison per ecosystem: tricky tables, and the real tools as oracles.

dpkg is checked against ``dpkg --compare-versions``, rpm against rpm's own
``rpm.vercmp`` (rpm's Lua), npm/SemVer against node's ``semver`` package (the
copy npm bundles), apk against apk-tools' published test vectors, Maven
against the cases of Maven's ComparableVersionTest, PEP 440 against
``packaging``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.scan.versions import InvalidVersion, apk, dpkg, maven, pep440, rpm, rubygems, scheme
from forklift.scan.versions import semver as sv

DATA = Path(__file__).parent / "data"
NODE_SEMVER = Path("/usr/lib/node_modules/npm/node_modules/semver")


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


# -- dpkg ---------------------------------------------------------------------------------

DPKG_TABLE = [
    ("1.0", "1.0", 0),
    ("1.0", "1.0-0", 0),
    ("0:1.0", "1.0", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc1~1", 1),
    ("1.0~", "1.0", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0", "1.0+1", -1),
    ("1.0+b1", "1.0.1", -1),  # non-letters by code: "+" < "."
    ("1.0a", "1.0+", -1),  # letters before other characters
    ("1:0.1", "2.0", 1),
    ("2.36-9+deb12u14", "2.36-9+deb12u4", 1),
    ("3.0.19-1~deb12u2", "3.0.19-1", -1),
    ("1:1.2.13.dfsg-1", "1.2.13.dfsg-1", 1),
    ("7.88.1-10+deb12u14", "7.88.1-10+deb12u9", 1),
    ("1.2-3-4", "1.2-3", 1),  # revision after the last hyphen: "4" vs "3"
    ("10", "9", 1),
    ("1.010", "1.10", 0),
    ("0", "00", 0),
    ("5.2.15-2+b8", "5.2.15-2", 1),
]


@pytest.mark.parametrize(("a", "b", "expected"), DPKG_TABLE)
def test_dpkg_table(a: str, b: str, expected: int) -> None:
    assert dpkg.compare(a, b) == expected
    assert dpkg.compare(b, a) == -expected


def _dpkg_says(a: str, b: str) -> int:
    for op, result in (("lt", -1), ("eq", 0), ("gt", 1)):
        proc = subprocess.run(
            ["dpkg", "--compare-versions", a, op, b], capture_output=True, check=False
        )
        if proc.returncode == 0:
            return result
    raise AssertionError(f"dpkg could not order {a!r} and {b!r}")


_dpkg_part = st.text(alphabet="0123456789.+~ab", min_size=1, max_size=6)
_dpkg_version = st.builds(
    lambda e, u, r: f"{e}{u}{r}",
    st.sampled_from(["", "1:", "0:", "2:"]),
    st.builds(lambda d, rest: d + rest, st.sampled_from("0123456789"), _dpkg_part),
    st.one_of(st.just(""), st.builds(lambda r: "-" + r, _dpkg_part)),
)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_dpkg_agrees_with_dpkg_compare_versions_on_the_table() -> None:
    for a, b, _ in DPKG_TABLE:
        assert dpkg.compare(a, b) == _dpkg_says(a, b), (a, b)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
@settings(max_examples=150, deadline=None)
@given(_dpkg_version, _dpkg_version)
def test_dpkg_agrees_with_dpkg_on_generated_versions(a: str, b: str) -> None:
    assert dpkg.compare(a, b) == _dpkg_says(a, b)


def test_dpkg_refuses_what_dpkg_refuses() -> None:
    for bad in ("", "a:1.0", "1:", "1.0-", "1 0"):
        with pytest.raises(InvalidVersion):
            dpkg.compare(bad, "1.0")
    assert not dpkg.valid("a1.0") and dpkg.valid("1:1.0-1~b2")


# -- apk ----------------------------------------------------------------------------------


def _apk_vectors() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for line in (DATA / "apk-version.data").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(tuple(line.split()))
    return out


APK_VECTORS = _apk_vectors()


def test_apk_vectors_are_all_there() -> None:
    assert len([v for v in APK_VECTORS if len(v) == 3]) > 700


@pytest.mark.parametrize("case", APK_VECTORS, ids=[" ".join(v) for v in APK_VECTORS])
def test_apk_tools_vectors(case: tuple[str, ...]) -> None:
    if len(case) == 1:
        v = case[0]
        if v.startswith("!"):
            assert not apk.valid(v[1:])
        else:
            assert apk.valid(v)
        return
    a, op, b = case
    r = apk.compare(a, b)
    assert {"<": r < 0, ">": r > 0, "=": r == 0}[op], f"{a} {op} {b}: got {r}"
    assert apk.compare(b, a) == -r


# -- rpm ----------------------------------------------------------------------------------

RPM_TABLE = [
    ("1.0", "1.0", 0),
    ("1.0", "2.0", -1),
    ("2.0.1", "2.0.1a", -1),
    ("5.5p1", "5.5p2", -1),
    ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1),
    ("xyz10", "xyz10.1", -1),
    ("xyz.4", "8", -1),
    ("1b.fc17", "1.fc17", -1),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0^", "1.0", 1),
    ("1.0^git1", "1.0", 1),
    ("1.0^git1", "1.01", -1),
    ("1.0^git1", "1.0^git2", -1),
    ("1.0^git1~pre", "1.0^git1", -1),
    ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0^git1", "1.0~rc1", 1),
    ("1_0", "1.0", 0),
    ("+1", "_1", 0),
    ("1:1.0-1", "2.0-1", 1),
    ("1.0-1", "1.0-1.el9", -1),
    ("0:2.4.57-5.el9", "2.4.57-5.el9", 0),
    ("1.0", "1.0-1", -1),
]


@pytest.mark.parametrize(("a", "b", "expected"), RPM_TABLE)
def test_rpm_table(a: str, b: str, expected: int) -> None:
    assert rpm.compare(a, b) == expected
    assert rpm.compare(b, a) == -expected


def _rpm_says(pairs: list[tuple[str, str]]) -> list[int]:
    lua = "; ".join(f"print(rpm.vercmp({json.dumps(a)}, {json.dumps(b)})..' ')" for a, b in pairs)
    out = subprocess.run(
        ["rpm", "--eval", "%{lua: " + lua + "}"], capture_output=True, text=True, check=True
    ).stdout
    return [int(x) for x in out.split()]


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
def test_rpm_agrees_with_rpm_on_the_table() -> None:
    pairs = [(a, b) for a, b, _ in RPM_TABLE]
    assert [rpm.compare(a, b) for a, b in pairs] == _rpm_says(pairs)


_rpm_version = st.text(alphabet="0123456789.~^ab_", min_size=1, max_size=8).filter(
    lambda s: any(c.isalnum() for c in s)
)


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_rpm_version, _rpm_version), min_size=10, max_size=10))
def test_rpm_agrees_with_rpm_on_generated_versions(pairs: list[tuple[str, str]]) -> None:
    assert [rpm.compare(a, b) for a, b in pairs] == _rpm_says(pairs)


# -- SemVer (npm, Go, crates.io) ----------------------------------------------------------

SEMVER_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0-0",
    "1.1.0",
    "1.10.0",
    "2.0.0",
]


def test_semver_spec_order() -> None:
    for i, a in enumerate(SEMVER_ORDER):
        for b in SEMVER_ORDER[i + 1 :]:
            assert sv.compare(a, b) == -1 and sv.compare(b, a) == 1, (a, b)
    assert sv.compare("1.0.0+build.1", "1.0.0+build.2") == 0
    assert sv.compare("v1.19", "1.19.0") == 0  # Go toolchain versions
    assert sv.compare("1.2.3.4", "1.2.3") == 1  # NuGet's fourth number
    assert scheme("NuGet").compare("1.0.0-RC1", "1.0.0-rc1") == 0
    assert not sv.valid("01.0.0") and sv.valid("1.0.0-x.7.z.92+sha.5114f85")


_ident = st.one_of(st.integers(0, 30).map(str), st.text(alphabet="abcxyz-", min_size=1, max_size=4))
_semver = st.builds(
    lambda n, pre: ".".join(map(str, n)) + ("-" + ".".join(pre) if pre else ""),
    st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)),
    st.lists(_ident, max_size=3),
)


@pytest.mark.skipif(not NODE_SEMVER.is_dir() or shutil.which("node") is None, reason="no node")
@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(_semver, _semver), min_size=30, max_size=30))
def test_semver_agrees_with_node_semver(pairs: list[tuple[str, str]]) -> None:
    pairs = pairs + [(a, b) for a in SEMVER_ORDER for b in SEMVER_ORDER[::3]]
    script = (
        f"const s=require({json.dumps(str(NODE_SEMVER))});"
        "const p=JSON.parse(require('fs').readFileSync(0));"
        "console.log(JSON.stringify(p.map(([a,b])=>s.compare(a,b))))"
    )
    out = subprocess.run(
        ["node", "-e", script], input=json.dumps(pairs), capture_output=True, text=True, check=True
    ).stdout
    assert [sv.compare(a, b) for a, b in pairs] == json.loads(out)


# -- Maven (cases from Maven's ComparableVersionTest) -------------------------------------

MAVEN_QUALIFIER_ORDER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11",
    "1-rc", "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def",
    "1-pom-1", "1-1-snapshot", "1-1", "1-2", "1-123",
]  # fmt: skip
MAVEN_NUMBER_ORDER = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
    "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11",
    "11.a", "11b", "11c", "11m",
]  # fmt: skip
MAVEN_EQUAL = [
    ("1", "1.0"), ("1", "1.0.0"), ("1", "1-0"), ("1.0", "1.0-0"), ("1a", "1-a"), ("1a", "1.0-a"),
    ("1.0.0x", "1-x"), ("1cr", "1rc"), ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"),
    ("1m3", "1-milestone-3"), ("1X", "1x"), ("1m3", "1MILESTONE3"), ("1ga", "1"),
    ("1release", "1"), ("1FINAL", "1"), ("0001", "1"), ("000", "0"),
    ("1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"), ("2-abc", "2.0.abc"),
    ("2-m", "2.0.0.m"),
]  # fmt: skip
MAVEN_LESS = [
    ("1", "2"), ("1.5", "2"), ("1.0.1", "1.1"), ("1.0-alpha-1", "1.0"), ("1.0-beta-1", "1.0-SNAPSHOT"),
    ("1.0-SNAPSHOT", "1.0"), ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"), ("1.0", "1.0-1"),
    ("1.0.0", "1.0-1"), ("2.0-1", "2.0.1"), ("2.0.1-klm", "2.0.1-lmn"), ("2.0.1", "2.0.1-xyz"),
    ("2.0.1-xyz", "2.0.1-123"), ("0.7", "2"), ("6.1.0rc3", "6.1.0"), ("6.1.0rc3", "6.1H.5-beta"),
    ("6.1.0", "6.1H.5-beta"), ("20190126.230843", "1234567890.12345"),
    ("1234567890.12345", "123456789012345.1H.5-beta"),
    ("123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"), ("1-0.alpha", "1"),
    ("1-0.alpha", "1-0.beta"), ("1.0.0.abc1", "1.0.0-abc2"), ("1.0.final-redhat", "1.0-sp1-redhat"),
    ("1.0.final-redhat", "1.0-sp-1-redhat"), ("1.0.final-redhat", "1.0-sp.1-redhat"),
    ("aardvark", "zebra"), ("J", "7"),
]  # fmt: skip


def test_maven_orders() -> None:
    for order in (MAVEN_QUALIFIER_ORDER, MAVEN_NUMBER_ORDER):
        for i, a in enumerate(order):
            for b in order[i + 1 :]:
                assert maven.compare(a, b) == -1 and maven.compare(b, a) == 1, (a, b)


@pytest.mark.parametrize(("a", "b"), MAVEN_EQUAL)
def test_maven_equal(a: str, b: str) -> None:
    assert maven.compare(a, b) == 0 == maven.compare(b, a)


@pytest.mark.parametrize(("a", "b"), MAVEN_LESS)
def test_maven_less(a: str, b: str) -> None:
    assert maven.compare(a, b) == -1 and maven.compare(b, a) == 1


# -- RubyGems -----------------------------------------------------------------------------

GEM_ORDER = [
    "0.9",
    "1.0.a",
    "1.0.a2",
    "1.0.a10",
    "1.0.b1",
    "1.0.rc1",
    "1.0",
    "1.0.1",
    "1.1",
    "1.10",
]


def test_rubygems() -> None:
    for i, a in enumerate(GEM_ORDER):
        for b in GEM_ORDER[i + 1 :]:
            assert rubygems.compare(a, b) == -1 and rubygems.compare(b, a) == 1, (a, b)
    assert rubygems.compare("1.0", "1") == 0
    assert rubygems.compare("1.0.0.0", "1") == 0
    assert rubygems.compare("1.0-1", "1.0.pre.1") == 0
    assert rubygems.compare("1.8.a", "1.8.0") == -1
    with pytest.raises(InvalidVersion):
        rubygems.compare("1..0", "1")


# -- PEP 440 ------------------------------------------------------------------------------

PEP440_ORDER = [
    "1.0.dev0", "1.0a1", "1.0a2.dev1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0+local.1",
    "1.0.post1.dev0", "1.0.post1", "1.1", "1!0.1",
]  # fmt: skip


def test_pep440() -> None:
    for i, a in enumerate(PEP440_ORDER):
        for b in PEP440_ORDER[i + 1 :]:
            assert pep440.compare(a, b) == -1, (a, b)
    assert pep440.compare("1.0", "1.0.0") == 0
    assert pep440.compare("1.0-1", "1.0.post1") == 0
    with pytest.raises(InvalidVersion):
        pep440.compare("2004d", "1.0")


def test_scheme_names() -> None:
    assert scheme("Debian:12").name == "dpkg"
    assert scheme("Alpine:v3.19").name == "apk"
    assert scheme("PyPI").name == "pep440"
    assert scheme("crates.io").name == "semver"
    assert scheme("Rocky Linux:9").name == "rpm"
    assert _sign(scheme("deb").compare("1.0", "1.0~1")) == 1
