"""The stage graph, ARG scoping, unused build args, targets and outline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forklift.dockerfile import (
    GlobalArgs,
    StageGraph,
    list_targets,
    outline,
    parse,
    parse_stages,
    plan,
    render_outline,
    render_targets,
    unused_build_args,
)
from forklift.errors import NotFound, ParseError
from forklift.oci.platform import Platform

MULTI = """\
ARG GO=1.22
ARG BASE=golang:${GO}
# deps fetches modules
FROM ${BASE} AS deps
RUN go mod download
# build compiles the binary
FROM deps AS build
# LDFLAGS extra linker flags
ARG LDFLAGS=-s
RUN --mount=type=cache,target=/root/.cache go build -ldflags "$LDFLAGS"
FROM alpine AS docs
RUN make docs
FROM build AS test
RUN --mount=from=docs,target=/docs go test ./...
FROM scratch AS final
COPY --from=build /out/app /app
COPY --from=docs /site /site
"""


def _graph(text: str, **kw: object) -> StageGraph:
    return StageGraph.build(parse_stages(parse(text)), **kw)  # type: ignore[arg-type]


def test_dependencies_and_build_order() -> None:
    g = _graph(MULTI)
    names = {n.name: n for n in g.nodes}
    assert names["deps"].base == "golang:1.22"
    assert names["deps"].images == ("golang:1.22",)
    assert names["build"].base_stage == 0
    assert names["test"].stage_deps == (1, 2)
    assert names["final"].stage_deps == (1, 2)
    assert [n.name for n in g.needed()] == ["deps", "build", "docs", "final"]
    assert [n.name for n in g.needed("test")] == ["deps", "build", "docs", "test"]
    assert [n.name for n in g.needed("docs")] == ["docs"]


def test_copy_from_index_and_images() -> None:
    g = _graph("FROM alpine\nRUN x\nFROM scratch\nCOPY --from=0 /a /a\nCOPY --from=nginx:1 /b /b\n")
    assert g.nodes[1].stage_deps == (0,)
    assert g.nodes[1].images == ("nginx:1",)


def test_unknown_target_lists_stages() -> None:
    with pytest.raises(NotFound) as info:
        _graph(MULTI).needed("nope")
    assert info.value.message == 'target stage "nope" could not be found'
    assert info.value.hint == "stages: deps, build, docs, test, final"
    with pytest.raises(NotFound) as info:
        _graph(MULTI).needed("bulid")
    assert info.value.message == 'target stage "bulid" could not be found (did you mean build?)'


def test_forward_copy_is_rejected_for_targets_that_need_it() -> None:
    text = "FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\nRUN true\n"
    parsed = parse_stages(parse(text))
    with pytest.raises(ParseError) as info:
        plan(parsed, target="a")
    assert str(info.value) == (
        'Dockerfile:2:6: cannot copy from stage "b", it needs to be defined before current stage "a"'
    )
    assert [st.name for st in plan(parsed, target="b").needed()] == ["b"]
    mount = "FROM alpine AS a\nRUN --mount=from=b,target=/b true\nFROM alpine AS b\n"
    with pytest.raises(ParseError) as info:
        plan(parse_stages(parse(mount)), target="a")
    assert str(info.value) == (
        'Dockerfile:2:5: cannot mount from stage "b" to "/b", stage needs to be defined '
        "before current command"
    )


def test_stage_names_are_case_insensitive_in_from_flags() -> None:
    g = _graph("FROM alpine AS Builder\nFROM scratch\nCOPY --from=BUILDER /a /a\n")
    assert g.nodes[1].stage_deps == (0,)


def test_global_args_only_in_from_unless_redeclared() -> None:
    text = (
        "ARG V=3.19\nFROM alpine:$V AS a\nRUN echo $V\nARG V\nRUN echo $V\n"
        "FROM alpine AS b\nENV X=$V\nARG V=local\nENV Y=$V\nENV V=env\nARG V\nENV Z=$V\n"
    )
    built = plan(parse_stages(parse(text)), all_stages=True)
    a, b = built.stages[0], built.stages[1]
    assert a.node.base == "alpine:3.19"
    assert a.scope.env["V"] == "3.19"
    env_b = [s.command.pairs for s in b.steps if s.keyword == "env"]  # type: ignore[attr-defined]
    # X: the global V is invisible before the stage declares it; Y: the stage's
    # own default; Z: ENV set V, then `ARG V` re-imported the global value over
    # it (BuildKit sets ARG and ENV values in one environment, in order).
    assert [p[0].value for p in env_b] == ["", "local", "env", "3.19"]


def test_build_args_override_defaults_and_predefined_platform_args() -> None:
    text = "ARG TAG=1\nFROM alpine:$TAG\nARG TARGETARCH\nARG MODE=dev\nENV M=$MODE A=$TARGETARCH\n"
    built = plan(
        parse_stages(parse(text)),
        build_args={"TAG": "2", "MODE": "prod"},
        target_platform=Platform("linux", "arm64", "v8"),
    )
    st = built.stages[0]
    assert st.node.base == "alpine:2"
    env = st.steps[-1].command.pairs  # type: ignore[attr-defined]
    assert [(p.key, p.value) for p in env] == [("M", "prod"), ("A", "arm64")]


def test_stage_args_inherit_into_child_stages() -> None:
    text = (
        "FROM alpine AS a\nARG X=1\nENV E=e\nFROM a AS b\nENV Y=$X$E\nFROM alpine AS c\nENV Z=$X\n"
    )
    built = plan(parse_stages(parse(text)), all_stages=True)
    assert built.stages[1].steps[0].command.pairs[0].value == "1e"  # type: ignore[attr-defined]
    assert built.stages[2].steps[0].command.pairs[0].value == ""  # type: ignore[attr-defined]


def test_history_prefix_lists_declared_args() -> None:
    text = "FROM alpine\nARG A=1 B\nARG A=2\nRUN true\nENV A=3\nRUN true\n"
    built = plan(parse_stages(parse(text)), build_args={"B": "x"})
    runs = [s for s in built.stages[0].steps if s.keyword == "run"]
    assert [r.history_prefix() for r in runs] == ["|2 A=2 B=x", "|2 A=3 B=x"]
    assert runs[0].env == {"PATH": runs[0].env["PATH"], "A": "2", "B": "x"}


def test_unused_build_args() -> None:
    parsed = parse_stages(parse(MULTI))
    g = StageGraph.build(parsed)
    given = {
        "GO": "1.23",
        "LDFLAGS": "-w",
        "UNUSED": "1",
        "HTTP_PROXY": "http://p",
        "TARGETOS": "linux",
    }
    assert unused_build_args(given, g.consumed_args()) == ["UNUSED"]
    # docs does not declare LDFLAGS and does not use GO/BASE in FROM
    assert unused_build_args(given, g.consumed_args("docs")) == ["GO", "LDFLAGS", "UNUSED"]


def test_global_arg_dependencies() -> None:
    g = GlobalArgs.evaluate(parse_stages(parse(MULTI)).meta_args, {}, {})
    assert g.env == {"GO": "1.22", "BASE": "golang:1.22"}
    assert g.resolve_used({"BASE"}) == {"BASE", "GO"}


def test_targets_list_matches_buildkit_shape() -> None:
    targets = list_targets(parse_stages(parse(MULTI)))
    assert [(t.name, t.description, t.default, t.line) for t in targets] == [
        ("deps", "fetches modules", False, 4),
        ("build", "compiles the binary", False, 7),
        ("docs", "", False, 11),
        ("test", "", False, 13),
        ("final", "", True, 15),
    ]
    text = render_targets(targets)
    assert text.splitlines()[0].split() == ["TARGET", "DESCRIPTION"]
    assert "final (default)" in text
    data = json.loads(render_targets(targets, "json"))
    assert data["targets"][0] == {
        "name": "deps",
        "description": "fetches modules",
        "base": "${BASE}",
        "location": {"line": 4},
    }


def test_outline_of_targets() -> None:
    parsed = parse_stages(parse(MULTI))
    out = outline(parsed, target="build", build_args={"LDFLAGS": "-w"})
    assert [(a.name, a.value, a.description) for a in out.args] == [
        ("GO", "1.22", ""),
        ("BASE", "golang:1.22", ""),
        ("LDFLAGS", "-w", "extra linker flags"),
    ]
    assert (out.name, out.description) == ("build", "compiles the binary")
    docs = outline(parsed, target="docs")
    assert docs.args == ()
    secret = outline(
        parse_stages(parse("FROM alpine\nRUN --mount=type=secret,id=npm,required=true x\n"))
    )
    assert [(s.name, s.required) for s in secret.secrets] == [("npm", True)]
    assert json.loads(render_outline(secret, "json"))["secrets"] == [
        {"name": "npm", "required": True, "location": {"line": 2}}
    ]
    assert "LDFLAGS" in render_outline(out)


def test_cli_verbs(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(MULTI)

    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "forklift", "dockerfile", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout

    targets = json.loads(run("targets", "--format", "json", str(tmp_path)))
    assert [t.get("name") for t in targets["targets"]] == ["deps", "build", "docs", "test", "final"]
    out = json.loads(
        run(
            "outline",
            "--format",
            "json",
            "--target",
            "build",
            "--build-arg",
            "GO=1.23",
            str(tmp_path),
        )
    )
    assert out["args"][0] == {"name": "GO", "value": "1.23", "location": {"line": 1}}
    tree = json.loads(run("parse", str(tmp_path / "Dockerfile")))
    run_ins = tree["instructions"][6]
    assert run_ins["keyword"] == "run"
    assert run_ins["flags"][0]["name"] == "mount"
    assert run_ins["flags"][0]["line"] == 10
    dumped = run("parse", "--format", "dump", str(tmp_path / "Dockerfile"))
    assert dumped.splitlines()[0] == '(arg "GO=1.22")'


def test_escape_directive_applies_to_expansion() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nARG D=C:\\tools\nWORKDIR C:\\app\nENV P=$D\\bin X=`$D\n"
    built = plan(parse_stages(parse(text)))
    _arg, workdir, env = (s.command for s in built.stages[0].steps)
    assert workdir.path == "C:\\app"  # type: ignore[attr-defined]
    assert [(p.key, p.value) for p in env.pairs] == [("P", "C:\\tools\\bin"), ("X", "$D")]  # type: ignore[attr-defined]


def test_onbuild_triggers_of_a_base_stage_run_in_the_child() -> None:
    text = (
        "FROM alpine AS tools\nRUN true\n"
        "FROM alpine AS base\nARG V=1\nONBUILD COPY --from=tools /t /t\nONBUILD ENV FROM_TRIGGER=$V\n"
        "FROM base AS app\nENV AFTER=$FROM_TRIGGER\n"
    )
    parsed = parse_stages(parse(text))
    g = StageGraph.build(parsed)
    # the trigger's COPY --from makes `app` depend on `tools`
    assert g.nodes[2].stage_deps == (1, 0)
    built = plan(parsed)
    steps = built.stages[2].steps
    assert [s.keyword for s in steps] == ["copy", "env", "env"]
    assert [s.trigger for s in steps] == ["COPY --from=tools /t /t", "ENV FROM_TRIGGER=$V", None]
    assert steps[0].line == 7  # triggers are reported at the FROM that runs them, like BuildKit
    assert steps[-1].command.pairs[0].value == "1"  # type: ignore[attr-defined]
