"""Secret rules: what a credential looks like, and where.

Each rule is a bytes regular expression whose group 1 (or the whole match) is
the secret, optionally limited to file names, with cheap keywords that must
occur first (one combined search per file decides whether any rule runs at
all, which keeps whole-image scans fast). Values that are obviously
placeholders (``EXAMPLE``, ``${VAR}``, ``xxxx``) are not reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forklift.scan.db.model import Severity


@dataclass(frozen=True)
class SecretRule:
    id: str
    category: str
    title: str
    severity: Severity
    regex: re.Pattern[bytes]
    keywords: tuple[bytes, ...]  # at least one must occur (exact bytes: a cheap substring test)
    path: re.Pattern[str] | None = None  # only files whose path matches
    needs: re.Pattern[bytes] | None = None  # the file must also contain this


def _r(pattern: bytes, flags: int = 0) -> re.Pattern[bytes]:
    return re.compile(pattern, flags)


RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "gcp-service-account",
        "GCP",
        "GCP service account key",
        Severity.CRITICAL,
        _r(rb'"private_key"\s*:\s*"(-----BEGIN[A-Z ]*PRIVATE KEY-----[^"]{40,})"'),
        (b"service_account",),
        needs=_r(rb'"type"\s*:\s*"service_account"'),
    ),
    SecretRule(
        "private-key",
        "AsymmetricPrivateKey",
        "Asymmetric private key",
        Severity.HIGH,
        # the header; detect.py also wants a key body and the END line after it
        _r(rb"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"),
        (b"PRIVATE KEY",),
    ),
    SecretRule(
        "aws-access-key-id",
        "AWS",
        "AWS access key ID",
        Severity.CRITICAL,
        _r(rb"(?<![A-Z0-9])((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Z0-9])"),
        (b"AKIA", b"ASIA", b"ABIA", b"ACCA"),
    ),
    SecretRule(
        "aws-secret-access-key",
        "AWS",
        "AWS secret access key",
        Severity.CRITICAL,
        _r(
            rb"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?"
            rb"([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
        (b"secret", b"SECRET", b"Secret"),
    ),
    SecretRule(
        "github-pat",
        "GitHub",
        "GitHub personal access token",
        Severity.CRITICAL,
        _r(
            rb"(?<![A-Za-z0-9_])((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])"
        ),
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"),
    ),
    SecretRule(
        "gitlab-pat",
        "GitLab",
        "GitLab personal access token",
        Severity.CRITICAL,
        _r(rb"(?<![A-Za-z0-9_-])(glpat-[A-Za-z0-9_-]{20,})"),
        (b"glpat-",),
    ),
    SecretRule(
        "npm-access-token",
        "npm",
        "npm access token",
        Severity.CRITICAL,
        _r(rb"(?<![A-Za-z0-9_])(npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
        (b"npm_",),
    ),
    SecretRule(
        "npmrc-auth-token",
        "npm",
        "npm registry auth token in .npmrc",
        Severity.HIGH,
        _r(rb"(?m)_auth(?:Token)?\s*=\s*([^\s$\"'{][^\s\"']{7,})"),
        (b"_auth",),
        path=re.compile(r"(^|/)\.?npmrc$"),
    ),
    SecretRule(
        "pypi-upload-token",
        "PyPI",
        "PyPI upload token",
        Severity.CRITICAL,
        _r(rb"(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})"),
        (b"pypi-AgEIcHlwaS5vcmc",),
    ),
    SecretRule(
        "docker-config-auth",
        "Docker",
        "registry credentials in a Docker config.json",
        Severity.HIGH,
        _r(rb'"(?:auth|identitytoken)"\s*:\s*"([A-Za-z0-9+/=_.-]{8,})"'),
        (b"auth",),
        path=re.compile(r"(^|/)(\.docker/config\.json|\.dockercfg|containers/auth\.json)$"),
    ),
    SecretRule(
        "git-credentials",
        "Git",
        "password in .git-credentials",
        Severity.HIGH,
        _r(rb"(?m)^\s*https?://[^:\s/@]+:([^@\s]{3,})@"),
        (b"://",),
        path=re.compile(r"(^|/)\.git-credentials$"),
    ),
    SecretRule(
        "dotenv-secret",
        "DotEnv",
        "secret in a .env file",
        Severity.HIGH,
        _r(
            rb"(?m)^[ \t]*(?:export[ \t]+)?[A-Za-z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY"
            rb"|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)[A-Za-z0-9_]*[ \t]*=[ \t]*[\"']?([^\"'\s#$][^\"'\s#]{3,})",
            re.IGNORECASE,
        ),
        (b"=",),
        path=re.compile(r"(^|/)\.env(\.(?!example$|sample$|template$|dist$)[^/]+)?$"),
    ),
    SecretRule(
        "slack-token",
        "Slack",
        "Slack token",
        Severity.HIGH,
        _r(rb"(?<![A-Za-z0-9])(xox[baprs]-[0-9]{8,}-[0-9A-Za-z-]{10,})"),
        (b"xox",),
    ),
    SecretRule(
        "stripe-secret-key",
        "Stripe",
        "Stripe secret key",
        Severity.CRITICAL,
        _r(rb"(?<![A-Za-z0-9])((?:sk|rk)_live_[0-9a-zA-Z]{24,})"),
        (b"_live_",),
    ),
)

#: names of environment variables whose value is a secret (the image config's Env)
ENV_NAME = re.compile(
    r"(?i)^[A-Z0-9_]*(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)[A-Z0-9_]*$"
)
#: names of such variables that are configuration, not secrets
ENV_ALLOW = re.compile(r"(?i)(_FILE|_PATH|_DIR|_URL|_LENGTH|_SIZE|_TTL|_TIMEOUT|_EXPIRY|_HEADER)$")

_PLACEHOLDER = re.compile(
    rb"(?i)example|sample|dummy|placeholder|changeme|your[_-]?|xxxx|\*\*\*\*|<[^>]*>|\$\{|\$\(|%\(|\{\{"
)

# one alternation of every keyword: a single search in C beats a loop of substring tests
_KEYWORDS = re.compile(
    b"|".join(
        re.escape(k) for k in sorted({k for r in RULES if r.path is None for k in r.keywords})
    )
)


def placeholder(value: bytes) -> bool:
    """True for values that only stand for a secret (``EXAMPLE``, ``${TOKEN}``, ``xxxx``)."""
    if _PLACEHOLDER.search(value):
        return True
    return len(set(value)) <= 2


def prefilter(data: bytes) -> bool:
    """Whether any content rule can match: one search for all their keywords."""
    return _KEYWORDS.search(data) is not None


def applies(rule: SecretRule, data: bytes) -> bool:
    """Whether ``rule``'s keywords occur in ``data``."""
    return any(k in data for k in rule.keywords)


#: the file names path-limited rules can apply to (a set lookup spares most files the regexes)
_PATH_NAMES = frozenset(
    {".npmrc", "npmrc", "config.json", ".dockercfg", "auth.json", ".git-credentials"}
)


def path_rules(path: str) -> tuple[SecretRule, ...]:
    """Rules that only apply to this path (their content check has no keyword gate)."""
    name = path.rpartition("/")[2]
    if name not in _PATH_NAMES and not name.startswith(".env"):
        return ()
    return tuple(r for r in RULES if r.path is not None and r.path.search(path))
