"""Vulnerability and secret scanning: database, version comparison, matchers, reporters."""
