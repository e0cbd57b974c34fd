"""`python -m forklift` runs the CLI."""

from forklift.cli import main

main()
