"""``forklift login`` and ``forklift logout``: registry credentials, as docker keeps them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from forklift.errors import UsageError

if TYPE_CHECKING:
    from forklift.registry.client import ClientOptions


def _options(insecure: bool, ca_bundle: str | None, registry: str) -> ClientOptions:
    from forklift.registry.client import ClientOptions

    extra = frozenset({registry}) if insecure else frozenset()
    base = ClientOptions()
    return ClientOptions(
        insecure_registries=base.insecure_registries | extra,
        ca_bundle=Path(ca_bundle) if ca_bundle else None,
    )


def _read_password_stdin() -> str:
    data = sys.stdin.read()
    # docker strips the trailing newline that `echo` and files add
    return data.rstrip("\r\n")


@click.command()
@click.argument("registry", required=False, default="docker.io")
@click.option("-u", "--username", help="User name (prompted for when not given).")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password (or token) from standard input instead of prompting.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plain HTTP or an unverified certificate for this registry.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, exists=True),
    help="Extra CA certificates (PEM) to trust for this registry.",
)
def login(
    registry: str,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
    ca_bundle: str | None,
) -> None:
    """Log in to REGISTRY (default docker.io) and save the credentials.

    The credentials are checked with the registry before they are saved in
    Docker's config.json (through its credential helper when one is set).
    There is deliberately no --password flag: a password on the command line
    would show in `ps` and shell history.
    """
    from forklift.errors import ForkliftError
    from forklift.registry.client import (
        AuthenticationRequired,
        Credentials,
        CredentialStore,
        RegistryClient,
        normalize_registry,
    )

    name = normalize_registry(registry)
    if password_stdin:
        if not username:
            raise UsageError("--password-stdin needs --username")
        password = _read_password_stdin()
    else:
        if not username:
            username = click.prompt("Username", err=True).strip()
        password = click.prompt("Password", hide_input=True, err=True)
    if not username:
        raise UsageError("the user name must not be empty")
    if not password:
        raise UsageError("the password must not be empty")
    creds = Credentials(username, password)
    options = _options(insecure, ca_bundle, name)
    with RegistryClient(name, options=options, credentials=creds) as client:
        try:
            to_store = client.login(creds)
        except AuthenticationRequired:
            raise ForkliftError(
                f"login to {name} failed: the registry rejected the credentials of {username}"
            ) from None
    where = CredentialStore().store(name, to_store)
    if where.helper is None:
        click.echo(
            f"Credentials saved in {where.config} (base64, not encrypted; "
            "set a credsStore helper to keep them in a keychain).",
            err=True,
        )
    click.echo("Login Succeeded")


@click.command()
@click.argument("registry", required=False, default="docker.io")
def logout(registry: str) -> None:
    """Remove the saved credentials for REGISTRY (default docker.io)."""
    from forklift.registry.client import CredentialStore, normalize_registry

    name = normalize_registry(registry)
    store = CredentialStore()
    if store.erase(name):
        click.echo(f"Removing login credentials for {name}")
    else:
        click.echo(f"Not logged in to {name}")
    leftover = store.remaining_elsewhere(name)
    if leftover is not None:
        click.echo(
            f"Warning: credentials for {name} remain in {leftover} (podman/skopeo's login) "
            "and will still be used; remove them with `podman logout`.",
            err=True,
        )
