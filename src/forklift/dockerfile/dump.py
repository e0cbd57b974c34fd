"""BuildKit's AST dump format (``Node.Dump()``), used by its parser tests and the oracle.

One line per instruction: ``(keyword ["--flag" ...] "arg" "arg" ...)`` with
Go-quoted strings; ``ONBUILD`` nests its instruction: ``(onbuild (run "x"))``.
"""

from __future__ import annotations

from forklift.dockerfile.ast import Dockerfile, Instruction
from forklift.dockerfile.gocompat import go_quote, go_quote_list, trim_space


def dump_instruction(ins: Instruction) -> str:
    """Dump one instruction without the surrounding parentheses."""
    out = ins.raw_keyword.lower()
    if ins.flags:
        out += " " + go_quote_list(ins.flag_texts)
    if ins.child is not None:
        out += " " + "(" + dump_instruction(ins.child) + ")"
    elif ins.empty_node:
        out += ' ""'
    for arg in ins.args:
        out += " " + go_quote(arg)
    return trim_space(out)


def dump(dockerfile: Dockerfile) -> str:
    """The whole file in BuildKit's dump format (no trailing newline)."""
    return "\n".join("(" + dump_instruction(i) + ")" for i in dockerfile.instructions)
