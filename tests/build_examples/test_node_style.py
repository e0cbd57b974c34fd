"""examples/node-style: manifest, install, code, build, dist; the install stays cached."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.build_diff.harness import forklift_image, snapshot
from tests.build_examples.running import build, http_body, run_both
from tests.helpers import Podman, Result

LAYER_STEPS = ("COPY", "ADD", "RUN", "WORKDIR")


def diff_ids(cli: Callable[..., Result], image: str) -> list[str]:
    return json.loads(cli("inspect", image).stdout)[0]["RootFS"]["Layers"]


def test_node_style_builds_and_runs_with_forklift_and_podman(
    busybox_image: str, example: Callable[[str], Path], podman: Podman, tmp_path: Path
) -> None:
    ctx = example("node-style")
    # a developer's local install and build output: .dockerignore keeps both out
    (ctx / "node_modules" / "left-pad").mkdir(parents=True)
    (ctx / "node_modules" / "left-pad" / "index.js").write_text("/* local, not shipped */")
    (ctx / "dist").mkdir()
    (ctx / "dist" / "app.js").write_text("/* stale local build */")
    build(ctx, "hello-node:1")
    _, root = forklift_image("hello-node:1", tmp_path / "image")
    www = sorted(p for p in snapshot(root) if p.startswith("usr/share/www/"))
    assert www == ["usr/share/www/app.js", "usr/share/www/index.html"]
    bundle = (root / "usr/share/www/app.js").read_text()
    assert bundle.startswith("/* left-pad@1.3.0 */\n/* tiny-template@2.1.4 */\n")
    assert "local, not shipped" not in bundle and "stale" not in bundle

    request = b"GET /app.js HTTP/1.0\r\n\r\n"
    ours, theirs = run_both(podman, "hello-node:1", ("-i",), stdin=request)
    for response in (ours, theirs):
        assert http_body(response) == bundle


def test_changing_code_does_not_rerun_the_install(
    busybox_image: str, example: Callable[[str], Path], cli: Callable[..., Result]
) -> None:
    ctx = example("node-style")
    first = build(ctx, "hello-node:1")
    assert first.status("RUN npm ci") == "DONE"

    # nothing changed: every step that makes a layer is cached, the same image
    again = build(ctx, "hello-node:1")
    layer_steps = {i: s for i, s in again.steps.items() if i.split()[0] in LAYER_STEPS}
    assert len(layer_steps) == 7 and set(layer_steps.values()) == {"CACHED"}, again.output
    assert again.image_id == first.image_id

    # touched but unchanged, and an ignored directory changed: still all cached
    (ctx / "src" / "main.js").touch()
    (ctx / "node_modules").mkdir()
    (ctx / "node_modules" / "junk.js").write_text("x")
    touched = build(ctx, "hello-node:1")
    assert touched.image_id == first.image_id, touched.output

    # one source file changed: the install is reused, the build runs again
    (ctx / "src" / "util.js").write_text("export const pad = (s, n) => s.padEnd(n);\n")
    edited = build(ctx, "hello-node:2")
    assert edited.status("RUN npm ci") == "CACHED"
    assert edited.status("COPY . .") == "DONE" and edited.status("RUN npm run build") == "DONE"
    assert "added 2 packages" not in edited.output
    # the layers up to the install are the same blobs as before
    before, after = diff_ids(cli, "hello-node:1"), diff_ids(cli, "hello-node:2")
    assert before[:-1] == after[:-1] and before[-1] != after[-1]

    # the lock file changed: the install runs again
    for name in ("package.json", "package-lock.json"):
        path = ctx / name
        path.write_text(path.read_text().replace("2.1.4", "2.2.0"))
    bumped = build(ctx, "hello-node:3")
    assert bumped.status("COPY package.json package-lock.json ./") == "DONE"
    assert bumped.status("RUN npm ci") == "DONE" and "added 2 packages" in bumped.output
