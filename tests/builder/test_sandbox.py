"""What a RUN step sees of the build machine, and what its layer keeps (issue 10, items 2-3).

* The host name is ``buildkitsandbox`` (BuildKit's), whatever the network, in
  ``uname -n``, ``/etc/hostname`` and ``/etc/hosts``; ``--build-arg
  BUILDKIT_SANDBOX_HOSTNAME`` replaces it. Nothing of the machine's name or its
  ``/etc/hosts`` shows, so two machines build the same layers.
* Layers keep only ``security.capability`` among extended attributes, as
  BuildKit's and moby's do: a POSIX ACL or a ``user.*`` attribute a step sets
  stays out of the layer.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from forklift.store import Store
from tests.builder.test_build import do_build, layer_members, write
from tests.helpers import make_busybox_rootfs, run_cli, write_rootfs_tar

pytestmark = pytest.mark.root

PROBE = (
    "RUN{net} busybox uname -n > /uname{n} && cat /etc/hostname > /etchostname{n} "
    "&& cat /etc/hosts > /hosts{n}\n"
)


def _probe_build(tmp_path: Path, **kw) -> dict[str, bytes | None]:  # type: ignore[no-untyped-def]
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\n"
            + PROBE.format(net="", n=1)
            + PROBE.format(net=" --network=none", n=2)
            + PROBE.format(net=" --network=host", n=3)
        },
    )
    do_build(ctx, **kw)
    return layer_members(Store.open(), "t:1")


def test_run_steps_see_a_fixed_hostname_whatever_the_network(
    busybox_image: str, tmp_path: Path
) -> None:
    members = _probe_build(tmp_path)
    hosts = b"127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    for n in (1, 2, 3):
        assert members[f"uname{n}"] == b"buildkitsandbox\n"
        assert members[f"etchostname{n}"] == b"buildkitsandbox\n"
        assert members[f"hosts{n}"] == hosts


def test_buildkit_sandbox_hostname_build_arg(busybox_image: str, tmp_path: Path) -> None:
    members = _probe_build(tmp_path, build_args={"BUILDKIT_SANDBOX_HOSTNAME": "builder-7"})
    assert members["uname2"] == b"builder-7\n"
    assert members["hosts1"].startswith(b"127.0.0.1\tlocalhost builder-7\n")  # type: ignore[union-attr]
    # A different host name is a different step: nothing is reused from the default's cache.
    again = _probe_build(tmp_path)
    assert again["uname1"] == b"buildkitsandbox\n"


def test_forklift_run_keeps_dockers_hostnames(busybox_image: str) -> None:
    ours = run_cli("run", "--rm", "--network", "none", busybox_image, "busybox", "uname", "-n")
    assert len(ours.stdout.strip()) == 12 and ours.stdout.strip() != "buildkitsandbox"
    named = run_cli("run", "--rm", "-h", "web1", busybox_image, "cat", "/etc/hostname")
    assert named.stdout == "web1\n"
    host = run_cli("run", "--rm", "--network", "host", busybox_image, "busybox", "uname", "-n")
    assert host.stdout.strip() == os.uname().nodename


# --------------------------------------------------------------------------- xattrs


@pytest.fixture
def xattr_image(home: Path, tmp_path: Path) -> str:
    """busybox plus the host's setfacl, setfattr and setcap with the libraries they load."""
    tools = [shutil.which(t) for t in ("setfacl", "setfattr", "setcap")]
    if not all(tools):
        pytest.fail(
            "setfacl, setfattr and setcap are needed (apt-get install acl attr libcap2-bin)"
        )
    root = make_busybox_rootfs(tmp_path / "xattrbox")
    for tool in tools:
        assert tool is not None
        _copy_with_libraries(Path(tool), root)
    run_cli("import", str(write_rootfs_tar(root, tmp_path / "x.tar")), "xattrbox:1", check=True)
    return "xattrbox:1"


def _copy_with_libraries(binary: Path, root: Path) -> None:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    paths = [binary.resolve()]
    for line in out.splitlines():
        words = line.split()
        for word in words:
            if word.startswith("/"):
                paths.append(Path(word))
    for path in paths:
        target = (
            root / "usr" / "bin" / binary.name
            if path == binary.resolve()
            else root / str(path).lstrip("/")
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy2(path.resolve(), target)


def _last_layer(store: Store, image: str) -> dict[str, tarfile.TarInfo]:
    manifest = store.resolve(image).manifest
    data = store.read_blob(manifest.layers[-1].digest)  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tf:
        return {m.name: m for m in tf}


def test_layers_keep_only_file_capabilities(xattr_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": f"FROM {xattr_image}\n"
            "RUN touch /f && setfacl -m u:1000:r /f && setfattr -n user.note -v hi /f "
            "&& mkdir /d && setfacl -d -m u:1000:rx /d "
            "&& cp /bin/busybox /ping && setcap cap_net_raw+ep /ping\n"
        },
    )
    do_build(ctx)
    members = _last_layer(Store.open(), "t:1")
    xattrs = {
        name: {k for k in m.pax_headers if k.startswith("SCHILY.xattr.")}
        for name, m in members.items()
    }
    assert xattrs["f"] == set()  # no system.posix_acl_access, no user.note
    assert xattrs["d"] == set()  # no system.posix_acl_default
    assert xattrs["ping"] == {"SCHILY.xattr.security.capability"}
    # The step really set them (the tools would have failed otherwise, and so the step).
