"""Dockerfile front end: parser, variable expansion, ARG scoping, stage graph, .dockerignore.

Matches BuildKit's Dockerfile frontend (``docker/dockerfile:1``). The usual path::

    df = parse(data, "Dockerfile")           # syntax tree with positions
    parsed = parse_stages(df)                 # global ARGs + stages of typed commands
    built = plan(parsed, build_args={...})    # the one pass: stage graph, expanded and
                                              # validated steps per stage (dispatch.py)

and for the context: ``walk_context(root, IgnoreMatcher.from_file(find_ignore_file(...)))``.
"""

from forklift.dockerfile.args import (
    PLATFORM_ARGS,
    PROXY_ARGS,
    GlobalArgs,
    StageScope,
    default_args,
    unused_build_args,
)
from forklift.dockerfile.ast import Directive, Dockerfile, Flag, Heredoc, Instruction, ParseWarning
from forklift.dockerfile.context import ContextEntry, context_paths, walk_context
from forklift.dockerfile.diagnostics import Diagnostics
from forklift.dockerfile.dispatch import BaseImage, BuildPlan, PlannedStage, Step, plan
from forklift.dockerfile.dump import dump
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
    "BaseImage",
    "BuildPlan",
    "ContextEntry",
    "Diagnostics",
    "Directive",
    "Dockerfile",
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
    "PlannedStage",
    "Stage",
    "StageGraph",
    "StageNode",
    "StageScope",
    "Step",
    "Target",
    "context_paths",
    "default_args",
    "dump",
    "expand",
    "find_ignore_file",
    "list_targets",
    "outline",
    "parse",
    "parse_file",
    "parse_instruction",
    "parse_mount",
    "parse_stages",
    "plan",
    "read_ignore_patterns",
    "render_outline",
    "render_targets",
    "split_words",
    "unused_build_args",
    "walk_context",
]
