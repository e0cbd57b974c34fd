"""Matching installed packages against the database.

* Distribution packages (dpkg, apk, rpm) are looked up by their *source*
  package in their release's namespace (``debian:12``, ``alpine:3.19``) and
  nowhere else: an upstream advisory never matches a distribution package,
  because distributions backport fixes without changing the upstream version.
  Per (vulnerability, package) the most authoritative source decides: the
  Debian tracker over the DSA/DLA lists; unfixed statuses are kept as they are.
* Language packages are looked up in their ecosystem (``pypi``, ``npm``, ...)
  and matched against OSV ranges (``ECOSYSTEM``/``SEMVER`` events) and the
  explicit ``versions`` lists, with the ecosystem's own version ordering.
* Advisories about the same vulnerability (a PYSEC record aliasing a CVE and a
  GHSA, a DSA naming a CVE) merge into one finding named by its CVE. Advisory
  bundles (DSA, DLA, USN, RHSA, ...) are kept as aliases but never merge two
  CVEs into one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cmp_to_key
from urllib.parse import unquote

from forklift.sbom.model import Ecosystem, Inventory, Package
from forklift.scan.db.index import Database, Match
from forklift.scan.db.model import Affected, Range, Severity, Status
from forklift.scan.db.names import INVENTORY, os_namespace, package_name
from forklift.scan.findings import Vulnerability
from forklift.scan.versions import InvalidVersion, Scheme, scheme

#: ids that name an advisory covering several vulnerabilities: kept, never merged on
BUNDLES = ("DSA-", "DLA-", "DTSA-", "USN-", "RHSA-", "RHBA-", "ALSA-", "RLSA-", "ALAS", "ELSA-")
#: which source decides for distribution records, most authoritative first
_DISTRO_PRIORITY = {"debian": 0, "alpine-secdb": 1, "Alpine": 1, "debian-dsa": 2, "debian-dla": 2}
#: where a severity comes from, most trusted first
_SEVERITY_PRIORITY = (
    "debian",
    "alpine",
    "ghsa",
    "vendor",
    "cvss:4.0",
    "cvss:3.1",
    "cvss:3.0",
    "cvss:2.0",
)


@dataclass(frozen=True)
class _Verdict:
    match: Match
    vulnerable: bool
    status: Status
    fixed: tuple[str, ...]


def _before(s: Scheme, a: str, b: str) -> bool:
    return s.compare(a, b) < 0


def in_range(r: Range, version: str, s: Scheme) -> tuple[bool, list[str]]:
    """Whether ``version`` is inside an OSV range, and the range's fixed versions above it."""
    affected = False
    fixed_above: list[str] = []
    events = list(r.events)
    try:
        # OSV: evaluate the events sorted by version; "introduced: 0" is the lowest
        def cmp(x: tuple[str, str], y: tuple[str, str]) -> int:
            if x == ("introduced", "0"):
                return 0 if y == x else -1
            if y == ("introduced", "0"):
                return 1
            return s.compare(x[1], y[1])

        events.sort(key=cmp_to_key(cmp))
        for kind, v in events:
            if kind == "introduced":
                if v == "0" or not _before(s, version, v):
                    affected = True
            elif kind == "fixed":
                if not _before(s, version, v):
                    affected = False
                else:
                    fixed_above.append(v)
            elif kind == "last_affected":
                if s.compare(version, v) > 0:
                    affected = False
            elif kind == "limit" and not _before(s, version, v):
                affected = False
    except InvalidVersion:
        return False, []
    return affected, fixed_above


def _listed(version: str, versions: Iterable[str], s: Scheme) -> bool:
    for v in versions:
        if v == version:
            return True
    if s.name == "pep440":
        for v in versions:
            try:
                if s.compare(v, version) == 0:
                    return True
            except InvalidVersion:
                continue
    return False


def _judge_language(m: Match, version: str, s: Scheme) -> _Verdict:
    aff = m.affected
    hit = _listed(version, aff.versions, s)
    fixed: list[str] = []
    for r in aff.ranges:
        inside, above = in_range(r, version, s)
        if inside:
            hit = True
            fixed.extend(above[:1])
    return _Verdict(m, hit, Status.FIXED if fixed else Status.AFFECTED, tuple(fixed))


def _judge_distro(m: Match, version: str, s: Scheme) -> _Verdict:
    aff: Affected = m.affected
    status = aff.status or Status.AFFECTED
    if status is Status.FIXED:
        try:
            vulnerable = s.compare(version, aff.fixed) < 0
        except InvalidVersion:
            vulnerable = False
        return _Verdict(m, vulnerable, Status.FIXED, (aff.fixed,))
    if aff.ranges or aff.versions:  # OSV records of a distribution (Alpine:v3.19, Debian:12)
        return _judge_language(m, version, s)
    return _Verdict(m, True, status, ())


def _identity(m: Match) -> set[str]:
    ids = {m.advisory.id, *m.advisory.aliases}
    return {i for i in ids if not i.startswith(BUNDLES)} or {m.advisory.id}


def _groups(verdicts: list[_Verdict]) -> list[list[_Verdict]]:
    """Union the verdicts whose identities share an id."""
    parent = list(range(len(verdicts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, v in enumerate(verdicts):
        for ident in _identity(v.match):
            if ident in owner:
                parent[find(i)] = find(owner[ident])
            else:
                owner[ident] = i
    groups: dict[int, list[_Verdict]] = {}
    for i, v in enumerate(verdicts):
        groups.setdefault(find(i), []).append(v)
    return list(groups.values())


def _primary(ids: set[str]) -> str:
    for prefix in ("CVE-", "GHSA-"):
        picked = sorted(i for i in ids if i.startswith(prefix))
        if picked:
            return picked[0]
    return sorted(ids)[0]


def _severity(group: list[_Verdict], distro: bool) -> tuple[Severity, str]:
    candidates: list[tuple[int, Severity, str]] = []
    for v in group:
        if distro and v.match.affected.severity:
            rating = Severity(v.match.affected.severity)
            if rating is not Severity.UNKNOWN:
                src = "debian" if v.match.advisory.source.startswith("debian") else "alpine"
                candidates.append((_SEVERITY_PRIORITY.index(src), rating, src))
        adv = v.match.advisory
        if adv.severity is not Severity.UNKNOWN and adv.severity_source:
            src = adv.severity_source
            rank = _SEVERITY_PRIORITY.index(src) if src in _SEVERITY_PRIORITY else 99
            candidates.append((rank, adv.severity, src))
    if not candidates:
        return Severity.UNKNOWN, ""
    best = min(candidates, key=lambda c: (c[0], -c[1].rank))
    return best[1], best[2]


def _merge(
    group: list[_Verdict], pkg: Package, installed: str, s: Scheme, distro: bool
) -> Vulnerability | None:
    if distro:
        # the most authoritative source that speaks about this vulnerability decides
        top = min(_DISTRO_PRIORITY.get(v.match.advisory.source, 5) for v in group)
        deciding = [v for v in group if _DISTRO_PRIORITY.get(v.match.advisory.source, 5) == top]
    else:
        deciding = group
    vulnerable = [v for v in deciding if v.vulnerable]
    if not vulnerable:
        return None
    ids: set[str] = set()
    for v in group:
        ids.update({v.match.advisory.id, *v.match.advisory.aliases})
    primary = _primary({i for i in ids if not i.startswith(BUNDLES)} or ids)
    fixed_versions = sorted({f for v in vulnerable for f in v.fixed}, key=_sort_key(s))
    if fixed_versions:
        status = Status.FIXED
    else:
        order = [
            Status.AFFECTED,
            Status.UNDETERMINED,
            Status.FIX_DEFERRED,
            Status.WILL_NOT_FIX,
            Status.END_OF_LIFE,
        ]
        status = max(
            (v.status for v in vulnerable), key=lambda st: order.index(st) if st in order else 0
        )
    rating, rating_source = _severity(group, distro)
    main = next(
        (v for v in vulnerable if v.match.advisory.id == primary), vulnerable[0]
    ).match.advisory
    title = next((v.match.advisory.summary for v in group if v.match.advisory.summary), "")
    refs: list[str] = []
    for v in group:
        for r in v.match.advisory.references:
            if r not in refs:
                refs.append(r)
    cvss = tuple({c.vector: c for v in group for c in v.match.advisory.cvss}.values())
    return Vulnerability(
        id=primary,
        aliases=tuple(sorted(ids - {primary})),
        package=pkg,
        installed=installed,
        fixed=", ".join(fixed_versions),
        status=status,
        severity=rating,
        severity_source=rating_source,
        title=title,
        url=_url(primary, main.references),
        references=tuple(refs[:10]),
        cvss=cvss,
        sources=tuple(sorted({v.match.advisory.source for v in group})),
        published=main.published,
        note=next((v.match.affected.note for v in vulnerable if v.match.affected.note), ""),
    )


def _url(vid: str, refs: tuple[str, ...]) -> str:
    if vid.startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{vid}"
    if vid.startswith("GHSA-"):
        return f"https://github.com/advisories/{vid}"
    if refs:
        return refs[0]
    return f"https://osv.dev/vulnerability/{vid}"


def _sort_key(s: Scheme):  # type: ignore[no-untyped-def]
    def cmp(a: str, b: str) -> int:
        try:
            return s.compare(a, b)
        except InvalidVersion:
            return (a > b) - (a < b)

    return cmp_to_key(cmp)


def purl_name(pkg: Package) -> str:
    """The package's full name as its ecosystem's advisories spell it.

    Maven is ``group:artifact``, npm ``@scope/name``, Go and Packagist
    ``path/name``: taken from the package URL's namespace when the analyzer
    left it out of ``name``.
    """
    if not pkg.purl.startswith("pkg:"):
        return pkg.name
    body = pkg.purl[4:].split("#", 1)[0].split("?", 1)[0].split("@", 1)[0]
    parts = [unquote(p) for p in body.split("/")]
    if len(parts) < 3:
        return pkg.name
    namespace, name = "/".join(parts[1:-1]), parts[-1]
    if pkg.ecosystem is Ecosystem.MAVEN:
        return pkg.name if ":" in pkg.name else f"{namespace}:{name}"
    if pkg.name.startswith(namespace + "/"):
        return pkg.name
    return f"{namespace}/{name}"


def match_package(db: Database, pkg: Package, namespace: str | None) -> list[Vulnerability]:
    """The vulnerabilities of one installed package."""
    if pkg.ecosystem.is_os:
        if namespace is None:
            return []
        key = (namespace, pkg.source_name or pkg.name)
        installed = pkg.source_version or pkg.version
        distro = True
    else:
        eco = INVENTORY.get(pkg.ecosystem)
        if eco is None:
            return []
        key = (eco, package_name(eco, purl_name(pkg)))
        installed = pkg.version
        distro = False
    try:
        s = scheme(key[0])
    except KeyError:
        return []
    rows = db.lookup(*key)
    if not rows:
        return []
    judge = _judge_distro if distro else _judge_language
    verdicts = [judge(m, installed, s) for m in rows]
    out = []
    for group in _groups(verdicts):
        v = _merge(group, pkg, installed, s, distro)
        if v is not None:
            out.append(v)
    return sorted(out, key=lambda v: v.id)


def match_inventory(db: Database, inv: Inventory) -> list[Vulnerability]:
    """Every vulnerability of every package of ``inv``."""
    namespace = os_namespace(inv.os)
    out: list[Vulnerability] = []
    for pkg in inv.packages:
        out.extend(match_package(db, pkg, namespace))
    return out
