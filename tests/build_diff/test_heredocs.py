"""Heredocs, which Debian 12's buildah (1.28) cannot parse: checked against BuildKit's results.

The expected contents follow BuildKit's rules (dockerfile2llb dispatchRun and
dispatchCopy, Dockerfile reference "Here-Documents"):

* ``RUN <<EOF`` alone: the body is the shell script (``SHELL`` + body);
* a body starting with ``#!``: written to ``/dev/pipes/<NAME>`` (mode 0755) and run
  directly, so ``$0`` is that path;
* ``RUN cmd <<EOF``: the instruction line and the heredoc go to the shell as is;
* ``COPY <<NAME DEST``: a file made with mode 0644 (moby/buildkit#3992; ``--chmod``
  overrides), its body expanded with the build's variables unless the delimiter is quoted;
* ``<<-`` strips leading tabs.
"""

from __future__ import annotations

from pathlib import Path

from tests.build_diff.harness import forklift_image, snapshot, write_context
from tests.helpers import run_cli

DOCKERFILE = (
    "FROM busybox\n"
    "ARG WHO=world\n"
    "ENV GREETING=hello\n"
    "RUN <<EOF\n"
    "echo one > /h1\n"
    "echo two >> /h1\n"
    "EOF\n"
    "RUN <<EOF\n"
    "#!/bin/sh\n"
    'echo "arg0=$0 who=$WHO" > /h2\n'
    "EOF\n"
    "RUN cat <<EOF > /h3\n"
    "$GREETING $WHO\n"
    "EOF\n"
    "RUN cat <<'EOF' > /h4\n"
    "$GREETING $WHO\n"
    "EOF\n"
    "RUN <<-EOF\n"
    "\techo tabs > /h5\n"
    "\techo gone >> /h5\n"
    "EOF\n"
    "COPY <<EOF /c1\n"
    "$GREETING $WHO\n"
    "EOF\n"
    "COPY <<'EOF' /c2\n"
    "$GREETING $WHO\n"
    "EOF\n"
    "COPY <<a.txt <<b.txt /dir/\n"
    "first\n"
    "a.txt\n"
    "second\n"
    "b.txt\n"
    "COPY --chmod=0755 --chown=app:app <<-EOF /bin/hello\n"
    "\t#!/bin/sh\n"
    "\techo hi\n"
    "EOF\n"
    "RUN /bin/hello > /h6\n"
)


def test_heredocs_give_buildkits_results(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    write_context(ctx, {"Dockerfile": DOCKERFILE})
    run_cli("build", "-q", "-t", "heredocs:1", str(ctx), check=True)
    _, root = forklift_image("heredocs:1", tmp_path / "image")
    tree = snapshot(root)

    def content(path: str) -> bytes:
        return (root / path).read_bytes()

    assert content("h1") == b"one\ntwo\n"
    assert content("h2") == b"arg0=/dev/pipes/EOF who=world\n"
    assert content("h3") == b"hello world\n"  # the shell expands an unquoted heredoc
    assert content("h4") == b"$GREETING $WHO\n"
    assert content("h5") == b"tabs\ngone\n"
    assert content("c1") == b"hello world\n" and tree["c1"].mode == 0o644
    assert content("c2") == b"$GREETING $WHO\n"
    assert content("dir/a.txt") == b"first\n" and content("dir/b.txt") == b"second\n"
    hello = tree["bin/hello"]
    assert (hello.mode, hello.uid, hello.gid) == (0o755, 1000, 1000)
    assert content("bin/hello") == b"#!/bin/sh\necho hi\n"
    assert content("h6") == b"hi\n"
    # the shebang script's mount point is not left in the image
    assert "dev/pipes" not in tree
