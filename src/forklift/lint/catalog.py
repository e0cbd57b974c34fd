"""Every lint rule forklift knows: stable id, slug, default severity, what it maps to.

Ids never change meaning once published. Each rule lists the hadolint rule(s)
it corresponds to (so ``# hadolint ignore=DL3008``-style pragmas and hadolint
configs keep working) and the BuildKit build check (``docker build --check``)
it reproduces, when there is one. :func:`lookup` resolves any of these names
(``FL205``, ``apt-lists-not-removed``, ``DL3009``, ``UndefinedVar``) to rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from forklift.lint.findings import Severity

BUILDKIT_DOCS = "https://docs.docker.com/go/dockerfile/rule/"


@dataclass(frozen=True)
class RuleInfo:
    """A rule's identity and defaults.

    ``buildkit`` is the BuildKit check this rule reproduces (same trigger, same
    wording in the message) and ``hadolint`` the hadolint ids with the same
    intent. ``enabled`` is false for rules that only run when asked for
    (``enable:`` in the config).
    """

    id: str
    name: str
    severity: Severity
    summary: str
    fix: str
    category: str
    buildkit: str = ""
    hadolint: tuple[str, ...] = ()
    enabled: bool = True

    @property
    def help_uri(self) -> str:
        """Docker's page for the BuildKit check this rule reproduces ("" when there is none).

        forklift's own rules are documented in docs/readme/lint-analyze.md.
        """
        if not self.buildkit:
            return ""
        return BUILDKIT_DOCS + _kebab(self.buildkit) + "/"


def _kebab(name: str) -> str:
    """``JSONArgsRecommended`` -> ``json-args-recommended`` (Docker's URL slugs)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name)
    return spaced.lower()


E, W, N, S = Severity.ERROR, Severity.WARNING, Severity.INFO, Severity.STYLE  # N: iNfo

_RULES = (
    # -- the file itself
    RuleInfo(
        "FL000",
        "syntax-error",
        E,
        "The Dockerfile does not parse or an instruction is invalid",
        "Fix the syntax at the reported position; BuildKit rejects this file",
        "correctness",
    ),
    # -- base images
    RuleInfo(
        "FL101",
        "base-image-untagged",
        W,
        "FROM names an image without a tag, so it means :latest and drifts",
        "Pin a version tag, e.g. FROM debian:12.7 instead of FROM debian",
        "base-image",
        hadolint=("DL3006",),
    ),
    RuleInfo(
        "FL102",
        "base-image-latest",
        W,
        "FROM uses the :latest tag, so rebuilds silently pick up new releases",
        "Pin a release tag, e.g. FROM node:22.11-bookworm-slim",
        "base-image",
        hadolint=("DL3007",),
    ),
    RuleInfo(
        "FL103",
        "base-image-not-digest-pinned",
        N,
        "The final image's base is not pinned by digest; tags can be moved",
        "For production, pin the digest too: FROM image:tag@sha256:<digest>",
        "base-image",
    ),
    RuleInfo(
        "FL104",
        "from-platform-flag-const",
        W,
        "FROM --platform uses a constant, which breaks multi-platform builds",
        "Use FROM --platform=$BUILDPLATFORM for build tools, or drop the flag",
        "base-image",
        buildkit="FromPlatformFlagConstDisallowed",
        hadolint=("DL3029",),
    ),
    RuleInfo(
        "FL105",
        "redundant-target-platform",
        S,
        "FROM --platform=$TARGETPLATFORM is what FROM does anyway",
        "Remove --platform=$TARGETPLATFORM from the FROM line",
        "base-image",
        buildkit="RedundantTargetPlatform",
        hadolint=("DL3065",),
    ),
    RuleInfo(
        "FL106",
        "untrusted-registry",
        E,
        "The base image comes from a registry that is not in the trusted list",
        "Use an image from a trusted registry or add the registry to trusted-registries",
        "base-image",
        hadolint=("DL3026",),
    ),
    RuleInfo(
        "FL107",
        "invalid-default-arg-in-from",
        E,
        "With default ARG values the FROM line gives an empty or invalid image name",
        "Give the global ARG a default that makes a valid image name",
        "base-image",
        buildkit="InvalidDefaultArgInFrom",
    ),
    RuleInfo(
        "FL108",
        "undefined-arg-in-from",
        W,
        "FROM uses a variable that no global ARG declares",
        "Declare it with ARG before the first FROM (or fix the name)",
        "base-image",
        buildkit="UndefinedArgInFrom",
    ),
    # -- layers and the build cache
    RuleInfo(
        "FL201",
        "cache-cleaned-in-later-run",
        W,
        "A package cache is removed in a later RUN than the install: the bytes stay in the earlier layer",
        "Clean up in the same RUN as the install (or use RUN --mount=type=cache)",
        "layers",
    ),
    RuleInfo(
        "FL202",
        "apt-update-alone",
        W,
        "apt-get update runs in a RUN without an install: its cached layer goes stale",
        "Run apt-get update && apt-get install ... in one RUN",
        "layers",
    ),
    RuleInfo(
        "FL203",
        "apt-install-no-yes",
        W,
        "apt-get install without -y waits for a confirmation that never comes",
        "Add -y: apt-get install -y --no-install-recommends <packages>",
        "layers",
        hadolint=("DL3014",),
    ),
    RuleInfo(
        "FL204",
        "apt-no-install-recommends",
        N,
        "apt-get install without --no-install-recommends pulls in extra packages",
        "Add --no-install-recommends to apt-get install",
        "layers",
        hadolint=("DL3015",),
    ),
    RuleInfo(
        "FL205",
        "apt-lists-not-removed",
        N,
        "The apt package lists stay in the layer after apt-get install",
        "End the same RUN with && rm -rf /var/lib/apt/lists/* (or mount a cache on /var/lib/apt)",
        "layers",
        hadolint=("DL3009",),
    ),
    RuleInfo(
        "FL206",
        "apk-add-no-cache",
        N,
        "apk add without --no-cache keeps the package index in the layer",
        "Use apk add --no-cache <packages>",
        "layers",
        hadolint=("DL3019",),
    ),
    RuleInfo(
        "FL207",
        "pip-no-cache-dir",
        W,
        "pip install keeps its download cache in the layer",
        "Use pip install --no-cache-dir (or RUN --mount=type=cache,target=/root/.cache/pip)",
        "layers",
        hadolint=("DL3042",),
    ),
    RuleInfo(
        "FL208",
        "js-cache-not-cleaned",
        N,
        "npm/yarn install keeps the package cache in the layer",
        "Add && npm cache clean --force (yarn cache clean) to the same RUN, or mount a cache",
        "layers",
        hadolint=("DL3060",),
    ),
    RuleInfo(
        "FL209",
        "consecutive-run",
        N,
        "Consecutive RUN instructions each add a layer",
        "Combine them into one RUN with && (or a heredoc)",
        "layers",
        hadolint=("DL3059",),
    ),
    RuleInfo(
        "FL210",
        "copy-all-before-install",
        W,
        "The whole context is copied before dependencies are installed: every code change reinstalls them",
        "Copy only the dependency manifests, install, then COPY the rest",
        "layers",
    ),
    RuleInfo(
        "FL211",
        "copy-all",
        N,
        "COPY . copies the whole build context",
        "Copy explicit paths (COPY src/ ./src/) so unrelated files do not bust the cache",
        "layers",
    ),
    RuleInfo(
        "FL212",
        "add-instead-of-copy",
        W,
        "ADD is used for local files; COPY does the same without ADD's surprises",
        "Use COPY; keep ADD for URLs and local tar archives to extract",
        "layers",
        hadolint=("DL3020",),
    ),
    RuleInfo(
        "FL213",
        "apt-not-apt-get",
        W,
        "apt is meant for interactive use; its CLI is not stable for scripts",
        "Use apt-get (or apt-cache)",
        "layers",
        hadolint=("DL3027",),
    ),
    RuleInfo(
        "FL214",
        "package-install-no-yes",
        W,
        "yum/dnf/zypper install without -y waits for a confirmation that never comes",
        "Add -y (zypper: --non-interactive)",
        "layers",
        hadolint=("DL3030", "DL3038", "DL3034"),
    ),
    RuleInfo(
        "FL215",
        "package-cache-not-cleaned",
        N,
        "yum/dnf/zypper install without cleaning its cache in the same RUN",
        "End the same RUN with && yum clean all (dnf clean all, zypper clean)",
        "layers",
        hadolint=("DL3032", "DL3040", "DL3036"),
    ),
    # -- package versions (hadolint's pinning rules, with hadolint's idea of "pinned")
    RuleInfo(
        "FL216",
        "apt-version-unpinned",
        W,
        "apt-get install names packages without versions, so each build gets whatever is newest",
        "Pin each package: apt-get install curl=<version> (apt-cache policy curl lists them)",
        "versions",
        hadolint=("DL3008",),
    ),
    RuleInfo(
        "FL217",
        "pip-version-unpinned",
        W,
        "pip install names packages without versions, so each build gets whatever is newest",
        "Pin each package (flask==<version>) or install from a requirements or constraints file",
        "versions",
        hadolint=("DL3013",),
    ),
    RuleInfo(
        "FL218",
        "npm-version-unpinned",
        W,
        "npm install names packages without versions, so each build gets whatever is newest",
        "Pin each package (express@<version>), or list them in package.json and use npm ci",
        "versions",
        hadolint=("DL3016",),
    ),
    RuleInfo(
        "FL219",
        "apk-version-unpinned",
        W,
        "apk add names packages without versions, so each build gets whatever is newest",
        "Pin each package: apk add curl=<version> (or curl~<major.minor>)",
        "versions",
        hadolint=("DL3018",),
    ),
    RuleInfo(
        "FL220",
        "gem-version-unpinned",
        W,
        "gem install names gems without versions, so each build gets whatever is newest",
        "Pin each gem: gem install rails:<version> (or -v <version>)",
        "versions",
        hadolint=("DL3028",),
    ),
    RuleInfo(
        "FL221",
        "yum-version-unpinned",
        W,
        "yum install names packages (or module streams) without versions",
        "Pin each package: yum install -y tomcat-<version> (modules: tomcat:<stream>)",
        "versions",
        hadolint=("DL3033",),
    ),
    RuleInfo(
        "FL222",
        "dnf-version-unpinned",
        W,
        "dnf/microdnf install names packages (or module streams) without versions",
        "Pin each package: dnf install -y tomcat-<version> (modules: tomcat:<stream>)",
        "versions",
        hadolint=("DL3041",),
    ),
    RuleInfo(
        "FL223",
        "zypper-version-unpinned",
        W,
        "zypper install names packages without versions, so each build gets whatever is newest",
        "Pin each package: zypper install -y tomcat=<version> (or tomcat>=<version>)",
        "versions",
        hadolint=("DL3037",),
    ),
    RuleInfo(
        "FL224",
        "go-version-unpinned",
        W,
        "go install/get/run names a module without a version (or @latest)",
        "Pin the module: go install example.com/tool@v1.2.3",
        "versions",
        hadolint=("DL3062",),
    ),
    # -- the build context
    RuleInfo(
        "FL301",
        "dockerignore-missing",
        W,
        "The build context has no .dockerignore: everything in it is sent and can be copied",
        "Add a .dockerignore excluding .git, secrets and build output",
        "context",
    ),
    RuleInfo(
        "FL302",
        "dockerignore-incomplete",
        W,
        "The .dockerignore does not exclude something sensitive or heavy that is in the context",
        "Add the path to .dockerignore",
        "context",
    ),
    RuleInfo(
        "FL303",
        "copy-ignored-file",
        W,
        "COPY/ADD names a path the .dockerignore excludes",
        "Remove the path from the COPY, or stop ignoring it",
        "context",
        buildkit="CopyIgnoredFile",
    ),
    # -- security
    RuleInfo(
        "FL401",
        "user-root",
        W,
        "The image runs as root: the last USER is root",
        "Create a user and switch to it: RUN useradd -r app && ... then USER app",
        "security",
        hadolint=("DL3002",),
    ),
    RuleInfo(
        "FL402",
        "user-missing",
        N,
        "The final stage sets no USER, so the image runs as the base image's user (often root)",
        "Add USER <non-root user> near the end of the final stage",
        "security",
    ),
    RuleInfo(
        "FL403",
        "sudo",
        E,
        "sudo in RUN: builds already run as the stage's user, and sudo misbehaves without a TTY",
        "Drop sudo; switch users with USER, or use gosu/su-exec at runtime",
        "security",
        hadolint=("DL3004",),
    ),
    RuleInfo(
        "FL404",
        "secrets-in-arg-or-env",
        W,
        "ARG/ENV with a secret-looking name: the value ends up in the image history",
        "Use RUN --mount=type=secret,id=<name> and pass it with --secret",
        "security",
        buildkit="SecretsUsedInArgOrEnv",
        hadolint=("DL3064",),
    ),
    RuleInfo(
        "FL405",
        "curl-pipe-shell",
        W,
        "A script downloaded over the network is piped straight into a shell",
        "Download to a file, verify its checksum, then run it",
        "security",
    ),
    # -- correctness
    RuleInfo(
        "FL501",
        "workdir-relative",
        W,
        "A relative WORKDIR depends on the base image's working directory",
        "Use an absolute path: WORKDIR /app",
        "correctness",
        buildkit="WorkdirRelativePath",
        hadolint=("DL3000",),
    ),
    RuleInfo(
        "FL502",
        "cd-in-run",
        W,
        "cd in RUN changes the directory for that RUN only",
        "Use WORKDIR <dir> instead of RUN cd <dir>",
        "correctness",
        hadolint=("DL3003",),
    ),
    RuleInfo(
        "FL503",
        "multiple-instructions",
        W,
        "CMD, ENTRYPOINT or HEALTHCHECK appears twice in a stage; only the last counts",
        "Remove the earlier one",
        "correctness",
        buildkit="MultipleInstructionsDisallowed",
        hadolint=("DL4003", "DL4004", "DL3012"),
    ),
    RuleInfo(
        "FL504",
        "json-args-recommended",
        W,
        "Shell-form CMD/ENTRYPOINT runs under /bin/sh -c, which does not forward signals",
        'Use the exec form: CMD ["executable", "arg"]',
        "correctness",
        buildkit="JSONArgsRecommended",
        hadolint=("DL3025",),
    ),
    RuleInfo(
        "FL505",
        "copy-from-unknown-stage",
        W,
        "COPY --from names no stage of this Dockerfile, so it is pulled as an image",
        "Use the name of an earlier stage (or a full image reference with a tag)",
        "correctness",
        hadolint=("DL3022",),
    ),
    RuleInfo(
        "FL506",
        "copy-from-own-stage",
        E,
        "COPY --from names the stage it is in",
        "Copy from an earlier stage, or copy within the stage with RUN cp",
        "correctness",
        hadolint=("DL3023",),
    ),
    RuleInfo(
        "FL507",
        "duplicate-stage-name",
        E,
        "Two stages have the same name",
        "Give every stage a unique name",
        "correctness",
        buildkit="DuplicateStageName",
        hadolint=("DL3024",),
    ),
    RuleInfo(
        "FL508",
        "expose-invalid",
        E,
        "EXPOSE has a port out of range, a host IP or a host-port mapping",
        "EXPOSE only the container port (0-65535) and optional /tcp or /udp",
        "correctness",
        buildkit="ExposeInvalidFormat",
        hadolint=("DL3011",),
    ),
    RuleInfo(
        "FL509",
        "expose-proto-casing",
        S,
        "The protocol in EXPOSE is not lower case",
        "Write it in lower case: EXPOSE 80/tcp",
        "correctness",
        buildkit="ExposeProtoCasing",
    ),
    RuleInfo(
        "FL510",
        "maintainer-deprecated",
        W,
        "MAINTAINER is deprecated",
        'Use LABEL org.opencontainers.image.authors="name <mail>"',
        "correctness",
        buildkit="MaintainerDeprecated",
        hadolint=("DL4000",),
    ),
    RuleInfo(
        "FL511",
        "unused-build-arg",
        N,
        "An ARG is declared but never referenced",
        "Remove the ARG, or use it",
        "correctness",
    ),
    RuleInfo(
        "FL512",
        "undefined-var",
        W,
        "A variable is used before any ARG or ENV defines it",
        "Declare it with ARG or ENV first (or fix the name)",
        "correctness",
        buildkit="UndefinedVar",
    ),
    RuleInfo(
        "FL513",
        "pipefail",
        W,
        "A pipe in RUN under bash without pipefail hides failures of the left side",
        'Add SHELL ["/bin/bash", "-o", "pipefail", "-c"] before the RUN (or set -o pipefail)',
        "correctness",
        hadolint=("DL4006",),
    ),
    RuleInfo(
        "FL514",
        "stage-name-casing",
        S,
        "Stage names should be lower case",
        "Write the stage name in lower case",
        "style",
        buildkit="StageNameCasing",
    ),
    RuleInfo(
        "FL515",
        "from-as-casing",
        S,
        "The AS keyword's case does not match FROM's",
        "Write FROM ... AS ... or from ... as ...",
        "style",
        buildkit="FromAsCasing",
    ),
    RuleInfo(
        "FL516",
        "inconsistent-instruction-casing",
        S,
        "An instruction's case differs from the majority of the file",
        "Write every instruction in the same case (upper case is usual)",
        "style",
        buildkit="ConsistentInstructionCasing",
    ),
    RuleInfo(
        "FL517",
        "legacy-key-value-format",
        S,
        'ENV/LABEL use the legacy "key value" form',
        "Write key=value",
        "style",
        buildkit="LegacyKeyValueFormat",
    ),
    RuleInfo(
        "FL518",
        "empty-continuation-line",
        W,
        "An empty line inside a continued instruction (will become an error)",
        "Remove the empty line or end the instruction before it",
        "style",
        buildkit="NoEmptyContinuation",
    ),
    RuleInfo(
        "FL519",
        "reserved-stage-name",
        E,
        "A stage is named like a reserved name (scratch, context)",
        "Rename the stage",
        "correctness",
        buildkit="ReservedStageName",
        hadolint=("DL3063",),
    ),
    RuleInfo(
        "FL520",
        "copy-dest-not-dir",
        E,
        "COPY with several sources needs a destination ending in /",
        "End the destination with /",
        "correctness",
        hadolint=("DL3021",),
    ),
    RuleInfo(
        "FL521",
        "copy-from-later-stage",
        E,
        "COPY --from names a stage defined later in the file",
        "Move the source stage above this one",
        "correctness",
        hadolint=("DL3022",),
    ),
    # -- multi-stage
    RuleInfo(
        "FL601",
        "toolchain-in-final-image",
        W,
        "A single-stage build installs a compiler toolchain and ships it",
        "Build in a builder stage and COPY --from=builder only the artefacts",
        "multi-stage",
    ),
)

#: id -> rule, in catalog order
RULES: dict[str, RuleInfo] = {r.id: r for r in _RULES}

_ALIASES: dict[str, list[RuleInfo]] = {}
for _r in _RULES:
    for _alias in (_r.id, _r.name, _r.buildkit, *_r.hadolint):
        if _alias:
            _ALIASES.setdefault(_alias.lower(), []).append(_r)


def lookup(name: str) -> list[RuleInfo]:
    """The rules ``name`` refers to (forklift id, slug, BuildKit check or hadolint id).

    Unknown names give an empty list (a hadolint pragma for a ShellCheck code,
    say, is not an error).
    """
    return list(_ALIASES.get(name.strip().lower(), ()))


def resolve_ids(names: Iterable[str]) -> set[str]:
    """The forklift ids of every rule named in ``names``."""
    out: set[str] = set()
    for n in names:
        out.update(r.id for r in lookup(n))
    return out


def by_buildkit_name() -> dict[str, RuleInfo]:
    """BuildKit check name -> the forklift rule reproducing it."""
    return {r.buildkit: r for r in _RULES if r.buildkit}
