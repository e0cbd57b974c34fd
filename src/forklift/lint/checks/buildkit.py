"""BuildKit's build checks (``docker build --check``), from the front end's own pass.

BuildKit finds most of its checks while converting a Dockerfile to a build
graph; forklift's front end does the same in its one pass
(:func:`forklift.dockerfile.dispatch.plan`), which reports them with BuildKit's
rule names and messages. :func:`forklift.lint.model.build_context` runs that
pass the way ``docker build --check`` does (every stage, no target, no build
args, base images as the local store knows them or only ``PATH``); this module
adds the checks BuildKit makes on the syntax alone, and turns each into a
finding:

1. parser warnings (empty continuation lines);
2. checks made while turning nodes into instructions (MAINTAINER, stage name
   and ``AS`` casing);
3. stage names (duplicates, reserved names) and instruction casing;
4. the pass: base images with default global ARG values, FROM lines,
   every stage's instructions (undefined variables, secrets in ARG/ENV, legacy
   ``key value``, relative WORKDIR, repeated CMD/ENTRYPOINT/HEALTHCHECK, shell
   form, EXPOSE format).

Where BuildKit would stop at an error (a blank base name, a bad expansion) the
pass is tolerant: it records the error, skips what failed and goes on. Messages
are BuildKit's, word for word; the finding ids are forklift's (see
:mod:`forklift.lint.catalog`).
"""

from __future__ import annotations

from collections.abc import Iterator

from forklift.dockerfile.ast import Instruction
from forklift.dockerfile.gocompat import go_quote
from forklift.dockerfile.parser import EMPTY_CONTINUATION_URL
from forklift.lint.catalog import RULES
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext

RESERVED_STAGE_NAMES = frozenset({"context", "scratch"})
#: BuildKit's rule name -> forklift's rule id
_RULE_IDS = {r.buildkit: r.id for r in RULES.values() if r.buildkit}


class _Stop(Exception):
    """Where BuildKit would give up with a build error (only raised in ``stop_at_error`` mode)."""


class _Walker:
    def __init__(self, ctx: LintContext, stop_at_error: bool = False) -> None:
        self.ctx = ctx
        self.stop_at_error = stop_at_error
        self.out: list[Finding] = []

    def emit(self, rule: str, message: str, node: Instruction) -> None:
        self.out.append(self.ctx.at(rule, message, node))

    # -- 1 and 2: the parser and instruction parsing ------------------------

    def fail(self) -> None:
        """BuildKit stops here; so does the walk in ``stop_at_error`` mode."""
        if self.stop_at_error:
            raise _Stop

    def parse_time(self) -> None:
        df = self.ctx.dockerfile
        for w in df.warnings:
            if w.url == EMPTY_CONTINUATION_URL:
                self.out.append(self.ctx.finding("FL518", "Empty continuation line", w.line))
        first_bad = min((f.line for f in self.ctx.invalid), default=None)
        for node in df.instructions:
            if first_bad is not None and node.start_line > first_bad and self.stop_at_error:
                break
            if node.keyword == "maintainer":
                self.emit(
                    "FL510", "Maintainer instruction is deprecated in favor of using label", node
                )
            elif node.keyword == "from":
                args = node.args
                if len(args) == 3 and args[2] != args[2].lower():
                    self.emit("FL514", f"Stage name '{args[2]}' should be lowercase", node)
                cmd = node.raw_keyword
                if len(args) >= 3 and cmd in (cmd.lower(), cmd.upper()):
                    want = args[1].lower() if cmd == cmd.lower() else args[1].upper()
                    if args[1] != want:
                        self.emit(
                            "FL515", f"'{args[1]}' and '{cmd}' keywords' casing do not match", node
                        )
        if first_bad is not None:
            self.fail()

    # -- 3: stage names and instruction casing ---------------------------------

    def stage_names(self) -> None:
        seen: set[str] = set()
        for st in self.ctx.parsed.stages:
            if not st.name:
                continue
            if st.name in RESERVED_STAGE_NAMES:
                self.emit(
                    "FL519",
                    f"Stage name should not use the same name as reserved stage {go_quote(st.name)}",
                    st.node,
                )
            if st.name in seen:
                self.emit(
                    "FL507",
                    f"Duplicate stage name {go_quote(st.name)}, stage names should be unique",
                    st.node,
                )
            seen.add(st.name)

    def casing(self) -> None:
        nodes: list[Instruction] = []
        for st in self.ctx.parsed.stages:
            nodes.append(st.node)
            nodes.extend(c.node for c in st.commands)
        lower = upper = 0
        for n in nodes:
            word = n.raw_keyword
            if word == word.lower():
                lower += 1
            elif word == word.upper():
                upper += 1
        majority_lower = lower > upper
        for n in nodes:
            word = n.raw_keyword
            if majority_lower and word != word.lower():
                want = "lowercase"
            elif not majority_lower and word != word.upper():
                want = "uppercase"
            else:
                continue
            self.emit(
                "FL516",
                f"Command '{word}' should match the case of the command majority ({want})",
                n,
            )

    # -- 4: the front end's pass ----------------------------------------------------------

    def dispatch(self) -> None:
        """The check findings of the front end's pass over every stage (see lint.model)."""
        found = self.ctx.checks
        if self.stop_at_error and self.ctx.checks_before_error is not None:
            found = found[: self.ctx.checks_before_error]  # BuildKit stops at the error
        for rule, message, node in found:
            self.emit(_RULE_IDS[rule], message, node)

    def run(self) -> list[Finding]:
        try:
            self.parse_time()
            self.stage_names()
            self.casing()
            self.dispatch()
        except _Stop:
            pass
        return self.out


def check(ctx: LintContext, *, stop_at_error: bool = False) -> Iterator[Finding]:
    """Every BuildKit build check forklift reproduces, in BuildKit's order.

    With ``stop_at_error`` the checks end where BuildKit's conversion would fail
    (an invalid instruction, a blank or invalid base image name, a forward
    ``COPY --from``), so the findings are exactly what ``docker build --check``
    prints for such a file; by default the pass goes on past those points.
    """
    yield from _Walker(ctx, stop_at_error).run()
