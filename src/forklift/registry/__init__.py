"""Registries: ``server`` (forklift serve) and ``client`` (push, pull, login)."""
