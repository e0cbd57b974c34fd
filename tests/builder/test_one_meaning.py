"""One meaning of a Dockerfile: build, ``--print`` and lint accept and reject the same inputs.

Every case below goes to all three: a real build (the builder), ``forklift
build --print outline`` (the CLI) and the linter (an FL000 finding). They must
all accept it, or all reject it with the same message at the same line. The
expected verdicts and messages are BuildKit's (dockerfile2llb and the parsers
it calls: moby/sys ``signal.ParseSignal``, BuildKit's ``parsePort``,
containerd's ``platforms.Parse``, distribution/reference), decided case by case
where forklift's three walkers used to disagree.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from forklift.build.builder import build
from forklift.build.options import BuildOptions
from forklift.build.progress import QuietProgress
from forklift.errors import ForkliftError
from forklift.lint import lint_dockerfile
from forklift.reference import parse_reference
from forklift.store import Store

pytestmark = pytest.mark.root

_SHA = "sha256:" + hashlib.sha256(b"x").hexdigest()

# (id, Dockerfile after "FROM busybox\n" or whole when it starts with FROM,
#  None when accepted / (line, BuildKit's message) when rejected)
CASES: list[tuple[str, str, tuple[int, str] | None]] = [
    # STOPSIGNAL: any non-zero number (Go's Atoi), or a name in moby/sys's Linux table
    ("stopsignal-number", "STOPSIGNAL 100\n", None),
    ("stopsignal-negative", "STOPSIGNAL -1\n", None),
    ("stopsignal-rt", "STOPSIGNAL SIGRTMIN+3\n", None),
    ("stopsignal-name-nosig", "STOPSIGNAL term\n", None),
    ("stopsignal-rtminx", "STOPSIGNAL SIGRTMINX\n", (2, "invalid signal: SIGRTMINX")),
    ("stopsignal-rt-too-far", "STOPSIGNAL SIGRTMIN+16\n", (2, "invalid signal: SIGRTMIN+16")),
    ("stopsignal-zero", "STOPSIGNAL 0\n", (2, "invalid signal: 0")),
    ("stopsignal-expanded", "ARG S=SIGNOPE\nSTOPSIGNAL $S\n", (3, "invalid signal: SIGNOPE")),
    # EXPOSE: BuildKit's parsePort (ports 0-65535; a host part is ignored, with a warning)
    ("expose-host-port", "EXPOSE 8080:80\n", None),
    ("expose-zero", "EXPOSE 0\n", None),
    ("expose-ip", "EXPOSE 127.0.0.1:8080:80/udp\n", None),
    ("expose-range", "EXPOSE 7000-7002/tcp\n", None),
    ("expose-out-of-range", "EXPOSE 70000\n", (2, "invalid containerPort: 70000")),
    ("expose-bad-proto", "EXPOSE 80/http\n", (2, 'invalid port: "80/http": invalid proto: http')),
    ("expose-backwards", "EXPOSE 10-5\n", (2, "invalid containerPort: 10-5")),
    ("expose-bad-ip", "EXPOSE 1.2.3:80:80\n", (2, "invalid IP address: 1.2.3")),
    (
        "expose-ranges-differ",
        "EXPOSE 8000-8001:80-82\n",
        (2, "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
    ),
    # COPY/ADD values checked before anything is copied
    (
        "chmod-too-big",
        "COPY --chmod=10000 a /a\n",
        (2, "invalid chmod parameter: '10000'. it should be octal string and between 0 and 07777"),
    ),
    ("chmod-symbolic", "COPY --chmod=u=rwX,go=rX a /a\n", None),
    ("copy-url", "COPY http://example.com/x /x\n", (2, "source can't be a URL for COPY")),
    (
        "add-checksum-local",
        f"ADD --checksum={_SHA} a /a\n",
        (2, "checksum requires HTTP(S) or Git sources"),
    ),
    (
        "add-checksum-bad",
        "ADD --checksum=nope http://example.com/x /x\n",
        (2, "invalid checksum digest format: nope"),
    ),
    # FROM lines
    (
        "platform-empty-part",
        "FROM --platform=linux/ busybox\n",
        (
            1,
            'failed to parse platform linux/: "" is an invalid component of "linux/": platform '
            'specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument',
        ),
    ),
    (
        "base-uppercase",
        "FROM Busybox\n",
        (
            1,
            'failed to parse stage name "Busybox": invalid reference format: repository name '
            "(library/Busybox) must be lowercase",
        ),
    ),
    ("base-blank", "ARG B\nFROM $B\n", (2, "base name ($B) should not be blank")),
    # expansion, stage order, instructions
    (
        "unterminated-quote",
        'ENV A="unterminated\n',
        (
            2,
            'failed to process "\\"unterminated": unexpected end of statement while looking for '
            "matching double-quote",
        ),
    ),
    (
        "required-variable",
        "ARG X\nENV Y=${X:?}\n",
        (3, 'failed to process "${X:?}": X: is not allowed to be unset'),
    ),
    (
        "copy-from-later-stage",
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nFROM a\n",
        (2, 'cannot copy from stage "b", it needs to be defined before current stage "a"'),
    ),
    # STOPSIGNAL takes the rest of the line as one word (BuildKit's parseString)
    ("stopsignal-two-words", "STOPSIGNAL 1 2\n", (2, "invalid signal: 1 2")),
    ("healthcheck-empty", "HEALTHCHECK\n", (2, "HEALTHCHECK requires at least one argument")),
]


def _dockerfile(text: str) -> str:
    return text if text.startswith(("FROM", "ARG")) and "FROM" in text else "FROM busybox\n" + text


def _context(tmp_path: Path, case: str, text: str) -> Path:
    ctx = tmp_path / case
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(_dockerfile(text))
    (ctx / "a").write_text("a\n")
    return ctx


def _build(ctx: Path) -> tuple[int, str] | None:
    try:
        build(
            BuildOptions(context=str(ctx), tags=(parse_reference("meaning:1"),)),
            progress=QuietProgress(),
        )
    except ForkliftError as exc:
        assert exc.location is not None, exc.message
        return exc.location.line or 0, exc.message
    return None


def _print(ctx: Path, cli) -> tuple[int, str] | None:  # type: ignore[no-untyped-def]
    r = cli("build", "--print", "outline", str(ctx))
    if r.returncode == 0:
        return None
    line = next(x for x in r.stderr.splitlines() if x.startswith("Error: "))
    where, message = line.removeprefix("Error: ").split(": ", 1)
    return int(where.split(":")[1]), message


def _lint(ctx: Path) -> tuple[int, str] | None:
    result = lint_dockerfile((ctx / "Dockerfile").read_text())
    errors = [(f.line, f.message) for f in result.findings if f.rule == "FL000"]
    assert len(errors) <= 1, errors
    return errors[0] if errors else None


@pytest.mark.parametrize(("case", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_build_print_and_lint_agree(
    busybox_image: str,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
    case: str,
    text: str,
    expected: tuple[int, str] | None,
) -> None:
    ctx = _context(tmp_path, case, text)
    verdicts = {"build": _build(ctx), "print": _print(ctx, cli), "lint": _lint(ctx)}
    assert verdicts == {"build": expected, "print": expected, "lint": expected}


def test_accepted_disputed_values_reach_the_image(busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "image", "STOPSIGNAL 100\nEXPOSE 8080:80 0 127.0.0.1:53:53/UDP\n")
    result = build(BuildOptions(context=str(ctx)), progress=QuietProgress())
    config = Store.open().resolve(str(result.image_id)).config
    assert config is not None
    assert config.config.stop_signal == "100"
    assert sorted(config.config.exposed_ports) == ["0/tcp", "53/udp", "80/tcp"]


def test_lint_warns_where_buildkit_warns(tmp_path: Path) -> None:
    # accepted, but BuildKit's checks flag the host part and the protocol's case
    text = _dockerfile("EXPOSE 127.0.0.1:8080:80/UDP\n")
    found = {(f.rule, f.message) for f in lint_dockerfile(text).findings}
    assert (
        "FL508",
        "EXPOSE instruction should not define an IP address or host-port mapping, found "
        "'127.0.0.1:8080:80/UDP'",
    ) in found
    assert (
        "FL509",
        "Defined protocol '127.0.0.1:8080:80/UDP' in EXPOSE instruction should be lowercase",
    ) in found


def test_copy_heredocs_expand_as_buildkit(busybox_image: str, tmp_path: Path) -> None:
    # BuildKit's own integration tests (testCopyHeredocSpecialSymbols,
    # testHeredocVarSubstitution): an unquoted heredoc expands variables even inside
    # quotes, and an escape gives the next character; a quoted one stays as written.
    ctx = tmp_path / "heredocs"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nARG name=world\n"
        "COPY <<EOF /q1\nHello '${name}'!\nEOF\n"
        'COPY <<EOF /q2\nHello "${name}"!\nEOF\n'
        "COPY <<EOF /s2\n\\\\\nEOF\n"
        "COPY <<EOF /s3\n\\$\nEOF\n"
        'COPY <<"EOF" /raw\n\\$ ${name}\nEOF\n'
    )
    result = build(BuildOptions(context=str(ctx)), progress=QuietProgress())
    store = Store.open()
    image = store.resolve(str(result.digest))
    files: dict[str, bytes] = {}
    import gzip
    import io
    import tarfile

    for layer in image.manifest.layers:  # type: ignore[union-attr]
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(store.read_blob(layer.digest)))) as tf:
            for m in tf:
                f = tf.extractfile(m)
                if f is not None:
                    files[m.name] = f.read()
    assert files["q1"] == b"Hello 'world'!\n"
    assert files["q2"] == b'Hello "world"!\n'
    assert files["s2"] == b"\\\n"
    assert files["s3"] == b"$\n"
    assert files["raw"] == b"\\$ ${name}\n"
