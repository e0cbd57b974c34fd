"""What docker, podman, skopeo, hadolint and dive users type by habit works, or says in one
line what to use instead (found by following the README on a fresh clone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forklift.cli._template import render
from forklift.errors import UsageError
from tests.helpers import assert_no_traceback, run_cli

DOC = {
    "Id": "sha256:abc",
    "RepoTags": ["a:1", "b:2"],
    "Size": 42,
    "Config": {"Env": ["A=1"], "Labels": {"k": "v"}, "Entrypoint": None, "Tty": False},
}


@pytest.mark.parametrize(
    ("template", "out"),
    [
        ("{{.Id}}", "sha256:abc"),
        ("{{.RepoTags}}", "[a:1 b:2]"),  # Go's %v of a slice
        ("{{json .RepoTags}}", '["a:1","b:2"]'),
        ('{{join .RepoTags ","}}', "a:1,b:2"),
        ('{{index .Config.Labels "k"}}', "v"),
        ("{{.Config.Tty}} {{.Size}}", "false 42"),
        ("{{.Nope}}", "<no value>"),
        ("{{.Config.Labels}}", "map[k:v]"),
        (r"{{.Id}}\t{{upper .Id}}", "sha256:abc\tSHA256:ABC"),
    ],
)
def test_go_template_subset(template: str, out: str) -> None:
    assert render(template, DOC) == out


def test_unsupported_template_actions_are_errors() -> None:
    for template in ("{{.Id | printf}}", "{{range .RepoTags}}{{.}}{{end}}", "{{Id}}"):
        with pytest.raises(UsageError):
            render(template, DOC)


def test_inspect_images_ps_take_templates(busybox_image: str) -> None:
    image_id = json.loads(run_cli("inspect", busybox_image, check=True).stdout)[0]["Id"]
    assert run_cli("inspect", "-f", "{{.Id}}", busybox_image, check=True).stdout == image_id + "\n"
    rows = run_cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert rows.splitlines() == ["busybox:latest"]
    assert run_cli("images", "-a", "-q", check=True).stdout.strip() == image_id[7:19]
    assert run_cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout == ""
    bad = run_cli("images", "--format", "yaml")
    assert bad.returncode == 2 and "neither table nor json nor a Go template" in bad.stderr
    assert_no_traceback(run_cli("inspect", "-f", "{{range .X}}", busybox_image))


def test_management_command_spellings(busybox_image: str) -> None:
    same = ("images", "--format", "{{.ID}} {{.Repository}}")
    assert run_cli("image", "ls", *same[1:], check=True).stdout == run_cli(*same, check=True).stdout
    assert run_cli("container", "ls", "-a", check=True).stdout.startswith("CONTAINER ID")
    run_cli("image", "tag", busybox_image, "other:1", check=True)
    assert run_cli("image", "rm", "other:1", check=True).stdout == "Untagged: other:1\n"


def test_hadolint_spellings(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\nCMD echo hi\n")
    (tmp_path / "cfg.yaml").write_text("ignored: [DL3025]\n")
    r = run_cli("lint", "-f", "json", str(tmp_path / "Dockerfile"))
    assert "FL504" in {f["rule"] for f in json.loads(r.stdout)["findings"]}
    quiet = run_cli(
        "lint", "-f", "json", "-c", str(tmp_path / "cfg.yaml"), str(tmp_path / "Dockerfile")
    )
    assert "FL504" not in {f["rule"] for f in json.loads(quiet.stdout)["findings"]}
    assert "FL504" in run_cli("lint", "-f", "tty", str(tmp_path / "Dockerfile")).stdout


def test_dive_spellings() -> None:
    help_text = run_cli("analyze", "--help", check=True).stdout
    for flag in ("--lowestEfficiency", "--highestWastedBytes", "--highestUserWastedPercent"):
        assert flag in help_text


def test_skopeo_copy_flags_get_one_line() -> None:
    r = run_cli("copy", "--dest-tls-verify=false", "oci:a:1", "docker://localhost:5000/a:1")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--insecure-registry HOST" in r.stderr
    assert "--all-platforms" in run_cli("copy", "--all", "oci:a", "oci:b").stderr
