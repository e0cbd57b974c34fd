"""The Dockerfile syntax tree: what the parser produces, with source positions.

The tree mirrors BuildKit's parser output (one :class:`Instruction` per logical
instruction, its flags as written, its arguments as BuildKit splits them, its
heredocs) and adds what forklift's consumers need on top:

* the builder uses :attr:`Instruction.keyword`, :attr:`Instruction.args`,
  :attr:`Instruction.flags` (parsed into typed values by
  :mod:`forklift.dockerfile.instructions`), :attr:`Instruction.heredocs` and
  :attr:`Instruction.original` (history ``created_by``);
* the linter uses :attr:`Instruction.source` (raw text of the lines),
  :attr:`Instruction.start_line`/:attr:`Instruction.column`, flag positions,
  heredoc bodies and :attr:`Instruction.comments` (the comment block right above
  the instruction, including ``# hadolint ignore=...`` pragmas).

Lines and columns are 1-based; columns count Unicode code points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forklift.errors import Location


@dataclass(frozen=True)
class Flag:
    """A ``--name[=value]`` builder flag as written before an instruction's arguments.

    ``text`` is the flag exactly as BuildKit reports it (``--from=builder``, quotes
    removed); ``value`` is ``None`` when there was no ``=``.
    """

    name: str
    value: str | None
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Heredoc:
    """A here-document attached to RUN, COPY or ADD (``<<EOF`` ... ``EOF``).

    ``content`` is the body exactly as in the file, newlines included, without the
    terminator line. ``expand`` is false when the delimiter was quoted (no
    variable expansion), ``chomp`` is true for ``<<-`` (leading tabs are removed
    from the body when it is used; see :meth:`body`). ``fd`` is the file
    descriptor number written before ``<<`` (``3<<EOF``), 0 if none.
    ``start_line``/``end_line`` span the body and the terminator.
    """

    name: str
    content: str
    expand: bool
    chomp: bool
    fd: int
    start_line: int
    end_line: int

    def body(self) -> str:
        """The content as it is used: with leading tabs removed when ``chomp`` is set."""
        if not self.chomp:
            return self.content
        return "\n".join(line.lstrip("\t") for line in self.content.split("\n"))


@dataclass(frozen=True)
class Instruction:
    """One instruction (a logical line, continuations and heredocs included).

    * ``keyword`` is lower-case (``run``); ``raw_keyword`` is as written (``Run``).
    * ``args`` are BuildKit's argument strings: for exec (JSON) form one per
      array element and ``json`` is true; for shell form RUN/CMD/ENTRYPOINT/SHELL
      one string holding the rest of the line; for ENV and LABEL triples
      ``key, value, sep`` where ``sep`` is ``"="`` or ``""`` for the legacy
      ``key value`` form; for HEALTHCHECK the type then the command.
      Quotes and variables are kept verbatim: expansion happens later, with an
      environment (see :mod:`forklift.dockerfile.shell`).
    * ``original`` is the logical line after joining continuations (what
      BuildKit records as the instruction's text).
    * ``source`` is the raw text of the physical lines ``start_line..end_line``.
    * ``comments`` are the comment lines directly above (text after ``#``,
      trimmed), in order; a bare ``#`` line resets the block.
    * ``child`` is the wrapped instruction of ``ONBUILD``.
    """

    keyword: str
    raw_keyword: str
    flags: tuple[Flag, ...]
    args: tuple[str, ...]
    json: bool
    original: str
    source: str
    start_line: int
    end_line: int
    column: int
    heredocs: tuple[Heredoc, ...] = ()
    comments: tuple[str, ...] = ()
    child: Instruction | None = None
    # The parser's quirk for unknown keywords and ONBUILD: BuildKit keeps an
    # empty argument node; tracked so the AST dump is exact.
    empty_node: bool = False

    @property
    def flag_texts(self) -> tuple[str, ...]:
        """Flags as BuildKit prints them (``("--from=builder", "--link")``)."""
        return tuple(f.text for f in self.flags)

    def location(self, file: str) -> Location:
        """Where the instruction starts, for error messages."""
        return Location(file, self.start_line, self.column)


@dataclass(frozen=True)
class Directive:
    """A parser directive from the header (``# syntax=...``, ``# escape=...``, ``# check=...``)."""

    name: str
    value: str
    line: int


@dataclass(frozen=True)
class ParseWarning:
    """A non-fatal finding of the parser (BuildKit: empty continuation lines)."""

    message: str
    line: int
    detail: str = ""
    url: str = ""


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: its instructions in file order plus header facts."""

    filename: str
    instructions: tuple[Instruction, ...]
    escape: str = "\\"
    directives: tuple[Directive, ...] = ()
    warnings: tuple[ParseWarning, ...] = ()
    source: str = field(default="", repr=False)

    def directive(self, name: str) -> str | None:
        """The value of directive ``name`` (``syntax``, ``escape``, ``check``), if present."""
        for d in self.directives:
            if d.name == name:
                return d.value
        return None

    @property
    def syntax(self) -> str | None:
        """The ``# syntax=`` frontend image, if declared."""
        return self.directive("syntax")
