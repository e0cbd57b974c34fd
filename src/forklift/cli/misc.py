"""Small verbs that belong to no feature."""

from __future__ import annotations

import click


@click.command()
def version() -> None:
    """Print forklift's version."""
    from forklift import __version__

    click.echo(__version__)
