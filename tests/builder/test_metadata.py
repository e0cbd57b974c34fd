"""Metadata instructions (and `import --change`) follow Docker's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from forklift.build.metadata import apply_changes, workdir_join
from forklift.dockerfile.values import parse_expose
from forklift.errors import InvalidInput
from forklift.oci.config import ContainerConfig
from forklift.store import Store
from tests.helpers import assert_no_traceback


def test_shell_and_exec_forms_use_shell() -> None:
    c = apply_changes(ContainerConfig(), ["CMD echo hi"])
    assert c.cmd == ("/bin/sh", "-c", "echo hi")
    c = apply_changes(ContainerConfig(), ['SHELL ["/bin/bash", "-eu", "-c"]', "CMD echo hi"])
    assert c.cmd == ("/bin/bash", "-eu", "-c", "echo hi")
    c = apply_changes(ContainerConfig(), ['CMD ["a", "b c"]'])
    assert c.cmd == ("a", "b c")


def test_entrypoint_drops_inherited_cmd_only() -> None:
    base = ContainerConfig(cmd=("inherited",))
    assert apply_changes(base, ['ENTRYPOINT ["x"]']).cmd is None
    assert apply_changes(base, ['CMD ["mine"]', 'ENTRYPOINT ["x"]']).cmd == ("mine",)


def test_env_expands_with_the_env_before_the_instruction() -> None:
    c = apply_changes(ContainerConfig(env=("A=old",)), ["ENV A=new B=$A", "ENV C=${A}-x"])
    assert c.env_dict() == {"A": "new", "B": "old", "C": "new-x"}


def test_labels_volumes_user_stopsignal_healthcheck_onbuild() -> None:
    c = apply_changes(
        ContainerConfig(),
        [
            'LABEL a=1 "b c"="d e"',
            "VOLUME /data /logs",
            'VOLUME ["/data"]',
            "USER app:app",
            "STOPSIGNAL SIGINT",
            "HEALTHCHECK --interval=5s --retries=2 CMD true",
            "ONBUILD RUN echo child",
        ],
    )
    assert c.labels == {"a": "1", "b c": "d e"}
    assert c.volumes == ("/data", "/logs")
    assert c.user == "app:app"
    assert c.stop_signal == "SIGINT"
    assert (
        c.healthcheck is not None
        and c.healthcheck.interval == 5_000_000_000
        and c.healthcheck.retries == 2
    )
    assert c.healthcheck.test == ("CMD-SHELL", "true")  # shell form, as docker stores it
    exec_form = apply_changes(ContainerConfig(), ['HEALTHCHECK CMD ["true"]']).healthcheck
    assert exec_form is not None and exec_form.test == ("CMD", "true")
    assert apply_changes(ContainerConfig(), ["HEALTHCHECK NONE"]).healthcheck.test == ("NONE",)  # type: ignore[union-attr]
    assert c.on_build == ("RUN echo child",)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("80", ["80/tcp"]),
        ("53/udp", ["53/udp"]),
        ("7000-7002", ["7000/tcp", "7001/tcp", "7002/tcp"]),
        ("0", ["0/tcp"]),  # BuildKit accepts port 0
        ("8080:80", ["80/tcp"]),  # the host part is ignored (with a check warning)
        ("80/TCP", ["80/tcp"]),
    ],
)
def test_expose_ports(word: str, expected: list[str]) -> None:
    assert list(parse_expose(word).ports) == expected


@pytest.mark.parametrize("bad", ["70000", "x", "10-5", "80/http", "1.2.3.4.5:80:80"])
def test_bad_ports(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_expose(bad)


def test_import_change_expose_and_stopsignal_follow_the_front_end() -> None:
    c = apply_changes(ContainerConfig(), ["EXPOSE 8080:80 0 53/UDP", "STOPSIGNAL 100"])
    assert c.exposed_ports == ("0/tcp", "53/udp", "80/tcp")  # words sorted, as BuildKit does
    assert c.stop_signal == "100"


def test_workdir_joins_relative_paths() -> None:
    assert workdir_join("", "app") == "/app"
    assert workdir_join("/app", "src/../lib") == "/app/lib"
    assert workdir_join("/app", "/abs") == "/abs"


@pytest.mark.parametrize("change", ["RUN true", "FROM x", "COPY a b", "BOGUS x", "STOPSIGNAL NOPE"])
def test_rejected_changes(change: str) -> None:
    with pytest.raises(InvalidInput):
        apply_changes(ContainerConfig(), [change])


def test_import_change_on_the_cli(home: Path, busybox_rootfs_tar: Path, cli) -> None:
    r = cli(
        "import",
        str(busybox_rootfs_tar),
        "bb:c",
        "-c",
        'CMD ["sh"]',
        "-c",
        "ENV PATH=/bin",
        "-c",
        "WORKDIR /tmp",
    )
    assert r.returncode == 0, r.stderr
    config = Store.open().resolve("bb:c").config
    assert config is not None
    assert config.config.cmd == ("sh",)
    assert config.config.env_dict() == {"PATH": "/bin"}
    assert config.config.working_dir == "/tmp"
    bad = cli("import", str(busybox_rootfs_tar), "bb:d", "-c", "RUN rm -rf /")
    assert bad.returncode != 0
    assert_no_traceback(bad)
