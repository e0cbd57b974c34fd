"""Dockerfile front end: parser, variable expansion, ARG scoping, stage graph, .dockerignore.

Matches BuildKit's Dockerfile frontend (``docker/dockerfile:1``). The usual path::

    df = parse(data, "Dockerfile")           # syntax tree with positions
    parsed = parse_stages(df)                 # global ARGs + stages of typed commands
    graph = StageGraph.build(parsed)          # dependencies, --target subsets, build order
    ev = evaluate(parsed, build_args={...})   # scoped, expanded commands per stage

and for the context: ``walk_context(root, IgnoreMatcher.from_file(find_ignore_file(...)))``.
"""

from forklift.dockerfile.args import (
    PLATFORM_ARGS,
    PROXY_ARGS,
    GlobalArgs,
    StageScope,
    platform_args,
    unused_build_args,
)
from forklift.dockerfile.ast import Directive, Dockerfile, Flag, Heredoc, Instruction, ParseWarning
from forklift.dockerfile.context import ContextEntry, context_paths, walk_context
from forklift.dockerfile.dump import dump
from forklift.dockerfile.evaluate import Evaluation, StageEvaluation, evaluate
from forklift.dockerfile.ignore import IgnoreMatcher, find_ignore_file, read_ignore_patterns
from forklift.dockerfile.instructions import (
    InstructionError,
    ParsedStages,
    Stage,
    parse_instruction,
    parse_stages,
)
from forklift.dockerfile.mounts import Mount, parse_mount
from forklift.dockerfile.outline import (
    Outline,
    Target,
    list_targets,
    outline,
    render_outline,
    render_targets,
)
from forklift.dockerfile.parser import parse, parse_file
from forklift.dockerfile.shell import ExpansionError, Lexer, expand, split_words
from forklift.dockerfile.stages import StageGraph, StageNode

__all__ = [
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "ContextEntry",
    "Directive",
    "Dockerfile",
    "Evaluation",
    "ExpansionError",
    "Flag",
    "GlobalArgs",
    "Heredoc",
    "IgnoreMatcher",
    "Instruction",
    "InstructionError",
    "Lexer",
    "Mount",
    "Outline",
    "ParseWarning",
    "ParsedStages",
    "Stage",
    "StageEvaluation",
    "StageGraph",
    "StageNode",
    "StageScope",
    "Target",
    "context_paths",
    "dump",
    "evaluate",
    "expand",
    "find_ignore_file",
    "list_targets",
    "outline",
    "parse",
    "parse_file",
    "parse_instruction",
    "parse_mount",
    "parse_stages",
    "platform_args",
    "read_ignore_patterns",
    "render_outline",
    "render_targets",
    "split_words",
    "unused_build_args",
    "walk_context",
]
