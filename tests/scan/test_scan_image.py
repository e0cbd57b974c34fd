"""``forklift scan`` on real images: built by forklift (runc + overlayfs), and Debian 12 minbase.

The secrets image keeps an AWS key pair in a file that a later RUN deletes, a
GitHub token in ENV and a docker config.json copied from the context: every
one must be found with its layer and Dockerfile line. Clean images give nothing.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from forklift.scan.db.sources import parse_specs
from forklift.scan.db.update import update
from tests.debian import debootstrap_tar
from tests.helpers import assert_no_traceback, run_cli

pytestmark = pytest.mark.root

AWS_ID = "AKIAZ7VRSQ5BDKQ3TOKA"
AWS_SECRET = "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"
GH = "ghp_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"

DOCKERFILE = f"""\
FROM busybox
COPY credentials /root/.aws/credentials
COPY .docker/config.json /root/.docker/config.json
RUN rm /root/.aws/credentials
ENV GITHUB_TOKEN={GH}
"""


def _secrets_context(ctx: Path) -> Path:
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "credentials").write_text(
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
    )
    (ctx / ".docker").mkdir()
    (ctx / ".docker/config.json").write_text(
        json.dumps({"auths": {"registry.local": {"auth": "dXNlcjpzM2NyZXQ="}}})
    )
    return ctx


def test_secrets_in_deleted_files_env_and_context_are_found(
    busybox_image: str, scan_home: Path, tmp_path: Path
) -> None:
    ctx = _secrets_context(tmp_path / "ctx")
    run_cli("build", "-t", "secrets:1", "--progress", "plain", str(ctx), check=True)
    r = run_cli("scan", "--format", "json", "secrets:1")
    assert r.returncode == 0, r.stderr
    for secret in (AWS_ID, AWS_SECRET, GH, "dXNlcjpzM2NyZXQ="):
        assert secret not in r.stdout
    doc = json.loads(r.stdout)
    secrets = [s for res in doc["Results"] if res["Class"] == "secret" for s in res["Secrets"]]
    by_rule = {(s["RuleID"], s["Target"]): s for s in secrets}
    aws_id = by_rule[("aws-access-key-id", "/root/.aws/credentials")]
    aws_secret = by_rule[("aws-secret-access-key", "/root/.aws/credentials")]
    docker = by_rule[("docker-config-auth", "/root/.docker/config.json")]
    assert (aws_id["Layer"]["Line"], aws_secret["Layer"]["Line"], docker["Layer"]["Line"]) == (
        2,
        2,
        3,
    )
    # deleted by the RUN at line 4, but still in the layer COPY wrote
    assert aws_id["DeletedBy"]["Line"] == 4 and docker["DeletedBy"] is None
    assert ".dockerignore" in aws_id["Fix"]
    layers = doc["Metadata"]["DiffIDs"]
    assert aws_id["Layer"]["DiffID"] == layers[aws_id["Layer"]["Index"]]
    assert ("github-pat", "config:Env[1]") in by_rule or any(
        s["RuleID"] == "github-pat" and s["Target"].startswith("config:Env") for s in secrets
    )
    # the table says the same, with the Dockerfile line and the fix
    table = run_cli("scan", "--scanners", "secret", "secrets:1").stdout
    assert "Dockerfile:2" in table and "deleted by Dockerfile:4" in table
    # exit code: --exit-code acts on secrets too; --severity filters them
    assert run_cli("scan", "--exit-code", "5", "secrets:1").returncode == 5
    assert run_cli("scan", "--exit-code", "5", "--severity", "LOW", "secrets:1").returncode == 0


def test_clean_image_gives_nothing(busybox_image: str, scan_home: Path) -> None:
    r = run_cli("scan", "--format", "json", "--exit-code", "1", busybox_image)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert all(not res.get("Vulnerabilities") and not res.get("Secrets") for res in doc["Results"])


def test_build_scan_tags_only_a_passing_image(
    busybox_image: str, scan_home: Path, tmp_path: Path
) -> None:
    ctx = _secrets_context(tmp_path / "ctx")
    r = run_cli(
        "build", "-t", "leaky:1", "--scan", "--scan-exit-code", "3", "--progress", "plain", str(ctx)
    )
    assert r.returncode == 3, r.stderr
    assert_no_traceback(r)
    assert "aws-access-key-id" in r.stderr and "not tagged" in r.stderr
    assert "leaky" not in run_cli("images").stdout
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "Dockerfile").write_text("FROM busybox\nRUN echo ok > /ok\n")
    report = tmp_path / "scan.json"
    r = run_cli("build", "-t", "clean:1", "--scan", "--scan-exit-code", "3", "--scan-format", "json",
                "--scan-output", str(report), "--progress", "plain", str(clean))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "clean" in run_cli("images").stdout
    assert json.loads(report.read_text())["ArtifactType"] == "container_image"


# -- Debian 12 minbase (debootstrap: network on the first run, then cached) ------------------


@pytest.fixture(scope="session")
def minbase_tar() -> Path:
    return debootstrap_tar("debian-bookworm-minbase")


def _installed(tar: Path, tmp: Path) -> dict[str, tuple[str, str, str]]:
    """dpkg-query's own view: package -> (version, source, source version)."""
    admin = tmp / "dpkg"
    (admin / "info").mkdir(parents=True)
    with tarfile.open(tar) as tf:
        member = tf.getmember("./var/lib/dpkg/status")
        (admin / "status").write_bytes(tf.extractfile(member).read())  # type: ignore[union-attr]
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", "${Package} ${Version} ${source:Package} ${source:Version}\\n"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.network
@pytest.mark.slow
def test_debian_minbase(minbase_tar: Path, home: Path, tmp_path: Path) -> None:
    """Tracker statuses for the packages dpkg says are installed; no secret; no upstream match."""
    installed = _installed(minbase_tar, tmp_path)
    sources = {src: srcver for _v, src, srcver in installed.values()}
    # every source gets one open CVE, one fixed in a later upload, one fixed in the installed one,
    # plus an npm/PyPI record of the same name (an upstream advisory, which must never match)
    tracker: dict[str, dict] = {}  # type: ignore[type-arg]
    records = []
    for src, ver in sources.items():
        tracker[src] = {
            f"CVE-OPEN-{src}": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}},
            f"CVE-LATER-{src}": {"releases": {"bookworm": {"status": "resolved", "fixed_version": ver + "+fix1", "urgency": "high"}}},
            f"CVE-DONE-{src}": {"releases": {"bookworm": {"status": "resolved", "fixed_version": ver, "urgency": "high"}}},
        }  # fmt: skip
        records.append({"id": f"GHSA-{src}", "affected": [{"package": {"ecosystem": "npm", "name": src},
                        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]})  # fmt: skip
    (tmp_path / "tracker.json").write_text(json.dumps(tracker))
    (tmp_path / "osv.json").write_text(json.dumps(records))
    update(
        parse_specs([f"debian={tmp_path}/tracker.json", f"osv={tmp_path}/osv.json"]),
        path=home / "db" / "vuln.db",
    )
    run_cli("import", str(minbase_tar), "minbase:12", check=True)
    r = run_cli("scan", "--format", "json", "minbase:12")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["Metadata"]["OS"] == {"Family": "debian", "Name": "12", "Codename": "bookworm"}
    os_result = next(res for res in doc["Results"] if res["Class"] == "os-pkgs")
    assert os_result["Packages"] == len(installed)
    got = {(v["PkgName"], v["VulnerabilityID"]): v for v in os_result["Vulnerabilities"]}
    expected = set()
    for pkg, (_v, src, _sv) in installed.items():
        expected.add((pkg, f"CVE-OPEN-{src}"))
        expected.add((pkg, f"CVE-LATER-{src}"))
    assert set(got) == expected
    for (pkg, vid), v in got.items():
        assert v["SrcVersion"] == installed[pkg][2]
        if vid.startswith("CVE-LATER"):
            assert v["FixedVersion"] == installed[pkg][2] + "+fix1" and v["Severity"] == "HIGH"
        else:
            assert v["Status"] == "affected" and v["FixedVersion"] == ""
        assert v["DataSource"] == ["debian"]
    assert all(res["Class"] != "secret" for res in doc["Results"])  # no false positive secret


# -- real PyPI wheels installed by pip, one removed later (PyPI: network) -----------------------

WHEELS = {"requests": "2.20.0", "urllib3": "1.24.3", "Jinja2": "2.10", "idna": "2.7", "Flask": "0.12.2",
          "Django": "2.2.24"}  # fmt: skip
REMOVED = "Django"


@pytest.mark.network
@pytest.mark.slow
def test_pip_installed_wheels(scan_home: Path, tmp_path: Path, corpus: Path) -> None:
    """Exactly the advisories the records say for each installed wheel; none for the removed one."""
    import sys

    from tests.scan.test_match_pypi import _expected, _records

    tar = debootstrap_tar("debian-bookworm-python3", ("python3", "python3-pip"))
    run_cli("import", str(tar), "debian-python:bookworm", check=True)
    ctx = tmp_path / "ctx"
    (ctx / "wheels").mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
         "-d", str(ctx / "wheels"), *(f"{n}=={v}" for n, v in WHEELS.items())],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (ctx / "Dockerfile").write_text(
        "FROM debian-python:bookworm\n"
        "COPY wheels /wheels\n"
        "RUN pip install --no-deps --no-index --break-system-packages /wheels/*.whl\n"
        f"RUN pip uninstall -y --break-system-packages {REMOVED}\n"
    )
    r = run_cli("build", "-t", "pyapp:1", "--progress", "plain", str(ctx))
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(run_cli("scan", "--format", "json", "pyapp:1").stdout)
    py = next(res for res in doc["Results"] if res["Target"] == "Python")
    records = _records(corpus)
    got: dict[str, set[str]] = {}
    for v in py["Vulnerabilities"]:
        got.setdefault(v["PkgName"].lower(), set()).update(
            i for i in [v["VulnerabilityID"], *v["Aliases"]] if i.startswith("PYSEC-")
        )
        assert v["Layer"]["Line"] == 3 and v["Layer"]["InBaseImage"] is False
        assert "Dockerfile:3" in v["Fix"]
    for name, version in WHEELS.items():
        expected = set() if name == REMOVED else _expected(records, name, version)
        assert got.get(name.lower(), set()) == expected, name
    # Debian's own python3 packages are dpkg packages, never matched against PyPI records
    assert all(
        not v["PkgPath"].startswith("usr/lib/python3/dist-packages") for v in py["Vulnerabilities"]
    )
