"""Where the front end's single pass reports: check warnings and errors.

BuildKit's conversion both builds the graph and runs the build checks, and stops
at the first error. :class:`Diagnostics` carries the two outlets of forklift's
pass (:mod:`forklift.dockerfile.dispatch`):

* ``warn(rule, message, node)`` for a check finding, named by BuildKit's rule
  name (``UndefinedVar``, ``JSONArgsRecommended``...) with BuildKit's message;
  the linter turns these into findings, a build ignores them;
* :meth:`Diagnostics.error` for an error: raised at once (a build, ``--print``,
  the linter in BuildKit's stop-at-the-first-error mode), or, when
  ``tolerant``, recorded so that the pass goes on past it (the linter's default,
  which keeps checking the rest of a broken file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from forklift.dockerfile.ast import Instruction
from forklift.errors import ParseError

Warn = Callable[[str, str, Instruction], None]


@dataclass
class Diagnostics:
    """Check warnings go to ``warn`` (if given); errors raise, or with ``tolerant`` collect."""

    warn_to: Warn | None = None
    tolerant: bool = False
    errors: list[ParseError] = field(default_factory=list)
    #: warnings reported so far, and how many of them came before the first error (what a
    #: pass that stops at its first error, like BuildKit's, would have reported)
    warned: int = 0
    warned_before_error: int | None = None

    @property
    def checking(self) -> bool:
        """Whether anyone listens to warnings (checks that cost something run only then)."""
        return self.warn_to is not None

    def warn(self, rule: str, message: str, node: Instruction) -> None:
        """Report a check finding on ``node``."""
        if self.warn_to is not None:
            self.warned += 1
            self.warn_to(rule, message, node)

    def error(self, exc: ParseError) -> None:
        """Raise ``exc``, or record it when tolerant (the caller then skips what failed)."""
        if self.warned_before_error is None:
            self.warned_before_error = self.warned
        if not self.tolerant:
            raise exc
        self.errors.append(exc)
