"""Running the official OCI distribution-spec conformance suites against a registry.

Two suites live in ``../shared/tools/conformance/`` (see its README): the
released v1.1.1 ginkgo suite and the main-branch plain-Go suite, which with
``OCI_VERSION=dev`` also checks what the unreleased spec adds. Used by
``tests/registry_server/test_conformance_suites.py`` and ``bench/conformance.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

V1_NAMES = {"OCI_NAMESPACE": "conf/repo", "OCI_CROSSMOUNT_NAMESPACE": "conf/other"}
MAIN_OPTIONAL = {
    "OCI_VERSION": "dev",
    "OCI_API_BLOBS_UPLOAD_CANCEL": "true",
    "OCI_API_MANIFESTS_TAG_PARAM": "true",
}
_V1_SUMMARY = re.compile(r"(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped")


@dataclass(frozen=True)
class SuiteResult:
    """Counts of one suite run, and the names of what failed or was skipped."""

    suite: str
    passed: int
    failed: int
    skipped: int
    failures: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()
    report: Path = field(default=Path())

    def counts(self) -> str:
        return f"{self.passed}/{self.failed}/{self.skipped}"


def _env(user: str | None, password: str | None, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCI_")}
    if user is not None and password is not None:
        env["OCI_USERNAME"], env["OCI_PASSWORD"] = user, password
    env.update(extra)
    return env


def run_v1(
    tools: Path,
    url: str,
    workdir: Path,
    *,
    automatic_crossmount: bool,
    user: str | None = None,
    password: str | None = None,
) -> SuiteResult:
    """The v1.1.1 suite, all four workflows, against ``url`` (``http://host:port``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = _env(
        user,
        password,
        {
            "OCI_ROOT_URL": url,
            **V1_NAMES,
            "OCI_TEST_PULL": "1",
            "OCI_TEST_PUSH": "1",
            "OCI_TEST_CONTENT_DISCOVERY": "1",
            "OCI_TEST_CONTENT_MANAGEMENT": "1",
            "OCI_AUTOMATIC_CROSSMOUNT": "1" if automatic_crossmount else "0",
            "OCI_REPORT_DIR": str(workdir),
        },
    )
    proc = subprocess.run(
        [str(tools / "conformance" / "conformance-v1.1.1.test"), "-ginkgo.no-color"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (workdir / "output.txt").write_text(proc.stdout + proc.stderr)
    m = _V1_SUMMARY.search(proc.stdout)
    if m is None:
        raise RuntimeError(f"v1.1.1 suite printed no summary:\n{proc.stdout[-3000:]}")
    failures, skips = _junit_names(workdir / "junit.xml")
    return SuiteResult(
        "v1.1.1", int(m.group(1)), int(m.group(2)), int(m.group(4)), failures, skips, workdir
    )


def run_main(
    tools: Path,
    host: str,
    workdir: Path,
    *,
    sparse: bool = False,
    user: str | None = None,
    password: str | None = None,
) -> SuiteResult:
    """The main-branch suite with the unreleased spec's checks, against ``host:port``."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = _env(
        user,
        password,
        {
            "OCI_REGISTRY": host,
            "OCI_TLS": "disabled",
            "OCI_REPO1": "conf/m1",
            "OCI_REPO2": "conf/m2",
            "OCI_RESULTS_DIR": str(workdir),
            **MAIN_OPTIONAL,
            **({"OCI_DATA_SPARSE": "true"} if sparse else {}),
        },
    )
    proc = subprocess.run(
        [str(tools / "conformance" / "conformance-main")],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (workdir / "output.txt").write_text(proc.stdout + proc.stderr)
    junit = workdir / "junit.xml"
    if not junit.exists():
        raise RuntimeError(f"main suite wrote no junit.xml:\n{proc.stdout[-3000:]}")
    root = ET.parse(junit).getroot()
    tests = int(root.get("tests", "0"))
    failed = int(root.get("failures", "0")) + int(root.get("errors", "0"))
    skipped = int(root.get("skipped", "0"))
    failures, skips = _junit_names(junit)
    return SuiteResult("main", tests - failed - skipped, failed, skipped, failures, skips, workdir)


def _junit_names(junit: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not junit.exists():
        return (), ()
    failures: list[str] = []
    skips: list[str] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name") or ""
        status = case.get("status") or ""
        if status in ("failed", "failure") or case.find("failure") is not None:
            failures.append(name)
        elif status == "skipped" or case.find("skipped") is not None:
            skips.append(name)
    return tuple(dict.fromkeys(failures)), tuple(dict.fromkeys(skips))
