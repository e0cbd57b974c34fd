"""Signing verbs: ``key generate``, ``sign``, ``verify``, ``attest``, ``verify-attestation``.

Thin: options become :mod:`forklift.sign` calls. IMAGE is ``docker://REF``
(a registry), ``store:NAME`` (the local store), or a plain name: the stored
image of that name if there is one, else the registry's.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from forklift.cli.registry import client_options, connection_options
from forklift.errors import InvalidInput, UsageError


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise UsageError(f"invalid annotation {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _client(
    insecure: tuple[str, ...], ca_bundle: str | None, timeout: float | None
) -> dict[str, Any]:
    opts: dict[str, Any] = {"options": client_options(insecure, ca_bundle)}
    if timeout is not None:
        from forklift.registry.client.retry import Deadline

        opts["deadline"] = Deadline(timeout)
    return opts


def _where(target: Any) -> str:
    name = target.reference.name if target.reference is not None else ""
    return f"{name}@{target.digest}" if name else str(target.digest)


@click.group()
def key() -> None:
    """Signing keys in cosign's format."""


@key.command("generate")
@click.option(
    "--output-key-prefix",
    default="cosign",
    show_default=True,
    help="Write PREFIX.key (encrypted private key) and PREFIX.pub.",
)
def key_generate(output_key_prefix: str) -> None:
    """Generate an ECDSA P-256 key pair (password from COSIGN_PASSWORD or a prompt)."""
    from forklift.fsutil import atomic_write
    from forklift.sign.keys import PasswordSource, generate_key_pair

    private, public = Path(f"{output_key_prefix}.key"), Path(f"{output_key_prefix}.pub")
    for path in (private, public):
        if path.exists():
            raise UsageError(f"{path} already exists; remove it or choose --output-key-prefix")
    pair = generate_key_pair(PasswordSource(confirm=True)())
    atomic_write(private, pair.private_pem)
    os.chmod(private, 0o600)
    atomic_write(public, pair.public_pem)
    click.echo(f"Private key written to {private}", err=True)
    click.echo(f"Public key written to {public}", err=True)


def _private_key(path: str) -> Any:
    from forklift.sign.keys import PasswordSource, read_private_key

    return read_private_key(path, PasswordSource())


@click.command()
@click.argument("image")
@click.option("--key", "key_path", required=True, help="Private key file (cosign's format or PEM).")
@click.option(
    "-a", "--annotations", multiple=True, help="KEY=VALUE into the payload's optional part."
)
@click.option("--referrers", is_flag=True, help="Also store the signature as an OCI 1.1 referrer.")
@click.option(
    "--referrers-only", is_flag=True, help="Store it only as a referrer (no sha256-<hex>.sig tag)."
)
@click.option("--sign-identity", help="The docker-reference to sign for (default: IMAGE's name).")
@connection_options
def sign(
    image: str,
    key_path: str,
    annotations: tuple[str, ...],
    referrers: bool,
    referrers_only: bool,
    sign_identity: str | None,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """Sign IMAGE's manifest digest and store the signature next to it (cosign's layout)."""
    from forklift.sign.signing import sign_image
    from forklift.sign.targets import open_target

    private = _private_key(key_path)
    with open_target(image, **_client(insecure, ca_bundle, timeout)) as target:
        result = sign_image(
            target,
            private,
            annotations=_pairs(annotations),
            tag_layout=not referrers_only,
            referrers=referrers or referrers_only,
            identity=sign_identity,
        )
        where = "the local store" if target.where == "store" else target.reference.domain  # type: ignore[union-attr]
    ref = target.reference
    if ref is not None and ref.digest is None:
        click.echo(f"{ref.familiar()} names {result.digest}: signing that digest", err=True)
    for att in result.stored:
        how = f"tag {att.tag_name}" if att.tag else "referrer"
        click.echo(f"Stored signature in {where} ({how}, manifest {att.digest})", err=True)
    click.echo(f"Signed {_where(target)} for {result.identity}")


def _verify_options(
    keys_: tuple[str, ...],
    trusted_root: str | None,
    identity: str | None,
    identity_regexp: str | None,
    issuer: str | None,
    issuer_regexp: str | None,
    ref_identity: str | None,
    annotations: tuple[str, ...],
) -> Any:
    from forklift.sign.keys import read_public_key
    from forklift.sign.verify import VerifyOptions

    if keys_ and trusted_root:
        raise UsageError("--key and --trusted-root exclude each other")
    certificate = None
    root = None
    if trusted_root:
        from forklift.sign.keyless import IdentityPolicy
        from forklift.sign.trustroot import read_trusted_root

        if not (identity or identity_regexp) or not (issuer or issuer_regexp):
            raise UsageError(
                "keyless verification needs --certificate-identity[-regexp] and "
                "--certificate-oidc-issuer[-regexp]"
            )
        for flag, pattern in (
            ("--certificate-identity-regexp", identity_regexp),
            ("--certificate-oidc-issuer-regexp", issuer_regexp),
        ):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise UsageError(f"{flag}: invalid regular expression ({exc})") from None
        root = read_trusted_root(trusted_root)
        certificate = IdentityPolicy(identity, identity_regexp, issuer, issuer_regexp)
    elif not keys_:
        raise UsageError("give --key PUBLIC_KEY, or --trusted-root FILE for keyless signatures")
    return VerifyOptions(
        keys=tuple(read_public_key(k) for k in keys_),
        trusted_root=root,
        certificate=certificate,
        identity=ref_identity,
        annotations=_pairs(annotations),
    )


def verification_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--key", "keys_", multiple=True, help="Public key file (repeatable: any of them)."
            ),
            click.option(
                "--trusted-root",
                type=click.Path(dir_okay=False),
                help="Sigstore trusted_root.json (keyless).",
            ),
            click.option(
                "--certificate-identity", help="Keyless: the signer's certificate identity."
            ),
            click.option(
                "--certificate-identity-regexp", help="Keyless: a regexp the identity must match."
            ),
            click.option(
                "--certificate-oidc-issuer", help="Keyless: the OIDC issuer of the certificate."
            ),
            click.option(
                "--certificate-oidc-issuer-regexp", help="Keyless: a regexp the issuer must match."
            ),
            click.option(
                "-a", "--annotations", multiple=True, help="KEY=VALUE the signature must carry."
            ),
        ]
    ):
        f = option(f)
    return f


@click.command()
@click.argument("image")
@verification_options
@click.option(
    "--identity", "ref_identity", help="The exact docker-reference the signature must name."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="text for people, json (the verified signatures) for scripts.",
)
@connection_options
def verify(
    image: str,
    keys_: tuple[str, ...],
    trusted_root: str | None,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    annotations: tuple[str, ...],
    ref_identity: str | None,
    fmt: str,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """Verify IMAGE's signatures (every layout); exit 1 with the reason when none verifies."""
    from forklift.sign.targets import open_target
    from forklift.sign.verify import verify_image

    options = _verify_options(
        keys_,
        trusted_root,
        certificate_identity,
        certificate_identity_regexp,
        certificate_oidc_issuer,
        certificate_oidc_issuer_regexp,
        ref_identity,
        annotations,
    )
    with open_target(image, **_client(insecure, ca_bundle, timeout)) as target:
        passed = verify_image(target, options)
    if fmt == "json":
        click.echo(json.dumps([v.payload_json() for v in passed], indent=2))
        return
    click.echo(f"Verified {len(passed)} signature(s) of {_where(target)}:")
    for v in passed:
        named = f" for {v.identity}" if v.identity else ""
        click.echo(f"  {v.layout}: signed by {v.signer}{named}")


@click.command()
@click.argument("image")
@click.option("--key", "key_path", required=True, help="Private key file.")
@click.option(
    "--predicate",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The predicate (JSON file, '-' for stdin).",
)
@click.option(
    "--type",
    "type_",
    default="custom",
    show_default=True,
    help="slsaprovenance|slsaprovenance1|spdxjson|cyclonedx|vuln|openvex|custom or a URI.",
)
@click.option("--no-referrers", is_flag=True, help="Only the sha256-<hex>.att tag, no referrer.")
@connection_options
def attest(
    image: str,
    key_path: str,
    predicate: str,
    type_: str,
    no_referrers: bool,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """Attest a predicate about IMAGE (in-toto v1 in DSSE; .att tag and referrer)."""
    from forklift.oci import canonical
    from forklift.sign.dsse import predicate_type
    from forklift.sign.signing import attest_image
    from forklift.sign.targets import open_target

    kind = predicate_type(type_)
    try:
        raw = sys.stdin.buffer.read() if predicate == "-" else Path(predicate).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{predicate}: cannot read the predicate ({exc.strerror})") from None
    doc = canonical.loads(raw, predicate)
    private = _private_key(key_path)
    with open_target(image, **_client(insecure, ca_bundle, timeout)) as target:
        result = attest_image(target, private, doc, kind, referrers=not no_referrers)
    for att in result.stored:
        how = f"tag {att.tag_name}" if att.tag else "referrer"
        click.echo(f"Stored attestation ({how}, manifest {att.digest})", err=True)
    click.echo(f"Attested {kind} for {_where(target)}")


@click.command(name="verify-attestation")
@click.argument("image")
@verification_options
@click.option("--type", "type_", help="Only attestations of this predicate type (name or URI).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "predicate"]),
    default="text",
    help="json: the verified statements; predicate: their predicates.",
)
@connection_options
def verify_attestation(
    image: str,
    keys_: tuple[str, ...],
    trusted_root: str | None,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    annotations: tuple[str, ...],
    type_: str | None,
    fmt: str,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """Verify IMAGE's attestations; exit 1 with the reason when none verifies."""
    from forklift.sign.dsse import predicate_type
    from forklift.sign.targets import open_target
    from forklift.sign.verify import verify_attestations

    options = _verify_options(
        keys_,
        trusted_root,
        certificate_identity,
        certificate_identity_regexp,
        certificate_oidc_issuer,
        certificate_oidc_issuer_regexp,
        None,
        annotations,
    )
    kind = predicate_type(type_) if type_ else None
    with open_target(image, **_client(insecure, ca_bundle, timeout)) as target:
        passed = verify_attestations(target, options, kind)
    if fmt == "json":
        click.echo(json.dumps([v.payload_json() for v in passed], indent=2))
    elif fmt == "predicate":
        click.echo(json.dumps([v.payload_json().get("predicate") for v in passed], indent=2))
    else:
        click.echo(f"Verified {len(passed)} attestation(s) of {_where(target)}:")
        for v in passed:
            click.echo(f"  {v.layout}: {v.predicate_type} signed by {v.signer}")
