"""The layering of ARCHITECTURE.md holds: no module imports from a layer above its own.

Read from the source with ``ast`` (imports inside functions count too), so a
lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import forklift

SRC = Path(forklift.__file__).parent

# top-level package (or module) -> layer; higher numbers sit above lower ones
LAYERS = {
    "errors": 0, "fsutil": 0, "oci": 0, "reference": 0, "store": 0, "layers": 0,
    "copyrange": 0,
    "transports": 1, "runtime": 1, "dockerfile": 1,
    "build": 2, "registry": 2, "lint": 2, "analyze": 2, "sbom": 2, "scan": 2, "sign": 2,
    "cli": 3, "__main__": 3,
}  # fmt: skip
NAMES = {0: "core", 1: "machinery", 2: "features", 3: "cli"}


def layer_of(dotted: str) -> int | None:
    parts = dotted.split(".")
    if parts[0] != "forklift" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def imported(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    out = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return out


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        own = layer_of(module)
        if own is None:
            continue
        for line, name in imported(ast.parse(path.read_text(), str(path)), module):
            target = layer_of(name)
            if target is not None and target > own:
                upward.append(
                    f"{path.relative_to(SRC.parent)}:{line}: {NAMES[own]} imports {name} "
                    f"({NAMES[target]})"
                )
    assert upward == []


def test_the_registry_transport_is_machinery() -> None:
    # it sits beside the other transports, and nothing finds it by name any more
    assert (SRC / "transports" / "registry" / "transport.py").is_file()
    assert "EXTERNAL_TRANSPORTS" not in (SRC / "transports" / "names.py").read_text()
