"""Analyzers: each finds one kind of package record in the final filesystem.

OS identity and the OS package databases come first (their file lists decide
which language packages are the OS package manager's), then the languages.
"""

from __future__ import annotations

from forklift.sbom.fsview import Analyzer


def default_analyzers() -> list[Analyzer]:
    """A fresh set of every analyzer."""
    from forklift.sbom.analyzers.apk import ApkAnalyzer
    from forklift.sbom.analyzers.binaries import BinaryAnalyzer
    from forklift.sbom.analyzers.dpkg import DpkgAnalyzer
    from forklift.sbom.analyzers.java import JavaAnalyzer
    from forklift.sbom.analyzers.node import NodeAnalyzer
    from forklift.sbom.analyzers.osrelease import OSReleaseAnalyzer
    from forklift.sbom.analyzers.php import PhpAnalyzer
    from forklift.sbom.analyzers.python import PythonAnalyzer
    from forklift.sbom.analyzers.rpm import RpmAnalyzer
    from forklift.sbom.analyzers.ruby import RubyAnalyzer

    return [
        OSReleaseAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        RpmAnalyzer(),
        PythonAnalyzer(),
        NodeAnalyzer(),
        JavaAnalyzer(),
        RubyAnalyzer(),
        PhpAnalyzer(),
        BinaryAnalyzer(),
    ]
