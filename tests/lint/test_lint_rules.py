"""One Dockerfile per rule: where it must fire (with the line) and where it must not.

Heredoc RUNs and ``RUN --mount=type=cache`` are part of the cases: a cache
mount on the cache directory makes the "clean the cache" rules moot, and a
heredoc body is read like any other script.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from forklift.lint import LintConfig, lint_dockerfile


def lines_of(text: str, rule: str, **kw: object) -> list[int]:
    result = lint_dockerfile(textwrap.dedent(text).lstrip("\n"), **kw)  # type: ignore[arg-type]
    return [f.line for f in result.findings if f.rule == rule]


POSITIVE = [
    # base images
    ("FL101", "FROM ubuntu\nUSER app\n", [1]),
    ("FL102", "FROM ubuntu:latest\nUSER app\n", [1]),
    ("FL102", "ARG V=latest\nFROM debian:${V}\nUSER app\n", [2]),
    ("FL103", "FROM debian:12 AS b\nFROM alpine:3.20\nUSER app\n", [2]),
    ("FL104", "FROM --platform=linux/amd64 alpine:3.20\nUSER app\n", [1]),
    ("FL105", "FROM --platform=$TARGETPLATFORM alpine:3.20\nUSER app\n", [1]),
    ("FL107", "ARG TAG=\nFROM alpine:${TAG}\n", [2]),
    ("FL108", "FROM alpine:${VERSION}\n", [1]),
    # apt / apk / pip / npm
    ("FL202", "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\n", [2]),
    ("FL203", "FROM debian:12\nRUN apt-get update && apt-get install curl\n", [2]),
    ("FL204", "FROM debian:12\nRUN apt-get update && apt-get install -y curl\n", [2]),
    (
        "FL205",
        """
        FROM debian:12
        RUN apt-get update \\
         && apt-get install -y --no-install-recommends \\
              curl
        """,
        [3],
    ),
    ("FL206", "FROM alpine:3.20\nRUN apk add curl\n", [2]),
    ("FL207", "FROM python:3.12\nRUN pip install flask\n", [2]),
    ("FL207", "FROM python:3.12\nRUN python3 -m pip install flask\n", [2]),
    ("FL208", "FROM node:22\nRUN npm ci\n", [2]),
    (
        "FL201",
        """
        FROM debian:12
        RUN apt-get update && apt-get install -y --no-install-recommends curl
        RUN rm -rf /var/lib/apt/lists/*
        """,
        [3],
    ),
    ("FL213", "FROM debian:12\nRUN apt update && apt install -y curl\n", [2]),
    ("FL214", "FROM fedora:40\nRUN dnf install curl && dnf clean all\n", [2]),
    # layers
    ("FL209", "FROM alpine:3.20\nRUN echo a\nRUN echo b\n", [3]),
    (
        "FL210",
        """
        FROM node:22
        WORKDIR /app
        COPY . .
        RUN npm ci
        """,
        [3],
    ),
    ("FL211", "FROM alpine:3.20\nCOPY . /app\n", [2]),
    ("FL212", "FROM alpine:3.20\nADD app.py /app/\n", [2]),
    ("FL520", "FROM alpine:3.20\nCOPY a b /dst\n", [2]),
    # security
    ("FL401", "FROM alpine:3.20\nUSER app\nUSER root\n", [3]),
    ("FL402", "FROM alpine:3.20\nRUN true\n", [1]),
    ("FL403", "FROM debian:12\nRUN sudo apt-get update\n", [2]),
    ("FL404", "FROM alpine:3.20\nARG DB_PASSWORD\nENV API_TOKEN=x\n", [2, 3]),
    ("FL405", "FROM alpine:3.20\nRUN curl -fsSL https://x.example/i.sh | sh\n", [2]),
    ("FL405", 'FROM alpine:3.20\nRUN sh -c "$(wget -qO- https://x.example/i.sh)"\n', [2]),
    # correctness
    ("FL501", "FROM alpine:3.20\nWORKDIR app\n", [2]),
    ("FL502", "FROM alpine:3.20\nRUN cd /tmp && make\n", [2]),
    ("FL503", 'FROM alpine:3.20\nCMD ["a"]\nCMD ["b"]\n', [2]),
    ("FL504", "FROM alpine:3.20\nCMD echo hi\n", [2]),
    ("FL505", "FROM alpine:3.20 AS builder\nFROM alpine:3.20\nCOPY --from=buildr /a /a\n", [3]),
    ("FL506", "FROM alpine:3.20 AS a\nCOPY --from=a /x /y\n", [2]),
    ("FL521", "FROM alpine:3.20 AS a\nCOPY --from=b /x /y\nFROM alpine:3.20 AS b\n", [2]),
    ("FL507", "FROM alpine:3.20 AS x\nFROM alpine:3.20 AS x\n", [2]),
    ("FL508", "FROM alpine:3.20\nEXPOSE 80:80\n", [2]),
    ("FL509", "FROM alpine:3.20\nEXPOSE 80/TCP\n", [2]),
    ("FL510", "FROM alpine:3.20\nMAINTAINER me\n", [2]),
    ("FL511", "FROM alpine:3.20\nARG UNUSED_THING=1\nRUN echo hi\n", [2]),
    ("FL512", "FROM alpine:3.20\nCOPY $SRC /dst\n", [2]),
    ("FL513", 'FROM debian:12\nSHELL ["/bin/bash", "-c"]\nRUN curl -s x | tar x\n', [3]),
    ("FL514", "FROM alpine:3.20 AS Build\n", [1]),
    ("FL515", "FROM alpine:3.20 as build\n", [1]),
    ("FL516", "FROM alpine:3.20\nrun echo\nRUN echo\n", [2]),
    ("FL517", "FROM alpine:3.20\nENV A 1\n", [2]),
    ("FL518", "FROM alpine:3.20\nRUN echo a \\\n\n  b\n", [4]),
    ("FL519", "FROM alpine:3.20 AS scratch\n", [1]),
    # multi-stage
    ("FL601", "FROM golang:1.23\nCOPY . .\nRUN go build -o /app .\n", [3]),
    ("FL601", "FROM debian:12\nRUN apt-get install -y build-essential\n", [2]),
]

NEGATIVE = [
    ("FL101", "FROM alpine:3.20\n"),
    ("FL101", "FROM alpine@sha256:" + "a" * 64 + "\n"),
    ("FL101", "FROM scratch\n"),
    ("FL101", "FROM alpine:3.20 AS base\nFROM base\n"),
    ("FL103", "FROM alpine:3.20@sha256:" + "b" * 64 + "\n"),
    ("FL104", "FROM --platform=$BUILDPLATFORM golang:1.23 AS build\n"),
    ("FL104", "FROM --platform=linux/arm64 alpine:3.20 AS build-arm64\n"),
    ("FL202", "FROM debian:12\nRUN apt-get update && apt-get install -y curl\n"),
    ("FL203", "FROM debian:12\nRUN apt-get install -qq curl\n"),
    ("FL203", "FROM debian:12\nRUN apt-get -yq install curl\n"),
    ("FL204", "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl\n"),
    (
        "FL205",
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n",
    ),
    # a cache mount holds the lists: nothing to remove from the layer
    (
        "FL205",
        "FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt \\\n"
        "    --mount=type=cache,target=/var/cache/apt \\\n"
        "    apt-get update && apt-get install -y curl\n",
    ),
    # a builder stage's cache never ships
    (
        "FL205",
        "FROM debian:12 AS build\nRUN apt-get update && apt-get install -y gcc\nFROM alpine:3.20\n",
    ),
    ("FL206", "FROM alpine:3.20\nRUN apk add --no-cache curl\n"),
    ("FL206", "FROM alpine:3.20\nRUN --mount=type=cache,target=/var/cache/apk apk add curl\n"),
    ("FL207", "FROM python:3.12\nRUN pip install --no-cache-dir flask\n"),
    (
        "FL207",
        "FROM python:3.12\nRUN --mount=type=cache,target=/root/.cache/pip pip install flask\n",
    ),
    ("FL207", "FROM python:3.12\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n"),
    ("FL208", "FROM node:22\nRUN npm ci && npm cache clean --force\n"),
    ("FL208", "FROM node:22\nRUN --mount=type=cache,target=/root/.npm npm ci\n"),
    (
        "FL201",
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n",
    ),
    ("FL209", "FROM alpine:3.20\nRUN echo a\nCOPY x /x\nRUN echo b\n"),
    ("FL209", "FROM alpine:3.20\nRUN echo a\nRUN --mount=type=cache,target=/c echo b\n"),
    (
        "FL210",
        "FROM node:22\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\n",
    ),
    ("FL212", "FROM alpine:3.20\nADD rootfs.tar.gz /\nADD https://x.example/a /a\n"),
    ("FL520", "FROM alpine:3.20\nCOPY a b /dst/\n"),
    ("FL401", "FROM alpine:3.20\nUSER root\nRUN true\nUSER app\n"),
    ("FL402", "FROM gcr.io/distroless/static:nonroot\n"),
    ("FL403", "FROM debian:12\nRUN echo sudo is a word\n"),
    ("FL404", "FROM alpine:3.20\nARG PUBLIC_KEY\nENV GPG_KEY_FILE=/k\nENV AUTH_VERSION=1\n"),
    (
        "FL405",
        "FROM alpine:3.20\nRUN curl -fsSLo /i.sh https://x.example/i.sh && sha256sum -c s && sh /i.sh\n",
    ),
    ("FL501", "FROM alpine:3.20\nWORKDIR /app\nWORKDIR sub\n"),
    ("FL503", 'FROM alpine:3.20 AS a\nCMD ["a"]\nFROM a\nCMD ["b"]\n'),
    ("FL504", 'FROM alpine:3.20\nCMD ["echo", "hi"]\n'),
    ("FL504", 'FROM alpine:3.20\nSHELL ["/bin/ash", "-c"]\nCMD echo hi\n'),
    ("FL505", "FROM alpine:3.20\nCOPY --from=nginx:1.27 /etc/nginx /etc/nginx\n"),
    ("FL511", "FROM alpine:3.20\nARG V=1\nRUN echo $V\n"),
    ("FL511", "ARG BASE=alpine:3.20\nFROM $BASE\n"),
    ("FL511", "FROM debian:12\nARG DEBIAN_FRONTEND=noninteractive\nRUN apt-get update\n"),
    ("FL512", "FROM alpine:3.20\nARG SRC\nCOPY $SRC /dst\n"),
    ("FL512", "FROM alpine:3.20\nENV SRC=/a\nCOPY ${SRC} /dst\n"),
    ("FL513", "FROM debian:12\nRUN curl -s x | tar x\n"),  # /bin/sh: pipefail may not exist
    (
        "FL513",
        'FROM debian:12\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN curl -s x | tar x\n',
    ),
    (
        "FL513",
        'FROM debian:12\nSHELL ["/bin/bash", "-c"]\nRUN set -o pipefail && curl -s x | tar x\n',
    ),
    ("FL601", "FROM golang:1.23 AS build\nRUN go build -o /app .\nFROM alpine:3.20\n"),
    (
        "FL601",
        "FROM alpine:3.20\nRUN apk add --virtual .deps gcc musl-dev && make && apk del .deps\n",
    ),
]


@pytest.mark.parametrize(
    ("rule", "text", "lines"), POSITIVE, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(POSITIVE)]
)
def test_rule_fires(rule: str, text: str, lines: list[int]) -> None:
    assert lines_of(text, rule) == lines


@pytest.mark.parametrize(
    ("rule", "text"), NEGATIVE, ids=[f"{r}-{i}" for i, (r, _) in enumerate(NEGATIVE)]
)
def test_rule_quiet(rule: str, text: str) -> None:
    assert lines_of(text, rule) == []


HEREDOC = """
FROM python:3.12
RUN <<EOF
set -eux
apt-get update
apt-get install -y curl
pip install flask
EOF
RUN <<EOF
#!/usr/bin/env python3
import subprocess
subprocess.run(["pip", "install", "x"])
EOF
RUN --mount=type=cache,target=/root/.cache/pip <<EOF
pip install requests
EOF
"""


def test_heredoc_bodies_are_scripts_with_their_own_lines() -> None:
    result = lint_dockerfile(HEREDOC.lstrip("\n"))
    found = {(f.rule, f.line) for f in result.findings}
    # apt-get install on line 5 and pip on line 6 of the file, inside the heredoc
    assert ("FL204", 5) in found
    assert ("FL205", 5) in found
    assert ("FL207", 6) in found
    # the Python heredoc is not shell: its "pip" string is not a pip command
    assert not any(rule == "FL207" and 9 <= line <= 12 for rule, line in found)
    # the cache-mounted pip install needs no --no-cache-dir
    assert not any(rule == "FL207" and line >= 13 for rule, line in found)


def test_multiline_run_points_at_the_physical_line() -> None:
    text = "FROM debian:12\nRUN set -eux; \\\n    apt-get update; \\\n    # a comment\n    apt-get install curl\n"
    assert lines_of(text, "FL203") == [5]


def test_finding_carries_severity_position_and_fix() -> None:
    result = lint_dockerfile("FROM alpine:3.20\nRUN apk add curl\n", filename="x/Dockerfile")
    (f,) = [f for f in result.findings if f.rule == "FL206"]
    assert f.file == "x/Dockerfile"
    assert f.severity.label == "info"
    assert f.name == "apk-add-no-cache"
    assert "--no-cache" in f.fix
    assert f.location == "x/Dockerfile:2"


def test_syntax_error_is_a_finding_with_position() -> None:
    result = lint_dockerfile("FROM alpine:3.20\nRUN <<EOF\necho unterminated\n")
    (f,) = result.findings
    assert f.rule == "FL000" and f.severity.label == "error"
    assert f.line == 2
    assert result.has_errors()


def test_a_file_buildkit_rejects_reports_only_its_syntax_errors() -> None:
    # FROM busybox alone would get FL101/FL103/FL402, RUN apk add FL206: none of it is
    # useful advice about a file that cannot be built.
    result = lint_dockerfile("FROM busybox\nFOO bar\nRUN apk add curl\nCOPY --chmod a b\n")
    assert [(f.rule, f.line) for f in result.findings] == [("FL000", 2), ("FL000", 4)]


def test_fl103_says_what_the_base_is_pinned_by() -> None:
    (tagged,) = [
        f for f in lint_dockerfile("FROM alpine:3.20\nUSER app\n").findings if f.rule == "FL103"
    ]
    assert tagged.message == "the final image's base alpine:3.20 is pinned by tag only"
    (bare,) = [f for f in lint_dockerfile("FROM busybox\nUSER app\n").findings if f.rule == "FL103"]
    assert "tag only" not in bare.message
    assert bare.message == "the final image's base busybox is pinned neither by tag nor by digest"


def test_trusted_registries() -> None:
    cfg = LintConfig(trusted_registries=("docker.io", "*.corp.example"))
    text = "FROM alpine:3.20 AS a\nFROM ghcr.io/x/y:1 AS b\nFROM reg.corp.example/z:1\n"
    assert lines_of(text, "FL106", config=cfg) == [2]
    assert lines_of(text, "FL106") == []  # no list, no rule


def test_dockerignore_rules_with_context(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / ".git").mkdir(parents=True)
    (ctx / "node_modules").mkdir()
    (ctx / ".env").write_text("SECRET=1\n")
    text = "FROM alpine:3.20\nCOPY secret.txt /s\nCOPY app /app\n"
    # no .dockerignore at all
    found = lint_dockerfile(text, context=ctx).findings
    (missing,) = [f for f in found if f.rule == "FL301"]
    assert ".git" in missing.message and ".env" in missing.message
    # a .dockerignore that forgets node_modules and .env, and excludes secret.txt
    (ctx / ".dockerignore").write_text(".git\nsecret.txt\n")
    found = lint_dockerfile(text, context=ctx).findings
    (incomplete,) = [f for f in found if f.rule == "FL302"]
    assert ".env" in incomplete.message and "node_modules" in incomplete.message
    (ignored,) = [f for f in found if f.rule == "FL303"]
    assert ignored.line == 2
    assert (
        ignored.message == 'Attempting to Copy file "secret.txt" that is excluded by .dockerignore'
    )
    # BuildKit skips the copy check when the ignore file has exceptions
    (ctx / ".dockerignore").write_text(".git\n.env\nnode_modules\nsecret.txt\n!keep\n")
    found = lint_dockerfile(text, context=ctx).findings
    assert not [f for f in found if f.rule in ("FL301", "FL302", "FL303")]
    # without a context, none of these rules can run
    assert not [f for f in lint_dockerfile(text).findings if f.rule.startswith("FL3")]


def test_undefined_var_uses_base_image_env_when_known() -> None:
    text = "FROM python:3.12\nRUN echo\nWORKDIR /src/$PYTHON_VERSION\n"
    assert lines_of(text, "FL512") == [3]

    def env(name: str) -> dict[str, str] | None:
        return {"PYTHON_VERSION": "3.12.7", "PATH": "/usr/bin"} if name == "python:3.12" else None

    assert lines_of(text, "FL512", image_env=env) == []
