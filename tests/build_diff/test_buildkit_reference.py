"""Where buildah 1.28 and BuildKit disagree, BuildKit is the reference.

Each test still builds with both tools and compares everything *except* the
paths or fields where buildah is known to differ; for those, forklift is held
to BuildKit's rule, cited from BuildKit's source (moby/buildkit
frontend/dockerfile/dockerfile2llb/convert.go and solver/llbsolver/file).
"""

from __future__ import annotations

import io
import tarfile

from tests.build_diff.harness import BuildFn, config_fields


def test_shell_applies_to_shell_form_cmd_and_entrypoint(duo: BuildFn) -> None:
    # BuildKit dispatchCmd/dispatchEntrypoint wrap the shell form with the image's SHELL
    # (withShell); buildah 1.28 always uses /bin/sh -c for CMD and ENTRYPOINT.
    out = duo(
        'FROM busybox\nSHELL ["/bin/sh", "-ec"]\nCMD echo hi\nENTRYPOINT exec env\n',
        docker_format=True,
    )
    out.check_same(skip_fields=("Cmd", "Entrypoint"))
    cfg = config_fields(out.ours_config, ("Cmd", "Entrypoint", "Shell"))
    assert cfg == {
        "Cmd": ["/bin/sh", "-ec", "echo hi"],
        "Entrypoint": ["/bin/sh", "-ec", "exec env"],
        "Shell": ["/bin/sh", "-ec"],
    }


def test_workdir_is_created_owned_by_the_current_user(duo: BuildFn) -> None:
    # BuildKit dispatchWorkdir: Mkdir(wd, 0755, WithParents, WithUser(image user)) as its own
    # step, whether or not anything follows; copy.MkdirAll gives every directory it creates
    # that owner. buildah 1.28 creates it only when a later step needs it, as root.
    out = duo("FROM busybox\nUSER app\nWORKDIR /srv/app/data\nUSER root\nWORKDIR /made/last\n")
    out.check_same(skip_paths=("srv", "made"))
    for path in ("srv", "srv/app", "srv/app/data"):
        node = out.ours[path]
        assert (node.kind, node.mode, node.uid, node.gid) == ("d", 0o755, 1000, 1000), path
    assert (out.ours["made/last"].uid, out.ours["made/last"].mode) == (0, 0o755)


def _owned_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("pkg/a", b"a\n"), ("pkg/sub/b", b"b\n")):
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), 123, 456, 0o640
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_add_archive_with_chown_owns_the_extracted_files(duo: BuildFn) -> None:
    # BuildKit unpack (solver/llbsolver/file/unpack*.go): "explicit --chown values override the
    # header ownership" for every extracted entry; buildah 1.28 keeps the archive's owners.
    out = duo("FROM busybox\nADD --chown=app:nogroup pkg.tar /opt/\n", {"pkg.tar": _owned_tar()})
    out.check_same(skip_paths=("opt/pkg",))
    for path in ("opt", "opt/pkg", "opt/pkg/a", "opt/pkg/sub", "opt/pkg/sub/b"):
        node = out.ours[path]
        assert (node.uid, node.gid) == (1000, 65534), path
    assert out.ours["opt/pkg/a"].mode == 0o640  # modes still come from the archive
