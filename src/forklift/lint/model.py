"""The linter's view of a Dockerfile: stages, what each RUN runs, what ships.

:func:`build_context` parses leniently: an invalid instruction becomes an
``FL000`` finding and is left out, and the rest of the file is still checked
(BuildKit would stop at the first one). Everything a rule needs is on
:class:`LintContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from forklift.dockerfile.ast import Dockerfile, Instruction
from forklift.dockerfile.diagnostics import Diagnostics
from forklift.dockerfile.dispatch import BaseImage, BuildPlan, plan
from forklift.dockerfile.instructions import (
    DEFAULT_SHELL,
    EnvCommand,
    InstructionError,
    ParsedStages,
    RunCommand,
    Stage,
    parse_stages,
)
from forklift.errors import Location
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
    #: errors the front end's pass found (BuildKit's build errors), as FL000 findings
    build_errors: list[Finding] = field(default_factory=list)
    #: the pass's BuildKit check findings (rule name, message, node), in the order found,
    #: and how many came before its first error (where BuildKit itself stops)
    checks: list[tuple[str, str, Instruction]] = field(default_factory=list)
    checks_before_error: int | None = None
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

    def env_names(self, model: StageModel) -> set[str]:
        """ENV names set in ``model`` and the stages it is built from."""
        names: set[str] = set()
        current: StageModel | None = model
        seen: set[int] = set()
        while current is not None and current.index not in seen:
            seen.add(current.index)
            for cmd in current.stage.commands:
                if isinstance(cmd, EnvCommand):
                    names.update(p.key for p in cmd.pairs)
            current = self.stages[current.base] if current.base is not None else None
        return names


def build_models(
    df: Dockerfile, parsed: ParsedStages, planned: BuildPlan | None
) -> list[StageModel]:
    """Stage models with bases, the final-image chain and analysed RUNs (from the plan)."""
    models = [StageModel(st) for st in parsed.stages]
    if planned is not None:
        for node in planned.graph.nodes:
            models[node.index].base = node.base_stage
        for index, st in planned.stages.items():
            for step in st.steps:
                cmd = step.command
                if isinstance(cmd, RunCommand) and step.trigger is None:
                    shell = step.shell or DEFAULT_SHELL
                    models[index].runs.append((cmd, analyse_run(cmd.node, shell, df.escape)))
    if models:
        current: int | None = models[-1].index
        seen: set[int] = set()
        while current is not None and current not in seen:
            seen.add(current)
            models[current].final = True
            current = models[current].base
    return models


def _front_end_pass(ctx: LintContext) -> BuildPlan | None:
    """The front end's one pass over every stage, as ``docker build --check`` runs it (no
    target, no build args, base images as the local store knows them or only ``PATH``).

    It goes on past errors (each becomes an FL000 finding) so the rest is checked too.
    """
    if not ctx.parsed.stages:
        return None

    def warn(rule: str, message: str, node: Instruction) -> None:
        ctx.checks.append((rule, message, node))

    image_env: Callable[[str], Mapping[str, str] | None] | None = ctx.image_env  # type: ignore[assignment]

    def resolve(names: Mapping[str, Location]) -> dict[str, BaseImage | None]:
        out: dict[str, BaseImage | None] = {}
        for name in names:
            env = image_env(name) if image_env is not None else None
            out[name] = BaseImage(env) if env is not None else None
        return out

    diag = Diagnostics(warn, tolerant=True)
    planned = plan(ctx.parsed, all_stages=True, resolve=resolve, diagnostics=diag)
    ctx.checks_before_error = diag.warned_before_error
    for exc in diag.errors:
        loc = exc.location
        ctx.build_errors.append(
            ctx.finding(
                "FL000",
                exc.message,
                loc.line if loc and loc.line else 1,
                column=loc.column if loc else 0,
            )
        )
    return planned


def build_context(df: Dockerfile, **options: object) -> LintContext:
    """Parse ``df`` into a :class:`LintContext` and run the front end's pass over it.

    Invalid instructions become FL000 findings (``invalid``) and are left out;
    the pass's errors become FL000 findings too (``build_errors``).
    """
    errors: list[InstructionError] = []
    parsed = parse_stages(df, errors=errors)
    ctx = LintContext(
        file=df.filename,
        dockerfile=df,
        parsed=parsed,
        stages=[],
        **options,  # type: ignore[arg-type]
    )
    for exc in errors:
        loc = exc.location
        line = loc.line if loc else 1
        ctx.invalid.append(ctx.finding("FL000", exc.message, line, column=loc.column if loc else 0))
    ctx.stages = build_models(df, parsed, _front_end_pass(ctx))
    return ctx
