"""Command-line interface: a thin layer over the library.

Subcommands live in their own modules and are imported only when invoked, so
``forklift --help`` and quick verbs start fast. To add a verb, add one line to
``COMMANDS``: ``"name": "forklift.cli.module:attribute"`` where the attribute is
a click command or group.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any, NoReturn

import click

from forklift.cancel import TOKEN, Cancelled
from forklift.errors import ForkliftError

# verb -> "module:attribute"; kept sorted by the order `forklift --help` shows them.
COMMANDS: dict[str, str] = {
    "build": "forklift.cli.build:build",
    "dockerfile": "forklift.cli.dockerfile:dockerfile",
    "images": "forklift.cli.images:images",
    "inspect": "forklift.cli.images:inspect",
    "history": "forklift.cli.images:history",
    "tag": "forklift.cli.images:tag",
    "rmi": "forklift.cli.images:rmi",
    "prune": "forklift.cli.maintenance:prune",
    "fsck": "forklift.cli.maintenance:fsck",
    "save": "forklift.cli.transfer:save",
    "load": "forklift.cli.transfer:load",
    "copy": "forklift.cli.transfer:copy",
    "import": "forklift.cli.transfer:import_",
    "version": "forklift.cli.misc:version",
    "serve": "forklift.cli.serve:serve",
    "run": "forklift.cli.run:run",
    "ps": "forklift.cli.run:ps",
    "rm": "forklift.cli.run:rm",
    "logs": "forklift.cli.run:logs",
    "stop": "forklift.cli.run:stop",
    "wait": "forklift.cli.run:wait",
    "login": "forklift.cli.login:login",
    "logout": "forklift.cli.login:logout",
    "push": "forklift.cli.registry:push",
    "pull": "forklift.cli.registry:pull",
    "tags": "forklift.cli.registry:tags",
    "catalog": "forklift.cli.registry:catalog",
    "delete": "forklift.cli.registry:delete",
    "lint": "forklift.cli.lint:lint",
    "analyze": "forklift.cli.analyze:analyze",
    "sbom": "forklift.cli.sbom:sbom",
    "key": "forklift.cli.sign:key",
    "sign": "forklift.cli.sign:sign",
    "verify": "forklift.cli.sign:verify",
    "attest": "forklift.cli.sign:attest",
    "verify-attestation": "forklift.cli.sign:verify_attestation",
    "image": "forklift.cli.aliases:image",
    "container": "forklift.cli.aliases:container",
    "scan": "forklift.cli.scan:scan",
    "db": "forklift.cli.scan:db",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attr = self._lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's lookup, with "did you mean" for a mistyped verb (as Dockerfile errors do)."""
        name = args[0] if args else ""
        if name and self.get_command(ctx, name) is None and not name.startswith("-"):
            from forklift.dockerfile.gocompat import suggest

            close = suggest(name, self.list_commands(ctx), case_sensitive=True)
            hint = f" (did you mean {close}?)" if close else ""
            raise click.UsageError(f"No such command {name!r}{hint}.", ctx)
        return super().resolve_command(ctx, args)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from forklift import __version__

    click.echo(f"forklift version {__version__}")
    ctx.exit()


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version and exit.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Show tracebacks for errors and log what the registry client does (to stderr).",
)
@click.option(
    "--home",
    envvar="FORKLIFT_HOME",
    type=click.Path(file_okay=False),
    help="Store location (default $FORKLIFT_HOME or ~/.local/share/forklift).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, home: str | None) -> None:
    """forklift: build, run, store, move, serve, lint and analyse OCI images."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if home:
        os.environ["FORKLIFT_HOME"] = home


#: forklift's own options that take a value, so ``_wants_debug`` can step over it.
_GLOBAL_OPTIONS_WITH_VALUE = ("--home",)


def _wants_debug(argv: list[str]) -> bool:
    """``--debug`` given to forklift itself (before the verb), or ``FORKLIFT_DEBUG=1``.

    A ``--debug`` after the verb belongs to it or to a container's command
    (``forklift run IMAGE app --debug``) and changes nothing here.
    """
    if os.environ.get("FORKLIFT_DEBUG") == "1":
        return True
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--debug":
            return True
        if argv[i] == "--":
            break
        i += 2 if argv[i] in _GLOBAL_OPTIONS_WITH_VALUE else 1
    return False


def _configure_logging(debug: bool) -> None:
    """forklift's loggers to stderr: warnings as ``Warning: ...`` lines, everything with --debug.

    Applied when a module first takes a logger (``forklift.logs``), so a command that
    never logs does not import :mod:`logging`.
    """
    from forklift import logs

    logs.configure(lambda: _set_up_logging(debug))


def _set_up_logging(debug: bool) -> None:
    import logging

    class Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            if record.levelno >= logging.WARNING:
                return f"Warning: {record.getMessage()}"
            return super().format(record)

    logger = logging.getLogger("forklift")
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    if not any(getattr(h, "forklift_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(Formatter("%(asctime)s %(name)s: %(message)s"))
        handler.forklift_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``forklift`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    _exit(_run(args))


def _run(args: list[str]) -> int:
    """Run the command line ``args``; the exit code (errors reported on stderr)."""
    _configure_logging(_wants_debug(args))
    try:
        rc = cli.main(args=args, prog_name="forklift", standalone_mode=False)
    except ForkliftError as exc:
        if _wants_debug(args):
            import traceback

            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Cancelled as exc:
        # Everything was released on the way out; a worker thread still blocked in a
        # socket read must not hold the exit up (its partial file is the next run's to clean).
        click.echo(f"Error: {exc}", err=True)
        TOKEN.settle(1.0)  # the cancellation's own cleanups (partial blobs, containers) finish
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback.
        sys.stderr.close()
        return 1
    except OSError as exc:
        if _wants_debug(args):
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        return 1
    except Exception as exc:
        # A bug, not a user error: say so in one line; --debug shows where.
        if _wants_debug(args):
            raise
        click.echo(f"Error: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("Hint: run with --debug for the traceback, and report it", err=True)
        return 70
    return rc if isinstance(rc, int) else 0


def _exit(code: int) -> NoReturn:
    """End the process with ``code``, without the interpreter's module-by-module teardown.

    Tearing down the ~300 modules a registry verb loads takes ~30 ms, a fifth of a
    quick command. The command is over: exit handlers (``atexit``, which also runs
    ``weakref.finalize`` callbacks) still run and the standard streams are flushed,
    then the process ends. Not while another non-daemon thread runs (the
    interpreter's normal exit waits for it) nor under a profiler or tracer (which
    reports after the program returns): then the normal path is kept. A cancelled
    command does not wait for its threads either: one may be blocked in a read that
    only its timeout ends (what they held goes with the cancellation's callbacks or
    the next command's recovery).
    """
    import threading

    main = threading.main_thread()
    busy = any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())
    if busy and not TOKEN.cancelled:
        sys.exit(code)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or debugger reports after main returns: let it
    import atexit

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:  # another Python implementation: the normal way
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except (OSError, ValueError):
            code = code or 1  # output lost (a closed pipe): not a success
    os._exit(code)
