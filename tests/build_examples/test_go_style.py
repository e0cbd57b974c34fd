"""examples/go-style: a static binary built in a builder stage, shipped alone FROM scratch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.build_diff.harness import forklift_image, snapshot
from tests.build_examples.running import build, http_body, run_both
from tests.helpers import Podman, Result

REQUEST = b"GET / HTTP/1.0\r\n\r\n"


def test_go_style_builds_and_runs_with_forklift_and_podman(
    busybox_image: str, example: Callable[[str], Path], podman: Podman, tmp_path: Path
) -> None:
    ctx = example("go-style")
    build(ctx, "hello-go:1")
    config, root = forklift_image("hello-go:1", tmp_path / "image")
    # the runtime stage holds the binary and its page, nothing of the builder
    assert sorted(snapshot(root)) == ["httpd", "www", "www/index.html"]
    assert (root / "httpd").read_bytes() == Path("/bin/busybox").read_bytes()
    assert config["config"]["User"] == "65534:65534"
    assert config["config"]["Entrypoint"] == ["/httpd", "-f", "-h", "/www"]

    ours, theirs = run_both(podman, "hello-go:1", ("-i",), stdin=REQUEST)
    for response in (ours, theirs):
        assert "<h1>Hello from a static binary</h1>" in http_body(response)


def test_go_style_caches_modules_until_go_mod_changes(
    busybox_image: str, example: Callable[[str], Path]
) -> None:
    ctx = example("go-style")
    first = build(ctx, "hello-go:1")
    assert first.status("RUN go mod download") == "DONE"

    # a source change: modules stay cached, the binary and page are rebuilt
    page = ctx / "web" / "page.go"
    page.write_text(page.read_text().replace("a static binary", "an edited page"))
    edited = build(ctx, "hello-go:2")
    assert edited.status("RUN go mod download") == "CACHED"
    assert edited.status("RUN CGO_ENABLED=0 go build") == "DONE"
    assert edited.image_id != first.image_id

    # a dependency change misses at the COPY of go.mod and re-runs the download
    gomod = ctx / "go.mod"
    gomod.write_text(gomod.read_text().replace("v0.9.2", "v0.9.3"))
    gosum = ctx / "go.sum"
    gosum.write_text(gosum.read_text().replace("v0.9.2", "v0.9.3"))
    bumped = build(ctx, "hello-go:3")
    assert bumped.status("COPY go.mod go.sum ./") == "DONE"
    assert bumped.status("RUN go mod download") == "DONE"
    assert "go: downloading example.com/templates v0.9.3" in bumped.output


def test_go_style_layers_hold_only_what_the_runtime_needs(
    busybox_image: str, example: Callable[[str], Path], cli: Callable[..., Result]
) -> None:
    ctx = example("go-style")
    build(ctx, "hello-go:1")
    inspected = json.loads(cli("inspect", "hello-go:1").stdout)[0]
    # FROM scratch + two COPY steps: two layers, no builder layer leaks into the image
    assert len(inspected["RootFS"]["Layers"]) == 2
