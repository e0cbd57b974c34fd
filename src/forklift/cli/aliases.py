"""docker's management-command spellings: ``forklift image ls``, ``forklift container rm``.

They name the same commands as the flat verbs (``images``, ``rm``...), so a
docker user's muscle memory and scripts work; there is nothing behind them but
that mapping.
"""

from __future__ import annotations

import click

from forklift.cli import COMMANDS, LazyGroup

_IMAGE = {
    "ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "inspect": "inspect",
    "history": "history", "tag": "tag", "prune": "prune", "pull": "pull", "push": "push",
    "save": "save", "load": "load", "import": "import", "build": "build",
}  # fmt: skip
_CONTAINER = {
    "ls": "ps", "list": "ps", "ps": "ps", "rm": "rm", "remove": "rm", "run": "run",
    "stop": "stop", "logs": "logs", "wait": "wait",
}  # fmt: skip


@click.group(cls=LazyGroup, lazy={k: COMMANDS[v] for k, v in _IMAGE.items()})
def image() -> None:
    """docker's `image` commands (ls, rm, inspect, ...): the same as images, rmi, inspect..."""


@click.group(cls=LazyGroup, lazy={k: COMMANDS[v] for k, v in _CONTAINER.items()})
def container() -> None:
    """docker's `container` commands (ls, rm, run, stop, logs, wait): ps, rm, run..."""
