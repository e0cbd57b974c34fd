"""The linter's view of a Dockerfile: stages, what each RUN runs, what ships.

:func:`build_context` parses leniently: an invalid instruction becomes an
``FL000`` finding and is left out, and the rest of the file is still checked
(BuildKit would stop at the first one). Everything a rule needs is on
:class:`LintContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from forklift.dockerfile.ast import Dockerfile, Instruction
from forklift.dockerfile.instructions import (
    DEFAULT_SHELL,
    InstructionError,
    ParsedStages,
    RunCommand,
    ShellCommand,
    Stage,
    parse_stages,
)
from forklift.lint.catalog import RULES
from forklift.lint.findings import Finding
from forklift.lint.runscripts import RunScript, analyse_run


@dataclass
class StageModel:
    """One stage and what the rules derive from it.

    ``base`` is the index of the stage this one is built ``FROM`` (None for an
    image); ``final`` marks the stages whose layers end up in the final image
    (the last stage and the stages it is built from); ``runs`` pairs every RUN
    with what it executes under the SHELL in effect.
    """

    stage: Stage
    base: int | None = None
    final: bool = False
    runs: list[tuple[RunCommand, RunScript]] = field(default_factory=list)

    @property
    def index(self) -> int:
        return self.stage.index

    @property
    def name(self) -> str:
        return self.stage.name


@dataclass
class LintContext:
    """Everything a rule needs about the file being linted."""

    file: str
    dockerfile: Dockerfile
    parsed: ParsedStages
    stages: list[StageModel]
    invalid: list[Finding] = field(default_factory=list)
    trusted_registries: tuple[str, ...] = ()
    context_dir: Path | None = None
    dockerfile_path: Path | None = None
    image_env: object = None  # callable(image) -> dict | None, for UndefinedVar

    @property
    def escape(self) -> str:
        return self.dockerfile.escape

    def finding(
        self,
        rule: str,
        message: str,
        line: int,
        *,
        column: int = 0,
        end_line: int = 0,
        fix: str | None = None,
    ) -> Finding:
        """A finding of rule ``rule`` with the catalog's severity and default fix."""
        info = RULES[rule]
        return Finding(
            rule=info.id,
            name=info.name,
            severity=info.severity,
            message=message,
            file=self.file,
            line=line,
            column=column,
            end_line=max(end_line, line),
            fix=info.fix if fix is None else fix,
        )

    def at(self, rule: str, message: str, node: Instruction, fix: str | None = None) -> Finding:
        """A finding spanning instruction ``node``."""
        return self.finding(
            rule, message, node.start_line, column=node.column, end_line=node.end_line, fix=fix
        )

    def stage_by_name(self, name: str) -> StageModel | None:
        """A stage by (case-insensitive) name or index, as COPY --from resolves it."""
        st = self.parsed.stage(name)
        return None if st is None else self.stages[st.index]

    @property
    def final_stage(self) -> StageModel | None:
        """The stage a plain build produces (the last one)."""
        return self.stages[-1] if self.stages else None


def _base_index(parsed: ParsedStages, stage: Stage) -> int | None:
    """The earlier stage ``stage`` is built FROM, if its base names one (before ARG expansion)."""
    name = stage.base_name.lower()
    for other in parsed.stages[: stage.index]:
        if other.name and other.name == name:
            return other.index
    return None


def build_models(df: Dockerfile, parsed: ParsedStages) -> list[StageModel]:
    """Stage models with bases, the final-image chain and analysed RUNs."""
    models = [StageModel(st, _base_index(parsed, st)) for st in parsed.stages]
    shells: dict[int, tuple[str, ...]] = {}
    for model in models:
        shell = shells.get(model.base, DEFAULT_SHELL) if model.base is not None else DEFAULT_SHELL
        for cmd in model.stage.commands:
            if isinstance(cmd, ShellCommand):
                shell = cmd.shell
            elif isinstance(cmd, RunCommand):
                model.runs.append((cmd, analyse_run(cmd.node, shell, df.escape)))
        shells[model.index] = shell
    if models:
        current: int | None = models[-1].index
        seen: set[int] = set()
        while current is not None and current not in seen:
            seen.add(current)
            models[current].final = True
            current = models[current].base
    return models


def build_context(df: Dockerfile, **options: object) -> LintContext:
    """Parse ``df`` into a :class:`LintContext` (invalid instructions become FL000 findings)."""
    errors: list[InstructionError] = []
    parsed = parse_stages(df, errors=errors)
    ctx = LintContext(
        file=df.filename,
        dockerfile=df,
        parsed=parsed,
        stages=build_models(df, parsed),
        **options,  # type: ignore[arg-type]
    )
    for exc in errors:
        loc = exc.location
        line = loc.line if loc else 1
        ctx.invalid.append(ctx.finding("FL000", exc.message, line, column=loc.column if loc else 0))
    return ctx
