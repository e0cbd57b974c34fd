"""The one machine-readable form in which every bench script reports its figures.

`bench/run_all` runs the scripts and builds the README's performance table from these
lines alone, so the table never drifts from what the scripts measured. A script prints
one line per figure on standard output, anywhere among its human-readable output:

    BENCH-ROW {"figure": "cold build", "peer": "buildah bud --layers", ...}

that is the prefix ``BENCH-ROW`` and one space, then a JSON object on the same line with:

  figure      (str)   what was measured, short ("cold build, 2,000-file context")
  peer        (str|null) the peer tool as it was run ("buildah bud --layers"); null when
                      the row has no peer (a floor such as `dd conv=fsync`, or a figure
                      of forklift alone)
  unit        (str)   the unit of both values: "s", "ms", "MB/s", "req/s", "MB", ...
  better      (str)   "lower" (times, sizes) or "higher" (rates)
  forklift    (float) forklift's figure: the median over the rounds
  peer_value  (float|null) the peer's median in the same interleaved run
  ratio       (float|null) > 1 means forklift is better; the median of the per-round
                      ratios when the script has rounds (which is why the script, not
                      run_all, computes it)
  cpu         (float|null) forklift's median CPU seconds (user+sys, children included)
  peer_cpu    (float|null) the peer's
  rounds      (int)   interleaved rounds behind the medians
  target      (str|null) the goal as text (">= 2x", "<= 0.2 s")
  met         (bool|null) whether this run met the target
  load        (float) the 1-minute load average when the figure was taken
  note        (str|null) a few words that belong next to the figure

Only `figure`, `unit`, `better`, `forklift` and `load` are required. `run_all` adds the
script's name, the date and the machine. Use `emit_row` rather than printing by hand.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

PREFIX = "BENCH-ROW "
REQUIRED = ("figure", "unit", "better", "forklift", "load")
OPTIONAL = (
    "peer",
    "peer_value",
    "ratio",
    "cpu",
    "peer_cpu",
    "rounds",
    "target",
    "met",
    "note",
)


def emit_row(
    figure: str,
    *,
    unit: str,
    forklift: float,
    better: str = "lower",
    peer: str | None = None,
    peer_value: float | None = None,
    ratio: float | None = None,
    cpu: float | None = None,
    peer_cpu: float | None = None,
    rounds: int | None = None,
    target: str | None = None,
    met: bool | None = None,
    load: float | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Print one figure as a ``BENCH-ROW`` line (and return the row).

    Without ``ratio``, a peer's value gives the ratio of the two medians, oriented so
    that > 1 means forklift is better. ``load`` defaults to the load average now.
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', not {better!r}")
    if ratio is None and peer_value is not None and forklift and peer_value:
        ratio = peer_value / forklift if better == "lower" else forklift / peer_value
    row: dict[str, Any] = {
        "figure": figure,
        "peer": peer,
        "unit": unit,
        "better": better,
        "forklift": forklift,
        "peer_value": peer_value,
        "ratio": ratio,
        "cpu": cpu,
        "peer_cpu": peer_cpu,
        "rounds": rounds,
        "target": target,
        "met": met,
        "load": round(os.getloadavg()[0] if load is None else load, 2),
        "note": note,
    }
    print(PREFIX + json.dumps(row), flush=True)
    return row


def parse_rows(text: str) -> list[dict[str, Any]]:
    """Every ``BENCH-ROW`` line in a script's output, checked against the form above."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith(PREFIX):
            continue
        try:
            row = json.loads(line[len(PREFIX) :])
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: BENCH-ROW is not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {number}: BENCH-ROW is not a JSON object")
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise ValueError(f"line {number}: BENCH-ROW lacks {', '.join(missing)}")
        if row["better"] not in ("lower", "higher"):
            raise ValueError(f"line {number}: BENCH-ROW better={row['better']!r}")
        unknown = set(row) - set(REQUIRED) - set(OPTIONAL) - {"script", "date", "machine"}
        if unknown:
            raise ValueError(f"line {number}: BENCH-ROW has unknown keys {sorted(unknown)}")
        for key in OPTIONAL:
            row.setdefault(key, None)
        rows.append(row)
    return rows


if (
    __name__ == "__main__"
):  # a quick look at a script's rows: python bench/X.py | python bench/benchrows.py
    for r in parse_rows(sys.stdin.read()):
        print(json.dumps(r))
