"""``forklift build``: docker-compatible flags over :func:`forklift.build.builder.build`."""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from forklift.cli._common import cancellable
from forklift.cli._policy import enforcer, policy_options
from forklift.errors import UsageError

if TYPE_CHECKING:
    from forklift.lint.config import LintConfig
    from forklift.lint.findings import LintResult


def _pairs(values: tuple[str, ...], what: str, *, from_env: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        if not sep:
            if not from_env:
                raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
            env = os.environ.get(key)
            if env is None:
                continue  # docker: `--build-arg X` with X unset is ignored
            value = env
        out[key] = value
    return out


@click.command()
@click.argument("context", default=".")
@click.option("-t", "--tag", "tags", multiple=True, help="Name the image (repeatable).")
@click.option(
    "-f", "--file", "file", help="Dockerfile path (default CONTEXT/Dockerfile; '-' reads stdin)."
)
@click.option("--target", help="Build this stage (default: the last).")
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    help="KEY=VALUE, or KEY to take it from the environment.",
)
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option("--no-cache-filter", multiple=True, help="Do not use the cache for these stages.")
@click.option("--pull", is_flag=True, help="Pull base images again even if they are in the store.")
@click.option("--platform", help="Target platform (only this machine's platform is supported).")
@click.option(
    "--label", "labels", multiple=True, help="KEY=VALUE label for the image (repeatable)."
)
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image ID to this file.")
@click.option(
    "--progress",
    type=click.Choice(["auto", "plain", "tty", "quiet"]),
    default="auto",
    show_default=True,
    help="plain: one line per event (CI logs); tty: a live view; quiet: only the image ID.",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Same as --progress=quiet; print only the image ID."
)
@click.option(
    "-o",
    "--output",
    help="type=image (default) | type=oci|docker|tar,dest=FILE (- for stdout) | "
    "type=local,dest=DIR (or just DIR; '-' means type=tar,dest=-).",
)
@click.option(
    "--secret", "secrets", multiple=True, help="id=ID,src=FILE or id=ID,env=VAR (repeatable)."
)
@click.option(
    "--network",
    type=click.Choice(["default", "none", "host"]),
    default="default",
    help="Network for RUN.",
)
@click.option(
    "--build-context", "build_contexts", multiple=True, help="NAME=PATH or NAME=docker-image://REF."
)
@click.option(
    "--rewrite-timestamp",
    is_flag=True,
    help="Clamp file mtimes in new layers to SOURCE_DATE_EPOCH.",
)
@click.option(
    "--compression",
    type=click.Choice(["gzip", "zstd", "none"]),
    default="gzip",
    help="Layer compression.",
)
@click.option(
    "--runtime", help="OCI runtime for RUN (runc or crun; default: whichever is installed)."
)
@click.option(
    "--explain-cache", is_flag=True, help="Print the full comparison behind every cache miss."
)
@click.option(
    "--print",
    "print_",
    type=click.Choice(["outline", "targets"]),
    help="Describe the Dockerfile instead of building.",
)
@click.option(
    "--format",
    "print_format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Format for --print.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Run the checks and do not build (like docker): exit 1 if one fails; -q: exit code only.",
)
@click.option(
    "--lint", is_flag=True, help="Lint the Dockerfile first, then build unless it has errors."
)
@click.option("-j", "--jobs", type=click.IntRange(1, 32), default=4, help="Stages built at once.")
@policy_options
@click.option(
    "--provenance", is_flag=True, help="Record SLSA provenance v1, attached to the image."
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False),
    help="Sign the image (each -t name) and its provenance/SBOM attestations with this key.",
)
@click.option(
    "--sbom", is_flag=True, help="Write an SBOM of the built image and attach it to the image."
)
@click.option(
    "--sbom-format",
    type=click.Choice(["spdx-json", "cyclonedx-json"]),
    default="spdx-json",
    show_default=True,
    help="Format of the --sbom document.",
)
@click.option(
    "--sbom-output", type=click.Path(dir_okay=False), help="Also write the --sbom document here."
)
@click.option(
    "--scan",
    "scan_",
    is_flag=True,
    help="Scan the built image (forklift scan) before tagging it; see --scan-exit-code.",
)
@click.option(
    "--scan-severity", default="UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL", help="Severities --scan reports."
)
@click.option(
    "--scan-exit-code",
    type=int,
    default=0,
    help="With --scan: exit with this code, and tag nothing, when the scan reports anything.",
)
@click.option(
    "--scan-format",
    type=click.Choice(["table", "json", "sarif"]),
    default="table",
    help="With --scan: the report's format.",
)
@click.option("--scan-output", type=click.Path(dir_okay=False), help="Write the scan report here.")
@cancellable("build")
def build(
    context: str,
    tags: tuple[str, ...],
    file: str | None,
    target: str | None,
    build_args: tuple[str, ...],
    no_cache: bool,
    no_cache_filter: tuple[str, ...],
    pull: bool,
    platform: str | None,
    labels: tuple[str, ...],
    iidfile: str | None,
    progress: str,
    quiet: bool,
    output: str | None,
    secrets: tuple[str, ...],
    network: str,
    build_contexts: tuple[str, ...],
    rewrite_timestamp: bool,
    compression: str,
    runtime: str | None,
    explain_cache: bool,
    print_: str | None,
    print_format: str,
    check: bool,
    lint: bool,
    jobs: int,
    policy_file: str | None,
    verify_policy: bool,
    insecure_policy: bool,
    provenance: bool,
    sign_key: str | None,
    sbom: bool,
    sbom_format: str,
    sbom_output: str | None,
    scan_: bool,
    scan_severity: str,
    scan_exit_code: int,
    scan_format: str,
    scan_output: str | None,
) -> None:
    """Build an image from a Dockerfile (CONTEXT is a directory, or '-' for a tar on stdin)."""
    from forklift.build.options import BuildOptions, find_dockerfile, parse_output, parse_secret
    from forklift.oci.platform import Platform
    from forklift.reference import parse_reference

    if context == "-" and file == "-":
        raise UsageError("the context and the Dockerfile cannot both come from stdin")
    args = _pairs(build_args, "--build-arg", from_env=True)
    from_stdin = context == "-"
    with contextlib.ExitStack() as stack:
        if context == "-":
            context = _context_from_stdin(stack)
        elif not os.path.isdir(context):
            raise UsageError(f"build context {context!r} is not a directory")
        dockerfile_text = sys.stdin.read() if file == "-" else None
        path = find_dockerfile(context, file if file != "-" else None)
        if print_:
            _print(print_, print_format, path, file == "-", dockerfile_text, target, args)
            return
        if check:
            sys.exit(_check(context, path, dockerfile_text, quiet))
        if lint:
            _lint_first(context, path, dockerfile_text)
        out = parse_output(output) if output else parse_output("type=image")
        wanted_tags = tuple(parse_reference(t) for t in tags)
        # with --scan the image is tagged only after the scan passed
        scan_first = scan_ and out.type == "image"
        options = BuildOptions(
            context=context,
            dockerfile=file,
            dockerfile_text=dockerfile_text,
            tags=() if scan_first else wanted_tags,
            target=target,
            build_args=args,
            no_cache=no_cache,
            no_cache_filter=no_cache_filter,
            pull=pull,
            platform=Platform.parse(platform) if platform else None,
            labels=_pairs(labels, "--label"),
            secrets={s.id: s for s in (parse_secret(x) for x in secrets)},
            network=network,
            build_contexts=_pairs(build_contexts, "--build-context"),
            # docker passes SOURCE_DATE_EPOCH from the environment when no build arg sets it
            source_date_epoch=args.get("SOURCE_DATE_EPOCH", os.environ.get("SOURCE_DATE_EPOCH")),
            rewrite_timestamp=rewrite_timestamp,
            compression="" if compression == "none" else compression,
            runtime=runtime,
            output=out,
            jobs=jobs,
            image_policy=enforcer(policy_file, verify_policy, insecure_policy),
        )
        from forklift.build.progress import make_progress
        from forklift.cli._common import open_store

        store = open_store()
        if sbom_output and not sbom:
            raise UsageError("--sbom-output goes with --sbom")
        if sbom and options.output.type != "image":
            raise UsageError("--sbom needs the image in the store (type=image)")
        if (provenance or sign_key) and options.output.type != "image":
            raise UsageError("--provenance and --sign-key need the image in the store (type=image)")
        if sign_key and not options.tags:
            raise UsageError("--sign-key signs the image for its names: give it one with -t NAME")
        private_key = None
        if sign_key:
            # asked before the build, so a password prompt does not wait for its end
            from forklift.sign.keys import PasswordSource, read_private_key

            private_key = read_private_key(sign_key, PasswordSource())
        started = _now()
        started_ns = time.time_ns()
        mode = "quiet" if quiet else progress
        # Only a plain build may be answered from the record of the last one (build.noop):
        # the extras below need the builder, and a stdin context is new every time.
        replayable = not (
            from_stdin or lint or explain_cache or sbom or provenance or sign_key or scan_
        )
        with make_progress(mode) as display:
            result = None
            if replayable:
                from forklift.build import noop

                result = noop.replay(options, store, display)
            if result is None:
                from forklift.build.builder import Builder

                builder = Builder(options, store, progress=display)
                result = builder.run()
                if replayable and builder.replay_inputs is not None:
                    noop.save(store, options, builder.replay_inputs, result, started_ns)
        if scan_:
            passed = _scan_built(str(result.digest), scan_severity, scan_format, scan_output)
            if not passed and scan_exit_code:
                click.echo("Error: the scan reported findings; the image was not tagged", err=True)
                sys.exit(scan_exit_code)
            if scan_first and wanted_tags:
                for ref in wanted_tags:
                    store.tag(str(result.digest), ref)
                result = replace(result, tags=wanted_tags)
        if sbom:  # before signing: --sign-key turns an attached SBOM into an attestation
            from forklift.sbom.attach import attach_sbom

            attached = attach_sbom(
                store,
                str(result.digest),
                sbom_format,
                name=result.tags[0].familiar() if result.tags else None,
            )
            if sbom_output:
                from forklift.fsutil import atomic_write

                atomic_write(sbom_output, attached.document.encode("utf-8"))
            click.echo(
                f"Attached an SBOM ({sbom_format}, {attached.packages} packages, "
                f"{attached.manifest_digest})",
                err=True,
            )
        if provenance or private_key is not None:
            from forklift.sign.provenance import after_build

            for line in after_build(
                store,
                options,
                result,
                provenance=provenance,
                sign_key=private_key,
                started=started,
            ):
                click.echo(line, err=True)
        if explain_cache:
            click.echo("\n".join(builder.explanations) or "no cache misses", err=True)
    if iidfile:
        Path(iidfile).write_text(str(result.image_id))
    if quiet or progress == "quiet":
        if not out.to_stdout:  # standard output carries the export
            click.echo(str(result.image_id))
    else:
        click.echo(
            f"Built {result.image_id.short} ({result.cached_steps} of {len(result.steps)} steps cached)",
            err=True,
        )
        for t in result.tags:
            click.echo(f"Tagged {t.familiar()}", err=True)
        if result.exported:
            click.echo(f"Wrote {result.exported}", err=True)


def _scan_built(digest: str, severity: str, fmt: str, output: str | None) -> bool:
    """``--scan``: scan the built image; True if nothing was reported."""
    from forklift.cli.scan import _csv
    from forklift.scan.db.model import Severity
    from forklift.scan.report import render
    from forklift.scan.scanner import ScanOptions, scan_image

    levels = _csv(severity.lower(), tuple(s.value.lower() for s in Severity), "--scan-severity")
    result = scan_image(
        digest, ScanOptions(severities=frozenset(Severity(x.upper()) for x in levels))
    )
    text = render(result, fmt)
    if output:
        from forklift.fsutil import atomic_write

        atomic_write(output, text.encode())
    else:
        click.echo(text, err=True, nl=False)
    return not result.failed


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _lint(context: str, path: str, text: str | None) -> tuple[LintResult, LintConfig]:
    """Lint the build's Dockerfile with the lint config found in the context."""
    from forklift.lint.config import LintConfig, find_config
    from forklift.lint.engine import lint_dockerfile

    name = "Dockerfile" if text is not None else os.path.basename(path)
    if text is None:
        try:
            text = Path(path).read_text(errors="surrogateescape")
        except FileNotFoundError:
            raise UsageError(f"Dockerfile not found: {path}") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a directory, not a Dockerfile") from None
    found = find_config(context)
    config = LintConfig.load(found) if found else LintConfig()
    result = lint_dockerfile(
        text, filename=name, config=config, context=context, dockerfile_path=path
    )
    return result, config


def _check(context: str, path: str, text: str | None, quiet: bool) -> int:
    """``--check`` (docker's): run the checks, build nothing; 1 when a check fails."""
    from rich.console import Console

    from forklift.lint.report import render_terminal

    result, config = _lint(context, path, text)
    failed = result.fails(config.failure_threshold)
    if not quiet:
        console = Console(highlight=False, soft_wrap=True)
        render_terminal([result], console)
        count = len(result.findings)
        if count:
            console.print(f"Check complete, {count} finding{'s' if count != 1 else ''}.")
        else:
            console.print("Check complete, no findings.")
    return 1 if failed else 0


def _lint_first(context: str, path: str, text: str | None) -> None:
    """``--lint``: show the findings, and stop before building if one is an error."""
    from rich.console import Console

    from forklift.errors import BuildError
    from forklift.lint.report import render_terminal

    result, _ = _lint(context, path, text)
    if result.findings:
        render_terminal([result], Console(stderr=True))
    if result.has_errors():
        errors = sum(1 for f in result.findings if f.severity.name == "ERROR")
        raise BuildError(f"--lint: the Dockerfile has {errors} error(s); the build did not start")


def _context_from_stdin(stack: contextlib.ExitStack) -> str:
    """A tar (plain or compressed) on stdin, unpacked safely into a scratch directory.

    The directory is the snapshotter's scratch space, not $TMPDIR, so that what a
    killed build leaves there is removed by the next forklift command.
    """
    from forklift.cli._common import open_store
    from forklift.layers import extract_layer
    from forklift.runtime.snapshots import Snapshotter

    snapshotter = Snapshotter(open_store())
    stack.callback(snapshotter.close)
    tmp = str(stack.enter_context(snapshotter.scratch()))
    extract_layer(sys.stdin.buffer, tmp, label="build context on stdin")
    return tmp


def _print(
    what: str,
    fmt: str,
    path: str,
    from_stdin: bool,
    text: str | None,
    target: str | None,
    build_args: dict[str, str],
) -> None:
    from forklift.dockerfile.instructions import parse_stages
    from forklift.dockerfile.outline import list_targets, outline, render_outline, render_targets
    from forklift.dockerfile.parser import parse

    if text is None:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise UsageError(f"Dockerfile not found: {path}") from None
    parsed = parse_stages(parse(text, "Dockerfile" if from_stdin else os.path.basename(path)))
    if what == "targets":
        click.echo(render_targets(list_targets(parsed), fmt))
    else:
        click.echo(render_outline(outline(parsed, target=target, build_args=build_args), fmt))
