"""``--help`` and the README agree: every option has help text and is documented, and the
README's flag tables name only flags that exist."""

from __future__ import annotations

import re

import click

from forklift.cli import cli
from tests.docs.readme import README

TEXT = README.read_text()


def _commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    out: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: str) -> None:
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, f"{path} {name}")

    walk(cli, "forklift")
    return out


def _options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]


def test_every_command_and_option_has_help_text() -> None:
    missing = [path for path, cmd in _commands() if not cmd.help]
    missing += [
        f"{path} {'/'.join(o.opts)}"
        for path, cmd in _commands()
        for o in _options(cmd)
        if not o.help
    ]
    assert not missing, missing


def _documented(name: str) -> bool:
    """``--x-y`` appears as itself, or shortened as ``--x[-y]`` (how tables list variants)."""
    if re.search(re.escape(name) + r"(?![\w-])", TEXT):
        return True
    parts = name.split("-")
    for i in range(3, len(parts)):
        short = "-".join(parts[:i]) + "[-" + "-".join(parts[i:]) + "]"
        if short in TEXT:
            return True
    return False


def test_every_option_is_documented_in_the_readme() -> None:
    undocumented = []
    for path, cmd in _commands():
        for o in _options(cmd):
            names = [n for n in (*o.opts, *o.secondary_opts) if n not in ("-h", "--help")]
            if names and not any(_documented(n) for n in names):
                undocumented.append(f"{path} {'/'.join(names)}")
    assert not undocumented, undocumented


def _table_flags(heading: str) -> set[str]:
    section = TEXT[TEXT.index(heading) :]
    section = section[: section.index("\n#", 5)]
    flags: set[str] = set()
    for cell in re.findall(r"^\| `([^|]*)` \|", section, re.M):
        flags.update(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", cell))
    return flags


def test_flag_tables_name_only_real_flags() -> None:
    ctx = click.Context(cli)
    for verb, heading in (("run", "### `forklift run [OPTIONS]"), ("build", "### Flags")):
        cmd = cli.get_command(ctx, verb)
        assert cmd is not None
        real = {
            n
            for p in cmd.params
            if isinstance(p, click.Option)
            for n in (*p.opts, *p.secondary_opts)
        }
        assert _table_flags(heading) <= real, (verb, _table_flags(heading) - real)


def test_statements_the_newcomer_tripped_over() -> None:
    # copy has the registry flags; load reads xz and bzip2 too
    ctx = click.Context(cli)
    copy = cli.get_command(ctx, "copy")
    assert copy is not None and "--insecure-registry" in {n for p in copy.params for n in p.opts}
    assert "has no `--insecure-registry`" not in TEXT
    load = cli.get_command(ctx, "load")
    assert load is not None and "xz" in (load.help or "") and "bzip2" in (load.help or "")
