"""RUN: what commands see (shell, user, env, args) and what their changes leave in the image.

RUN steps write what they observe into files, so the comparison of the file
trees also compares the environment each builder gave the command.
"""

from __future__ import annotations

from tests.build_diff.harness import BuildFn, Outcome, same


def _text(out: Outcome, path: str) -> str:
    return (out.ours_root / path).read_text()


def test_shell_form_exec_form_and_environment(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        'ENV GREETING="hello world" EMPTY=\n'
        "ARG BUILDVAR=fromarg\n"
        'RUN echo "$GREETING|$BUILDVAR|$EMPTY|$PATH" > /shell-form\n'
        'RUN ["/bin/sh", "-c", "echo exec:$GREETING > /exec-form"]\n'
        'RUN ["/bin/touch", "/literal-$GREETING"]\n'  # exec form: no variable substitution
        "RUN echo 'single $GREETING' > /quoted && pwd > /pwd\n",
    )
    assert _text(out, "shell-form").startswith("hello world|fromarg||")
    assert _text(out, "exec-form") == "exec:hello world\n"
    assert "literal-$GREETING" in out.ours
    assert _text(out, "quoted") == "single $GREETING\n" and _text(out, "pwd") == "/\n"


def test_shell_instruction_changes_the_shell_of_run(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        'SHELL ["/bin/env", "MARK=from-shell", "/bin/sh", "-c"]\n'
        "RUN echo $MARK > /mark\n"
        'SHELL ["/bin/sh", "-c"]\n'
        'RUN echo "${MARK:-unset}" > /mark2\n',
        docker_format=True,  # buildah keeps SHELL only in Docker-format images
    )
    assert _text(out, "mark") == "from-shell\n" and _text(out, "mark2") == "unset\n"


def test_run_as_user(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "RUN chmod 1777 /tmp && echo 'extra:x:4000:app' >> /etc/group\n"
        "USER app\n"
        "RUN id > /tmp/id-app && touch /tmp/by-app && umask > /tmp/umask\n"
        "USER 1000:65534\n"
        "RUN touch /tmp/by-1000-65534\n"
        "USER nobody\n"
        "RUN id -u > /tmp/nobody-uid\n",
    )
    assert (out.ours["tmp/by-app"].uid, out.ours["tmp/by-app"].gid) == (1000, 1000)
    assert (out.ours["tmp/by-1000-65534"].uid, out.ours["tmp/by-1000-65534"].gid) == (1000, 65534)
    # supplementary groups come from /etc/group, and include the primary group (BuildKit
    # executor since moby/buildkit#3651, CVE-2023-25173: without it a process could shed
    # its primary group and get past "deny this group" permissions)
    assert _text(out, "tmp/id-app") == "uid=1000(app) gid=1000(app) groups=1000(app),4000(extra)\n"


def test_arg_scoping_across_stages(duo: BuildFn) -> None:
    out = duo(
        "ARG GLOBAL=g1\n"
        "ARG ONLYGLOBAL=og\n"
        "FROM busybox AS one\n"
        "ARG GLOBAL\n"  # re-declared without a value: takes the global one
        "ARG LOCAL=l1\n"
        'RUN echo "global=$GLOBAL onlyglobal=$ONLYGLOBAL local=$LOCAL" > /args1\n'
        "ARG LOCAL=l2\n"
        'RUN echo "local=$LOCAL" > /args2\n'
        "ENV LOCAL=fromenv\n"
        "ARG LOCAL=l3\n"  # BuildKit: the later ARG wins for RUN (the config keeps the ENV)
        'RUN echo "local=$LOCAL" > /args3\n'
        "FROM one AS two\n"  # a child stage inherits its parent's ARGs and ENV
        'RUN echo "local=$LOCAL global=$GLOBAL" > /args4\n'
        "FROM busybox\n"  # an unrelated stage does not
        "COPY --from=two /args1 /args2 /args3 /args4 /\n"
        'RUN echo "local=$LOCAL global=$GLOBAL" > /args5\n',
        build_args={"GLOBAL": "override"},
    )
    # /args3 and /args4 are where buildah 1.28 departs from BuildKit: in BuildKit an ARG with a
    # value sets the variable for later RUNs even over an earlier ENV of the same name
    # (dispatchArg: state.AddEnv; podman#19803 tracks the difference), and a child stage
    # starts from its parent's state, so it sees the parent's ARG values.
    out.check_same(skip_paths=("args3", "args4"))
    assert _text(out, "args1") == "global=override onlyglobal= local=l1\n"
    assert _text(out, "args2") == "local=l2\n" and _text(out, "args3") == "local=l3\n"
    assert _text(out, "args4") == "local=l3 global=override\n"
    assert _text(out, "args5") == "local= global=\n"


def test_deletions_become_whiteouts(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "RUN mkdir -p /data/sub && echo 1 > /data/a && echo 2 > /data/sub/b && echo x > /keep\n"
        # a file and a directory from an earlier layer, a base file, a base directory remade
        "RUN rm /data/a && rm -r /data/sub && rm /bin/wc && rm -rf /tmp && mkdir -m 1777 /tmp\n"
        # a directory removed and made again (opaque), a hard link
        "RUN rm -rf /data && mkdir /data && echo new > /data/c && ln /data/c /data/c2\n"
        # metadata-only changes, a file replaced by a directory and back, special files
        "RUN chown 5:6 /keep && chmod 600 /keep && ln -s /keep /kl && mkfifo /fifo\n"
        "RUN rm /bin/head && mkdir /bin/head && rm -r /root && echo f > /root\n",
    )
    tree = out.ours
    assert not {"data/a", "data/sub", "bin/wc"} & set(tree)
    assert sorted(p for p in tree if p.startswith("data/")) == ["data/c", "data/c2"]
    assert tree["data/c2"].hardlink == "data/c" and tree["fifo"].kind == "p"
    assert (tree["keep"].uid, tree["keep"].mode) == (5, 0o600)
    assert tree["bin/head"].kind == "d" and tree["root"].kind == "f"


def test_run_mounts_leave_nothing_behind(duo: BuildFn) -> None:
    # BuildKit removes the empty mount points it had to create (executor MountStubsCleaner);
    # buildah 1.28 leaves them (/var/cache, /mnt), so those paths are held to BuildKit's rule.
    # What a bind mount shows is the context; a cache mount's content is never in a layer.
    out = duo(
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/var/cache/thing echo x > /var/cache/thing/f\n"
        "RUN --mount=type=bind,source=src,target=/mnt/src cp -r /mnt/src /copied\n"
        "RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && ls /scratch > /seen\n",
        {"src/a": "a", "src/d/b": "b"},
    )
    out.check_same(skip_paths=("var", "mnt"))
    assert not {"var", "mnt", "scratch"} & set(out.ours)
    assert {"copied/a", "copied/d/b"} <= set(out.ours)
    assert _text(out, "seen") == "t\n"
