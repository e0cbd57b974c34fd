"""Where the signature policy is found when no ``--policy`` is given.

Kept apart from :mod:`.policy` so that every verb that fetches or runs an image can
look for the file without importing the policy code (start-up time).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_policy_path() -> Path | None:
    """``$FORKLIFT_POLICY``, else ``$XDG_CONFIG_HOME/forklift/policy.json`` when it exists."""
    env = os.environ.get("FORKLIFT_POLICY")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    candidate = base / "forklift" / "policy.json"
    return candidate if candidate.is_file() else None
