"""docker's command-line conventions where docker users expect them: --version, "did you
mean", and a ``--debug`` that belongs to forklift only when given before the verb."""

from __future__ import annotations

import re
from pathlib import Path

from forklift import __version__
from forklift.cli import _wants_debug
from tests.helpers import run_cli
from tests.registry_server.servers import start_distribution


def test_version_flag_and_verb() -> None:
    flag = run_cli("--version", check=True)
    assert flag.stdout == f"forklift version {__version__}\n"
    assert run_cli("version", check=True).stdout.strip() == __version__


def test_a_mistyped_verb_suggests_the_right_one() -> None:
    r = run_cli("biuld", ".")
    assert r.returncode == 2
    assert "No such command 'biuld' (did you mean build?)." in r.stderr
    assert "did you mean pull?" in run_cli("pul").stderr
    far = run_cli("xyzzy")
    assert far.returncode == 2 and "No such command 'xyzzy'." in far.stderr
    assert "did you mean" not in far.stderr


def test_debug_is_forklift_s_own_only_before_the_verb() -> None:
    assert _wants_debug(["--debug", "pull", "x"])
    assert _wants_debug(["--home", "/h", "--debug", "images"])
    assert not _wants_debug(["run", "busybox", "app", "--debug"])
    assert not _wants_debug(["--home", "--debug", "images"])  # --debug is --home's value
    assert not _wants_debug(["lint", "--debug"])


def test_debug_logs_the_registry_client(tmp_path: Path) -> None:
    # a real registry that lacks the image: the client's log lines show up only with --debug
    debug_line = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ forklift\.[\w.]+: ", re.M)
    server = start_distribution(tmp_path / "registry")
    try:
        env = {"FORKLIFT_HOME": str(tmp_path / "home")}
        args = ("pull", f"{server.host}/nosuch/image:1")
        quiet = run_cli(*args, env=env)
        assert quiet.returncode != 0 and not debug_line.search(quiet.stderr)
        loud = run_cli("--debug", *args, env=env)
        assert loud.returncode == quiet.returncode
        assert debug_line.search(loud.stderr), loud.stderr
        assert server.host in loud.stderr  # it says what it asked whom
        # after the verb, --debug is not forklift's (here: an unknown option of pull)
        assert not debug_line.search(run_cli(*args, "--debug", env=env).stderr)
    finally:
        server.stop()


def test_shell_completion_lists_verbs_and_run_options() -> None:
    env = {"_FORKLIFT_COMPLETE": "bash_complete", "COMP_WORDS": "forklift bu", "COMP_CWORD": "1"}
    assert run_cli(env=env).stdout.split() == ["plain,build"]
    env.update(COMP_WORDS="forklift run --pu", COMP_CWORD="2")
    # --pull completes; the hidden docker flags forklift refuses (--publish) do not
    assert run_cli(env=env).stdout.split() == ["plain,--pull"]
    script = run_cli(env={"_FORKLIFT_COMPLETE": "bash_source"}).stdout
    assert "complete -o nosort -F _forklift_completion forklift" in script
