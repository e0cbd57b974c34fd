"""``forklift serve``: run the registry server; ``forklift serve gc``: collect garbage."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from forklift.errors import UsageError


def _duration(value: str | None, flag: str) -> float | None:
    """'90', '90s', '15m', '2h', '1d' -> seconds."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    mult = units.get(text[-1:])
    number = text[:-1] if mult else text
    try:
        seconds = float(number) * (mult or 1)
    except ValueError:
        raise UsageError(f"invalid {flag} {value!r}: expected seconds or 30s/15m/2h/1d") from None
    if seconds < 0:
        raise UsageError(f"invalid {flag} {value!r}: must not be negative")
    return seconds


def _need_serve_extra() -> None:
    """The server's own dependencies come with ``forklift[serve]``: say so if they are missing."""
    missing = []
    for module in ("granian", "bcrypt"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UsageError(
            f"forklift serve needs {' and '.join(missing)}, which come with the serve extra",
            hint="pip install 'forklift[serve]'",
        )


def _config(config_file: str | None, overrides: dict[str, Any]) -> Any:
    from forklift.registry.server.config import AuthConfig, GCConfig, ServerConfig, load_config

    cfg = load_config(Path(config_file)) if config_file else ServerConfig()
    top: dict[str, Any] = {}
    auth: dict[str, Any] = {}
    gc: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition(".")
        if section == "auth":
            auth[field] = value
        elif section == "gc":
            gc[field] = value
        else:
            top[key] = value
    if auth:
        top["auth"] = replace(cfg.auth or AuthConfig(), **auth)
    if gc:
        top["gc"] = replace(cfg.gc or GCConfig(), **gc)
    return replace(cfg, **top)


@click.group(invoke_without_command=True)
@click.option("--root", type=click.Path(file_okay=False), help="Storage root (blobs + metadata).")
@click.option("--addr", help="HOST:PORT to listen on (default 127.0.0.1:5000 without auth).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/TOML config.")
@click.option(
    "--htpasswd", type=click.Path(dir_okay=False), help="bcrypt htpasswd file (basic auth)."
)
@click.option(
    "--token-auth", is_flag=True, default=None, help="Docker token auth (built-in /token)."
)
@click.option("--anonymous-pull", is_flag=True, default=None, help="Let anyone pull.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option("--delete-enabled/--delete-disabled", default=None, help="Allow DELETE (default on).")
@click.option("--gc-interval", help="Background GC interval (e.g. 1h; 0 = off).")
@click.option("--gc-grace", help="Never collect what was used more recently (default 1h).")
@click.option(
    "--gc-untagged", is_flag=True, default=None, help="GC also deletes untagged manifests."
)
@click.option("--upload-ttl", help="Abandoned uploads expire after this long (default 1d).")
@click.option("--access-log", help="Access log: '-' = stderr (default), a file, or '' = off.")
@click.option(
    "--signature-policy",
    type=click.Path(dir_okay=False, exists=True),
    help="Policy file: protected repositories take and serve signed images only.",
)
@click.pass_context
def serve(ctx: click.Context, **opts: Any) -> None:
    """Run an OCI Distribution Spec registry (filesystem + SQLite)."""
    if ctx.invoked_subcommand is not None:
        return
    _need_serve_extra()
    from forklift.registry.server.config import TokenConfig
    from forklift.registry.server.runner import run

    overrides: dict[str, Any] = {
        "root": Path(opts["root"]) if opts["root"] else None,
        "addr": opts["addr"],
        "tls_cert": Path(opts["tls_cert"]) if opts["tls_cert"] else None,
        "tls_key": Path(opts["tls_key"]) if opts["tls_key"] else None,
        "delete_enabled": opts["delete_enabled"],
        "access_log": opts["access_log"],
        "signature_policy": Path(opts["signature_policy"]) if opts["signature_policy"] else None,
        "auth.htpasswd": Path(opts["htpasswd"]) if opts["htpasswd"] else None,
        "auth.anonymous_pull": opts["anonymous_pull"],
        "gc.interval": _duration(opts["gc_interval"], "--gc-interval"),
        "gc.grace": _duration(opts["gc_grace"], "--gc-grace"),
        "gc.untagged": opts["gc_untagged"],
        "gc.upload_ttl": _duration(opts["upload_ttl"], "--upload-ttl"),
    }
    cfg = _config(opts["config_file"], overrides)
    if opts["token_auth"] and cfg.auth.token is None:
        cfg = replace(cfg, auth=replace(cfg.auth, token=TokenConfig()))
    run(cfg)


@serve.command("gc")
@click.option("--root", type=click.Path(file_okay=False), help="Storage root.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/TOML config.")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--now", "now_", is_flag=True, help="Remove it.")
@click.option("--grace", help="Keep what was used more recently than this (default 1h).")
@click.option("--untagged", is_flag=True, default=None, help="Also delete untagged manifests.")
@click.option("--upload-ttl", help="Expire uploads idle longer than this (default 1d).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc_command(
    root: str | None,
    config_file: str | None,
    dry_run: bool,
    now_: bool,
    grace: str | None,
    untagged: bool | None,
    upload_ttl: str | None,
    as_json: bool,
) -> None:
    """Collect garbage in a registry root (safe while the server runs)."""
    from forklift.registry.server.gc import collect
    from forklift.registry.server.metadata import SQLiteMetadata
    from forklift.registry.server.storage import FilesystemStorage

    if dry_run == now_:
        raise UsageError("say either --dry-run or --now")
    cfg = _config(
        config_file,
        {
            "root": Path(root) if root else None,
            "gc.grace": _duration(grace, "--grace"),
            "gc.untagged": untagged,
            "gc.upload_ttl": _duration(upload_ttl, "--upload-ttl"),
        },
    )
    if not (cfg.root / "metadata.db").exists():
        raise UsageError(f"{cfg.root} is not a registry root (no metadata.db)")
    storage = FilesystemStorage(cfg.root)
    meta = SQLiteMetadata(cfg.root / "metadata.db")
    try:
        report = collect(
            storage,
            meta,
            grace=cfg.gc.grace,
            upload_ttl=cfg.gc.upload_ttl,
            untagged=cfg.gc.untagged,
            dry_run=dry_run,
        )
    finally:
        meta.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb}: {len(report.blobs) + len(report.orphan_files)} blobs "
        f"({report.freed_bytes} bytes), {len(report.manifests)} manifests, "
        f"{len(report.untagged_manifests)} untagged manifests, {len(report.uploads)} uploads"
    )
