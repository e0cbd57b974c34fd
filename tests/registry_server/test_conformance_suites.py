"""The official conformance suites, one full pass per configuration, against `forklift serve`.

The suites come from ``../shared/tools/conformance`` (``need_tools()`` skips
without it; CI sets FORKLIFT_TEST_REQUIRE_SHARED so that a missing copy fails).
v1.1.1 must have no failures (its 4 skips are specs that do not apply to a
configuration, such as the other crossmount mode); the main suite with the
unreleased spec's checks must have neither failures nor skips. Repeated runs
(20 in a row per configuration) are ``bench/conformance.py --runs 20``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import need_tools
from tests.registry_server.conformance import SuiteResult, run_main, run_v1
from tests.registry_server.conftest import need
from tests.registry_server.servers import Server, start_forklift

USER, PASSWORD = "conformance", "c0nformance-pass"


@dataclass(frozen=True)
class Setup:
    auth: str  # none | htpasswd | token
    args: tuple[str, ...] = ()
    sparse: bool = False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    started: list[Server] = []

    def start(setup: Setup) -> Server:
        args = ["--gc-interval", "0", "--access-log", "", *setup.args]
        if setup.auth != "none":
            out = subprocess.run(
                [need("htpasswd"), "-Bbn", USER, PASSWORD],
                capture_output=True,
                text=True,
                check=True,
            )
            (tmp_path / "users").write_text(out.stdout)
            args += ["--htpasswd", str(tmp_path / "users")]
            if setup.auth == "token":
                args.append("--token-auth")
        if setup.sparse:
            (tmp_path / "sparse.yaml").write_text("storage: {sparse_index: true}\n")
            args += ["--config", str(tmp_path / "sparse.yaml")]
        server = start_forklift(tmp_path / "root", *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _creds(setup: Setup) -> dict[str, str]:
    return {} if setup.auth == "none" else {"user": USER, "password": PASSWORD}


def _explain(result: SuiteResult) -> str:
    return (
        f"{result.suite}: {result.counts()} (pass/fail/skip); report in {result.report}\n"
        f"failed: {list(result.failures)[:10]}\nskipped: {list(result.skips)[:10]}"
    )


V1 = {
    "no-auth": (Setup("none"), True),
    "htpasswd": (Setup("htpasswd"), False),
    "token": (Setup("token"), False),
}


@pytest.mark.parametrize("name", list(V1))
def test_v1_1_1_suite(serve, tmp_path: Path, name: str) -> None:
    tools = need_tools()
    setup, crossmount = V1[name]
    server = serve(setup)
    result = run_v1(
        tools, server.url, tmp_path / "v1", automatic_crossmount=crossmount, **_creds(setup)
    )
    assert result.failed == 0, _explain(result)
    assert result.passed == 75 and result.skipped == 4, _explain(result)


MAIN = {
    "no-auth": Setup("none"),
    # a mount without ?from= under auth is opt-in (the suite's "mount anonymous")
    "htpasswd": Setup("htpasswd", ("--automatic-mount",)),
    "token": Setup("token", ("--automatic-mount",)),
    "sparse": Setup("none", sparse=True),
}


@pytest.mark.parametrize("name", list(MAIN))
def test_main_suite_with_the_unreleased_spec(serve, tmp_path: Path, name: str) -> None:
    tools = need_tools()
    setup = MAIN[name]
    server = serve(setup)
    result = run_main(tools, server.host, tmp_path / "main", sparse=setup.sparse, **_creds(setup))
    assert result.failed == 0 and result.skipped == 0, _explain(result)
    assert result.passed > 900, _explain(result)
