"""Image analysis: per-layer changes, wasted space, dive's efficiency, CI gates.

Python API::

    from forklift.analyze import analyze_image, Thresholds

    a = analyze_image("oci:/tmp/layout:app")
    a.wasted_bytes, a.efficiency, a.user_wasted_percent
    for w in a.waste:                 # grouped by (adding layer, removing layer)
        print(w.bytes, w.added.step.instruction, w.removed.step.instruction, w.fix)
    gates = Thresholds(lowest_efficiency=0.95).evaluate(a)
"""

from forklift.analyze.analysis import Analysis, analyze_image, analyze_source
from forklift.analyze.ci import Gate, Thresholds, parse_bytes, parse_ratio
from forklift.analyze.source import dockerfile_line, open_image
from forklift.analyze.stack import Stacker

__all__ = [
    "Analysis",
    "Gate",
    "Stacker",
    "Thresholds",
    "analyze_image",
    "analyze_source",
    "dockerfile_line",
    "open_image",
    "parse_bytes",
    "parse_ratio",
]
