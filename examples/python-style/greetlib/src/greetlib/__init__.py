"""A tiny pure-Python library: the dependency the python-style example installs."""

import sys

__version__ = "1.0.0"


def greet(name: str) -> str:
    """The greeting for ``name``."""
    return f"Hello, {name}, from greetlib {__version__}"


def main() -> None:
    """The ``greet`` console script."""
    print(greet(sys.argv[1] if len(sys.argv) > 1 else "world"))
