"""Analyzers: each finds one kind of package record in the final filesystem."""

from __future__ import annotations

from forklift.sbom.fsview import Analyzer


def default_analyzers() -> list[Analyzer]:
    """A fresh set of every analyzer, OS identity and package databases first."""
    from forklift.sbom.analyzers.apk import ApkAnalyzer
    from forklift.sbom.analyzers.dpkg import DpkgAnalyzer
    from forklift.sbom.analyzers.osrelease import OSReleaseAnalyzer

    return [OSReleaseAnalyzer(), DpkgAnalyzer(), ApkAnalyzer()]
