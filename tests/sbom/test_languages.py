"""Language analyzers on files written in each tool's documented format (tools not runnable here:
yarn, pnpm, composer, gem), plus ownership by the OS package manager."""

from __future__ import annotations

import json
from pathlib import Path

from forklift.sbom import inventory_rootfs
from forklift.sbom.analyzers.node import parse_pnpm_lock, parse_yarn_lock


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def names(root: Path) -> set[tuple[str, str, str]]:
    return {(p.ecosystem.value, p.name, p.version) for p in inventory_rootfs(str(root)).packages}


def test_python_forms_and_licences(tmp_path: Path) -> None:
    site = "usr/lib/python3.11/site-packages"
    root = write(tmp_path, {
        f"{site}/a-1.0.dist-info/METADATA": "Metadata-Version: 2.4\nName: a\nVersion: 1.0\n"
                                           "License-Expression: MIT OR Apache-2.0\nLicense: ignored\n",
        f"{site}/b-2.0.egg-info/PKG-INFO": "Metadata-Version: 1.1\nName: b\nVersion: 2.0\nLicense: BSD-3-Clause\n",
        f"{site}/b-2.0.egg-info/installed-files.txt": "../b/__init__.py\nPKG-INFO\n",
        f"{site}/c-3.0.egg-info": "Metadata-Version: 1.0\nName: c\nVersion: 3.0\nLicense: UNKNOWN\n",
        f"{site}/d-4.0.dist-info/METADATA": "Name: d\nVersion: 4.0\n"
                                           "Classifier: License :: OSI Approved :: MIT License\n",
        f"{site}/broken-1.dist-info/METADATA": "Summary: no name\n",
        "srv/notes/METADATA": "Name: not-a-package\nVersion: 1\n",  # not in a .dist-info
    })  # fmt: skip
    inv = inventory_rootfs(str(root))
    got = {p.name: (p.version, p.licenses) for p in inv.packages}
    assert got == {
        "a": ("1.0", ("MIT OR Apache-2.0",)),
        "b": ("2.0", ("BSD-3-Clause",)),
        "c": ("3.0", ()),
        "d": ("4.0", ("MIT",)),
    }
    b = next(p for p in inv.packages if p.name == "b")
    assert b.files == (f"/{site}/b-2.0.egg-info/PKG-INFO", f"/{site}/b/__init__.py")
    assert inv.warnings == (f"/{site}/broken-1.dist-info/METADATA: not a readable python file "
                            "(no Name or Version field)",)  # fmt: skip


def test_os_owned_language_packages_are_reported_once(tmp_path: Path) -> None:
    """Debian ships /lib/python3/... (merged /usr: /lib -> usr/lib); dpkg lists the old path."""
    root = write(tmp_path / "r", {
        "var/lib/dpkg/status": "Package: python3-six\nStatus: install ok installed\n"
                               "Architecture: all\nVersion: 1.16.0-4\n",
        "var/lib/dpkg/info/python3-six.list": "/.\n/lib/python3/dist-packages/six-1.16.0.dist-info\n"
                                              "/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA\n",
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA": "Name: six\nVersion: 1.16.0\n",
        "usr/local/lib/python3.11/dist-packages/six-1.17.0.dist-info/METADATA": "Name: six\nVersion: 1.17.0\n",
    })  # fmt: skip
    (root / "lib").symlink_to("usr/lib")
    assert names(root) == {("deb", "python3-six", "1.16.0-4"), ("pypi", "six", "1.17.0")}


def test_node_manifests_and_lock_precedence(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "app/node_modules/left-pad/package.json": json.dumps({"name": "left-pad", "version": "1.3.0",
                                                             "licenses": [{"type": "WTFPL"}]}),
        # a package.json inside a package (module-type marker): not a package
        "app/node_modules/left-pad/esm/package.json": json.dumps({"name": "x", "version": "9"}),
        "app/package-lock.json": json.dumps({"lockfileVersion": 3, "packages": {
            "": {"name": "app"}, "node_modules/other": {"version": "2.0.0"}}}),  # node_modules wins
        "web/package-lock.json": json.dumps({"lockfileVersion": 1, "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}}}}),
    })  # fmt: skip
    assert names(root) == {
        ("npm", "left-pad", "1.3.0"),
        ("npm", "a", "1.0.0"),
        ("npm", "b", "2.0.0"),
    }


def test_yarn_and_pnpm_locks() -> None:
    classic = (
        "# yarn lockfile v1\n\n\n"
        '"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":\n'
        '  version "7.12.13"\n  resolved "https://registry.yarnpkg.com/x.tgz#abc"\n'
        '  dependencies:\n    "@babel/highlight" "^7.12.13"\n\n'
        'lodash@^4.17.21:\n  version "4.17.21"\n'
    )
    assert [(p.name, p.version) for p in parse_yarn_lock(classic)] == [
        ("@babel/code-frame", "7.12.13"), ("lodash", "4.17.21")]  # fmt: skip
    berry = (
        "__metadata:\n  version: 6\n  cacheKey: 8\n\n"
        '"js-tokens@npm:^4.0.0":\n  version: 4.0.0\n  resolution: "js-tokens@npm:4.0.0"\n\n'
        '"app@workspace:.":\n  version: 0.0.0-use.local\n  resolution: "app@workspace:."\n'
    )
    assert [(p.name, p.version) for p in parse_yarn_lock(berry)] == [("js-tokens", "4.0.0")]
    v6 = (
        "lockfileVersion: '6.0'\npackages:\n  /ms@2.1.3:\n    resolution: {integrity: sha512-x}\n"
        "  /@types/node@20.1.0(typescript@5.0.0):\n    dev: true\n"
    )
    assert [(p.name, p.version, p.dev) for p in parse_pnpm_lock(v6)] == [
        ("ms", "2.1.3", False), ("@types/node", "20.1.0", True)]  # fmt: skip
    v5 = "lockfileVersion: 5.4\npackages:\n  /ms/2.1.3:\n    dev: false\n  /@scope/pkg/1.0.0_react@18.0.0:\n    dev: false\n"
    assert [(p.name, p.version) for p in parse_pnpm_lock(v5)] == [
        ("ms", "2.1.3"),
        ("@scope/pkg", "1.0.0"),
    ]
    v9 = "lockfileVersion: '9.0'\npackages:\n  ms@2.1.3:\n    resolution: {integrity: sha512-x}\n"
    assert [(p.name, p.version) for p in parse_pnpm_lock(v9)] == [("ms", "2.1.3")]


def test_ruby_and_php(tmp_path: Path) -> None:
    gem = ('# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = "{n}".freeze\n'
           '  s.version = "{v}"\n  s.licenses = ["MIT".freeze, "Ruby".freeze]\nend\n')  # fmt: skip
    root = write(tmp_path, {
        "usr/local/bundle/specifications/rack-3.0.8.gemspec": gem.format(n="rack", v="3.0.8"),
        "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec": gem.format(n="json", v="2.6.1"),
        "srv/app/rack.gemspec": gem.format(n="ignored", v="0"),  # a source tree's gemspec
        "srv/app/composer.lock": json.dumps({"packages": [{"name": "a/b", "version": "1.0.0"}]}),
        "srv/app/vendor/composer/installed.json": json.dumps({
            "packages": [{"name": "psr/log", "version": "3.0.0", "license": ["MIT"]},
                         {"name": "phpunit/phpunit", "version": "10.5.0"}],
            "dev-package-names": ["phpunit/phpunit"]}),
        "srv/old/composer.lock": json.dumps({"packages": [{"name": "c/d", "version": "v2.1.0"}],
                                             "packages-dev": [{"name": "e/f", "version": "1.0"}]}),
    })  # fmt: skip
    inv = inventory_rootfs(str(root))
    got = {
        (p.ecosystem.value, p.name, p.version, dict(p.extra).get("dev", "")) for p in inv.packages
    }
    assert got == {
        ("gem", "rack", "3.0.8", ""),
        ("gem", "json", "2.6.1", ""),
        ("composer", "psr/log", "3.0.0", ""),
        ("composer", "phpunit/phpunit", "10.5.0", "true"),
        ("composer", "c/d", "v2.1.0", ""),
        ("composer", "e/f", "1.0", "true"),
    }
    rack = next(p for p in inv.packages if p.name == "rack")
    assert rack.licenses == ("MIT", "Ruby") and rack.purl == "pkg:gem/rack@3.0.8"
    assert next(p for p in inv.packages if p.name == "psr/log").purl == "pkg:composer/psr/log@3.0.0"


def test_hostile_inputs_become_warnings(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "app/node_modules/x/package.json": "[" * 100000,  # nested beyond any parser's stack
        "app/node_modules/y/package.json": "\ufeff" + json.dumps({"name": "y", "version": "1.0.0"}),
        "lib/apk/db/installed": "P:musl\nV:1\nnot a field line\n",
        "srv/pnpm-lock.yaml": "packages: [unclosed\n",
    })  # fmt: skip
    inv = inventory_rootfs(str(root))
    assert [(p.name, p.version) for p in inv.packages] == [("y", "1.0.0")]
    assert sorted(w.split(":")[0] for w in inv.warnings) == [
        "/app/node_modules/x/package.json", "/lib/apk/db/installed", "/srv/pnpm-lock.yaml"]  # fmt: skip
