"""Go build info against ``go version -m``; cargo-auditable's ``.dep-v0`` section.

The Go program is built in the test by Debian's golang-go. Go's module proxy is
not reachable here, so its dependencies are local modules: one vendored at a
version, one replaced by a directory; ``go version -m`` is the reference.
cargo-auditable is not installable here (crates.io is not reachable): its
section is added with ``objcopy`` to a real ELF binary, with the JSON its
format documents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from forklift.sbom import inventory
from forklift.sbom.analyzers import binaries
from forklift.sbom.model import Ecosystem
from tests.helpers import run_cli

GO_FILES = {
    "go.mod": "module example.com/hello\n\ngo 1.19\n\nrequire (\n\texample.com/greet v1.2.3\n"
    "\texample.com/shout v0.1.0\n)\n\nreplace example.com/shout v0.1.0 => ./shout\n",
    "main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/greet"\n\t"example.com/shout"\n)\n\n'
    "func main() { fmt.Println(shout.Up(greet.Hello())) }\n",
    "vendor/example.com/greet/greet.go": 'package greet\n\nfunc Hello() string { return "hello" }\n',
    "shout/go.mod": "module example.com/shout\n\ngo 1.19\n",
    "shout/shout.go": 'package shout\n\nimport "strings"\n\nfunc Up(s string) string { return strings.ToUpper(s) }\n',
    "vendor/example.com/shout/shout.go": 'package shout\n\nimport "strings"\n\n'
    "func Up(s string) string { return strings.ToUpper(s) }\n",
    "vendor/modules.txt": "# example.com/greet v1.2.3\n## explicit\nexample.com/greet\n"
    "# example.com/shout v0.1.0 => ./shout\n## explicit; go 1.19\nexample.com/shout\n"
    "# example.com/shout v0.1.0 => ./shout\n",
}


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go, "Go is not installed (apt-get install golang-go; scripts/install-system-packages)"
    src = tmp_path_factory.mktemp("gosrc")
    for name, text in GO_FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    env = {**os.environ, "HOME": str(src), "GOPATH": str(src / "gopath"), "GOCACHE": str(src / "cache"),
           "GOFLAGS": "-mod=vendor", "GOPROXY": "off", "GOTOOLCHAIN": "local"}  # fmt: skip
    subprocess.run([go, "build", "-o", "hello", "."], cwd=src, env=env, check=True, timeout=600)
    return src / "hello"


def go_version_m(binary: Path) -> tuple[str, list[tuple[str, str]]]:
    """The Go version and the (module, version) pairs ``go version -m`` prints (replacements applied)."""
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True,
                         check=True, env={**os.environ, "GOTOOLCHAIN": "local"}).stdout  # fmt: skip
    lines = out.splitlines()
    version = lines[0].split(": ", 1)[1].strip()
    mods: list[tuple[str, str]] = []
    for line in lines[1:]:
        cols = line.strip("\n").split("\t")[1:]
        if not cols:
            continue
        if cols[0] in ("mod", "dep"):
            mods.append((cols[1], cols[2]))
        elif cols[0] == "=>" and not cols[1].startswith((".", "/")):
            mods[-1] = (cols[1], cols[2])  # replaced by another module
    return version, mods


def _image_with(home: Path, tmp: Path, files: dict[str, Path]) -> str:
    tar = tmp / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        for dest, src in files.items():
            tf.add(src, arcname=dest)
    run_cli("import", str(tar), "bins:latest", check=True)
    return "bins:latest"


def test_go_binary_matches_go_version_m(go_binary: Path, home: Path, tmp_path: Path) -> None:
    version, expected = go_version_m(go_binary)
    name = _image_with(home, tmp_path, {"usr/local/bin/hello": go_binary})
    inv = inventory(name)
    go = [p for p in inv.by_ecosystem(Ecosystem.GOLANG) if p.name != "stdlib"]
    assert sorted((p.name, p.version) for p in go) == sorted(expected)
    assert ("example.com/greet", "v1.2.3") in expected  # the test really has dependencies
    stdlib = next(p for p in inv.packages if p.name == "stdlib")
    assert stdlib.version == version
    assert stdlib.purl == f"pkg:golang/stdlib@{version.removeprefix('go')}"
    greet = next(p for p in go if p.name == "example.com/greet")
    assert greet.purl == "pkg:golang/example.com/greet@v1.2.3"
    assert greet.location == "/usr/local/bin/hello"
    main = next(p for p in go if p.name == "example.com/hello")
    assert main.purl == "pkg:golang/example.com/hello"  # "(devel)" is no version
    shout = next(p for p in go if p.name == "example.com/shout")
    assert ("replacement", "example.com/shout v0.1.0 => ./shout (devel)") in shout.extra


def test_go_binary_streamed_when_large(go_binary: Path, home: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    name = _image_with(home, tmp_path, {"usr/local/bin/hello": go_binary})
    whole = inventory(name)
    monkeypatch.setattr(binaries, "IN_MEMORY", 1024)  # every binary is "too large to hold"
    streamed = inventory(name)
    assert streamed.packages == whole.packages


def test_cargo_auditable_section(home: Path, tmp_path: Path) -> None:
    objcopy = shutil.which("objcopy")
    assert objcopy, "objcopy (binutils) is needed"
    doc = {"packages": [
        {"name": "myapp", "version": "0.1.0", "source": "local", "dependencies": [1, 2], "root": True},
        {"name": "serde", "version": "1.0.195", "source": "crates.io"},
        {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
    ]}  # fmt: skip
    section = tmp_path / "dep-v0"
    section.write_bytes(zlib.compress(json.dumps(doc).encode(), 9))
    binary = tmp_path / "myapp"
    shutil.copy("/bin/ls", binary)
    subprocess.run([objcopy, "--add-section", f".dep-v0={section}", str(binary)], check=True)
    name = _image_with(home, tmp_path, {"usr/bin/myapp": binary})
    crates = {(p.name, p.version, p.purl) for p in inventory(name).by_ecosystem(Ecosystem.CARGO)}
    assert crates == {
        ("myapp", "0.1.0", "pkg:cargo/myapp@0.1.0"),
        ("serde", "1.0.195", "pkg:cargo/serde@1.0.195"),
        ("cc", "1.0.83", "pkg:cargo/cc@1.0.83"),
    }


def test_not_go_and_broken_elf(home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    data = bytearray(Path("/bin/ls").read_bytes())
    data[0x28:0x30] = (len(data) * 4).to_bytes(8, "little")  # section headers past the end
    broken.write_bytes(data)
    broken.chmod(0o755)
    name = _image_with(home, tmp_path, {"usr/bin/ls": Path("/bin/ls"), "usr/bin/broken": broken})
    inv = inventory(name)
    assert inv.packages == ()
    assert inv.warnings == (
        "/usr/bin/broken: not a readable binary file (section headers lie outside the file)",
    )
