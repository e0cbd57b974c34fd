"""Dockerfile front end: parser, variable expansion, ARG scoping, stage graph, .dockerignore."""
