"""``--policy``, ``--verify`` and ``--insecure-policy``: the signature policy on verbs that fetch or run images.

Without flags, the policy at $FORKLIFT_POLICY or ~/.config/forklift/policy.json is
enforced when it exists (nothing is imported when it does not); ``--verify``
demands one; ``--insecure-policy`` skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from forklift.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def policy_options(f: F) -> F:
    f = click.option("--insecure-policy", is_flag=True, help="Do not apply the signature policy.")(
        f
    )
    f = click.option(
        "--verify",
        "verify_policy",
        is_flag=True,
        help="Require a signature policy (fail if none is configured) and apply it.",
    )(f)
    f = click.option(
        "--policy",
        "policy_file",
        type=click.Path(dir_okay=False),
        help="Signature policy (containers-policy.json format) to enforce.",
    )(f)
    return f


def enforcer(policy_file: str | None, verify_policy: bool, insecure_policy: bool) -> Any:
    """The policy enforcer the flags ask for, or None."""
    if insecure_policy:
        if policy_file or verify_policy:
            raise UsageError("--insecure-policy excludes --policy and --verify")
        return None
    if policy_file is None and not verify_policy:
        from forklift.sign.policyfile import default_policy_path

        if default_policy_path() is None:
            return None  # nothing configured: keep the sign module out of start-up
    from forklift.sign.enforce import load_enforcer

    return load_enforcer(policy_file, required=verify_policy)
