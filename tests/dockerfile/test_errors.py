"""Bad Dockerfiles give one ForkliftError with an exact file:line:col, never a traceback."""

from __future__ import annotations

import pytest

from forklift.dockerfile import parse, parse_stages, plan
from forklift.errors import ForkliftError, ParseError

CASES = [
    ("FROM alpine\n  FORM x\n", "Dockerfile:2:3: unknown instruction: FORM (did you mean FROM?)"),
    ("FROM alpine\nBOGUS x\n", "Dockerfile:2:1: unknown instruction: BOGUS"),
    (
        "FROM alpine\nRUN <<EOF\necho hi\n",
        'Dockerfile:2:1: unterminated heredoc: no line "EOF" ends the heredoc started here',
    ),
    (
        "FROM alpine\nCOPY  --chown=1 --from b a\n",
        "Dockerfile:2:17: missing a value on flag: --from",
    ),
    ("FROM alpine\nCOPY --user=me a b\n", "Dockerfile:2:6: unknown flag: --user"),
    ("FROM alpine\nCOPY --frm=x a b\n", "Dockerfile:2:6: unknown flag: --frm (did you mean from?)"),
    (
        "FROM alpine\nCOPY --link=maybe a b\n",
        "Dockerfile:2:6: expecting boolean value for flag --link, not: maybe",
    ),
    (
        "FROM alpine\nCOPY --from=a --from=b x y\n",
        "Dockerfile:2:15: duplicate flag specified: --from",
    ),
    (
        "ARG X=1\n\nRUN echo\n",
        "Dockerfile:3:1: RUN before the first FROM: no build stage in current context",
    ),
    (
        "FROM alpine\nONBUILD ONBUILD RUN x\n",
        "Dockerfile:2:1: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
    ),
    ("FROM alpine\nONBUILD FROM x\n", "Dockerfile:2:1: FROM isn't allowed as an ONBUILD trigger"),
    (
        "FROM alpine\nCOPY --chmod=999 a b\n",
        "Dockerfile:2:6: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777",
    ),
    (
        "FROM alpine\nCOPY --chmod=u+q a b\n",
        "Dockerfile:2:6: invalid chmod parameter: 'u+q'. it should be octal string and between 0 and 07777",
    ),
    (
        "# escape=x\nFROM alpine\n",
        "Dockerfile:1:1: invalid escape token 'x' does not match ` or \\",
    ),
    (
        "# escape=`\n# escape=\\\nFROM alpine\n",
        "Dockerfile:2:1: only one escape parser directive can be used",
    ),
    (
        'FROM alpine\nCMD ["a", 1]\n',
        "Dockerfile:2:1: when using JSON array syntax, arrays must be comprised of strings only",
    ),
    ("FROM alpine\nENV X\n", "Dockerfile:2:1: ENV must have two arguments"),
    (
        "FROM alpine\nLABEL a=1 b\n",
        'Dockerfile:2:1: Syntax error - can\'t find = in "b". Must be of the form: name=value',
    ),
    (
        "FROM alpine\nRUN --mount=type=cache,target=/x \\\n    --mount=type=cache,sharing=bogus,target=/y true\n",
        'Dockerfile:3:5: unsupported sharing value "bogus"',
    ),
    (
        "FROM alpine\nRUN --mount=type=bind,source=.,target=/x,z true\n",
        "Dockerfile:2:5: invalid field 'z' must be a key=value pair",
    ),
    (
        "FROM alpine\nRUN --mount=type=cach,target=/x true\n",
        'Dockerfile:2:5: unsupported mount type "cach" (did you mean cache?)',
    ),
    ("FROM alpine\nRUN --network=fake true\n", 'Dockerfile:2:5: invalid network mode "fake"'),
    (
        "FROM alpine AS 1st\n",
        'Dockerfile:1:1: invalid name for build stage: "1st", name can\'t start with a number or contain symbols',
    ),
    (
        "FROM alpine\nHEALTHCHECK --interval=1x CMD true\n",
        'Dockerfile:2:13: time: unknown unit "x" in duration "1x"',
    ),
    (
        "FROM alpine\nHEALTHCHECK --timeout=10us CMD true\n",
        'Dockerfile:2:13: Interval "timeout" cannot be less than 1ms',
    ),
    ("ARG B\nFROM $B\n", "Dockerfile:2:1: base name ($B) should not be blank"),
    (
        "FROM alpine AS a\nCOPY --from=b x y\nFROM alpine AS b\nCOPY --from=a x y\n",
        "Dockerfile:2:6: circular dependency detected on stage: a (a -> b -> a)",
    ),
    (
        "FROM alpine\nCOPY --from=3 x y\n",
        "Dockerfile:2:6: invalid stage index 3 (the file has 1 stage, numbered from 0)",
    ),
    (
        "FROM alpine\nARG S\nCOPY --from=$S x y\n",
        "Dockerfile:3:6: variable expansion is not supported for --from, define a new stage "
        "with FROM using ARG from global scope as a workaround",
    ),
    (
        'FROM alpine\nENV A="unterminated\n',
        'Dockerfile:2:1: failed to process "\\"unterminated": unexpected end of statement '
        "while looking for matching double-quote",
    ),
    ("FROM alpine\nSTOPSIGNAL SIGNOPE\n", "Dockerfile:2:1: invalid signal: SIGNOPE"),
    (
        "FROM alpine\nSHELL /bin/sh -c\n",
        "Dockerfile:2:1: SHELL requires the arguments to be in JSON form",
    ),
    (
        "FROM alpine\nCOPY onlyone\n",
        "Dockerfile:2:1: COPY requires at least two arguments, but only one was provided. Destination could not be determined",
    ),
    (
        "FROM alpine\nCOPY <<EOF <<EOF\nx\nEOF\nEOF\n",
        "Dockerfile:2:1: COPY cannot accept a heredoc as a destination",
    ),
    (
        "FROM --platform=linux/ alpine\n",
        'Dockerfile:1:1: failed to parse platform linux/: "" is an invalid component of "linux/": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument',
    ),
    (
        "FROM Alpine\n",
        'Dockerfile:1: failed to parse stage name "Alpine": invalid reference format: repository name (library/Alpine) must be lowercase',
    ),
    ("# only a comment\n\n", "Dockerfile:2: file with no instructions"),
    ("", "Dockerfile: file with no instructions"),
    (
        "FROM alpine\nRUN " + "x" * 70000 + "\n",
        "Dockerfile:2: dockerfile line greater than max allowed size of 65535",
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"), CASES, ids=[e.split(": ", 1)[1][:40] for _, e in CASES]
)
def test_error_location_and_message(source: str, expected: str) -> None:
    with pytest.raises(ForkliftError) as info:
        plan(parse_stages(parse(source, "Dockerfile")), all_stages=True)
    assert str(info.value) == expected
    assert isinstance(info.value, ParseError)


def test_errors_in_onbuild_children_point_at_the_child() -> None:
    # Like BuildKit, the wrapped instruction is only checked when the trigger is
    # used (in a child build): parsing the stage is fine, the trigger is not.
    parsed = parse_stages(parse("FROM alpine\nONBUILD COPY --bogus a b\n"))
    onbuild = parsed.stages[0].commands[0]
    with pytest.raises(ParseError) as info:
        onbuild.trigger()  # type: ignore[attr-defined]
    assert str(info.value) == "Dockerfile:2:14: unknown flag: --bogus"
    df = parse("FROM alpine\nONBUILD RUN --mount=type=cache,target=/x <<EOF\nhi\nEOF\n")
    child = df.instructions[1].child
    assert child is not None
    assert (child.start_line, child.column) == (2, 9)
    assert child.flags[0].column == 13
    assert df.instructions[1].heredocs[0].content == "hi\n"


def test_cli_prints_one_line_and_no_traceback(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    path = Path(str(tmp_path)) / "Dockerfile"
    path.write_text("FROM alpine\nCOPY --chmod 777 a b\n")
    proc = subprocess.run(
        [sys.executable, "-m", "forklift", "dockerfile", "targets", "-f", str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"Error: {path}:2:6: missing a value on flag: --chmod\n"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_cli_parse_checks_instructions_unless_syntax_only(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    path = Path(str(tmp_path)) / "broken.Dockerfile"
    path.write_text("FROM alpine\n  FORM x\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "forklift", "dockerfile", "parse", *args, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )

    checked = run()
    assert checked.returncode == 1
    assert checked.stderr == f"Error: {path}:2:3: unknown instruction: FORM (did you mean FROM?)\n"
    lenient = run("--syntax-only", "--format", "dump")
    assert lenient.returncode == 0
    assert lenient.stdout == '(from "alpine")\n(form "")\n'
