"""Typed instructions: flags parsed into values, RUN mounts, COPY/ADD, HEALTHCHECK, expansion."""

from __future__ import annotations

import pytest

from forklift.dockerfile import Mount, parse, parse_mount, parse_stages
from forklift.dockerfile.instructions import (
    AddCommand,
    CopyCommand,
    HealthcheckCommand,
    RunCommand,
    apply_symbolic_mode,
    parse_chmod,
)
from forklift.dockerfile.mounts import MountError, read_csv_record
from forklift.dockerfile.shell import expand


def _cmds(text: str) -> list[object]:
    return list(parse_stages(parse(text)).stages[0].commands)


def test_run_mounts_become_dataclasses() -> None:
    (run,) = _cmds(
        "FROM alpine\n"
        "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000 \\\n"
        "    --mount=type=secret,id=token,env=TOKEN,required \\\n"
        "    --mount=type=tmpfs,target=/tmp,size=64m \\\n"
        "    --mount=from=builder,source=/out,target=/in \\\n"
        "    --mount=type=ssh \\\n"
        "    --network=none --security=insecure pip install x\n"
    )
    assert isinstance(run, RunCommand)
    cache, secret, tmpfs, bind, ssh = run.mounts()
    assert cache == Mount(
        type="cache",
        target="/root/.cache",
        id="pip",
        sharing="locked",
        mode=0o755,
        uid=1000,
        readonly=False,
    )
    assert (secret.type, secret.id, secret.env, secret.required, secret.readonly) == (
        "secret",
        "token",
        "TOKEN",
        True,
        True,
    )
    assert secret.secret_id == "token"
    assert (tmpfs.size, tmpfs.readonly) == (64 * 1024 * 1024, False)
    assert (bind.type, bind.from_, bind.source, bind.readonly) == ("bind", "builder", "/out", True)
    assert ssh.secret_id == "default"
    assert run.mount_sources == ("builder",)
    assert (run.network, run.security) == ("none", "insecure")
    assert run.cmdline == ("pip install x",)
    assert run.prepend_shell is True


def test_mount_values_are_expanded_except_from() -> None:
    env = {"DIR": "/cache", "ID": "x"}
    m = parse_mount("type=cache,target=$DIR,id=${ID}", lambda w: expand(w, env))
    assert (m.target, m.id) == ("/cache", "x")
    with pytest.raises(MountError, match="doesn't support variable expansion"):
        parse_mount("from=$STAGE,target=/x", lambda w: expand(w, env))


def test_mount_rw_ro_and_validation() -> None:
    assert parse_mount("type=bind,target=/x,rw").readonly is False
    assert parse_mount("type=cache,target=/x,ro=true").readonly is True
    with pytest.raises(MountError, match="mode not allowed"):
        parse_mount("type=bind,target=/x,mode=0700")
    with pytest.raises(MountError, match="invalid value 9 for mode"):
        parse_mount("type=cache,target=/x,mode=9")
    with pytest.raises(MountError, match="invalid cache sharing"):
        parse_mount("type=bind,target=/x,sharing=shared")
    with pytest.raises(MountError, match="one of source, target required"):
        parse_mount("type=secret")


def test_go_csv_rules() -> None:
    assert read_csv_record('a,"b,c",d') == ["a", "b,c", "d"]
    assert read_csv_record('"x""y"') == ['x"y']
    assert read_csv_record("a,") == ["a", ""]
    with pytest.raises(MountError, match='bare " in non-quoted-field'):
        read_csv_record('a"b')
    with pytest.raises(MountError, match="EOF"):
        read_csv_record("")


def test_copy_and_add_flags() -> None:
    copy, add = _cmds(
        "FROM alpine\n"
        "COPY --from=build --chown=app:app --chmod=u=rwX,go=rX --link --parents "
        "--exclude=*.md --exclude=tests ./src/ ./lib/ /app/\n"
        "ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --link=false "
        "https://example.com/x.tar /x\n"
    )
    assert isinstance(copy, CopyCommand)
    assert (copy.from_, copy.chown, copy.chmod, copy.link, copy.parents) == (
        "build",
        "app:app",
        "u=rwX,go=rX",
        True,
        True,
    )
    assert copy.excludes == ("*.md", "tests")
    assert (copy.sources, copy.dest) == (("./src/", "./lib/"), "/app/")
    assert isinstance(add, AddCommand)
    assert (add.checksum, add.keep_git_dir, add.unpack, add.link) == (
        "sha256:abc",
        True,
        False,
        False,
    )


def test_copy_json_form_and_heredoc_sources() -> None:
    json_copy, heredoc_copy = _cmds(
        'FROM alpine\nCOPY ["my file", "dest dir/"]\nCOPY <<-EOF <<\'RAW\' /etc/\n\tline $X\nEOF\n$Y\nRAW\n'
    )
    assert json_copy.sources == ("my file",)  # type: ignore[attr-defined]
    assert json_copy.dest == "dest dir/"  # type: ignore[attr-defined]
    contents = heredoc_copy.contents  # type: ignore[attr-defined]
    assert [(c.path, c.data, c.expand) for c in contents] == [
        ("EOF", "line $X\n", True),
        ("RAW", "$Y\n", False),
    ]


def test_exec_vs_shell_form() -> None:
    run_exec, run_bad_json, cmd_shell, entry = _cmds(
        'FROM alpine\nRUN ["echo", "a b"]\nRUN ["echo", oops]\nCMD echo $HOME\nENTRYPOINT []\n'
    )
    assert (run_exec.cmdline, run_exec.prepend_shell) == (("echo", "a b"), False)  # type: ignore[attr-defined]
    # invalid JSON falls back to shell form, as BuildKit does
    assert (run_bad_json.cmdline, run_bad_json.prepend_shell) == (('["echo", oops]',), True)  # type: ignore[attr-defined]
    assert cmd_shell.cmdline == ("echo $HOME",)  # type: ignore[attr-defined]
    assert entry.cmdline == ()  # type: ignore[attr-defined]


def test_healthcheck_durations() -> None:
    (hc, none) = _cmds(
        "FROM alpine\n"
        "HEALTHCHECK --interval=1m30s --timeout=5s --start-period=2s --start-interval=500ms --retries=4 "
        "CMD curl -f http://localhost/\n"
        "HEALTHCHECK NONE\n"
    )
    assert isinstance(hc, HealthcheckCommand)
    assert hc.test == ("CMD-SHELL", "curl -f http://localhost/")
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval, hc.retries) == (
        90_000_000_000,
        5_000_000_000,
        2_000_000_000,
        500_000_000,
        4,
    )
    assert none.test == ("NONE",)  # type: ignore[attr-defined]


def test_env_label_arg_pairs_and_expand() -> None:
    env, label, arg = _cmds(
        'FROM alpine\nENV A=1 B="two words"\nLABEL legacy value here\nARG X Y=2\n'
    )
    assert [(p.key, p.value, p.legacy) for p in env.pairs] == [  # type: ignore[attr-defined]
        ("A", "1", False),
        ("B", '"two words"', False),
    ]
    assert [(p.key, p.value, p.legacy) for p in label.pairs] == [("legacy", "value here", True)]  # type: ignore[attr-defined]
    assert [(a.key, a.value) for a in arg.args] == [("X", None), ("Y", "2")]  # type: ignore[attr-defined]
    expanded = env.expand(lambda w: expand(w, {}))  # type: ignore[attr-defined]
    assert [p.value for p in expanded.pairs] == ["1", "two words"]


def test_chmod_octal_and_symbolic() -> None:
    assert parse_chmod("0644").mode == 0o644
    assert parse_chmod("755").apply(0o600, False) == 0o755
    spec = parse_chmod("u=rwX,go=rX")
    assert spec.apply(0o600, is_dir=False) == 0o644
    assert spec.apply(0o600, is_dir=True) == 0o755
    assert spec.apply(0o700, is_dir=False) == 0o755
    assert apply_symbolic_mode("a+x", 0o644, False) == 0o755
    assert apply_symbolic_mode("go-w", 0o666, False) == 0o644
    assert apply_symbolic_mode("u+s", 0o755, False) == 0o4755
    assert apply_symbolic_mode("g=u", 0o750, False) == 0o770
    for bad in ("", "8", "10000", "u+q", "rwx", "u=r;x"):
        with pytest.raises(ValueError):
            parse_chmod(bad)


def test_positions_of_instructions_and_flags() -> None:
    df = parse("FROM alpine\n\n  COPY --from=a \\\n      --chown=1 x y\n")
    copy = df.instructions[1]
    assert (copy.start_line, copy.end_line, copy.column) == (3, 4, 3)
    assert [(f.name, f.value, f.line, f.column) for f in copy.flags] == [
        ("from", "a", 3, 8),
        ("chown", "1", 4, 7),
    ]
    assert copy.source == "  COPY --from=a \\\n      --chown=1 x y"
    assert copy.original == "COPY --from=a       --chown=1 x y"


def test_comments_and_pragmas_above_instructions() -> None:
    df = parse(
        "FROM alpine\n# hadolint ignore=DL3008\n# forklift-lint ignore=apt-pin\nRUN apt-get install x\n"
        "#\nRUN true\n"
    )
    assert df.instructions[1].comments == ("hadolint ignore=DL3008", "forklift-lint ignore=apt-pin")
    assert df.instructions[2].comments == ()


def test_run_plans_follow_buildkit_heredoc_rules() -> None:
    simple, shebang, mixed, exec_form, chomped = _cmds(
        "FROM alpine\n"
        "RUN <<EOF\napk add git\nEOF\n"
        "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
        "RUN cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB\n"
        'RUN ["echo", "hi"]\n'
        "RUN <<-EOF\n\techo tab\nEOF\n"
    )
    assert simple.plan().args == ("/bin/sh", "-c", "apk add git\n")  # type: ignore[attr-defined]
    plan = shebang.plan()  # type: ignore[attr-defined]
    assert plan.args == ("/bin/sh", "-c", "/dev/pipes/EOF")
    assert [(f.path, f.data, f.mode) for f in plan.files] == [
        ("/dev/pipes/EOF", "#!/usr/bin/env python3\nprint(1)\n", 0o755)
    ]
    assert mixed.plan(("bash", "-c")).args == (  # type: ignore[attr-defined]
        "bash",
        "-c",
        "cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB",
    )
    assert exec_form.plan().args == ("echo", "hi")  # type: ignore[attr-defined]
    assert chomped.plan().args == ("/bin/sh", "-c", "echo tab\n")  # type: ignore[attr-defined]
