"""Multi-stage builds and ONBUILD triggers against buildah."""

from __future__ import annotations

from tests.build_diff.harness import BuildFn, config_fields, same

MULTI = (
    "FROM busybox AS build\n"
    "WORKDIR /src\n"
    "COPY src/ ./\n"
    "RUN mkdir -p /out/bin && cat *.c > /out/bin/app && chmod 755 /out/bin/app "
    "&& ln -s app /out/bin/app-link\n"
    "FROM busybox AS assets\n"
    "RUN mkdir -p /assets && echo css > /assets/site.css\n"
    "FROM busybox AS broken\n"  # no stage needs it: it must never run
    "RUN exit 3\n"
    "FROM scratch\n"
    "COPY --from=build /out/bin/ /usr/local/bin/\n"  # by name
    "COPY --from=1 /assets /srv/assets\n"  # by index
    "COPY --from=build --chown=1000:1000 /src/a.c /home/app/\n"
    "COPY --from=busybox /bin/busybox /bin/sh\n"  # from an image that is no stage
    'ENTRYPOINT ["/usr/local/bin/app"]\n'
)


def test_copy_from_stages_by_name_and_index(duo: BuildFn) -> None:
    out = same(duo, MULTI, {"src/a.c": "int a;\n", "src/b.c": "int b;\n"})
    tree = out.ours
    # FROM scratch: only what was copied in
    assert sorted(tree) == [
        "bin",
        "bin/sh",
        "home",
        "home/app",
        "home/app/a.c",
        "srv",
        "srv/assets",
        "srv/assets/site.css",
        "usr",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/app",
        "usr/local/bin/app-link",
    ]
    assert tree["usr/local/bin/app"].preview == b"int a;\nint b;\n"
    assert tree["usr/local/bin/app-link"].data == "app"
    assert (tree["home/app/a.c"].uid, tree["home/app/a.c"].gid) == (1000, 1000)


def test_target_builds_an_intermediate_stage(duo: BuildFn) -> None:
    out = same(duo, MULTI, {"src/a.c": "int a;\n"}, target="build")
    assert "out/bin/app" in out.ours and "bin/busybox" in out.ours
    assert config_fields(out.ours_config, ("WorkingDir",))["WorkingDir"] == "/src"


PARENT = (
    "FROM busybox\n"
    "ONBUILD COPY app.txt /onbuild/\n"
    "ONBUILD RUN echo ran > /onbuild/ran\n"
    'ONBUILD ENV TRIGGERED="yes"\n'
    "ENV PARENT=1\n"
)


def test_onbuild_triggers_run_in_the_child(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM parent:latest\nRUN cat /onbuild/app.txt /onbuild/ran > /seen\n",
        {"app.txt": "from the child's context\n"},
        parent=PARENT,
        docker_format=True,
    )
    assert out.ours["seen"].preview == b"from the child's context\nran\n"
    cfg = config_fields(out.ours_config, ("Env", "OnBuild"))
    assert cfg == {"Env": ["PARENT=1", "TRIGGERED=yes"], "OnBuild": None}  # triggers used up


def test_onbuild_of_a_stage_runs_in_stages_built_from_it(duo: BuildFn) -> None:
    # BuildKit resolveStages: the ONBUILD commands of a base *stage* become triggers of the
    # stage built FROM it; they do not reach the next generation.
    out = same(
        duo,
        "FROM busybox AS base\n"
        "ONBUILD RUN echo child >> /generations\n"
        "FROM base AS child\n"
        "RUN echo after-trigger >> /generations\n"
        "FROM child\n"
        "RUN echo grandchild >> /generations\n",
        docker_format=True,
    )
    assert out.ours["generations"].preview == b"child\nafter-trigger\ngrandchild\n"
