"""CI gates for ``forklift analyze``: fail when an image wastes too much.

The three checks mirror dive's ``.dive-ci`` rules:

* ``lowest-efficiency`` (0..1): fail when :attr:`Analysis.efficiency` is lower;
* ``highest-wasted-bytes`` (``20MB``, ``1.5GiB``, ``3000``): fail when
  :attr:`Analysis.wasted_bytes` is higher;
* ``highest-user-wasted-percent`` (0..1): fail when wasted bytes over the
  bytes added above the base layer is higher.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forklift.analyze.analysis import Analysis
from forklift.errors import UsageError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*\Z")


def parse_bytes(text: str) -> int:
    """``20MB`` (decimal), ``1.5GiB`` (binary), ``3000`` -> bytes."""
    m = _SIZE.match(text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise UsageError(f"invalid size {text!r} (e.g. 20MB, 512KiB, 1.5GB, 3000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_ratio(text: str, what: str) -> float:
    """A number between 0 and 1 (``0.95``); ``95%`` is accepted too."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{what}: {text!r} is outside 0..1")
    return value


@dataclass(frozen=True)
class Gate:
    """One CI check and how the image fared."""

    name: str
    threshold: float
    value: float
    passed: bool
    message: str


@dataclass(frozen=True)
class Thresholds:
    """The limits to enforce (``None``: not checked)."""

    lowest_efficiency: float | None = None
    highest_wasted_bytes: int | None = None
    highest_user_wasted_percent: float | None = None

    @property
    def active(self) -> bool:
        return any(
            v is not None
            for v in (
                self.lowest_efficiency,
                self.highest_wasted_bytes,
                self.highest_user_wasted_percent,
            )
        )

    def evaluate(self, a: Analysis) -> list[Gate]:
        """Check every configured limit against ``a``."""
        gates: list[Gate] = []
        if self.lowest_efficiency is not None:
            ok = a.efficiency >= self.lowest_efficiency
            gates.append(
                Gate(
                    "lowest-efficiency",
                    self.lowest_efficiency,
                    a.efficiency,
                    ok,
                    f"efficiency {a.efficiency:.4f} "
                    + (">=" if ok else "<")
                    + f" {self.lowest_efficiency}",
                )
            )
        if self.highest_wasted_bytes is not None:
            ok = a.wasted_bytes <= self.highest_wasted_bytes
            gates.append(
                Gate(
                    "highest-wasted-bytes",
                    self.highest_wasted_bytes,
                    a.wasted_bytes,
                    ok,
                    f"wasted {a.wasted_bytes} bytes "
                    + ("<=" if ok else ">")
                    + f" {self.highest_wasted_bytes}",
                )
            )
        if self.highest_user_wasted_percent is not None:
            pct = a.user_wasted_percent
            ok = pct <= self.highest_user_wasted_percent
            gates.append(
                Gate(
                    "highest-user-wasted-percent",
                    self.highest_user_wasted_percent,
                    pct,
                    ok,
                    f"user-wasted {pct:.4f} "
                    + ("<=" if ok else ">")
                    + f" {self.highest_user_wasted_percent}",
                )
            )
        return gates
