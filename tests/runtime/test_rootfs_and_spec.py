"""User resolution, in-root path resolution and config.json contents (no runtime needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forklift.errors import RuntimeFailure, UsageError
from forklift.oci.config import ContainerConfig
from forklift.runtime.bundle import create_bundle, find_stubs, remove_stubs
from forklift.runtime.containers import (
    RunOptions,
    command_for,
    container_spec,
    expand_env,
    parse_env_file,
)
from forklift.runtime.rootfs import ExecUser, find_executable, resolve_in_root, resolve_user
from forklift.runtime.spec import BindMount, ContainerSpec, TmpfsMount, env_with_defaults

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
broken line
app:x:1000:1000:App:/home/app:/bin/sh
svc:x:1500:44::/srv:/bin/false
nohome:x:1600:1600:::/bin/sh
"""
GROUP = """root:x:0:
app:x:1000:
audio:x:29:app
video:x:44:nobody,app,svc
staff:x:50:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", ExecUser(0, 0, (0,), "/root", "root")),
        ("root", ExecUser(0, 0, (0,), "/root", "root")),
        ("app", ExecUser(1000, 1000, (1000, 29, 44), "/home/app", "app")),
        ("1000", ExecUser(1000, 1000, (1000, 29, 44), "/home/app", "app")),
        ("svc", ExecUser(1500, 44, (44,), "/srv", "svc")),
        # The primary group is always also a supplementary group (runc/podman/BuildKit since
        # CVE-2023-25173). An explicit group replaces the primary group and drops the implicit
        # memberships.
        ("app:staff", ExecUser(1000, 50, (50,), "/home/app", "app")),
        ("app:7", ExecUser(1000, 7, (7,), "/home/app", "app")),
        ("1000:50", ExecUser(1000, 50, (50,), "/home/app", "app")),
        # Numeric ids need no entry; the home defaults to /.
        ("4242", ExecUser(4242, 0, (0,), "/", None)),
        ("4242:4343", ExecUser(4242, 4343, (4343,), "/", None)),
        ("nohome", ExecUser(1600, 1600, (1600,), "/", "nohome")),
    ],
)
def test_resolve_user(rootfs: Path, user: str, expected: ExecUser) -> None:
    assert resolve_user(rootfs, user) == expected


def test_unknown_names_are_errors(rootfs: Path) -> None:
    with pytest.raises(RuntimeFailure, match="unable to find user nosuch"):
        resolve_user(rootfs, "nosuch")
    with pytest.raises(RuntimeFailure, match="unable to find group nogroup"):
        resolve_user(rootfs, "app:nogroup")


def test_extra_groups(rootfs: Path) -> None:
    user = resolve_user(rootfs, "app", ("staff", "12345", "audio"))
    assert user.additional_gids == (1000, 29, 44, 50, 12345)


def test_no_passwd_file_means_root_and_numeric_ids(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "") == ExecUser(0, 0, (0,), "/", None)
    assert resolve_user(tmp_path, "12:34") == ExecUser(12, 34, (34,), "/", None)
    with pytest.raises(RuntimeFailure):
        resolve_user(tmp_path, "app")


def test_passwd_symlink_cannot_escape_the_root(tmp_path: Path) -> None:
    # On the host, /etc/passwd has root; the image's link must resolve inside the image.
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "passwd").write_text("root:x:0:0::/from-image:/bin/sh\n")
    (root / "etc" / "passwd").symlink_to("../../../../../../../elsewhere/passwd")
    assert resolve_in_root(root, "/etc/passwd") == root / "elsewhere" / "passwd"
    assert resolve_user(root, "").home == "/from-image"
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("/etc/../../etc/shadow")
    assert resolve_in_root(root, "/etc/passwd") == root / "etc" / "shadow"
    assert resolve_user(root, "") == ExecUser(0, 0, (0,), "/", None)


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(RuntimeFailure, match="symbolic links"):
        resolve_in_root(tmp_path, "/a/x")


def test_find_executable(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "bin" / "tool", 0o755)
    (tmp_path / "bin" / "data").write_text("x")
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr" / "bin").symlink_to("/bin")
    assert find_executable(tmp_path, "tool", "/usr/bin:/bin") == ("/usr/bin/tool", None)
    assert find_executable(tmp_path, "nope", "/bin") == (None, "executable file not found in $PATH")
    assert find_executable(tmp_path, "/bin/data", None)[1] == "permission denied"
    assert find_executable(tmp_path, "/bin", None)[1] == "is a directory"
    assert find_executable(tmp_path, "/nope", None)[1] == "no such file or directory"
    assert find_executable(tmp_path, "./tool", None, cwd="/bin") == ("./tool", None)


def test_env_defaults_and_override_order() -> None:
    env = env_with_defaults(("A=1", "PATH=/x", "A=2", "EMPTY="), "/home/u")
    assert env == ["A=2", "PATH=/x", "EMPTY=", "HOME=/home/u"]
    assert env_with_defaults((), "/")[0].startswith("PATH=/usr/local/sbin:")


def test_docker_entrypoint_and_cmd_rules() -> None:
    image = ContainerConfig(entrypoint=("/ep", "-x"), cmd=("default",))
    assert command_for(image, RunOptions()) == ("/ep", "-x", "default")
    assert command_for(image, RunOptions(command=("a", "b"))) == ("/ep", "-x", "a", "b")
    assert command_for(image, RunOptions(entrypoint="sh")) == ("sh",)
    assert command_for(image, RunOptions(entrypoint="sh", command=("-c", "x"))) == ("sh", "-c", "x")
    assert command_for(image, RunOptions(entrypoint="", command=("ls",))) == ("ls",)
    with pytest.raises(UsageError, match="no command"):
        container_spec(ContainerConfig(), RunOptions(), "0" * 64)


def test_container_spec_env_order_and_workdir() -> None:
    config = ContainerConfig(env=("PATH=/bin", "A=image"), working_dir="/srv", user="app")
    spec = container_spec(
        config, RunOptions(command=("x",), env=("A=cli",), network="none", tty=True), "ab" * 32
    )
    assert spec.env == ("HOSTNAME=abababababab", "TERM=xterm", "PATH=/bin", "A=image", "A=cli")
    assert (spec.cwd, spec.user, spec.hostname) == ("/srv", "app", "abababababab")
    with pytest.raises(UsageError, match="absolute"):
        container_spec(config, RunOptions(command=("x",), workdir="rel"), "ab" * 32)


def test_env_file_and_host_passthrough(tmp_path: Path) -> None:
    f = tmp_path / "env"
    f.write_text("# comment\n\nA=1\nB= spaced value \nFROM_HOST\nMISSING\nC=x=y\n")
    assert parse_env_file(f, {"FROM_HOST": "h"}) == [
        "A=1",
        "B= spaced value ",
        "FROM_HOST=h",
        "C=x=y",
    ]
    f.write_text("OK=1\nBAD KEY=2\n")
    with pytest.raises(Exception, match=r"env:2: invalid variable name"):
        parse_env_file(f, {})
    assert expand_env(("X=1", "Y", "Z"), {"Y": "y"}) == ["X=1", "Y=y"]


def _config(spec: ContainerSpec, root: Path, tmp_path: Path) -> dict:
    bundle = create_bundle(tmp_path / "bundle", spec, root, container_id="c" * 64)
    return bundle.config  # type: ignore[return-value]


def test_config_json_for_root_and_none_network(rootfs: Path, tmp_path: Path) -> None:
    cfg = _config(ContainerSpec(args=("true",), network="none"), rootfs, tmp_path)
    proc = cfg["process"]
    assert proc["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert proc["noNewPrivileges"] is True
    assert len(proc["capabilities"]["bounding"]) == 14
    assert proc["capabilities"]["effective"] == proc["capabilities"]["bounding"]
    assert "HOME=/root" in proc["env"]
    types = [n["type"] for n in cfg["linux"]["namespaces"]]
    assert sorted(types) == ["ipc", "mount", "network", "pid", "uts"]
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    assert "/proc/sys" in cfg["linux"]["readonlyPaths"]
    assert cfg["hostname"] == "c" * 12
    dests = {m["destination"]: m for m in cfg["mounts"]}
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"} <= set(dests)
    assert "ro" in dests["/sys"]["options"]
    assert "ro" in dests["/etc/resolv.conf"]["options"]
    assert "rlimits" not in proc


def test_config_json_for_a_user_host_network_and_mounts(rootfs: Path, tmp_path: Path) -> None:
    spec = ContainerSpec(
        args=("true",),
        user="app",
        network="host",
        mounts=(
            BindMount(str(tmp_path), "/data", readonly=True),
            BindMount(str(tmp_path), "/rw"),
            TmpfsMount("/scratch", size=1 << 20),
        ),
    )
    cfg = _config(spec, rootfs, tmp_path)
    proc = cfg["process"]
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 29, 44]}
    # A non-root process keeps the bounding set only.
    assert proc["capabilities"]["effective"] == [] and proc["capabilities"]["permitted"] == []
    assert "network" not in [n["type"] for n in cfg["linux"]["namespaces"]]
    dests = {m["destination"]: m for m in cfg["mounts"]}
    assert "ro" in dests["/data"]["options"] and dests["/data"]["source"] == str(tmp_path)
    assert "rw" in dests["/rw"]["options"]
    assert dests["/scratch"]["type"] == "tmpfs" and "size=1048576" in dests["/scratch"]["options"]


def test_spec_validation() -> None:
    with pytest.raises(UsageError, match="no command"):
        ContainerSpec(args=())
    with pytest.raises(UsageError, match="unknown network"):
        ContainerSpec(args=("x",), network="bridge")
    with pytest.raises(UsageError, match="absolute"):
        ContainerSpec(args=("x",), mounts=(BindMount("rel", "/x"),))


def test_stubs_are_found_and_removed_with_parent_times_restored(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "resolv.conf").write_text("existing")
    os.utime(root / "etc", ns=(1, 1_000_000_000))
    stubs = find_stubs(root, ["/etc/hosts", "/etc/resolv.conf", "/a/b/c", "/proc"])
    assert {s.top for s in stubs} == {("etc", "hosts"), ("a",), ("proc",)}
    # What the runtime would do: create mount points.
    (root / "etc" / "hosts").touch()
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "proc").mkdir()
    (root / "proc" / "written-by-run").touch()
    remove_stubs(root, stubs)
    assert not (root / "etc" / "hosts").exists()
    assert not (root / "a").exists()
    assert (root / "proc" / "written-by-run").exists()  # not empty: kept
    assert (root / "etc" / "resolv.conf").read_text() == "existing"
    assert os.stat(root / "etc").st_mtime_ns == 1_000_000_000


def test_every_missing_stub_under_one_new_directory_is_removed(tmp_path: Path) -> None:
    # An image without /etc: /etc and the three files the runtime mounts there are all stubs.
    root = tmp_path / "r"
    root.mkdir()
    os.utime(root, ns=(1, 2_000_000_000))
    targets = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]
    stubs = find_stubs(root, targets)
    (root / "etc").mkdir()
    for name in ("hosts", "resolv.conf", "hostname"):
        (root / "etc" / name).touch()
    remove_stubs(root, stubs)
    assert not (root / "etc").exists()
    assert os.stat(root).st_mtime_ns == 2_000_000_000


def test_stub_removal_never_follows_a_symlink_the_run_put_in_place(tmp_path: Path) -> None:
    # The attack of issue 10: the run moves the stub's parent away and puts a symlink to a
    # host directory in its place; the empty host file of the same name must survive.
    host = tmp_path / "host"
    host.mkdir()
    (host / "victimfile").touch()
    (host / "victimdir").mkdir()
    (host / "hosts").touch()
    root = tmp_path / "r"
    root.mkdir()
    stubs = find_stubs(root, ["/zz/victimfile", "/zz/victimdir", "/etc/hosts"])
    (root / "zz").mkdir()
    (root / "zz" / "victimfile").touch()
    (root / "zz" / "victimdir").mkdir()
    (root / "etc").mkdir()
    (root / "etc" / "hosts").touch()
    # What the container does after the mounts are made:
    (root / "yy").mkdir()
    os.rename(root / "zz", root / "yy" / "zz")
    (root / "zz").symlink_to(host)
    os.rename(root / "etc", root / "yy" / "etc")
    (root / "etc").symlink_to(host)
    remove_stubs(root, stubs)
    assert (host / "victimfile").exists()
    assert (host / "victimdir").is_dir()
    assert (host / "hosts").exists()
    assert (root / "zz").is_symlink()
    assert (root / "yy" / "zz" / "victimfile").exists()  # moved away: no longer a stub
