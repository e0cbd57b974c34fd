"""Metadata instructions: the image config forklift writes against buildah's.

Configs are compared as raw JSON (forklift's from ``forklift save``, buildah's
from ``buildah inspect``) in the fields issue 4 names; builds with
``docker_format=True`` make buildah keep the Docker-only fields (Shell, OnBuild,
Healthcheck), which the OCI format has no room for, and compare those too.
"""

from __future__ import annotations

from tests.build_diff.harness import DEFAULT_PATH, BuildFn, config_fields, same


def test_default_path_is_added_to_the_config(duo: BuildFn) -> None:
    # BuildKit (dockerfile2llb "make sure that PATH is always set") and buildah both give an
    # image whose base has no PATH the default one; the base here has no Env at all.
    out = same(duo, "FROM busybox\nENV A=1\n")
    ours = config_fields(out.ours_config, ("Env",), keep_default_path=True)["Env"]
    theirs = config_fields(out.theirs_config, ("Env",), keep_default_path=True)["Env"]
    assert ours == theirs
    assert ours is not None and DEFAULT_PATH in ours and "A=1" in ours


def test_metadata_instructions(duo: BuildFn) -> None:
    out = duo(
        "FROM busybox\n"
        "ARG PORT=8080\n"
        'ENV A=1 B="two words" C=${PORT}\n'
        "ENV D $A-x\n"
        'LABEL org.example.a="x y" b=2 "c d"=e\n'
        'LABEL multi="line1 \\\n  line2"\n'
        "EXPOSE 80 ${PORT}/tcp 53/udp\n"
        "VOLUME /data /vol2\n"
        'VOLUME ["/logs"]\n'
        "STOPSIGNAL SIGUSR1\n"
        "WORKDIR /srv/$A\n"
        "USER 1000:1000\n"
        "RUN true\n",
    )
    # buildah 1.28 makes VOLUME directories and the WORKDIR at the next RUN, as the user of
    # that RUN; BuildKit's VOLUME only sets the config, its WORKDIR mkdir runs as the user
    # of that moment (root here). Those paths are checked against BuildKit's rules below.
    out.check_same(skip_paths=("data", "logs", "vol2", "srv"))
    assert not {"data", "logs", "vol2"} & set(out.ours)
    assert (out.ours["srv/1"].kind, out.ours["srv/1"].uid) == ("d", 0)
    cfg = config_fields(out.ours_config, ("Env", "Labels", "ExposedPorts", "WorkingDir"))
    assert cfg["Env"] == ["A=1", "B=two words", "C=8080", "D=1-x"]
    assert cfg["Labels"] == {"org.example.a": "x y", "b": "2", "c d": "e", "multi": "line1   line2"}
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "8080/tcp", "53/udp"}
    assert cfg["WorkingDir"] == "/srv/1"


def test_entrypoint_resets_an_inherited_cmd(duo: BuildFn) -> None:
    # Dockerfile reference: "If CMD is defined from the base image, setting ENTRYPOINT will
    # reset CMD to an empty value" (busybox's CMD is ["sh"]).
    out = same(duo, 'FROM busybox\nENTRYPOINT ["/bin/echo"]\n')
    assert config_fields(out.ours_config, ("Cmd", "Entrypoint")) == {
        "Cmd": None,
        "Entrypoint": ["/bin/echo"],
    }


ENTRY_STAGES = (
    "FROM busybox AS base\n"
    'CMD ["x"]\n'
    'ENTRYPOINT ["/bin/echo"]\n'  # CMD was set in this stage: kept
    "FROM base\n"
    "ENTRYPOINT echo hi\n"  # CMD came from the parent stage: reset; shell form wraps
)


def test_cmd_set_in_the_same_stage_survives_entrypoint(duo: BuildFn) -> None:
    out = same(duo, ENTRY_STAGES, target="base")
    assert config_fields(out.ours_config, ("Cmd",))["Cmd"] == ["x"]


def test_entrypoint_in_a_child_stage_resets_the_parents_cmd(duo: BuildFn) -> None:
    out = same(duo, ENTRY_STAGES)
    assert config_fields(out.ours_config, ("Cmd", "Entrypoint")) == {
        "Cmd": None,
        "Entrypoint": ["/bin/sh", "-c", "echo hi"],
    }


def test_docker_only_fields_shell_healthcheck_onbuild(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        'SHELL ["/bin/sh", "-ec"]\n'
        'CMD ["echo", "hi"]\n'
        "HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD wget -q localhost || exit 1\n"
        "ONBUILD RUN echo triggered > /triggered\n"
        "ONBUILD COPY a.txt /onbuild/\n",
        {"a.txt": "a"},
        docker_format=True,
    )
    cfg = config_fields(out.ours_config, ("Cmd", "Shell", "Healthcheck", "OnBuild"))
    assert cfg["Shell"] == ["/bin/sh", "-ec"] and cfg["Cmd"] == ["echo", "hi"]
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", "wget -q localhost || exit 1"]
    assert cfg["Healthcheck"]["Interval"] == 5_000_000_000
    assert cfg["OnBuild"] == ["RUN echo triggered > /triggered", "COPY a.txt /onbuild/"]
