"""``--print=targets`` and ``--print=outline`` (like ``docker buildx build --print``/``--call``).

* :func:`list_targets` - every stage: name, doc comment, base, platform, which
  one is the default target, and its line (BuildKit's ``ListTargets``).
* :func:`outline` - for one target: the build args it uses (value after
  defaults and ``--build-arg``, doc comment), the secrets and SSH sockets its
  RUN mounts need (BuildKit's ``Outline``).

Both return plain data; :func:`render_targets` and :func:`render_outline`
turn them into a text table or JSON (the shape BuildKit's subrequests use,
with ``location`` simplified to line numbers).

A doc comment is a comment line directly above ``FROM`` or ``ARG`` that starts
with the stage's or arg's name: ``# builder compiles the code`` above
``FROM golang AS builder`` describes ``builder`` as "compiles the code".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from forklift.dockerfile.dispatch import BuildPlan, PlannedStage, plan
from forklift.dockerfile.instructions import ParsedStages
from forklift.oci.platform import Platform


@dataclass(frozen=True)
class Target:
    """One stage as ``--print=targets`` lists it."""

    name: str
    description: str
    base: str
    platform: str
    default: bool
    line: int

    def to_json(self) -> dict[str, object]:
        """BuildKit's ``targets.Target`` fields (empty ones left out)."""
        out: dict[str, object] = {}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        if self.default:
            out["default"] = True
        out["base"] = self.base
        if self.platform:
            out["platform"] = self.platform
        out["location"] = {"line": self.line}
        return out


@dataclass(frozen=True)
class OutlineArg:
    """A build arg the target uses."""

    name: str
    value: str
    description: str
    line: int


@dataclass(frozen=True)
class OutlineSecret:
    """A secret or SSH id the target's RUN mounts use."""

    name: str
    required: bool
    line: int


@dataclass(frozen=True)
class Outline:
    """What ``--print=outline`` shows for a target."""

    name: str
    description: str
    args: tuple[OutlineArg, ...]
    secrets: tuple[OutlineSecret, ...]
    ssh: tuple[OutlineSecret, ...]

    def to_json(self) -> dict[str, object]:
        """BuildKit's ``outline.Outline`` fields; the lists are there even when empty."""
        out: dict[str, object] = {}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        out["args"] = [
            {
                k: v
                for k, v in (
                    ("name", a.name),
                    ("value", a.value),
                    ("description", a.description),
                    ("location", {"line": a.line}),
                )
                if v
            }
            for a in self.args
        ]
        for key, items in (("secrets", self.secrets), ("ssh", self.ssh)):
            out[key] = [
                {
                    "name": s.name,
                    **({"required": True} if s.required else {}),
                    "location": {"line": s.line},
                }
                for s in items
            ]
        return out


def list_targets(parsed: ParsedStages) -> list[Target]:
    """Every stage of the file, the last one marked as the default target."""
    out: list[Target] = []
    last = len(parsed.stages) - 1
    for st in parsed.stages:
        out.append(
            Target(
                name=st.name,
                description=st.comment,
                base=st.base_name,
                platform=st.platform,
                default=st.index == last,
                line=st.line,
            )
        )
    return out


def outline(
    parsed: ParsedStages,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    target_platform: Platform | None = None,
    planned: BuildPlan | None = None,
) -> Outline:
    """The build args, secrets and SSH ids ``target`` (default: last stage) uses.

    An arg is listed when the target (or a stage it needs) declares it, or when
    a FROM line it needs uses a global ARG (directly or through another global
    ARG's default). Values are what the build would use: ``--build-arg``, else
    the expanded default. Base images are not pulled, so variables a base
    image's configuration would define are unknown while expanding defaults.
    """
    built = planned or plan(
        parsed, build_args=build_args, target=target, target_platform=target_platform
    )
    chosen = built.target
    stages = built.stages

    args: list[tuple[int, int, OutlineArg]] = []
    secrets: list[OutlineSecret] = []
    ssh: list[OutlineSecret] = []
    seen_args: set[str] = set()
    seen_secrets: set[str] = set()
    seen_ssh: set[str] = set()
    order = 0

    def visit(index: int, visited: set[int]) -> None:
        nonlocal order
        if index in visited or index not in stages:
            return
        visited.add(index)
        st: PlannedStage = stages[index]
        used = built.globals.resolve_used(st.scope.used)
        for name in sorted(used):
            if name in seen_args:
                continue
            info = st.scope.infos.get(name) or built.globals.infos.get(name)
            if info is None:
                continue
            seen_args.add(name)
            order += 1
            args.append(
                (info.line, order, OutlineArg(name, info.value or "", info.description, info.line))
            )
        for sid, use in st.secrets.items():
            if sid not in seen_secrets:
                seen_secrets.add(sid)
                secrets.append(OutlineSecret(sid, use.required, use.line))
        for sid, use in st.ssh.items():
            if sid not in seen_ssh:
                seen_ssh.add(sid)
                ssh.append(OutlineSecret(sid, use.required, use.line))
        for dep in st.node.stage_deps:
            visit(dep, visited)

    visit(chosen.index, set())
    args.sort(key=lambda t: (t[0], t[1]))
    secrets.sort(key=lambda s: s.line)
    ssh.sort(key=lambda s: s.line)
    return Outline(
        name=chosen.stage.name,
        description=chosen.stage.comment,
        args=tuple(a for _, _, a in args),
        secrets=tuple(secrets),
        ssh=tuple(ssh),
    )


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = []
    for row in (header, *rows):
        lines.append("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return lines


def render_targets(targets: list[Target], fmt: str = "text") -> str:
    """Targets as a ``TARGET  DESCRIPTION`` table (``text``) or JSON (``json``).

    As in BuildKit, an unnamed stage has no name to show (``--target`` cannot
    name it); the unnamed last stage shows as ``(default)``.
    """
    if fmt == "json":
        return json.dumps({"targets": [t.to_json() for t in targets]}, indent=2)
    rows = []
    for t in targets:
        if not t.name:
            name = "(default)" if t.default else ""
        else:
            name = f"{t.name} (default)" if t.default else t.name
        rows.append((name, t.description))
    return "\n".join(_table(("TARGET", "DESCRIPTION"), rows))


def render_outline(out: Outline, fmt: str = "text") -> str:
    """An outline as text (target, then tables of args, secrets, SSH) or JSON.

    The text always names the target (``(default)`` for the unnamed last stage)
    and says so when the target uses no build args, secrets or SSH.
    """
    if fmt == "json":
        return json.dumps(out.to_json(), indent=2)
    lines = [f"TARGET:      {out.name or '(default)'}"]
    if out.description:
        lines.append(f"DESCRIPTION: {out.description}")
    lines.append("")
    if out.args:
        lines += _table(
            ("BUILD ARG", "VALUE", "DESCRIPTION"),
            [(a.name, a.value, a.description) for a in out.args],
        )
        lines.append("")
    if out.secrets:
        lines += _table(
            ("SECRET", "REQUIRED"),
            [(s.name, "true" if s.required else "") for s in out.secrets],
        )
        lines.append("")
    if out.ssh:
        lines += _table(
            ("SSH", "REQUIRED"),
            [(s.name, "true" if s.required else "") for s in out.ssh],
        )
        lines.append("")
    if not (out.args or out.secrets or out.ssh):
        lines.append(
            "No build args, secrets or SSH: neither this stage nor a stage it needs declares "
            "an ARG or mounts a secret, and its FROM lines use no global ARG."
        )
    return "\n".join(lines).rstrip("\n")
