"""Split a POSIX shell script (a RUN line or heredoc body) into simple commands.

This is not a shell: it recognises what the lint rules need to see and no more.
Words with quotes and escapes removed; ``VAR=value`` prefixes; the operators
between commands (``&&``, ``||``, ``;``, ``|``, ``&``, new lines); redirections
(their targets are not arguments); here-documents inside the script (their
bodies are data, skipped); command substitutions ``$(...)`` and backticks
(kept in the word and also parsed as scripts of their own); comments; line
continuations; and the reserved words of compound commands (``if``, ``then``,
``do``... are dropped so that ``if apt-get update; then`` still shows
``apt-get update``).

Every command knows the line of the script it starts on, so findings can point
at the physical line of a multi-line RUN.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

#: words that start (and are dropped from) compound commands
_PREFIX_WORDS = frozenset({"if", "then", "else", "elif", "while", "until", "do", "!", "{", "time"})
#: words that end compound commands; alone they are not commands
_CLOSING_WORDS = frozenset({"fi", "done", "esac", "}"})
#: words that make the whole command a non-command (loop headers, case heads)
_SKIP_WORDS = frozenset({"for", "case", "select", "function"})
#: commands that run their arguments as a command (stripped by :meth:`ShellCommand.unwrapped`)
_WRAPPERS = frozenset(
    {"sudo", "env", "nice", "nohup", "command", "exec", "time", "doas", "chronic"}
)
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"})


@dataclass(frozen=True)
class ShellCommand:
    """One simple command of a script.

    ``argv`` holds the words after the ``VAR=value`` prefixes (quotes removed,
    ``$VAR`` left as written); ``connector`` is the operator before it
    (``""`` for the first command, ``"|"`` when the previous command's output is
    piped into it); ``line`` is the 0-based line of the script it starts on.
    ``wrappers`` lists commands stripped by :meth:`unwrapped` (``sudo``, ``env``).
    """

    argv: tuple[str, ...]
    assignments: tuple[str, ...] = ()
    connector: str = ""
    line: int = 0
    pipeline: int = 0
    substitutions: tuple[str, ...] = ()
    wrappers: tuple[str, ...] = ()

    @cached_property
    def name(self) -> str:
        """The command's base name (``/usr/bin/apt-get`` -> ``apt-get``), "" if none."""
        if not self.argv:
            return ""
        return posixpath.basename(self.argv[0])

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments after the command name."""
        return self.argv[1:]

    def unwrapped(self) -> ShellCommand:
        """The command ``sudo``/``env``/``nice``... run, with those recorded in ``wrappers``."""
        cmd = self
        for _ in range(8):  # wrappers of wrappers, bounded
            name = cmd.name
            if name not in _WRAPPERS or len(cmd.argv) < 2:
                return cmd
            rest = list(cmd.argv[1:])
            assigns = list(cmd.assignments)
            # Skip the wrapper's own options and env's NAME=value words.
            while rest and (rest[0].startswith("-") or (name == "env" and _is_assignment(rest[0]))):
                word = rest.pop(0)
                if name == "env" and _is_assignment(word):
                    assigns.append(word)
                elif name in ("sudo", "doas") and word in ("-u", "-g", "-C", "-h", "-p", "-U"):
                    if rest:
                        rest.pop(0)
                elif name == "nice" and word == "-n" and rest:
                    rest.pop(0)
                if word == "--":
                    break
            if not rest:
                return cmd
            cmd = replace(
                cmd, argv=tuple(rest), assignments=tuple(assigns), wrappers=(*cmd.wrappers, name)
            )
        return cmd

    def has_flag(self, *flags: str) -> bool:
        """True if any of ``flags`` is among the arguments.

        Long flags match exactly or as ``--flag=value``; a one-letter flag
        (``-y``) also matches inside a bundle of short flags (``-qy``).
        """
        for arg in self.args:
            if arg == "--":
                break
            for flag in flags:
                if arg == flag:
                    return True
                if flag.startswith("--") and arg.startswith(flag + "="):
                    return True
                if (
                    len(flag) == 2
                    and flag[0] == "-"
                    and flag[1] != "-"
                    and arg.startswith("-")
                    and not arg.startswith("--")
                    and flag[1] in arg[1:]
                    and arg[1:].isalpha()
                ):
                    return True
        return False

    def positional(self) -> list[str]:
        """Arguments that are not options (``-x``/``--x``), in order."""
        return [a for a in self.args if not a.startswith("-")]

    def subcommand(self) -> str:
        """The first non-option argument (``install`` in ``apt-get -y install x``)."""
        pos = self.positional()
        return pos[0] if pos else ""


@dataclass(frozen=True)
class Script:
    """A parsed script: its simple commands in order (nested ones not included)."""

    text: str
    commands: tuple[ShellCommand, ...] = ()

    @property
    def has_pipe(self) -> bool:
        """True when some command reads the output of the previous one through ``|``."""
        return any(c.connector == "|" for c in self.commands)

    def all_commands(self) -> Iterator[ShellCommand]:
        """Every command, including those inside ``$(...)`` and ``sh -c '...'``, unwrapped.

        Nested commands report the line of the command that contains them.
        """
        yield from _walk(self, 0, 0)


def _walk(script: Script, depth: int, line_base: int) -> Iterator[ShellCommand]:
    for cmd in script.commands:
        inner = cmd.unwrapped()
        yield replace(inner, line=inner.line + line_base)
        if depth >= 4:
            continue
        for sub in cmd.substitutions:
            for nested in _walk(parse_script(sub), depth + 1, line_base + cmd.line):
                yield replace(nested, line=line_base + cmd.line)
        if inner.name in SHELLS:
            code = shell_c_argument(inner)
            if code is not None:
                for nested in _walk(parse_script(code), depth + 1, line_base + cmd.line):
                    yield replace(nested, line=line_base + cmd.line)


def shell_c_argument(cmd: ShellCommand) -> str | None:
    """For ``sh -c 'code'`` (also ``bash -ec``, ``-lc``): the code; else ``None``."""
    args = list(cmd.args)
    if cmd.name == "busybox" and args and args[0] in SHELLS:
        args = args[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and not a.startswith("--") and "c" in a[1:]:
            return args[i + 1] if i + 1 < len(args) else None
        if a in ("-o", "+o"):
            i += 2
            continue
        if not a.startswith(("-", "+")):
            return None
        i += 1
    return None


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.replace("_", "a").isalnum() and not name[0].isdigit()


@dataclass
class _Builder:
    """Mutable state of one pass of :func:`parse_script`."""

    commands: list[ShellCommand] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    subs: list[str] = field(default_factory=list)
    word: list[str] = field(default_factory=list)
    in_word: bool = False
    start_line: int = -1
    connector: str = ""
    pipeline: int = -1
    skip_next_word: bool = False
    pending_heredocs: list[tuple[str, bool]] = field(default_factory=list)

    def end_word(self) -> None:
        if not self.in_word:
            return
        text = "".join(self.word)
        self.word = []
        self.in_word = False
        if self.skip_next_word:
            self.skip_next_word = False
            return
        self.words.append(text)

    def start_word(self, line: int) -> None:
        if not self.in_word:
            self.in_word = True
            if self.start_line < 0 and not self.skip_next_word:
                self.start_line = line

    def end_command(self, connector: str) -> None:
        self.end_word()
        words = self.words
        while words and words[0] in _PREFIX_WORDS:
            words.pop(0)
        if words and words[0] in _SKIP_WORDS:
            words = []
        if len(words) == 1 and words[0] in _CLOSING_WORDS:
            words = []
        assigns: list[str] = []
        while words and _is_assignment(words[0]):
            assigns.append(words.pop(0))
        if words or assigns:
            if self.connector != "|" or not self.commands:
                self.pipeline += 1
            self.commands.append(
                ShellCommand(
                    argv=tuple(words),
                    assignments=tuple(assigns),
                    connector=self.connector,
                    line=max(self.start_line, 0),
                    pipeline=self.pipeline,
                    substitutions=tuple(self.subs),
                )
            )
            self.connector = connector
        elif connector and connector != "\n" and not self.connector:
            # An empty command (``then``, ``fi``): keep the operator that led here.
            self.connector = connector
        self.words = []
        self.subs = []
        self.start_line = -1


def _balanced(text: str, pos: int, open_ch: str, close_ch: str) -> int:
    """Index just past the ``close_ch`` matching the ``open_ch`` before ``pos`` (quotes respected)."""
    depth = 1
    n = len(text)
    i = pos
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'" and open_ch == "(":
            end = text.find("'", i + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == '"' and open_ch == "(":
            i = _skip_double(text, i + 1)
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _skip_double(text: str, pos: int) -> int:
    """Index just past the ``"`` closing a double-quoted string that starts at ``pos``."""
    n = len(text)
    i = pos
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        if ch == "$" and i + 1 < n and text[i + 1] == "(":
            i = _balanced(text, i + 2, "(", ")")
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            i = n if end < 0 else end + 1
            continue
        i += 1
    return n


def parse_script(text: str) -> Script:
    """Split ``text`` into :class:`ShellCommand` values (never raises)."""
    b = _Builder()
    n = len(text)
    i = 0
    line = 0
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                i += 2
                line += 1
                continue
            b.start_word(line)
            if i + 1 < n:
                b.word.append(text[i + 1])
            i += 2
            continue
        if ch == "'":
            b.start_word(line)
            end = text.find("'", i + 1)
            end = n if end < 0 else end
            chunk = text[i + 1 : end]
            b.word.append(chunk)
            line += chunk.count("\n")
            i = end + 1
            continue
        if ch == '"':
            b.start_word(line)
            end = _skip_double(text, i + 1)
            chunk = (
                text[i + 1 : end - 1] if end <= n and text[end - 1 : end] == '"' else text[i + 1 :]
            )
            b.word.append(_unescape_double(chunk))
            for sub in _substitutions(chunk):
                b.subs.append(sub)
            line += chunk.count("\n")
            i = end
            continue
        if ch == "`":
            b.start_word(line)
            end = text.find("`", i + 1)
            end = n if end < 0 else end
            chunk = text[i + 1 : end]
            b.word.append("`" + chunk + "`")
            b.subs.append(chunk)
            line += chunk.count("\n")
            i = end + 1
            continue
        if ch == "$" and i + 1 < n and text[i + 1] in "({":
            b.start_word(line)
            if text[i + 1] == "(":
                end = _balanced(text, i + 2, "(", ")")
                inner = text[i + 2 : end - 1]
                if not inner.startswith("("):  # $(( arithmetic )) is not a command
                    b.subs.append(inner)
            else:
                end = _balanced(text, i + 2, "{", "}")
            chunk = text[i:end]
            b.word.append(chunk)
            line += chunk.count("\n")
            i = end
            continue
        if ch in " \t\r":
            b.end_word()
            i += 1
            continue
        if ch == "#" and not b.in_word:
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == "\n":
            b.end_command("\n")
            line += 1
            i += 1
            if b.pending_heredocs:
                i, skipped = _skip_heredoc_bodies(text, i, b.pending_heredocs)
                line += skipped
                b.pending_heredocs = []
            continue
        if ch in ";&|()":
            two = text[i : i + 2]
            if two in ("&&", "||"):
                b.end_command(two)
                i += 2
                continue
            if two in ("&>",):
                b.end_word()
                i += 3 if text[i : i + 3] == "&>>" else 2
                b.skip_next_word = True
                continue
            if two == "|&" or ch == "|":
                b.end_command("|")
                i += 2 if two == "|&" else 1
                continue
            if two == ";;":
                b.end_command(";")
                i += 2
                continue
            b.end_command(";" if ch in ";()" else "&")
            i += 1
            continue
        if ch in "<>":
            # A number right before the operator is a file descriptor, not an argument.
            if b.in_word and "".join(b.word).isdigit():
                b.word = []
                b.in_word = False
            else:
                b.end_word()
            j = i
            while j < n and text[j] in "<>&|-":
                j += 1
            op = text[i:j]
            if op.startswith("<<") and not op.startswith("<<<"):
                delim_start = j
                while delim_start < n and text[delim_start] in " \t":
                    delim_start += 1
                k = delim_start
                while k < n and text[k] not in " \t\n;&|<>":
                    k += 1
                raw = text[delim_start:k]
                delim = raw.replace("'", "").replace('"', "").replace("\\", "")
                if delim:
                    b.pending_heredocs.append((delim, op.endswith("-")))
                i = k
                continue
            if op.endswith("&"):
                # >&2 / 2>&1: the target is a descriptor (digits or -)
                k = j
                while k < n and (text[k].isdigit() or text[k] == "-"):
                    k += 1
                if k > j:
                    i = k
                    continue
            b.skip_next_word = True
            i = j
            continue
        b.start_word(line)
        b.word.append(ch)
        i += 1
    b.end_command("")
    return Script(text, tuple(b.commands))


def _skip_heredoc_bodies(text: str, pos: int, pending: list[tuple[str, bool]]) -> tuple[int, int]:
    """Skip the bodies of here-documents started on the previous line; return (pos, lines)."""
    lines = 0
    n = len(text)
    for delim, strip_tabs in pending:
        while pos < n:
            end = text.find("\n", pos)
            end = n if end < 0 else end
            candidate = text[pos:end]
            if strip_tabs:
                candidate = candidate.lstrip("\t")
            pos = end + 1
            lines += 1
            if candidate.rstrip("\r") == delim:
                break
    return min(pos, n), lines


def _unescape_double(chunk: str) -> str:
    out: list[str] = []
    i = 0
    n = len(chunk)
    while i < n:
        ch = chunk[i]
        if ch == "\\" and i + 1 < n and chunk[i + 1] in '"\\$`\n':
            if chunk[i + 1] != "\n":
                out.append(chunk[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _substitutions(chunk: str) -> list[str]:
    """The ``$(...)`` and backtick bodies inside a double-quoted string."""
    found: list[str] = []
    i = 0
    n = len(chunk)
    while i < n:
        ch = chunk[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "$" and i + 1 < n and chunk[i + 1] == "(":
            end = _balanced(chunk, i + 2, "(", ")")
            inner = chunk[i + 2 : end - 1]
            if not inner.startswith("("):
                found.append(inner)
            i = end
            continue
        if ch == "`":
            end = chunk.find("`", i + 1)
            end = n if end < 0 else end
            found.append(chunk[i + 1 : end])
            i = end + 1
            continue
        i += 1
    return found
